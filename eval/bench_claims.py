"""Claim checking on FEVER-style edits, each claim against its own edit's note alone (no
retrieval): accuracy and consistency per slice of edits, and claims per second.

    python eval/bench_claims.py --data eren_fever_dev.json [--slices 0-49,50-99,100-199]
        [--out eval/results/bench_claims.json]

Every claim of an edit's ``edit_scope`` is checked by :class:`~rag.stages.claims.ClaimChecker`
(default embedder) with that edit's note as the only memory. ``accuracy``: the verdict matches
the claim's ``yes``/``no``; ``consistency``: a paraphrase is answered like the edit's own claim
exactly when their labels are alike (both answered yes or no), as ``rag eval editing`` counts it.
Fit constants on one slice, read the others as checks.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, table, write_json  # noqa: E402

from rag.models import load_embedder  # noqa: E402
from rag.stages.claims import ClaimChecker  # noqa: E402
from rag.types import Passage  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
DECIDED = ("yes", "no")


def _slices(text: str) -> list[tuple[int, int]]:
    out = []
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        if not (lo.isdigit() and hi.isdigit()) or int(lo) > int(hi):
            msg = f"--slices takes ranges such as 0-49,50-99; got {part!r}"
            raise SystemExit(msg)
        out.append((int(lo), int(hi)))
    return out


def _note(edit: dict) -> str:
    statement = edit["edit_statement"]
    return statement if isinstance(statement, str) else statement[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="an EREN FEVER-format edit file")
    parser.add_argument("--slices", default="0-49,50-99,100-199")
    parser.add_argument("--out", type=Path, default=ROOT / "eval" / "results" / "bench_claims.json")
    args = parser.parse_args()
    slices = _slices(args.slices)
    edits = json.loads(args.data.read_text(encoding="utf-8"))[: max(hi for _, hi in slices) + 1]
    items, meta = [], []  # meta: (edit, claim's place in the scope, gold label)
    for i, edit in enumerate(edits):
        memory = {"memory": [Passage(f"n{i}", _note(edit), kind="note")]}
        for j, (claim, gold) in enumerate(edit["edit_scope"]):
            items.append((claim, memory))
            meta.append((i, j, gold))
    checker = ClaimChecker(load_embedder())
    start = time.perf_counter()
    verdicts = checker.check_many(items)
    seconds = time.perf_counter() - start
    summary = []
    for lo, hi in slices:
        right, consistent, first = [], [], {}
        for verdict, (i, j, gold) in zip(verdicts, meta, strict=True):
            if not lo <= i <= hi:
                continue
            right.append(verdict.label == gold)
            if j == 0:
                first[i] = (gold, verdict.label)
                continue
            gold0, label0 = first[i]
            consistent.append((verdict.label == label0) == (gold == gold0)
                              and verdict.label in DECIDED and label0 in DECIDED)
        summary.append({"edits": f"{lo}-{hi}", "claims": len(right),
                        "accuracy": sum(right) / len(right) if right else float("nan"),
                        "consistency": sum(consistent) / len(consistent) if consistent else float("nan")})
    print(table(summary, ["edits", "claims", "accuracy", "consistency"]))
    print(f"{len(items) / seconds:.0f} claims/s")
    write_json(args.out, {"machine": machine(), "data": str(args.data), "claims_per_s": len(items) / seconds,
                          "summary": summary,
                          "rows": [{"claim": c, "label": v.label, "reason": v.reason, "gold": g}
                                   for (c, _), v, (_, _, g) in zip(items, verdicts, meta, strict=True)]})


if __name__ == "__main__":
    main()
