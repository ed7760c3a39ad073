import asyncio
from operator import itemgetter

import pytest
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.documents import Document
from langchain_core.language_models import FakeListChatModel, FakeListLLM
from langchain_core.language_models.fake_chat_models import ParrotFakeChatModel
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import ConfigurableField, RunnableLambda, RunnableParallel

from rag.errors import ConfigError
from rag.integrations.langchain import LangChainGenerator, PipelineRunnable, StoreRetriever, to_query
from rag.memory.editor import KnowledgeEditor
from rag.pipeline import Pipeline
from rag.testing import ScriptedGenerator
from rag.types import Query

CAPITAL = "What is the capital of Veldoria?"
# Nothing in the tiny corpus bears on these, so each needs the generator's closed-book answer.
CLOSED_BOOK = {"Hamlet": "William Shakespeare", "Mona Lisa": "Leonardo da Vinci", "Guernica": "Pablo Picasso"}
CLOSED_BOOK_QUESTIONS = ["Who wrote Hamlet?", "Who painted the Mona Lisa?", "Who painted Guernica?"]


def ids(docs):
    return [d.id for d in docs]


@pytest.fixture()
def alice_note(store):
    """A note that only questions asked in namespace 'alice' may see."""
    edit = KnowledgeEditor(store).edit("The capital of Veldoria is Ostrava.", namespace="alice")
    return edit.passage_id


@pytest.fixture()
def generator():
    return ScriptedGenerator(CLOSED_BOOK, default="unknown")


@pytest.fixture()
def runnable(store, generator):
    return PipelineRunnable(Pipeline(store, generator))


# -- LangChainGenerator -----------------------------------------------------------------------


def test_llm_replies_are_cut_at_stop():
    gen = LangChainGenerator(FakeListLLM(responses=["Paris\nQuestion: next", "Rome"]))
    assert gen.generate(["a", "b"]) == ["Paris", "Rome"]


def test_chat_model_replies_become_text():
    gen = LangChainGenerator(FakeListChatModel(responses=["Marrowgate"]))
    assert gen.generate(["Question?"]) == ["Marrowgate"]


def test_langchain_model_drives_the_pipeline(store):
    pipe = Pipeline(store, LangChainGenerator(FakeListChatModel(responses=["Marrowgate."])))
    answer = pipe.ask("What is the capital of Veldoria?")
    assert answer.text == "Marrowgate" and answer.citations == ("t1",)


def test_langchain_llm_gives_the_closed_book_answer_through_the_runnable(store):
    llm = FakeListLLM(responses=["William Shakespeare\nQuestion: more"])
    out = PipelineRunnable(Pipeline(store, LangChainGenerator(llm))).invoke("Who wrote Hamlet?")
    assert (out["answer"], out["source"], out["citations"]) == ("William Shakespeare", "parametric", ())


def test_rejects_non_langchain_objects():
    with pytest.raises(ConfigError, match="BaseLanguageModel"):
        LangChainGenerator(object())
    with pytest.raises(ConfigError, match="single string"):
        LangChainGenerator(FakeListLLM(responses=["x"])).generate("oops")


# -- StoreRetriever ---------------------------------------------------------------------------


def test_retriever_returns_the_store_ranking_as_documents(store):
    docs = StoreRetriever(store).invoke(CAPITAL)
    hits = store.search(CAPITAL, 4)
    assert len(docs) == 4 and all(isinstance(d, Document) for d in docs)
    assert ids(docs) == [h.id for h in hits]
    first = docs[0]
    assert first.id == "t1" and first.page_content == "The capital of Veldoria is Marrowgate."
    assert first.metadata == {"id": "t1", "title": "Veldoria", "kind": "passage", "namespace": "shared",
                              "source": "corpus", "score": hits[0].score, "rank": 1, "retriever": "hybrid"}
    assert [d.metadata["rank"] for d in docs] == [1, 2, 3, 4]


def test_k_from_constructor_and_per_call(store):
    retriever = StoreRetriever(store, k=3)
    assert len(retriever.invoke(CAPITAL)) == 3
    assert ids(retriever.invoke(CAPITAL, k=2)) == ids(retriever.invoke(CAPITAL))[:2]
    assert len(retriever.invoke(CAPITAL, k=6)) == 6
    assert retriever.k == 3  # a per-call k does not stick


def test_namespace_isolation_through_the_retriever(store, alice_note):
    shared = StoreRetriever(store, k=8)
    alice = StoreRetriever(store, k=8, namespace="alice")
    assert alice_note not in ids(shared.invoke(CAPITAL))
    assert alice_note not in ids(shared.invoke(CAPITAL, namespace="bob"))
    for docs in (alice.invoke(CAPITAL), shared.invoke(CAPITAL, namespace="alice")):
        note = next(d for d in docs if d.id == alice_note)
        assert note.metadata["source"] == "memory" and note.metadata["namespace"] == "alice"
        assert note.metadata["kind"] == "note" and "fact_id" in note.metadata  # the passage's own metadata
    assert alice_note not in ids(alice.invoke(CAPITAL, namespace="bob"))


def test_kinds_filter(store, alice_note):
    notes = StoreRetriever(store, namespace="alice", kinds=["note"])
    assert ids(notes.invoke(CAPITAL)) == [alice_note]
    passages = StoreRetriever(store, namespace="alice").invoke(CAPITAL, kinds="passage")
    assert passages and all(d.metadata["kind"] == "passage" for d in passages)


def test_async_and_batch_honour_per_call_arguments(store, alice_note):
    retriever = StoreRetriever(store)
    queries = [CAPITAL, "Where is the Eiffel Tower?"]
    expected = [ids(retriever.invoke(q, k=2, namespace="alice")) for q in queries]
    assert alice_note in expected[0]
    assert ids(asyncio.run(retriever.ainvoke(queries[0], k=2, namespace="alice"))) == expected[0]
    assert [ids(d) for d in retriever.batch(queries, k=2, namespace="alice")] == expected
    assert [ids(d) for d in asyncio.run(retriever.abatch(queries, k=2, namespace="alice"))] == expected
    assert [len(d) for d in asyncio.run(retriever.abatch(queries))] == [4, 4]


def test_k_is_configurable_through_the_runnable_config(store):
    retriever = StoreRetriever(store).configurable_fields(k=ConfigurableField(id="k"))
    assert len(retriever.invoke(CAPITAL)) == 4
    assert len(retriever.invoke(CAPITAL, config={"configurable": {"k": 1}})) == 1


def test_retriever_reports_to_langchain_callbacks(store):
    seen = []

    class Recorder(BaseCallbackHandler):
        def on_retriever_end(self, documents, **kwargs):
            seen.append(ids(documents))

    docs = StoreRetriever(store).invoke(CAPITAL, k=2, config={"callbacks": [Recorder()]})
    assert seen == [ids(docs)]


@pytest.mark.parametrize("bad", [{"k": 0}, {"k": -1}, {"k": True}, {"k": "3"}, {"k": 2.5},
                                 {"namespace": ""}, {"kinds": ["chapter"]}, {"kinds": []}])
def test_retriever_rejects_bad_configuration(store, bad):
    name = next(iter(bad))
    with pytest.raises(ConfigError, match=name):
        StoreRetriever(store, **bad)
    with pytest.raises(ConfigError, match=name):
        StoreRetriever(store).invoke(CAPITAL, **bad)


def test_retriever_rejects_bad_store_query_and_arguments(store):
    with pytest.raises(ConfigError, match="search method"):
        StoreRetriever(object())
    with pytest.raises(ConfigError, match="search method"):
        StoreRetriever()
    with pytest.raises(ConfigError, match="itemgetter"):
        StoreRetriever(store).invoke({"question": CAPITAL})
    with pytest.raises(ConfigError, match="non-empty query"):
        StoreRetriever(store).invoke("  ")
    with pytest.raises(ConfigError, match=r"\['top_k'\]"):
        StoreRetriever(store).invoke(CAPITAL, top_k=2)


def test_retriever_composes_in_an_lcel_chain(store, alice_note):
    def format_docs(docs):
        return "\n".join(f"[{d.id}] {d.page_content}" for d in docs)

    prompt = ChatPromptTemplate.from_messages([("human", "Context:\n{context}\n\nQuestion: {question}")])
    chain = (
        RunnableParallel(context=itemgetter("question") | StoreRetriever(store, k=2, namespace="alice")
                         | RunnableLambda(format_docs),
                         question=itemgetter("question"))
        | prompt
        | ParrotFakeChatModel()  # replies with the prompt it got: the context shows through
        | StrOutputParser()
    )
    text = chain.invoke({"question": CAPITAL})
    assert "[t1] The capital of Veldoria is Marrowgate." in text
    assert f"[{alice_note}] The capital of Veldoria is Ostrava." in text
    assert text.endswith(f"Question: {CAPITAL}")
    shared = StoreRetriever(store, k=2) | RunnableLambda(format_docs)
    assert "Ostrava" not in shared.invoke(CAPITAL)


# -- PipelineRunnable -------------------------------------------------------------------------


def test_runnable_answers_a_string_with_the_answer_dict(runnable):
    out = runnable.invoke(CAPITAL)
    assert list(out)[0] == "answer"
    assert (out["answer"], out["source"], out["citations"], out["question"]) == ("Marrowgate", "corpus", ("t1",), CAPITAL)
    assert [r["stage"] for r in out["trace"]][0] == "rewrite"


def test_runnable_accepts_dicts_and_queries(runnable, alice_note):
    fact = "The capital of Veldoria is Brennia."
    assert runnable.invoke({"question": CAPITAL, "user_facts": [fact]})["source"] == "user"
    assert runnable.invoke({"question": CAPITAL, "user_facts": fact})["answer"] == "Brennia"
    alice = runnable.invoke({"question": CAPITAL, "namespace": "alice"})
    assert (alice["answer"], alice["source"], alice["citations"]) == ("Ostrava", "memory", (alice_note,))
    assert runnable.invoke(Query(CAPITAL, namespace="alice"))["answer"] == "Ostrava"
    assert runnable.invoke(Query(CAPITAL, namespace="bob"))["answer"] == "Marrowgate"


def test_runnable_namespace_is_the_default_for_inputs_without_one(store, alice_note):
    runnable = PipelineRunnable(Pipeline(store, ScriptedGenerator()), namespace="alice")
    assert runnable.invoke(CAPITAL)["answer"] == "Ostrava"
    assert runnable.invoke({"question": CAPITAL, "namespace": "bob"})["answer"] == "Marrowgate"
    assert to_query(Query(CAPITAL), "alice").namespace == "shared"  # a Query carries its own


def generator_calls_for_one_question(store):
    generator = ScriptedGenerator(CLOSED_BOOK)
    PipelineRunnable(Pipeline(store, generator)).invoke(CLOSED_BOOK_QUESTIONS[0])
    return generator.calls


def test_batch_is_one_answer_many_with_batched_generator_calls(store, generator, monkeypatch):
    pipeline = Pipeline(store, generator)
    calls = []
    real = pipeline.answer_many
    monkeypatch.setattr(pipeline, "answer_many", lambda qs: calls.append(list(qs)) or real(qs))
    out = PipelineRunnable(pipeline).batch(CLOSED_BOOK_QUESTIONS)
    assert [o["answer"] for o in out] == list(CLOSED_BOOK.values())
    assert {o["source"] for o in out} == {"parametric"}
    assert len(calls) == 1 and [q.question for q in calls[0]] == CLOSED_BOOK_QUESTIONS
    # Three questions cost the generator calls of one.
    assert generator.calls == generator_calls_for_one_question(store) >= 1


def test_invoke_each_calls_the_generator_each_time(store, runnable, generator):
    # The contrast that makes the batch test meaningful.
    for q in CLOSED_BOOK_QUESTIONS:
        runnable.invoke(q)
    assert generator.calls == len(CLOSED_BOOK_QUESTIONS) * generator_calls_for_one_question(store)


def test_async_invoke_and_batch(runnable, generator):
    assert asyncio.run(runnable.ainvoke(CAPITAL))["answer"] == "Marrowgate"
    before = generator.calls
    out = asyncio.run(runnable.abatch(CLOSED_BOOK_QUESTIONS))
    assert [o["answer"] for o in out] == list(CLOSED_BOOK.values())
    assert generator.calls - before == generator_calls_for_one_question(runnable.pipeline.store)

    async def concurrently():
        return await asyncio.gather(*(runnable.ainvoke(q) for q in reversed(CLOSED_BOOK_QUESTIONS)))

    again = asyncio.run(concurrently())  # cached now; answers must stay with their questions
    assert [o["answer"] for o in again] == list(reversed(CLOSED_BOOK.values()))


def test_batch_with_a_bad_input(runnable, generator):
    with pytest.raises(ConfigError, match="got int 7"):
        runnable.batch([CLOSED_BOOK_QUESTIONS[0], 7])
    assert generator.calls == 0  # rejected before anything was answered
    out = runnable.batch([CLOSED_BOOK_QUESTIONS[0], 7, CLOSED_BOOK_QUESTIONS[1]], return_exceptions=True)
    assert isinstance(out[1], ConfigError)
    assert [out[0]["answer"], out[2]["answer"]] == ["William Shakespeare", "Leonardo da Vinci"]
    assert generator.calls == generator_calls_for_one_question(runnable.pipeline.store)
    out = asyncio.run(runnable.abatch([{"question": CAPITAL, "extra": 1}, CAPITAL], return_exceptions=True))
    assert isinstance(out[0], ConfigError) and out[1]["answer"] == "Marrowgate"


@pytest.mark.parametrize(("bad", "match"), [
    (7, "got int 7"),
    ("   ", "empty string"),
    (["What?"], "got list"),
    ({"query": CAPITAL}, r"unknown key\(s\) \['query'\]"),
    ({"user_facts": ["x"]}, "needs 'question'"),
    ({"question": CAPITAL, "user_facts": [1]}, "'user_facts' must be"),
    ({"question": CAPITAL, "namespace": ""}, "namespace must be"),
])
def test_runnable_names_what_is_wrong_with_its_input(runnable, bad, match):
    with pytest.raises(ConfigError, match=match):
        runnable.invoke(bad)


def test_runnable_rejects_bad_construction_and_call_arguments(runnable):
    with pytest.raises(ConfigError, match="answer_many"):
        PipelineRunnable(object())
    with pytest.raises(ConfigError, match="no call arguments"):
        runnable.invoke(CAPITAL, k=2)


def test_runnable_composes_in_lcel(store, generator):
    runnable = PipelineRunnable(Pipeline(store, generator))
    with_fact = RunnableLambda(lambda q: {"question": q, "user_facts": ["The capital of Veldoria is Brennia."]})
    assert (with_fact | runnable | itemgetter("answer")).invoke(CAPITAL) == "Brennia"
    chain = RunnableLambda(str.strip) | runnable | itemgetter("answer")
    before = generator.calls
    # A chain's batch hands the whole batch to each step: still one generator call.
    assert chain.batch([f" {q} " for q in CLOSED_BOOK_QUESTIONS]) == list(CLOSED_BOOK.values())
    assert generator.calls - before == generator_calls_for_one_question(store)
    both = RunnableParallel(docs=StoreRetriever(store, k=1), answer=runnable | itemgetter("answer"))
    out = both.invoke(CAPITAL)
    assert ids(out["docs"]) == ["t1"] and out["answer"] == "Marrowgate"
