"""Non-parametric knowledge editing: notes and QA pairs as durable, versioned facts.

A *fact* is one piece of edited knowledge (a note, or a question with its answer) with a
stable ``fact_id``. Every change to it is an *edit*: an append-only log entry with its own
id, the fact's new version number, the namespace, kind, content, author, reason, time, and
the edit it supersedes. Only a fact's latest version is live for retrieval; earlier
versions stay in the log and in the store's history, so any edit can be undone.

A later edit of the *same fact* supersedes the earlier one. Facts are the same when one
is an explicit update of the other, or when they share a key within a namespace: QA pairs
are keyed by their normalised question; notes by a ``key`` given by the caller or computed
by a ``keyer`` (for example subject and relation).
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from rag.errors import ConfigError, RagError
from rag.memory.store import Store, Transaction, content_hash
from rag.text import words
from rag.types import SHARED_NAMESPACE, Passage

OPS = ("add", "update", "retract", "rollback")
_NAMESPACE = re.compile(r"^[A-Za-z0-9_.:@-]{1,128}$")


class FactNotFoundError(RagError, KeyError):
    """No fact with that id (in that namespace)."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


@dataclass(frozen=True, slots=True)
class Edit:
    """One entry of the edit log.

    Attributes:
        seq: Position in the store's log (increasing).
        edit_id: Unique id of this edit.
        fact_id: The fact it changes.
        version: The fact's version after this edit (1 for the first).
        op: ``add``, ``update``, ``retract`` or ``rollback``.
        content: ``{"text": ...}`` for a note, ``{"question": ..., "answer": ...}`` for a QA
            pair; empty after a retraction.
        supersedes: The edit whose version this one replaces.
        passage_id: The passage this edit made live (``None`` when retracted).
    """

    seq: int
    edit_id: str
    fact_id: str
    version: int
    namespace: str
    kind: str
    op: str
    content: Mapping[str, str]
    author: str
    reason: str
    time: str
    supersedes: str | None
    passage_id: str | None

    @property
    def live(self) -> bool:
        return self.passage_id is not None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["content"] = dict(self.content)
        return data


def normalise_key(text: str) -> str:
    """Keys compare without case, accents, punctuation or extra spaces."""
    return " ".join(words(text))


_EDIT_COLUMNS = ("seq, edit_id, fact_id, version, namespace, kind, op, content, author, reason, "
                 "time, supersedes, passage_id")


def _row_to_edit(row: tuple[Any, ...]) -> Edit:
    values = list(row)
    values[7] = json.loads(values[7])
    return Edit(*values)


class KnowledgeEditor:
    """Writes, updates, retracts and rolls back notes and QA pairs in a store.

    Args:
        store: The store that keeps the facts (and their passages).
        author: Default author recorded on edits.
        keyer: Computes a note's key from its text (``None`` when it cannot); notes with
            the same key in a namespace are one fact, so a later note supersedes the earlier.

    Example:
        >>> import tempfile
        >>> from rag.testing import HashEmbedder
        >>> editor = KnowledgeEditor(Store(tempfile.mkdtemp(), HashEmbedder()))
        >>> first = editor.edit("Maren Olvecka's mother tongue is Dunmerish.", key="olvecka/tongue")
        >>> second = editor.edit("Maren Olvecka's mother tongue is Varnish.", key="olvecka/tongue")
        >>> (second.fact_id == first.fact_id, second.version, second.supersedes == first.edit_id)
        (True, 2, True)
        >>> [e.op for e in editor.history(first.fact_id)]
        ['add', 'update']
        >>> editor.rollback(first.fact_id, 1).content["text"]
        "Maren Olvecka's mother tongue is Dunmerish."
    """

    def __init__(
        self, store: Store, *, author: str = "user", keyer: Callable[[str], str | None] | None = None
    ) -> None:
        self.store = store
        self.author = author
        self.keyer = keyer

    # -- writing ---------------------------------------------------------------------------

    def edit(
        self,
        text: str,
        *,
        namespace: str = SHARED_NAMESPACE,
        key: str | None = None,
        author: str | None = None,
        reason: str = "",
    ) -> Edit:
        """Write a note. If it has the key of a live fact in ``namespace``, it updates that
        fact; if the same text is already live there, the existing edit is returned."""
        text = _require_text(text, "note text")
        key = normalise_key(key) if key else (self.keyer(text) if self.keyer else None)
        return self._write("note", {"text": text}, namespace, key, None, "add", author, reason)

    def add_qa(
        self,
        question: str,
        answer: str,
        *,
        namespace: str = SHARED_NAMESPACE,
        author: str | None = None,
        reason: str = "",
    ) -> Edit:
        """Write a QA pair; a pair with the same (normalised) question is updated instead."""
        content = {"question": _require_text(question, "question"), "answer": _require_text(answer, "answer")}
        return self._write("qa", content, namespace, normalise_key(question), None, "add", author, reason)

    def update(
        self,
        fact_id: str,
        *,
        text: str | None = None,
        answer: str | None = None,
        author: str | None = None,
        reason: str = "",
    ) -> Edit:
        """A new version of a fact: new ``text`` for a note, new ``answer`` for a QA pair."""
        current = self.current(fact_id)
        if current.kind == "note":
            if text is None or answer is not None:
                msg = f"fact {fact_id} is a note: update it with text=..., not answer=..."
                raise ConfigError(msg)
            content = {"text": _require_text(text, "note text")}
        else:
            if answer is None or text is not None:
                msg = f"fact {fact_id} is a QA pair: update it with answer=..., not text=..."
                raise ConfigError(msg)
            question = current.content.get("question") or self._last_content(fact_id)["question"]
            content = {"question": question, "answer": _require_text(answer, "answer")}
        return self._write(current.kind, content, current.namespace, None, fact_id, "update", author, reason)

    def retract(self, fact_id: str, *, author: str | None = None, reason: str = "") -> Edit:
        """Take a fact out of answering. Its history stays; :meth:`rollback` brings it back."""
        current = self.current(fact_id)
        return self._write(current.kind, {}, current.namespace, None, fact_id, "retract", author, reason)

    def rollback(self, fact_id: str, version: int, *, author: str | None = None, reason: str = "") -> Edit:
        """Make ``version`` of a fact current again, as a new version (the log only grows)."""
        target = next((e for e in self.history(fact_id) if e.version == version), None)
        if target is None:
            msg = f"fact {fact_id} has no version {version}"
            raise FactNotFoundError(msg)
        return self._write(target.kind, dict(target.content), target.namespace, None, fact_id,
                           "rollback", author, reason or f"rollback to version {version}")

    def revert_to(self, seq: int, *, author: str | None = None, reason: str = "") -> list[Edit]:
        """Roll the whole store's edits back to how they stood after log entry ``seq``:
        facts changed since are rolled back, facts created since are retracted."""
        later = [e for e in self.history() if e.seq > seq]
        made = []
        for fact_id in dict.fromkeys(e.fact_id for e in later):
            before = [e for e in self.history(fact_id) if e.seq <= seq]
            why = reason or f"revert to log entry {seq}"
            if before and before[-1].live:
                made.append(self.rollback(fact_id, before[-1].version, author=author, reason=why))
            elif self.current(fact_id).live:
                made.append(self.retract(fact_id, author=author, reason=why))
        return made

    def _write(
        self,
        kind: str,
        content: dict[str, str],
        namespace: str,
        key: str | None,
        fact_id: str | None,
        op: str,
        author: str | None,
        reason: str,
    ) -> Edit:
        if not _NAMESPACE.match(namespace):
            msg = f"namespace {namespace!r} must be 1-128 letters, digits or _.:@-"
            raise ConfigError(msg)
        draft = self._passage(kind, content, namespace, "", 0)
        vector = self.store.embedder.embed_documents([draft.full_text])[0] if content else None
        with self.store.transaction() as tx:
            if fact_id is None and key is not None:
                row = tx.execute("SELECT fact_id FROM facts WHERE namespace = ? AND kind = ? AND key = ?",
                                 (namespace, kind, key)).fetchone()
                fact_id = row[0] if row else None
            if fact_id is None and content:
                existing = self._live_same_content(tx, draft)
                if existing is not None:
                    return existing
            if fact_id is None:
                fact_id = f"{kind}-{uuid.uuid4().hex[:12]}"
                tx.execute("INSERT INTO facts(fact_id, namespace, kind, key, version, live) VALUES (?, ?, ?, ?, 0, 0)",
                           (fact_id, namespace, kind, key))
                op = "add"
            elif op == "add":
                op = "update"
            version, previous = tx.execute(
                "SELECT f.version, e.edit_id FROM facts f LEFT JOIN edits e"
                " ON e.fact_id = f.fact_id AND e.version = f.version WHERE f.fact_id = ?", (fact_id,)
            ).fetchone()
            version += 1
            tx.deactivate(f"{fact_id}@v{version - 1}")
            passage_id = None
            edit_id = f"edit-{uuid.uuid4().hex[:12]}"
            if content:
                passage = self._passage(kind, content, namespace, fact_id, version,
                                        edit_id=edit_id, author=author or self.author)
                tx.insert_passage(passage, vector)
                passage_id = passage.id
            now = datetime.now(UTC).isoformat(timespec="milliseconds")
            cur = tx.execute(
                f"INSERT INTO edits({_EDIT_COLUMNS.removeprefix('seq, ')}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (edit_id, fact_id, version, namespace, kind, op, json.dumps(content),
                 author or self.author, reason, now, previous, passage_id),
            )
            tx.execute("UPDATE facts SET version = ?, live = ? WHERE fact_id = ?",
                       (version, int(passage_id is not None), fact_id))
            return Edit(cur.lastrowid, edit_id, fact_id, version, namespace, kind, op, content,
                        author or self.author, reason, now, previous, passage_id)

    def _live_same_content(self, tx: Transaction, draft: Passage) -> Edit | None:
        row = tx.execute(
            "SELECT e.seq FROM passages p JOIN edits e ON e.passage_id = p.id"
            " WHERE p.active = 1 AND p.content_hash = ?", (content_hash(draft),),
        ).fetchone()
        if row is None:
            return None
        found = tx.execute(f"SELECT {_EDIT_COLUMNS} FROM edits WHERE seq = ?", (row[0],)).fetchone()
        return _row_to_edit(found)

    @staticmethod
    def _passage(kind: str, content: Mapping[str, str], namespace: str, fact_id: str, version: int,
                 **meta: str) -> Passage:
        metadata: dict[str, Any] = {"fact_id": fact_id, "version": version, **meta}
        if kind == "qa":
            metadata.update(question=content.get("question", ""), answer=content.get("answer", ""))
            text = f"Q: {content.get('question', '')} A: {content.get('answer', '')}"
        else:
            text = content.get("text", "")
        return Passage(id=f"{fact_id}@v{version}", text=text, kind=kind, namespace=namespace, metadata=metadata)

    # -- reading ---------------------------------------------------------------------------

    def history(self, fact_id: str | None = None, *, namespace: str | None = None) -> list[Edit]:
        """The log, oldest first: of one fact, of one namespace, or of the whole store."""
        sql, params = f"SELECT {_EDIT_COLUMNS} FROM edits", []
        clauses = []
        if fact_id is not None:
            clauses.append("fact_id = ?")
            params.append(fact_id)
        if namespace is not None:
            clauses.append("namespace = ?")
            params.append(namespace)
        if clauses:
            sql += " WHERE " + " AND ".join(clauses)
        rows = self.store._db.execute(sql + " ORDER BY seq", params).fetchall()
        if fact_id is not None and not rows:
            msg = f"no fact {fact_id!r} in store {self.store.path}"
            raise FactNotFoundError(msg)
        return [_row_to_edit(r) for r in rows]

    def current(self, fact_id: str) -> Edit:
        """The latest edit of a fact (its current version)."""
        return self.history(fact_id)[-1]

    def _last_content(self, fact_id: str) -> Mapping[str, str]:
        return next(e.content for e in reversed(self.history(fact_id)) if e.content)

    def facts(self, *, namespace: str | None = None, include_retracted: bool = False) -> list[Edit]:
        """The current edit of every fact (live ones unless ``include_retracted``)."""
        sql = (f"SELECT {', '.join('e.' + c.strip() for c in _EDIT_COLUMNS.split(','))} FROM facts f"
               " JOIN edits e ON e.fact_id = f.fact_id AND e.version = f.version")
        clauses, params = [], []
        if namespace is not None:
            clauses.append("f.namespace = ?")
            params.append(namespace)
        if not include_retracted:
            clauses.append("f.live = 1")
        if clauses:
            sql += " WHERE " + " AND ".join(clauses)
        return [_row_to_edit(r) for r in self.store._db.execute(sql + " ORDER BY e.seq", params)]


def _require_text(value: str, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        msg = f"{what} must be a non-empty string, got {value!r}"
        raise ConfigError(msg)
    return value.strip()
