import json

import pytest

from rag import cli
from rag.testing import HashEmbedder, ScriptedGenerator, tiny_corpus


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


def test_edit_commands_round_trip(tmp_path, corpus, capsys, fake_generator):
    store = str(tmp_path / "store")
    run(capsys, "index", "--corpus", str(corpus), "--store", store, "--embedder", "hash-64")
    code, out, _ = run(capsys, "edit", "add", "The capital of Veldoria is now Ostrava.", "--store", store,
                       "--reason", "moved", "--json")
    added = json.loads(out)
    assert code == 0 and added["op"] == "add" and added["reason"] == "moved" and added["author"] == "cli"
    fact = added["fact_id"]
    code, out, _ = run(capsys, "edit", "update", fact, "--text", "The capital of Veldoria is now Brno.", "--store", store, "--json")
    assert json.loads(out)["version"] == 2
    code, out, _ = run(capsys, "edit", "retract", fact, "--store", store)
    assert code == 0 and "retract" in out and "(retracted)" in out
    code, out, _ = run(capsys, "edit", "rollback", fact, "--to-version", "1", "--store", store, "--json")
    assert json.loads(out)["content"]["text"].endswith("Ostrava.")
    code, out, _ = run(capsys, "edit", "qa", "Who founded Marrowgate?", "Osk the Elder", "--store", store)
    assert code == 0 and "Who founded Marrowgate? -> Osk the Elder" in out
    code, out, _ = run(capsys, "edit", "history", fact, "--store", store, "--json")
    assert [json.loads(line)["op"] for line in out.splitlines()] == ["add", "update", "retract", "rollback"]
    code, out, _ = run(capsys, "edit", "history", "--store", store)
    assert len(out.splitlines()) == 5


def test_edit_errors_are_one_line(tmp_path, corpus, capsys):
    store = str(tmp_path / "store")
    run(capsys, "index", "--corpus", str(corpus), "--store", store, "--embedder", "hash-64")
    code, _, err = run(capsys, "edit", "retract", "no-such-fact", "--store", store)
    assert code == 2 and "no-such-fact" in err and err.count("\n") == 1
    code, _, err = run(capsys, "edit", "rollback", "--store", store)
    assert code == 2 and "--to-edit" in err
    code, _, err = run(capsys, "edit", "add", "x", "--store", str(tmp_path / "missing"))
    assert code == 2 and "no store" in err


def test_ask_with_user_fact(tmp_path, corpus, capsys, fake_generator):
    store = str(tmp_path / "store")
    run(capsys, "index", "--corpus", str(corpus), "--store", store, "--embedder", "hash-64")
    code, out, _ = run(capsys, "ask", "What is the capital of Veldoria?", "--store", store,
                       "--user-fact", "The capital of Veldoria is Brno.", "--json")
    answer = json.loads(out)
    assert code == 0 and (answer["answer"], answer["source"], answer["citations"]) == ("Brno", "user", ["user:0"])
    assert answer["conflicts"][0]["source"] == "corpus"


def test_eval_editing_writes_a_run_folder(tmp_path, capsys, fake_generator):
    data = tmp_path / "eren.json"
    data.write_text(json.dumps([{
        "edit_statement": "Ilsa Brennick's mother tongue is Portuguese.",
        "edit_scope": [["What is Ilsa Brennick's mother tongue?", "Portuguese"],
                       ["What language does Ilsa Brennick speak natively?", "Portuguese"]],
        "unrelated": {"same_subj": ["Where was Ilsa Brennick born?"], "neighbor_subj": ["What is Tomas Hale's mother tongue?"]},
    }]))
    out_dir = tmp_path / "run"
    code, out, _ = run(capsys, "eval", "editing", "--data", str(data), "--out", str(out_dir), "--embedder", "hash-64",
                       "--configs", "full,filter_off")
    assert code == 0 and "| full | 1.000 | 1.000 | 1.000 | 0.000 |" in out
    metrics = json.loads((out_dir / "metrics.json").read_text())
    by_config = {r["config"]: r for r in metrics["runs"]}
    assert by_config["filter_off"]["edit_leak"] == 1.0  # the note leaks into "Where was ... born?"
    assert len((out_dir / "predictions.jsonl").read_text().splitlines()) == 2 * 4
    code, out, _ = run(capsys, "eval", "editing", "--data", str(data), "--out", str(tmp_path / "run2"),
                       "--embedder", "hash-64", "--configs", "full", "--json")
    assert code == 0 and [r["config"] for r in json.loads(out)["runs"]] == ["full"]
    code, _, err = run(capsys, "eval", "editing", "--data", str(tmp_path / "missing.json"), "--out", str(tmp_path / "x"))
    assert code == 2 and "missing.json" in err


def test_corpus_that_is_not_utf8_is_one_line_error_naming_file_and_offset(tmp_path, capsys):
    binary = tmp_path / "bin.txt"
    binary.write_bytes(b"hello \xff\xfe world\n")
    code, out, err = run(capsys, "index", "--corpus", str(binary), "--store", str(tmp_path / "s"),
                         "--embedder", "hash-64", "--strict")
    assert code == 2 and out == "" and err.count("\n") == 1
    assert err.startswith("rag: error:") and str(binary) in err and "byte offset 6" in err
    code, out, err = run(capsys, "index", "--corpus", str(binary), "--store", str(tmp_path / "s"),
                         "--embedder", "hash-64")  # lenient: the file is skipped, and nothing is left
    assert code == 2 and "Traceback" not in err
    assert err.splitlines()[-1].startswith("rag: error:") and "byte offset 6" in err.splitlines()[-1]


def test_every_input_check_comes_before_a_model_loads(tmp_path, corpus, capsys):
    store = str(tmp_path / "store")
    assert run(capsys, "index", "--corpus", str(corpus), "--store", store, "--embedder", "hash-64")[0] == 0
    (tmp_path / "empty").mkdir()
    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "metrics.json").write_text("{}")
    missing, used = str(tmp_path / "missing"), str(tmp_path / "used")
    eren = tmp_path / "eren.json"
    eren.write_text("[]")
    bad_command_lines = [
        ["index", "--corpus", missing, "--store", str(tmp_path / "new")],
        ["index", "--corpus", str(tmp_path / "empty"), "--store", str(tmp_path / "new")],
        ["index", "--corpus", str(corpus), "--store", str(tmp_path / "new"), "--workers", "0"],
        ["ask", "Q?", "--store", missing],
        ["ask", "Q?", "--store", store, "-k", "0"],
        ["edit", "rollback", "--store", store],
        ["edit", "add", "x", "--store", missing],
        ["eval", "editing", "--data", missing, "--out", str(tmp_path / "r")],
        ["eval", "editing", "--data", str(eren), "--out", str(tmp_path / "r"), "--configs", "nope"],
        ["eval", "editing", "--data", str(eren), "--out", used],
        ["eval", "preference", "--corpus", missing, "--out", str(tmp_path / "r")],
        ["eval", "qa", "--corpus", missing, "--out", str(tmp_path / "r")],
        ["eval", "qa", "--corpus", str(corpus.parent), "--out", used],
        ["eval", "poisoning", "--targets", missing, "--gold", missing, "--out", str(tmp_path / "r")],
        ["attack", "--store", store, "--targets", missing],
        ["demo", "--corpus", missing, "--store", str(tmp_path / "demo")],
    ]
    for argv in bad_command_lines:
        with pytest.MonkeyPatch.context() as mp:
            import rag.models

            called = []
            mp.setattr(rag.models, "load_embedder", lambda *a, c=called, **k: c.append("embedder") or HashEmbedder(64))
            mp.setattr(rag.models, "load_generator", lambda *a, c=called, **k: c.append("generator") or ScriptedGenerator())
            code, out, err = run(capsys, *argv)
        assert (code, called) == (2, []), (argv, err)
        assert err.startswith("rag: error:") and err.count("\n") == 1, (argv, err)
    assert not (tmp_path / "new").exists()  # no empty store left behind by a failed index


def test_ask_names_an_unknown_generator_before_the_embedder_loads(tmp_path, corpus, capsys, monkeypatch):
    import rag.models

    store = str(tmp_path / "store")
    run(capsys, "index", "--corpus", str(corpus), "--store", store, "--embedder", "hash-64")
    called = []
    monkeypatch.setattr(rag.models, "load_embedder", lambda *a, **k: called.append("embedder") or HashEmbedder(64))
    code, _, err = run(capsys, "ask", "Q?", "--store", store, "--generator", "no-such-model")
    assert code == 2 and "no-such-model" in err and called == []
