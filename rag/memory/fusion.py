"""Reciprocal rank fusion."""

from __future__ import annotations

from collections.abc import Hashable, Sequence

#: Cormack, Clarke and Buettcher (2009) found 60 robust across collections.
RRF_K = 60


def reciprocal_rank_fusion(
    rankings: Sequence[Sequence[Hashable]], *, k: int = RRF_K, weights: Sequence[float] | None = None
) -> list[tuple[Hashable, float]]:
    """Fuse rankings (best first) into one; an item's score is sum(w / (k + rank)).

    Ties keep the order in which items were first seen, so fusion is deterministic.

    Example:
        >>> reciprocal_rank_fusion([["a", "b"], ["b", "c"]])[0][0]
        'b'
    """
    weights = weights or [1.0] * len(rankings)
    scores: dict[Hashable, float] = {}
    for ranking, weight in zip(rankings, weights):
        for rank, item in enumerate(ranking, start=1):
            scores[item] = scores.get(item, 0.0) + weight / (k + rank)
    return sorted(scores.items(), key=lambda kv: -kv[1])
