"""Retrieval indexes: what the store derives from its truth to answer searches.

The :class:`~rag.memory.store.Store` keeps passages in SQLite and feeds every add and
removal, in order, to one :class:`RetrievalIndex`. An index answers hybrid searches
(dense + sparse, fused) filtered by namespace and kind, and persists itself so that a
reopened store only replays the changes made since.

* :class:`LocalIndex` (the default): FAISS and the library's BM25 in this process, fused by
  reciprocal rank, snapshot under the store's ``index/`` folder.
* ``rag.integrations.qdrant.QdrantIndex``: a Qdrant collection (local mode, a server or a
  cluster), for stores past one machine.

Both pass the same contract tests (``tests/memory/test_retrieval_contract.py``).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from rag.errors import StoreError
from rag.memory.dense import DenseIndex
from rag.memory.fusion import RRF_K, reciprocal_rank_fusion
from rag.memory.sparse import BM25Index
from rag.types import PASSAGE_KINDS

logger = logging.getLogger(__name__)

INDEX_FORMAT = 2


@dataclass(frozen=True)
class IndexMeta:
    """What an index snapshot must match to be reused: the store it was built from.

    Attributes:
        store_uid: The store's unique id (a snapshot copied from another store is stale).
        embedder: Name of the embedder that made the vectors.
        dim: Vector dimension.
        folder: Where a file-based index keeps its snapshot.
    """

    store_uid: str
    embedder: str
    dim: int
    folder: Path


@dataclass(frozen=True)
class IndexBatch:
    """Passages to index, column by column (one array of vectors rather than n small ones).

    Attributes:
        keys: The store's integer keys (stable for the life of a stored row).
        vectors: ``(n, dim)`` float32, L2-normalised.
        texts: What the sparse side reads (title and text).
        namespaces: Namespace of each passage.
        kinds: ``passage``, ``note`` or ``qa``.
    """

    keys: Sequence[int]
    vectors: np.ndarray
    texts: Sequence[str]
    namespaces: Sequence[str]
    kinds: Sequence[str]

    def __len__(self) -> int:
        return len(self.keys)


@runtime_checkable
class RetrievalIndex(Protocol):
    """The seam between the store and a search engine.

    An index may also have a ``close()`` method (to release a client, a connection or a
    folder lock); :meth:`Store.close <rag.memory.store.Store.close>` calls it.
    """

    def open(self, meta: IndexMeta, *, upto: int) -> int:
        """Load the persisted state; return the change sequence number it reflects.

        Returns 0 when it starts empty (none persisted, or stale, corrupt or ahead of the
        store's last change ``upto``: then it logs a warning saying why and resets), and
        the store rebuilds it from the truth.
        """
        ...

    def add(self, batch: IndexBatch) -> None:
        """Index passages; a key already present is replaced."""
        ...

    def remove(self, keys: Sequence[int]) -> None:
        """Forget keys (unknown keys are ignored)."""
        ...

    def search(
        self, query: str, vector: np.ndarray, k: int, *, namespaces: frozenset[str],
        kinds: frozenset[str] | None = None,
    ) -> list[tuple[int, float]]:
        """Up to ``k`` (key, score) pairs, best first, among passages whose namespace is
        in ``namespaces`` and whose kind is in ``kinds`` (all kinds when ``None``)."""
        ...

    def persist(self, meta: IndexMeta, applied_seq: int) -> None:
        """Make the state durable, recording that it reflects changes up to ``applied_seq``."""
        ...

    def __len__(self) -> int: ...


class _Labels:
    """Namespace and kind of every indexed key, in two arrays indexed by key.

    Keys are the store's autoincrement row keys, so arrays indexed by them stay dense;
    filtering a few hundred candidates is one fancy-indexing step instead of a database
    round trip.
    """

    def __init__(self) -> None:
        self.names: list[str] = []
        self._code: dict[str, int] = {}
        self.ns = np.full(0, -1, dtype=np.int32)  # -1: not indexed
        self.kind = np.zeros(0, dtype=np.int8)

    def _grow(self, top: int) -> None:
        if top < len(self.ns):
            return
        size = max(top + 1, 2 * len(self.ns), 1024)
        ns = np.full(size, -1, dtype=np.int32)
        ns[: len(self.ns)] = self.ns
        kind = np.zeros(size, dtype=np.int8)
        kind[: len(self.kind)] = self.kind
        self.ns, self.kind = ns, kind

    def code(self, namespace: str) -> int:
        if namespace not in self._code:
            self._code[namespace] = len(self.names)
            self.names.append(namespace)
        return self._code[namespace]

    def set(self, keys: Sequence[int], namespaces: Sequence[str], kinds: Sequence[str]) -> None:
        ids = np.asarray(keys, dtype=np.int64)
        if len(ids) == 0:
            return
        self._grow(int(ids.max()))
        self.ns[ids] = [self.code(n) for n in namespaces]
        self.kind[ids] = [PASSAGE_KINDS.index(k) for k in kinds]

    def clear(self, keys: Sequence[int]) -> None:
        ids = np.asarray([k for k in keys if 0 <= k < len(self.ns)], dtype=np.int64)
        self.ns[ids] = -1

    def allowed(self, keys: np.ndarray, namespaces: frozenset[str],
                kinds: frozenset[str] | None) -> np.ndarray:
        """A boolean mask over ``keys``: indexed, visible and of an allowed kind."""
        inside = keys < len(self.ns)
        safe = np.where(inside, keys, 0)
        codes = [self._code[n] for n in namespaces if n in self._code]
        mask = inside & np.isin(self.ns[safe], codes)
        if kinds is not None:
            mask &= np.isin(self.kind[safe], [PASSAGE_KINDS.index(k) for k in kinds])
        return mask

    def save(self, folder: Path) -> None:
        with (folder / "labels.npz").open("wb") as fh:
            np.savez(fh, ns=self.ns, kind=self.kind)
        (folder / "labels.json").write_text(json.dumps({"namespaces": self.names}), encoding="utf-8")

    @classmethod
    def load(cls, folder: Path) -> _Labels:
        try:
            names = json.loads((folder / "labels.json").read_text(encoding="utf-8"))["namespaces"]
            with np.load(folder / "labels.npz", allow_pickle=False) as data:
                ns, kind = data["ns"], data["kind"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            msg = f"cannot read the index labels in {folder}: {exc}"
            raise StoreError(msg) from exc
        if len(ns) != len(kind) or (len(ns) and int(ns.max()) >= len(names)):
            msg = f"the index labels in {folder} are inconsistent"
            raise StoreError(msg)
        out = cls()
        out.names = list(names)
        out._code = {n: i for i, n in enumerate(out.names)}
        out.ns, out.kind = ns.astype(np.int32), kind.astype(np.int8)
        return out


class LocalIndex:
    """FAISS (dense) and BM25 (sparse) in this process, fused by reciprocal rank.

    Each side is searched for ``fetch`` candidates (``4 * k``, at least 50); the fused list
    is filtered by namespace and kind, and the fetch widens (x4) while the filter leaves
    fewer than ``k`` and the indexes have more to give.

    Args:
        rrf_k: Constant of reciprocal rank fusion.
        dense: Settings of the dense side (see :class:`~rag.memory.dense.DenseIndex`).

    Example:
        >>> import numpy as np
        >>> idx = LocalIndex()
        >>> idx.add(IndexBatch([1, 2], np.eye(2, dtype=np.float32), ["red apple", "blue sky"],
        ...                    ["shared", "alice"], ["passage", "note"]))
        >>> idx.search("apple", np.array([1, 0], np.float32), 2, namespaces=frozenset({"shared"}))[0][0]
        1
    """

    def __init__(self, *, rrf_k: int = RRF_K, dense: dict | None = None) -> None:
        self.rrf_k = rrf_k
        self._dense_config = dict(dense or {})
        self.dense: DenseIndex | None = None
        self.sparse = BM25Index()
        self._labels = _Labels()

    def __len__(self) -> int:
        return len(self.dense) if self.dense is not None else 0

    def _reset(self, dim: int) -> None:
        self.dense = DenseIndex(dim, **self._dense_config)
        self.sparse = BM25Index()
        self._labels = _Labels()

    def open(self, meta: IndexMeta, *, upto: int) -> int:
        folder = meta.folder
        manifest_path = folder / "manifest.json"
        self._reset(meta.dim)
        if not manifest_path.exists():
            if folder.exists():
                logger.warning("rebuilding the indexes in %s: the snapshot has no manifest "
                               "(interrupted save?)", folder)
            else:
                logger.info("building the indexes in %s", folder)
            return 0
        try:
            manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
            expected = {"format": INDEX_FORMAT, "store_uid": meta.store_uid,
                        "embedder": meta.embedder, "dim": meta.dim}
            stale = {k: manifest.get(k) for k, v in expected.items() if manifest.get(k) != v}
            if stale:
                logger.warning("rebuilding the indexes in %s: the snapshot is stale (%s)", folder, stale)
                return 0
            dense = DenseIndex.load(folder / "dense.faiss", meta.dim)
            sparse = BM25Index.load(folder)
            labels = _Labels.load(folder)
            if len(dense) != manifest["n_dense"] or len(sparse) != manifest["n_sparse"]:
                logger.warning("rebuilding the indexes in %s: the snapshot is corrupt "
                               "(sizes disagree with its manifest)", folder)
                return 0
            applied = int(manifest["applied_seq"])
            if applied > upto:
                logger.warning("rebuilding the indexes in %s: the snapshot is ahead of the database", folder)
                return 0
        except (ValueError, KeyError, TypeError, StoreError) as exc:
            logger.warning("rebuilding the indexes in %s: the snapshot is unreadable (%s)", folder, exc)
            return 0
        self.dense, self.sparse, self._labels = dense, sparse, labels
        return applied

    def add(self, batch: IndexBatch) -> None:
        if self.dense is None:
            self._reset(batch.vectors.shape[1])
        self.dense.add(batch.keys, batch.vectors)
        self.sparse.add(batch.keys, batch.texts)
        self._labels.set(batch.keys, batch.namespaces, batch.kinds)

    def remove(self, keys: Sequence[int]) -> None:
        if self.dense is None or not keys:
            return
        self.dense.remove(keys)
        self.sparse.remove(keys)
        self._labels.clear(keys)

    def search(
        self, query: str, vector: np.ndarray, k: int, *, namespaces: frozenset[str],
        kinds: frozenset[str] | None = None,
    ) -> list[tuple[int, float]]:
        if self.dense is None:
            return []
        fetch = max(4 * k, 50)
        n_indexed = len(self.dense)
        while True:
            dense = self.dense.search(vector, fetch)
            sparse = self.sparse.search(query, fetch)
            fused = reciprocal_rank_fusion([[key for key, _ in dense], [key for key, _ in sparse]], k=self.rrf_k)
            keys = np.fromiter((key for key, _ in fused), dtype=np.int64, count=len(fused))
            mask = self._labels.allowed(keys, namespaces, kinds)
            hits = [pair for pair, ok in zip(fused, mask.tolist()) if ok]
            exhausted = len(dense) < fetch and len(sparse) < fetch
            if len(hits) >= k or exhausted or fetch >= n_indexed:
                return hits[:k]
            fetch *= 4

    def persist(self, meta: IndexMeta, applied_seq: int) -> None:
        """Write the snapshot atomically: the manifest is removed first and written last."""
        if self.dense is None:
            self._reset(meta.dim)
        folder = meta.folder
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "manifest.json").unlink(missing_ok=True)  # invalid until rewritten
        self.dense.save(folder / "dense.faiss")
        self.sparse.save(folder)
        self._labels.save(folder)
        manifest = {"format": INDEX_FORMAT, "store_uid": meta.store_uid, "embedder": meta.embedder,
                    "dim": meta.dim, "applied_seq": applied_seq,
                    "n_dense": len(self.dense), "n_sparse": len(self.sparse)}
        tmp = folder / "manifest.json.tmp"
        tmp.write_text(json.dumps(manifest, indent=2), encoding="utf-8")
        tmp.replace(folder / "manifest.json")
