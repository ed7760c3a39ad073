"""The editing evaluation on tiny invented EREN-format files (facts, prose, claims), fakes only."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rag.errors import InputFormatError
from rag.evaluation.editing import load_eren, run_editing_eval
from rag.testing import HashEmbedder, ScriptedGenerator


def _closed_book(prompt: str) -> str:
    """What the fake 'remembers' closed-book: Veldoria's capital right, its river wrong."""
    question = prompt.rsplit("Question:", 1)[-1]
    if "river" in question:
        return "Ashbourne"  # the true answer is Silverrun: wrong with or without edits
    if "capital" in question:
        return "Marrowgate"
    return ""


FACTS = [{
    "edit_statement": "The capital of Veldoria is Kelmshore.",
    "edit_scope": [["What is the capital of Veldoria?", "Kelmshore"],
                   ["Which city is the capital of Veldoria?", "Kelmshore"]],
    "edit_scope_true_ans": ["Marrowgate", "Marrowgate"],
    "unrelated": {"same_subj": ["What is the longest river of Veldoria?"], "neighbor_subj": []},
    "unrelated_true_ans": {"same_subj": ["Silverrun"], "neighbor_subj": []},
}]


def _write(tmp: Path, name: str, data) -> Path:
    path = tmp / name
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def _run(tmp: Path, data: Path, configs=("full",)):
    metrics = run_editing_eval(data, tmp / "run", embedder=HashEmbedder(), generator=ScriptedGenerator(_closed_book),
                               configs=configs, show_progress=False)
    preds = [json.loads(line) for line in (tmp / "run" / "predictions.jsonl").read_text().splitlines()]
    return metrics, preds


def test_locality_is_accuracy_on_true_answers_and_stability_is_unchanged_answers(tmp_path):
    metrics, preds = _run(tmp_path, _write(tmp_path, "cfh.json", FACTS))
    m = metrics["full"]
    assert m["edit_success"] == 1.0 and m["generalization"] == 1.0
    # the river question is answered as without edits (stable) but wrongly (not local):
    # the old definition called this locality 1.0
    assert m["stability"] == 1.0
    assert m["locality"] == 0.0
    assert m["edit_leak"] == 0.0
    unrelated = next(p for p in preds if p["kind"] == "unrelated")
    assert unrelated["true_answers"] == ["Silverrun"] and unrelated["answer_without_edits"] == "Ashbourne"


def test_misaligned_true_answers_count_any_answer_of_the_group(tmp_path):
    rec = dict(FACTS[0], unrelated={"same_subj": ["Q1?", "Q2?"]}, unrelated_true_ans={"same_subj": ["a", "b", "c"]})
    case = load_eren(_write(tmp_path, "x.json", [rec]))[0]
    assert case.unrelated == (("Q1?", ("a", "b", "c")), ("Q2?", ("a", "b", "c")))
    aligned = load_eren(_write(tmp_path, "y.json", FACTS))[0]
    assert aligned.unrelated == (("What is the longest river of Veldoria?", ("Silverrun",)),)


@pytest.mark.parametrize("statement", [
    ["Korvel's Quarterly (1844-1846) was an Ostrelian literary periodical.", "Tallow Review was started in 1989."],
    json.dumps(["Korvel's Quarterly (1844-1846) was an Ostrelian literary periodical.",
                "Tallow Review was started in 1989."]),
    str(["Korvel's Quarterly (1844-1846) was an Ostrelian literary periodical.",  # Python repr: single quotes
         "Tallow Review was started in 1989."]),
])
def test_prose_statements_as_list_or_its_string_form(tmp_path, statement):
    rec = {"edit_statement": statement, "type": "comparison",
           "edit_scope": [["Which magazine was started first, Korvel's Quarterly or Tallow Review?", "Korvel's Quarterly"]],
           "edit_scope_true_ans": ["Korvel's Quarterly"]}
    case = load_eren(_write(tmp_path, "hotpot.json", [rec]))[0]
    assert case.kind == "qa" and case.unrelated == ()
    assert case.notes == ("Korvel's Quarterly (1844-1846) was an Ostrelian literary periodical.",
                          "Tallow Review was started in 1989.")
    assert case.note.count("\n") == 1


def test_a_plain_string_statement_is_one_note(tmp_path):
    rec = dict(FACTS[0], edit_statement="[sic] The capital of Veldoria is Kelmshore.")
    assert load_eren(_write(tmp_path, "s.json", [rec]))[0].notes == ("[sic] The capital of Veldoria is Kelmshore.",)


@pytest.mark.parametrize(("data", "problem"), [
    ("not json", "cannot read EREN file"),
    ({"edit_statement": "x"}, "expected a JSON list of edits"),
    ([{"edit_scope": [["q?", "a"]]}], "edit 0 is malformed: missing edit_statement"),
    ([{"edit_statement": "['unclosed", "edit_scope": [["q?", "a"]]}], None),  # not a list form: one note
    ([{"edit_statement": "[1, 2", "edit_scope": [["q?", "a"]]}], None),
    ([{"edit_statement": "['a', __import__('os')]", "edit_scope": [["q?", "a"]]}], "neither JSON nor a Python list"),
    ([{"edit_statement": [], "edit_scope": [["q?", "a"]]}], "edit_statement is empty"),
    ([{"edit_statement": "s", "edit_scope": []}], "edit_scope is empty"),
    ([{"edit_statement": "s", "edit_scope": [["only a question"]]}], "edit 0 is malformed"),
    ([], "holds no edits"),
])
def test_bad_input_names_the_file_and_the_problem(tmp_path, data, problem):
    path = tmp_path / "bad.json"
    path.write_text(data if isinstance(data, str) else json.dumps(data), encoding="utf-8")
    if problem is None:
        assert load_eren(path)
        return
    with pytest.raises(InputFormatError) as err:
        load_eren(path)
    message = str(err.value)
    assert str(path) in message and problem in message and "\n" not in message


CLAIMS = [{
    "edit_statement": "Orla Venn plays the cello in the Kestrel Quartet.",
    "edit_scope": [["Orla Venn plays the cello in the Kestrel Quartet.", "yes"],
                   ["Orla Venn plays the violin in the Kestrel Quartet.", "no"],
                   ["Orla Venn plays cello in the Kestrel Quartet.", "Yes"]],
    "edit_scope_true_ans": ["no", "yes", "no"],
}]


def test_claims_are_checked_with_success_and_consistency(tmp_path):
    path = _write(tmp_path, "fever.json", CLAIMS)
    case = load_eren(path)[0]
    assert case.kind == "claim" and case.scope[2][1] == "yes"
    metrics, preds = _run(tmp_path, path)
    m = metrics["full"]
    assert m["edit_success"] == 1.0 and m["generalization"] == 1.0 and m["consistency"] == 1.0
    assert m["not_enough_evidence"] == 0.0
    assert [p["verdict"] for p in preds] == ["supported", "refuted", "supported"]
    assert all(p["citations"] for p in preds)


def test_claims_in_plain_rag_are_read_as_yes_no_questions(tmp_path):
    path = _write(tmp_path, "fever.json", CLAIMS)
    gen = ScriptedGenerator(lambda prompt: "Yes, it is." if "Is it true that" in prompt else "")
    metrics = run_editing_eval(path, tmp_path / "run", embedder=HashEmbedder(), generator=gen,
                               configs=("plain_rag",), show_progress=False)
    m = metrics["plain_rag"]
    # always "yes": the edit and its paraphrase right, the negation wrong and inconsistent
    assert m["edit_success"] == 1.0 and m["generalization"] == 0.5 and m["consistency"] == 0.5


def test_a_question_file_with_some_yes_no_answers_stays_a_question_file(tmp_path):
    mixed = [*FACTS, dict(FACTS[0], edit_scope=[["Is Kelmshore the capital of Veldoria?", "yes"]])]
    assert {c.kind for c in load_eren(_write(tmp_path, "m.json", mixed))} == {"qa"}
