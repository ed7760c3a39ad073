import pytest

from rag.errors import ConfigError
from rag.pipeline import Pipeline, PipelineConfig
from rag.testing import ScriptedGenerator
from rag.types import Passage, Query


def context_reader(prompt: str) -> str:
    """Answers with the last word of the first context line: a stand-in for a reader."""
    if not prompt.startswith("Context:"):
        return "Paris"
    first_line = prompt.split("\n")[0]
    return first_line.rstrip(".").split()[-1]


def test_answer_from_corpus_with_citation_and_trace(store):
    pipe = Pipeline(store, ScriptedGenerator(context_reader))
    answer = pipe.ask("What is the capital of Veldoria?")
    assert answer.text == "Marrowgate"
    assert answer.source == "corpus"
    assert answer.citations == ("t1",)
    assert [r.stage for r in answer.trace] == ["retrieve", "select", "read"]
    assert answer.to_dict()["answer"] == "Marrowgate"


def test_memory_note_changes_the_answer_and_removal_restores_it(store):
    pipe = Pipeline(store, ScriptedGenerator(context_reader))
    store.add_passages([Passage("n1", "The capital of Veldoria is now Ostrava.", kind="note")])
    edited = pipe.ask("What is the capital of Veldoria?")
    assert (edited.text, edited.source, edited.citations) == ("Ostrava", "memory", ("n1",))
    store.remove(["n1"])
    assert pipe.ask("What is the capital of Veldoria?").text == "Marrowgate"


def test_memory_first_is_switchable(store):
    store.add_passages([Passage("n1", "Bananas taste sweet, notes Ostrava.", kind="note")])
    on = Pipeline(store, ScriptedGenerator(context_reader), PipelineConfig(k=8, extractive=False))
    off = Pipeline(store, ScriptedGenerator(context_reader), PipelineConfig(k=8, memory_first=False, extractive=False))
    question = "What is the capital of Veldoria?"
    assert on.ask(question).text == "Ostrava"
    assert off.ask(question).text == "Marrowgate"


def test_namespace_of_the_query_is_respected(store):
    store.add_passages([Passage("n-alice", "The capital of Veldoria is now Alphaville.", kind="note", namespace="alice")])
    pipe = Pipeline(store, ScriptedGenerator(context_reader))
    assert pipe.ask(Query("What is the capital of Veldoria?", namespace="alice")).text == "Alphaville"
    assert pipe.ask(Query("What is the capital of Veldoria?", namespace="bob")).text == "Marrowgate"


def test_empty_store_falls_back_to_parametric(tmp_path):
    from rag.memory.store import Store
    from rag.testing import HashEmbedder

    pipe = Pipeline(Store(tmp_path, HashEmbedder()), ScriptedGenerator(context_reader))
    answer = pipe.ask("Where is the Eiffel Tower?")
    assert (answer.text, answer.source, answer.citations) == ("Paris", "parametric", ())


def test_empty_generation_abstains(store):
    answer = Pipeline(store, ScriptedGenerator(default=""), PipelineConfig(extractive=False)).ask(
        "What is the capital of Veldoria?")
    assert answer.abstained and answer.citations == ()


def test_answer_many_uses_one_generator_call(store):
    gen = ScriptedGenerator(context_reader)
    answers = Pipeline(store, gen, PipelineConfig(extractive=False)).answer_many(
        ["What is the capital of Veldoria?", "Where is the Colosseum?"])
    assert len(answers) == 2 and len(gen.prompts) == 2


def test_extraction_answers_without_the_generator(store):
    gen = ScriptedGenerator(default="wrong")
    answer = Pipeline(store, gen).ask("When was Marrowgate founded?")
    assert (answer.text, answer.citations) == ("1312", ("t3",)) and gen.prompts == []
    assert answer.trace[-1].details["method"] == "extract"


def test_bad_input():
    with pytest.raises(ConfigError, match="k and max_passages"):
        PipelineConfig(k=0)


def test_blank_question_is_rejected(store):
    with pytest.raises(ConfigError, match="non-empty"):
        Pipeline(store, ScriptedGenerator()).ask("   ")
