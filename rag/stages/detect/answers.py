"""Grouping the passages' isolated answers: which of them name the same thing.

Whether two answers are the same is :func:`rag.text.same_answer`, the one rule the
detector, the arbiter and the evaluations share (exact match after SQuAD normalisation in
:mod:`rag.metrics` is a metric, not a judgment).
"""

from __future__ import annotations

from collections.abc import Sequence

from rag.stages.read import supports
from rag.text import same_answer, words

_NO_ANSWER = frozenset(
    {"", "unknown", "none", "n a", "no answer", "not mentioned", "not stated", "not given",
     "i don t know", "i do not know", "cannot be determined", "not known", "no information"}
)


def is_no_answer(answer: str) -> bool:
    return " ".join(words(answer)) in _NO_ANSWER


class UnionFind:
    def __init__(self, n: int) -> None:
        self.parent = list(range(n))

    def find(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def union(self, i: int, j: int) -> None:
        ri, rj = self.find(i), self.find(j)
        if ri != rj:
            self.parent[max(ri, rj)] = min(ri, rj)  # the earliest passage names the set


def consistent(answers: Sequence[str], texts: Sequence[str], i: int, j: int) -> bool:
    """Passages i and j do not contradict each other: they read the same answer, or one
    states the other's answer (extraction is noisy, the text is the better witness)."""
    return (
        same_answer(answers[i], answers[j])
        or supports(answers[i], texts[j])
        or bool(answers[j]) and supports(answers[j], texts[i])
    )


def group_answers(answers: Sequence[str]) -> tuple[list[int | None], dict[int, str]]:
    """Group isolated answers that agree; returns each passage's group and a text per group."""
    uf = UnionFind(len(answers))
    for i, a in enumerate(answers):
        if not a:
            continue
        for j in range(i):
            if answers[j] and same_answer(a, answers[j]):
                uf.union(i, j)
    groups = [uf.find(i) if a else None for i, a in enumerate(answers)]
    texts = {g: answers[g] for g in groups if g is not None}
    return groups, texts
