"""LangChain adapters. The only module of the library that imports ``langchain_core``.

* :class:`StoreRetriever`: a store's hybrid search as a LangChain ``BaseRetriever``.
* :class:`PipelineRunnable`: the whole guarded pipeline as a LangChain ``Runnable``
  (question in, ``Answer.to_dict()`` out; ``batch`` is one :meth:`Pipeline.answer_many`).
* :class:`LangChainGenerator`: any LangChain language model (an LLM or a chat model) as
  the library's :class:`~rag.protocols.Generator`.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from typing import Any

from rag.errors import ConfigError, MissingDependencyError
from rag.models.generator import cut_at_stop
from rag.types import PASSAGE_KINDS, SHARED_NAMESPACE, Query, ScoredPassage

try:
    from typing import NotRequired

    from langchain_core.callbacks import (
        AsyncCallbackManagerForRetrieverRun,
        CallbackManagerForRetrieverRun,
    )
    from langchain_core.documents import Document
    from langchain_core.language_models import BaseLanguageModel
    from langchain_core.messages import BaseMessage
    from langchain_core.retrievers import BaseRetriever
    from langchain_core.runnables import RunnableConfig, RunnableSerializable
    from langchain_core.runnables.config import run_in_executor
    from pydantic import PrivateAttr
    from typing_extensions import TypedDict
except ImportError as exc:  # pragma: no cover - langchain-core is a declared dependency
    msg = "the LangChain adapters need `pip install 'langchain-core>=1.0,<2'`"
    raise MissingDependencyError(msg) from exc

__all__ = [
    "LangChainGenerator", "PipelineInput", "PipelineRunnable", "StoreRetriever",
    "to_document", "to_query",
]

_PIPELINE_KEYS = ("question", "user_facts", "namespace")


# -- retriever ------------------------------------------------------------------------------


def _check_k(k: Any, where: str) -> int:
    # bool is an int subclass: k=True would silently mean 1.
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        msg = f"{where}: k must be a positive integer, got {k!r}"
        raise ConfigError(msg)
    return k


def _check_namespace(namespace: Any, where: str) -> str:
    if not isinstance(namespace, str) or not namespace.strip():
        msg = f"{where}: namespace must be a non-empty string, got {namespace!r}"
        raise ConfigError(msg)
    return namespace


def _check_kinds(kinds: Any, where: str) -> tuple[str, ...] | None:
    if kinds is None:
        return None
    if isinstance(kinds, str):
        kinds = (kinds,)
    try:
        kinds = tuple(kinds)
    except TypeError:
        msg = f"{where}: kinds must be a sequence of {PASSAGE_KINDS}, got {kinds!r}"
        raise ConfigError(msg) from None
    unknown = [x for x in kinds if x not in PASSAGE_KINDS]
    if unknown or not kinds:
        msg = f"{where}: kinds must be a non-empty sequence of {PASSAGE_KINDS}, got {kinds!r}"
        raise ConfigError(msg)
    return kinds


def to_document(hit: ScoredPassage) -> Document:
    """A retrieved passage as a LangChain ``Document``.

    ``page_content`` is the passage text; ``metadata`` holds the passage's own metadata
    overlaid with ``id``, ``title``, ``kind``, ``namespace``, ``source`` (the preference
    level: ``memory`` for notes and QA pairs, ``corpus`` for documents), ``score``,
    ``rank`` and ``retriever``; ``Document.id`` is the passage id.
    """
    p = hit.passage
    metadata = {
        **dict(p.metadata),
        "id": p.id,
        "title": p.title,
        "kind": p.kind,
        "namespace": p.namespace,
        "source": p.origin,
        "score": hit.score,
        "rank": hit.rank,
        "retriever": hit.retriever,
    }
    return Document(page_content=p.text, metadata=metadata, id=p.id)


class StoreRetriever(BaseRetriever):
    """A :class:`~rag.memory.store.Store`'s hybrid search as a LangChain retriever.

    Memory (notes, QA pairs) and corpus passages come back together, ranked by the store's
    fused dense + BM25 score; a question sees its own namespace and ``shared`` only.
    ``k``, ``namespace`` and ``kinds`` can be overridden per call:
    ``retriever.invoke(q, k=2, namespace="alice")`` (also through ``ainvoke``, ``batch``
    and ``abatch``, which pass keyword arguments on to every call).

    Args:
        store: A :class:`~rag.memory.store.Store`, or any object with its ``search(query,
            k, *, namespace=, kinds=)`` method returning scored passages.
        k: Documents returned per query.
        namespace: The asker's namespace.
        kinds: Only these passage kinds (``passage``, ``note``, ``qa``); all when ``None``.

    Example:
        >>> import tempfile
        >>> from rag.memory.store import Store
        >>> from rag.testing import HashEmbedder, tiny_corpus
        >>> store = Store(tempfile.mkdtemp(), HashEmbedder())
        >>> _ = store.add_passages(tiny_corpus())
        >>> retriever = StoreRetriever(store, k=3)
        >>> docs = retriever.invoke("What is the capital of Veldoria?", k=1)
        >>> docs[0].id, docs[0].page_content, docs[0].metadata["source"]
        ('t1', 'The capital of Veldoria is Marrowgate.', 'corpus')
    """

    store: Any
    """The store searched (anything with ``Store.search``)."""
    k: int = 4
    """Documents returned per query, unless a call passes ``k``."""
    namespace: str = SHARED_NAMESPACE
    """The asker's namespace, unless a call passes ``namespace``."""
    kinds: tuple[str, ...] | None = None
    """Passage kinds returned (``passage``, ``note``, ``qa``); all when ``None``."""

    def __init__(self, store: Any = None, /, **data: Any) -> None:
        # Checked here rather than by pydantic so that bad values raise ConfigError.
        if store is not None:
            if "store" in data:
                msg = "StoreRetriever got the store twice (positionally and as store=)"
                raise ConfigError(msg)
            data["store"] = store
        if not callable(getattr(data.get("store"), "search", None)):
            got = type(data.get("store")).__name__
            msg = f"StoreRetriever needs a store with a search method (a rag Store), got {got}"
            raise ConfigError(msg)
        where = "StoreRetriever"
        if "k" in data:
            _check_k(data["k"], where)
        if "namespace" in data:
            _check_namespace(data["namespace"], where)
        if "kinds" in data:
            data["kinds"] = _check_kinds(data["kinds"], where)
        super().__init__(**data)

    def _get_relevant_documents(
        self,
        query: str,
        *,
        run_manager: CallbackManagerForRetrieverRun,
        k: int | None = None,
        namespace: str | None = None,
        kinds: Sequence[str] | None = None,
        **unknown: Any,
    ) -> list[Document]:
        # BaseRetriever.invoke forwards its keyword arguments here only because this
        # signature names more than query and run_manager; ``verbose`` rides along with them.
        unknown.pop("verbose", None)
        if unknown:
            msg = (f"StoreRetriever got unexpected argument(s) {sorted(unknown)}; "
                   "per-call arguments are k, namespace and kinds")
            raise ConfigError(msg)
        if not isinstance(query, str) or not query.strip():
            hint = ""
            if isinstance(query, Mapping):
                hint = (" (in a chain, pick the question first,"
                        " e.g. itemgetter('question') | retriever)")
            msg = f"StoreRetriever takes a non-empty query string, got {_describe(query)}{hint}"
            raise ConfigError(msg)
        where = "StoreRetriever call"
        hits = self.store.search(
            query,
            self.k if k is None else _check_k(k, where),
            namespace=self.namespace if namespace is None else _check_namespace(namespace, where),
            kinds=self.kinds if kinds is None else _check_kinds(kinds, where),
        )
        return [to_document(h) for h in hits]

    async def _aget_relevant_documents(
        self, query: str, *, run_manager: AsyncCallbackManagerForRetrieverRun, **kwargs: Any
    ) -> list[Document]:
        # The base class's async default drops per-call arguments (k, namespace), so this
        # forwards them to the sync search, which runs in a worker thread.
        return await run_in_executor(
            None, self._get_relevant_documents, query, run_manager=run_manager.get_sync(), **kwargs
        )


# -- pipeline -------------------------------------------------------------------------------


class PipelineInput(TypedDict):
    """The dict form of a question for :class:`PipelineRunnable`."""

    question: str
    user_facts: NotRequired[list[str]]
    namespace: NotRequired[str]


def _describe(value: Any) -> str:
    text = repr(value)
    return f"{type(value).__name__} {text[:80]}{'...' if len(text) > 80 else ''}"


def to_query(value: Any, namespace: str = SHARED_NAMESPACE) -> Query:
    """Turn a runnable input (a string, a :class:`PipelineInput` dict or a Query) into a Query.

    ``namespace`` is used when the input does not name one. ``user_facts`` may be one
    string or a list of strings.

    Raises:
        ConfigError: The input has another type, misses ``question``, has keys other than
            ``question``, ``user_facts`` and ``namespace``, or holds values of wrong types.
    """
    if isinstance(value, Query):
        return value
    if isinstance(value, str):
        if not value.strip():
            msg = "PipelineRunnable input: the question is an empty string"
            raise ConfigError(msg)
        return Query(value, namespace=namespace)
    if isinstance(value, Mapping):
        unknown = [key for key in value if key not in _PIPELINE_KEYS]
        if unknown:
            msg = (f"PipelineRunnable input has unknown key(s) {unknown}; "
                   f"expected {list(_PIPELINE_KEYS)} (question required)")
            raise ConfigError(msg)
        question = value.get("question")
        if not isinstance(question, str) or not question.strip():
            msg = ("PipelineRunnable input needs 'question' as a non-empty string, "
                   f"got {_describe(question)}")
            raise ConfigError(msg)
        facts = value.get("user_facts") or ()
        if isinstance(facts, str):
            facts = (facts,)
        if not isinstance(facts, Sequence) or not all(isinstance(f, str) for f in facts):
            msg = ("PipelineRunnable input: 'user_facts' must be a string or a list of strings, "
                   f"got {_describe(facts)}")
            raise ConfigError(msg)
        ns = _check_namespace(value.get("namespace", namespace), "PipelineRunnable input")
        return Query(question, tuple(facts), ns)
    msg = ("PipelineRunnable takes a question string, a dict with 'question' (and optionally "
           f"'user_facts', 'namespace') or a rag.types.Query; got {_describe(value)}")
    raise ConfigError(msg)


def _answer_dict(answer: Any) -> dict[str, Any]:
    data = answer.to_dict()
    return {"answer": data.pop("answer"), **data}  # the answer first, where a reader looks


class PipelineRunnable(RunnableSerializable[str | PipelineInput | Query, dict[str, Any]]):
    """The guarded pipeline as a LangChain ``Runnable``: a question in, an answer dict out.

    Input: a question string, a dict ``{"question", "user_facts"?, "namespace"?}``
    (:class:`PipelineInput`) or a :class:`~rag.types.Query`. Output: ``Answer.to_dict()``,
    a plain dict (``answer``, ``source``, ``citations``, ``conflicts``, ``flags``,
    ``trace``, ``question``), because dicts compose in LCEL (``itemgetter("answer")``,
    ``RunnableParallel``) and serialise as they are.

    ``batch`` and ``abatch`` answer all their inputs with one
    :meth:`~rag.pipeline.Pipeline.answer_many`, so generator calls are batched across
    questions; an invalid input fails alone when ``return_exceptions=True``, and fails the
    whole batch before anything is answered otherwise. Calls on one runnable run one at a
    time (a local generator answers one batch at a time); use ``batch`` for throughput.

    Args:
        pipeline: A :class:`~rag.pipeline.Pipeline` (or anything with its ``answer_many``).
        namespace: Namespace of questions that do not name one (strings, dicts without
            ``namespace``). A ``Query`` always carries its own.

    Example:
        >>> import tempfile
        >>> from rag.memory.store import Store
        >>> from rag.pipeline import Pipeline
        >>> from rag.testing import HashEmbedder, ScriptedGenerator, tiny_corpus
        >>> store = Store(tempfile.mkdtemp(), HashEmbedder())
        >>> _ = store.add_passages(tiny_corpus())
        >>> qa = PipelineRunnable(Pipeline(store, ScriptedGenerator()))
        >>> qa.invoke("What is the capital of Veldoria?")["answer"]
        'Marrowgate'
        >>> [a["source"] for a in qa.batch([
        ...     "What is the capital of Veldoria?",
        ...     {"question": "What is the capital of Veldoria?",
        ...      "user_facts": ["The capital of Veldoria is Ostrava."]}])]
        ['corpus', 'user']
    """

    pipeline: Any
    """The pipeline that answers (anything with ``Pipeline.answer_many``)."""
    namespace: str = SHARED_NAMESPACE
    """Namespace of inputs that do not name one."""

    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    def __init__(self, pipeline: Any = None, /, **data: Any) -> None:
        if pipeline is not None:
            if "pipeline" in data:
                msg = "PipelineRunnable got the pipeline twice (positionally and as pipeline=)"
                raise ConfigError(msg)
            data["pipeline"] = pipeline
        if not callable(getattr(data.get("pipeline"), "answer_many", None)):
            got = type(data.get("pipeline")).__name__
            msg = f"PipelineRunnable needs a rag Pipeline (an object with answer_many), got {got}"
            raise ConfigError(msg)
        if "namespace" in data:
            _check_namespace(data["namespace"], "PipelineRunnable")
        super().__init__(**data)

    @property
    def InputType(self) -> Any:  # noqa: N802 - LangChain's name
        return str | PipelineInput | Query

    @property
    def OutputType(self) -> Any:  # noqa: N802 - LangChain's name
        return dict[str, Any]

    @staticmethod
    def _no_kwargs(kwargs: Mapping[str, Any]) -> None:
        if kwargs:
            msg = (f"PipelineRunnable takes no call arguments, got {sorted(kwargs)}; "
                   "put user_facts and namespace in the input dict")
            raise ConfigError(msg)

    def _answer(self, queries: list[Query]) -> list[dict[str, Any]]:
        with self._lock:
            answers = self.pipeline.answer_many(queries)
        return [_answer_dict(a) for a in answers]

    def _answer_one(self, value: Any) -> dict[str, Any]:
        return self._answer([to_query(value, self.namespace)])[0]

    def _answer_inputs(self, values: list[Any], *, return_exceptions: bool) -> list[Any]:
        out: list[Any] = []
        for value in values:
            try:
                out.append(to_query(value, self.namespace))
            except ConfigError as exc:
                if not return_exceptions:
                    raise  # before any generator work
                out.append(exc)
        good = [i for i, q in enumerate(out) if isinstance(q, Query)]
        for i, answer in zip(good, self._answer([out[i] for i in good]) if good else []):
            out[i] = answer
        return out

    def invoke(
        self, input: Any, config: RunnableConfig | None = None, **kwargs: Any  # noqa: A002
    ) -> dict[str, Any]:
        """Answer one question; see the class docstring for the input forms."""
        self._no_kwargs(kwargs)
        return self._call_with_config(self._answer_one, input, config)

    async def ainvoke(
        self, input: Any, config: RunnableConfig | None = None, **kwargs: Any  # noqa: A002
    ) -> dict[str, Any]:
        """Answer one question in a worker thread."""
        self._no_kwargs(kwargs)

        async def answer(value: Any) -> dict[str, Any]:
            return await run_in_executor(None, self._answer_one, value)

        return await self._acall_with_config(answer, input, config)

    def batch(
        self,
        inputs: list[Any],
        config: RunnableConfig | list[RunnableConfig] | None = None,
        *,
        return_exceptions: bool = False,
        **kwargs: Any,
    ) -> list[Any]:
        """Answer many questions with one ``Pipeline.answer_many`` call."""
        self._no_kwargs(kwargs)

        def answer(values: list[Any]) -> list[Any]:
            return self._answer_inputs(values, return_exceptions=return_exceptions)

        return self._batch_with_config(
            answer, list(inputs), config, return_exceptions=return_exceptions
        )

    async def abatch(
        self,
        inputs: list[Any],
        config: RunnableConfig | list[RunnableConfig] | None = None,
        *,
        return_exceptions: bool = False,
        **kwargs: Any,
    ) -> list[Any]:
        """Answer many questions with one ``Pipeline.answer_many`` call, in a worker thread."""
        self._no_kwargs(kwargs)

        async def answer(values: list[Any]) -> list[Any]:
            return await run_in_executor(
                None, self._answer_inputs, values, return_exceptions=return_exceptions
            )

        return await self._abatch_with_config(
            answer, list(inputs), config, return_exceptions=return_exceptions
        )


# -- generator ------------------------------------------------------------------------------


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
