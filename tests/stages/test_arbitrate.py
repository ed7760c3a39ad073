"""The arbiter's judgments apart from the pipeline: invented facts, fakes only."""

from rag.stages.arbitrate import Candidate, fact_candidates, suspect_parametric
from rag.stages.filter import KnowledgeFilter
from rag.testing import HashEmbedder
from rag.types import Passage

Q = "What is the capital of Ostrelia?"


def test_a_closed_book_answer_saying_what_the_quarantined_passages_say_is_suspect():
    closed_book = Candidate("parametric", "the city of Duskmere")
    corpus = Candidate("corpus", "Duskmere", ("p1",))
    # only the closed-book answer is suspect, never the corpus's
    assert suspect_parametric([corpus, closed_book], ["Duskmere"]) == [closed_book]
    assert suspect_parametric([corpus, closed_book], ["Varnholm"]) == []
    assert suspect_parametric([corpus, closed_book], []) == []  # nothing quarantined


def test_each_trusted_source_offers_the_answer_of_its_best_fact():
    notes = [Passage("n1", "The capital of Ostrelia is Varnholm.", kind="note"),
             Passage("u0", "The capital of Ostrelia is Duskmere.", kind="note")]
    kept = KnowledgeFilter(HashEmbedder()).filter(Q, notes, sources=["memory", "user"]).kept
    offered = [(c.source, c.answer, c.evidence) for c in fact_candidates(kept)]
    # the user's first, whatever the order of the evidence
    assert offered == [("user", "Duskmere", ("u0",)), ("memory", "Varnholm", ("n1",))]
    assert fact_candidates([e for e in kept if e.source == "memory"])[0].source == "memory"


def test_of_equally_good_facts_the_askers_own_namespace_wins():
    notes = [Passage("shared", "The capital of Ostrelia is Varnholm.", kind="note"),
             Passage("mine", "The capital of Ostrelia is Duskmere.", kind="note", namespace="ana")]
    kept = KnowledgeFilter(HashEmbedder()).filter(Q, notes, sources=["memory", "memory"]).kept
    assert kept[0].score == kept[1].score
    assert [c.evidence for c in fact_candidates(kept)] == [("mine",)]
    assert [c.evidence for c in fact_candidates(list(reversed(kept)))] == [("mine",)]
