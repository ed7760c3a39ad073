"""The knowledge-preference evaluation on a tiny invented BEIR folder, with fakes only."""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from pathlib import Path

import pytest

from rag.errors import ConfigError
from rag.evaluation.preference import (
    LEVELS,
    answer_shape,
    expected_level,
    load_fact_items,
    run_preference_eval,
    subsets,
)
from rag.pipeline import PipelineConfig
from rag.testing import HashEmbedder, ScriptedGenerator

#: Country -> capital: invented, all "The capital of X is Y." (one-word capitalised answers).
FACTS = {
    "Veldoria": "Marrowgate",
    "Ostravia": "Kelmshore",
    "Brennland": "Dunharrow",
    "Quellmark": "Saltreach",
    "Tiravon": "Embergate",
    "Lunessa": "Corvale",
    "Pranthos": "Westmire",
    "Harrowvale": "Ironholt",
    "Sylvaran": "Brightwater",
}
N = len(FACTS)


def _closed_book(subject: str) -> str:
    return f"{subject}polis"  # what the fake "remembers": wrong, but stable and non-empty


def _reply(prompt: str) -> str:
    if prompt.startswith("Context:"):
        return ""  # extraction reads these passages; the generator never needs to
    asked = re.findall(r"capital of (\w+)", prompt)  # the last question; examples come first
    return _closed_book(asked[-1]) if asked else ""


def write_beir(folder: Path, extra: bool = True) -> Path:
    (folder / "qrels").mkdir(parents=True)
    corpus, queries, answers, qrels = [], [], [], ["query-id\tcorpus-id\tscore"]
    for i, (country, capital) in enumerate(FACTS.items(), start=1):
        corpus.append({"_id": f"p{i}", "title": country, "text": f"The capital of {country} is {capital}."})
        queries.append({"_id": f"q{i}", "text": f"What is the capital of {country}?"})
        answers.append({"_id": f"q{i}", "answers": [capital]})
        qrels.append(f"q{i}\tp{i}\t1")
    if extra:
        # Two relevant passages: left out. Answer not in its passage: left out.
        corpus.append({"_id": "p98", "title": "Veldoria", "text": "Veldoria's capital city is Marrowgate."})
        queries.append({"_id": "q98", "text": "Which city is the seat of government of Veldoria?"})
        answers.append({"_id": "q98", "answers": ["Marrowgate"]})
        qrels += ["q98\tp1\t1", "q98\tp98\t1"]
        corpus.append({"_id": "p99", "title": "Tiravon", "text": "Tiravon is famous for its glass."})
        queries.append({"_id": "q99", "text": "What is the national bird of Tiravon?"})
        answers.append({"_id": "q99", "answers": ["heron"]})
        qrels.append("q99\tp99\t1")
    for name, rows in (("corpus", corpus), ("queries", queries), ("answers", answers)):
        (folder / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    (folder / "qrels" / "test.tsv").write_text("\n".join(qrels) + "\n", encoding="utf-8")
    return folder


def _run(tmp: Path, name: str, **kwargs):
    gen = ScriptedGenerator(_reply)
    metrics = run_preference_eval(tmp / "beir", tmp / name, embedder=HashEmbedder(), generator=gen,
                                  show_progress=False, **kwargs)
    preds = [json.loads(line) for line in (tmp / name / "predictions.jsonl").read_text().splitlines()]
    return metrics, preds, gen


@pytest.fixture(scope="module")
def default_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("pref")
    write_beir(tmp / "beir")
    metrics, preds, gen = _run(tmp, "run")
    return tmp, metrics, preds, gen


def test_subsets_are_all_non_empty_combinations():
    sizes = Counter(len(s) for s in subsets())
    assert sizes == {1: 4, 2: 6, 3: 4, 4: 1}
    assert len(set(subsets())) == 15


def test_expected_level_follows_order():
    assert expected_level(("memory", "corpus"), LEVELS) == "memory"
    assert expected_level(("memory", "corpus"), ("parametric", "corpus", "memory", "user")) == "corpus"
    assert expected_level(("parametric",), ("user", "memory")) == "none"


def test_loader_keeps_single_passage_well_formed_facts(tmp_path):
    items, skipped = load_fact_items(write_beir(tmp_path / "beir"))
    assert sorted(i.qid for i in items) == sorted(f"q{i}" for i in range(1, N + 1))
    assert skipped == {"not_single_passage": 1, "answer_not_in_passage": 1}
    item = next(i for i in items if i.qid == "q1")
    assert item.gold == "Marrowgate"
    assert item.with_answer("Kelmshore") == "The capital of Veldoria is Kelmshore."
    assert answer_shape("Ludmila Novakovic") == "AA" and answer_shape("1979") == "9"


def test_cases_cover_every_subset_per_question(default_run):
    _, metrics, preds, _ = default_run
    assert metrics["questions"] == N and metrics["cases"] == 15 * N == len(preds)
    by_question = defaultdict(set)
    for p in preds:
        by_question[p["qid"]].add(tuple(p["subset"]))
    assert len(by_question) == N
    for seen in by_question.values():
        assert seen == set(subsets())  # all singles, pairs, triples and the full set
    # every case has its own namespace-level identity
    assert len({p["case"] for p in preds}) == len(preds)


def test_counterfactuals_are_other_questions_answers(default_run):
    _, _, preds, _ = default_run
    golds = set(FACTS.values())
    for p in preds:
        if p["subset"] != list(LEVELS):
            continue
        planted = p["planted"]
        capital = planted["corpus"]
        assert capital in golds
        assert planted["user"] in golds and planted["memory"] in golds
        assert len({capital, planted["user"], planted["memory"]}) == 3
        assert planted["parametric"] == _closed_book(next(c for c, v in FACTS.items() if v == capital))
        assert p["user_facts"] == [f"The capital of {next(c for c, v in FACTS.items() if v == capital)} "
                                   f"is {planted['user']}."]


def test_run_folder_is_written(default_run):
    tmp, metrics, _, _ = default_run
    run = tmp / "run"
    for name in ("config.json", "manifest.json", "predictions.jsonl", "metrics.json", "summary.md"):
        assert (run / name).is_file(), name
    rows = json.loads((run / "metrics.json").read_text())["runs"]
    assert [r["config"] for r in rows] == ["full"]
    assert rows[0]["obeyed"] == pytest.approx(metrics["obeyed"])
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["status"] == "completed" and manifest["n_predictions"] == 15 * N
    summary = (run / "summary.md").read_text()
    assert "Obeyed by expected winner" in summary
    for level in LEVELS:
        assert f"| {level} |" in summary
    assert set(metrics["source_adoption"]) >= set(LEVELS)
    assert metrics["latency_ms_p50"] >= 0


def test_default_order_is_obeyed(default_run):
    """Observed with HashEmbedder and the scripted generator: every level is obeyed in every
    case. The user fact and memory note ("The capital of X is Y'.") share the subject and
    the lexicon relation "capital" with the question, so the filter keeps them; the corpus
    passage is read by extraction; the parametric level wins only when it is alone."""
    _, metrics, preds, _ = default_run
    assert metrics["n_user"] == 8 * N and metrics["n_memory"] == 4 * N
    assert metrics["n_corpus"] == 2 * N and metrics["n_parametric"] == N
    for level in ("user", "memory", "corpus"):
        assert metrics[f"obeyed_{level}"] == 1.0, level
    assert metrics["obeyed_parametric"] == 1.0
    assert metrics["obeyed"] == 1.0
    assert metrics["obeyed_pairs"] == metrics["obeyed_triples"] == 1.0
    assert metrics["abstained"] == 0.0
    for p in preds:
        assert p["source"] == p["expected_level"]
        if p["source"] in ("memory", "corpus"):
            assert p["citations"]


def test_closed_book_answer_is_asked_once_per_question(default_run):
    _, _, _, gen = default_run
    closed = [p for p in gen.prompts if not p.startswith("Context:")]
    assert len(closed) == N


def test_wrong_order_changes_the_expected_winner(default_run):
    tmp, default_metrics, default_preds, _ = default_run
    order = ("parametric", "corpus", "memory", "user")
    metrics, preds, _ = _run(tmp, "reversed", config=PipelineConfig(order=order))
    for p in preds:
        assert p["expected_level"] == next(level for level in order if level in p["subset"])
    expected_before = {(p["qid"], tuple(p["subset"])): p["expected_level"] for p in default_preds}
    changed = [p for p in preds if expected_before[(p["qid"], tuple(p["subset"]))] != p["expected_level"]]
    assert len(changed) == 11 * N  # every case with two levels or more (6 + 4 + 1 subsets)
    assert metrics["n_parametric"] == 8 * N and metrics["n_corpus"] == 4 * N
    assert metrics["n_memory"] == 2 * N and metrics["n_user"] == N
    # The arbiter follows the order among the sources that answered: memory beats user and
    # corpus beats memory when parametric is absent.
    no_param = [p for p in preds if "parametric" not in p["subset"]]
    assert all(p["obeyed"] for p in no_param)
    # Observed pipeline behaviour: with parametric present the cases run in "fallback"
    # mode, where the closed-book answer is asked only when no other source answered, so
    # parametric never wins over another present source although the order ranks it first;
    # only the parametric-only cases are obeyed.
    with_param = [p for p in preds if "parametric" in p["subset"]]
    assert [p["subset"] for p in with_param if p["obeyed"]] == [["parametric"]] * N
    assert metrics["obeyed_parametric"] == pytest.approx(1 / 8)
    assert default_metrics["obeyed"] > metrics["obeyed"]


def test_bad_arguments(tmp_path):
    write_beir(tmp_path / "beir")
    with pytest.raises(ConfigError):
        run_preference_eval(tmp_path / "beir", tmp_path / "out", embedder=HashEmbedder(),
                            generator=ScriptedGenerator(_reply), limit=0, show_progress=False)


def test_limit_and_seed(tmp_path):
    write_beir(tmp_path / "beir")
    metrics, preds, _ = _run(tmp_path, "small", limit=3, seed=5)
    assert metrics["questions"] == 3 and len(preds) == 45
    again, preds2, _ = _run(tmp_path, "small2", limit=3, seed=5)
    assert [(p["qid"], p["planted"]) for p in preds] == [(p["qid"], p["planted"]) for p in preds2]


def test_cases_do_not_depend_on_what_the_fact_reader_can_read(tmp_path):
    """A sentence the fact reader misreads ("Lake Council" for the capital) is still a case:
    the old loader kept only sentences read_fact read back as the gold answer."""
    folder = write_beir(tmp_path / "beir", extra=False)
    with (folder / "corpus.jsonl").open("a") as f:
        f.write(json.dumps({"_id": "p50", "title": "Ostmark", "text": "Ostmark is governed from Kelvale by the Lake Council."}) + "\n")
    with (folder / "queries.jsonl").open("a") as f:
        f.write(json.dumps({"_id": "q50", "text": "What is the capital of Ostmark?"}) + "\n")
    with (folder / "answers.jsonl").open("a") as f:
        f.write(json.dumps({"_id": "q50", "answers": ["Kelvale"]}) + "\n")
    with (folder / "qrels" / "test.tsv").open("a") as f:
        f.write("q50\tp50\t1\n")
    items, skipped = load_fact_items(folder)
    item = next(i for i in items if i.qid == "q50")
    assert item.with_answer("Dunharrow") == "Ostmark is governed from Dunharrow by the Lake Council."
    assert skipped == {}


def test_counts_of_each_level_before_anything_is_left_out(default_run):
    _, metrics, _, _ = default_run
    # N usable questions and the one whose answer is not in its passage (q99)
    assert metrics["questions_before_leaving_out"] == N + 1
    assert [metrics[f"built_{level}"] for level in LEVELS] == [8 * (N + 1), 4 * (N + 1), 2 * (N + 1), N + 1]
    assert metrics["n_user"] == 8 * N  # scored: the left-out question's cases are not
