"""Which passages speak for which answer: the standing the contest counts sides by.

Two ways to tell, behind one small protocol:

* :class:`RuleStanding`: the passage's text states the answer about the question's subject,
  and a relation lexicon says whether the sentence names the question's relation
  (:mod:`rag.stages.detect.statements`). Needs no model; written for English.
* :class:`LikelihoodStanding`: measured. The candidate answers are the sides
  :func:`likelihood_sides` puts up: each passage's best readings by likelihood (spans of its
  text, :mod:`rag.stages.candidates`, scored as the likelihood reader scores them), pooled
  and merged by answer equivalence. For every (passage, side) pair of a question, the
  generator scores the side after the passage and the question and after the question alone
  (:func:`rag.stages.read.answer_likelihoods`, one batched call); the *lift* is how much the
  passage raises the side's per-token log-probability. A passage speaks for the side it
  lifts most, when that lift reaches ``min_lift``.

The sides are the passages' candidates, not what each passage reads alone by extraction:
a gold passage often *reads* another span of its text than the answer, and then the right
answer was no side at all, whatever the lift.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from rag.protocols import Scorer
from rag.stages.candidates import candidates
from rag.stages.detect.answers import UnionFind
from rag.stages.detect.statements import NOT_STATED, STATED, affirms, standing
from rag.stages.read import ANSWER_END, Reader, answer_likelihoods, answer_score
from rag.text import same_answer
from rag.types import Passage

#: Per-token lift (nats) from which a passage speaks for an answer. With gemma-3-270m, on
#: 50 NQ targets and 21 RealtimeQA questions (the first of each set), a gold passage lifts
#: its correct answer by a median 0.73 / 1.07 and the attacker's by -0.13 / -0.15, a
#: crafted poison its answer by 1.18 / 1.22 and the correct one by 0.05 / -0.23; at 0.25 a
#: gold passage speaks for the correct answer on 0.62 / 0.86 of the questions and for the
#: attacker's on 0.10 / 0.05, a poison for the attacker's on 0.92 / 1.00.
MIN_LIFT = 0.25
#: Readings each passage puts up as sides: its best candidates by likelihood.
SIDES_PER_PASSAGE = 2
#: Candidates of a passage scored in full when it is read (the others are pruned by their
#: first token's log-probability), as :class:`rag.stages.read.Reader` reads.
READ_KEEP = 16


class Standing(Protocol):
    """How the kept passages of one question bear on its candidate answers."""

    def level(self, group: int, i: int) -> int:
        """How passage ``i`` bears on answer group ``group``: ``NOT_STATED``, ``STATED`` or
        (rules only) ``STATED_FOR_RELATION``."""
        ...

    def affirms(self, i: int, j: int) -> bool:
        """Passage ``j`` also speaks for the answer passage ``i`` read alone (so ``i``
        reading it is noise, not a contradiction of ``j``)."""
        ...


class RuleStanding:
    """The lexicon's standing: what a passage's sentences state about the question's subject."""

    def __init__(self, question: str, answers: Sequence[str], texts: Sequence[str],
                 groups: Sequence[int | None], group_texts: Mapping[int, str]) -> None:
        self.question, self.answers, self.texts = question, answers, texts
        self.groups, self.group_texts = groups, group_texts

    def level(self, group: int, i: int) -> int:
        own = standing(self.question, self.answers[i], self.texts[i]) if self.groups[i] == group else NOT_STATED
        return max(own, standing(self.question, self.group_texts[group], self.texts[i]))

    def affirms(self, i: int, j: int) -> bool:
        return affirms(self.question, self.answers[i], self.texts[j])


class LikelihoodStanding:
    """The generator's standing: a passage speaks for the answer it raises most.

    Args:
        lift: ``(passages, answers)`` per-token lifts (see
            :meth:`rag.stages.read.AnswerLikelihoods.lift`); rows of passages that were not
            scored are ``-inf``.
        columns: The column of each answer group.
        groups: Each passage's answer group (``None``: it read none).
        min_lift: The lift from which a passage speaks for an answer.

    Example:
        >>> s = LikelihoodStanding(np.array([[1.2, -0.1], [0.0, 0.9]]), {0: 0, 1: 1}, [0, 1])
        >>> s.level(0, 0), s.level(1, 0), s.level(1, 1)
        (1, 0, 1)
    """

    def __init__(self, lift: np.ndarray, columns: Mapping[int, int], groups: Sequence[int | None],
                 min_lift: float = MIN_LIFT) -> None:
        self.lift, self.columns, self.groups, self.min_lift = lift, columns, groups, min_lift

    def _speaks_for(self, group: int, i: int) -> bool:
        row = self.lift[i]
        value = row[self.columns[group]]
        return bool(value >= self.min_lift and value >= row.max())

    def level(self, group: int, i: int) -> int:
        return STATED if self._speaks_for(group, i) else NOT_STATED

    def affirms(self, i: int, j: int) -> bool:
        group = self.groups[i]
        return group is not None and bool(self.lift[j, self.columns[group]] >= self.min_lift)


@dataclass(frozen=True, slots=True)
class Sides:
    """The answers a question's passages speak for, measured by the generator.

    Attributes:
        answers: The sides: the candidate answers put up by the passages, one per class of
            equivalent answers; the columns of ``lift``.
        lift: ``(passages, sides)`` per-token lifts; rows of passages not scored are ``-inf``.
        speaks: Per passage, the index of the side it speaks for, or ``None``.
    """

    answers: tuple[str, ...]
    lift: np.ndarray
    speaks: tuple[int | None, ...]

    def spoken(self) -> list[str]:
        """Per passage, the answer it speaks for ("" for none)."""
        return [self.answers[s] if s is not None else "" for s in self.speaks]


def likelihood_sides(
    scorer: Scorer, question: str, passages: Sequence[Passage], scored: Sequence[bool], *,
    per_passage: int = SIDES_PER_PASSAGE, min_lift: float = MIN_LIFT, keep: int | None = READ_KEEP,
) -> Sides:
    """The sides of a question and who speaks for which, in two scoring calls: each scored
    passage's candidate spans after that passage (its readings), then every wording of every
    pooled side after every scored passage and after none
    (:func:`rag.stages.read.answer_likelihoods`). A side is named by its first wording (a
    passage's best reading before any second best).

    Args:
        scorer: Scores continuations (usually the generator).
        question: The question.
        passages: Its passages.
        scored: Per passage, whether it takes part (passages off the topic do not).
        per_passage: How many of a passage's best readings it puts up as sides.
        min_lift: The lift from which a passage speaks for a side.
        keep: Candidates of a passage scored in full when it is read.

    Example:
        >>> from rag.testing import ScriptedModel
        >>> model = ScriptedModel(lambda p: "Varnholm" if "Varnholm" in p else "Duskmere" if "Duskmere" in p else "")
        >>> sides = likelihood_sides(model, "What is the capital of Ostrelia?",
        ...     [Passage("a", "Varnholm is where Ostrelia's parliament sits."),
        ...      Passage("b", "Ostrelia's capital is Duskmere.")], [True, True], per_passage=1)
        >>> sides.answers, sides.spoken()
        (('Varnholm', 'Duskmere'), ['Varnholm', 'Duskmere'])
    """
    at = [i for i, on in enumerate(scored) if on]
    spans = {i: candidates(question, [passages[i].full_text]) for i in at}
    at = [i for i in at if spans[i]]
    items = [(Reader.context_prompt(question, [passages[i]]), [f" {c}{ANSWER_END}" for c in spans[i]]) for i in at]
    readings = scorer.continuation_logprobs(items, keep=keep) if items else []
    best: list[list[str]] = []
    for i, scores in zip(at, readings, strict=True):
        order = sorted((j for j, s in enumerate(scores) if np.isfinite(s.logprob)),
                       key=lambda j: (-answer_score(scores[j]), j))
        best.append([spans[i][j] for j in order[:per_passage]])
    # a passage's best reading first, then every passage's second best, ...
    pool = list(dict.fromkeys(c for rank in range(per_passage) for row in best if rank < len(row) for c in [row[rank]]))
    merged = UnionFind(len(pool))
    for a in range(len(pool)):
        for b in range(a):
            if same_answer(pool[a], pool[b]):
                merged.union(a, b)
    roots = [a for a in range(len(pool)) if merged.find(a) == a]
    lift = np.full((len(passages), len(roots)), -np.inf)
    if roots and at:
        # a side's lift is its best wording's: a passage that names "Marrowgate" speaks for
        # the side another passage put up as "Marrowgate City"
        wordings = answer_likelihoods(scorer, question, [passages[i] for i in at], pool).lift()
        members = [[a for a in range(len(pool)) if merged.find(a) == root] for root in roots]
        lift[at] = np.stack([wordings[:, m].max(axis=1) for m in members], axis=1)
    answers = tuple(pool[root] for root in roots)
    speaks = tuple(int(np.argmax(row)) if answers and row.max() >= min_lift else None for row in lift)
    return Sides(answers, lift, speaks)
