import copy
import math

import numpy as np
import pytest

from rag.errors import ConfigError
from rag.metrics import (
    ADOPTION_SOURCES,
    attack_success_rate,
    contains_answer,
    detector_scores,
    exact_match,
    f1_score,
    hit_at_k,
    latency_summary,
    mrr_at_k,
    ndcg_at_k,
    normalize_answer,
    per_query_scores,
    precision_at_k,
    rank_documents,
    recall_at_k,
    retrieval_metrics,
    source_adoption,
)

# ------------------------------------------------------------------ answers


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("The Quick, Brown Fox!", "quick brown fox"),
        ("  an   apple a day ", "apple day"),
        ("theater", "theater"),  # articles only as whole words
        ("Pelé’s “Café”", "peles cafe"),  # accents and Unicode punctuation
        ("Denver Broncos.", "denver broncos"),
        ("$1,000", "1000"),  # SQuAD strips ASCII symbols too
        ("", ""),
    ],
)
def test_normalize_answer(text, expected):
    assert normalize_answer(text) == expected


def test_exact_match_squad_examples():
    golds = ["Denver Broncos", "The Denver Broncos", "Broncos"]
    assert exact_match("the denver broncos!", golds) == 1.0
    assert exact_match("Broncos", golds) == 1.0
    assert exact_match("Denver", golds) == 0.0
    assert exact_match("Pele", "Pelé") == 1.0  # a bare string is one gold, not characters


def test_f1_squad_examples():
    # SQuAD's worked case: 'the Broncos' vs 'Denver Broncos': P=1, R=1/2.
    assert f1_score("the Broncos", ["Denver Broncos"]) == pytest.approx(2 / 3)
    # Max over golds.
    assert f1_score("the Broncos", ["Denver Broncos", "Broncos"]) == 1.0
    # Repeated tokens count once per occurrence in both (bag-of-words overlap).
    assert f1_score("paris paris", ["paris"]) == pytest.approx(2 * 0.5 * 1 / 1.5)
    assert f1_score("london", ["paris"]) == 0.0
    # Both empty after normalisation agree; one empty scores 0.
    assert f1_score("The", ["a"]) == 1.0
    assert f1_score("", ["paris"]) == 0.0


def test_contains_answer_word_boundaries():
    assert contains_answer("It was built in Paris, France.", ["paris"]) == 1.0
    assert contains_answer("Parisian style", ["Paris"]) == 0.0
    assert contains_answer("the new york times", ["New York"]) == 1.0
    assert contains_answer("newyork", ["new york"]) == 0.0
    # A gold that normalises to nothing does not match everything.
    assert contains_answer("anything at all", ["the"]) == 0.0
    assert contains_answer("", ["the"]) == 1.0


@pytest.mark.parametrize("fn", [exact_match, f1_score, contains_answer])
def test_answer_metrics_need_golds(fn):
    with pytest.raises(ConfigError, match="gold"):
        fn("paris", [])


# ------------------------------------------------------------------ retrieval fixture
#
# q1: graded qrels, a judged non-relevant doc, a relevant doc the run never returns.
# q2: ties everywhere (trec_eval breaks them by docid descending).
# q3: judged but missing from the run (counts 0 in our means).
# q4: judged, no relevant document (skipped in our means).
# q5: fewer than k retrieved; relevant doc at rank 3.
# q6: more relevant docs than small cutoffs, and a negative grade.
# q7: in the run only (ignored).

QRELS = {
    "q1": {"d1": 2, "d2": 1, "d5": 3, "d9": 0, "d8": 1},
    "q2": {"da": 1, "dc": 2, "dd": 0},
    "q3": {"x1": 1},
    "q4": {"y1": 0, "y2": 0},
    "q5": {"e3": 1},
    "q6": {"f1": 3, "f2": 2, "f3": 1, "f4": 1, "f5": 1, "f6": -1},
}
RUN = {
    "q1": {"d1": 9.0, "d9": 8.5, "d2": 8.5, "d3": 7.0, "d5": 6.0, "d4": 5.0, "d6": 1.0},
    "q2": {"da": 1.0, "db": 1.0, "dc": 1.0, "dd": 1.0, "de": 0.5},
    "q4": {"y1": 3.0, "y3": 2.0},
    "q5": {"e1": 0.9, "e2": 0.8, "e3": 0.7},
    "q6": {"f6": 10.0, "f5": 9.0, "z": 8.0, "f1": 7.0, "f2": 7.0, "f9": 6.0, "f3": 5.0},
    "q7": {"d1": 1.0},
}
KS = (1, 2, 3, 5, 10)
JUDGED = ["q1", "q2", "q3", "q5", "q6"]  # queries with a relevant document


def test_hand_checked_values():
    """Values worked out by hand, so the metrics stay checked without pytrec_eval."""
    # q2 ranks dd, dc, db, da (docid descending among the 1.0 ties), then de.
    assert [d for d, _ in rank_documents(RUN["q2"])] == ["dd", "dc", "db", "da", "de"]
    # q1 ranks d1, d9, d2 (tie at 8.5 broken by docid descending), d3, d5, d4, d6.
    assert per_query_scores(RUN, QRELS, "mrr", 1)["q1"] == 1.0
    assert per_query_scores(RUN, QRELS, "mrr", 1)["q2"] == 0.0
    assert per_query_scores(RUN, QRELS, "mrr", 2)["q2"] == 0.5
    assert per_query_scores(RUN, QRELS, "mrr", 2)["q5"] == 0.0
    assert per_query_scores(RUN, QRELS, "mrr", 3)["q5"] == pytest.approx(1 / 3)
    assert per_query_scores(RUN, QRELS, "recall", 3)["q1"] == pytest.approx(2 / 4)
    assert per_query_scores(RUN, QRELS, "precision", 10)["q5"] == pytest.approx(0.1)
    # q1 nDCG@3: gains 2, 0, 1 vs ideal 3, 2, 1.
    dcg = 2 + 0 / math.log2(3) + 1 / 2
    idcg = 3 + 2 / math.log2(3) + 1 / 2
    assert per_query_scores(RUN, QRELS, "ndcg", 3)["q1"] == pytest.approx(dcg / idcg)
    # q6 nDCG@2: f6 (grade -1 gains 0), f5 (1); ideal 3, 2.
    assert per_query_scores(RUN, QRELS, "ndcg", 2)["q6"] == pytest.approx(
        (1 / math.log2(3)) / (3 + 2 / math.log2(3))
    )
    # Means cover q1, q2, q3 (0: missing from the run), q5, q6; q4 has nothing relevant.
    assert set(per_query_scores(RUN, QRELS, "hit", 1)) == set(JUDGED)
    assert per_query_scores(RUN, QRELS, "hit", 1)["q3"] == 0.0
    assert hit_at_k(RUN, QRELS, 1) == pytest.approx(1 / 5)  # only q1
    assert hit_at_k(RUN, QRELS, 3) == pytest.approx(4 / 5)  # all but q3
    assert mrr_at_k(RUN, QRELS, 2) == pytest.approx((1 + 0.5 + 0 + 0 + 0.5) / 5)
    assert precision_at_k(RUN, QRELS, 1) == pytest.approx(1 / 5)
    assert recall_at_k(RUN, QRELS, 1) == pytest.approx((1 / 4) / 5)
    assert ndcg_at_k(RUN, QRELS, 1) == pytest.approx((2 / 3) / 5)


def _reference(pytrec_eval, run, qrels):
    """Means as our convention defines them, from trec_eval's per-query numbers."""
    measures = {"recall", "P", "ndcg_cut", "success", "recip_rank"}
    cut = ".".join(["", ",".join(map(str, KS))])
    evaluator = pytrec_eval.RelevanceEvaluator(
        qrels, {m + cut if m != "recip_rank" else m for m in measures}
    )
    per_query = evaluator.evaluate(run)
    ref = {}
    for k in KS:
        for ours, theirs in [("recall", f"recall_{k}"), ("precision", f"P_{k}"),
                             ("ndcg", f"ndcg_cut_{k}"), ("hit", f"success_{k}")]:
            ref[f"{ours}@{k}"] = {q: per_query.get(q, {}).get(theirs, 0.0) for q in JUDGED}
        # trec_eval has no recip_rank cutoff: RR@k is RR when the first hit is within k.
        rr = {q: per_query.get(q, {}).get("recip_rank", 0.0) for q in JUDGED}
        ref[f"mrr@{k}"] = {q: v if v >= 1 / k - 1e-12 else 0.0 for q, v in rr.items()}
    return per_query, ref


def test_agrees_with_trec_eval():
    pytrec_eval = pytest.importorskip("pytrec_eval")
    per_query, ref = _reference(pytrec_eval, RUN, QRELS)
    ours = retrieval_metrics(RUN, QRELS, ks=KS)
    assert set(ours) == set(ref)
    for key, values in ref.items():
        name, k = key.split("@")
        assert ours[key] == pytest.approx(np.mean(list(values.values())), abs=1e-6), key
        got = per_query_scores(RUN, QRELS, name, int(k))
        for qid in JUDGED:
            assert got[qid] == pytest.approx(values[qid], abs=1e-6), (key, qid)


def test_trec_eval_conventions_we_depart_from():
    """trec_eval averages over queries in both files, zeros for no-relevant queries."""
    pytrec_eval = pytest.importorskip("pytrec_eval")
    per_query = pytrec_eval.RelevanceEvaluator(QRELS, {"P_1"}).evaluate(RUN)
    assert "q3" not in per_query  # missing from the run: dropped (we count it as 0)
    assert per_query["q4"]["P_1"] == 0.0  # no relevant docs: averaged in (we skip it)
    assert "q4" not in per_query_scores(RUN, QRELS, "precision", 1)


def test_agrees_with_trec_eval_on_random_runs():
    pytrec_eval = pytest.importorskip("pytrec_eval")
    rng = np.random.default_rng(0)
    qrels, run = {}, {}
    for q in range(30):
        docs = [f"d{i:02d}" for i in range(25)]
        qrels[f"q{q}"] = {d: int(rng.integers(0, 4)) for d in rng.choice(docs, 8, replace=False)}
        # Scores from a small set of values, so ties are common.
        run[f"q{q}"] = {d: float(rng.integers(0, 5)) for d in rng.choice(docs, 15, replace=False)}
    judged = [q for q, j in qrels.items() if any(g >= 1 for g in j.values())]
    ev = pytrec_eval.RelevanceEvaluator(qrels, {"ndcg_cut.1,5,10", "P.1,5,10", "recall.1,5,10"})
    theirs = ev.evaluate(run)
    ours = retrieval_metrics(run, qrels, ks=(1, 5, 10))
    for k in (1, 5, 10):
        for name, tname in [("ndcg", "ndcg_cut"), ("precision", "P"), ("recall", "recall")]:
            expected = np.mean([theirs[q][f"{tname}_{k}"] for q in judged])
            assert ours[f"{name}@{k}"] == pytest.approx(expected, abs=1e-6)


def test_retrieval_metrics_keys_and_no_mutation():
    run, qrels = copy.deepcopy(RUN), copy.deepcopy(QRELS)
    m = retrieval_metrics(run, qrels, ks=(1, 5))
    names = ("recall", "hit", "mrr", "ndcg", "precision")
    assert list(m) == [f"{n}@{k}" for k in (1, 5) for n in names]
    assert run == RUN and qrels == QRELS


@pytest.mark.parametrize("k", [0, -1, 1.5, True, "3"])
def test_bad_cutoff(k):
    with pytest.raises(ConfigError, match="k must be"):
        recall_at_k(RUN, QRELS, k)
    with pytest.raises(ConfigError, match="k must be"):
        retrieval_metrics(RUN, QRELS, ks=(1, k))


def test_retrieval_input_errors():
    with pytest.raises(ConfigError, match="no query with a relevant"):
        hit_at_k(RUN, {"q4": {"y1": 0}}, 1)
    with pytest.raises(ConfigError, match="unknown retrieval measure 'map'"):
        per_query_scores(RUN, QRELS, "map", 1)
    with pytest.raises(ConfigError, match="'d1'"):
        hit_at_k({"q1": {"d1": float("nan")}}, QRELS, 1)
    with pytest.raises(ConfigError, match=r"qrels\['q1'\]\['d1'\]"):
        hit_at_k(RUN, {"q1": {"d1": 1.0}}, 1)
    with pytest.raises(ConfigError, match="cutoff"):
        retrieval_metrics(RUN, QRELS, ks=())


# ------------------------------------------------------------------ poisoning, sources, latency


def test_attack_success_rate():
    preds = ["It is in Rome.", "Paris", "romeo and juliet", "The answer is Berlin"]
    targets = ["Rome", "Rome", "Rome", ["Bonn", "Berlin"]]
    assert attack_success_rate(preds, targets) == 0.5
    with pytest.raises(ConfigError, match="3 predictions and 2 targets"):
        attack_success_rate(preds[:3], targets[:2])
    with pytest.raises(ConfigError, match="at least one"):
        attack_success_rate([], [])


def test_detector_scores():
    total = {f"c{i}" for i in range(6)} | {"p1", "p2", "p3", "p4"}
    s = detector_scores({"p1", "p2", "p3", "c0"}, {"p1", "p2", "p3", "p4"}, total)
    assert s["detector_precision"] == pytest.approx(3 / 4)
    assert s["detector_recall"] == pytest.approx(3 / 4)
    assert s["detector_f1"] == pytest.approx(3 / 4)
    assert s["false_positive_rate"] == pytest.approx(1 / 6)


def test_detector_scores_zero_division():
    total = {"c1", "c2", "p1"}
    # Nothing flagged, nothing poisoned: every ratio is 0/0.
    s = detector_scores(set(), set(), total)
    assert s == {"detector_precision": 0.0, "detector_recall": 0.0, "detector_f1": 0.0,
                 "false_positive_rate": 0.0}
    s = detector_scores(set(), set(), total, zero_division=1.0)
    assert s["detector_precision"] == s["detector_recall"] == s["detector_f1"] == 1.0
    # Nothing flagged, something poisoned: precision undefined, recall 0, F1 0.
    s = detector_scores([], ["p1"], total, zero_division=1.0)
    assert (s["detector_precision"], s["detector_recall"], s["detector_f1"]) == (1.0, 0.0, 0.0)
    # Clean corpus with a false alarm: recall undefined, precision 0, FPR 1/3.
    s = detector_scores({"c1"}, set(), total)
    assert (s["detector_precision"], s["detector_f1"]) == (0.0, 0.0)
    assert s["false_positive_rate"] == pytest.approx(1 / 3)
    # All poisoned: no clean ids, FPR 0.
    assert detector_scores({"p1"}, {"p1"}, {"p1"})["false_positive_rate"] == 0.0


def test_detector_scores_rejects_unknown_ids():
    with pytest.raises(ConfigError, match=r"flagged ids missing from total: \['zz'\]"):
        detector_scores({"zz"}, set(), {"a"})
    with pytest.raises(ConfigError, match="poisoned ids"):
        detector_scores(set(), {"zz"}, {"a"})


def test_source_adoption():
    shares = source_adoption(["memory", "memory", "corpus", "none"])
    assert list(shares) == list(ADOPTION_SOURCES)
    assert shares == {"user": 0.0, "memory": 0.5, "corpus": 0.25, "parametric": 0.0, "none": 0.25}
    assert sum(source_adoption(iter(["user", "parametric", "user"])).values()) == pytest.approx(1)
    with pytest.raises(ConfigError, match="'wiki'"):
        source_adoption(["memory", "wiki"])
    with pytest.raises(ConfigError, match="at least one"):
        source_adoption([])


def test_latency_summary():
    assert latency_summary([5.0]) == {"latency_ms_p50": 5.0, "latency_ms_p95": 5.0}
    s = latency_summary([10, 20, 30, 40])
    assert s["latency_ms_p50"] == 25.0
    assert s["latency_ms_p95"] == pytest.approx(38.5)
    for bad in ([], [1.0, -2.0], [float("nan")]):
        with pytest.raises(ConfigError):
            latency_summary(bad)
