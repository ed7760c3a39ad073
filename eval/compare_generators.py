"""Choose the default generator: context-following and closed-book answering, measured.

For each model (and runtime) it asks, with the library's own reader prompts:

* ``context``: demo questions about invented entities, with their gold passage as the only
  context (the answer cannot come from memory);
* ``counterfactual``: the demo edits' questions with the edit statement as context (does the
  model follow a context that contradicts the old fact?);
* ``closed_book``: real-knowledge questions, no context (from PoisonedRAG-format targets
  when ``--targets`` is given; the demo's real-knowledge questions otherwise);
* ``gold``: with ``--targets`` and ``--gold``, the NQ question with its gold passage.

A hit is the gold answer contained in the generated answer as whole words
(:func:`rag.metrics.contains_answer`); ``_exact`` columns count answers that are the gold
answer and nothing more (:func:`rag.metrics.exact_match`: the short answer the reader needs).

    python eval/compare_generators.py [--demo corpora/demo] [--targets FILE --gold FILE]
        [--limit 100] [--runtime transformers] [--out eval/results/compare_generators.json]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, table, timed, write_json  # noqa: E402

from rag.metrics import contains_answer, exact_match  # noqa: E402
from rag.stages.read import Reader  # noqa: E402
from rag.types import Passage  # noqa: E402


def jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def demo_sets(demo: Path, limit: int) -> dict[str, list[tuple[str, list[Passage], list[str]]]]:
    corpus = {d["_id"]: d for d in jsonl(demo / "corpus.jsonl")}
    queries = {q["_id"]: q["text"] for q in jsonl(demo / "queries.jsonl")}
    answers = {a["_id"]: a["answers"] for a in jsonl(demo / "answers.jsonl")}
    rel: dict[str, list[str]] = {}
    for line in (demo / "qrels" / "test.tsv").read_text().splitlines()[1:]:
        qid, did, _ = line.split("\t")
        rel.setdefault(qid, []).append(did)
    context, real = [], []
    for qid, text in queries.items():
        if qid not in answers or len(rel.get(qid, [])) != 1:
            continue
        doc = corpus[rel[qid][0]]
        item = (text, [Passage(doc["_id"], doc["text"], doc.get("title", ""))], answers[qid])
        # The demo's real-knowledge questions have ids starting "qr" (corpora/demo/README.md).
        (real if qid.startswith("qr") else context).append(item)
    edits = jsonl(demo / "edits.jsonl")
    counterfactual = [(e["question"], [Passage(e["_id"], e["statement"])], [e["new_answer"]]) for e in edits]
    sets = {"context": context[:limit], "counterfactual": counterfactual[:limit]}
    if real:
        sets["closed_book_demo"] = [(q, [], a) for q, _, a in real[:limit]]
    return sets


def nq_sets(targets: Path, gold: Path | None, limit: int) -> dict[str, list]:
    data = json.loads(targets.read_text(encoding="utf-8"))
    items = list(data.values()) if isinstance(data, dict) else data
    items = items[:limit]
    sets = {"closed_book_nq": [(t["question"], [], [t["correct answer"]]) for t in items]}
    if gold:
        lines = gold.read_text(encoding="utf-8").splitlines()
        sets["gold_nq"] = [(t["question"], [Passage(f"g{i}", lines[i])], [t["correct answer"]])
                           for i, t in enumerate(items) if i < len(lines)]
    return sets


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--demo", type=Path, default=Path("corpora/demo"))
    parser.add_argument("--targets", type=Path, help="PoisonedRAG-format targets JSON")
    parser.add_argument("--gold", type=Path, help="gold passages, one per line, aligned with --targets")
    parser.add_argument("--limit", type=int, default=100)
    parser.add_argument("--models", default="gemma-3-270m,smollm2-135m-instruct")
    parser.add_argument("--runtime", default="transformers")
    parser.add_argument("--out", type=Path, default=Path("eval/results/compare_generators.json"))
    args = parser.parse_args(argv)

    from rag.models import load_generator

    sets = demo_sets(args.demo, args.limit)
    if args.targets:
        sets.update(nq_sets(args.targets, args.gold, args.limit))
    rows, examples = [], {}
    for model in args.models.split(","):
        gen = load_generator(model, runtime=args.runtime)
        reader = Reader(gen, extractive=False)  # the generator alone, not the extractor
        row = {"model": model, "runtime": args.runtime}
        total_s = 0.0
        for name, items in sets.items():
            readings, secs = timed(lambda: reader.read_many([(q, ps) for q, ps, _ in items]))
            total_s += secs
            n = max(1, len(items))
            row[name] = sum(contains_answer(r.text, golds) for r, (_, _, golds) in zip(readings, items)) / n
            row[f"{name}_exact"] = sum(exact_match(r.text, golds) for r, (_, _, golds) in zip(readings, items)) / n
            examples[f"{model}/{name}"] = [(q, r.text, golds) for r, (q, _, golds) in zip(readings[:5], items[:5])]
        row["answers_per_s"] = sum(len(v) for v in sets.values()) / total_s
        rows.append(row)
    sizes = {name: len(items) for name, items in sets.items()}
    write_json(args.out, {"machine": machine(), "sizes": sizes, "rows": rows, "examples": examples})
    cols = ["model", "runtime", *[c for name in sets for c in (name, f"{name}_exact")], "answers_per_s"]
    sys.stdout.write(table(rows, cols) + f"\n\nitems per set: {sizes}\nJSON: {args.out}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
