"""Benchmark the retrieval backends: LocalIndex (FAISS + BM25) against QdrantIndex in local mode.

    python eval/bench_qdrant.py [--passages 10000] [--queries 200] [--qdrant-queries 30]
        [--disk-passages 1000] [--out eval/results/bench_qdrant.json]

Synthetic passages (``SyntheticText`` of ``bench_memory.py``, seeded) with the fake
``hash-384`` embedder; the vectors are computed once, outside every timing, and each index
is fed directly through the :class:`~rag.memory.index.RetrievalIndex` seam, as a store
would feed it, so only the backend's own cost is measured. Per backend:

* add passages/s (batches of 512, each acknowledged: ``wait=True`` for Qdrant);
* edit ms p50/p95: adding one passage and removing another (what a note edit costs);
* hybrid query ms p50/p95 at k=10 (namespace filter on, query embedding excluded);
* hit@10: how often the passage a query was drawn from is in the top 10 (also on the
  queries every backend answered, ``hit@10_firstN``);
* agreement@10 with LocalIndex: mean overlap of the top-10 sets on those queries;
* reopen s: persist, close, open again (what a restarted store pays before its first search).

Qdrant's local mode is the pure-Python engine of qdrant-client: every query checks the
payload filter and scores the sparse vector point by point in Python, and on disk every
point is one SQLite commit. It is what the tests run, not what a Qdrant server costs (a
server has payload indexes, HNSW and an inverted sparse index). So its queries are timed on
the first ``--qdrant-queries`` queries only, and the on-disk variant, whose searches are
those of ``:memory:``, is timed for adds, edits and reopening on ``--disk-passages``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, percentile, table, timed, write_json  # noqa: E402
from bench_memory import SyntheticText  # noqa: E402

from rag.memory.index import IndexBatch, IndexMeta, LocalIndex  # noqa: E402
from rag.testing import HashEmbedder  # noqa: E402

BATCH = 512
N_EDITS = 50
K = 10
SHARED = frozenset({"shared"})


def _batch(keys, vectors, texts) -> IndexBatch:
    return IndexBatch(list(keys), vectors, list(texts), ["shared"] * len(keys), ["passage"] * len(keys))


def bench(name: str, make, meta: IndexMeta, texts, vectors, queries, qvecs, sources,
          reference=None) -> tuple[dict, list[list[int]]]:
    row: dict = {"backend": name, "passages": len(texts), "queries": len(queries)}
    index = make()
    index.open(meta, upto=0)
    start = time.perf_counter()
    for lo in range(0, len(texts), BATCH):
        hi = min(lo + BATCH, len(texts))
        index.add(_batch(range(lo + 1, hi + 1), vectors[lo:hi], texts[lo:hi]))
    row["add_per_s"] = len(texts) / (time.perf_counter() - start)

    latencies, hits, results = [], 0, []
    if queries:
        index.search(queries[0], qvecs[0], K, namespaces=SHARED)  # warm-up
    for q, v, src in zip(queries, qvecs, sources, strict=True):
        found, secs = timed(lambda q=q, v=v: index.search(q, v, K, namespaces=SHARED))
        latencies.append(secs * 1000)
        keys = [key for key, _ in found]
        results.append(keys)
        hits += (src + 1) in keys
        row.setdefault("_hits", []).append((src + 1) in keys)
    if queries:
        row["query_p50_ms"], row["query_p95_ms"] = percentile(latencies, 0.5), percentile(latencies, 0.95)
        row["hit@10"] = hits / len(queries)
    if reference is not None and queries:
        row["agreement@10"] = float(np.mean([len(set(a) & set(b)) / K for a, b in zip(results, reference, strict=False)]))

    edit_ms = []
    top = len(texts)
    for i in range(N_EDITS):
        key = top + 1 + i
        _, secs = timed(lambda i=i, key=key: (index.add(_batch([key], vectors[i : i + 1], [texts[i] + " edited"])),
                                              index.remove([i + 1])))
        edit_ms.append(secs * 1000)
    row["edit_p50_ms"], row["edit_p95_ms"] = percentile(edit_ms, 0.5), percentile(edit_ms, 0.95)

    index.persist(meta, 1)
    if hasattr(index, "close"):
        index.close()
    again = make()
    _, row["reopen_s"] = timed(lambda: again.open(meta, upto=1))
    row["reopened_len"] = len(again)
    if row["reopened_len"] == 0:  # nothing persisted (:memory:): no reopen to time
        del row["reopen_s"]
    if hasattr(again, "close"):
        again.close()
    return row, results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--passages", type=int, default=10_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--qdrant-queries", type=int, default=30, help="queries timed on Qdrant's local mode")
    parser.add_argument("--disk-passages", type=int, default=1000,
                        help="passages for Qdrant's on-disk local mode (adds, edits, reopen)")
    parser.add_argument("--out", type=Path, default=Path("eval/results/bench_qdrant.json"))
    args = parser.parse_args(argv)
    from rag.integrations.qdrant import QdrantIndex

    text = SyntheticText()
    texts = text.passages(args.passages)
    rng = np.random.default_rng(1)
    sources = rng.integers(0, len(texts), size=args.queries).tolist()
    queries = []
    for i in sources:
        words = texts[i].split()
        take = rng.choice(len(words), size=min(len(words), int(rng.integers(5, 12))), replace=False)
        queries.append(" ".join(words[j] for j in sorted(take)))
    embedder = HashEmbedder(384)
    vectors = embedder.embed_documents(texts)
    qvecs = np.stack([embedder.embed_query(q) for q in queries])
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        meta = IndexMeta("bench", embedder.name, embedder.dim, Path(tmp) / "local")
        nq, nd = args.qdrant_queries, args.disk_passages
        backends = [  # name, factory, passages, queries
            ("LocalIndex (FAISS + BM25)", LocalIndex, len(texts), len(queries)),
            ("QdrantIndex local :memory:", lambda: QdrantIndex(location=":memory:"), len(texts), nq),
            # Qdrant counts ranks from 0: 1 / (59 + rank0) is LocalIndex's 1 / (60 + rank1).
            ("QdrantIndex local :memory: rrf_k=59", lambda: QdrantIndex(location=":memory:", rrf_k=59),
             len(texts), nq),
            ("QdrantIndex local on disk", lambda: QdrantIndex(path=Path(tmp) / "qdrant"), nd, 0),
        ]
        reference = None
        for name, make, n, m in backends:
            with warnings.catch_warnings():  # local mode warns past 20k points
                warnings.simplefilter("ignore", UserWarning)
                row, results = bench(name, make, meta, texts[:n], vectors[:n], queries[:m], qvecs[:m],
                                     sources[:m], reference)
            reference = reference or results
            hits = row.pop("_hits", [])
            if hits:  # quality on the queries every backend answered
                row[f"hit@10_first{nq}"] = float(np.mean(hits[:nq]))
            rows.append(row)
            sys.stderr.write(f"{row}\n")
    write_json(args.out, {"machine": machine(), "embedder": "hash-384 (fake)", "k": K, "rows": rows})
    cols = ["backend", "passages", "queries", "add_per_s", "edit_p50_ms", "edit_p95_ms", "query_p50_ms", "query_p95_ms",
            "hit@10", f"hit@10_first{nq}", "agreement@10", "reopen_s"]
    sys.stdout.write(table(rows, cols) + f"\n\nJSON: {args.out}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
