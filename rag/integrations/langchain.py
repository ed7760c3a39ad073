"""LangChain adapters. The only module of the library that imports ``langchain_core``.

* :class:`LangChainGenerator`: any LangChain language model (an LLM or a chat model) as
  the library's :class:`~rag.protocols.Generator`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rag.errors import ConfigError, MissingDependencyError
from rag.models.generator import cut_at_stop

try:
    from langchain_core.language_models import BaseLanguageModel
    from langchain_core.messages import BaseMessage
except ImportError as exc:  # pragma: no cover - langchain-core is a declared dependency
    msg = "the LangChain adapters need `pip install 'langchain-core>=1.0,<2'`"
    raise MissingDependencyError(msg) from exc


class LangChainGenerator:
    """Use a LangChain language model as the generator.

    Prompts go through ``model.batch`` (so the model's own concurrency and callbacks
    apply); chat replies are reduced to their text.

    Args:
        model: A LangChain ``BaseLanguageModel`` (LLM or chat model).
        max_concurrency: Passed to ``batch`` in its config.

    Example:
        >>> from langchain_core.language_models import FakeListLLM
        >>> gen = LangChainGenerator(FakeListLLM(responses=["Paris\\nmore"]))
        >>> gen.generate(["Question: Where is the Eiffel Tower?\\nAnswer:"])
        ['Paris']
    """

    def __init__(self, model: BaseLanguageModel, *, max_concurrency: int | None = None) -> None:
        if not isinstance(model, BaseLanguageModel):
            msg = f"model must be a LangChain BaseLanguageModel, got {type(model).__name__}"
            raise ConfigError(msg)
        self.model = model
        self.max_concurrency = max_concurrency

    @property
    def name(self) -> str:
        return f"langchain:{type(self.model).__name__}"

    def generate(
        self, prompts: Sequence[str], *, max_new_tokens: int = 32, stop: Sequence[str] = ("\n",)
    ) -> list[str]:
        if isinstance(prompts, str):
            msg = "prompts must be a sequence of strings, not a single string: wrap it in a list"
            raise ConfigError(msg)
        if not prompts:
            return []
        config: dict[str, Any] = {}
        if self.max_concurrency:
            config["max_concurrency"] = self.max_concurrency
        stops = [s for s in stop if s] or None
        replies = self.model.batch(list(prompts), config=config or None, stop=stops)
        return [cut_at_stop(_text(r), stop) for r in replies]


def _text(reply: Any) -> str:
    if isinstance(reply, BaseMessage):
        content = reply.content
        if isinstance(content, list):  # content blocks
            return "".join(b if isinstance(b, str) else b.get("text", "") for b in content)
        return str(content)
    return str(reply)
