"""Knowledge-preference arbiter: one answer per source, conflicts found, winner by order.

The default order is user > memory > corpus > parametric: facts stated in the request beat
edits in memory, which beat retrieved documents, which beat what the generator remembers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from rag.errors import ConfigError
from rag.text import same_answer
from rag.types import SHARED_NAMESPACE, SOURCES

if TYPE_CHECKING:
    from rag.stages.filter import Evidence


@dataclass(frozen=True, slots=True)
class Candidate:
    """An answer a source offers, with the passages behind it."""

    source: str
    answer: str
    evidence: tuple[str, ...] = ()
    score: float = 1.0


@dataclass(frozen=True, slots=True)
class ArbiterDecision:
    """The winner (``None`` on abstention), the candidates that lost, those of them that
    disagree with the winner, and why."""

    winner: Candidate | None
    losers: tuple[Candidate, ...]
    conflicts: tuple[Candidate, ...]
    reason: str


def fact_candidates(evidence: Sequence[Evidence]) -> list[Candidate]:
    """The answer each trusted source offers: per source (user, then memory), the answer of
    its best-scoring fact; of equally good facts, the one in the asker's own namespace, which
    is more specific than the shared one.

    Example:
        >>> from rag.stages.filter import Evidence
        >>> from rag.types import Passage
        >>> def note(pid, namespace, answer):
        ...     passage = Passage(pid, "...", kind="note", namespace=namespace)
        ...     return Evidence(passage, "memory", 0.9, answer, "")
        >>> fact_candidates([note("n2", "shared", "Varnholm"), note("n1", "ana", "Duskmere")])
        [Candidate(source='memory', answer='Duskmere', evidence=('n1',), score=0.9)]
    """
    out = []
    for source in ("user", "memory"):
        facts = [e for e in evidence if e.source == source and e.answer]
        if facts:
            best = max(facts, key=lambda e: (e.score, e.passage.namespace != SHARED_NAMESPACE))
            out.append(Candidate(source, best.answer, (best.passage.id,), best.score))
    return out


class PreferenceArbiter:
    """Chooses among candidate answers by source preference.

    Args:
        order: Sources, highest preference first (a subset of user, memory, corpus,
            parametric); sources not listed are never chosen.
        abstain: When no source above ``parametric`` has an answer, abstain instead of
            answering from the generator's memory.

    Example:
        >>> arbiter = PreferenceArbiter()
        >>> d = arbiter.arbitrate([Candidate("parametric", "Paris"), Candidate("memory", "Lyon", ("n1",))])
        >>> d.winner.answer, [c.source for c in d.conflicts]
        ('Lyon', ['parametric'])
    """

    def __init__(self, order: Sequence[str] = SOURCES, *, abstain: bool = False) -> None:
        unknown = [s for s in order if s not in SOURCES]
        if unknown or len(set(order)) != len(order) or not order:
            msg = f"order must list distinct sources from {SOURCES}, got {list(order)}"
            raise ConfigError(msg)
        self.order = tuple(order)
        self.abstain = abstain

    def arbitrate(self, candidates: Sequence[Candidate]) -> ArbiterDecision:
        offered = [c for c in candidates if c.answer.strip()]
        ranked = sorted((c for c in offered if c.source in self.order),
                        key=lambda c: (self.order.index(c.source), -c.score))
        if self.abstain:
            ranked = [c for c in ranked if c.source != "parametric"]
        if not ranked:
            why = "no trustworthy evidence bears on the question" if self.abstain else "no candidate answer"
            return ArbiterDecision(None, tuple(offered), (), f"abstain: {why}")
        winner = ranked[0]
        losers = tuple(c for c in offered if c is not winner)
        conflicts = tuple(c for c in losers if not same_answer(c.answer, winner.answer))
        reason = f"{winner.source} ranks highest of {sorted({c.source for c in offered}, key=SOURCES.index)}"
        if conflicts:
            reason += f"; overrides {', '.join(f'{c.source}={c.answer!r}' for c in conflicts)}"
        return ArbiterDecision(winner, losers, conflicts, reason)


def suspect_parametric(candidates: Sequence[Candidate],
                       quarantined_answers: Sequence[str]) -> list[Candidate]:
    """The closed-book candidates that say what the quarantined passages say: no fallback,
    since the attack may have aimed at what the model already half-believes.

    Example:
        >>> closed_book = Candidate("parametric", "duskmere")
        >>> corpus = Candidate("corpus", "Duskmere")
        >>> suspect_parametric([corpus, closed_book], ["Duskmere"]) == [closed_book]
        True
    """
    return [c for c in candidates if c.source == "parametric"
            and any(same_answer(c.answer, q) for q in quarantined_answers)]


#: What to do when the corpus's vote does not decide (see :func:`settle_contest`).
ON_CONTESTED = ("abstain", "parametric", "vote")


def settle_contest(sides: Sequence[Candidate], parametric: Candidate | None, mode: str) -> tuple[Candidate | None, str]:
    """The side an undecided corpus vote goes to, if any, and why.

    Args:
        sides: The corpus's answers, the vote's winner first.
        parametric: The closed-book answer, if one was asked.
        mode: ``abstain`` (no side), ``parametric`` (the one side the closed-book answer
            agrees with; none if it agrees with no side or several) or ``vote`` (the vote's
            winner, tie or not).

    Example:
        >>> sides = [Candidate("corpus", "Marrowgate", ("g1",)), Candidate("corpus", "Duskmere", ("p1",))]
        >>> settle_contest(sides, Candidate("parametric", "Duskmere"), "parametric")[0].answer
        'Duskmere'
        >>> settle_contest(sides, None, "abstain")[0] is None
        True
    """
    if mode not in ON_CONTESTED:
        msg = f"on_contested must be one of {ON_CONTESTED}, got {mode!r}"
        raise ConfigError(msg)
    if mode == "vote":
        winner: Candidate | None = sides[0]
    else:
        sided = [c for c in sides if parametric is not None and same_answer(c.answer, parametric.answer)]
        winner = sided[0] if mode == "parametric" and len(sided) == 1 else None
    why = (f"corpus contested: {' vs '.join(repr(c.answer) for c in sides)}; "
           f"{'abstain' if winner is None else f'{winner.answer!r} by on_contested={mode}'}")
    return winner, why
