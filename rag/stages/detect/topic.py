"""The question's topic in the embedder's geometry: who gets a say in the vote.

A passage is on the topic when its cosine to the question is at least ``topic_ratio`` of the
best passage's; the others were retrieved for a word they share, not for the question (see
``PoisonDetector``'s ``topic_ratio``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from rag.protocols import Embedder
from rag.stages.detect.records import DetectionRequest

#: A question's vector and those of its passages, then of its neighbours.
Vectors = tuple[np.ndarray, np.ndarray]


def request_vectors(embedder: Embedder, requests: Sequence[DetectionRequest]) -> list[Vectors]:
    """Per request, the question's vector and those of its passages, then of its
    neighbours (one embedding call for the questions and every passage whose vector the
    request does not already carry).

    Example:
        >>> from rag.testing import HashEmbedder
        >>> from rag.types import Passage
        >>> request = DetectionRequest("Who founded Varnholm?", (Passage("a", "Ana did."),))
        >>> [v.shape for v in request_vectors(HashEmbedder(dim=8), [request])[0]]
        [(8,), (1, 8)]
    """
    if not any(r.passages for r in requests):
        return [(np.zeros(0), np.zeros((0, 0)))] * len(requests)
    pools = [[*r.passages, *r.neighbours] if r.passages else [] for r in requests]
    known: dict[str, np.ndarray] = {}
    for r, pool in zip(requests, pools, strict=True):
        for p in pool:
            vector = r.known_vectors.get(p.id)
            if vector is not None:
                known.setdefault(p.full_text, np.asarray(vector, dtype=np.float32))
    missing = [p.full_text for pool in pools for p in pool if p.full_text not in known]
    texts = list(dict.fromkeys([r.question for r in requests] + missing))
    embedded = dict(zip(texts, embedder.embed_documents(texts), strict=True))
    embedded.update((t, v) for t, v in known.items() if t not in embedded)
    return [(embedded[r.question], np.array([embedded[p.full_text] for p in pool]))
            if pool else (np.zeros(0), np.zeros((0, 0)))
            for r, pool in zip(requests, pools, strict=True)]


def on_topic(vectors: Vectors, n: int, topic_ratio: float) -> list[bool]:
    """Per passage (the first ``n`` vectors): its cosine to the question is at least
    ``topic_ratio`` of the best.

    Example:
        >>> question = np.array([1.0, 0.0])
        >>> on_topic((question, np.array([[1.0, 0.0], [0.6, 0.8], [0.2, 0.98]])), 3, 0.5)
        [True, True, False]
    """
    question_vector, passage_vectors = vectors[0], vectors[1][:n]
    if topic_ratio <= 0.0:  # no gating, even for passages pointing away from the question
        return [True] * len(passage_vectors)
    relevance = passage_vectors @ question_vector
    return [float(r) >= topic_ratio * float(relevance.max()) for r in relevance]


def on_topic_of_unsuspected(topical: Sequence[bool], pre: Sequence[float],
                            question_vector: np.ndarray, passage_vectors: np.ndarray, *,
                            topic_ratio: float, threshold: float) -> list[bool]:
    """``topical`` (:func:`on_topic`) widened to the passages within ``topic_ratio`` of the
    best passage the signals do not already condemn (whose score ``pre`` stays below
    ``threshold``). Passages that echo the question sit closest to it; they must not set the
    yardstick that puts the passages contradicting them off the topic.

    Example:
        >>> question = np.array([1.0, 0.0])
        >>> passages = np.array([[1.0, 0.0], [0.4, 0.9]])  # an echo, and a passage less close
        >>> on_topic_of_unsuspected([True, False], [0.6, 0.0], question, passages,
        ...                         topic_ratio=0.5, threshold=0.5)
        [True, True]
    """
    unsuspected = [i for i, score in enumerate(pre) if score < threshold]
    if not unsuspected or topic_ratio <= 0.0:
        return list(topical)
    relevance = passage_vectors @ question_vector
    best = max(float(relevance[i]) for i in unsuspected)
    return [on or float(r) >= topic_ratio * best for on, r in zip(topical, relevance, strict=True)]
