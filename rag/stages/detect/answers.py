"""Answer equivalence and grouping: which short answers name the same thing.

One home for the detector's notion of "the same answer"; the arbiter and the metrics read
answers their own ways (exact match after SQuAD normalisation is a metric, not a judgment).
"""

from __future__ import annotations

from collections.abc import Sequence

from rag.stages.read import supports
from rag.text import tokenize, words

_ARTICLES = frozenset({"the", "a", "an"})


_NO_ANSWER = frozenset(
    {"", "unknown", "none", "n a", "no answer", "not mentioned", "not stated", "not given",
     "i don t know", "i do not know", "cannot be determined", "not known", "no information"}
)


def _answer_tokens(answer: str) -> tuple[str, ...]:
    ws = words(answer)
    while ws and ws[0] in _ARTICLES:
        ws = ws[1:]
    return tuple(ws)


def _content(tokens: tuple[str, ...]) -> frozenset[str]:
    return frozenset(tokenize(" ".join(tokens))) or frozenset(tokens)


def answers_agree(a: str, b: str) -> bool:
    """Two short answers name the same thing: equal once normalised, or one contains the other.

    Example:
        >>> answers_agree("Paris", "Paris, France"), answers_agree("the Osk", "Osk")
        (True, True)
        >>> answers_agree("Paris", "Rome")
        False
    """
    ta, tb = _answer_tokens(a), _answer_tokens(b)
    if not ta or not tb:
        return False
    if ta == tb:
        return True
    ca, cb = _content(ta), _content(tb)
    return bool(ca and cb) and (ca <= cb or cb <= ca)


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
        answers_agree(answers[i], answers[j])
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
            if answers[j] and answers_agree(a, answers[j]):
                uf.union(i, j)
    groups = [uf.find(i) if a else None for i, a in enumerate(answers)]
    texts = {g: answers[g] for g in groups if g is not None}
    return groups, texts
