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

NOTE = Passage("n1", "Nicholas Brody is not a character on Homeland.", kind="note")


@pytest.mark.parametrize(("text", "sign"), [
    ("Brody is a character.", 1), ("Brody is not a character.", -1), ("Brody isn't a character.", -1),
    ("Fox refused to release the film.", -1), ("Fox never failed to release the film.", 1),
    ("Nobody saw it.", -1),
])
def test_polarity_counts_negations(text, sign):
    assert polarity(text) == sign


def test_claim_and_its_negation_are_answered_oppositely():
    checker = ClaimChecker(HashEmbedder())
    assert checker.check("Nicholas Brody is not a character on Homeland.", {"memory": [NOTE]}).verdict == SUPPORTED
    negated = checker.check("Nicholas Brody is a character on Homeland.", {"memory": [NOTE]})
    assert negated.verdict == REFUTED and negated.citations == ("n1",) and negated.source == "memory"
    assert negated.evidence == (NOTE.text,)


def test_another_value_for_the_slot_refutes_and_a_missing_one_does_not():
    note = Passage("n2", "Telemundo is a Spanish-language television network.", kind="note")
    checker = ClaimChecker(HashEmbedder(), topic_threshold=0.3)
    other = checker.check("Telemundo is an English-language television network.", {"memory": [note]})
    assert other.verdict == REFUTED and "english-language" in other.reason
    negative = Passage("n3", "Telemundo is not a Spanish-language television network.", kind="note")
    assert checker.check("Telemundo is an English-language television network.",
                         {"memory": [negative]}).verdict == NOT_ENOUGH  # "not A" says nothing of B


def test_off_topic_and_unnamed_evidence_decide_nothing():
    checker = ClaimChecker(HashEmbedder())
    verdict = checker.check("The moon is made of green cheese.", {"memory": [NOTE]})
    assert verdict.verdict == NOT_ENOUGH and verdict.source == "none" and not verdict.citations


def test_higher_level_decides_and_lower_disagreement_is_a_conflict():
    checker = ClaimChecker(HashEmbedder())
    user = Passage("user:0", "Nicholas Brody is a character on Homeland.", kind="note")
    verdict = checker.check("Nicholas Brody is a character on Homeland.", {"user": [user], "memory": [NOTE]})
    assert verdict.verdict == SUPPORTED and verdict.source == "user"
    assert [c["source"] for c in verdict.conflicts] == ["memory"]
    corpus_first = ClaimChecker(HashEmbedder(), order=("corpus", "memory", "user"))
    assert corpus_first.check("Nicholas Brody is a character on Homeland.",
                              {"user": [user], "memory": [NOTE]}).source == "memory"


def test_parametric_answer_only_when_no_evidence_decides():
    from rag.stages.read import Reader

    gen = ScriptedGenerator({r"Is it true that": "No."})
    checker = ClaimChecker(HashEmbedder(), Reader(gen))
    verdict = checker.check("The moon is made of green cheese.", {})
    assert verdict.verdict == REFUTED and verdict.source == "parametric"
    assert checker.check("Nicholas Brody is not a character on Homeland.", {"memory": [NOTE]}).source == "memory"
    assert gen.calls == 1


def test_bad_configuration():
    with pytest.raises(ConfigError, match="word_threshold"):
        ClaimChecker(HashEmbedder(), word_threshold=2.0)
    with pytest.raises(ConfigError, match="unknown levels"):
        ClaimChecker(HashEmbedder(), order=("memory", "web"))


def test_pipeline_check_reads_memory_user_facts_and_namespaces(tmp_path):
    store = Store(tmp_path / "s", HashEmbedder())
    KnowledgeEditor(store).edit("Nicholas Brody is not a character on Homeland.", namespace="alice")
    pipe = Pipeline(store, ScriptedGenerator(default="yes"), PipelineConfig(parametric="never"))
    claim = "Nicholas Brody is a character on Homeland."
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
    cli.main(["-q", "edit", "add", "Nicholas Brody is not a character on Homeland.", "--store", store])
    capsys.readouterr()
    assert cli.main(["-q", "check", "Nicholas Brody is a character on Homeland.", "--store", store, "--json"]) == 0
    verdict = json.loads(capsys.readouterr().out)
    assert verdict["verdict"] == REFUTED and verdict["source"] == "memory" and verdict["citations"]
    assert cli.main(["-q", "check", "Nicholas Brody is not a character on Homeland.", "--store", store]) == 0
    out = capsys.readouterr().out
    assert out.startswith("supported") and "Homeland" in out and "[note-" in out
    assert cli.main(["-q", "check", "x", "--store", str(tmp_path / "missing")]) == 2
    assert "missing" in capsys.readouterr().err


def _corpus(tmp_path):
    path = tmp_path / "corpus.jsonl"
    path.write_text(json.dumps({"_id": "c1", "title": "Homeland", "text": "Homeland is a television series."}) + "\n")
    return path


def test_a_sentence_about_something_else_that_shares_a_name_decides_nothing():
    corpus = Passage("c1", "Homeland is an American television series.")
    checker = ClaimChecker(HashEmbedder(), topic_threshold=0.0)
    verdict = checker.check("Nicholas Brody isn't a character on Homeland.", {"corpus": [corpus]})
    assert verdict.verdict == NOT_ENOUGH
