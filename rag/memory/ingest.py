"""Read corpora into passages: BEIR folders, JSONL files, plain-text files and folders.

Long documents are cut into overlapping word windows. A malformed record is reported with
its file and line; with ``strict=True`` it fails the whole read, otherwise it is skipped
and counted in the :class:`IngestReport`. Files are read as UTF-8 (a leading byte-order mark
is dropped). Bytes that are not UTF-8 make their record malformed: a JSONL line, or a whole
text file (one text file is one document), reported with the byte offset in the file.
"""

from __future__ import annotations

import codecs
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rag.errors import ConfigError, EmptyCorpusError, InputFormatError
from rag.types import Passage

logger = logging.getLogger(__name__)

TEXT_SUFFIXES = (".txt", ".md")
_ID_KEYS = ("_id", "id", "doc_id", "docid")
_TEXT_KEYS = ("text", "contents", "content", "passage")


@dataclass(slots=True)
class IngestReport:
    """What a read or an ingest did: counts, and one line per skipped record."""

    read: int = 0
    added: int = 0
    duplicates: int = 0
    malformed: int = 0
    chunks: int = 0
    problems: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"read": self.read, "added": self.added, "duplicates": self.duplicates,
                "malformed": self.malformed, "chunks": self.chunks, "problems": self.problems[:20]}


@dataclass(frozen=True, slots=True)
class Chunker:
    """Cuts long texts into windows of ``size`` words overlapping by ``overlap`` words."""

    size: int = 200
    overlap: int = 40

    def __post_init__(self) -> None:
        if self.size < 1 or not 0 <= self.overlap < self.size:
            msg = f"chunking needs size >= 1 and 0 <= overlap < size, got {self.size}, {self.overlap}"
            raise ConfigError(msg)

    def split(self, text: str) -> list[str]:
        words = text.split()
        if len(words) <= self.size:
            return [text.strip()]
        step = self.size - self.overlap
        starts = range(0, max(1, len(words) - self.overlap), step)
        return [" ".join(words[s : s + self.size]) for s in starts]


def _first(record: dict[str, Any], keys: tuple[str, ...]) -> Any:
    for key in keys:
        if key in record:
            return record[key]
    return None


def _parse_jsonl_line(line: str, where: str) -> tuple[str, str, str, dict[str, Any]]:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        msg = f"{where}: not valid JSON ({exc.msg})"
        raise InputFormatError(msg) from None
    if not isinstance(record, dict):
        msg = f"{where}: expected a JSON object, got {type(record).__name__}"
        raise InputFormatError(msg)
    doc_id, text = _first(record, _ID_KEYS), _first(record, _TEXT_KEYS)
    if doc_id is None or not isinstance(text, str):
        msg = f"{where}: needs an id ({'/'.join(_ID_KEYS)}) and a string text ({'/'.join(_TEXT_KEYS)})"
        raise InputFormatError(msg)
    if not text.strip():  # real search snippets have them; there is nothing to retrieve
        msg = f"{where}: record {doc_id!r} has empty text"
        raise InputFormatError(msg)
    title = record.get("title") or ""
    metadata = record.get("metadata") if isinstance(record.get("metadata"), dict) else {}
    return str(doc_id), title if isinstance(title, str) else str(title), text, metadata


def _decode(raw: bytes, where: str, offset: int) -> str:
    """``raw`` as UTF-8 text; ``offset`` is where ``raw`` starts in its file."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        msg = (f"{where}: not UTF-8 text (byte 0x{raw[exc.start]:02x} at byte offset {offset + exc.start}); "
               "save the file as UTF-8")
        raise InputFormatError(msg) from None


def _skip(exc: InputFormatError, report: IngestReport, strict: bool) -> None:
    """A malformed record: fail the read when strict, else count it and go on."""
    if strict:
        raise exc
    report.malformed += 1
    report.problems.append(str(exc))
    logger.warning("skipped %s", exc)


def _read_jsonl(path: Path, report: IngestReport, strict: bool) -> Iterator[tuple[str, str, str, dict[str, Any]]]:
    # Bytes, decoded line by line: one line that is not UTF-8 is one malformed record.
    offset = 0
    with path.open("rb") as handle:
        for lineno, raw in enumerate(handle, start=1):
            start, offset = offset, offset + len(raw)
            if lineno == 1 and raw.startswith(codecs.BOM_UTF8):
                raw, start = raw[len(codecs.BOM_UTF8):], start + len(codecs.BOM_UTF8)
            if not raw.strip():
                continue
            where = f"{path}:{lineno}"
            try:
                yield _parse_jsonl_line(_decode(raw, where, start), where)
            except InputFormatError as exc:
                _skip(exc, report, strict)


def _read_text(path: Path, report: IngestReport, strict: bool) -> Iterator[tuple[str, str, str, dict[str, Any]]]:
    raw = path.read_bytes()
    bom = len(codecs.BOM_UTF8) if raw.startswith(codecs.BOM_UTF8) else 0
    try:
        text = _decode(raw[bom:], str(path), bom)
    except InputFormatError as exc:
        _skip(exc, report, strict)
        return
    if text.strip():
        yield path.stem, path.stem.replace("_", " "), text, {"file": path.name}


def corpus_files(path: Path) -> list[Path]:
    """The files a corpus path stands for. Raises if there are none."""
    if not path.exists():
        msg = f"corpus path {path} does not exist"
        raise InputFormatError(msg)
    if path.is_file():
        return [path]
    if (path / "corpus.jsonl").is_file():
        return [path / "corpus.jsonl"]
    files = sorted(p for p in path.rglob("*") if p.is_file() and (p.suffix in TEXT_SUFFIXES or p.suffix == ".jsonl"))
    if not files:
        msg = f"corpus folder {path} holds no corpus.jsonl, *.jsonl, *.txt or *.md file"
        raise InputFormatError(msg)
    return files


def read_corpus(
    path: str | Path,
    *,
    strict: bool = False,
    chunker: Chunker | None = None,
    report: IngestReport | None = None,
) -> Iterator[Passage]:
    """Yield the passages of a corpus at ``path``.

    Args:
        path: A BEIR folder (``corpus.jsonl``), a ``.jsonl`` file, a text file, or a folder
            of ``.jsonl``/``.txt``/``.md`` files.
        strict: Raise on the first malformed record (bad JSON, missing fields, bytes
            that are not UTF-8) instead of skipping it.
        chunker: How to cut long documents; defaults to 200-word windows, 40 overlapping.
        report: Filled in with counts as passages are read.

    Raises:
        InputFormatError: the path does not exist, or (strict) a record is malformed.
        EmptyCorpusError: nothing could be read.

    Example:
        >>> import tempfile, pathlib
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "c.jsonl"
        >>> _ = p.write_text('{"_id": "d1", "text": "Paris is in France."}\\n')
        >>> [x.id for x in read_corpus(p)]
        ['d1']
    """
    chunker = chunker or Chunker()
    report = report if report is not None else IngestReport()
    for file in corpus_files(Path(path)):
        read = _read_jsonl if file.suffix == ".jsonl" else _read_text
        for doc_id, title, text, metadata in read(file, report, strict):
            report.read += 1
            pieces = chunker.split(text)
            if len(pieces) > 1:
                report.chunks += len(pieces)
            for i, piece in enumerate(pieces):
                pid = doc_id if len(pieces) == 1 else f"{doc_id}#{i}"
                meta = dict(metadata, doc_id=doc_id) if len(pieces) > 1 else dict(metadata)
                yield Passage(id=pid, text=piece, title=title, metadata=meta)
    if report.read == 0:
        msg = f"corpus {path} holds no passages"
        if report.malformed:
            msg += f" ({report.malformed} malformed records skipped; first: {report.problems[0]})"
        raise EmptyCorpusError(msg)
