"""Benchmark the poison detector's own cost per question, with and without the stored vectors.

    python eval/bench_detect.py [--corpus corpora/demo] [--limit 200] [-k 10]
        [--out eval/results/bench_detect.json]

Builds a store of the corpus with the real embedder (all-MiniLM-L6-v2), retrieves the top
``k`` passages of each question, then times ``PoisonDetector.inspect_many`` on them one
question at a time (the pipeline's per-question path), with no generator so that the reading
of isolated answers is extraction only and the table shows the detector's embedding and
signal work:

* ``embed``: the detector embeds the question and every retrieved passage (as before the
  store's vectors were reused);
* ``stored``: the request carries the store's vectors (``Store.vectors``), so only the
  question is embedded.

The two decisions are compared too: reusing the vectors must not change what is quarantined.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, median, percentile, table, write_json  # noqa: E402

from rag.memory.store import Store  # noqa: E402
from rag.models import SentenceTransformerEmbedder  # noqa: E402
from rag.stages.detect import DetectionRequest, PoisonDetector  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, default=ROOT / "corpora" / "demo")
    parser.add_argument("--limit", type=int, default=200)
    parser.add_argument("-k", type=int, default=10)
    parser.add_argument("--out", type=Path, default=ROOT / "eval" / "results" / "bench_detect.json")
    args = parser.parse_args()

    queries = [json.loads(line)["text"] for line in (args.corpus / "queries.jsonl").read_text().splitlines()
               if line.strip()][: args.limit]
    embedder = SentenceTransformerEmbedder(show_progress=False)
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(Path(tmp) / "store", embedder)
        store.ingest(args.corpus)
        hits = store.search_many(queries, k=args.k)
        requests = [DetectionRequest(q, tuple(h.passage for h in found)) for q, found in zip(queries, hits, strict=True)]
        stored = [DetectionRequest(r.question, r.passages, known_vectors=store.vectors([p.id for p in r.passages]))
                  for r in requests]
        detector = PoisonDetector(embedder)
        detector.inspect_many(requests[:5])  # warm up the embedder
        rows, decisions = [], {}
        for name, batch in (("embed", requests), ("stored", stored)):
            times, out = [], []
            for request in batch:
                start = time.perf_counter()
                out.append(detector.inspect_many([request])[0])
                times.append((time.perf_counter() - start) * 1000)
            decisions[name] = out
            rows.append({"vectors": name, "questions": len(batch), "ms_p50": median(times),
                         "ms_p95": percentile(times, 0.95), "ms_mean": sum(times) / len(times)})
        store.close()
    same = sum(a.quarantined == b.quarantined and a.aggregate_answer == b.aggregate_answer
               for a, b in zip(decisions["embed"], decisions["stored"], strict=True))
    print(table(rows, ["vectors", "questions", "ms_p50", "ms_p95", "ms_mean"]))
    print(f"same decision (quarantine and aggregate) on {same} of {len(queries)} questions")
    write_json(args.out, {"machine": machine(), "k": args.k, "rows": rows, "same_decisions": same,
                          "questions": len(queries)})


if __name__ == "__main__":
    main()
