"""Evaluation metrics: answers, retrieval runs, poisoning detectors, sources and latency.

Pure Python and numpy, so that evaluation scripts and users can import it without models.

Answer metrics follow the SQuAD evaluation script: answers are normalised (lowercased,
accents stripped, punctuation and the articles *a*, *an*, *the* removed, whitespace
collapsed) before comparison, and a prediction is scored against its best-matching gold.

Retrieval metrics take runs and judgements in the TREC / ``pytrec_eval`` shape::

    run   = {"q1": {"d1": 12.5, "d7": 11.0}}   # qid -> docid -> score, higher is better
    qrels = {"q1": {"d1": 2, "d3": 1}}         # qid -> docid -> graded relevance

and match ``trec_eval`` per query: documents are ranked by score descending, ties broken
by docid descending; a document is relevant when its grade is at least 1; nDCG uses the
grade as gain with a log2 discount and the ideal ranking from the qrels (``ndcg_cut``).
Means are taken over the queries of ``qrels`` that have at least one relevant document
(queries missing from the run count as 0, as with ``trec_eval -c``); ``trec_eval`` would
also average in queries without relevant documents, as zeros.

Example:
    >>> exact_match("The Eiffel Tower!", ["eiffel tower"])
    1.0
    >>> run = {"q1": {"d1": 0.9, "d2": 0.5}, "q2": {"d3": 0.8}}
    >>> qrels = {"q1": {"d2": 1}, "q2": {"d4": 1}}
    >>> retrieval_metrics(run, qrels, ks=(1, 2))["mrr@2"]
    0.25
"""

from __future__ import annotations

import math
import re
import string
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence

import numpy as np

from rag.errors import ConfigError
from rag.text import fold

Run = Mapping[str, Mapping[str, float]]
Qrels = Mapping[str, Mapping[str, int]]

#: Answer sources counted by :func:`source_adoption`, highest preference first.
ADOPTION_SOURCES: tuple[str, ...] = ("user", "memory", "corpus", "parametric", "none")

#: Measures known to :func:`per_query_scores`, by the prefix of their metric key.
RETRIEVAL_MEASURES: tuple[str, ...] = ("recall", "hit", "mrr", "ndcg", "precision")

_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)
_ASCII_PUNCTUATION = frozenset(string.punctuation)


# --------------------------------------------------------------------------- answers


def normalize_answer(text: str) -> str:
    """Normalise an answer the SQuAD way, with accents stripped as well.

    Lowercases, strips accents (NFKD), removes punctuation (ASCII punctuation as SQuAD
    does, plus Unicode punctuation such as curly quotes), removes the articles *a*, *an*
    and *the*, and collapses whitespace.

    Args:
        text: An answer or gold string.

    Returns:
        The normalised string; words are separated by single spaces.

    Example:
        >>> normalize_answer("  The Café   de Flore, Paris!")
        'cafe de flore paris'
    """
    folded = fold(text)
    no_punct = "".join(
        c for c in folded
        if c not in _ASCII_PUNCTUATION and not unicodedata.category(c).startswith("P")
    )
    return " ".join(_ARTICLES.sub(" ", no_punct).split())


def _gold_list(golds: str | Iterable[str], what: str) -> list[str]:
    # A bare string is one gold answer, not an iterable of one-character golds.
    items = [golds] if isinstance(golds, str) else list(golds)
    if not items:
        msg = f"{what} needs at least one gold answer, got none"
        raise ConfigError(msg)
    for g in items:
        if not isinstance(g, str):
            msg = f"{what}: gold answers must be strings, got {g!r}"
            raise ConfigError(msg)
    return items


def exact_match(prediction: str, golds: str | Iterable[str]) -> float:
    """1.0 if the normalised prediction equals any normalised gold answer, else 0.0.

    Args:
        prediction: The predicted answer.
        golds: One gold answer or several; the best match counts.

    Raises:
        ConfigError: If ``golds`` is empty.

    Example:
        >>> exact_match("the Beatles", ["Beatles", "The Fab Four"])
        1.0
        >>> exact_match("Beatles band", "Beatles")
        0.0
    """
    pred = normalize_answer(prediction)
    return max(float(pred == normalize_answer(g)) for g in _gold_list(golds, "exact_match"))


def _token_f1(pred_tokens: list[str], gold_tokens: list[str]) -> float:
    # As in the SQuAD v2 script: two empty answers agree, one empty answer scores 0.
    if not pred_tokens or not gold_tokens:
        return float(pred_tokens == gold_tokens)
    same = sum((Counter(pred_tokens) & Counter(gold_tokens)).values())
    if same == 0:
        return 0.0
    precision = same / len(pred_tokens)
    recall = same / len(gold_tokens)
    return 2 * precision * recall / (precision + recall)


def f1_score(prediction: str, golds: str | Iterable[str]) -> float:
    """Token-level F1 between the normalised prediction and the best gold answer.

    Args:
        prediction: The predicted answer.
        golds: One gold answer or several; the best F1 counts.

    Raises:
        ConfigError: If ``golds`` is empty.

    Example:
        >>> round(f1_score("the tower in Paris", ["Eiffel Tower, Paris"]), 4)
        0.6667
    """
    pred = normalize_answer(prediction).split()
    return max(_token_f1(pred, normalize_answer(g).split()) for g in _gold_list(golds, "f1_score"))


def contains_answer(prediction: str, golds: str | Iterable[str]) -> float:
    """1.0 if any normalised gold occurs in the normalised prediction as whole words.

    A gold that normalises to nothing (say ``"the"``) only matches an empty prediction,
    so that it does not match every answer.

    Args:
        prediction: The predicted answer, possibly a whole sentence.
        golds: One gold answer or several.

    Raises:
        ConfigError: If ``golds`` is empty.

    Example:
        >>> contains_answer("It was built in Paris, France.", ["paris"])
        1.0
        >>> contains_answer("Parisian architecture", ["Paris"])
        0.0
    """
    pred = normalize_answer(prediction)
    for gold in _gold_list(golds, "contains_answer"):
        g = normalize_answer(gold)
        # Normalised text has single spaces between words, so padding gives word boundaries.
        if (f" {g} " in f" {pred} ") if g else not pred:
            return 1.0
    return 0.0


# --------------------------------------------------------------------------- retrieval


def _check_k(k: object) -> int:
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
        msg = f"k must be an integer >= 1, got {k!r}"
        raise ConfigError(msg)
    return int(k)


def rank_documents(scores: Mapping[str, float]) -> list[tuple[str, float]]:
    """Documents of one query in ``trec_eval`` order: score descending, then docid descending.

    Args:
        scores: Docid to retrieval score, higher is better.

    Returns:
        ``(docid, score)`` pairs, best first.

    Raises:
        ConfigError: If a score is not a finite number.

    Example:
        >>> rank_documents({"a": 1.0, "c": 1.0, "b": 2.0})
        [('b', 2.0), ('c', 1.0), ('a', 1.0)]
    """
    for docid, score in scores.items():
        if (isinstance(score, bool) or not isinstance(score, int | float | np.number)
                or not math.isfinite(score)):
            msg = f"score of document {docid!r} must be a finite number, got {score!r}"
            raise ConfigError(msg)
    pairs = ((docid, float(score)) for docid, score in scores.items())
    return sorted(pairs, key=lambda ds: (ds[1], ds[0]), reverse=True)


def _recall(top: list[str], judged: Mapping[str, int], n_rel: int, k: int) -> float:
    return sum(judged.get(d, 0) >= 1 for d in top) / n_rel


def _hit(top: list[str], judged: Mapping[str, int], n_rel: int, k: int) -> float:
    return float(any(judged.get(d, 0) >= 1 for d in top))


def _mrr(top: list[str], judged: Mapping[str, int], n_rel: int, k: int) -> float:
    for rank, d in enumerate(top, start=1):
        if judged.get(d, 0) >= 1:
            return 1.0 / rank
    return 0.0


def _precision(top: list[str], judged: Mapping[str, int], n_rel: int, k: int) -> float:
    # Divided by k even when fewer documents were retrieved, as trec_eval's P_k does.
    return sum(judged.get(d, 0) >= 1 for d in top) / k


def _ndcg(top: list[str], judged: Mapping[str, int], n_rel: int, k: int) -> float:
    # trec_eval's ndcg_cut: gain is the grade itself (not 2^grade - 1); negative grades gain 0.
    dcg = sum(max(judged.get(d, 0), 0) / math.log2(i + 2) for i, d in enumerate(top))
    ideal = sorted((g for g in judged.values() if g > 0), reverse=True)[:k]
    idcg = sum(g / math.log2(i + 2) for i, g in enumerate(ideal))
    return dcg / idcg


_MEASURES: dict[str, Callable[[list[str], Mapping[str, int], int, int], float]] = {
    "recall": _recall,
    "hit": _hit,
    "mrr": _mrr,
    "ndcg": _ndcg,
    "precision": _precision,
}


def _judged_queries(qrels: Qrels) -> dict[str, tuple[Mapping[str, int], int]]:
    """Queries with at least one relevant document, with their judgements and that count."""
    out: dict[str, tuple[Mapping[str, int], int]] = {}
    for qid, judged in qrels.items():
        if not isinstance(judged, Mapping):
            msg = f"qrels[{qid!r}] must map docids to grades, got {type(judged).__name__}"
            raise ConfigError(msg)
        for docid, grade in judged.items():
            if isinstance(grade, bool) or not isinstance(grade, int | np.integer):
                msg = f"qrels[{qid!r}][{docid!r}] must be an integer grade, got {grade!r}"
                raise ConfigError(msg)
        n_rel = sum(g >= 1 for g in judged.values())
        if n_rel:
            out[str(qid)] = (judged, n_rel)
    return out


def _evaluate(
    run: Run, qrels: Qrels, requests: Sequence[tuple[str, int]]
) -> dict[tuple[str, int], dict[str, float]]:
    """Per-query scores for each ``(measure, k)`` request, ranking every query once."""
    for name, k in requests:
        if name not in _MEASURES:
            msg = f"unknown retrieval measure {name!r}; choose from {', '.join(RETRIEVAL_MEASURES)}"
            raise ConfigError(msg)
        _check_k(k)
    if not isinstance(run, Mapping) or not isinstance(qrels, Mapping):
        msg = "run and qrels must be mappings of qid -> docid -> value"
        raise ConfigError(msg)
    judged_queries = _judged_queries(qrels)
    max_k = max(int(k) for _, k in requests)
    out: dict[tuple[str, int], dict[str, float]] = {(n, int(k)): {} for n, k in requests}
    for qid, (judged, n_rel) in judged_queries.items():
        scores = run.get(qid, {})
        if not isinstance(scores, Mapping):
            msg = f"run[{qid!r}] must map docids to scores, got {type(scores).__name__}"
            raise ConfigError(msg)
        ranked = [d for d, _ in rank_documents(scores)[:max_k]]
        for name, k in requests:
            out[(name, int(k))][qid] = _MEASURES[name](ranked[: int(k)], judged, n_rel, int(k))
    return out


def per_query_scores(run: Run, qrels: Qrels, measure: str, k: int) -> dict[str, float]:
    """One retrieval measure at cutoff ``k`` for each judged query.

    Args:
        run: qid -> docid -> score.
        qrels: qid -> docid -> relevance grade (>= 1 is relevant).
        measure: One of :data:`RETRIEVAL_MEASURES`: ``recall``, ``hit``, ``mrr``, ``ndcg``,
            ``precision``.
        k: Cutoff, at least 1.

    Returns:
        qid -> score, for every query of ``qrels`` with a relevant document (queries the
        run misses score 0.0; queries without relevant documents are left out).

    Raises:
        ConfigError: On an unknown measure, a bad ``k`` or malformed inputs.

    Example:
        >>> per_query_scores({"q1": {"d1": 1.0}}, {"q1": {"d1": 1}, "q2": {"d2": 1}}, "hit", 1)
        {'q1': 1.0, 'q2': 0.0}
    """
    return _evaluate(run, qrels, [(measure, k)])[(measure, int(_check_k(k)))]


def _mean(per_query: Mapping[str, float]) -> float:
    if not per_query:
        msg = "qrels hold no query with a relevant document (grade >= 1); nothing to average"
        raise ConfigError(msg)
    return float(sum(per_query.values()) / len(per_query))


def recall_at_k(run: Run, qrels: Qrels, k: int) -> float:
    """Mean share of each query's relevant documents found in its top ``k``.

    See :func:`per_query_scores` for arguments, errors and the per-query values.

    Example:
        >>> recall_at_k({"q1": {"d1": 2.0, "d2": 1.0}}, {"q1": {"d2": 1, "d3": 1}}, k=1)
        0.0
        >>> recall_at_k({"q1": {"d1": 2.0, "d2": 1.0}}, {"q1": {"d2": 1, "d3": 1}}, k=2)
        0.5
    """
    return _mean(per_query_scores(run, qrels, "recall", k))


def hit_at_k(run: Run, qrels: Qrels, k: int) -> float:
    """Share of queries with at least one relevant document in the top ``k``.

    Example:
        >>> hit_at_k({"q1": {"d1": 2.0, "d2": 1.0}}, {"q1": {"d2": 1, "d3": 1}}, k=2)
        1.0
    """
    return _mean(per_query_scores(run, qrels, "hit", k))


def mrr_at_k(run: Run, qrels: Qrels, k: int) -> float:
    """Mean reciprocal rank of the first relevant document, 0 if none is in the top ``k``.

    Example:
        >>> mrr_at_k({"q1": {"d1": 2.0, "d2": 1.0}}, {"q1": {"d2": 1}}, k=2)
        0.5
    """
    return _mean(per_query_scores(run, qrels, "mrr", k))


def ndcg_at_k(run: Run, qrels: Qrels, k: int) -> float:
    """Mean nDCG at ``k`` with graded gains, as ``trec_eval``'s ``ndcg_cut_k``.

    DCG sums ``grade / log2(rank + 1)`` over the top ``k``; the ideal DCG ranks the judged
    documents by grade.

    Example:
        >>> round(ndcg_at_k({"q1": {"d1": 2.0, "d2": 1.0}}, {"q1": {"d1": 1, "d2": 2}}, k=2), 4)
        0.8597
    """
    return _mean(per_query_scores(run, qrels, "ndcg", k))


def precision_at_k(run: Run, qrels: Qrels, k: int) -> float:
    """Mean share of relevant documents in the top ``k``, always divided by ``k``.

    Example:
        >>> precision_at_k({"q1": {"d1": 2.0, "d2": 1.0}}, {"q1": {"d2": 1}}, k=4)
        0.25
    """
    return _mean(per_query_scores(run, qrels, "precision", k))


def retrieval_metrics(run: Run, qrels: Qrels, ks: Iterable[int] = (1, 5, 10)) -> dict[str, float]:
    """All retrieval measures at each cutoff, keyed ``recall@k``, ``hit@k``, ``mrr@k``, ...

    Args:
        run: qid -> docid -> score.
        qrels: qid -> docid -> relevance grade.
        ks: Cutoffs, each at least 1.

    Returns:
        ``{"recall@1": ..., "hit@1": ..., "mrr@1": ..., "ndcg@1": ..., "precision@1": ...,
        "recall@5": ...}``: means over the judged queries (see the module docstring).

    Raises:
        ConfigError: On a bad cutoff, malformed inputs or qrels without relevant documents.

    Example:
        >>> m = retrieval_metrics({"q1": {"d1": 2.0, "d2": 1.0}}, {"q1": {"d2": 1}}, ks=(1, 2))
        >>> m["hit@1"], m["hit@2"], m["precision@2"]
        (0.0, 1.0, 0.5)
    """
    cutoffs = [_check_k(k) for k in ks]
    if not cutoffs:
        msg = "retrieval_metrics needs at least one cutoff in ks"
        raise ConfigError(msg)
    cutoffs = list(dict.fromkeys(cutoffs))
    requests = [(name, k) for k in cutoffs for name in RETRIEVAL_MEASURES]
    scores = _evaluate(run, qrels, requests)
    return {f"{name}@{k}": _mean(scores[(name, k)]) for name, k in requests}


# --------------------------------------------------------------------------- poisoning


def attack_success_rate(
    predictions: Sequence[str], targets: Sequence[str | Iterable[str]]
) -> float:
    """Share of predictions that contain the adversary's target answer (``asr``).

    Containment is :func:`contains_answer`: normalised, on word boundaries.

    Args:
        predictions: One predicted answer per attacked question.
        targets: The target (incorrect) answer for each question, or several alternatives.

    Raises:
        ConfigError: If the sequences are empty or differ in length.

    Example:
        >>> attack_success_rate(["It is in Rome.", "Paris"], ["Rome", "Berlin"])
        0.5
    """
    if len(predictions) != len(targets):
        msg = (f"attack_success_rate needs one target per prediction, got "
               f"{len(predictions)} predictions and {len(targets)} targets")
        raise ConfigError(msg)
    if not predictions:
        msg = "attack_success_rate needs at least one prediction"
        raise ConfigError(msg)
    hits = [contains_answer(p, t) for p, t in zip(predictions, targets, strict=True)]
    return float(sum(hits) / len(hits))


def detector_scores(
    flagged: Iterable[str],
    poisoned: Iterable[str],
    total: Iterable[str],
    *,
    zero_division: float = 0.0,
) -> dict[str, float]:
    """Precision, recall, F1 and false-positive rate of a poison detector over passage ids.

    Args:
        flagged: Ids the detector flagged.
        poisoned: Ids that really are poisoned.
        total: Every id the detector looked at; must include the other two.
        zero_division: Precision, recall and F1 when undefined (nothing flagged, nothing
            poisoned), as scikit-learn's ``zero_division``. The false-positive rate is 0.0
            when there are no clean ids.

    Returns:
        ``detector_precision``, ``detector_recall``, ``detector_f1`` and
        ``false_positive_rate`` (flagged clean ids over clean ids).

    Raises:
        ConfigError: If ``flagged`` or ``poisoned`` holds ids missing from ``total``.

    Example:
        >>> scores = detector_scores({"p1", "c1"}, {"p1", "p2"}, {"p1", "p2", "c1", "c2"})
        >>> scores["detector_precision"], scores["detector_recall"], scores["false_positive_rate"]
        (0.5, 0.5, 0.5)
    """
    flagged_set, poisoned_set, total_set = set(flagged), set(poisoned), set(total)
    for name, ids in (("flagged", flagged_set), ("poisoned", poisoned_set)):
        unknown = ids - total_set
        if unknown:
            msg = f"{name} ids missing from total: {sorted(map(str, unknown))[:5]}"
            raise ConfigError(msg)
    tp = len(flagged_set & poisoned_set)
    fp = len(flagged_set - poisoned_set)
    fn = len(poisoned_set - flagged_set)
    clean = len(total_set - poisoned_set)
    return {
        "detector_precision": tp / (tp + fp) if tp + fp else float(zero_division),
        "detector_recall": tp / (tp + fn) if tp + fn else float(zero_division),
        # 2TP / (2TP + FP + FN) equals the harmonic mean and needs no precision/recall guard.
        "detector_f1": 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else float(zero_division),
        "false_positive_rate": fp / clean if clean else 0.0,
    }


def source_adoption(sources: Iterable[str]) -> dict[str, float]:
    """Share of answers taken from each source (``source_adoption``).

    Args:
        sources: One :attr:`rag.types.Answer.source` per answer: ``user``, ``memory``,
            ``corpus``, ``parametric`` or ``none`` (abstained).

    Returns:
        Every source of :data:`ADOPTION_SOURCES` with its share (zeros included), in that
        order; the shares sum to 1.

    Raises:
        ConfigError: If ``sources`` is empty or holds an unknown source.

    Example:
        >>> source_adoption(["memory", "corpus", "memory", "none"])
        {'user': 0.0, 'memory': 0.5, 'corpus': 0.25, 'parametric': 0.0, 'none': 0.25}
    """
    counts = Counter(sources)
    unknown = set(counts) - set(ADOPTION_SOURCES)
    if unknown:
        msg = (f"unknown answer sources {sorted(map(str, unknown))}; "
               f"expected one of {', '.join(ADOPTION_SOURCES)}")
        raise ConfigError(msg)
    n = sum(counts.values())
    if not n:
        msg = "source_adoption needs at least one answer source"
        raise ConfigError(msg)
    return {s: counts[s] / n for s in ADOPTION_SOURCES}


# --------------------------------------------------------------------------- latency


def latency_summary(ms: Iterable[float]) -> dict[str, float]:
    """Median and 95th percentile of per-question latencies in milliseconds.

    Percentiles interpolate linearly between samples (numpy's default).

    Args:
        ms: Latencies in milliseconds.

    Raises:
        ConfigError: If ``ms`` is empty or holds a negative or non-finite value.

    Example:
        >>> latency_summary(range(101))
        {'latency_ms_p50': 50.0, 'latency_ms_p95': 95.0}
    """
    values = np.asarray(list(ms), dtype=np.float64)
    if values.size == 0:
        msg = "latency_summary needs at least one latency"
        raise ConfigError(msg)
    if not np.all(np.isfinite(values)) or np.any(values < 0):
        msg = f"latencies must be finite and >= 0, got min={values.min()}, max={values.max()}"
        raise ConfigError(msg)
    p50, p95 = np.percentile(values, [50, 95])
    return {"latency_ms_p50": float(p50), "latency_ms_p95": float(p95)}
