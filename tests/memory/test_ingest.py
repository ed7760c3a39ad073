import json

import pytest

from rag.errors import ConfigError, EmptyCorpusError, InputFormatError
from rag.memory.ingest import Chunker, IngestReport, read_corpus


def write_jsonl(path, rows):
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n")
    return path


def test_beir_folder(tmp_path):
    write_jsonl(tmp_path / "corpus.jsonl", [{"_id": "d1", "title": "Paris", "text": "Paris is in France."}])
    (passage,) = read_corpus(tmp_path)
    assert (passage.id, passage.title, passage.text) == ("d1", "Paris", "Paris is in France.")


def test_jsonl_alternative_keys_and_metadata(tmp_path):
    f = write_jsonl(tmp_path / "c.jsonl", [{"id": 7, "contents": "x y z", "metadata": {"lang": "en"}}])
    (p,) = read_corpus(f)
    assert p.id == "7" and p.text == "x y z" and p.metadata == {"lang": "en"}


def test_malformed_line_is_skipped_and_counted_with_location(tmp_path):
    f = write_jsonl(tmp_path / "c.jsonl", [{"_id": "a", "text": "ok"}, "{broken", {"_id": "b"}, {"_id": "c", "text": "fine"}])
    report = IngestReport()
    ids = [p.id for p in read_corpus(f, report=report)]
    assert ids == ["a", "c"]
    assert report.malformed == 2
    assert f"{f}:2" in report.problems[0] and "not valid JSON" in report.problems[0]
    assert f"{f}:3" in report.problems[1]


def test_strict_raises_on_first_malformed_line(tmp_path):
    f = write_jsonl(tmp_path / "c.jsonl", [{"_id": "a", "text": "ok"}, "[1, 2]"])
    with pytest.raises(InputFormatError, match=r"c\.jsonl:2: expected a JSON object"):
        list(read_corpus(f, strict=True))


def test_empty_corpus_and_missing_path(tmp_path):
    f = tmp_path / "empty.jsonl"
    f.write_text("\n\n")
    with pytest.raises(EmptyCorpusError, match="empty.jsonl"):
        list(read_corpus(f))
    with pytest.raises(InputFormatError, match="does not exist"):
        list(read_corpus(tmp_path / "nope"))
    (tmp_path / "dir").mkdir()
    with pytest.raises(InputFormatError, match="holds no corpus"):
        list(read_corpus(tmp_path / "dir"))


def test_text_files_are_chunked_with_overlap(tmp_path):
    words = [f"w{i}" for i in range(25)]
    (tmp_path / "long_doc.txt").write_text(" ".join(words))
    passages = list(read_corpus(tmp_path, chunker=Chunker(size=10, overlap=3)))
    assert [p.id for p in passages] == ["long_doc#0", "long_doc#1", "long_doc#2", "long_doc#3"]
    first, second = passages[0].text.split(), passages[1].text.split()
    assert first[-3:] == second[:3]
    assert passages[-1].text.split()[-1] == "w24"
    assert all(p.metadata["doc_id"] == "long_doc" for p in passages)
    assert passages[0].title == "long doc"


def test_chunker_validates():
    with pytest.raises(ConfigError):
        Chunker(size=5, overlap=5)
    assert Chunker(size=5, overlap=1).split("a b c") == ["a b c"]


def test_bytes_that_are_not_utf8_name_file_line_and_offset(tmp_path):
    f = tmp_path / "c.jsonl"
    good, bad = b'{"_id": "a", "text": "ok"}\n', b'{"_id": "b", "text": "caf\xe9"}\n'
    f.write_bytes(good + bad + b'{"_id": "c", "text": "fine"}\n')
    offset = len(good) + bad.index(b"\xe9")
    with pytest.raises(InputFormatError, match=rf"c\.jsonl:2: not UTF-8 .*0xe9 at byte offset {offset}\b"):
        list(read_corpus(f, strict=True))
    report = IngestReport()
    assert [p.id for p in read_corpus(f, report=report)] == ["a", "c"]  # lenient: that line is skipped
    assert report.malformed == 1 and f"{f}:2: not UTF-8" in report.problems[0]


def test_a_text_file_that_is_not_utf8_is_one_malformed_record(tmp_path):
    (tmp_path / "good.txt").write_text("Paris is in France.")
    (tmp_path / "bin.txt").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")
    with pytest.raises(InputFormatError, match=r"bin\.txt: not UTF-8 .*byte offset 0\b"):
        list(read_corpus(tmp_path, strict=True))
    report = IngestReport()
    assert [p.id for p in read_corpus(tmp_path, report=report)] == ["good"]
    assert report.malformed == 1 and "bin.txt" in report.problems[0]
    with pytest.raises(EmptyCorpusError, match=r"bin\.txt: not UTF-8 .*byte offset 0"):
        list(read_corpus(tmp_path / "bin.txt"))


def test_a_utf8_byte_order_mark_is_dropped(tmp_path):
    f = tmp_path / "c.jsonl"
    f.write_bytes(b'\xef\xbb\xbf{"_id": "a", "text": "ok"}\n')
    (tmp_path / "d.txt").write_bytes(b"\xef\xbb\xbfHello there.")
    assert [(p.id, p.text) for p in read_corpus(tmp_path)] == [("a", "ok"), ("d", "Hello there.")]


def test_a_record_with_empty_text_is_skipped_naming_file_and_line(tmp_path, caplog):
    from rag.memory.ingest import IngestReport, read_corpus

    corpus = tmp_path / "c.jsonl"
    corpus.write_text('{"_id": "d1", "text": "The Osk is a river."}\n{"_id": "d2", "text": "  "}\n', encoding="utf-8")
    report = IngestReport()
    assert [p.id for p in read_corpus(corpus, report=report)] == ["d1"]
    assert report.malformed == 1 and "c.jsonl:2: record 'd2' has empty text" in report.problems[0]
