"""Benchmark the BM25 index (rag.memory.sparse) on a synthetic Zipf corpus.

The corpus is seeded and synthetic: a Zipf-distributed vocabulary (``--vocab`` words,
exponent ``--zipf``) whose top ranks are real stopwords, with a few content words among
them so that some terms occur in 10-30 % of the passages; passages of 20-80 words.
Two query sets of 5-12 words: ``zipf`` (words drawn from the same distribution) and
``passage`` (half the words taken from one passage, as a question about it would be).

For each size it measures, in a fresh process (so RSS is per run): build time, query
p50/p95, single-document add, query right after an add (an edit followed by a question),
single remove, compact, save/load time, size on disk and the RSS the index adds. For
comparison, ``bm25s`` (method="lucene"; it has no incremental add: an edit is a rebuild)
and, at 10k only, ``rank_bm25.BM25Okapi``, on the same passages and terms.

    python eval/bench_sparse.py [--sizes 10000,100000,1000000] [--queries 200] [--k 50]
        [--impl path/to/sparse.py --label before] [--engines index,bm25s,rank_bm25]
        [--out eval/results/bench_sparse.json]

``--impl`` benchmarks another version of the module (e.g. ``git show
HEAD:rag/memory/sparse.py > /tmp/old.py``); ``--merge`` keeps the rows of other labels
already in ``--out``. Prints a markdown table and writes JSON.
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
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
from rag.text import STOPWORDS, tokenize  # noqa: E402

# Most frequent English function words, in rough frequency order; all are STOPWORDS.
TOP_STOPWORDS = """the of and to in a is was for on as with by that it from at his an were
    are which be this has or had its their but not have he they been who her she
    i you we there when what would so into can will if how""".split()
# Content words among the top ranks: df of roughly 30, 17, 12 and 10 % of the passages.
FREQUENT_CONTENT_RANKS = (10, 20, 30, 40)
BATCH = 4096  # the store adds in batches of this size


# -- synthetic data -------------------------------------------------------------------------

def make_vocab(size: int) -> list[str]:
    """Word of each Zipf rank: stopwords at the top, made-up words (CV syllables) elsewhere."""
    cons, vows = "bdfgklmnprstvz", "aeiou"
    syllables = [c + v for c in cons for v in vows]
    words: list[str] = []
    seen = set(STOPWORDS)
    i = len(syllables)  # skip one-syllable words: short ones collide with stopwords
    while len(words) < size:
        n, parts = i, []
        while n:
            n, r = divmod(n, len(syllables))
            parts.append(syllables[r])
        word = "".join(reversed(parts))
        i += 1
        if word not in seen:
            seen.add(word)
            words.append(word)
    stops = iter(TOP_STOPWORDS)
    content = iter(words)
    vocab = []
    for rank in range(size):
        top = rank < len(TOP_STOPWORDS) + len(FREQUENT_CONTENT_RANKS)
        vocab.append(next(stops) if top and rank not in FREQUENT_CONTENT_RANKS else next(content))
    return vocab


class Corpus:
    """Seeded synthetic passages as word ids, rendered to text on demand."""

    def __init__(self, vocab_size: int, zipf: float, seed: int) -> None:
        self.vocab = make_vocab(vocab_size)
        weights = 1.0 / np.arange(1, vocab_size + 1) ** zipf
        self.cdf = np.cumsum(weights / weights.sum())
        self.seed = seed
        self.is_stop = np.array([w in STOPWORDS for w in self.vocab])

    def draw(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return np.minimum(np.searchsorted(self.cdf, rng.random(n)), len(self.vocab) - 1)

    def passages(self, n: int, stream: int) -> tuple[np.ndarray, np.ndarray]:
        """Word ids (flat) and offsets of ``n`` passages of 20-80 words."""
        rng = np.random.default_rng([self.seed, stream])
        lengths = rng.integers(20, 81, size=n)
        offsets = np.concatenate([[0], np.cumsum(lengths)])
        return self.draw(rng, int(offsets[-1])), offsets

    def texts(self, ids: np.ndarray, offsets: np.ndarray) -> list[str]:
        vocab, flat = self.vocab, ids.tolist()
        out = []
        for lo, hi in zip(offsets[:-1].tolist(), offsets[1:].tolist()):
            words = [vocab[i] for i in flat[lo:hi]]
            words[0] = words[0].capitalize()
            out.append(" ".join(words) + ".")
        return out

    def token_lists(self, ids: np.ndarray, offsets: np.ndarray) -> list[list[str]]:
        """What ``tokenize`` gives for each passage, sharing the vocabulary's str objects."""
        vocab, flat, stop = self.vocab, ids.tolist(), self.is_stop.tolist()
        return [[vocab[i] for i in flat[lo:hi] if not stop[i]]
                for lo, hi in zip(offsets[:-1].tolist(), offsets[1:].tolist())]

    def queries(self, n: int, ids: np.ndarray, offsets: np.ndarray) -> dict[str, list[str]]:
        rng = np.random.default_rng([self.seed, 99])
        zipf = []
        for _ in range(n):
            words = [self.vocab[i] for i in self.draw(rng, int(rng.integers(5, 13)))]
            zipf.append(" ".join(words).capitalize() + "?")
        passage = []
        for _ in range(n):
            doc = int(rng.integers(0, len(offsets) - 1))
            own = ids[offsets[doc]:offsets[doc + 1]]
            length = int(rng.integers(5, 13))
            mine = rng.choice(own, size=min(len(own), length // 2), replace=False)
            drawn = self.draw(rng, length - len(mine))
            words = [self.vocab[i] for i in np.concatenate([mine, drawn])]
            rng.shuffle(words)
            passage.append(" ".join(words).capitalize() + "?")
        return {"zipf": zipf, "passage": passage}


# -- measurement helpers ----------------------------------------------------------------------

def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def latencies_ms(fn, items, cpu: list[float] | None = None) -> list[float]:
    """Wall-clock milliseconds of ``fn(item)`` per item; CPU time into ``cpu``.

    CPU time is the process's (bm25s works in a helper thread): unlike wall-clock time,
    it hardly moves when other jobs share the machine's cores.
    """
    out = []
    for item in items:
        start, start_cpu = time.perf_counter(), time.process_time()
        fn(item)
        out.append(1000 * (time.perf_counter() - start))
        if cpu is not None:
            cpu.append(1000 * (time.process_time() - start_cpu))
    return out


def summary(prefix: str, values: list[float]) -> dict[str, float]:
    return {f"{prefix}_p50_ms": percentile(values, 0.5),
            f"{prefix}_p95_ms": percentile(values, 0.95)}


LOADED_RSS = """
import sys, gc
sys.path[:0] = [sys.argv[3], sys.argv[4]]
from pathlib import Path
from bench_sparse import load_impl, rss_mb
cls = load_impl(sys.argv[2] or None)
gc.collect()
base = rss_mb()
index = cls.load(Path(sys.argv[1]))
gc.collect()
print(rss_mb() - base)
"""


def loaded_rss_mb(folder: Path, impl: str | None) -> float:
    """RSS an index loaded from ``folder`` takes, measured in a fresh process."""
    proc = subprocess.run([sys.executable, "-c", LOADED_RSS, str(folder), impl or "",
                           str(Path(__file__).resolve().parent), str(ROOT)],
                          capture_output=True, text=True, check=True)
    return float(proc.stdout.strip().splitlines()[-1])


def folder_mb(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 2**20


def load_impl(path: str | None):
    if not path:
        from rag.memory.sparse import BM25Index

        return BM25Index
    spec = importlib.util.spec_from_file_location("bench_sparse_impl", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.BM25Index


# -- engines ------------------------------------------------------------------------------------

def bench_index(args, corpus: Corpus, n: int) -> dict:
    BM25Index = load_impl(args.impl)
    ids, offsets = corpus.passages(n, stream=0)
    texts = corpus.texts(ids, offsets)
    queries = corpus.queries(args.queries, ids, offsets)
    extra_ids, extra_off = corpus.passages(300, stream=1)
    extra = corpus.texts(extra_ids, extra_off)
    gc.collect()
    row: dict = {"engine": f"BM25Index ({args.label})", "n": n}
    base = rss_mb()

    def build():
        idx = BM25Index()
        for lo in range(0, n, BATCH):
            idx.add(list(range(lo, min(n, lo + BATCH))), texts[lo:lo + BATCH])  # noqa: F821 (build runs before texts is deleted)
        return idx

    idx, row["build_s"] = timed(build)
    gc.collect()
    row["rss_build_mb"] = rss_mb() - base  # the texts are in base, and still alive
    del texts
    k = args.k

    def search(q):
        return idx.search(q, k)

    for q in queries["zipf"][:20]:
        search(q)  # warm-up
    cpu: list[float] = []
    row.update(summary("query", latencies_ms(search, queries["zipf"], cpu)))
    row.update(summary("query_cpu", cpu))
    row["query_passage_p50_ms"] = percentile(latencies_ms(search, queries["passage"]), 0.5)
    row.update(summary("add", latencies_ms(lambda i: idx.add([n + i], [extra[i]]), range(200))))
    # An edit followed by a question: the query right after each single add.
    after_add = []
    for i, q in enumerate(queries["zipf"][:100]):
        idx.add([n + 200 + i], [extra[200 + i]])
        after_add += latencies_ms(search, [q])
    row["query_after_add_p50_ms"] = percentile(after_add, 0.5)
    row.update(summary("remove", latencies_ms(lambda i: idx.remove([n + i]), range(300))))
    rng = np.random.default_rng([args.seed, 7])
    idx.remove(rng.choice(n, size=n // 100, replace=False).tolist())
    row["query_tombstones_p50_ms"] = percentile(latencies_ms(search, queries["zipf"][:100]), 0.5)
    _, row["compact_s"] = timed(idx.compact)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        _, row["save_s"] = timed(lambda: idx.save(folder))
        row["disk_mb"] = folder_mb(folder)
        loaded, row["load_s"] = timed(lambda: BM25Index.load(folder))
        row["rss_loaded_mb"] = loaded_rss_mb(folder, args.impl)
    for q in queries["zipf"][:10]:
        got, want = loaded.search(q, k), idx.search(q, k)
        if [key for key, _ in got] != [key for key, _ in want]:
            raise SystemExit(f"loaded index disagrees with the saved one on {q!r}")
    row["peak_rss_mb"] = peak_rss_mb()
    return row


def bench_bm25s(args, corpus: Corpus, n: int) -> dict:
    import bm25s

    ids, offsets = corpus.passages(n, stream=0)
    queries = corpus.queries(args.queries, ids, offsets)
    gc.collect()
    row: dict = {"engine": f"bm25s {bm25s.__version__}", "n": n}
    base = rss_mb()

    def build():
        # The same terms as BM25Index (tokenize), so the time includes tokenising the text.
        tokens = [tokenize(t) for t in corpus.texts(ids, offsets)]
        retriever = bm25s.BM25(method="lucene", k1=1.2, b=0.75)
        retriever.index(tokens, show_progress=False)
        return retriever

    retriever, row["build_s"] = timed(build)
    gc.collect()
    row["rss_build_mb"] = rss_mb() - base
    k = args.k

    def search(q):
        return retriever.retrieve([tokenize(q)], k=k, show_progress=False, n_threads=1)

    for q in queries["zipf"][:20]:
        search(q)
    cpu: list[float] = []
    row.update(summary("query", latencies_ms(search, queries["zipf"], cpu)))
    row.update(summary("query_cpu", cpu))
    row["query_passage_p50_ms"] = percentile(latencies_ms(search, queries["passage"]), 0.5)
    row["note"] = "no incremental add/remove: an edit is a rebuild (build_s)"
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        _, row["save_s"] = timed(lambda: retriever.save(str(folder)))
        row["disk_mb"] = folder_mb(folder)
        _, row["load_s"] = timed(lambda: bm25s.BM25.load(str(folder)))
    row["peak_rss_mb"] = peak_rss_mb()
    return row


def bench_rank_bm25(args, corpus: Corpus, n: int) -> dict:
    from rank_bm25 import BM25Okapi

    ids, offsets = corpus.passages(n, stream=0)
    queries = corpus.queries(args.queries, ids, offsets)
    tokens = corpus.token_lists(ids, offsets)
    gc.collect()
    row: dict = {"engine": "rank_bm25.BM25Okapi", "n": n}
    base = rss_mb()
    model, row["build_s"] = timed(lambda: BM25Okapi(tokens))
    row["rss_build_mb"] = rss_mb() - base
    k = args.k

    def search(q):
        scores = model.get_scores(tokenize(q))
        top = np.argpartition(-scores, k)[:k]
        return top[np.argsort(-scores[top])]

    cpu: list[float] = []
    row.update(summary("query", latencies_ms(search, queries["zipf"][:50], cpu)))
    row.update(summary("query_cpu", cpu))
    row["query_passage_p50_ms"] = percentile(latencies_ms(search, queries["passage"][:50]), 0.5)
    row["note"] = "no incremental add/remove; Okapi idf"
    row["peak_rss_mb"] = peak_rss_mb()
    return row


ENGINES = {"index": bench_index, "bm25s": bench_bm25s, "rank_bm25": bench_rank_bm25}
COLUMNS = ["engine", "n", "build_s", "query_p50_ms", "query_p95_ms", "query_cpu_p50_ms",
           "query_cpu_p95_ms", "query_passage_p50_ms", "query_after_add_p50_ms",
           "query_tombstones_p50_ms", "add_p50_ms", "add_p95_ms", "remove_p50_ms", "compact_s",
           "save_s", "load_s", "disk_mb", "rss_build_mb", "rss_loaded_mb", "peak_rss_mb"]


def worker(args) -> None:
    corpus = Corpus(args.vocab, args.zipf, args.seed)
    row = ENGINES[args.worker_engine](args, corpus, args.worker_size)
    print(json.dumps(row))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--engines", default="index,bm25s,rank_bm25")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--k", type=int, default=50, help="the store fetches max(4k, 50)")
    parser.add_argument("--vocab", type=int, default=100_000)
    parser.add_argument("--zipf", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--impl", help="a sparse.py to benchmark instead of rag.memory.sparse")
    parser.add_argument("--label", default="current")
    parser.add_argument("--rank-bm25-max", type=int, default=10_000,
                        help="largest size for rank_bm25")
    parser.add_argument("--out", type=Path, default=ROOT / "eval/results/bench_sparse.json")
    parser.add_argument("--merge", action="store_true", help="keep rows of other labels in --out")
    parser.add_argument("--worker-engine", help=argparse.SUPPRESS)
    parser.add_argument("--worker-size", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker_engine:
        worker(args)
        return
    sizes = [int(s) for s in args.sizes.split(",")]
    engines = args.engines.split(",")
    rows = []
    for n in sizes:
        for engine in engines:
            if engine == "rank_bm25" and n > args.rank_bm25_max:
                continue
            cmd = [sys.executable, __file__, "--worker-engine", engine, "--worker-size", str(n),
                   "--queries", str(args.queries), "--k", str(args.k), "--vocab", str(args.vocab),
                   "--zipf", str(args.zipf), "--seed", str(args.seed), "--label", args.label]
            if args.impl:
                cmd += ["--impl", args.impl]
            print(f"[bench_sparse] {engine} n={n} ...", file=sys.stderr, flush=True)
            start = time.perf_counter()
            proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
            if proc.returncode != 0:
                print(proc.stderr, file=sys.stderr)
                raise SystemExit(f"{engine} at n={n} failed")
            row = json.loads(proc.stdout.strip().splitlines()[-1])
            row["label"] = args.label if engine == "index" else "baseline"
            rows.append(row)
            print(f"[bench_sparse]   done in {time.perf_counter() - start:.0f} s", file=sys.stderr)
    if args.merge and args.out.exists():
        old = json.loads(args.out.read_text(encoding="utf-8")).get("rows", [])
        done = {(r["engine"], r["n"]) for r in rows}
        rows = [r for r in old if (r["engine"], r["n"]) not in done] + rows
        rows.sort(key=lambda r: (r["n"], r["engine"]))
    config = {k: getattr(args, k) for k in ("queries", "k", "vocab", "zipf", "seed")}
    write_json(args.out, {"machine": machine(), "config": config, "rows": rows})
    print(table(rows, COLUMNS))


if __name__ == "__main__":
    main()
