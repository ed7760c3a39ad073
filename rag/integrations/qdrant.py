"""Qdrant as the store's retrieval index: local mode, one server or a cluster.

:class:`QdrantIndex` implements :class:`~rag.memory.index.RetrievalIndex`, so a
:class:`~rag.memory.store.Store` uses it exactly as it uses the default
:class:`~rag.memory.index.LocalIndex`: SQLite stays the truth and the edit log, and the
collection is derived from it (rebuilt when missing or stale, replayed after a restart).
Both pass the same contract tests (``tests/memory/test_retrieval_contract.py``).

One collection per store (named ``rag-<store uid>`` unless given), holding per passage:

* a named dense vector ``dense`` (cosine, the embedder's dimension);
* a named sparse vector ``sparse`` of BM25 term weights, with Qdrant's ``Modifier.IDF`` so
  the engine applies the inverse document frequency of the live collection at query time;
* the payload ``namespace`` and ``kind`` (keyword indexes on a server), which searches filter
  with ``MatchAny`` inside both prefetches, before fusion.

A search is one Query API call: a dense and a sparse prefetch, fused by reciprocal rank.
A record point (id 0, no vectors, no namespace: never a search hit) keeps the store uid,
the embedder, the dimension and the last change applied, so :meth:`QdrantIndex.open` tells
the store where to resume.

How close the sparse side is to the library's BM25 (:class:`~rag.memory.sparse.BM25Index`):
the IDF is the same formula (Lucene's, computed by Qdrant over the collection), the query
weighs each distinct term once, and a document's term weight is the same saturated
``tf / (tf + k1 * (1 - b + b * dl / avgdl))``. The one difference is ``avgdl``: it is the
running mean length of the documents this index has added, taken when each batch is added
(exact for a corpus ingested in one batch; later batches and deletions do not re-weigh
earlier documents). Terms are 31-bit CRC32 hashes of the library's tokens, so two terms
may rarely share an id (about one pair in 2,000 among 100k distinct terms).

Needs ``pip install 'rag-conflicts[qdrant]'`` (qdrant-client); importing this module does
not, only using a :class:`QdrantIndex` does.
"""

from __future__ import annotations

import json
import logging
import os
import warnings
import zlib
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rag.errors import ConfigError, MissingDependencyError, StoreError
from rag.memory.index import IndexBatch, IndexMeta
from rag.memory.store import Store
from rag.protocols import Embedder
from rag.text import tokenize

logger = logging.getLogger(__name__)

__all__ = ["BACKEND_FILE", "QdrantIndex", "index_for_store", "open_store", "record_backend", "term_id"]

INSTALL = "pip install 'rag-conflicts[qdrant]'  (or: pip install 'qdrant-client>=1.12')"
FORMAT = 1
RECORD_ID = 0  # store keys start at 1 (SQLite AUTOINCREMENT), so 0 is free for the record
RECORD_KEY = "rag_index"
DENSE, SPARSE = "dense", "sparse"
BACKEND_FILE = "backend.json"
_DELETE_CHUNK = 1000


def _qdrant() -> tuple[Any, Any]:
    try:
        from qdrant_client import QdrantClient, models
    except ImportError as exc:
        msg = f"the Qdrant backend needs qdrant-client: {INSTALL}"
        raise MissingDependencyError(msg) from exc
    return QdrantClient, models


def term_id(term: str) -> int:
    """The sparse-vector index of a term: a 31-bit CRC32, the same in every process."""
    return zlib.crc32(term.encode("utf-8")) & 0x7FFFFFFF


class QdrantIndex:
    """A Qdrant collection as a store's retrieval index (dense + BM25 sparse, RRF-fused).

    At most one of ``url``, ``path``, ``location`` or ``client`` says where Qdrant is; with
    none, the index runs Qdrant's local mode in the store's ``index/qdrant`` folder.

    Args:
        url: A Qdrant server or any node of a cluster, e.g. ``http://localhost:6333``.
        path: A folder for Qdrant's local mode (pure Python, one process at a time).
        location: ``":memory:"`` for an in-memory local instance (gone when closed).
        client: A ready ``QdrantClient`` (it stays open when this index closes).
        collection: Collection name (default ``rag-<store uid>``, known at :meth:`open`).
        api_key: For a server that requires one (default: the ``QDRANT_API_KEY`` variable).
        prefer_grpc: Talk gRPC (port 6334) instead of REST.
        timeout: Request timeout in seconds (the client's default when ``None``).
        collection_options: Passed to ``create_collection`` when the collection is made,
            e.g. ``{"shard_number": 4, "replication_factor": 2}`` on a cluster.
        k1: BM25 term-frequency saturation.
        b: BM25 length normalisation.
        rrf_k: Constant of reciprocal rank fusion; ``None`` uses Qdrant's own
            (``FusionQuery(RRF)``, every server since 1.10); a number sends a parametrised
            RRF query (servers from 1.16). Qdrant counts ranks from 0, so 59 is the fusion
            of :class:`~rag.memory.index.LocalIndex` (k = 60, ranks from 1).
        batch_size: Points per upsert request.

    Example:
        >>> from pathlib import Path
        >>> from rag.memory.index import IndexBatch, IndexMeta
        >>> idx = QdrantIndex(location=":memory:")
        >>> idx.open(IndexMeta("uid", "demo", 2, Path(".")), upto=0)
        0
        >>> idx.add(IndexBatch([1, 2], np.eye(2, dtype=np.float32), ["red apple", "blue sky"],
        ...                    ["shared", "alice"], ["passage", "note"]))
        >>> idx.search("apple", np.array([1, 0], np.float32), 2, namespaces=frozenset({"shared"}))[0][0]
        1
        >>> idx.close()
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        path: str | Path | None = None,
        location: str | None = None,
        client: Any = None,
        collection: str | None = None,
        api_key: str | None = None,
        prefer_grpc: bool = False,
        timeout: int | None = None,
        collection_options: Mapping[str, Any] | None = None,
        k1: float = 1.2,
        b: float = 0.75,
        rrf_k: int | None = None,
        batch_size: int = 256,
    ) -> None:
        given = [name for name, value in (("url", url), ("path", path), ("location", location),
                                          ("client", client)) if value is not None]
        if len(given) > 1:
            msg = f"QdrantIndex takes one of url, path, location or client, got {', '.join(given)}"
            raise ConfigError(msg)
        if k1 < 0 or not 0 <= b <= 1:
            msg = f"BM25 needs k1 >= 0 and 0 <= b <= 1, got k1={k1}, b={b}"
            raise ConfigError(msg)
        if rrf_k is not None and (isinstance(rrf_k, bool) or rrf_k < 1):
            msg = f"rrf_k must be a positive integer or None, got {rrf_k!r}"
            raise ConfigError(msg)
        if batch_size < 1:
            msg = f"batch_size must be a positive integer, got {batch_size}"
            raise ConfigError(msg)
        if collection is not None and not collection.strip():
            msg = "collection must be a non-empty name or None"
            raise ConfigError(msg)
        _, models = _qdrant()  # fail here, not on the first search, when qdrant-client is missing
        if rrf_k is not None and not hasattr(models, "RrfQuery"):
            msg = "rrf_k needs qdrant-client >= 1.16 (and a server >= 1.16); leave it None for Qdrant's RRF"
            raise ConfigError(msg)
        self.url, self.location, self.collection = url, location, collection
        self.path = Path(path) if path is not None else None
        self.api_key = api_key if api_key is not None else (os.environ.get("QDRANT_API_KEY") if url else None)
        self.prefer_grpc, self.timeout = prefer_grpc, timeout
        self.collection_options = dict(collection_options or {})
        self.k1, self.b, self.rrf_k, self.batch_size = k1, b, rrf_k, batch_size
        self._client = client
        self._owns_client = client is None
        self._name: str | None = None
        self._docs = 0  # documents added since the collection was (re)built: BM25's avgdl
        self._length = 0

    def __repr__(self) -> str:
        where = (f"url={self.url!r}" if self.url else f"path={str(self.path)!r}" if self.path
                 else f"location={self.location!r}" if self.location else "client" if self._client
                 else "path=<store>/index/qdrant")
        return f"QdrantIndex({where}, collection={self._name or self.collection!r})"

    # -- connection -----------------------------------------------------------------------

    @property
    def client(self) -> Any:
        """The ``QdrantClient`` (``None`` before :meth:`open`), e.g. to inspect the collection."""
        return self._client

    @property
    def collection_name(self) -> str | None:
        """The collection in use (``None`` until :meth:`open`)."""
        return self._name

    def _connect(self, meta: IndexMeta) -> Any:
        if self._client is not None:
            return self._client
        QdrantClient, _ = _qdrant()
        if self.url is not None:
            self._client = QdrantClient(url=self.url, api_key=self.api_key, prefer_grpc=self.prefer_grpc,
                                        timeout=self.timeout)
        elif self.location is not None:
            self._client = QdrantClient(location=self.location)
        else:
            folder = self.path if self.path is not None else meta.folder / "qdrant"
            try:
                self._client = QdrantClient(path=str(folder))
            except RuntimeError as exc:  # the folder lock of local mode
                msg = (f"the Qdrant folder {folder} is open in another client (local mode allows "
                       f"one at a time); close it, or use a Qdrant server for concurrent access")
                raise StoreError(msg) from exc
        return self._client

    def close(self) -> None:
        """Release the client (and, in local mode, the folder lock). The store calls this."""
        if self._client is not None and self._owns_client:
            self._client.close()
            self._client = None
        self._name = None

    def _require(self) -> tuple[Any, str]:
        if self._client is None or self._name is None:
            msg = "QdrantIndex is not open: call open(meta, upto=...) first (a Store does)"
            raise StoreError(msg)
        return self._client, self._name

    # -- collection -----------------------------------------------------------------------

    def _create(self, client: Any, name: str, meta: IndexMeta) -> None:
        _, models = _qdrant()
        client.create_collection(
            name,
            vectors_config={DENSE: models.VectorParams(size=meta.dim, distance=models.Distance.COSINE)},
            sparse_vectors_config={SPARSE: models.SparseVectorParams(modifier=models.Modifier.IDF)},
            **self.collection_options,
        )
        with warnings.catch_warnings():  # local mode scans, and warns that payload indexes do nothing
            warnings.filterwarnings("ignore", message="Payload indexes have no effect")
            for field in ("namespace", "kind"):
                client.create_payload_index(name, field, field_schema=models.PayloadSchemaType.KEYWORD, wait=True)
        self._docs = self._length = 0
        self._write_record(client, name, meta, 0)

    def _recreate(self, client: Any, name: str, meta: IndexMeta) -> None:
        client.delete_collection(name)
        self._create(client, name, meta)

    def _write_record(self, client: Any, name: str, meta: IndexMeta, applied_seq: int) -> None:
        _, models = _qdrant()
        record = {"format": FORMAT, "store_uid": meta.store_uid, "embedder": meta.embedder, "dim": meta.dim,
                  "applied_seq": applied_seq, "bm25_docs": self._docs, "bm25_length": self._length}
        client.upsert(name, points=[models.PointStruct(id=RECORD_ID, vector={}, payload={RECORD_KEY: record})],
                      wait=True)

    def _read_record(self, client: Any, name: str) -> dict[str, Any] | None:
        points = client.retrieve(name, [RECORD_ID], with_payload=True, with_vectors=False)
        if not points or not isinstance((points[0].payload or {}).get(RECORD_KEY), dict):
            return None
        return dict(points[0].payload[RECORD_KEY])

    def open(self, meta: IndexMeta, *, upto: int) -> int:
        client = self._connect(meta)
        name = self.collection or f"rag-{meta.store_uid}"
        self._name = None
        if not client.collection_exists(name):
            logger.info("creating the Qdrant collection %s", name)
            self._create(client, name, meta)
            self._name = name
            return 0
        record = self._read_record(client, name)
        if record is None:
            msg = (f"the Qdrant collection {name!r} exists but was not made by this library "
                   f"(no record point {RECORD_ID}); name another collection or delete it")
            raise StoreError(msg)
        expected = {"format": FORMAT, "store_uid": meta.store_uid, "embedder": meta.embedder, "dim": meta.dim}
        stale = {k: record.get(k) for k, v in expected.items() if record.get(k) != v}
        applied = record.get("applied_seq")
        why = (f"it is stale ({stale})" if stale
               else "its record is unreadable" if not isinstance(applied, int) or isinstance(applied, bool)
               else "it is ahead of the database" if applied > upto else None)
        self._name = name
        if why is not None:
            logger.warning("rebuilding the Qdrant collection %s: %s", name, why)
            self._recreate(client, name, meta)
            return 0
        self._docs, self._length = int(record.get("bm25_docs", 0)), int(record.get("bm25_length", 0))
        if applied == 0:
            # Made by this store but not persisted yet: another process may be filling it
            # right now (a server is shared), so it is not wiped; the store re-adds every
            # live passage over it (upserts), and its search drops rows removed since.
            logger.info("re-adding every passage to the Qdrant collection %s: it was never persisted", name)
        return applied

    def persist(self, meta: IndexMeta, applied_seq: int) -> None:
        """Record the applied change; the points were made durable as they were written."""
        client, name = self._require()
        self._write_record(client, name, meta, applied_seq)

    def __len__(self) -> int:
        if self._client is None or self._name is None:
            return 0
        _, models = _qdrant()
        not_record = models.Filter(must_not=[models.HasIdCondition(has_id=[RECORD_ID])])
        return int(self._client.count(self._name, count_filter=not_record, exact=True).count)

    # -- writes ---------------------------------------------------------------------------

    def _sparse_doc(self, tokens: list[str], avgdl: float) -> Any:
        _, models = _qdrant()
        tf = Counter(term_id(t) for t in tokens)
        norm = self.k1 * (1.0 - self.b + self.b * len(tokens) / avgdl)
        indices = sorted(tf)
        return models.SparseVector(indices=indices, values=[tf[i] / (tf[i] + norm) for i in indices])

    def add(self, batch: IndexBatch) -> None:
        client, name = self._require()
        if len(batch) == 0:
            return
        if any(int(k) <= RECORD_ID for k in batch.keys):
            msg = f"QdrantIndex keys must be positive integers (0 holds the index record), got {min(batch.keys)}"
            raise ConfigError(msg)
        _, models = _qdrant()
        tokens = [tokenize(t) for t in batch.texts]
        self._docs += len(tokens)
        self._length += sum(map(len, tokens))
        avgdl = max(self._length / self._docs, 1.0)
        vectors = np.asarray(batch.vectors, dtype=np.float32)
        for start in range(0, len(batch), self.batch_size):
            points = []
            for i in range(start, min(start + self.batch_size, len(batch))):
                vector: dict[str, Any] = {DENSE: vectors[i].tolist()}
                if tokens[i]:  # a point without terms simply has no sparse vector
                    vector[SPARSE] = self._sparse_doc(tokens[i], avgdl)
                points.append(models.PointStruct(id=int(batch.keys[i]), vector=vector,
                                                 payload={"namespace": batch.namespaces[i], "kind": batch.kinds[i]}))
            client.upsert(name, points=points, wait=True)

    def remove(self, keys: Sequence[int]) -> None:
        client, name = self._require()
        ids = [int(k) for k in keys if int(k) > RECORD_ID]
        _, models = _qdrant()
        for start in range(0, len(ids), _DELETE_CHUNK):
            client.delete(name, points_selector=models.PointIdsList(points=ids[start : start + _DELETE_CHUNK]),
                          wait=True)

    # -- search ---------------------------------------------------------------------------

    def search(
        self, query: str, vector: np.ndarray, k: int, *, namespaces: frozenset[str],
        kinds: frozenset[str] | None = None,
    ) -> list[tuple[int, float]]:
        client, name = self._require()
        if not namespaces or (kinds is not None and not kinds):
            return []
        _, models = _qdrant()
        must = [models.FieldCondition(key="namespace", match=models.MatchAny(any=sorted(namespaces)))]
        if kinds is not None:
            must.append(models.FieldCondition(key="kind", match=models.MatchAny(any=sorted(kinds))))
        where = models.Filter(must=must)
        fetch = max(4 * k, 50)
        prefetch = []
        dense = np.asarray(vector, dtype=np.float32).ravel()
        if np.any(dense):  # a zero vector has no cosine
            prefetch.append(models.Prefetch(query=dense.tolist(), using=DENSE, filter=where, limit=fetch))
        terms = sorted({term_id(t) for t in tokenize(query)})
        if terms:
            prefetch.append(models.Prefetch(query=models.SparseVector(indices=terms, values=[1.0] * len(terms)),
                                            using=SPARSE, filter=where, limit=fetch))
        if not prefetch:
            return []
        fusion = (models.FusionQuery(fusion=models.Fusion.RRF) if self.rrf_k is None
                  else models.RrfQuery(rrf=models.Rrf(k=self.rrf_k)))
        result = client.query_points(name, prefetch=prefetch, query=fusion, limit=k,
                                     with_payload=False, with_vectors=False)
        return [(int(p.id), float(p.score)) for p in result.points]


# -- the backend a store was built with (for the command line) ------------------------------


def record_backend(store_path: str | Path, *, url: str | None = None, path: str | Path | None = None,
                   collection: str | None = None) -> Path:
    """Remember in the store folder that the store's index lives in Qdrant.

    Written to ``<store>/backend.json`` (never the API key: that comes from
    ``QDRANT_API_KEY``), so later ``rag ask`` and ``rag edit`` on the store use the same
    backend without repeating the option. A relative ``path`` is made absolute.
    """
    if (url is None) == (path is None):
        msg = "record_backend needs exactly one of url or path"
        raise ConfigError(msg)
    record = {"backend": "qdrant", "url": url, "path": str(Path(path).resolve()) if path is not None else None,
              "collection": collection}
    target = Path(store_path) / BACKEND_FILE
    tmp = target.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    tmp.replace(target)
    return target


def index_for_store(store_path: str | Path, *, url: str | None = None,
                    path: str | Path | None = None) -> QdrantIndex | None:
    """The index to open a store with: a Qdrant index at ``url`` or ``path`` when given,
    else the backend recorded by :func:`record_backend`, else ``None`` (the default
    :class:`~rag.memory.index.LocalIndex`)."""
    if url is not None or path is not None:
        return QdrantIndex(url, path=path)
    target = Path(store_path) / BACKEND_FILE
    if not target.is_file():
        return None
    try:
        record = json.loads(target.read_text(encoding="utf-8"))
        backend = record["backend"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        msg = f"cannot read the backend record {target}: {exc}"
        raise StoreError(msg) from exc
    if backend != "qdrant":
        msg = f"{target} names backend {backend!r}; this library knows 'qdrant'"
        raise StoreError(msg)
    return QdrantIndex(record.get("url"), path=record.get("path"), collection=record.get("collection"))


def open_store(store_path: str | Path, embedder_factory: Callable[[], Embedder], *, create: bool = False,
               url: str | None = None, path: str | Path | None = None) -> Store:
    """Open a store with the retrieval index it records: what ``rag ask``, ``rag edit``,
    ``rag index`` and ``rag eval qa --store`` all do.

    Args:
        store_path: The store folder.
        embedder_factory: Makes the store's embedder (``lambda: embedder`` for one in hand);
            called only after the folder and its backend record were checked, so a wrong
            path fails before a model loads.
        create: Make the store when the folder holds none.
        url: A Qdrant server overriding the record (see :func:`index_for_store`).
        path: A Qdrant local-mode folder overriding the record.

    Raises:
        StoreNotFoundError: no store at ``store_path`` and ``create`` is false.
        StoreError: the backend record is unreadable.

    Example:
        >>> import tempfile
        >>> from rag.testing import HashEmbedder
        >>> open_store(tempfile.mkdtemp(), HashEmbedder, create=True).index.__class__.__name__
        'LocalIndex'
    """
    if not create:
        Store.embedder_of(store_path)  # raises StoreNotFoundError naming the folder
    index = index_for_store(store_path, url=url, path=path)
    return Store(store_path, embedder_factory(), create=create, index=index)
