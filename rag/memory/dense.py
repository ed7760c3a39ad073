"""Dense index: FAISS inner product over L2-normalised vectors, keyed by int64."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from rag.errors import ConfigError, StoreError


class DenseIndex:
    """Exact cosine search over normalised vectors, with adds and deletes by key.

    Example:
        >>> import numpy as np
        >>> idx = DenseIndex(dim=2)
        >>> idx.add([7, 8], np.array([[1, 0], [0, 1]], dtype=np.float32))
        >>> idx.search(np.array([0.9, 0.1], dtype=np.float32), k=1)[0][0]
        7
    """

    def __init__(self, dim: int) -> None:
        if dim < 1:
            msg = f"dim must be a positive integer, got {dim}"
            raise ConfigError(msg)
        import faiss

        self.dim = dim
        self._index = faiss.IndexIDMap2(faiss.IndexFlatIP(dim))

    def __len__(self) -> int:
        return int(self._index.ntotal)

    def add(self, keys: Sequence[int], vectors: np.ndarray) -> None:
        """Add ``vectors`` (n, dim) under ``keys``; a key already present is replaced."""
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[1] != self.dim or len(keys) != len(vectors):
            msg = f"add() needs {len(keys)} vectors of dim {self.dim}, got shape {vectors.shape}"
            raise ConfigError(msg)
        if len(keys) == 0:
            return
        ids = np.asarray(keys, dtype=np.int64)
        self.remove(ids)
        self._index.add_with_ids(vectors, ids)

    def remove(self, keys: Iterable[int]) -> None:
        ids = np.fromiter((int(k) for k in keys), dtype=np.int64)
        if len(ids) and len(self):
            self._index.remove_ids(ids)

    def search(self, vector: np.ndarray, k: int = 10) -> list[tuple[int, float]]:
        """The ``k`` nearest (key, cosine) pairs, best first."""
        if k < 1:
            msg = f"k must be a positive integer, got {k}"
            raise ConfigError(msg)
        if len(self) == 0:
            return []
        query = np.ascontiguousarray(vector, dtype=np.float32).reshape(1, -1)
        scores, ids = self._index.search(query, min(k, len(self)))
        return [(int(i), float(s)) for i, s in zip(ids[0], scores[0]) if i != -1]

    def save(self, path: Path) -> None:
        import faiss

        path.parent.mkdir(parents=True, exist_ok=True)
        faiss.write_index(self._index, str(path))

    @classmethod
    def load(cls, path: Path, dim: int) -> DenseIndex:
        """Read an index written by :meth:`save`.

        Raises:
            StoreError: the file is missing, unreadable or of another dimension.
        """
        import faiss

        try:
            index = faiss.read_index(str(path))
        except RuntimeError as exc:
            msg = f"cannot read the dense index {path}: {exc}"
            raise StoreError(msg) from exc
        if index.d != dim:
            msg = f"the dense index {path} has dim {index.d}, expected {dim}"
            raise StoreError(msg)
        out = cls(dim)
        out._index = index
        return out
