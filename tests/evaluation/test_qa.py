"""The QA evaluation on a tiny hand-made BEIR folder, with fakes only."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rag import cli
from rag.errors import ConfigError, InputFormatError
from rag.evaluation.qa import (
    CONFIGS,
    KEY_FILE,
    check_qa_folder,
    load_answers,
    load_qa_folder,
    load_qrels,
    parse_configs,
    run_qa_eval,
    select,
)
from rag.metrics import exact_match, f1_score
from rag.testing import HashEmbedder, ScriptedGenerator

#: Padding that makes one document longer than a 200-word chunk.
FILLER = " ".join(["Rome has many old buildings, busy squares and long straight streets."] * 25)

CORPUS = [
    ("d1", "Veldoria", "The capital of Veldoria is Marrowgate."),
    ("d2", "Veldoria", "Veldoria's official currency is the silver crown."),
    ("d3", "Marrowgate", "Marrowgate was founded in 1312 on the banks of the river Osk."),
    ("d4", "Ilsa Brennick", "Ilsa Brennick was born in Marrowgate and works as a glassblower."),
    ("d5", "Ilsa Brennick", "Ilsa Brennick lives in Veldoria."),
    ("d6", "Eiffel Tower", "The Eiffel Tower is a wrought-iron tower in Paris, France."),
    ("d7", "Colosseum", f"{FILLER} The Colosseum is an ancient amphitheatre in Rome, Italy."),
    ("d8", "Banana", "Bananas are yellow when ripe and grow in tropical climates."),
]
QUERIES = [
    ("q1", "What is the capital of Veldoria?"),
    ("q2", "What is the official currency of Veldoria?"),
    ("q3", "Where was Ilsa Brennick born?"),
    ("q4", "In which city is the Colosseum?"),
    ("q5", "What is the capital of the country where Ilsa Brennick lives?"),
    ("q6", "What colour are ripe bananas?"),
    ("q7", "Who designed the Eiffel Tower?"),
]
ANSWERS = [
    {"_id": "q1", "answers": ["Marrowgate"]},
    {"query_id": "q2", "answer": "the silver crown"},
    {"id": "q3", "answers": ["Marrowgate", "the city of Marrowgate"]},
    {"qid": "q4", "gold_answers": ["Rome"]},
    {"_id": "q5", "answers": ["Marrowgate"]},
    {"_id": "q6", "answers": {"text": ["yellow"], "answer_start": [12]}},
    {"_id": "q7", "answers": []},  # no gold: left out
    {"_id": "q99", "answers": ["nobody asked"]},  # no such query
]
#: Graded judgements; q6 has only a non-relevant one (not judged), q7 has no answers.
QRELS = [("q1", "d1", 2), ("q1", "d3", 1), ("q2", "d2", 1), ("q3", "d4", 1), ("q4", "d7", 1),
         ("q5", "d5", 1), ("q5", "d1", 1), ("q6", "d8", 0), ("q7", "d6", 1)]


def write_folder(folder: Path, answers=ANSWERS, corpus=CORPUS) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "corpus.jsonl").write_text(
        "".join(json.dumps({"_id": i, "title": t, "text": x}) + "\n" for i, t, x in corpus))
    (folder / "queries.jsonl").write_text("".join(json.dumps({"_id": i, "text": q}) + "\n" for i, q in QUERIES))
    (folder / "answers.jsonl").write_text("".join(json.dumps(a) + "\n" for a in answers))
    (folder / "qrels").mkdir(exist_ok=True)
    (folder / "qrels" / "test.tsv").write_text(
        "query-id\tcorpus-id\tscore\n" + "".join(f"{q}\t{d}\t{g}\n" for q, d, g in QRELS))
    return folder


def generator() -> ScriptedGenerator:
    # The reader's prompt holds the passages: answer the capital question from them,
    # everything else wrongly, so configurations that read differently score differently.
    return ScriptedGenerator({r"(?s)Context:.*capital of Veldoria is Marrowgate.*Question: What is the capital":
                              "Marrowgate"}, default="Paris")


@pytest.fixture()
def folder(tmp_path):
    return write_folder(tmp_path / "beir")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    base = tmp_path_factory.mktemp("qa")
    folder = write_folder(base / "beir")
    out = base / "run"
    results = run_qa_eval(folder, out, embedder=HashEmbedder(), generator=generator(), show_progress=False)
    return out, results


def predictions(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]


def read_trec(path: Path) -> dict[str, dict[str, float]]:
    run: dict[str, dict[str, float]] = {}
    for line in path.read_text().splitlines():
        qid, _, doc, _, score, _ = line.split()
        run.setdefault(qid, {})[doc] = float(score)
    return run


# ------------------------------------------------------------------------------ reading


def test_answer_spellings_and_errors(tmp_path):
    path = tmp_path / "answers.jsonl"
    path.write_text("".join(json.dumps(a) + "\n" for a in ANSWERS) + '\n{"_id": "q1", "answers": ["Marrow gate"]}\n')
    answers = load_answers(path)
    assert answers["q1"] == ("Marrowgate", "Marrow gate")  # a repeated id adds its answers
    assert answers["q2"] == ("the silver crown",) and answers["q4"] == ("Rome",)
    assert answers["q6"] == ("yellow",) and answers["q7"] == ()
    for bad in ('{"_id": "q1", "gold": ["x"]}', '{"answers": ["x"]}', '{"_id": "q1", "answers": [["x"]]}', "[1]"):
        path.write_text('{"_id": "q0", "answers": ["ok"]}\n' + bad + "\n")
        with pytest.raises(InputFormatError, match=r"answers\.jsonl:2"):
            load_answers(path)


def test_qrels_beir_and_trec_shapes(tmp_path):
    path = tmp_path / "q.tsv"
    path.write_text("q1 0 d1 2\nq1 0 d2 0\n")
    assert load_qrels(path) == {"q1": {"d1": 2, "d2": 0}}
    path.write_text("query-id\tcorpus-id\tscore\nq1\td1\tone\n")
    with pytest.raises(InputFormatError, match=r"q\.tsv:2"):
        load_qrels(path)


def test_folder_checks(tmp_path, folder):
    data = load_qa_folder(folder)
    assert [it.qid for it in data.items] == ["q1", "q2", "q3", "q4", "q5", "q6"]
    assert data.skipped == {"no_answers": 1, "answers_without_query": 1}
    (folder / "qrels" / "test.tsv").rename(folder / "qrels" / "dev.tsv")
    assert check_qa_folder(folder).name == "dev.tsv"  # the only qrels file
    (folder / "qrels" / "train.tsv").write_text("q1\td1\t1\n")
    with pytest.raises(InputFormatError, match="choose a split"):
        check_qa_folder(folder)
    assert check_qa_folder(folder, split="train").name == "train.tsv"
    (folder / "answers.jsonl").unlink()
    with pytest.raises(InputFormatError, match="has no answers.jsonl"):
        check_qa_folder(folder, split="train")
    with pytest.raises(InputFormatError, match="is not a BEIR folder: corpus.jsonl is missing"):
        check_qa_folder(tmp_path)
    with pytest.raises(InputFormatError, match="does not exist"):
        check_qa_folder(tmp_path / "nowhere")


def test_select_and_configs():
    items = list(range(20))
    first, again = select(items, 5, seed=3), select(items, 5, seed=3)
    assert first == again == sorted(first) and len(set(first)) == 5
    assert select(items, 5, seed=4) != first
    assert select(items, None, 0) == items and select(items, 50, 0) == items
    assert parse_configs("all") == list(CONFIGS)
    assert parse_configs(["full", "full", "plain_rag"]) == ["full", "plain_rag"]
    with pytest.raises(ConfigError, match="nonsense"):
        parse_configs("full,nonsense")
    full = CONFIGS["full"]
    for name, switch in {"rewriter_off": "rewrite", "filter_off": "filter", "trigger_off": "trigger",
                         "detector_off": "detect", "arbiter_off": "arbiter"}.items():
        assert getattr(full, switch) and not getattr(CONFIGS[name], switch), name
    plain = CONFIGS["plain_rag"]
    assert not (plain.filter or plain.arbiter or plain.extractive or plain.detect or plain.trigger)


# ------------------------------------------------------------------------------ the run


def test_run_folder_contents(run_dir):
    out, results = run_dir
    assert list(results) == list(CONFIGS)
    names = {p.name for p in out.iterdir()}
    assert {"config.json", "manifest.json", "predictions.jsonl", "metrics.json", "summary.md", "store"} <= names
    assert {f"run_{c}.trec" for c in CONFIGS} <= names
    rows = json.loads((out / "metrics.json").read_text())["runs"]
    assert [r["config"] for r in rows] == list(CONFIGS)
    for row in rows:
        assert row["questions"] == 6 and row["judged"] == 5
        assert {f"{m}@{k}" for m in ("recall", "hit", "mrr", "ndcg") for k in (1, 5, 10)} <= set(row)
        assert {"em", "f1", "contains", "latency_ms_p50", "latency_ms_p95", "questions_per_s"} <= set(row)
        assert sum(row["source_adoption"].values()) == pytest.approx(1.0)
    summary = (out / "summary.md").read_text()
    assert "## Answers" in summary and "## Retrieval" in summary and "| plain_rag |" in summary
    assert "6 of 6 with gold answers (left out: 1 no answers, 1 answers without query)" in summary


def test_answer_metrics_follow_the_predictions(run_dir):
    out, results = run_dir
    preds = predictions(out)
    assert len(preds) == 6 * len(CONFIGS)
    for name in CONFIGS:
        mine = [p for p in preds if p["config"] == name]
        assert [p["qid"] for p in mine] == ["q1", "q2", "q3", "q4", "q5", "q6"]
        for p in mine:
            assert p["em"] == exact_match(p["answer"], p["golds"]) and p["f1"] == f1_score(p["answer"], p["golds"])
        assert results[name]["em"] == pytest.approx(sum(p["em"] for p in mine) / 6)
    full = {p["qid"]: p for p in preds if p["config"] == "full"}
    plain = {p["qid"]: p for p in preds if p["config"] == "plain_rag"}
    # The extractive reader answers from the passage; plain RAG asks the generator, which
    # only knows the capital of Veldoria.
    assert full["q1"]["answer"] == "Marrowgate" and full["q1"]["citations"] == ["d1"]
    assert full["q4"]["answer"] == "Rome, Italy"  # contains the gold, but is not exactly it
    assert (full["q4"]["em"], full["q4"]["contains"]) == (0.0, 1.0) and 0 < full["q4"]["f1"] < 1
    assert plain["q1"]["answer"] == "Marrowgate" and plain["q4"]["answer"] == "Paris"
    assert results["full"]["em"] > results["plain_rag"]["em"]
    assert full["q2"]["golds"] == ["the silver crown"] and full["q6"]["relevant"] == []


def test_retrieval_runs_are_documents_and_hops(run_dir):
    out, _ = run_dir
    preds = predictions(out)
    full = {p["qid"]: p for p in preds if p["config"] == "full"}
    # The long Colosseum document is two chunks; it is ranked once, as its document id.
    q4 = full["q4"]
    assert q4["retrieved"][0] == "d7" and q4["retrieved"].count("d7") == 1
    assert any(p.startswith("d7#") for p in q4["retrieved_passages"])
    assert len(q4["retrieved"]) < len(q4["retrieved_passages"])
    # A nested question is answered hop by hop: its run comes from the hop questions.
    assert full["q5"]["retrieval_from"] == "hops" and {"d5", "d1"} <= set(full["q5"]["retrieved"][:4])
    no_rewrite = next(p for p in preds if p["config"] == "rewriter_off" and p["qid"] == "q5")
    assert no_rewrite["retrieval_from"] == "trace"
    for name in CONFIGS:
        run = read_trec(out / f"run_{name}.trec")
        for p in preds:
            if p["config"] == name:
                ranked = sorted(run[p["qid"]], key=lambda d: -run[p["qid"]][d])
                assert ranked == p["retrieved"]


def test_written_retrieval_metrics_equal_pytrec_eval(run_dir):
    pytrec_eval = pytest.importorskip("pytrec_eval")
    out, _ = run_dir
    rows = {r["config"]: r for r in json.loads((out / "metrics.json").read_text())["runs"]}
    qrels: dict[str, dict[str, int]] = {}
    for q, d, g in QRELS:
        if q != "q7":  # q7 has no gold answer, so it is not evaluated
            qrels.setdefault(q, {})[d] = g
    judged = [q for q, docs in qrels.items() if any(g >= 1 for g in docs.values())]
    evaluator = pytrec_eval.RelevanceEvaluator(
        {q: qrels[q] for q in judged}, {"recall.1,5,10", "ndcg_cut.1,5,10", "success.1,5,10", "recip_rank"})
    differ = set()
    for name in CONFIGS:
        per_query = evaluator.evaluate(read_trec(out / f"run_{name}.trec"))
        for k in (1, 5, 10):
            for ours, theirs in (("recall", f"recall_{k}"), ("ndcg", f"ndcg_cut_{k}"), ("hit", f"success_{k}")):
                ref = sum(per_query.get(q, {}).get(theirs, 0.0) for q in judged) / len(judged)
                assert rows[name][f"{ours}@{k}"] == pytest.approx(ref, abs=1e-6), (name, ours, k)
            rr = [per_query.get(q, {}).get("recip_rank", 0.0) for q in judged]
            ref = sum(v if v >= 1 / k - 1e-12 else 0.0 for v in rr) / len(judged)
            assert rows[name][f"mrr@{k}"] == pytest.approx(ref, abs=1e-6), (name, k)
        differ.add(round(rows[name]["ndcg@10"], 6))
    assert 0.0 < min(differ) and max(differ) < 1.0  # neither trivially perfect nor empty


def test_store_is_reused_rebuilt_or_refused(tmp_path, folder):
    out = tmp_path / "run"
    kwargs = {"embedder": HashEmbedder(), "generator": generator(), "configs": ["full"], "show_progress": False}
    first = run_qa_eval(folder, out, **kwargs)
    key = json.loads((out / "store" / KEY_FILE).read_text())
    assert key["embedder"] == "hash-64" and len(key["corpus_sha256"]) == 64
    with pytest.raises(ConfigError, match="not empty"):
        run_qa_eval(folder, out, **kwargs)
    again = run_qa_eval(folder, out, overwrite=True, **kwargs)
    assert "(reused)" in (out / "summary.md").read_text() and again["full"]["em"] == first["full"]["em"]
    # A changed corpus rebuilds the run's own store; someone else's store is refused.
    changed = write_folder(tmp_path / "changed", corpus=CORPUS[:-1] + [("d8", "Banana", "Bananas are blue.")])
    run_qa_eval(changed, out, overwrite=True, **kwargs)
    assert "(built)" in (out / "summary.md").read_text()
    assert json.loads((out / "store" / KEY_FILE).read_text())["corpus_sha256"] != key["corpus_sha256"]
    with pytest.raises(ConfigError, match="another corpus or embedder"):
        run_qa_eval(folder, tmp_path / "run2", store=out / "store", **kwargs)
    shared = tmp_path / "shared-store"
    run_qa_eval(changed, tmp_path / "run3", store=shared, limit=2, k=3, **kwargs)
    rows = json.loads((tmp_path / "run3" / "metrics.json").read_text())["runs"]
    assert rows[0]["questions"] == 2 and "recall@3" in rows[0] and "recall@5" not in rows[0]
    assert not (tmp_path / "run3" / "store").exists() and (shared / KEY_FILE).is_file()


# ------------------------------------------------------------------------------ command line


@pytest.fixture()
def fake_generator(monkeypatch):
    gen = generator()
    monkeypatch.setattr(cli, "_generator", lambda args: gen)
    return gen


def run_cli(capsys, *argv):
    code = cli.main(["-q", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_eval_qa(tmp_path, folder, capsys, fake_generator):
    out_dir = tmp_path / "run"
    code, out, _ = run_cli(capsys, "eval", "qa", "--corpus", str(folder), "--out", str(out_dir),
                           "--embedder", "hash-64", "--configs", "full,plain_rag", "--json")
    assert code == 0
    printed = json.loads(out)
    assert printed == json.loads((out_dir / "metrics.json").read_text())
    assert [r["config"] for r in printed["runs"]] == ["full", "plain_rag"]
    code, out, _ = run_cli(capsys, "eval", "qa", "--corpus", str(folder), "--out", str(out_dir), "--overwrite",
                           "--embedder", "hash-64", "--configs", "full", "--limit", "3", "-k", "5")
    assert code == 0 and out.startswith("| config | em |") and "| full |" in out and str(out_dir) in out
    assert json.loads((out_dir / "config.json").read_text())["questions"] == 3


def test_cli_errors_are_one_line(tmp_path, folder, capsys, fake_generator):
    (folder / "answers.jsonl").unlink()
    code, out, err = run_cli(capsys, "eval", "qa", "--corpus", str(folder), "--out", str(tmp_path / "a"),
                             "--embedder", "hash-64")
    assert code == 2 and out == "" and err.count("\n") == 1 and "has no answers.jsonl" in err
    code, _, err = run_cli(capsys, "eval", "qa", "--corpus", str(tmp_path), "--out", str(tmp_path / "b"))
    assert code == 2 and err.count("\n") == 1 and "not a BEIR folder" in err
    write_folder(folder)
    (folder / "answers.jsonl").write_text('{"_id": "q1", "answers": ["x"]}\n{"_id": "q2"}\n')
    code, _, err = run_cli(capsys, "eval", "qa", "--corpus", str(folder), "--out", str(tmp_path / "c"),
                           "--embedder", "hash-64")
    assert code == 2 and err.count("\n") == 1 and "answers.jsonl:2" in err
    code, _, err = run_cli(capsys, "eval", "qa", "--corpus", str(folder), "--out", str(tmp_path / "d"),
                           "--configs", "full,bogus")
    assert code == 2 and "bogus" in err
