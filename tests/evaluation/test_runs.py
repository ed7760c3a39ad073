import json
import logging
import random
import sys
import types
from pathlib import Path

import numpy as np
import pytest

from rag.errors import ConfigError
from rag.evaluation import RunWriter, set_seed
from rag.evaluation.runs import markdown_table
from rag.metrics import rank_documents, retrieval_metrics

CONFIG = {"k": 5, "store": Path("/data/store"), "ratios": (0.0, 0.2), "alpha": np.float32(0.5)}
MODELS = {"generator": "gemma3-270m", "embedder": "all-MiniLM-L6-v2"}


def read_jsonl(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_run_folder_files_exist_and_parse(tmp_path):
    out = tmp_path / "run"
    w = RunWriter(out, CONFIG, seed=7, models=MODELS, command=["eval/x.py", "--seed", "7"])
    w.add_prediction({"question": "Where?", "answer": "Paris", "gold": ["Paris"]})
    w.add_metrics("baseline", {"em": 1.0, "recall@5": 0.8})
    assert w.finish() == out

    assert sorted(p.name for p in out.iterdir()) == [
        "config.json", "manifest.json", "metrics.json", "predictions.jsonl", "summary.md"
    ]
    assert json.loads((out / "config.json").read_text()) == {
        "k": 5, "store": "/data/store", "ratios": [0.0, 0.2], "alpha": 0.5
    }
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "completed"
    assert manifest["seed"] == 7
    assert manifest["models"] == MODELS
    assert manifest["command"] == ["eval/x.py", "--seed", "7"]
    assert manifest["packages"]["numpy"] == np.__version__
    assert set(manifest["packages"]) == {
        "rag", "torch", "transformers", "sentence-transformers", "faiss-cpu", "langchain-core",
        "numpy",
    }
    assert manifest["python"] and manifest["platform"]
    assert manifest["start_time"] <= manifest["end_time"]
    assert manifest["n_predictions"] == 1
    assert "git_sha" in manifest
    assert set(manifest["files"]) == {p.name for p in out.iterdir()}
    summary = (out / "summary.md").read_text()
    assert "| config | em | recall@5 |" in summary
    assert "| baseline | 1.0000 | 0.8000 |" in summary


def test_manifest_exists_while_running_and_git_is_optional(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # not a git checkout
    w = RunWriter(tmp_path / "run", {}, seed=0)
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["status"] == "running"
    assert manifest["end_time"] is None
    assert manifest["git_sha"] is None and manifest["git_dirty"] is None
    w.finish()


def test_predictions_are_appended_incrementally(tmp_path):
    out = tmp_path / "run"
    w = RunWriter(out, {}, seed=0)
    assert (out / "predictions.jsonl").read_text() == ""
    for i in range(3):
        w.add_prediction({"id": i, "question": f"q{i}", "score": np.float64(0.5), "tags": {"x"}})
        # On disk before the run finishes: a crash now would keep these lines.
        lines = read_jsonl(out / "predictions.jsonl")
        assert [r["id"] for r in lines] == list(range(i + 1))
    assert lines[0] == {"id": 0, "question": "q0", "score": 0.5, "tags": ["x"]}
    w.finish()
    assert len(read_jsonl(out / "predictions.jsonl")) == 3


def test_predictions_accept_dataclasses(tmp_path):
    from rag.types import Answer, StageRecord

    w = RunWriter(tmp_path / "run", {}, seed=0)
    answer = Answer("Paris", "corpus", citations=("p1",), trace=(StageRecord("read", "ok"),))
    w.add_prediction({"question": "Where?", "result": answer})
    record = read_jsonl(tmp_path / "run" / "predictions.jsonl")[0]
    assert record["result"]["source"] == "corpus"
    assert record["result"]["trace"][0]["stage"] == "read"


def test_metrics_shape(tmp_path):
    out = tmp_path / "run"
    w = RunWriter(out, {}, seed=0)
    w.add_metrics("baseline", {"asr": 0.4, "em": float("nan")}, attack="poisonedrag", ratio=0.2)
    # Written at once, not only at finish.
    assert json.loads((out / "metrics.json").read_text())["runs"][0]["config"] == "baseline"
    w.add_metrics("guarded", {"asr": 0.1, "source_adoption": {"memory": 0.5, "corpus": 0.5}},
                  attack="poisonedrag", ratio=0.2)
    w.finish()
    data = json.loads((out / "metrics.json").read_text())
    assert data == {"runs": [
        {"config": "baseline", "attack": "poisonedrag", "ratio": 0.2, "asr": 0.4, "em": None},
        {"config": "guarded", "attack": "poisonedrag", "ratio": 0.2, "asr": 0.1,
         "source_adoption": {"memory": 0.5, "corpus": 0.5}},
    ]}
    assert list(data["runs"][0]) == ["config", "attack", "ratio", "asr", "em"]
    summary = (out / "summary.md").read_text()
    assert "source_adoption.memory" in summary


def test_metrics_name_clashes(tmp_path):
    w = RunWriter(tmp_path / "run", {}, seed=0)
    with pytest.raises(ConfigError, match="'config'"):
        w.add_metrics("a", {"config": 1.0})
    with pytest.raises(ConfigError, match="'ratio'"):
        w.add_metrics("a", {"ratio": 1.0}, ratio=0.2)
    with pytest.raises(ConfigError, match="config_name"):
        w.add_metrics("", {"em": 1.0})


def test_custom_summary_and_empty_default(tmp_path):
    w = RunWriter(tmp_path / "a", {}, seed=0)
    w.finish("# My table\n\n| x |\n|---|\n| 1 |")
    assert (tmp_path / "a" / "summary.md").read_text() == "# My table\n\n| x |\n|---|\n| 1 |\n"
    w = RunWriter(tmp_path / "b", {}, seed=0)
    w.finish()
    assert "No metrics recorded." in (tmp_path / "b" / "summary.md").read_text()


def test_refuses_to_overwrite_a_non_empty_folder(tmp_path):
    out = tmp_path / "run"
    w = RunWriter(out, {"v": 1}, seed=0)
    w.add_prediction({"id": "old"})
    w.write_trec({"q1": {"d1": 1.0}}, "bm25", filename="bm25.trec")
    w.finish()
    (out / "notes.txt").write_text("mine")
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    with pytest.raises(ConfigError, match=r"not empty.*overwrite=True"):
        RunWriter(out, {"v": 2}, seed=0)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before

    RunWriter(out, {"v": 2}, seed=0, overwrite=True).finish()
    assert json.loads((out / "config.json").read_text()) == {"v": 2}
    assert (out / "predictions.jsonl").read_text() == ""
    assert not (out / "bm25.trec").exists()  # listed in the old manifest
    assert (out / "notes.txt").read_text() == "mine"  # not ours: left alone


def test_existing_empty_folder_is_fine_and_a_file_is_not(tmp_path):
    (tmp_path / "empty").mkdir()
    RunWriter(tmp_path / "empty", {}, seed=0).finish()
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError, match="not a folder"):
        RunWriter(tmp_path / "file", {}, seed=0)


def test_unserialisable_config_is_refused_before_writing(tmp_path):
    with pytest.raises(ConfigError, match=r"config\['model'\] holds a object"):
        RunWriter(tmp_path / "run", {"model": object()}, seed=0)
    assert not (tmp_path / "run").exists()


def test_trec_run_file(tmp_path):
    run = {"q1": {"d1": 0.5, "d3": 0.9, "d2": 0.9, "d4": 1e-7}, "q2": {"x": 3.0}}
    w = RunWriter(tmp_path / "run", {}, seed=0)
    path = w.write_trec(run, "hybrid")
    assert path == tmp_path / "run" / "run.trec"
    rows = [line.split() for line in path.read_text().splitlines()]
    assert all(len(r) == 6 and r[1] == "Q0" and r[5] == "hybrid" for r in rows)
    assert [(r[0], r[2], r[3]) for r in rows] == [
        ("q1", "d3", "1"), ("q1", "d2", "2"), ("q1", "d1", "3"), ("q1", "d4", "4"),
        ("q2", "x", "1"),
    ]
    # Scores read back exactly, so metrics on the file equal metrics on the run.
    back: dict[str, dict[str, float]] = {}
    for qid, _, docid, _, score, _ in rows:
        back.setdefault(qid, {})[docid] = float(score)
    assert back == run
    assert [d for d, _ in rank_documents(back["q1"])] == ["d3", "d2", "d1", "d4"]
    qrels = {"q1": {"d2": 1}, "q2": {"x": 1}}
    assert retrieval_metrics(back, qrels) == retrieval_metrics(run, qrels)
    w.finish()
    assert "run.trec" in json.loads((tmp_path / "run" / "manifest.json").read_text())["files"]


def test_trec_file_can_be_read_by_trec_eval(tmp_path):
    pytrec_eval = pytest.importorskip("pytrec_eval")
    run = {"q1": {"d1": 0.5, "d3": 0.9, "d2": 0.9}}
    path = RunWriter(tmp_path / "run", {}, seed=0).write_trec(run, "t")
    with path.open() as f:
        parsed = pytrec_eval.parse_run(f)
    assert parsed == run


@pytest.mark.parametrize(("tag", "run"), [
    ("two words", {"q1": {"d1": 1.0}}),
    ("", {"q1": {"d1": 1.0}}),
    ("t", {"q 1": {"d1": 1.0}}),
    ("t", {"q1": {"d\t1": 1.0}}),
])
def test_trec_rejects_whitespace(tmp_path, tag, run):
    w = RunWriter(tmp_path / "run", {}, seed=0)
    with pytest.raises(ConfigError, match="whitespace"):
        w.write_trec(run, tag)


def test_file_names_must_stay_in_the_folder(tmp_path):
    w = RunWriter(tmp_path / "run", {}, seed=0)
    with pytest.raises(ConfigError, match="plain file name"):
        w.write_trec({}, "t", filename="../escape.trec")
    with pytest.raises(ConfigError, match="plain file name"):
        w.plot_lines("sub/plot.png", "t", "x", "y", {"s": [(0, 1)]})
    with pytest.raises(ConfigError, match=r"\.png"):
        w.plot_lines("plot.svg", "t", "x", "y", {"s": [(0, 1)]})
    with pytest.raises(ConfigError, match="at least one series"):
        w.plot_lines("plot.png", "t", "x", "y", {})
    with pytest.raises(ConfigError, match=r"\(x, y\) pairs"):
        w.plot_lines("plot.png", "t", "x", "y", {"s": [(0, 1, 2)]})


def test_plot_is_skipped_without_matplotlib(tmp_path, monkeypatch, caplog):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # makes the import fail
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    w = RunWriter(tmp_path / "run", {}, seed=0)
    with caplog.at_level(logging.INFO, logger="rag.evaluation.runs"):
        assert w.plot_lines("asr.png", "ASR", "ratio", "asr", {"a": [(0, 0.0), (1, 0.5)]}) is None
    assert "matplotlib is not installed; skipping plot asr.png" in caplog.text
    assert not (tmp_path / "run" / "asr.png").exists()


def test_plot_with_matplotlib(tmp_path):
    pytest.importorskip("matplotlib")
    w = RunWriter(tmp_path / "run", {}, seed=0)
    path = w.plot_lines("asr.png", "ASR", "ratio", "asr",
                        {"baseline": [(0, 0.0), (0.2, 0.6)], "guarded": [(0, 0.0), (0.2, 0.1)]})
    assert path.read_bytes().startswith(b"\x89PNG")
    w.finish()
    assert "asr.png" in json.loads((tmp_path / "run" / "manifest.json").read_text())["files"]


def test_context_manager_records_failures(tmp_path):
    out = tmp_path / "run"
    with pytest.raises(RuntimeError, match="boom"), RunWriter(out, {}, seed=0) as w:
        w.add_prediction({"id": 1})
        w.add_metrics("partial", {"em": 0.5})
        msg = "boom"
        raise RuntimeError(msg)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "failed"
    assert manifest["error"] == "RuntimeError: boom"
    assert json.loads((out / "metrics.json").read_text())["runs"][0]["config"] == "partial"
    assert "failed (RuntimeError: boom)" in (out / "summary.md").read_text()


def test_finished_run_refuses_more_writes(tmp_path):
    w = RunWriter(tmp_path / "run", {}, seed=0)
    w.finish()
    with pytest.raises(ConfigError, match="finished"):
        w.add_prediction({"id": 1})
    with pytest.raises(ConfigError, match="finished"):
        w.finish()


def test_markdown_table_escapes_pipes():
    table = markdown_table([{"config": "a|b", "latency_ms_p95": 12345.678, "n": 3}])
    assert table.splitlines()[2] == "| a\\|b | 12345.7 | 3 |"


def test_set_seed(monkeypatch):
    seeds = []
    monkeypatch.setitem(sys.modules, "torch", types.SimpleNamespace(manual_seed=seeds.append))
    set_seed(3)
    a = (random.random(), np.random.rand())
    set_seed(3)
    assert (random.random(), np.random.rand()) == a
    assert seeds == [3, 3]
    for bad in (-1, 2**32, 1.5, True, "3"):
        with pytest.raises(ConfigError, match="seed"):
            set_seed(bad)
