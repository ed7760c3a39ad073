"""Reader accuracy with the gold passage only, and what each reading costs.

For every reader mode (``generate``: the generator's short answer to the reader's prompt;
``extractive``: today's rule-based extraction, generation as its fallback; ``likelihood``:
evidence spans scored by the generator) it reads each question with its gold passage and
counts a hit when the gold answer is contained in the reading (case-insensitive, at word
boundaries: :func:`rag.metrics.contains_answer`). Sets:

* ``nq``: PoisonedRAG/RAGDefender NQ targets (``--nq-targets``, a JSON list with
  ``question`` and ``correct answer``) with line i of ``--nq-gold`` as target i's passage;
* ``realtimeqa``: RobustRAG's RealtimeQA (``--realtimeqa``) with, as gold passage, the
  first context snippet that contains a correct answer (questions with none are skipped).

It also times the scoring call alone (``continuation_logprobs`` on each question's
candidates): ms per question and per candidate, for every runtime given.

    python eval/bench_reader.py --nq-targets ../shared/data/ragdefender_targets_nq.json \\
        --nq-gold ../shared/data/ragdefender_golden_nq.txt \\
        --realtimeqa ../shared/data/robustrag_realtimeqa_dev.json \\
        [--limit 100] [--runtimes llama.cpp,transformers] [--modes generate,extractive,likelihood] \\
        [--out eval/results/bench_reader.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, median, table, write_json  # noqa: E402

from rag.metrics import contains_answer  # noqa: E402
from rag.models import load_generator  # noqa: E402
from rag.stages.candidates import candidates  # noqa: E402
from rag.stages.read import ANSWER_END, Reader  # noqa: E402
from rag.types import Passage  # noqa: E402


def nq_set(targets: Path, gold: Path, limit: int) -> list[tuple[str, Passage, list[str]]]:
    items = json.loads(targets.read_text(encoding="utf-8"))
    lines = gold.read_text(encoding="utf-8").splitlines()
    return [(t["question"], Passage(f"nq{i}", lines[i]), [t["correct answer"]]) for i, t in enumerate(items)][:limit]


def realtimeqa_set(path: Path, limit: int) -> list[tuple[str, Passage, list[str]]]:
    out = []
    for n, item in enumerate(json.loads(path.read_text(encoding="utf-8"))):
        golds = list(item["correct answer"])
        snippet = next((c for c in item["context"] if contains_answer(f"{c['title']}. {c['text']}", golds)), None)
        if snippet is not None:
            out.append((item["question"], Passage(f"rt{n}", snippet["text"], snippet["title"]), golds))
    return out[:limit]


def run_mode(gen, mode: str, data) -> dict:
    reader = Reader(gen, max_passages=1, mode=mode)
    hits, ms, rows, methods = 0.0, [], [], {}
    for question, passage, golds in data:
        start = time.perf_counter()
        reading = reader.read(question, [passage])
        ms.append((time.perf_counter() - start) * 1000)
        hit = contains_answer(reading.text, golds)
        hits += hit
        methods[reading.method] = methods.get(reading.method, 0) + 1
        rows.append({"question": question, "gold": golds, "reading": reading.text, "method": reading.method,
                     "hit": hit})
    return {"accuracy": hits / max(1, len(data)), "ms_median": median(ms), "ms_mean": sum(ms) / max(1, len(ms)),
            "methods": methods, "n": len(data), "items": rows}


def scoring_cost(gen, data, keep: int | None) -> dict:
    """The scoring call alone, on the reader's prompt and candidates."""
    ms, n_cands = [], []
    for question, passage, _ in data:
        found = candidates(question, [passage.full_text])
        if not found:
            continue
        item = (Reader.context_prompt(question, [passage]), [f" {c}{ANSWER_END}" for c in found])
        start = time.perf_counter()
        gen.continuation_logprobs([item], keep=keep)
        ms.append((time.perf_counter() - start) * 1000)
        n_cands.append(len(found))
    total = sum(n_cands) or 1
    return {"keep": keep, "ms_per_question": sum(ms) / max(1, len(ms)), "candidates_per_question":
            total / max(1, len(n_cands)), "ms_per_candidate": sum(ms) / total}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--nq-targets", type=Path)
    ap.add_argument("--nq-gold", type=Path)
    ap.add_argument("--realtimeqa", type=Path)
    ap.add_argument("--limit", type=int, default=100)
    ap.add_argument("--model", default="gemma-3-270m")
    ap.add_argument("--runtimes", default="auto", help="comma-separated: auto, llama.cpp, transformers")
    ap.add_argument("--modes", default="generate,extractive,likelihood")
    ap.add_argument("--cost-limit", type=int, default=20, help="questions per set timed for the scoring cost")
    ap.add_argument("--out", type=Path, default=Path("eval/results/bench_reader.json"))
    args = ap.parse_args(argv)
    sets = {}
    if args.nq_targets and args.nq_gold:
        sets["nq"] = nq_set(args.nq_targets, args.nq_gold, args.limit)
    if args.realtimeqa:
        sets["realtimeqa"] = realtimeqa_set(args.realtimeqa, args.limit)
    if not sets:
        ap.error("give --nq-targets with --nq-gold, or --realtimeqa")
    results, rows, cost_rows = {"machine": machine(), "model": args.model, "runs": []}, [], []
    for runtime in args.runtimes.split(","):
        gen = load_generator(args.model, runtime=runtime)
        gen.generate(["Warm-up:"], max_new_tokens=1)  # load outside the timings
        for name, data in sets.items():
            for mode in filter(None, args.modes.split(",")):
                res = run_mode(gen, mode, data)
                results["runs"].append({"runtime": gen.runtime, "set": name, "mode": mode, **res})
                rows.append({"runtime": gen.runtime, "set": name, "mode": mode, "n": res["n"],
                             "accuracy": res["accuracy"], "ms/question (median)": res["ms_median"],
                             "methods": " ".join(f"{k}:{v}" for k, v in sorted(res["methods"].items()))})
                print(table(rows[-1:], list(rows[-1])), flush=True)  # noqa: T201
            for keep in (None, Reader(gen).keep):
                cost = scoring_cost(gen, data[: args.cost_limit], keep)
                results["runs"].append({"runtime": gen.runtime, "set": name, "scoring_cost": cost})
                cost_rows.append({"runtime": gen.runtime, "set": name, **cost})
    print()  # noqa: T201
    if rows:
        print(table(rows, list(rows[0])))  # noqa: T201
    print()  # noqa: T201
    print(table(cost_rows, list(cost_rows[0])))  # noqa: T201
    write_json(args.out, results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
