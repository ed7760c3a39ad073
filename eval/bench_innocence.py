"""The detector's false positives on clean text of several kinds, beside its recall of poisons:
the plain weighted sum against quarantine by agreement of independent evidence.

    python eval/bench_innocence.py [--nq-limit 25] [--rt-limit 15] [--k 5] [--widen 3]
        [--runtime auto] [--cache FILE] [--sets nq,realtimeqa] [--conditions LIST]
        [--support rules|likelihood] [--out eval/results/bench_innocence.json]

One store per set as the poisoning harness builds it (every target's benign passages; under an
attack every target's poisons), searched densely (all-MiniLM-L6-v2) for each question: the
top ``k`` are inspected by the default :class:`~rag.stages.detect.PoisonDetector` (generator
for isolated answers and perplexity), the next ``k * (widen - 1)`` are the deeper search
(``neighbours`` for the geometry; and, when the decision needs corroboration, inspected as the
pipeline does, the crowd quarantine applied). No filter, no parametric answer, no hybrid
search: the detector alone, on the measurement halves (NQ from target 0, RealtimeQA from 0).

Conditions: ``clean``; the harness's innocence sets ``faq`` (each target's answering passage
opens with its question), ``syndicated`` (two wire copies of it added), ``biomedical`` and
``non_english`` (their own questions, over the NQ store); ``blackbox`` at 1 and 4 poisons per
target. Every verdict is read three ways from one run (the scores are the same):

* ``sum``: the weighted sum without ``geometry``, as before (score >= 0.5, the uncorroborated
  crowd quarantined with no other mark);
* ``agree``: quarantine by agreement (a decisive signal, or two signals at 0.5), no geometry;
* ``agree+geometry``: the default now.

``--support`` is how the detector's vote counts sides (``rules``, the default, or
``likelihood``: the generator's lift; see :mod:`rag.stages.detect.support`).

``clean taken by`` counts, for the clean passages the default takes out, the signals that
read at least the agreement level on each (``crowd``: the uncorroborated-crowd quarantine).
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, table, write_json  # noqa: E402
from bench_geometry import SETS, Embeddings  # noqa: E402

from rag.evaluation.attacks import load_targets, poison_texts  # noqa: E402
from rag.evaluation.poisoning import BIOMEDICAL, NON_ENGLISH, _answering  # noqa: E402
from rag.models import load_generator  # noqa: E402
from rag.stages.detect import SUPPORTS, PoisonDetector  # noqa: E402
from rag.stages.detect.records import AGREEMENT_LEVEL, DECISIVE, DEFAULT_WEIGHTS, DetectionRequest  # noqa: E402
from rag.types import Passage  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
READINGS = ("sum", "agree", "agree+geometry")


def pools(name: str, targets: list, limit: int) -> list[tuple[str, list[Passage], list[tuple[str, set[str]]]]]:
    """(condition, store passages, questions with the ids of their innocence passages)."""
    benign = [c for t in targets for c in t.contexts]
    asked = [(t.question, set()) for t in targets[:limit]]
    answering = {t.id: _answering(t) for t in targets}
    faq = {p.id: Passage(p.id, f"Q: {t.question.strip().rstrip('?')}? A: {p.text}", title=p.title)
           for t in targets for p in [answering[t.id]]}
    copies = [Passage(f"innocent:syndicated:{t.id}:{i}", text, title=p.title)
              for t in targets for p in [answering[t.id]]
              for i, text in enumerate((f"(Wire) {p.text}",
                                        f"{p.text} This story first ran on the wire and is republished with permission."))]
    out = [("clean", benign, asked),
           ("faq", [faq.get(p.id, p) for p in benign],
            [(t.question, {answering[t.id].id}) for t in targets[:limit]]),
           ("syndicated", benign + copies,
            [(t.question, {f"innocent:syndicated:{t.id}:0", f"innocent:syndicated:{t.id}:1"}) for t in targets[:limit]])]
    if name == "nq":
        for cond, cases in (("biomedical", BIOMEDICAL), ("non_english", NON_ENGLISH)):
            own = [Passage(f"innocent:{cond}:{i}", text) for i, (_, _, text) in enumerate(cases)]
            out.append((cond, benign + own, [(q, {p.id}) for (q, _, _), p in zip(cases, own, strict=True)]))
    for ratio in (1, 4):
        poisons = [Passage(f"poison:{t.id}:{i}", text) for t in targets
                   for i, text in enumerate(poison_texts(t, "blackbox", ratio))]
        out.append((f"blackbox x{ratio}", benign + poisons, asked))
    return out


def removed(decision, reading: str, weights: dict[str, float], deeper=None) -> set[str]:
    """The passages a reading takes out: flagged ones, and an uncorroborated crowd."""
    out = set()
    for v in decision.verdicts:
        sig = {s.name: s.value for s in v.signals}
        if reading == "agree+geometry":
            hit = v.poisoned
        else:
            score = min(1.0, sum(weights[n] * x for n, x in sig.items() if n != "geometry"))
            firm = [n for n, x in sig.items() if n != "geometry" and x >= AGREEMENT_LEVEL]
            agreed = len(firm) >= 2 or any(n in DECISIVE for n in firm)
            hit = score >= 0.5 and (reading == "sum" or agreed)
        if hit:
            out.add(v.passage_id)
    if deeper is not None:
        if reading == "sum":
            out |= set(deeper.support)
        elif reading == "agree":
            marked = [p for p in deeper.support
                      if any(s.value >= AGREEMENT_LEVEL for s in deeper.verdict(p).signals if s.name != "geometry")]
            out |= set(deeper.support) if 2 * len(marked) > len(deeper.support) else set()
    return out


def _marks(decision, passage_id: str, crowd: set[str]) -> str:
    """The signals that read at least the agreement level on a passage the default took
    out ("crowd" when the uncorroborated-crowd quarantine took it)."""
    if passage_id in crowd:
        return "crowd"
    firm = sorted(s.name for s in decision.verdict(passage_id).signals if s.value >= AGREEMENT_LEVEL)
    return "+".join(firm) or "score"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nq-limit", type=int, default=25)
    parser.add_argument("--rt-limit", type=int, default=15)
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--widen", type=int, default=3)
    parser.add_argument("--runtime", default="auto")
    parser.add_argument("--cache", type=Path, default=None)
    parser.add_argument("--sets", default="nq,realtimeqa", help="comma-separated: nq, realtimeqa")
    parser.add_argument("--conditions", default="", help="comma-separated conditions to run (default all)")
    parser.add_argument("--support", default="rules", choices=SUPPORTS)
    parser.add_argument("--out", type=Path, default=ROOT / "eval" / "results" / "bench_innocence.json")
    args = parser.parse_args()
    emb = Embeddings(args.cache)
    gen = load_generator(runtime=args.runtime)
    detector = PoisonDetector(emb.model, generator=gen, scorer=gen, support=args.support)
    weights = dict(DEFAULT_WEIGHTS)
    rows = []
    wanted = set(filter(None, args.conditions.split(",")))
    for name, limit in (("nq", args.nq_limit), ("realtimeqa", args.rt_limit)):
        if name not in args.sets.split(","):
            continue
        path, gold, _, _ = SETS[name]
        targets = load_targets(path, gold)
        for cond, store, asked in pools(name, targets, limit):
            if wanted and cond not in wanted:
                continue
            vectors = emb([p.full_text for p in store])
            questions = emb([q for q, _ in asked])
            requests, deep = [], []
            for q, qv in zip(asked, questions, strict=True):
                order = np.argsort(-(vectors @ qv))[: args.k * args.widen]
                found = [store[i] for i in order]
                known = {store[i].id: vectors[i] for i in order}
                requests.append(DetectionRequest(q[0], tuple(found[: args.k]), known_vectors=known,
                                                 neighbours=tuple(found[args.k:])))
                deep.append(DetectionRequest(q[0], tuple(found), known_vectors=known))
            decisions = detector.inspect_many(requests)
            crowded = [i for i, d in enumerate(decisions) if detector.needs_corroboration(d)]
            deeper = dict(zip(crowded, detector.inspect_many([deep[i] for i in crowded]), strict=True))
            counts = {r: {"poison": 0, "clean": 0, "innocent": 0} for r in READINGS}
            marks: Counter[str] = Counter()  # what took each clean passage out, by default
            n = {"poison": 0, "clean": 0, "innocent": 0}
            for i, (request, decision) in enumerate(zip(requests, decisions, strict=True)):
                innocent = asked[i][1]
                d2 = deeper.get(i)
                taken = {r: removed(decision, r, weights, d2) for r in READINGS}
                crowd = set(detector.corroborate(d2, len(deep[i].passages)).uncorroborated) if d2 is not None else set()
                taken["agree+geometry"] |= crowd
                for p in request.passages:
                    kind = "poison" if p.id.startswith("poison:") else "clean"
                    if kind == "clean" and p.id in taken["agree+geometry"]:
                        marks[_marks(decision, p.id, crowd)] += 1
                    n[kind] += 1
                    n["innocent"] += p.id in innocent
                    for r in READINGS:
                        counts[r][kind] += p.id in taken[r]
                        counts[r]["innocent"] += p.id in innocent and p.id in taken[r]
            row = {"set": name, "condition": cond, "questions": len(asked), "poisons": n["poison"],
                   "clean": n["clean"], "innocent": n["innocent"]}
            for r in READINGS:
                row[f"recall {r}"] = round(counts[r]["poison"] / n["poison"], 3) if n["poison"] else "-"
                row[f"fpr {r}"] = round(counts[r]["clean"] / n["clean"], 3) if n["clean"] else "-"
                row[f"innocent fpr {r}"] = round(counts[r]["innocent"] / n["innocent"], 3) if n["innocent"] else "-"
            row["clean taken by"] = ", ".join(f"{m}: {c}" for m, c in marks.most_common()) or "-"
            rows.append(row)
            print(table([row], list(row)), flush=True)
    emb.save()
    cols = ["set", "condition", "poisons", "clean", "innocent",
            *[f"{m} {r}" for m in ("recall", "fpr", "innocent fpr") for r in READINGS], "clean taken by"]
    print(table(rows, cols))
    write_json(args.out, {"machine": machine(), "runtime": type(gen).__name__, "support": args.support, "k": args.k, "widen": args.widen,
                          "rows": rows})


if __name__ == "__main__":
    main()
