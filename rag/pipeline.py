"""The pipeline: explicit composition of retrieval and reading into cited answers.

The flow of one question (stages are added here as they land)::

    retrieve  hybrid search over memory and corpus in the asker's namespace
    select    memory (edits) before corpus, then by fused rank
    read      short answer from the selected evidence; cite the passages that support it
    fallback  closed-book (parametric) answer when no evidence is found
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from rag.errors import ConfigError
from rag.memory.store import Store
from rag.protocols import Generator
from rag.stages.read import Reader
from rag.types import Answer, Passage, Query, ScoredPassage, StageRecord

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class PipelineConfig:
    """What the pipeline does; an ablation is a different config, not different code.

    Attributes:
        k: Passages retrieved per question.
        max_passages: Passages shown to the generator.
        memory_first: Put memory (edits) ahead of corpus passages in the evidence.
        extractive: Read answers out of the evidence before asking the generator.
    """

    k: int = 5
    max_passages: int = 3
    memory_first: bool = True
    extractive: bool = True

    def __post_init__(self) -> None:
        if self.k < 1 or self.max_passages < 1:
            msg = f"k and max_passages must be positive, got k={self.k}, max_passages={self.max_passages}"
            raise ConfigError(msg)


class Pipeline:
    """Answers questions from a :class:`~rag.memory.store.Store` with a generator.

    Args:
        store: Where passages, notes and QA pairs live.
        generator: Any :class:`~rag.protocols.Generator`.
        config: Stage settings.

    Example:
        >>> import tempfile
        >>> from rag.memory.store import Store
        >>> from rag.testing import HashEmbedder, ScriptedGenerator, tiny_corpus
        >>> store = Store(tempfile.mkdtemp(), HashEmbedder())
        >>> _ = store.add_passages(tiny_corpus())
        >>> pipe = Pipeline(store, ScriptedGenerator({"Marrowgate": "Marrowgate"}))
        >>> answer = pipe.ask("What is the capital of Veldoria?")
        >>> answer.text, answer.source, answer.citations
        ('Marrowgate', 'corpus', ('t1',))
    """

    def __init__(self, store: Store, generator: Generator, config: PipelineConfig | None = None) -> None:
        self.store = store
        self.generator = generator
        self.config = config or PipelineConfig()
        self.reader = Reader(generator, max_passages=self.config.max_passages, extractive=self.config.extractive)

    def ask(self, question: str | Query) -> Answer:
        """Answer one question (a string, or a :class:`~rag.types.Query`)."""
        return self.answer_many([question])[0]

    def answer_many(self, questions: Iterable[str | Query]) -> list[Answer]:
        """Answer many questions; the generator is called once for the whole batch."""
        queries = [q if isinstance(q, Query) else Query(q) for q in questions]
        for q in queries:
            if not q.question.strip():
                msg = "question must be a non-empty string"
                raise ConfigError(msg)
        traces: list[list[StageRecord]] = [[] for _ in queries]
        evidence: list[list[Passage]] = []
        for q, trace in zip(queries, traces):
            start = time.perf_counter()
            hits = self.store.search(q.question, self.config.k, namespace=q.namespace)
            trace.append(StageRecord("retrieve", f"{len(hits)} passages", _ms(start),
                                     {"ids": [h.id for h in hits]}))
            chosen = self._select(hits)
            trace.append(StageRecord("select", f"{len(chosen)} passages", 0.0,
                                     {"ids": [p.id for p in chosen]}))
            evidence.append(chosen)
        start = time.perf_counter()
        readings = self.reader.read_many([(q.question, ev) for q, ev in zip(queries, evidence)])
        read_ms = _ms(start) / max(1, len(queries))
        answers = []
        for q, ev, reading, trace in zip(queries, evidence, readings, traces):
            if ev:
                cited = reading.citations or (ev[0].id,)
                first = next(p for p in ev if p.id == cited[0])
                source = first.origin
            else:
                cited, source = (), "parametric"
            trace.append(StageRecord("read", source, read_ms, {"answer": reading.text, "method": reading.method}))
            text = reading.text
            if not text:
                source, cited = "none", ()
            answers.append(Answer(text, source, cited, trace=tuple(trace), question=q.question))
        return answers

    def _select(self, hits: Sequence[ScoredPassage]) -> list[Passage]:
        passages = [h.passage for h in hits]
        if self.config.memory_first:
            passages.sort(key=lambda p: p.origin != "memory")  # stable: rank order kept within
        return passages


def _ms(start: float) -> float:
    return (time.perf_counter() - start) * 1000.0
