"""Ray: ingestion and evaluation spread over worker processes or machines (optional extra).

* :func:`ray_ingest`: passages are embedded by a pool of Ray actors (each loads the
  embedder once) and written by this process through the store, which stays the single
  writer of its SQLite truth: deduplication, replacement, the change feed and the index are
  exactly those of :meth:`Store.add_passages <rag.memory.store.Store.add_passages>`.
* :func:`ray_answer_many`: questions are answered by a pool of actors, each with its own
  :class:`~rag.pipeline.Pipeline` over the same store folder, opened for reading (SQLite in
  WAL mode serves concurrent readers); answers come back in the questions' order.

Ray is joined with ``ray.init(address=address)`` unless this process is already connected:
``address=None`` reads ``RAY_ADDRESS`` (e.g. ``ray://head:10001`` or ``auto``) and otherwise
starts a local instance with this machine's CPUs. Every worker needs this library, its
embedder and (for evaluation) the store folder at the same path: a shared file system, or
one machine. Needs ``pip install 'rag-conflicts[ray]'``.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from rag.errors import ConfigError, MissingDependencyError
from rag.memory.ingest import Chunker, IngestReport
from rag.memory.store import Store
from rag.protocols import Embedder, Generator
from rag.types import Answer, Passage, Query

logger = logging.getLogger(__name__)

__all__ = ["ray_answer_many", "ray_ingest"]

INSTALL = "pip install 'rag-conflicts[ray]'  (or: pip install 'ray>=2.40')"


def _ray() -> Any:
    try:
        import ray
    except ImportError as exc:
        msg = f"distributing work needs Ray: {INSTALL}"
        raise MissingDependencyError(msg) from exc
    return ray


def _connect(address: str | None) -> Any:
    ray = _ray()
    if not ray.is_initialized():
        logger.info("connecting to Ray (%s)", address or os.environ.get("RAY_ADDRESS") or "a new local instance")
        ray.init(address=address)
    return ray


def _check_workers(num_workers: int) -> None:
    if isinstance(num_workers, bool) or not isinstance(num_workers, int) or num_workers < 1:
        msg = f"num_workers must be a positive integer, got {num_workers!r}"
        raise ConfigError(msg)


def _show(show_progress: bool | None) -> bool:
    return logger.getEffectiveLevel() <= logging.INFO if show_progress is None else show_progress


# -- ingestion ------------------------------------------------------------------------------


class _EmbedWorker:
    """A Ray actor holding one embedder."""

    def __init__(self, factory: Callable[[], Embedder]) -> None:
        self.embedder = factory()

    def describe(self) -> tuple[str, int, int]:
        return self.embedder.name, self.embedder.dim, os.getpid()

    def embed_documents(self, texts: list[str]) -> np.ndarray:
        return np.asarray(self.embedder.embed_documents(texts), dtype=np.float32)

    def embed_query(self, text: str) -> np.ndarray:
        return np.asarray(self.embedder.embed_query(text), dtype=np.float32)


class _PoolEmbedder:
    """An :class:`~rag.protocols.Embedder` whose batches are split over Ray actors."""

    def __init__(self, ray: Any, actors: list[Any], name: str, dim: int) -> None:
        self._ray, self._actors, self._name, self._dim = ray, actors, name, dim

    @property
    def name(self) -> str:
        return self._name

    @property
    def dim(self) -> int:
        return self._dim

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        texts = list(texts)
        if not texts:
            return np.zeros((0, self._dim), dtype=np.float32)
        bounds = np.linspace(0, len(texts), min(len(self._actors), len(texts)) + 1).astype(int)
        parts = [actor.embed_documents.remote(texts[lo:hi])
                 for actor, lo, hi in zip(self._actors, bounds[:-1], bounds[1:], strict=False)]
        return np.concatenate(self._ray.get(parts))

    def embed_query(self, text: str) -> np.ndarray:
        return self._ray.get(self._actors[0].embed_query.remote(text))

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self.embed_documents(texts)


def ray_ingest(
    store: Store,
    source: str | Path | Iterable[Passage],
    *,
    num_workers: int = 2,
    embedder_factory: Callable[[], Embedder] | None = None,
    strict: bool = False,
    chunker: Chunker | None = None,
    batch_size: int | None = None,
    cpus_per_worker: float = 1.0,
    address: str | None = None,
    show_progress: bool | None = None,
) -> IngestReport:
    """Add a corpus to ``store`` with the embedding spread over ``num_workers`` Ray actors.

    While it runs, the store's embedder is stood in for by the pool; everything else is the
    store's own :meth:`~rag.memory.store.Store.ingest` (for a path) or
    :meth:`~rag.memory.store.Store.add_passages` (for passages), so the report, the
    duplicates skipped and the index are the same as without Ray.

    Args:
        store: The store to write (by this process only).
        source: A corpus path (see :func:`rag.memory.ingest.read_corpus`) or passages.
        num_workers: Embedding actors.
        embedder_factory: Makes the embedder in each actor (default: ``load_embedder`` of
            the store's embedder name). It must produce the store's embedder.
        strict: For a path: reject the whole corpus on a malformed record.
        chunker: For a path: how long documents are split.
        batch_size: For passages: passages per write (default 256 per worker); each batch
            is split across the actors.
        cpus_per_worker: CPUs Ray reserves for each actor.
        address: Ray cluster address (default ``RAY_ADDRESS``, else a local instance).
        show_progress: Progress bar (default: when logging at INFO).

    Raises:
        ConfigError: the workers' embedder is not the store's.
        MissingDependencyError: Ray is not installed.

    Example:
        >>> import tempfile
        >>> from rag.testing import HashEmbedder, tiny_corpus
        >>> store = Store(tempfile.mkdtemp(), HashEmbedder())
        >>> ray_ingest(store, tiny_corpus(), num_workers=2).added  # doctest: +SKIP
        8
    """
    _check_workers(num_workers)
    ray = _connect(address)
    factory = embedder_factory or functools.partial(_load_embedder, store.embedder.name)
    worker = ray.remote(num_cpus=cpus_per_worker)(_EmbedWorker)
    actors = [worker.remote(factory) for _ in range(num_workers)]
    try:
        found = ray.get([a.describe.remote() for a in actors])
        for name, dim, _ in found:
            if (name, dim) != (store.embedder.name, store.embedder.dim):
                msg = (f"the workers' embedder is {name!r} (dim {dim}), the store's is "
                       f"{store.embedder.name!r} (dim {store.embedder.dim})")
                raise ConfigError(msg)
        logger.info("embedding over %d Ray workers (pids %s)", num_workers, [pid for *_, pid in found])
        own = store.embedder
        store.embedder = _PoolEmbedder(ray, actors, own.name, own.dim)
        try:
            if isinstance(source, (str, Path)):
                return store.ingest(source, strict=strict, chunker=chunker, show_progress=show_progress)
            report = store.add_passages(source, batch_size=batch_size or 256 * num_workers,
                                        show_progress=show_progress)
            store.save_indexes()
            return report
        finally:
            store.embedder = own
    finally:
        for actor in actors:
            ray.kill(actor)


def _load_embedder(name: str) -> Embedder:
    from rag.models import load_embedder

    return load_embedder(name)


# -- evaluation -----------------------------------------------------------------------------


class _AnswerWorker:
    """A Ray actor with its own pipeline over a store folder it only reads.

    It never closes its store: closing may persist the index snapshot, and several readers
    writing one snapshot folder would race. Ending the actor ends its process.
    """

    def __init__(self, store_path: str, embedder_factory: Callable[[], Embedder],
                 generator_factory: Callable[[], Generator], config: Any,
                 index_factory: Callable[[], Any] | None, bring_up_to_date: bool) -> None:
        from rag.pipeline import Pipeline

        index = index_factory() if index_factory is not None else None
        self.store = Store(store_path, embedder_factory(), create=False, index=index)
        if bring_up_to_date:  # the first worker saves the snapshot the others then load
            self.store.save_indexes()
        self.pipeline = Pipeline(self.store, generator_factory(), config)

    def pid(self) -> int:
        return os.getpid()

    def answer(self, questions: list[str | Query]) -> list[Answer]:
        return self.pipeline.answer_many(questions)


def ray_answer_many(
    store_path: str | Path,
    questions: Sequence[str | Query],
    *,
    generator_factory: Callable[[], Generator],
    num_workers: int = 2,
    pipeline_config: Any = None,
    embedder_factory: Callable[[], Embedder] | None = None,
    index_factory: Callable[[], Any] | None = None,
    batch_size: int = 8,
    cpus_per_worker: float = 1.0,
    address: str | None = None,
    show_progress: bool | None = None,
) -> list[Answer]:
    """Answer ``questions`` over a store with pipelines in ``num_workers`` Ray actors.

    The questions go out in chunks of ``batch_size`` to whichever actor is free (one
    :meth:`~rag.pipeline.Pipeline.answer_many` call each); the answers come back in the
    order of ``questions``, as :meth:`Pipeline.answer_many <rag.pipeline.Pipeline.answer_many>`
    would return them.

    Args:
        store_path: The store folder, at this path on every worker.
        questions: Strings or :class:`~rag.types.Query` objects.
        generator_factory: Makes each actor's generator (a picklable callable).
        num_workers: Pipeline actors.
        pipeline_config: The :class:`~rag.pipeline.PipelineConfig` (default config if ``None``).
        embedder_factory: Makes each actor's embedder (default: ``load_embedder`` of the
            store's embedder name).
        index_factory: Makes each actor's retrieval index (default: the store's
            :class:`~rag.memory.index.LocalIndex`); e.g.
            ``lambda: QdrantIndex("http://qdrant:6333")`` to share one Qdrant collection.
            Qdrant's local mode cannot be shared: one process holds its folder.
        batch_size: Questions per call to an actor.
        cpus_per_worker: CPUs Ray reserves for each actor.
        address: Ray cluster address (default ``RAY_ADDRESS``, else a local instance).
        show_progress: Progress bar (default: when logging at INFO).

    Example:
        >>> from rag.testing import ScriptedGenerator
        >>> answers = ray_answer_many("indexes/demo", ["Where is the Eiffel Tower?"],
        ...                           generator_factory=ScriptedGenerator)  # doctest: +SKIP
    """
    _check_workers(num_workers)
    if batch_size < 1:
        msg = f"batch_size must be a positive integer, got {batch_size}"
        raise ConfigError(msg)
    questions = list(questions)
    if not questions:
        return []
    path = str(Path(store_path).resolve())
    factory = embedder_factory or functools.partial(_load_embedder, Store.embedder_of(path))
    ray = _connect(address)
    from ray.util import ActorPool

    worker = ray.remote(num_cpus=cpus_per_worker)(_AnswerWorker)
    chunks = [questions[i : i + batch_size] for i in range(0, len(questions), batch_size)]
    n = min(num_workers, len(chunks))
    args = (path, factory, generator_factory, pipeline_config, index_factory)
    actors = [worker.remote(*args, True)]
    try:
        ray.get(actors[0].pid.remote())  # raises here if the store cannot be opened
        actors += [worker.remote(*args, False) for _ in range(n - 1)]
        answers: list[Answer] = []
        pool = ActorPool(actors)
        with tqdm(total=len(questions), desc="answer", unit="question", disable=not _show(show_progress)) as bar:
            for part in pool.map(lambda actor, chunk: actor.answer.remote(chunk), chunks):
                answers.extend(part)
                bar.update(len(part))
        return answers
    finally:
        for actor in actors:
            ray.kill(actor)
