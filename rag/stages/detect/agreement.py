"""The answer-based signals: ``cluster``, ``isolation`` and ``trusted_conflict``.

Each reads the passages' isolated answers rather than their text alone: a crowd of
near-duplicates that the rest of the evidence does not back, a passage losing the robust vote
of isolated answers (RobustRAG's isolate-then-aggregate), a passage contradicting a trusted
answer (memory, the user) or, weakly, the parametric one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from rag.stages.detect.answers import UnionFind, consistent
from rag.stages.detect.records import Signal
from rag.stages.detect.vote import EPS, Vote
from rag.stages.read import supports
from rag.text import same_answer, shingles
from rag.types import Passage

#: Value of ``trusted_conflict`` when only the parametric answer is contradicted: the world
#: changes, and fresh evidence contradicting the model's memory is what retrieval is for.
PARAMETRIC_CONFLICT = 0.35


# Disagreeing with the other passages, or with a trusted answer, says nothing about a passage
# that was retrieved for a shared word rather than for the question.
OFF_TOPIC = "off the question's topic (retrieved for a shared word): its answer is not a claim about it"


def isolation_signal(
    i: int,
    answers: Sequence[str],
    texts: Sequence[str],
    groups: Sequence[int | None],
    group_texts: Mapping[int, str],
    vote: Vote,
) -> Signal:
    """0 when the passage agrees with the vote (or gives no answer); else 0.5 for losing plus
    up to 0.5 for the margin it loses by. A tie is no evidence against either side."""
    g = groups[i]
    if g is None or vote.winner is None:
        return Signal("isolation", 0.0, "gives no answer of its own")
    winner_text = group_texts[vote.winner]
    if g == vote.winner:
        return Signal("isolation", 0.0, f"reads {answers[i]!r}, the robust aggregate")
    if supports(winner_text, texts[i]):
        return Signal("isolation", 0.0, f"reads {answers[i]!r} but also states the aggregate {winner_text!r}")
    own, best = vote.votes.get(g, 0.0), vote.votes[vote.winner]
    if own >= best - EPS:
        return Signal("isolation", 0.0, f"reads {answers[i]!r}, tied with the aggregate {winner_text!r}")
    value = 0.5 + 0.5 * (1.0 - own / best)
    return Signal("isolation", round(value, 3),
                  f"reads {answers[i]!r} ({own:.2f} votes) against the aggregate {winner_text!r} ({best:.2f})")


def trusted_conflict_signal(answer: str, text: str, trusted: Sequence[str], parametric: str | None) -> Signal:
    """1 when the passage's answer contradicts every trusted answer, PARAMETRIC_CONFLICT when
    it contradicts only the parametric one, 0 otherwise. Stating the trusted answer anywhere
    in the passage counts as agreeing with it."""
    if not answer:
        return Signal("trusted_conflict", 0.0, "gives no answer of its own")

    def agrees(reference: str) -> bool:
        return same_answer(answer, reference) or supports(reference, text)

    if trusted and not any(agrees(t) for t in trusted):
        return Signal("trusted_conflict", 1.0, f"reads {answer!r}, trusted answer(s) say {list(trusted)}")
    if trusted:
        return Signal("trusted_conflict", 0.0, f"reads {answer!r}, in line with a trusted answer")
    if parametric is not None and not agrees(parametric):
        return Signal("trusted_conflict", PARAMETRIC_CONFLICT,
                      f"reads {answer!r}, the parametric answer is {parametric!r} (weak: the world changes)")
    return Signal("trusted_conflict", 0.0, "no trusted answer contradicted")


def units(passages: Sequence[Passage], groups: Sequence[int | None], vectors: np.ndarray, *,
          duplicate_threshold: float, shingle_threshold: float) -> list[int]:
    """Near-duplicate units: passages that read the same answer and are near-copies share
    a unit (named by its first member). Different answers never share one, so a copy of a
    clean passage with the answer swapped does not dilute the clean passage's vote."""
    uf = UnionFind(len(passages))
    members: dict[int, list[int]] = {}
    for i, g in enumerate(groups):
        if g is not None:
            members.setdefault(g, []).append(i)
    candidates = [ids for ids in members.values() if len(ids) > 1]
    if not candidates:
        return list(range(len(passages)))
    need = sorted({i for ids in candidates for i in ids})
    grams = {i: shingles(passages[i].text) for i in need}
    for ids in candidates:
        for a_pos, a in enumerate(ids):
            for b in ids[a_pos + 1 :]:
                sa, sb = grams[a], grams[b]
                jaccard = len(sa & sb) / len(sa | sb) if sa or sb else 0.0
                cosine = float(np.dot(vectors[a], vectors[b]))
                if jaccard >= shingle_threshold or cosine >= duplicate_threshold:
                    uf.union(a, b)
    return [uf.find(i) for i in range(len(passages))]


def cluster_signals(answers: Sequence[str], texts: Sequence[str], units: Sequence[int], min_cluster: int) -> list[Signal]:
    """Crowds of near-duplicates that agree with each other and with nothing else.

    For a unit of ``m`` passages reading answer ``a``, with ``n`` answering passages
    outside it of which ``s`` are consistent with it (same answer, or either text states
    the other's answer): value = (1 - s / n) * (m - 1) / (m - 1 + n). The first factor is
    zero when the rest of the evidence backs the crowd (natural duplicates); the second
    grows with the crowd's size relative to the rest."""
    size: dict[int, int] = {}
    for u in units:
        size[u] = size.get(u, 0) + 1
    out = []
    for i, u in enumerate(units):
        m = size[u]
        if m < min_cluster or not answers[i]:
            out.append(Signal("cluster", 0.0, f"not in a crowd of near-duplicates (unit of {m})"))
            continue
        outside = [j for j, a in enumerate(answers) if a and units[j] != u]
        if not outside:
            out.append(Signal("cluster", 0.0, f"{m} near-duplicates and no other evidence to compare"))
            continue
        backing = sum(1 for j in outside if consistent(answers, texts, i, j))
        unsupported = 1.0 - backing / len(outside)
        crowding = (m - 1) / (m - 1 + len(outside))
        value = round(unsupported * crowding, 3)
        out.append(Signal("cluster", value, f"{m} near-duplicates read {answers[i]!r}; {backing} of "
                                            f"{len(outside)} other answering passages back it"))
    return out
