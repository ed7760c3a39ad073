import pytest
from langchain_core.language_models import FakeListChatModel, FakeListLLM

from rag.errors import ConfigError
from rag.integrations.langchain import LangChainGenerator
from rag.pipeline import Pipeline


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


def test_rejects_non_langchain_objects():
    with pytest.raises(ConfigError, match="BaseLanguageModel"):
        LangChainGenerator(object())
    with pytest.raises(ConfigError, match="single string"):
        LangChainGenerator(FakeListLLM(responses=["x"])).generate("oops")
