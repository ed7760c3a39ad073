"""Reciprocal rank fusion."""

from __future__ import annotations

from collections.abc import Hashable, Sequence

from rag.types import ScoredPassage

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


def fuse_hits(rankings: Sequence[Sequence[ScoredPassage]], k: int, *,
              retriever: str) -> list[ScoredPassage]:
    """The best ``k`` hits of several rankings (of one question's search queries) by
    :func:`reciprocal_rank_fusion`, scored and ranked anew; ``retriever`` names how they were
    found.

    Example:
        >>> from rag.types import Passage
        >>> a, b = (ScoredPassage(Passage(i, i), 1.0, 1, "hybrid") for i in "ab")
        >>> [(h.id, h.rank, h.retriever) for h in fuse_hits([[a, b], [b]], 2, retriever="fused")]
        [('b', 1, 'fused'), ('a', 2, 'fused')]
    """
    by_id = {h.id: h for ranking in rankings for h in ranking}
    fused = reciprocal_rank_fusion([[h.id for h in ranking] for ranking in rankings])
    return [ScoredPassage(by_id[i].passage, score, rank, retriever)
            for rank, (i, score) in enumerate(fused[:k], start=1)]
