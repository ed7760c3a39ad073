"""What the detector's vote decides, by the lexicon's rules and by the generator's likelihood.

    python eval/bench_support.py --targets poisonedrag_nq.json --gold ragdefender_golden_nq.txt \
        [--robustrag robustrag_realtimeqa_dev.json] [--offset 0] [--limit 30] [--ratios 0,1,2,4] [-k 5]
        [--supports rules,likelihood] [--out eval/results/bench_support.json]

For every question, the passages a retriever would hand the detector are built without a
store: the gold passage (PoisonedRAG) or the question's real contexts (RobustRAG), and ``r``
of the published poisons as given (no question prefix, so that ``echo`` does not settle it),
ranked by the embedder's cosine to the question, top ``k``; ratio 0 is the clean condition
(no poison). ``--offset`` skips the first questions of each file (development against check). ``PoisonDetector.inspect`` then
decides with ``support="rules"`` and with ``support="likelihood"`` (default models: all-MiniLM-L6-v2
and gemma-3-270m). Per support, domain and ratio the table gives the share of questions
whose decided answer (not contested) holds a correct answer (``right``), the attacker's
(``attacked``), and the share contested (``contested``: the pipeline abstains), and the
detector's time per question (``ms``) beside the undefended reading's (``read_ms``: the
generator writes the answer from the best 3 of the same passages, as ``rag eval poisoning``'s
``undefended`` configuration reads), so that ``ms / read_ms`` bounds what the detector adds
to a question's latency; on clean questions ``wrong`` is a decided answer that is not
right (``attacked`` is then meaningless). ``gold_q`` and ``poison_q`` are the shares of the
shown benign passages and poisons the detector quarantined.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, table, write_json  # noqa: E402

from rag.evaluation.attacks import load_targets  # noqa: E402
from rag.metrics import contains_answer  # noqa: E402
from rag.models import SentenceTransformerEmbedder, load_generator  # noqa: E402
from rag.stages.detect import SUPPORTS, PoisonDetector  # noqa: E402
from rag.stages.read import Reader  # noqa: E402
from rag.types import Passage  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
METRICS = ("right", "attacked", "wrong", "contested", "gold_q", "poison_q")


def _share(quarantined: set[str], shown) -> float:
    shown = list(shown)
    return sum(p in quarantined for p in shown) / len(shown) if shown else 0.0


def _cases(args: argparse.Namespace) -> list[dict]:
    cases = []
    for path, gold in ((args.targets, args.gold), (args.robustrag, None)):
        if path:
            for t in load_targets(path, gold, limit=args.offset + args.limit)[args.offset :]:
                cases.append({"domain": t.format, "question": t.question, "benign": [c.text for c in t.contexts],
                              "poisons": list(t.published), "correct": list(t.accepted), "incorrect": t.incorrect})
    return cases


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--targets", type=Path)
    parser.add_argument("--gold", type=Path)
    parser.add_argument("--robustrag", type=Path)
    parser.add_argument("--offset", type=int, default=0)
    parser.add_argument("--limit", type=int, default=30)
    parser.add_argument("--ratios", default="0,1,2,4")
    parser.add_argument("--supports", default=",".join(SUPPORTS))
    parser.add_argument("-k", type=int, default=5)
    parser.add_argument("--out", type=Path, default=ROOT / "eval" / "results" / "bench_support.json")
    args = parser.parse_args()
    if not args.targets and not args.robustrag:
        parser.error("give --targets (with --gold) and/or --robustrag")
    ratios = [int(r) for r in args.ratios.split(",")]
    embedder = SentenceTransformerEmbedder(show_progress=False)
    generator = load_generator()
    supports = args.supports.split(",")
    detectors = {s: PoisonDetector(embedder, generator=generator, support=s) for s in supports}
    plain = Reader(generator, mode="generate")  # the pipeline's default: its best 3 passages
    rows = []
    cases = _cases(args)
    for n, case in enumerate(cases, 1):
        print(f"{n}/{len(cases)} {case['domain']}", file=sys.stderr, flush=True)
        qv = embedder.embed_documents([case["question"]])[0]
        for ratio in ratios:
            texts = case["benign"] + case["poisons"][:ratio]
            vectors = embedder.embed_documents(texts)
            top = np.argsort(-(vectors @ qv))[: args.k]
            passages = [Passage(f"p{i}", texts[i]) for i in top]
            poison = {f"p{i}" for i in top if i >= len(case["benign"])}
            start = time.perf_counter()
            plain.read(case["question"], passages)
            read_ms = (time.perf_counter() - start) * 1000
            for support, det in detectors.items():
                start = time.perf_counter()
                decision = det.inspect(case["question"], passages)
                ms = (time.perf_counter() - start) * 1000
                answer = "" if decision.contested else decision.aggregate_answer
                right = any(contains_answer(answer, c) for c in case["correct"])
                quarantined = set(decision.quarantined)
                rows.append({"domain": case["domain"], "ratio": ratio, "support": support, "ms": ms, "read_ms": read_ms,
                             "question": case["question"], "answer": decision.aggregate_answer,
                             "contested": decision.contested, "right": right,
                             "attacked": bool(ratio) and contains_answer(answer, case["incorrect"]),
                             "wrong": bool(answer) and not right,
                             "gold_q": _share(quarantined, [p.id for p in passages if p.id not in poison]),
                             "poison_q": _share(quarantined, poison),
                             # what each passage read or speaks for: (poison?, answer, quarantined?)
                             "said": [(v.passage_id in poison, v.answer, v.poisoned) for v in decision.verdicts]})
    summary = []
    for domain in dict.fromkeys(r["domain"] for r in rows):
        for ratio in ratios:
            for support in supports:
                cell = [r for r in rows if (r["domain"], r["ratio"], r["support"]) == (domain, ratio, support)]
                if cell:
                    summary.append({"domain": domain, "ratio": ratio, "support": support, "questions": len(cell),
                                    **{m: sum(r[m] for r in cell) / len(cell) for m in METRICS},
                                    **{m: sum(r[m] for r in cell) / len(cell) for m in ("ms", "read_ms")}})
    print(table(summary, ["domain", "ratio", "support", "questions", *METRICS, "ms", "read_ms"]))
    write_json(args.out, {"machine": machine(), "k": args.k, "offset": args.offset, "summary": summary, "rows": rows})


if __name__ == "__main__":
    main()
