"""Poison geometry: a crafted group among the retrieved passages, read from embeddings alone.

Passages crafted for one question are written *at* it: they are close to each other, pulled
toward the question, and alone in their neighbourhood (nothing natural around them tells the
same story in other words). Natural near-duplicates are close too (RealtimeQA's reports of
one event, syndicated copies), so no single cosine separates them; this module measures a
handful of reader-free quantities per candidate group and combines them into one score:

* ``gap``: the group's mean inner cosine minus its members' mean best cosine to a passage
  outside it (in the deeper search): how far the group stands apart from its neighbours;
* ``residual``: the inner cosine once the question's direction is taken out of every vector
  (what members share beyond being about the question);
* ``pull``: the members' mean cosine to the question minus the outsiders' median (crafted
  passages are all written toward the query);
* ``spread``: the standard deviation of the members' cosines to the question (crafted ones
  sit at one uniform, high level; natural ones scatter);
* ``alone``: the group's size over its size plus the outsiders within ``NEAR_COSINE`` of
  a member (a real event has more reports around it in a deeper search; a crafted group is
  exactly its N members with nothing around);
* ``overlap``: the members' mean word 3-gram Jaccard (copies share their words;
  paraphrases crafted by a model share meaning, not wording; at equal semantic tightness
  a low overlap is the crafted kind).

Groups are complete-linkage clusters at cosine ``LINK_COSINE`` over the inspected passages
and the deeper search's. The score is a logistic model of the features whose coefficients
were fitted on a calibration half of the development data (NQ targets 50-99, RealtimeQA
questions 25-49: ``python eval/bench_geometry.py --fit``) and are kept here as constants; its
threshold is the lowest one keeping the calibration half's false-positive rate on clean
passages under 1%. The other half is the measurement (see the README).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from rag.stages.detect.records import Signal
from rag.text import shingles

#: Cosine from which passages join one candidate group (complete linkage: every pair).
LINK_COSINE = 0.75
#: Fewest independent texts outside a group for the geometry to read it: without a deeper
#: search around them, the gap, pull and neighbourhood of a group mean nothing.
MIN_OUTSIDERS = 5
#: Word 3-gram Jaccard from which two passages are copies of one text (one unit).
COPY_JACCARD = 0.5
#: Cosine from which an outsider counts as the group's neighbour (``alone``).
NEAR_COSINE = 0.6
FEATURES: tuple[str, ...] = ("gap", "residual", "pull", "spread", "alone", "overlap")
#: Logistic coefficients per feature, and the intercept (``eval/bench_geometry.py --fit``).
COEFFICIENTS: Mapping[str, float] = {"gap": 7.426, "residual": 4.559, "pull": 7.744, "spread": 0.071,
                                     "alone": 1.19, "overlap": 3.446}
INTERCEPT = -6.23
#: Group score from which its members are read as crafted.
THRESHOLD = 0.998


@dataclass(frozen=True, slots=True)
class Group:
    """A candidate group of passages and what the geometry makes of it.

    Attributes:
        members: Indices of the members in the pool the group was found in.
        features: The measured quantities (see the module docstring), by name.
        score: The logistic score of the features, in [0, 1].

    Example:
        >>> Group((0, 1), {"gap": 0.2}, 0.9).size
        2
    """

    members: tuple[int, ...]
    features: Mapping[str, float]
    score: float

    @property
    def size(self) -> int:
        return len(self.members)


def complete_linkage(sims: np.ndarray, cosine: float) -> list[list[int]]:
    """Clusters in which every pair has at least ``cosine``, merged greedily best first.

    Example:
        >>> s = np.array([[1, .9, .1], [.9, 1, .2], [.1, .2, 1]])
        >>> complete_linkage(s, 0.7)
        [[0, 1], [2]]
    """
    clusters = [[i] for i in range(len(sims))]
    while len(clusters) > 1:
        best, pair = cosine, None
        for a in range(len(clusters)):
            for b in range(a + 1, len(clusters)):
                link = float(sims[np.ix_(clusters[a], clusters[b])].min())
                if link >= best:
                    best, pair = link, (a, b)
        if pair is None:
            break
        a, b = pair
        clusters[a] = sorted(clusters[a] + clusters[b])
        del clusters[b]
    return sorted(clusters)


def _residual(vectors: np.ndarray, question: np.ndarray) -> np.ndarray:
    r = vectors - np.outer(vectors @ question, question)
    return r / np.maximum(np.linalg.norm(r, axis=1, keepdims=True), 1e-9)


def _mean_pairwise(m: np.ndarray) -> float:
    n = len(m)
    return float((m.sum() - np.trace(m)) / (n * (n - 1)))


def group_features(question: np.ndarray, vectors: np.ndarray, texts: Sequence[str],
                   members: Sequence[int]) -> dict[str, float]:
    """The measured quantities of one group of two or more members (see the module docstring).

    Args:
        question: The question's unit vector.
        vectors: Unit vectors of every passage of the pool, one row each.
        texts: The passages' texts, in the same order.
        members: Indices of the group's members.
    """
    members = list(members)
    outside = [i for i in range(len(vectors)) if i not in set(members)]
    sims = vectors @ vectors.T
    inner = _mean_pairwise(sims[np.ix_(members, members)])
    to_q = vectors @ question
    if outside:
        best_out = float(sims[np.ix_(members, outside)].max(axis=1).mean())
        near = int((sims[np.ix_(outside, members)].max(axis=1) >= NEAR_COSINE).sum())
        q_out = float(np.median(to_q[outside]))
    else:
        best_out, near, q_out = 0.0, 0, 0.0
    res = _residual(vectors[members], question)
    grams = [shingles(texts[i]) for i in members]
    overlaps = [len(grams[a] & grams[b]) / max(1, len(grams[a] | grams[b]))
                for a in range(len(members)) for b in range(a + 1, len(members))]
    return {
        "gap": inner - best_out,
        "residual": _mean_pairwise(res @ res.T),
        "pull": float(to_q[members].mean()) - q_out,
        "spread": float(to_q[members].std()),
        "alone": len(members) / (len(members) + near),
        "overlap": float(np.mean(overlaps)),
    }


def group_score(features: Mapping[str, float]) -> float:
    """The logistic score of a group's features under :data:`COEFFICIENTS`."""
    z = INTERCEPT + sum(COEFFICIENTS[name] * features[name] for name in FEATURES)
    return 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, z))))


def copy_units(texts: Sequence[str]) -> list[list[int]]:
    """Passages that are copies of one another (word 3-gram Jaccard at least
    :data:`COPY_JACCARD`), as units: the first of each is its representative.

    Example:
        >>> copy_units(["a b c d e", "a b c d e f", "x y z w"])
        [[0, 1], [2]]
    """
    grams = [shingles(t) for t in texts]
    units: list[list[int]] = []
    for i, g in enumerate(grams):
        for unit in units:
            h = grams[unit[0]]
            if len(g & h) >= COPY_JACCARD * max(1, len(g | h)):
                unit.append(i)
                break
        else:
            units.append([i])
    return units


def candidate_groups(question: np.ndarray, vectors: np.ndarray, texts: Sequence[str],
                     inspected: int) -> list[Group]:
    """The groups of two or more independent texts with a member among the first ``inspected``
    and at least :data:`MIN_OUTSIDERS` texts outside them.

    Copies collapse into one unit first (a syndicated report is one witness, and the vote
    counts it as one already), so that a group is made of texts written apart: natural reports
    of one event, or paraphrases crafted for one question. A group's members are every copy
    of its units; its features are measured on the units' representatives.

    Args:
        question: The question's unit vector.
        vectors: Unit vectors of the inspected passages, then of the deeper search's others.
        texts: Their texts, in the same order.
        inspected: How many of the first rows are the passages being judged.
    """
    if len(vectors) < 2:
        return []
    units = copy_units(texts)
    heads = [u[0] for u in units]
    reps = vectors[heads]
    groups = []
    for linked in complete_linkage(reps @ reps.T, LINK_COSINE):
        members = sorted(i for u in linked for i in units[u])
        if len(linked) >= 2 and min(members) < inspected and len(units) - len(linked) >= MIN_OUTSIDERS:
            features = group_features(question, reps, [texts[h] for h in heads], linked)
            groups.append(Group(tuple(members), features, group_score(features)))
    return groups


def geometry_signals(question: np.ndarray, vectors: np.ndarray, texts: Sequence[str],
                     inspected: int, *, threshold: float = THRESHOLD) -> list[Signal]:
    """One ``geometry`` reading per inspected passage: 1 for a member of a group scoring at
    ``threshold`` or above, half its share of the threshold below it, 0 outside any group.

    Example:
        >>> q = np.array([1.0, 0.0, 0.0])
        >>> v = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
        >>> [s.value for s in geometry_signals(q, v, ["a b c", "d e f"], 2)]
        [0.0, 0.0]
    """
    out = [Signal("geometry", 0.0, "in no group of near passages") for _ in range(inspected)]
    for g in candidate_groups(question, vectors, texts, inspected):
        value = 1.0 if g.score >= threshold else 0.5 * g.score / threshold
        cues = ", ".join(f"{k} {v:.2f}" for k, v in g.features.items())
        detail = f"one of a group of {g.size} (score {g.score:.2f} at threshold {threshold:g}: {cues})"
        for i in g.members:
            if i < inspected:
                out[i] = Signal("geometry", round(value, 3), detail)
    return out
