"""Benchmark the dense index (rag.memory.dense) on synthetic clustered vectors.

The vectors are seeded and synthetic, dim 384 like all-MiniLM-L6-v2: 50 topic directions,
2,000 gaussian cluster centres around them, and points spread along a rank-16 subspace of
their cluster plus isotropic noise, L2-normalised. Queries are 200 more points drawn the same
way (held out: not in the index). Real text embeddings are harder for IVF than such
clusters, which is why the index calibrates ``nprobe`` on its own vectors; ``--real X.npy``
(with ``--real-queries Q.npy``) benchmarks a file of real embeddings instead.

For each size it measures, in a fresh process (so RSS is per run): build time (one bulk add:
training, adding and nprobe calibration), the IVF parameters chosen, single-query search
p50/p95 (k=10, and k=50 as the store asks), recall@10 against brute force, the add of one new
vector, the replacement of one, a delete (tombstone), search with ~9 % tombstones, the
compaction they trigger, a physical delete for comparison, save/load time, size on disk and
the RSS the index adds. It also tries faiss's IDSelector filtering of tombstones.

    python eval/bench_dense.py [--sizes 10000,100000,1000000] [--queries 200]
        [--approximate-above 50000] [--out eval/results/bench_dense.json]

Prints a markdown table and writes JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, percentile, table, timed, write_json  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from rag.memory.dense import DenseIndex, recall_at_k  # noqa: E402

DIM = 384
DATA = ("synthetic clustered: 2000 gaussian centres in a 32-dim latent subspace + isotropic "
        "noise, normalised, dim 384, seeded (recall-vs-nprobe matched to real MiniLM "
        "embeddings); 200 held-out queries")


# -- synthetic data -------------------------------------------------------------------------

def _unit(a: np.ndarray) -> np.ndarray:
    return a / np.linalg.norm(a, axis=-1, keepdims=True)


def clustered(n: int, seed: int, *, clusters: int = 2000, latent: int = 32,
              spread: float = 1.3, noise: float = 0.3) -> np.ndarray:
    """``n`` normalised vectors; the cluster structure is the same for every ``seed``.

    Gaussian clusters in a ``latent``-dim subspace (centres ``spread`` times further apart
    than the points of a cluster), mapped into 384 dims by a random orthonormal map, plus
    isotropic ``noise``. These defaults were chosen so that recall against nprobe follows
    real all-MiniLM-L6-v2 embeddings (30k docstring paragraphs) at 30k vectors and nlist 693:
    nprobe 1/4/16/64 give 0.52/0.68/0.83/0.96 here and 0.42/0.68/0.85/0.96 there; plain
    well-separated clusters reach 0.99 at nprobe 1 and would flatter IVF.
    """
    structure = np.random.default_rng(12345)
    embed = np.linalg.qr(structure.standard_normal((DIM, latent)))[0].T.astype(np.float32)
    centres = (spread * structure.standard_normal((clusters, latent))).astype(np.float32)
    rng = np.random.default_rng(seed)
    out = np.empty((n, DIM), dtype=np.float32)
    scale = 1 / np.sqrt(latent * (1 + spread**2))
    for lo in range(0, n, 65_536):  # in chunks: the temporaries of 1M rows would be GBs
        hi = min(n, lo + 65_536)
        z = centres[rng.integers(0, clusters, hi - lo)]
        z += rng.standard_normal((hi - lo, latent)).astype(np.float32)
        jitter = rng.standard_normal((hi - lo, DIM)).astype(np.float32)
        out[lo:hi] = _unit((scale * z) @ embed + (noise / np.sqrt(DIM)) * jitter)
    return out


# -- measurement helpers --------------------------------------------------------------------

def rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def latencies_ms(fn, items) -> list[float]:
    out = []
    for item in items:
        start = time.perf_counter()
        fn(item)
        out.append(1000 * (time.perf_counter() - start))
    return out


def summary(prefix: str, values: list[float]) -> dict[str, float]:
    return {f"{prefix}_p50_ms": percentile(values, 0.5),
            f"{prefix}_p95_ms": percentile(values, 0.95)}


def try_selector(idx: DenseIndex, queries: np.ndarray) -> dict[str, float]:
    """faiss filtering of tombstones inside the scan, instead of over-fetching."""
    import faiss

    tombs = np.fromiter(idx._tombstones, dtype=np.int64, count=idx.tombstones)
    start = time.perf_counter()
    batch = faiss.IDSelectorBatch(len(tombs), faiss.swig_ptr(tombs))
    params = faiss.SearchParametersIVF(sel=faiss.IDSelectorNot(batch), nprobe=idx.nprobe)
    build_ms = 1000 * (time.perf_counter() - start)
    ms = latencies_ms(lambda q: idx._index.search(q.reshape(1, -1), 10, params=params), queries)
    return {"selector_build_ms": build_ms, "selector_search_p50_ms": percentile(ms, 0.5)}


# -- one size, in its own process -------------------------------------------------------------

def bench_size(args, n: int) -> dict:
    import faiss

    row: dict = {"n": n}
    if args.real:
        vectors = np.load(args.real, allow_pickle=False)[:n].astype(np.float32)
        queries = np.load(args.real_queries, allow_pickle=False)[: args.queries].astype(np.float32)
        n = row["n"] = len(vectors)
    else:
        (vectors, queries), row["gen_s"] = timed(
            lambda: (clustered(n, seed=1), clustered(args.queries, seed=2)))
    keys = np.arange(n, dtype=np.int64)
    extra = clustered(400, seed=3) if not args.real else vectors[:400][::-1].copy()

    base = rss_mb()
    idx = DenseIndex(DIM, approximate_above=args.approximate_above, nlist_factor=args.nlist_factor)
    _, row["build_s"] = timed(lambda: idx.add(keys, vectors))
    row["rss_mb"] = rss_mb() - base
    stats = idx.stats()
    row.update(mode=stats["mode"], nlist=stats["nlist"], nprobe=stats["nprobe"],
               calibrated_recall=stats["calibrated_recall"], **idx.last_rebuild)

    idx.search(queries[0], 10)  # warm-up
    row.update(summary("search", latencies_ms(lambda q: idx.search(q, 10), queries)))
    row["search_k50_p50_ms"] = percentile(latencies_ms(lambda q: idx.search(q, 50), queries), 0.5)
    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    one_thread = latencies_ms(lambda q: idx.search(q, 10), queries)
    row["search_1thread_p50_ms"] = percentile(one_thread, 0.5)
    faiss.omp_set_num_threads(threads)
    row["recall@10"], row["recall_s"] = timed(lambda: recall_at_k(idx, queries, k=10))
    if idx.mode == "ivf":
        # Headroom: latency and recall if the data needed more probes than calibration chose.
        chosen = idx.nprobe
        for nprobe in sorted({16, 64, 256} - {chosen}):
            idx._index.nprobe = nprobe
            ms = latencies_ms(lambda q: idx.search(q, 10), queries)
            row[f"nprobe{nprobe}_p50_ms"] = percentile(ms, 0.5)
            row[f"nprobe{nprobe}_recall@10"] = recall_at_k(idx, queries, k=10)
        idx._index.nprobe = chosen

    # Edits: one vector at a time, as an edit in the store is.
    new_keys = iter(range(n, n + len(extra)))
    adds = latencies_ms(lambda v: idx.add([next(new_keys)], v[None]), extra[:200])
    row.update(summary("add", adds))
    replace = iter(range(0, 2 * 200, 2))
    row["replace_p50_ms"] = percentile(
        latencies_ms(lambda v: idx.add([next(replace)], v[None]), extra[200:400]), 0.5)
    doomed = iter(range(1, n, 2))
    row.update(summary("delete", latencies_ms(lambda _: idx.remove([next(doomed)]), range(200))))
    # Bring tombstones to just under the compaction trigger, then search through them.
    target = int(0.095 * idx.stats()["stored"]) - idx.tombstones
    idx.remove([next(doomed) for _ in range(max(0, target))])
    row["tombstone_share"] = idx.tombstones / idx.stats()["stored"]
    row["search_tomb_p50_ms"] = percentile(latencies_ms(lambda q: idx.search(q, 10), queries), 0.5)
    row["recall@10_tomb"] = recall_at_k(idx, queries, k=10)
    if idx.mode == "ivf":
        row.update(try_selector(idx, queries))
    # The delete that crosses 10 % compacts (O(tombstones) removals from the lists).
    more = [next(doomed) for _ in range(int(0.01 * n) + 2)]
    _, row["compact_s"] = timed(lambda: idx.remove(more))
    row["tombstones_after"] = idx.tombstones
    idx.compact_fraction = 0.0
    row["delete_physical_p50_ms"] = percentile(
        latencies_ms(lambda _: idx.remove([next(doomed)]), range(200)), 0.5)
    idx.compact_fraction = 0.1

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "dense.faiss"
        _, row["save_s"] = timed(lambda: idx.save(path))
        row["disk_mb"] = sum(p.stat().st_size for p in Path(tmp).iterdir()) / 2**20
        loaded, row["load_s"] = timed(lambda: DenseIndex.load(path, DIM))
        row["load_same"] = loaded.search(queries[0], 10) == idx.search(queries[0], 10)
    row["peak_rss_mb"] = peak_rss_mb()
    return row


COLUMNS = ["n", "mode", "nlist", "nprobe", "build_s", "search_p50_ms", "search_p95_ms",
           "search_k50_p50_ms", "search_1thread_p50_ms", "recall@10", "add_p50_ms",
           "replace_p50_ms", "delete_p50_ms", "search_tomb_p50_ms", "recall@10_tomb",
           "compact_s", "delete_physical_p50_ms", "save_s", "load_s", "disk_mb", "rss_mb",
           "peak_rss_mb"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--approximate-above", type=int, default=DenseIndex(DIM).approximate_above)
    parser.add_argument("--nlist-factor", type=float, default=DenseIndex(DIM).nlist_factor)
    parser.add_argument("--real", help="an .npy of (n, 384) normalised float32 embeddings")
    parser.add_argument("--real-queries", help="an .npy of query embeddings (with --real)")
    parser.add_argument("--out", default=str(ROOT / "eval" / "results" / "bench_dense.json"))
    parser.add_argument("--worker-size", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.real and not args.real_queries:
        parser.error("--real needs --real-queries")

    if args.worker_size:
        print(json.dumps(bench_size(args, args.worker_size)))  # noqa: T201
        return

    rows = []
    for n in (int(s) for s in args.sizes.split(",")):
        cmd = [sys.executable, __file__, "--worker-size", str(n), "--queries", str(args.queries),
               "--approximate-above", str(args.approximate_above),
               "--nlist-factor", str(args.nlist_factor)]
        if args.real:
            cmd += ["--real", args.real, "--real-queries", args.real_queries]
        start = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            sys.stderr.write(proc.stderr)
            msg = f"the {n} run failed"
            raise SystemExit(msg)
        row = json.loads(proc.stdout.strip().splitlines()[-1])
        row["wall_s"] = time.perf_counter() - start
        rows.append(row)
        sys.stderr.write(f"{n}: done in {row['wall_s']:.0f} s\n")

    data = args.real or DATA
    title = (f"Dense index benchmark ({data}; approximate_above={args.approximate_above}; "
             f"machine: {machine()['cpus']} CPUs)\n")
    print(title)  # noqa: T201
    print(table(rows, COLUMNS))  # noqa: T201
    write_json(Path(args.out), {"machine": machine(), "data": data,
                                "approximate_above": args.approximate_above, "rows": rows})


if __name__ == "__main__":
    main()
