import pytest

from rag.errors import ConfigError
from rag.pipeline import Pipeline, PipelineConfig
from rag.testing import ScriptedGenerator, prompt_context
from rag.types import Passage, Query


def context_reader(prompt: str) -> str:
    """Answers with the last word of the first context line: a stand-in for a reader."""
    context = prompt_context(prompt)
    if context is None:
        return "Paris"
    first_line = context.split("\n")[0]
    return first_line.rstrip(".").split()[-1]


def test_answer_from_corpus_with_citation_and_trace(store):
    pipe = Pipeline(store, ScriptedGenerator(context_reader))
    answer = pipe.ask("What is the capital of Veldoria?")
    assert answer.text == "Marrowgate"
    assert answer.source == "corpus"
    assert answer.citations == ("t1",)
    assert [r.stage for r in answer.trace] == ["rewrite", "retrieve", "filter", "detect", "read", "arbitrate"]
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
    plain = {"k": 8, "extractive": False, "arbiter": False, "filter": False}
    on = Pipeline(store, ScriptedGenerator(context_reader), PipelineConfig(**plain))
    off = Pipeline(store, ScriptedGenerator(context_reader), PipelineConfig(**plain, memory_first=False))
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
    answers = Pipeline(store, gen, PipelineConfig(extractive=False, detect=False)).answer_many(
        ["What is the capital of Veldoria?", "Where is the Colosseum?"])
    assert len(answers) == 2 and len(gen.prompts) == 2 and gen.calls == 1


def test_extraction_answers_without_the_generator(store):
    gen = ScriptedGenerator(default="wrong")
    answer = Pipeline(store, gen, PipelineConfig(detect=False)).ask("When was Marrowgate founded?")
    assert (answer.text, answer.citations) == ("1312", ("t3",)) and gen.prompts == []
    assert next(r for r in answer.trace if r.stage == "read").decision == "extract"


def test_bad_input():
    with pytest.raises(ConfigError, match="k and max_passages"):
        PipelineConfig(k=0)


def test_blank_question_is_rejected(store):
    with pytest.raises(ConfigError, match="non-empty"):
        Pipeline(store, ScriptedGenerator()).ask("   ")


VELDORIA = "What is the capital of Veldoria?"


def test_edit_bears_only_where_it_should(store):
    from rag.memory.editor import KnowledgeEditor

    pipe = Pipeline(store, ScriptedGenerator(default="unknown"))
    before = pipe.ask("When was Marrowgate founded?").text
    KnowledgeEditor(store).edit("The capital of Veldoria is now Ostrava.")
    edited = pipe.ask(VELDORIA)
    assert (edited.text, edited.source) == ("Ostrava", "memory")
    assert edited.conflicts == ({"source": "corpus", "answer": "Marrowgate", "evidence": ["t1"]},)
    assert pipe.ask("When was Marrowgate founded?").text == before
    assert pipe.ask("What is the official currency of Veldoria?").source == "corpus"


def test_user_fact_outranks_memory_and_conflicts_are_reported(store):
    from rag.memory.editor import KnowledgeEditor

    KnowledgeEditor(store).edit("The capital of Veldoria is now Ostrava.")
    pipe = Pipeline(store, ScriptedGenerator(default="Paris"), PipelineConfig(parametric="always"))
    answer = pipe.ask(Query(VELDORIA, user_facts=("The capital of Veldoria is Brno.",)))
    assert (answer.text, answer.source, answer.citations) == ("Brno", "user", ("user:0",))
    assert {c["source"] for c in answer.conflicts} == {"memory", "corpus", "parametric"}


def test_qa_memory_trigger_answers_without_reading(store):
    from rag.memory.editor import KnowledgeEditor

    KnowledgeEditor(store).add_qa(VELDORIA, "Ostrava")
    gen = ScriptedGenerator(default="unused")
    answer = Pipeline(store, gen).ask("what is the capital of veldoria")
    assert (answer.text, answer.source) == ("Ostrava", "memory")
    assert [r.stage for r in answer.trace] == ["rewrite", "retrieve", "filter", "trigger"] and gen.prompts == []


def test_cache_never_serves_an_answer_from_before_an_edit(store):
    from rag.memory.editor import KnowledgeEditor

    pipe = Pipeline(store, ScriptedGenerator(default="unknown"))
    first = pipe.ask(VELDORIA)
    assert pipe.ask(VELDORIA) is first  # cached
    edit = KnowledgeEditor(store).edit("The capital of Veldoria is now Ostrava.")
    assert pipe.ask(VELDORIA).text == "Ostrava"
    KnowledgeEditor(store).retract(edit.fact_id)
    assert pipe.ask(VELDORIA).text == "Marrowgate"


def test_cache_is_per_namespace(store):
    from rag.memory.editor import KnowledgeEditor

    pipe = Pipeline(store, ScriptedGenerator(default="unknown"))
    KnowledgeEditor(store).edit("The capital of Veldoria is now Alphaville.", namespace="alice")
    assert pipe.ask(Query(VELDORIA, namespace="alice")).text == "Alphaville"
    assert pipe.ask(Query(VELDORIA, namespace="bob")).text == "Marrowgate"


def test_abstain_when_nothing_trustworthy_bears(store):
    pipe = Pipeline(store, ScriptedGenerator(default="Paris"), PipelineConfig(abstain=True))
    answer = pipe.ask("Who painted the Mona Lisa?")
    assert answer.abstained and answer.text == ""
    fallback = Pipeline(store, ScriptedGenerator(default="Leonardo"), PipelineConfig())
    assert fallback.ask("Who painted the Mona Lisa?").source == "parametric"


def test_filter_off_lets_an_unrelated_note_leak(store):
    from rag.memory.editor import KnowledgeEditor

    KnowledgeEditor(store).edit("Ilsa Brennick's mother tongue is Portuguese.")
    question = "Where was Ilsa Brennick born?"
    guarded = Pipeline(store, ScriptedGenerator(default="x")).ask(question)
    unguarded = Pipeline(store, ScriptedGenerator(default="x"), PipelineConfig(filter=False)).ask(question)
    assert guarded.text == "Marrowgate"
    assert unguarded.text == "Portuguese" and unguarded.source == "memory"


def test_multi_hop_question_follows_an_edit(store):
    from rag.memory.editor import KnowledgeEditor

    pipe = Pipeline(store, ScriptedGenerator(default="unknown"))
    question = "What is the capital of the country where Ilsa Brennick lives?"
    KnowledgeEditor(store).edit("Ilsa Brennick lives in Veldoria.")
    answer = pipe.ask(question)
    assert answer.text == "Marrowgate"
    hops = [r for r in answer.trace if r.stage.startswith("hop")]
    assert [h.details["answer"] for h in hops] == ["Veldoria", "Marrowgate"]
    assert any(c.startswith("note-") for c in answer.citations) and "t1" in answer.citations
    no_hops = Pipeline(store, ScriptedGenerator(default="unknown"), PipelineConfig(decompose=False))
    assert not any(r.stage.startswith("hop") for r in no_hops.ask(question).trace)


def test_a_hop_with_no_evidence_abandons_the_chain_and_the_question_is_answered_whole(store):
    """No note says where Ilsa Brennick lives: a hop answered only by a closed-book guess
    ends the chain, and the question is retrieved for and answered as it stands."""
    pipe = Pipeline(store, ScriptedGenerator(default="Quorvath"))
    answer = pipe.ask("What is the capital of the country where Ilsa Brennick lives?")
    stages = [r.stage for r in answer.trace]
    guessed = [r for r in answer.trace if r.stage.startswith("hop ") and r.decision == "parametric"]
    assert guessed and stages[-1] == "arbitrate"
    assert stages.index("hops") == stages.index(guessed[0].stage) + 1 < stages.index("retrieve")


def test_private_fact_beats_an_equally_good_shared_one(store):
    from rag.memory.editor import KnowledgeEditor

    editor = KnowledgeEditor(store)
    editor.edit("The capital of Veldoria is now Ostrava.")
    editor.edit("The capital of Veldoria is now Alphaville.", namespace="alice")
    pipe = Pipeline(store, ScriptedGenerator(default="x"))
    assert pipe.ask(Query(VELDORIA, namespace="alice")).text == "Alphaville"
    assert pipe.ask(Query(VELDORIA, namespace="bob")).text == "Ostrava"


class _FixedReader:
    """A stand-in reader: answers every question with the first passage's id."""

    def __init__(self):
        self.items = []

    def read_many(self, items):
        from rag.stages.read import Reading

        self.items.extend(items)
        return [Reading(passages[0].id, (passages[0].id,), "fixed") for _, passages in items]

    def closed_book(self, questions):
        return ["closed book"] * len(questions)


class _KeepNothing:
    """A stand-in filter that drops every passage."""

    def filter(self, question, passages, *, sources=None):
        from rag.stages.filter import FilterDecision

        return FilterDecision(kept=(), dropped=())


def test_stages_are_injected_objects_with_the_stage_methods(store):
    reader = _FixedReader()
    pipe = Pipeline(store, ScriptedGenerator(default="Paris"), PipelineConfig(detect=False), reader=reader)
    answer = pipe.ask("What is the capital of Veldoria?")
    assert reader.items and answer.text == answer.citations[0]  # the injected reader read it
    closed = Pipeline(store, ScriptedGenerator(default="Paris"), PipelineConfig(detect=False),
                      reader=_FixedReader(), knowledge_filter=_KeepNothing())
    assert closed.ask("What is the capital of Veldoria?").text == "closed book"  # nothing kept: parametric


def test_an_undecided_vote_is_settled_by_the_configured_policy():
    from rag.stages.arbitrate import Candidate, settle_contest

    sides = [Candidate("corpus", "Marrowgate", ("g1",)), Candidate("corpus", "Duskmere", ("p1",))]
    assert settle_contest(sides, None, "vote")[0].answer == "Marrowgate"
    assert settle_contest(sides, Candidate("parametric", "Duskmere"), "parametric")[0].answer == "Duskmere"
    assert settle_contest(sides, Candidate("parametric", "Paris"), "parametric")[0] is None
    winner, why = settle_contest(sides, Candidate("parametric", "Duskmere"), "abstain")
    assert winner is None and "'Marrowgate' vs 'Duskmere'" in why
    with pytest.raises(ConfigError, match="on_contested"):
        settle_contest(sides, None, "coin")


class _KeepNotesUnread:
    """A stand-in filter that keeps every memory note but reads no answer from it, as the
    knowledge filter does with a prose note whose sentences hold no fact it can read."""

    def filter(self, question, passages, *, sources=None):
        from rag.stages.filter import Evidence, FilterDecision

        kept = tuple(Evidence(p, "memory", 0.6, "", "prose note") for p in passages if p.origin == "memory")
        return FilterDecision(kept=kept, dropped=())


def test_a_kept_note_with_no_answer_read_is_read_as_memory(store):
    from rag.memory.editor import KnowledgeEditor

    note = KnowledgeEditor(store).edit("Orrin Vale grew up by the sea. Years later he wed the sculptor Ilse Marenko.")

    def reader(prompt):
        context = prompt_context(prompt)
        return "Ilse Marenko" if context and "Marenko" in context else "Paris"

    pipe = Pipeline(store, ScriptedGenerator(reader), PipelineConfig(detect=False, decompose=False),
                    knowledge_filter=_KeepNotesUnread())
    answer = pipe.ask("Whom did Orrin Vale marry?")
    assert (answer.text, answer.source) == ("Ilse Marenko", "memory")
    assert answer.citations and answer.citations[0].startswith(note.fact_id)
    read = [r for r in answer.trace if r.stage == "read"]
    assert [r.details["of"] for r in read] == ["memory"]
