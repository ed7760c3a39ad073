"""Which passages speak for which answer: the standing the contest counts sides by.

Two ways to tell, behind one small protocol:

* :class:`RuleStanding`: the passage's text states the answer about the question's subject,
  and a relation lexicon says whether the sentence names the question's relation
  (:mod:`rag.stages.detect.statements`). Needs no model; written for English.
* :class:`LikelihoodStanding`: measured. For every (passage, candidate answer) pair of a
  question, the generator scores the answer after the passage and the question and after
  the question alone (:func:`rag.stages.read.answer_likelihoods`, one batched call); the
  *lift* is how much the passage raises the answer's per-token log-probability. A passage
  speaks for the answer it lifts most, when that lift reaches ``min_lift``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

import numpy as np

from rag.stages.detect.statements import NOT_STATED, STATED, affirms, standing

#: Per-token lift (nats) from which a passage speaks for an answer. With gemma-3-270m, on
#: 50 NQ targets and 21 RealtimeQA questions (the first of each set), a gold passage lifts
#: its correct answer by a median 0.73 / 1.07 and the attacker's by -0.13 / -0.15, a
#: crafted poison its answer by 1.18 / 1.22 and the correct one by 0.05 / -0.23; at 0.25 a
#: gold passage speaks for the correct answer on 0.62 / 0.86 of the questions and for the
#: attacker's on 0.10 / 0.05, a poison for the attacker's on 0.92 / 1.00.
MIN_LIFT = 0.25


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
