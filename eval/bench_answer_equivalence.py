"""Which definition of "the same answer" decides the development data's answer pairs right.

    python eval/bench_answer_equivalence.py --data ../shared/data [--show 8]
        [--out eval/results/bench_answer_equivalence.json]

Answer pairs whose truth the data states, by category:

* ``same``: two answers the data gives for one question (RealtimeQA's ``correct answer``
  list and ``expanded answer``; a HotpotQA comparison answer and the option it names);
* ``differ``: an answer and its rival (``correct answer`` vs ``incorrect answer`` in
  PoisonedRAG NQ, RealtimeQA and GMTP; CounterFact's new answer vs ``edit_scope_true_ans``;
  a HotpotQA comparison answer vs the other option).

Each candidate definition decides every pair; the table gives per category how many it
decides right, and how many pairs the detector's and the arbiter's old definitions decide
differently; the pairs on which definitions disagree are listed by category. No model.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterator
from itertools import combinations
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, table, write_json  # noqa: E402

from rag.metrics import normalize_answer  # noqa: E402
from rag.stages.rewrite.compare import comparison  # noqa: E402
from rag.text import fold, longest_common_subsequence, same_answer, tokenize, words  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
_ARTICLES = frozenset({"a", "an", "the"})


# --- the definitions the library had before it had one (kept here to measure against) ----


def detector_before(a: str, b: str) -> bool:
    """``rag.stages.detect.answers.answers_agree``: content-word sets, one inside the other."""
    def toks(s: str) -> tuple[str, ...]:
        ws = words(s)
        while ws and ws[0] in _ARTICLES:
            ws = ws[1:]
        return tuple(ws)

    ta, tb = toks(a), toks(b)
    if not ta or not tb:
        return False
    if ta == tb:
        return True
    ca = frozenset(tokenize(" ".join(ta))) or frozenset(ta)
    cb = frozenset(tokenize(" ".join(tb))) or frozenset(tb)
    return bool(ca and cb) and (ca <= cb or cb <= ca)


def arbiter_before(a: str, b: str) -> bool:
    """``rag.stages.arbitrate.same_answer``: one word sequence inside the other, contiguous."""
    wa = tokenize(a, stopwords=_ARTICLES) or fold(a).split()
    wb = tokenize(b, stopwords=_ARTICLES) or fold(b).split()
    if not wa or not wb:
        return False
    short, long_ = sorted((wa, wb), key=len)
    return any(long_[i : i + len(short)] == short for i in range(len(long_) - len(short) + 1))


def in_order(a: str, b: str) -> bool:
    """:func:`rag.text.same_answer` without number words."""
    def content(s: str) -> list[str]:
        return tokenize(s) or [w for w in words(s) if w not in _ARTICLES]

    wa, wb = content(a), content(b)
    if not wa or not wb:
        return False
    short, long_ = sorted((wa, wb), key=len)
    return longest_common_subsequence(short, long_) == len(short)


def squad_exact(a: str, b: str) -> bool:
    """The metric's exact match (SQuAD normalisation), for reference."""
    na, nb = normalize_answer(a), normalize_answer(b)
    return bool(na) and na == nb


DEFINITIONS: dict[str, Callable[[str, str], bool]] = {
    "detector_before": detector_before,
    "arbiter_before": arbiter_before,
    "squad_exact": squad_exact,
    "in_order": in_order,
    "same_answer": same_answer,
}


# --- the pairs ------------------------------------------------------------------------------


def _pairs(data: Path) -> Iterator[tuple[str, bool, str, str]]:
    """(category, same?, a, b) for every labelled pair of the development files."""
    nq = json.loads((data / "poisonedrag_nq.json").read_text(encoding="utf-8"))
    for t in nq.values():
        yield "nq correct vs incorrect", False, str(t["correct answer"]), str(t["incorrect answer"])
    for t in json.loads((data / "robustrag_realtimeqa_dev.json").read_text(encoding="utf-8")):
        golds = [str(g) for g in t["correct answer"]] + [str(g) for g in t.get("expanded answer") or []]
        golds = list(dict.fromkeys(golds))
        for a, b in combinations(golds, 2):
            yield "realtimeqa gold vs gold", True, a, b
        for g in golds:
            yield "realtimeqa gold vs incorrect", False, g, str(t["incorrect answer"])
    for t in json.loads((data / "gmtp_hotflip_nq_dev.json").read_text(encoding="utf-8")):
        yield "gmtp correct vs incorrect (sentences)", False, t["correct_answer"], t["incorrect_answer"]
    for t in json.loads((data / "eren_cfh_filtered.json").read_text(encoding="utf-8")):
        for (_, new), old in zip(t["edit_scope"], t["edit_scope_true_ans"], strict=False):
            if fold(new) != fold(old):  # a few edits restate the true answer: no rival
                yield "counterfact new vs true", False, new, old
    for t in json.loads((data / "eren_hotpot_dev.json").read_text(encoding="utf-8")):
        for question, answer in t["edit_scope"]:
            comp = comparison(question) if t.get("type") == "comparison" else None
            if comp is None:
                continue
            # the option the answer names: the one sharing most of its words
            overlap = [len(set(words(o)) & set(words(answer))) for o in comp.options]
            if max(overlap) == 0 or overlap[0] == overlap[1]:
                continue  # a yes/no or a value: the answer names no option
            named = overlap.index(max(overlap))
            if fold(comp.options[named]) != fold(answer):
                yield "hotpot answer vs option naming it", True, answer, comp.options[named]
            yield "hotpot answer vs other option", False, answer, comp.options[1 - named]

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="the folder of the development files")
    parser.add_argument("--show", type=int, default=8, help="disagreeing pairs listed per category")
    parser.add_argument("--out", type=Path, default=ROOT / "eval" / "results" / "bench_answer_equivalence.json")
    args = parser.parse_args()
    pairs = list(dict.fromkeys(_pairs(args.data)))
    names = list(DEFINITIONS)
    decided = [{n: DEFINITIONS[n](a, b) for n in names} for _, _, a, b in pairs]
    rows, disagreements = [], {}
    for category in dict.fromkeys(c for c, _, _, _ in pairs):
        idx = [i for i, p in enumerate(pairs) if p[0] == category]
        truth = pairs[idx[0]][1]
        row = {"category": category, "truth": "same" if truth else "differ", "pairs": len(idx)}
        for n in names:
            row[n] = sum(decided[i][n] == truth for i in idx)
        row["detector≠arbiter"] = sum(decided[i]["detector_before"] != decided[i]["arbiter_before"] for i in idx)
        row["changed_vs_detector"] = sum(decided[i]["same_answer"] != decided[i]["detector_before"] for i in idx)
        row["changed_vs_arbiter"] = sum(decided[i]["same_answer"] != decided[i]["arbiter_before"] for i in idx)
        rows.append(row)
        split = [i for i in idx if len({decided[i][n] for n in names if n != "squad_exact"}) > 1]
        disagreements[category] = [{"a": pairs[i][2], "b": pairs[i][3], **decided[i]} for i in split]
    total = {"category": "all", "truth": "", "pairs": len(pairs)}
    for key in [*names, "detector≠arbiter", "changed_vs_detector", "changed_vs_arbiter"]:
        total[key] = sum(r[key] for r in rows)
    rows.append(total)
    print("Pairs decided right, by definition (of `pairs`); the last three columns count changed decisions.\n")
    print(table(rows, ["category", "truth", "pairs", *names, "detector≠arbiter",
                       "changed_vs_detector", "changed_vs_arbiter"]))
    for category, items in disagreements.items():
        if not items:
            continue
        print(f"\n{category}: {len(items)} pairs on which the definitions disagree")
        for item in items[: args.show]:
            verdicts = " ".join(f"{n}={'Y' if item[n] else 'n'}" for n in names)
            print(f"  {item['a'][:60]!r} ~ {item['b'][:60]!r}: {verdicts}")
    write_json(args.out, {"machine": machine(), "args": {k: str(v) for k, v in vars(args).items()},
                          "rows": rows, "disagreements": disagreements})


if __name__ == "__main__":
    main()
