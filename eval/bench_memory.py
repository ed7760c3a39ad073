"""Benchmark the knowledge memory: ingest, edits, hybrid queries, approximate recall, loading.

    python eval/bench_memory.py [--sizes 1000,100000,1000000] [--real-upto 100000]
        [--out eval/results/bench_memory.json]

For each store size it builds a store of synthetic passages (Zipf-distributed vocabulary,
20-60 words, seeded), with the real embedder (all-MiniLM-L6-v2) up to ``--real-upto``
passages and the deterministic ``HashEmbedder`` above (the table says which), then measures:

* ingest passages/s through ``Store.add_passages`` against the raw embedder's sentences/s
  on the same texts (only where the real embedder is used: that ratio is the target);
* edit latency: ``KnowledgeEditor.edit`` plus the index sync that makes it visible, p50/p95,
  with the note embedded live, and with its embedding precomputed (the store's own cost,
  which is what must not grow with the store);
* hybrid query latency (dense + BM25 + fusion + row fetch), query embedding excluded, p50/p95;
* recall@10 of the dense index against exact search (1.0 while it is exact);
* process RSS, and the time to open the store and load its index snapshot.
"""

from __future__ import annotations

import argparse
import gc
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, percentile, table, timed, write_json  # noqa: E402

from rag.memory.editor import KnowledgeEditor  # noqa: E402
from rag.memory.store import Store  # noqa: E402
from rag.types import Passage  # noqa: E402

DEMO = Path(__file__).resolve().parent.parent / "corpora" / "demo" / "corpus.jsonl"
N_EDITS = 200
N_QUERIES = 200


class SyntheticText:
    """Passages and questions over a Zipf vocabulary, with topics, as real text has.

    Each passage is about one of ``topics`` topics: about 60% of its words come from that
    topic's own small vocabulary (Zipf-ranked), the rest from the global Zipf distribution
    (the common words every text shares). Without topics, every passage is the same bag of
    common words plus noise: no embedder, fake or real, gives such text the cluster
    structure that real corpora have, and an approximate (IVF) index must then scan almost
    every list to reach its recall target.

    The vocabulary is the demo corpus's words plus made-up compounds of them, so that the
    embedder's tokenizer sees word pieces of realistic length (``w123``-style tokens would
    split into many pieces and make embedding several times slower than on real text).
    """

    def __init__(self, seed: int = 0, vocab: int = 50_000, topics: int = 2_000,
                 topic_words: int = 300, topic_share: float = 0.6) -> None:
        self.rng = np.random.default_rng(seed)
        base = sorted({w.lower() for line in DEMO.read_text(encoding="utf-8").splitlines()
                       for w in json.loads(line)["text"].split() if w.isalpha()})
        extra = [a + b for a, b in zip(self.rng.choice(base, vocab), self.rng.choice(base, vocab))]
        self.words = np.array(list(dict.fromkeys(base + extra))[:vocab])
        ranks = np.arange(1, len(self.words) + 1)
        self.p = (1.0 / ranks) / (1.0 / ranks).sum()
        # Topic vocabularies come from outside the 1,000 most common words.
        self.topic_vocab = self.rng.integers(1_000, len(self.words), size=(topics, topic_words))
        topic_ranks = np.arange(1, topic_words + 1)
        self.topic_p = (1.0 / topic_ranks) / (1.0 / topic_ranks).sum()
        self.topic_share = topic_share

    def passages(self, n: int) -> list[str]:
        lengths = self.rng.integers(20, 61, size=n)
        total = int(lengths.sum())
        common = self.rng.choice(len(self.words), size=total, p=self.p)
        owner = np.repeat(self.rng.integers(0, len(self.topic_vocab), size=n), lengths)
        topical = self.topic_vocab[owner, self.rng.choice(self.topic_vocab.shape[1], size=total, p=self.topic_p)]
        flat = np.where(self.rng.random(total) < self.topic_share, topical, common)
        out, pos = [], 0
        for length in lengths:
            out.append(" ".join(self.words[flat[pos : pos + length]]))
            pos += length
        return out

    def queries(self, passages: list[str], n: int) -> list[str]:
        picks = self.rng.integers(0, len(passages), size=n)
        queries = []
        for i in picks:
            words = passages[i].split()
            take = self.rng.choice(len(words), size=min(len(words), int(self.rng.integers(5, 12))), replace=False)
            queries.append(" ".join(words[j] for j in sorted(take)))
        return queries


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def bench_size(n: int, real: bool, text: SyntheticText, workdir: Path) -> dict:
    from rag.models import SentenceTransformerEmbedder
    from rag.testing import HashEmbedder

    embedder = SentenceTransformerEmbedder(show_progress=False) if real else HashEmbedder(384)
    row: dict = {"passages": n, "embedder": embedder.name if real else "hash-384 (fake)"}
    texts = text.passages(n)
    passages = [Passage(f"p{i}", t) for i, t in enumerate(texts)]
    path = workdir / f"store-{n}"
    store = Store(path, embedder)
    if real:
        sample = texts[: min(n, 2000)]
        embedder.embed_documents(sample[:64])  # warm-up
        _, raw_s = timed(lambda: embedder.embed_documents(sample))
        row["raw_embed_per_s"] = len(sample) / raw_s
    _, ingest_s = timed(lambda: (store.add_passages(passages, batch_size=1024, show_progress=False),
                                 store.save_indexes()))
    row["ingest_per_s"] = n / ingest_s
    if real:
        row["ingest_vs_raw"] = row["ingest_per_s"] / row["raw_embed_per_s"]

    queries = text.queries(texts, N_QUERIES)
    qvecs = embedder.embed_documents(queries)
    store.search(queries[0], k=10)  # opens indexes
    latencies = []
    for q, v in zip(queries, qvecs):
        store.embedder = _Fixed(embedder, v)  # query embedding excluded from the timing
        _, secs = timed(lambda: store.search(q, k=10))
        latencies.append(secs * 1000)
    store.embedder = embedder
    row["query_p50_ms"], row["query_p95_ms"] = percentile(latencies, 0.5), percentile(latencies, 0.95)
    row["recall@10_dense"] = _recall(store, qvecs)
    row["dense_mode"] = store.index.dense.mode
    row["nprobe"] = store.index.dense.nprobe

    editor = KnowledgeEditor(store)
    notes = [f"Edited fact {i}: the mayor of {text.words[i]} is {text.words[i + 1]}." for i in range(2 * N_EDITS)]
    edit_ms = []
    for note in notes[:N_EDITS]:
        _, secs = timed(lambda: (editor.edit(note), store.sync()))
        edit_ms.append(secs * 1000)
    row["edit_p50_ms"], row["edit_p95_ms"] = percentile(edit_ms, 0.5), percentile(edit_ms, 0.95)
    # The same, with the note's embedding computed beforehand: what the store itself costs.
    vectors = dict(zip(notes[N_EDITS:], embedder.embed_documents(notes[N_EDITS:])))
    store.embedder = _Precomputed(embedder, vectors)
    write_ms = []
    for note in notes[N_EDITS:]:
        _, secs = timed(lambda: (editor.edit(note), store.sync()))
        write_ms.append(secs * 1000)
    store.embedder = embedder
    row["edit_store_p50_ms"], row["edit_store_p95_ms"] = percentile(write_ms, 0.5), percentile(write_ms, 0.95)
    store.close()
    gc.collect()
    row["rss_mb"] = rss_mb()
    start = time.perf_counter()
    reopened = Store(path, embedder)
    reopened.sync()
    row["open_load_s"] = time.perf_counter() - start
    reopened.close()
    return row


class _Fixed:
    """Embedder stand-in that returns a precomputed query vector."""

    def __init__(self, inner, vector):
        self.inner, self.vector = inner, vector
        self.name, self.dim = inner.name, inner.dim

    def embed_query(self, text):
        return self.vector


class _Precomputed:
    """Embedder stand-in that returns precomputed document vectors."""

    def __init__(self, inner, vectors):
        self.inner, self.vectors = inner, vectors
        self.name, self.dim = inner.name, inner.dim

    def embed_documents(self, texts):
        return np.stack([self.vectors[t] for t in texts])


def _recall(store: Store, qvecs: np.ndarray, k: int = 10) -> float:
    dense = store.index.dense
    if dense.mode == "exact":
        return 1.0
    from rag.memory.dense import recall_at_k

    return recall_at_k(dense, qvecs, k=k)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,100000,1000000")
    parser.add_argument("--real-upto", type=int, default=100_000,
                        help="use the real embedder up to this size, the fake one above")
    parser.add_argument("--out", type=Path, default=Path("eval/results/bench_memory.json"))
    args = parser.parse_args(argv)
    text = SyntheticText()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in (int(s) for s in args.sizes.split(",")):
            row = bench_size(n, n <= args.real_upto, text, Path(tmp))
            rows.append(row)
            sys.stderr.write(f"{row}\n")
    write_json(args.out, {"machine": machine(), "rows": rows})
    cols = ["passages", "embedder", "ingest_per_s", "raw_embed_per_s", "ingest_vs_raw", "edit_p50_ms",
            "edit_p95_ms", "edit_store_p50_ms", "edit_store_p95_ms", "query_p50_ms", "query_p95_ms", "dense_mode", "nprobe", "recall@10_dense", "rss_mb", "open_load_s"]
    sys.stdout.write(table(rows, cols) + f"\n\nJSON: {args.out}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
