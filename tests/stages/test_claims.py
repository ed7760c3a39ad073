"""Claim checking: sentence judgements, the preference order, Pipeline.check and `rag check`."""

from __future__ import annotations

import json

import pytest

from rag import cli
from rag.errors import ConfigError
from rag.memory.editor import KnowledgeEditor
from rag.memory.store import Store
from rag.pipeline import Pipeline, PipelineConfig
from rag.stages.claims import NOT_ENOUGH, REFUTED, SUPPORTED, ClaimChecker, polarity
from rag.testing import HashEmbedder, ScriptedGenerator
from rag.types import Passage, Query

NOTE = Passage("n1", "Orla Venn is not a member of the Kestrel Quartet.", kind="note")
CELLO = Passage("n2", "Orla Venn plays the cello in the Kestrel Quartet.", kind="note")


@pytest.mark.parametrize(("text", "sign"), [
    ("Venn is a member.", 1), ("Venn is not a member.", -1), ("Venn isn't a member.", -1),
    ("Harrow Films refused to release the film.", -1), ("Harrow Films never failed to release the film.", 1),
    ("Nobody saw it.", -1),
])
def test_polarity_counts_negations(text, sign):
    assert polarity(text) == sign


def test_a_negation_refutes_whatever_the_cosine():
    # HashEmbedder reads no stopwords, so the note and its negation have cosine 1.0
    checker = ClaimChecker(HashEmbedder(), same_threshold=0.95)
    verdict = checker.check("Orla Venn is a member of the Kestrel Quartet.", {"memory": [NOTE]})
    assert verdict.verdict == REFUTED and verdict.citations == ("n1",) and verdict.evidence == (NOTE.text,)
    assert verdict.score > 0.95 and "negation" in verdict.reason


def test_the_same_words_up_to_function_words_state_the_claim():
    # "never" and "isn't" negate as "not" does; "the" and a suffix change no statement
    checker = ClaimChecker(HashEmbedder(), same_threshold=1.0, rule_threshold=1.0)
    for claim in ("Orla Venn is never a member of the Kestrel Quartet.",
                  "Orla Venn isn't a member of Kestrel Quartet.",
                  "Orla Venn is not the members of the Kestrel Quartet."):
        verdict = checker.check(claim, {"memory": [NOTE]})
        assert verdict.verdict == SUPPORTED and "word for word" in verdict.reason


def test_a_differing_word_is_judged_by_the_cosine_then_the_rules():
    claim = "Orla Venn is not a member of the Kestrel String Quartet."
    loose = ClaimChecker(HashEmbedder(), same_threshold=0.6, rule_threshold=0.6)
    cosine = loose.check(claim, {"memory": [NOTE]})
    assert cosine.verdict == SUPPORTED and ">= 0.60" in cosine.reason
    # above the pair's cosine the rules read a claim word the note lacks ("string"): refuted
    strict = ClaimChecker(HashEmbedder(), same_threshold=1.0, rule_threshold=0.6)
    verdict = strict.check(claim, {"memory": [NOTE]})
    assert verdict.verdict == REFUTED and "string" in verdict.reason


def test_another_number_refutes_even_above_the_same_threshold():
    note = Passage("n3", "Orla Venn has won three Varnholm prizes.", kind="note")
    checker = ClaimChecker(HashEmbedder(), same_threshold=0.0, rule_threshold=0.0, topic_threshold=0.0)
    for claim in ("Orla Venn has won two Varnholm prizes.", "Orla Venn has won 4 Varnholm prizes."):
        verdict = checker.check(claim, {"memory": [note]})
        assert verdict.verdict == REFUTED and "another value" in verdict.reason
    assert checker.check("Orla Venn has won 3 Varnholm prizes.", {"memory": [note]}).verdict == SUPPORTED


def test_another_value_on_topic_refutes_and_off_topic_decides_nothing():
    checker = ClaimChecker(HashEmbedder(), topic_threshold=0.3)
    other = checker.check("Orla Venn plays the violin in the Kestrel Quartet.", {"memory": [CELLO]})
    assert other.verdict == REFUTED and "violin" in other.reason and other.citations == ("n2",)
    off = checker.check("The moon is made of green cheese.", {"memory": [CELLO]})
    assert off.verdict == NOT_ENOUGH and off.source == "none" and not off.citations


def test_the_closest_sentence_of_a_note_decides():
    note = Passage("n3", "Orla Venn was born in Dunmore. Orla Venn plays the cello in the Kestrel Quartet.",
                   kind="note")
    verdict = ClaimChecker(HashEmbedder()).check("Orla Venn plays the cello in the Kestrel Quartet.",
                                                  {"memory": [note]})
    assert verdict.verdict == SUPPORTED and verdict.evidence == ("Orla Venn plays the cello in the Kestrel Quartet.",)


def test_higher_level_decides_and_lower_disagreement_is_a_conflict():
    checker = ClaimChecker(HashEmbedder())
    user = Passage("user:0", "Orla Venn plays the violin in the Kestrel Quartet.", kind="note")
    claim = "Orla Venn plays the violin in the Kestrel Quartet."
    verdict = checker.check(claim, {"user": [user], "memory": [CELLO]})
    assert verdict.verdict == SUPPORTED and verdict.source == "user"
    assert [c["source"] for c in verdict.conflicts] == ["memory"]
    corpus_first = ClaimChecker(HashEmbedder(), order=("corpus", "memory", "user"))
    memory_wins = corpus_first.check(claim, {"user": [user], "memory": [CELLO]})
    assert memory_wins.source == "memory" and memory_wins.verdict == REFUTED


def test_parametric_answer_only_when_no_evidence_decides():
    from rag.stages.read import Reader

    gen = ScriptedGenerator({r"Is it true that": "No."})
    checker = ClaimChecker(HashEmbedder(), Reader(gen))
    verdict = checker.check("The moon is made of green cheese.", {})
    assert verdict.verdict == REFUTED and verdict.source == "parametric"
    assert checker.check("Orla Venn is not a member of the Kestrel Quartet.", {"memory": [NOTE]}).source == "memory"
    assert gen.calls == 1


def test_bad_configuration():
    with pytest.raises(ConfigError, match="word_threshold"):
        ClaimChecker(HashEmbedder(), word_threshold=2.0)
    with pytest.raises(ConfigError, match="must not exceed"):
        ClaimChecker(HashEmbedder(), same_threshold=0.8, rule_threshold=0.9)
    with pytest.raises(ConfigError, match="unknown levels"):
        ClaimChecker(HashEmbedder(), order=("memory", "web"))


def test_pipeline_check_reads_memory_user_facts_and_namespaces(tmp_path):
    store = Store(tmp_path / "s", HashEmbedder())
    KnowledgeEditor(store).edit("Orla Venn plays the cello in the Kestrel Quartet.", namespace="alice")
    pipe = Pipeline(store, ScriptedGenerator(default="yes"), PipelineConfig(parametric="never"))
    claim = "Orla Venn plays the violin in the Kestrel Quartet."
    assert pipe.check(Query(claim, namespace="alice")).verdict == REFUTED
    assert pipe.check(claim).verdict == NOT_ENOUGH  # another namespace's note is not evidence
    by_user = pipe.check(Query(claim, user_facts=(claim,), namespace="alice"))
    assert by_user.source == "user" and by_user.citations == ("user:0",) and by_user.conflicts
    with pytest.raises(ConfigError):
        pipe.check("  ")
    store.close()


def test_cli_check(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(cli, "_generator", lambda args: ScriptedGenerator(default=""))
    store = str(tmp_path / "store")
    cli.main(["-q", "index", "--corpus", str(_corpus(tmp_path)), "--store", store, "--embedder", "hash-64"])
    cli.main(["-q", "edit", "add", "Orla Venn plays the cello in the Kestrel Quartet.", "--store", store])
    capsys.readouterr()
    assert cli.main(["-q", "check", "Orla Venn plays the violin in the Kestrel Quartet.", "--store", store, "--json"]) == 0
    verdict = json.loads(capsys.readouterr().out)
    assert verdict["verdict"] == REFUTED and verdict["source"] == "memory" and verdict["citations"]
    assert cli.main(["-q", "check", "Orla Venn plays the cello in the Kestrel Quartet.", "--store", store]) == 0
    out = capsys.readouterr().out
    assert out.startswith("supported") and "Kestrel" in out and "[note-" in out
    assert cli.main(["-q", "check", "x", "--store", str(tmp_path / "missing")]) == 2
    assert "missing" in capsys.readouterr().err


def _corpus(tmp_path):
    path = tmp_path / "corpus.jsonl"
    path.write_text(json.dumps({"_id": "c1", "title": "Dunmore", "text": "Dunmore is a town by the sea."}) + "\n")
    return path


def test_a_sentence_that_shares_no_name_with_the_claim_decides_nothing():
    corpus = Passage("c1", "Marta Olsen plays the cello in the Lindqvist Trio.")
    checker = ClaimChecker(HashEmbedder(), topic_threshold=0.0)
    verdict = checker.check("Orla Venn plays the cello in the Kestrel Quartet.", {"corpus": [corpus]})
    assert verdict.verdict == NOT_ENOUGH and not verdict.citations
    named = checker.check("Orla Venn plays the cello in the Kestrel Quartet.", {"corpus": [CELLO]})
    assert named.verdict == SUPPORTED and named.source == "corpus"


def test_a_claim_naming_only_a_number_is_on_topic_and_another_number_refutes_it():
    note = Passage("n4", "The kestrel beats its wings close to 10 times per second.", kind="note")
    checker = ClaimChecker(HashEmbedder(), topic_threshold=0.3)
    verdict = checker.check("The kestrel beats its wings almost 22 times per second.", {"memory": [note]})
    assert verdict.verdict == REFUTED and "another value" in verdict.reason
