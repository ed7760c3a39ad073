import json

import pytest

from rag import cli
from rag.testing import ScriptedGenerator, tiny_corpus


@pytest.fixture()
def corpus(tmp_path):
    path = tmp_path / "corpus.jsonl"
    path.write_text("".join(json.dumps({"_id": p.id, "title": p.title, "text": p.text}) + "\n" for p in tiny_corpus()))
    return path


@pytest.fixture()
def fake_generator(monkeypatch):
    gen = ScriptedGenerator({r"(?s)Context:.*Veldoria": "Marrowgate"}, default="Paris")
    monkeypatch.setattr(cli, "_generator", lambda args: gen)
    return gen


def run(capsys, *argv):
    code = cli.main(["-q", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_index_then_ask_json(tmp_path, corpus, capsys, fake_generator):
    store = tmp_path / "store"
    code, out, _ = run(capsys, "index", "--corpus", str(corpus), "--store", str(store), "--embedder", "hash-64", "--json")
    assert code == 0 and json.loads(out)["added"] == 8
    code, out, _ = run(capsys, "ask", "What is the capital of Veldoria?", "--store", str(store), "--json")
    answer = json.loads(out)
    assert code == 0
    assert answer["answer"] == "Marrowgate" and answer["source"] == "corpus" and answer["citations"] == ["t1"]


def test_ask_plain_text_shows_citations(tmp_path, corpus, capsys, fake_generator):
    store = tmp_path / "store"
    run(capsys, "index", "--corpus", str(corpus), "--store", str(store), "--embedder", "hash-64")
    code, out, _ = run(capsys, "ask", "What is the capital of Veldoria?", "--store", str(store))
    assert code == 0 and out.startswith("Marrowgate") and "[t1]" in out


def test_ask_on_missing_store_is_one_line_error(tmp_path, capsys):
    code, out, err = run(capsys, "ask", "Q?", "--store", str(tmp_path / "nowhere"))
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and "nowhere" in err and err.startswith("rag: error:")


def test_empty_corpus_is_one_line_error(tmp_path, capsys):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    code, _, err = run(capsys, "index", "--corpus", str(empty), "--store", str(tmp_path / "s"), "--embedder", "hash-64")
    assert code == 2 and "empty.jsonl" in err and err.count("\n") == 1


def test_malformed_line_strict_and_lenient(tmp_path, corpus, capsys):
    corpus.write_text(corpus.read_text() + "{not json\n")
    store = tmp_path / "s"
    code, _, err = run(capsys, "index", "--corpus", str(corpus), "--store", str(store), "--embedder", "hash-64", "--strict")
    assert code == 2 and f"{corpus}:9" in err and err.count("\n") == 1
    code, out, err = run(capsys, "index", "--corpus", str(corpus), "--store", str(store), "--embedder", "hash-64")
    assert code == 1 and "8 added" in out and f"{corpus}:9" in err


def test_index_refuses_other_embedder_for_existing_store(tmp_path, corpus, capsys):
    store = tmp_path / "s"
    run(capsys, "index", "--corpus", str(corpus), "--store", str(store), "--embedder", "hash-64")
    code, _, err = run(capsys, "index", "--corpus", str(corpus), "--store", str(store), "--embedder", "hash-32")
    assert code == 2 and "hash-64" in err


def test_unknown_generator_is_one_line_error(tmp_path, corpus, capsys):
    store = tmp_path / "s"
    run(capsys, "index", "--corpus", str(corpus), "--store", str(store), "--embedder", "hash-64")
    code, _, err = run(capsys, "ask", "Q?", "--store", str(store), "--generator", "no-such-model")
    assert code == 2 and "no-such-model" in err


def test_python_dash_m_entry_point():
    import subprocess
    import sys

    res = subprocess.run([sys.executable, "-m", "rag", "--help"], capture_output=True, text=True, check=False)
    assert res.returncode == 0 and "index" in res.stdout and "demo" in res.stdout
