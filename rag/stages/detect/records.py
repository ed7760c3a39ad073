"""The detector's records: a signal's reading, a passage's verdict, a question's decision."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from rag.errors import ConfigError
from rag.text import same_answer
from rag.types import Passage

if TYPE_CHECKING:
    from rag.stages.detect.vote import Vote

#: Every signal the detector knows, in the order verdicts list them.
SIGNALS: tuple[str, ...] = ("echo", "cluster", "isolation", "trusted_conflict", "anomaly", "instruction", "geometry")

#: Default weight of each signal in the combined score (see :mod:`rag.stages.detect`).
DEFAULT_WEIGHTS: Mapping[str, float] = {
    "echo": 0.6,
    "cluster": 0.5,
    "isolation": 0.4,
    "trusted_conflict": 0.4,
    "anomaly": 0.6,
    "instruction": 0.6,
    "geometry": 0.3,
}

#: Signals that quarantine a passage on their own: their measured false-positive rate is
#: about 0 on every clean set (see the README). Any other signal needs a second one reading
#: at least :data:`AGREEMENT_LEVEL` (independent evidence, or a lost vote: a measured
#: disagreement with the rest of the evidence).
DECISIVE: tuple[str, ...] = ("instruction",)
AGREEMENT_LEVEL = 0.5


def ramp(x: float, lo: float, hi: float) -> float:
    """0 below ``lo``, 1 above ``hi``, linear in between: a measurement mapped to a signal's scale."""
    if x <= lo:
        return 0.0
    if x >= hi:
        return 1.0
    return (x - lo) / (hi - lo)


@dataclass(frozen=True, slots=True)
class Signal:
    """One signal's reading on one passage.

    Attributes:
        name: One of :data:`SIGNALS`.
        value: 0 for clean up to 1 for certainly poisoned.
        detail: Why, in words.

    Example:
        >>> Signal("echo", 1.0, "repeats 6/6 question words in order at a sentence start")
        Signal(name='echo', value=1.0, detail='repeats 6/6 question words in order at a sentence start')
    """

    name: str
    value: float
    detail: str


@dataclass(frozen=True, slots=True)
class Verdict:
    """The detector's reading of one passage.

    Attributes:
        passage_id: The passage's id.
        score: Weighted sum of the signal values, clipped to [0, 1].
        poisoned: ``score`` reached the detector's threshold.
        signals: One reading per enabled signal, in the order of :data:`SIGNALS`.
        answer: The answer the passage gives on its own ("" if none).

    Example:
        >>> v = Verdict("p1", 0.1, False, (Signal("anomaly", 0.0, "no odd tokens"),), "Marrowgate")
        >>> v.signal("anomaly").value
        0.0
    """

    passage_id: str
    score: float
    poisoned: bool
    signals: tuple[Signal, ...]
    answer: str

    def signal(self, name: str) -> Signal:
        """The reading of signal ``name``; ``KeyError`` when it was switched off."""
        for sig in self.signals:
            if sig.name == name:
                return sig
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        """The verdict as a plain record: id, score, verdict, answer, and every signal's
        value and reason."""
        return {"passage_id": self.passage_id, "score": self.score, "poisoned": self.poisoned, "answer": self.answer,
                "signals": {s.name: s.value for s in self.signals},
                "reasons": {s.name: s.detail for s in self.signals}}


@dataclass(frozen=True, slots=True)
class DetectionDecision:
    """What the detector decided about one question's passages, and why.

    Attributes:
        verdicts: One per passage, in input order.
        kept: Ids of the passages not quarantined, in input order.
        quarantined: Ids of the flagged passages. They are reported, never deleted.
        aggregate_answer: The robust aggregate of the kept passages' isolated answers
            ("" when none of them gives one).
        reason: A readable summary of the decision.
        support: Ids of the kept passages that back the aggregate (a sentence of theirs
            about the question's subject states it, or the generator finds it speaks for it: see
            :mod:`rag.stages.detect.support`), in input order.
        rivals: Ids of the kept passages whose own answer contradicts the aggregate, stated
            at least as firmly as the firmest statement of any side.
        witnesses: How many independent witnesses ``support`` is worth (near-copies of
            one claim count as fewer than their number; see :func:`rag.stages.detect.vote.witnesses`).
        uncorroborated: Ids of a crowd quarantined because a deeper search found nothing to
            corroborate it (see :meth:`~rag.stages.detect.PoisonDetector.corroborate`).
        crowd_reason: Why, in words ("" when no crowd was quarantined).
        contested: The vote did not decide: some rival answer has at least ``1 /
            contest_margin`` of the aggregate's votes (one poison against one gold passage
            is such a tie). A reader should then trust neither side on the vote alone.

    Example:
        >>> from rag.stages.detect import PoisonDetector
        >>> from rag.testing import HashEmbedder
        >>> d = PoisonDetector(HashEmbedder()).inspect(
        ...     "What is the capital of Veldoria?",
        ...     [Passage("a", "The capital of Veldoria is Marrowgate.")])
        >>> d.kept, d.quarantined, d.aggregate_answer
        (('a',), (), 'Marrowgate')
    """

    verdicts: tuple[Verdict, ...]
    kept: tuple[str, ...]
    quarantined: tuple[str, ...]
    aggregate_answer: str
    reason: str
    support: tuple[str, ...] = ()
    rivals: tuple[str, ...] = ()
    contested: bool = False
    witnesses: float = 0.0
    uncorroborated: tuple[str, ...] = ()
    crowd_reason: str = ""

    @property
    def removed(self) -> tuple[str, ...]:
        """Every passage taken out of the evidence: the flagged ones, then an uncorroborated crowd."""
        return (*self.quarantined, *self.uncorroborated)

    @property
    def removed_answers(self) -> list[str]:
        """What the passages taken out say: each flagged passage's own answer, then the
        answer of an uncorroborated crowd."""
        said = [v.answer for v in self.verdicts if v.poisoned and v.answer]
        if self.uncorroborated and self.aggregate_answer:
            said.append(self.aggregate_answer)
        return said

    def sides(self) -> list[tuple[str, tuple[str, ...]]]:
        """The answers the kept passages speak for, each with its passages: the aggregate
        with its ``support`` first, then the ``rivals`` by their own answers (equivalent
        answers are one side, named as first read). The sides of a ``contested`` vote.

        Example:
            >>> def read(pid, answer):
            ...     return Verdict(pid, 0.0, False, (), answer)
            >>> verdicts = (read("g", "Varnholm"), read("p", "Duskmere"), read("q", "duskmere"))
            >>> d = DetectionDecision(verdicts, ("g", "p", "q"), (), "Varnholm", "",
            ...                       support=("g",), rivals=("p", "q"))
            >>> d.sides()
            [('Varnholm', ('g',)), ('Duskmere', ('p', 'q'))]
        """
        answer_of = {v.passage_id: v.answer for v in self.verdicts}
        sides: dict[str, list[str]] = {self.aggregate_answer: list(self.support)}
        for pid in self.rivals:
            side = next((a for a in sides if same_answer(a, answer_of[pid])), answer_of[pid])
            sides.setdefault(side, []).append(pid)
        return [(answer, tuple(ids)) for answer, ids in sides.items()]

    def flags(self) -> list[dict[str, Any]]:
        """One record per passage taken out, as ``Answer.flags`` lists them: ``type``
        ``poisoned`` (with the verdict's signals) or ``uncorroborated`` (with the reason)."""
        out = [{"type": "uncorroborated", "action": "quarantined", "passage_id": pid,
                "answer": self.aggregate_answer, "reason": self.crowd_reason} for pid in self.uncorroborated]
        return out + [{"type": "poisoned", "action": "quarantined", **v.to_dict()} for v in self.verdicts if v.poisoned]

    def verdict(self, passage_id: str) -> Verdict:
        """The verdict on ``passage_id``; ``KeyError`` when no such passage was inspected."""
        for v in self.verdicts:
            if v.passage_id == passage_id:
                return v
        raise KeyError(passage_id)


@dataclass(frozen=True, slots=True)
class DetectionRequest:
    """One question's passages to inspect, with the answers they are checked against.

    Attributes:
        question: The question the passages were retrieved for.
        passages: The retrieved passages, best first.
        trusted_answers: Answers from trusted sources (memory, user facts).
        parametric_answer: The generator's closed-book answer, if known.
        known_vectors: Embeddings already at hand, by passage id (a store keeps the vector
            of every passage it holds); the detector embeds only the passages missing here.
            They must come from the detector's own embedder, of the passage's ``full_text``.
        neighbours: Passages of a deeper search beyond ``passages``, not judged: what the
            ``geometry`` signal compares a group of retrieved passages with.

    Example:
        >>> DetectionRequest("Who?", (Passage("a", "Ana did."),)).trusted_answers
        ()
    """

    question: str
    passages: tuple[Passage, ...]
    trusted_answers: tuple[str, ...] = ()
    parametric_answer: str | None = None
    known_vectors: Mapping[str, np.ndarray] = field(default_factory=dict, compare=False, repr=False)
    neighbours: tuple[Passage, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "passages", tuple(self.passages))
        object.__setattr__(self, "neighbours", tuple(self.neighbours))
        object.__setattr__(self, "trusted_answers", answers_tuple(self.trusted_answers))


def answers_tuple(answers: Sequence[str]) -> tuple[str, ...]:
    if isinstance(answers, str):
        msg = f"trusted_answers must be a sequence of answers, got the string {answers!r}"
        raise ConfigError(msg)
    return tuple(answers)



def decision_reason(verdicts: Sequence[Verdict], vote: Vote, group_texts: Mapping[int, str], aggregate: str,
                    n_kept: int, *, threshold: float, weights: Mapping[str, float], contest_margin: float,
                    contested: bool = False) -> str:
    """A readable summary of a decision: what was quarantined and on which signals, and how
    the vote of the kept passages went."""
    flagged = [v for v in verdicts if v.poisoned]
    parts = [f"quarantined {len(flagged)} of {len(verdicts)} passage(s) at threshold {threshold:g}"]
    for v in flagged:
        top = sorted(v.signals, key=lambda s: -weights[s.name] * s.value)[:2]
        cues = ", ".join(f"{s.name} {s.value:.2f}" for s in top if s.value > 0)
        parts.append(f"{v.passage_id} (score {v.score:.2f}: {cues})")
    if aggregate:
        rivals = sorted(((votes, g) for g, votes in vote.votes.items() if g != vote.winner), reverse=True)
        rival = f"; runner-up {group_texts[rivals[0][1]]!r} {rivals[0][0]:.2f}" if rivals else ""
        tie = " (tie broken by preference)" if vote.tied else ""
        winner_votes = vote.votes[vote.winner] if vote.winner is not None else 0.0
        parts.append(f"aggregate {aggregate!r} from {n_kept} kept passage(s), votes {winner_votes:.2f}{rival}{tie}")
        if contested:
            parts.append(f"contested: a contradicting answer has at least 1/{contest_margin:g} of the aggregate's votes")
    else:
        parts.append("no kept passage gives an answer")
    return "; ".join(parts)
