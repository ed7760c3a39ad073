"""Benchmark answering over Ray: questions/s of 1 and 2 workers, cold first call vs warm later calls.

    python eval/bench_ray.py [--corpus corpora/demo] [--store DIR] [--questions 48] [--calls 3]
        [--workers 1,2] [--runtime auto] [--out eval/results/bench_ray.json]

Builds a store of the corpus with the real embedder (all-MiniLM-L6-v2) unless ``--store``
names one, starts a local Ray instance on this machine's cores, and for each worker count
opens an :class:`~rag.integrations.ray.AnswerPool` (gemma-3-270m, one core and one
generator context per worker) and answers the same ``--questions`` demo questions
``--calls`` times:

* ``cold``: starting the actors plus the first call, in which every actor loads its
  embedder and generator. Before the pool, *every* ``ray_answer_many`` call cost this.
* ``warm``: the later calls on the same actors (median), the cost of a call now.

Every call asks other questions (a pipeline answers a question it has seen from its cache).

The in-process ``Pipeline.answer_many`` on the same questions (warm, no Ray) is the
reference, and each actor's resident memory (``VmRSS``) is read for sizing a pool.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, median, table, write_json  # noqa: E402

from rag.integrations.ray import AnswerPool  # noqa: E402
from rag.memory.store import Store  # noqa: E402
from rag.models import SentenceTransformerEmbedder, load_generator  # noqa: E402
from rag.pipeline import Pipeline, PipelineConfig  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def rss_mb(pid: int) -> float:
    """Resident memory of a process on this machine, from /proc (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text(encoding="utf-8").splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def generator_factory(runtime: str) -> functools.partial:
    # One core per worker: one llama.cpp context on one thread (Ray reserves 1 CPU each).
    if runtime == "transformers":
        return functools.partial(load_generator, "gemma-3-270m", runtime="transformers")
    return functools.partial(load_generator, "gemma-3-270m", runtime=runtime, n_contexts=1, n_threads=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, default=ROOT / "corpora" / "demo")
    parser.add_argument("--store", type=Path, default=None, help="an existing store (default: build one)")
    parser.add_argument("--questions", type=int, default=48, help="questions per call")
    parser.add_argument("--calls", type=int, default=3, help="calls per pool (the first is cold)")
    parser.add_argument("--workers", default="1,2", help="worker counts, comma-separated")
    parser.add_argument("--runtime", default="auto", choices=["auto", "llama.cpp", "transformers"])
    parser.add_argument("--out", type=Path, default=ROOT / "eval" / "results" / "bench_ray.json")
    args = parser.parse_args()
    if args.calls < 2:
        parser.error("--calls must be at least 2 (one cold, one warm)")

    import ray

    queries = [json.loads(line)["text"] for line in (args.corpus / "queries.jsonl").read_text().splitlines()]
    # Each call asks other questions: a pipeline answers a question it has seen from its cache.
    sets = [queries[i * args.questions : (i + 1) * args.questions] for i in range(args.calls)]
    questions = sets[0]
    if len(sets[-1]) < args.questions or len(queries) < (args.calls + 1) * args.questions:
        parser.error(f"{len(queries)} questions are too few for --calls {args.calls} x --questions {args.questions}")
    tmp = tempfile.TemporaryDirectory(prefix="bench-ray-")
    store_path = args.store or Path(tmp.name) / "store"
    embedder = SentenceTransformerEmbedder(show_progress=False)
    with Store(store_path, embedder) as store:
        if args.store is None:
            store.ingest(args.corpus, show_progress=False)
        passages = len(store)
        generator = generator_factory(args.runtime)()
        pipeline = Pipeline(store, generator, PipelineConfig())
        pipeline.answer_many(queries[-4:])  # load the models
        start = time.perf_counter()
        pipeline.answer_many(sets[1])
        local_s = time.perf_counter() - start
        runtime = generator.runtime

    start = time.perf_counter()
    ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False)
    ray_init_s = time.perf_counter() - start
    rows = [{"setup": "in-process Pipeline (no Ray)", "workers": 0, "warm_s": local_s,
             "warm_q_per_s": len(questions) / local_s}]
    try:
        for workers in [int(w) for w in args.workers.split(",")]:
            start = time.perf_counter()
            pool = AnswerPool(store_path, generator_factory=generator_factory(args.runtime), num_workers=workers,
                              pipeline_config=PipelineConfig(), batch_size=4, show_progress=False)
            with pool:
                start_s = time.perf_counter() - start
                times = []
                for batch in sets:
                    t0 = time.perf_counter()
                    answers = pool.answer_many(batch)
                    times.append(time.perf_counter() - t0)
                    if len(answers) != len(batch):
                        msg = f"{len(answers)} answers for {len(batch)} questions"
                        raise SystemExit(msg)
                rss = [rss_mb(pid) for pid in pool.pids]
            cold = start_s + times[0]
            warm = median(times[1:])
            rows.append({"setup": f"AnswerPool, {workers} worker{'s' if workers > 1 else ''}", "workers": workers,
                         "actor_start_s": start_s, "cold_s": cold, "cold_q_per_s": len(questions) / cold,
                         "warm_s": warm, "warm_q_per_s": len(questions) / warm, "warm_over_cold": cold / warm,
                         "actor_rss_mb": max(rss), "calls_s": times})
    finally:
        ray.shutdown()
        tmp.cleanup()

    columns = ["setup", "actor_start_s", "cold_s", "cold_q_per_s", "warm_s", "warm_q_per_s", "warm_over_cold",
               "actor_rss_mb"]
    print(f"{len(questions)} demo questions per call, {passages} passages, gemma-3-270m ({runtime}), "
          f"all-MiniLM-L6-v2, default PipelineConfig; ray.init {ray_init_s:.1f} s\n")
    print(table(rows, columns))
    write_json(args.out, {"machine": machine(), "questions_per_call": len(questions), "passages": passages,
                          "runtime": runtime, "calls": args.calls, "ray_init_s": ray_init_s, "rows": rows})
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
