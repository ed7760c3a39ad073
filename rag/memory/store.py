"""The store: SQLite holds the truth, the dense and sparse indexes are derived from it.

Layout of a store folder::

    store.sqlite        passages (text, metadata, embedding), change feed; WAL mode
    index/manifest.json what the index snapshot was built from (embedder, change seq)
    index/dense.faiss   FAISS index over passage keys
    index/bm25.*        BM25 inverted index

Every add or removal appends to the ``changes`` table in the same transaction. An index
snapshot records the last change it applied; opening a store loads the snapshot and
replays the changes after it, so a crash or another writer never leaves the index behind
the truth, and an edit never rebuilds the whole index. A snapshot that is missing,
corrupt or built by another embedder is rebuilt from the stored embeddings.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sqlite3
import threading
import uuid
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from rag.errors import ConfigError, StoreError, StoreNotFoundError
from rag.memory.index import IndexBatch, IndexMeta, LocalIndex, RetrievalIndex
from rag.memory.ingest import Chunker, IngestReport, read_corpus
from rag.protocols import Embedder
from rag.text import fold
from rag.types import PASSAGE_KINDS, SHARED_NAMESPACE, Passage, ScoredPassage

logger = logging.getLogger(__name__)

SCHEMA_VERSION = 1
DB_NAME = "store.sqlite"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS passages (
    key INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL,
    namespace TEXT NOT NULL,
    kind TEXT NOT NULL,
    title TEXT NOT NULL DEFAULT '',
    text TEXT NOT NULL,
    metadata TEXT NOT NULL DEFAULT '{}',
    content_hash TEXT NOT NULL,
    embedding BLOB NOT NULL,
    active INTEGER NOT NULL DEFAULT 1
);
CREATE UNIQUE INDEX IF NOT EXISTS passages_live_id ON passages(id) WHERE active = 1;
CREATE INDEX IF NOT EXISTS passages_live_hash ON passages(content_hash) WHERE active = 1;
CREATE TABLE IF NOT EXISTS facts (
    fact_id TEXT PRIMARY KEY,
    namespace TEXT NOT NULL,
    kind TEXT NOT NULL,
    key TEXT,
    version INTEGER NOT NULL,
    live INTEGER NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS facts_key ON facts(namespace, kind, key) WHERE key IS NOT NULL;
CREATE TABLE IF NOT EXISTS edits (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    edit_id TEXT NOT NULL UNIQUE,
    fact_id TEXT NOT NULL REFERENCES facts(fact_id),
    version INTEGER NOT NULL,
    namespace TEXT NOT NULL,
    kind TEXT NOT NULL,
    op TEXT NOT NULL,
    content TEXT NOT NULL,
    author TEXT NOT NULL,
    reason TEXT NOT NULL,
    time TEXT NOT NULL,
    supersedes TEXT,
    passage_id TEXT,
    UNIQUE (fact_id, version)
);
CREATE INDEX IF NOT EXISTS edits_passage ON edits(passage_id);
CREATE TABLE IF NOT EXISTS changes (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    key INTEGER NOT NULL,
    op TEXT NOT NULL CHECK (op IN ('add', 'remove'))
);
"""


class Transaction:
    """One atomic write to a store: everything done through it commits together or not at all.

    Obtained from :meth:`Store.transaction`; other writers (threads or processes) wait until
    it ends, so a read inside it sees a state nobody else changes.
    """

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db
        self.changed = False

    def execute(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Cursor:
        return self.db.execute(sql, params)

    def insert_passage(self, passage: Passage, vector: np.ndarray, digest: str | None = None) -> None:
        """Store a live passage, replacing a live passage of the same id."""
        if passage.kind not in PASSAGE_KINDS:
            msg = f"passage {passage.id!r} has kind {passage.kind!r}; expected one of {PASSAGE_KINDS}"
            raise ConfigError(msg)
        self.deactivate(passage.id)
        cur = self.db.execute(
            "INSERT INTO passages(id, namespace, kind, title, text, metadata, content_hash, embedding)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (passage.id, passage.namespace, passage.kind, passage.title, passage.text,
             json.dumps(dict(passage.metadata)), digest or content_hash(passage),
             np.asarray(vector, dtype=np.float32).tobytes()),
        )
        self.db.execute("INSERT INTO changes(key, op) VALUES (?, 'add')", (cur.lastrowid,))
        self.changed = True

    def deactivate(self, passage_id: str) -> bool:
        """Take a passage out of retrieval; its row stays for history. False if not live."""
        row = self.db.execute("SELECT key FROM passages WHERE id = ? AND active = 1", (passage_id,)).fetchone()
        if row is None:
            return False
        self.db.execute("UPDATE passages SET active = 0 WHERE key = ?", (row[0],))
        self.db.execute("INSERT INTO changes(key, op) VALUES (?, 'remove')", (row[0],))
        self.changed = True
        return True


def content_hash(passage: Passage) -> str:
    """Identity of a passage's content within its namespace and kind."""
    norm = " ".join(fold(passage.full_text).split())
    return hashlib.sha256(f"{passage.namespace}\x1f{passage.kind}\x1f{norm}".encode()).hexdigest()


def _show_progress(show: bool | None) -> bool:
    return logger.getEffectiveLevel() <= logging.INFO if show is None else show


class Store:
    """Durable passages, notes and QA pairs with hybrid (dense + BM25) retrieval.

    Args:
        path: The store folder; created when ``create`` is true.
        embedder: Embeds passages and queries. A store remembers its embedder's name and
            dimension; opening it with another embedder raises.
        create: Create the store if it does not exist.
        index: The retrieval index fed from the store (default: a
            :class:`~rag.memory.index.LocalIndex` with its snapshot under ``index/``).

    Example:
        >>> import tempfile
        >>> from rag.testing import HashEmbedder
        >>> store = Store(tempfile.mkdtemp(), HashEmbedder())
        >>> store.add_passages([Passage("p1", "The Eiffel Tower is in Paris."),
        ...                     Passage("p2", "The Colosseum is in Rome."),
        ...                     Passage("p3", "Bananas are yellow.")]).added
        3
        >>> store.search("Where is the Eiffel Tower?", k=1)[0].id
        'p1'
    """

    def __init__(
        self, path: str | Path, embedder: Embedder, *, create: bool = True,
        index: RetrievalIndex | None = None,
    ) -> None:
        self.path = Path(path)
        db = self.path / DB_NAME
        if not db.exists() and not create:
            msg = f"no store at {self.path} (expected {db}); build one with `rag index`"
            raise StoreNotFoundError(msg)
        if self.path.exists() and not self.path.is_dir():
            msg = f"store path {self.path} is a file, not a folder"
            raise ConfigError(msg)
        self.path.mkdir(parents=True, exist_ok=True)
        self.embedder = embedder
        self.index = index if index is not None else LocalIndex()
        if not isinstance(self.index, RetrievalIndex):
            msg = f"index must implement RetrievalIndex (open, add, remove, search, persist), got {type(index).__name__}"
            raise ConfigError(msg)
        self._lock = threading.RLock()
        self._db = sqlite3.connect(db, timeout=30.0, check_same_thread=False, isolation_level=None)
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
        except sqlite3.DatabaseError as exc:
            msg = f"{db} is not a readable store database: {exc}"
            raise StoreError(msg) from exc
        self._wrote = False  # this handle changed the database since opening
        self._uid, self._dim = self._init_meta()
        self._index_open = False
        self._applied_seq = 0
        self._saved_seq = -1

    # -- metadata -------------------------------------------------------------------------

    def _init_meta(self) -> tuple[str, int]:
        meta = dict(self._db.execute("SELECT key, value FROM meta").fetchall())
        if not meta:
            uid, dim = uuid.uuid4().hex, self.embedder.dim
            with self.transaction() as tx:
                for key, value in [("uid", uid), ("schema", str(SCHEMA_VERSION)),
                                   ("embedder", self.embedder.name), ("dim", str(dim))]:
                    tx.execute("INSERT OR IGNORE INTO meta(key, value) VALUES (?, ?)", (key, value))
            return self._init_meta()
        if int(meta.get("schema", "0")) != SCHEMA_VERSION:
            msg = f"store {self.path} has schema {meta.get('schema')}, this library reads {SCHEMA_VERSION}"
            raise StoreError(msg)
        if meta["embedder"] != self.embedder.name:
            msg = (
                f"store {self.path} was built with embedder {meta['embedder']!r}, "
                f"not {self.embedder.name!r}; open it with that embedder or build a new store"
            )
            raise StoreError(msg)
        return meta["uid"], int(meta["dim"])

    @staticmethod
    def embedder_of(path: str | Path) -> str:
        """The name of the embedder a store was built with (to load it before opening).

        Raises:
            StoreNotFoundError: there is no store at ``path``.
        """
        db = Path(path) / DB_NAME
        if not db.is_file():
            msg = f"no store at {path} (expected {db}); build one with `rag index`"
            raise StoreNotFoundError(msg)
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        try:
            row = conn.execute("SELECT value FROM meta WHERE key = 'embedder'").fetchone()
        except sqlite3.DatabaseError as exc:
            msg = f"{db} is not a readable store database: {exc}"
            raise StoreError(msg) from exc
        finally:
            conn.close()
        if row is None:
            msg = f"{db} holds no embedder record; it is not a finished store"
            raise StoreError(msg)
        return str(row[0])

    @contextmanager
    def transaction(self) -> Iterator[Transaction]:
        """An atomic write: commits when the block ends, rolls back if it raises.

        BEGIN IMMEDIATE takes the database's write lock up front, so concurrent writers
        queue (up to the 30 s busy timeout) instead of failing half-way.
        """
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            tx = Transaction(self._db)
            try:
                yield tx
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
            self._wrote = self._wrote or tx.changed

    # -- writing --------------------------------------------------------------------------

    def add_passages(
        self,
        passages: Iterable[Passage],
        *,
        batch_size: int = 512,
        show_progress: bool | None = None,
        total: int | None = None,
    ) -> IngestReport:
        """Embed and store passages. Duplicates (same content) are skipped; a passage whose
        id is stored with other content replaces it (the old row stays, inactive).

        Each batch is one transaction: an interruption leaves whole batches, never half a
        passage, and adding the same passages again resumes where it stopped.
        """
        if batch_size < 1:
            msg = f"batch_size must be a positive integer, got {batch_size}"
            raise ConfigError(msg)
        report = IngestReport()
        bar = tqdm(total=total, desc="ingest", unit="passage", disable=not _show_progress(show_progress))
        batch: list[Passage] = []
        with bar:
            for passage in passages:
                report.read += 1
                batch.append(passage)
                if len(batch) >= batch_size:
                    self._write_batch(batch, report)
                    bar.update(len(batch))
                    batch = []
            if batch:
                self._write_batch(batch, report)
                bar.update(len(batch))
        return report

    def _write_batch(self, batch: Sequence[Passage], report: IngestReport) -> None:
        unique: dict[str, Passage] = {}
        for p in batch:
            if not p.id or not p.text.strip():
                msg = f"passage {p.id!r} needs a non-empty id and text"
                raise ConfigError(msg)
            unique.setdefault(content_hash(p), p)
        report.duplicates += len(batch) - len(unique)
        with self._lock:
            known = self._live_hashes(list(unique))
            fresh = {h: p for h, p in unique.items() if h not in known}
            report.duplicates += len(unique) - len(fresh)
            if not fresh:
                return
            vectors = self.embedder.embed_documents([p.full_text for p in fresh.values()])
            with self.transaction() as tx:
                for (digest, p), vec in zip(fresh.items(), vectors):
                    tx.insert_passage(p, vec, digest)
            report.added += len(fresh)

    def _live_hashes(self, hashes: list[str]) -> set[str]:
        found: set[str] = set()
        for i in range(0, len(hashes), 500):
            part = hashes[i : i + 500]
            marks = ",".join("?" * len(part))
            rows = self._db.execute(
                f"SELECT content_hash FROM passages WHERE active = 1 AND content_hash IN ({marks})", part
            )
            found.update(r[0] for r in rows)
        return found

    def ingest(
        self,
        path: str | Path,
        *,
        strict: bool = False,
        chunker: Chunker | None = None,
        show_progress: bool | None = None,
    ) -> IngestReport:
        """Read a corpus (see :func:`rag.memory.ingest.read_corpus`) and add its passages.

        The corpus is read and checked in full before anything is written, so a malformed
        file under ``strict=True`` leaves the store untouched.
        """
        read_report = IngestReport()
        passages = list(read_corpus(path, strict=strict, chunker=chunker, report=read_report))
        report = self.add_passages(passages, show_progress=show_progress, total=len(passages))
        report.read, report.malformed = read_report.read, read_report.malformed
        report.chunks, report.problems = read_report.chunks, read_report.problems
        self.save_indexes()
        return report

    def remove(self, ids: Iterable[str]) -> int:
        """Deactivate passages by id (the rows stay for history). Returns how many."""
        with self.transaction() as tx:
            return sum(tx.deactivate(pid) for pid in ids)

    # -- reading --------------------------------------------------------------------------

    def __len__(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM passages WHERE active = 1").fetchone()[0])

    def version(self) -> int:
        """A number that changes with every write to the store, by any process: caches
        keyed on it never serve an answer from before an edit."""
        return self._last_seq()

    def count(self, kind: str | None = None) -> int:
        if kind is None:
            return len(self)
        row = self._db.execute("SELECT COUNT(*) FROM passages WHERE active = 1 AND kind = ?", (kind,))
        return int(row.fetchone()[0])

    @staticmethod
    def _row_to_passage(row: Sequence[Any]) -> Passage:
        pid, namespace, kind, title, text, metadata = row
        return Passage(id=pid, text=text, title=title, kind=kind, namespace=namespace,
                       metadata=json.loads(metadata))

    def passages(self, kind: str | None = None, *, batch: int = 500) -> Iterator[Passage]:
        """Every live passage (of one ``kind``, if given), in the order they were written,
        read ``batch`` rows at a time."""
        where, params = ("active = 1", []) if kind is None else ("active = 1 AND kind = ?", [kind])
        after = -1
        while True:
            rows = self._db.execute(
                f"SELECT key, id, namespace, kind, title, text, metadata FROM passages WHERE {where}"
                " AND key > ? ORDER BY key LIMIT ?", [*params, after, batch]).fetchall()
            if not rows:
                return
            yield from (self._row_to_passage(r[1:]) for r in rows)
            after = rows[-1][0]

    def get(self, ids: Sequence[str]) -> list[Passage]:
        """Live passages by id, in the order asked; unknown ids are left out."""
        found: dict[str, Passage] = {}
        for i in range(0, len(ids), 500):
            part = list(ids[i : i + 500])
            marks = ",".join("?" * len(part))
            for row in self._db.execute(
                f"SELECT id, namespace, kind, title, text, metadata FROM passages"
                f" WHERE active = 1 AND id IN ({marks})", part,
            ):
                found[row[0]] = self._row_to_passage(row)
        return [found[i] for i in ids if i in found]

    def vectors(self, ids: Sequence[str]) -> dict[str, np.ndarray]:
        """The stored embeddings of live passages by id (of their ``full_text``, by this
        store's embedder); unknown ids are left out. Readers of retrieved passages use them
        instead of embedding the passages again."""
        found: dict[str, np.ndarray] = {}
        for i in range(0, len(ids), 500):
            part = list(ids[i : i + 500])
            marks = ",".join("?" * len(part))
            for pid, blob in self._db.execute(
                f"SELECT id, embedding FROM passages WHERE active = 1 AND id IN ({marks})", part,
            ):
                found[pid] = np.frombuffer(blob, dtype=np.float32)
        return found

    def _rows_by_key(self, keys: Sequence[int]) -> dict[int, tuple[Passage, bool]]:
        out: dict[int, tuple[Passage, bool]] = {}
        for i in range(0, len(keys), 500):
            part = list(keys[i : i + 500])
            marks = ",".join("?" * len(part))
            for row in self._db.execute(
                f"SELECT key, active, id, namespace, kind, title, text, metadata FROM passages"
                f" WHERE key IN ({marks})", part,
            ):
                out[row[0]] = (self._row_to_passage(row[2:]), bool(row[1]))
        return out

    def search(
        self,
        query: str,
        k: int = 10,
        *,
        namespace: str = SHARED_NAMESPACE,
        kinds: Sequence[str] | None = None,
    ) -> list[ScoredPassage]:
        """Hybrid search (dense and sparse, fused) through the store's retrieval index.

        Args:
            query: The search text.
            k: Passages to return.
            namespace: The asker's namespace; shared passages are always visible, other
                namespaces never are.
            kinds: Only these kinds (``passage``, ``note``, ``qa``); all when ``None``.
        """
        return self.search_many([query], k, namespaces=[namespace], kinds=kinds)[0]

    def search_many(
        self,
        queries: Sequence[str],
        k: int = 10,
        *,
        namespaces: Sequence[str] | None = None,
        kinds: Sequence[str] | None = None,
    ) -> list[list[ScoredPassage]]:
        """:meth:`search` for many queries, their vectors embedded in one batch.

        ``namespaces`` gives each query's namespace (default: all ``shared``).
        """
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            msg = f"k must be a positive integer, got {k!r}"
            raise ConfigError(msg)
        unknown = set(kinds or ()) - set(PASSAGE_KINDS)
        if unknown:
            msg = f"kinds {sorted(unknown)} are unknown; expected some of {PASSAGE_KINDS}"
            raise ConfigError(msg)
        namespaces = list(namespaces) if namespaces is not None else [SHARED_NAMESPACE] * len(queries)
        if len(namespaces) != len(queries):
            msg = f"namespaces must give one namespace per query: {len(namespaces)} for {len(queries)} queries"
            raise ConfigError(msg)
        if not queries:
            return []
        self.sync()
        batched = getattr(self.embedder, "embed_queries", None)
        vectors = batched(queries) if batched else [self.embedder.embed_query(q) for q in queries]
        kind_set = frozenset(kinds) if kinds else None
        with self._lock:  # an add may retrain and swap the dense index
            found = [self.index.search(query, vector, k, namespaces=frozenset({SHARED_NAMESPACE, namespace}),
                                       kinds=kind_set)
                     for query, vector, namespace in zip(queries, vectors, namespaces)]
        rows = self._rows_by_key(list({key for hits in found for key, _ in hits}))
        results = []
        for hits_found in found:
            hits: list[ScoredPassage] = []
            for key, score in hits_found:
                passage, active = rows.get(key, (None, False))
                if passage is not None and active:  # another process may have removed it since
                    hits.append(ScoredPassage(passage, score, len(hits) + 1, "hybrid"))
            results.append(hits)
        return results

    # -- indexes --------------------------------------------------------------------------

    @property
    def index_dir(self) -> Path:
        return self.path / "index"

    def _index_meta(self) -> IndexMeta:
        return IndexMeta(self._uid, self.embedder.name, self._dim, self.index_dir)

    def _last_seq(self) -> int:
        return int(self._db.execute("SELECT COALESCE(MAX(seq), 0) FROM changes").fetchone()[0])

    def sync(self) -> None:
        """Bring the retrieval index up to the database (other writers included)."""
        with self._lock:
            if not self._index_open:
                self._open_index()
            last = self._last_seq()
            if last > self._applied_seq:
                self._apply_changes(self._applied_seq, last)

    def _apply_changes(self, after: int, upto: int) -> None:
        rows = self._db.execute(
            "SELECT c.key, c.op, p.active, p.text, p.title, p.namespace, p.kind, p.embedding"
            " FROM changes c JOIN passages p ON p.key = c.key"
            " WHERE c.seq > ? AND c.seq <= ? ORDER BY c.seq",
            (after, upto),
        ).fetchall()
        # Only the final state of each key matters; adds of rows removed since are skipped.
        final = {row[0]: row for row in rows}
        add = [row for row in final.values() if row[1] == "add" and row[2]]
        drop = [key for key, row in final.items() if not (row[1] == "add" and row[2])]
        self.index.remove(drop)
        if add:
            self.index.add(self._batch(add))
        self._applied_seq = upto

    def _batch(self, rows: Sequence[Sequence[Any]]) -> IndexBatch:
        """An index batch from rows (key, _, _, text, title, namespace, kind, embedding)."""
        vectors = np.frombuffer(b"".join(r[7] for r in rows), dtype=np.float32).reshape(len(rows), self._dim)
        return IndexBatch(keys=[r[0] for r in rows], vectors=vectors,
                          texts=[Passage("", r[3], r[4]).full_text for r in rows],
                          namespaces=[r[5] for r in rows], kinds=[r[6] for r in rows])

    def _open_index(self) -> None:
        applied = self.index.open(self._index_meta(), upto=self._last_seq())
        self._index_open = True
        self._applied_seq = self._saved_seq = applied
        if applied == 0:
            self._saved_seq = -1
            self._rebuild()

    def _rebuild(self) -> None:
        """Index every live row, in one add (the dense side trains once, not per batch)."""
        last = self._last_seq()
        cursor = self._db.execute(
            "SELECT key, 'add', 1, text, title, namespace, kind, embedding FROM passages"
            " WHERE active = 1 ORDER BY key"
        )
        rows = cursor.fetchall()
        if rows:
            self.index.add(self._batch(rows))
        self._applied_seq = last

    def save_indexes(self) -> None:
        """Persist the retrieval index if it is behind the database."""
        with self._lock:
            self.sync()
            if self._saved_seq == self._applied_seq:
                return
            self.index.persist(self._index_meta(), self._applied_seq)
            self._saved_seq = self._applied_seq

    def close(self) -> None:
        """Save the index snapshot if it is behind, close the database, and close the
        index if it has a ``close`` method (a client holding a connection or a lock)."""
        with self._lock:
            if self._index_open or self._wrote:
                self.save_indexes()
            self._db.close()
            close_index = getattr(self.index, "close", None)
            if callable(close_index):
                close_index()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
