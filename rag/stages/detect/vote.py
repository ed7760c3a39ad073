"""The robust vote of isolated answers, independent witnesses, and the contest.

Votes are counted per near-duplicate unit, weighted by trust; sides are counted in
independent witnesses (Kish's effective sample size over the members' cosines); the winner
needs more than a margin times the votes of every rival, or the vote is contested.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from rag.stages.detect.statements import NOT_STATED, STATED
from rag.stages.detect.support import Standing
from rag.text import same_answer

#: Cosine that any two passages on one topic share under all-MiniLM-L6-v2 (poison and gold
#: passage of one NQ target: median 0.58); only similarity above it makes two witnesses one.
TOPIC_COSINE = 0.5


EPS = 1e-9


# A vote weight never falls to zero, so that when every passage is suspicious the vote
# still follows the evidence instead of an arbitrary tie.
MIN_TRUST = 0.01


@dataclass(frozen=True, slots=True)
class Vote:
    """The outcome of a robust vote over answer groups."""

    winner: int | None  # answer group, None when nobody answered
    votes: Mapping[int, float]
    tied: bool


def robust_vote(
    indices: Sequence[int] | range,
    groups: Sequence[int | None],
    units: Sequence[int],
    trust: Sequence[float],
    answers: Sequence[str],
    group_texts: Mapping[int, str],
    trusted: Sequence[str],
    parametric: str | None,
) -> Vote:
    """One vote per near-duplicate unit, worth the mean trust of its members, per answer group."""
    unit_members: dict[tuple[int, int], list[int]] = {}
    for i in indices:
        g = groups[i]
        if g is not None:
            unit_members.setdefault((g, units[i]), []).append(i)
    votes: dict[int, float] = {}
    sources: dict[int, int] = {}
    first: dict[int, int] = {}
    for (g, _), members in unit_members.items():
        votes[g] = votes.get(g, 0.0) + sum(trust[i] for i in members) / len(members)
        sources[g] = sources.get(g, 0) + 1
        first[g] = min(first.get(g, members[0]), min(members))
    if not votes:
        return Vote(None, {}, False)

    def key(g: int) -> tuple[float, bool, bool, int, int]:
        member_answers = [answers[i] for i in indices if groups[i] == g] or [group_texts[g]]
        agrees_trusted = any(same_answer(a, t) for a in member_answers for t in trusted)
        agrees_parametric = parametric is not None and any(same_answer(a, parametric) for a in member_answers)
        # never the raw passage count: that is what near-copies inflate
        return (round(votes[g], 9), agrees_trusted, agrees_parametric, sources[g], -first[g])

    ranked = sorted(votes, key=key, reverse=True)
    tied = len(ranked) > 1 and abs(votes[ranked[0]] - votes[ranked[1]]) <= EPS
    return Vote(ranked[0], votes, tied)


def representative(
    winner: int | None,
    indices: Sequence[int],
    groups: Sequence[int | None],
    answers: Sequence[str],
    group_texts: Mapping[int, str],
) -> str:
    """The wording of the winning group read most often (the shortest among equals)."""
    if winner is None:
        return ""
    counts: dict[str, int] = {}
    for i in indices:
        if groups[i] == winner:
            counts[answers[i]] = counts.get(answers[i], 0) + 1
    if not counts:
        return group_texts[winner]
    return min(counts, key=lambda a: (-counts[a], len(a), a))


def witnesses(members: Sequence[int], trust: Sequence[float], vectors: np.ndarray) -> tuple[float, float]:
    """How many independent witnesses ``members`` are worth, and that count weighted by
    their mean trust.

    Passages that say one thing in near-identical words are not independent: n passages
    with mean pairwise correlation rho count as n / (1 + (n - 1) rho) witnesses (Kish's
    effective sample size). rho is their mean pairwise cosine above ``TOPIC_COSINE`` (what
    any two passages on one topic share), rescaled to [0, 1]: six paraphrases of one
    crafted claim (cosine ~0.8) are worth about 1.5 witnesses, three passages from
    independent sources (~0.6) about 2.1."""
    n = len(members)
    if n == 0:
        return 0.0, 0.0
    mean_trust = sum(trust[i] for i in members) / n
    if n == 1:
        return mean_trust, 1.0
    sub = vectors[list(members)]
    sims = sub @ sub.T
    mean_cos = float((sims.sum() - np.trace(sims)) / (n * (n - 1)))
    rho = min(1.0, max(0.0, (mean_cos - TOPIC_COSINE) / (1.0 - TOPIC_COSINE)))
    effective = n / (1.0 + (n - 1) * rho)
    return effective * mean_trust, effective


def contest(
    kept: Sequence[int],
    groups: Sequence[int | None],
    vote: Vote,
    trust: Sequence[float],
    vectors: np.ndarray,
    margin: float,
    stance: Standing,
) -> tuple[int | None, list[int], list[int], bool, float]:
    """The answer the kept passages back most, its backers, the passages that
    contradict it, and whether that is contested: the winner's side needs more than
    ``margin`` times the votes of every contradicting answer.

    A passage backs an answer when ``stance`` says it speaks for it, whatever it read alone
    (extraction is noisy: "Marrowgate, the capital, lies on the Osk" may read "Osk"; and
    a generated answer the passage does not state is a guess, not the passage's claim);
    sides are counted in independent witnesses (:func:`witnesses`), and ties go to the
    vote's winner.
    A rival whose answer a backer also states is noisy reading, not a contradiction,
    and so is one that says its answer only of another relation (the same town's river,
    not its mayor). Backers and rivals alike are the passages at the best
    level any passage reaches (with :class:`~rag.stages.detect.support.RuleStanding`: a statement that names the question's relation
    outranks one whose relation the lexicon cannot tell, and an unknown relation is
    enough to contest when nothing names it, one poison against one clean passage)."""
    answered = [g for g in dict.fromkeys(groups[i] for i in kept) if g is not None]
    if vote.winner is None or not answered:
        return vote.winner, [], [], False, 0.0

    stands = {(g, i): stance.level(g, i) for g in answered for i in kept}
    # evidence that names the question's relation outranks evidence that merely states
    # an answer: when any passage states one for the relation, only such passages take
    # sides ("France uses the euro" contests nothing against "Paris is the capital")
    level = max(stands.values())
    if level == NOT_STATED:  # no passage states any answer read: guesses decide nothing
        return vote.winner, [i for i in kept if groups[i] == vote.winner], [], False, 0.0
    sides = {g: [i for i in kept if stands[g, i] >= level] for g in answered}
    strength = {g: witnesses(members, trust, vectors)[0] for g, members in sides.items()}
    winner = max(answered, key=lambda g: (round(strength[g], 9), g == vote.winner))
    # once the winner is chosen, every passage stating it backs it: a crowd of copies
    # is one crowd whether or not each copy names the relation
    support = [i for i in kept if stands[winner, i] >= STATED]
    rivals = [i for i in kept if i not in support and groups[i] is not None
              and not any(stance.affirms(i, j) for j in support)
              and stands[groups[i], i] >= level]
    votes, worth = witnesses(support, trust, vectors)
    if not rivals:
        return winner, support, rivals, False, worth
    strongest = max(witnesses([j for j in rivals if groups[j] == groups[i]], trust, vectors)[0]
                    for i in rivals)
    return winner, support, rivals, votes <= margin * strongest + EPS, worth
