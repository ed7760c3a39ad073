"""Sentence-transformers embedder over a local model folder (the packaged MiniLM by default)."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from rag.errors import ConfigError, ModelLoadError
from rag.models.offline import (
    DEFAULT_EMBEDDER,
    EMBEDDERS,
    embedder_path,
    route_runtime_logs,
    set_offline,
)

logger = logging.getLogger(__name__)


#: Up to this many texts, encode on one thread (see :func:`_threads_for`).
SMALL_BATCH = 8


@contextmanager
def _threads_for(n_texts: int) -> Iterator[None]:
    """One torch thread for a few texts. Their matrix products are too small to share, and
    when another process is busy on the same cores, two threads spin at every barrier:
    measured 418 ms against 33 ms for one sentence on a loaded 2-core machine."""
    import torch

    if n_texts > SMALL_BATCH:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


class SentenceTransformerEmbedder:
    """Embeds texts with a sentence-transformers model, loaded lazily on first use.

    Args:
        model: A packaged model name (``all-minilm-l6-v2``) or a local model folder.
        batch_size: Texts per forward pass.
        show_progress: sentence-transformers' own "Batches" bar inside
            :meth:`embed_documents` (off by default: the caller of a long job, such as
            :meth:`Store.add_passages <rag.memory.store.Store.add_passages>`, shows its own
            bar, and an inner one would break up an evaluation's bars).

    Example:
        >>> emb = SentenceTransformerEmbedder()          # doctest: +SKIP
        >>> emb.embed_query("Where is the Eiffel Tower?").shape   # doctest: +SKIP
        (384,)
    """

    def __init__(
        self,
        model: str | Path = DEFAULT_EMBEDDER,
        *,
        batch_size: int = 64,
        show_progress: bool = False,
    ) -> None:
        if batch_size < 1:
            msg = f"batch_size must be a positive integer, got {batch_size}"
            raise ConfigError(msg)
        model_str = str(model) if str(model) in EMBEDDERS else str(Path(model).expanduser().resolve())
        if model_str not in EMBEDDERS and not Path(model_str).is_dir():
            msg = (
                f"embedder model {model_str!r} is neither a packaged model "
                f"({', '.join(EMBEDDERS)}) nor an existing folder"
            )
            raise ConfigError(msg)
        self._model_ref = model_str
        self.batch_size = batch_size
        self.show_progress = show_progress
        self._model: Any = None

    @property
    def name(self) -> str:
        """The packaged model name or the model folder's absolute path."""
        return self._model_ref

    def _load(self) -> Any:
        if self._model is None:
            set_offline()
            from sentence_transformers import SentenceTransformer

            route_runtime_logs()

            path = (
                embedder_path(self._model_ref)
                if self._model_ref in EMBEDDERS
                else Path(self._model_ref)
            )
            try:
                self._model = SentenceTransformer(str(path), device="cpu")
            except Exception as exc:  # the library raises many types; keep the cause
                msg = f"could not load the embedder from {path}: {exc}"
                raise ModelLoadError(msg) from exc
        return self._model

    @property
    def dim(self) -> int:
        model = self._load()
        getter = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        return int(getter())

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        return self._embed(texts, self.show_progress)

    def _embed(self, texts: Sequence[str], show: bool) -> np.ndarray:
        model = self._load()
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        with _threads_for(len(texts)):
            vectors = model.encode(
                list(texts),
                batch_size=self.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=show and len(texts) > self.batch_size,
            )
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def embed_query(self, text: str) -> np.ndarray:
        return self.embed_documents([text])[0]

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._embed(texts, show=False)  # a batch of questions is no long job
