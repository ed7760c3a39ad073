"""Ray: ingestion and evaluation spread over worker processes or machines (optional extra).

* :func:`ray_ingest`: passages are embedded by a pool of Ray actors (each loads the
  embedder once) and written by this process through the store, which stays the single
  writer of its SQLite truth: deduplication, replacement, the change feed and the index are
  exactly those of :meth:`Store.add_passages <rag.memory.store.Store.add_passages>`.
* :class:`AnswerPool`: questions are answered by warm actors kept across calls, each with
  its own :class:`~rag.pipeline.Pipeline` over the same store folder, opened for reading
  (SQLite in WAL mode serves concurrent readers); answers come back in the questions'
  order. :func:`ray_answer_many` is one call on a pool made and closed for it.

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

__all__ = ["AnswerPool", "ray_answer_many", "ray_ingest"]

INSTALL = "pip install 'rag-conflicts[ray]'  (or: pip install 'ray>=2.40')"


def _ray() -> Any:
    try:
        import ray
    except ImportError as exc:
        msg = f"distributing work needs Ray: {INSTALL}"
        raise MissingDependencyError(msg) from exc
    return ray


def _connect(address: str | None) -> Any:
    # Ray's own output follows the level set on the "ray" logger (ERROR under `rag -q`), read
    # before importing Ray, which resets it; the workers' output is forwarded only at INFO.
    level = logging.getLogger("ray").level or logging.INFO
    ray = _ray()
    if not ray.is_initialized():
        logger.info("connecting to Ray (%s)", address or os.environ.get("RAY_ADDRESS") or "a new local instance")
        ray.init(address=address, logging_level=level, log_to_driver=level <= logging.INFO)
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


class AnswerPool:
    """Warm Ray actors answering questions over one store, kept across calls.

    Each of ``num_workers`` actors holds its own :class:`~rag.pipeline.Pipeline` over the
    store folder, opened for reading (SQLite in WAL mode serves concurrent readers); its
    models load on the first question it gets and stay loaded until :meth:`close`, so only
    the first :meth:`answer_many` pays for them. Every search replays the store's change
    feed, so edits written meanwhile (``rag edit``, another process) are answered from.

    Sizing: each actor holds a whole pipeline (embedder, generator, the store's index), so
    ``num_workers`` is at most the memory free for them divided by one actor's resident
    size, and at most the cores divided by the threads one actor computes with
    (``cpus_per_worker``, which Ray reserves; give the generator the same count, e.g.
    ``functools.partial(load_generator, n_contexts=1, n_threads=1)`` for one core).

    Args:
        store_path: The store folder, at this path on every worker.
        generator_factory: Makes each actor's generator (a picklable callable).
        num_workers: Pipeline actors, started now.
        pipeline_config: The :class:`~rag.pipeline.PipelineConfig` (default config if ``None``).
        embedder_factory: Makes each actor's embedder (default: ``load_embedder`` of the
            store's embedder name).
        index_factory: Makes each actor's retrieval index (default: the backend the store
            records, see :func:`~rag.integrations.qdrant.index_for_store`, else the store's
            :class:`~rag.memory.index.LocalIndex`); e.g.
            ``lambda: QdrantIndex("http://qdrant:6333")`` to share one Qdrant collection.
            Qdrant's local mode cannot be shared: one process holds its folder.
        batch_size: Questions per call to an actor.
        cpus_per_worker: CPUs Ray reserves for each actor.
        address: Ray cluster address (default ``RAY_ADDRESS``, else a local instance).
        show_progress: Progress bar of :meth:`answer_many` (default: when logging at INFO).

    Raises:
        ConfigError: bad sizes, or a store in Qdrant local mode for more than one worker.
        StoreNotFoundError: no store at ``store_path``.
        MissingDependencyError: Ray is not installed.

    Example:
        >>> from rag.testing import ScriptedGenerator
        >>> with AnswerPool("indexes/demo", generator_factory=ScriptedGenerator) as pool:  # doctest: +SKIP
        ...     first = pool.answer_many(["Where is the Eiffel Tower?"])   # loads the models
        ...     later = pool.answer_many(["Who serves as mayor of Zelmoryn?"])  # warm
    """

    def __init__(
        self,
        store_path: str | Path,
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
    ) -> None:
        _check_workers(num_workers)
        _check_batch_size(batch_size)
        path = str(Path(store_path).resolve())
        factory = embedder_factory or functools.partial(_load_embedder, Store.embedder_of(path))
        if index_factory is None:
            index_factory = _recorded_index_factory(path, num_workers)
        self.store_path, self.num_workers, self.batch_size = path, num_workers, batch_size
        self.show_progress = show_progress
        self._ray = ray = _connect(address)
        worker = ray.remote(num_cpus=cpus_per_worker)(_AnswerWorker)
        args = (path, factory, generator_factory, pipeline_config, index_factory)
        self._actors = [worker.remote(*args, True)]
        try:
            ray.get(self._actors[0].pid.remote())  # raises here if the store cannot be opened
            self._actors += [worker.remote(*args, False) for _ in range(num_workers - 1)]
            self.pids = ray.get([actor.pid.remote() for actor in self._actors])
        except BaseException:
            self.close()
            raise
        logger.info("answer pool of %d Ray workers (pids %s)", num_workers, self.pids)

    def answer_many(self, questions: Sequence[str | Query], *, batch_size: int | None = None) -> list[Answer]:
        """Answer ``questions``; chunks of ``batch_size`` go to whichever actor is free (one
        :meth:`~rag.pipeline.Pipeline.answer_many` call each), and the answers come back in
        the order of ``questions``, as ``Pipeline.answer_many`` would return them. One call
        at a time per pool.

        Raises:
            ConfigError: the pool is closed.
        """
        if not self._actors:
            msg = "this AnswerPool is closed; make a new one"
            raise ConfigError(msg)
        size = batch_size or self.batch_size
        _check_batch_size(size)
        questions = list(questions)
        if not questions:
            return []
        from ray.util import ActorPool

        chunks = [questions[i : i + size] for i in range(0, len(questions), size)]
        answers: list[Answer] = []
        pool = ActorPool(self._actors[: len(chunks)])
        with tqdm(total=len(questions), desc="answer", unit="question", disable=not _show(self.show_progress)) as bar:
            for part in pool.map(lambda actor, chunk: actor.answer.remote(chunk), chunks):
                answers.extend(part)
                bar.update(len(part))
        return answers

    def close(self) -> None:
        """End the actors (and with them their models). Safe to call twice."""
        actors, self._actors = self._actors, []
        for actor in actors:
            self._ray.kill(actor)

    def __enter__(self) -> AnswerPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _check_batch_size(batch_size: int) -> None:
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        msg = f"batch_size must be a positive integer, got {batch_size!r}"
        raise ConfigError(msg)


def _recorded_index_factory(path: str, num_workers: int) -> Callable[[], Any] | None:
    """The workers' index: the backend the store records (``rag index --qdrant-*``), if any."""
    from rag.integrations.qdrant import index_for_store

    recorded = index_for_store(path)
    if recorded is None:
        return None
    if recorded.url is None and num_workers > 1:
        msg = (f"store {path} keeps its index in Qdrant local mode ({recorded.path}), which one process "
               "at a time can open: use num_workers=1, or pass index_factory (e.g. a Qdrant server)")
        raise ConfigError(msg)
    return functools.partial(index_for_store, path)


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
    """Answer ``questions`` once with a fresh :class:`AnswerPool` (same arguments), closed
    afterwards: every call loads the models again. For more than one call, keep an
    :class:`AnswerPool` open instead.

    Example:
        >>> from rag.testing import ScriptedGenerator
        >>> answers = ray_answer_many("indexes/demo", ["Where is the Eiffel Tower?"],
        ...                           generator_factory=ScriptedGenerator)  # doctest: +SKIP
    """
    _check_workers(num_workers)
    _check_batch_size(batch_size)
    questions = list(questions)
    if not questions:
        return []
    workers = min(num_workers, -(-len(questions) // batch_size))  # no actor without a chunk
    with AnswerPool(store_path, generator_factory=generator_factory, num_workers=workers,
                    pipeline_config=pipeline_config, embedder_factory=embedder_factory,
                    index_factory=index_factory, batch_size=batch_size, cpus_per_worker=cpus_per_worker,
                    address=address, show_progress=show_progress) as pool:
        return pool.answer_many(questions)
