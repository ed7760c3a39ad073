"""Ray paths on a real local Ray instance (two CPUs): ingestion and evaluation over workers."""

from __future__ import annotations

import functools
import sys

import pytest

from rag.errors import ConfigError, MissingDependencyError
from rag.memory.store import Store
from rag.pipeline import Pipeline, PipelineConfig
from rag.testing import HashEmbedder, ScriptedGenerator, tiny_corpus
from rag.types import Passage, Query

ray = pytest.importorskip("ray")

from rag.integrations.ray import AnswerPool, ray_answer_many, ray_ingest  # noqa: E402


@pytest.fixture(scope="module")
def ray_local():
    # local_mode is gone from Ray (2.60 raises); a small real instance starts in ~10 s.
    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    if started:
        ray.shutdown()


def _passages(n: int) -> list[Passage]:
    words = ["harbour", "crane", "lantern", "festival", "river", "bridge", "orchard", "meadow"]
    return [Passage(f"p{i}", f"The {words[i % 8]} of town {i} is near the {words[(i * 3) % 8]}.") for i in range(n)]


def test_ray_ingest_matches_a_local_ingest(tmp_path, ray_local):
    local = Store(tmp_path / "local", HashEmbedder())
    local.add_passages(_passages(40) + tiny_corpus())
    distributed = Store(tmp_path / "ray", HashEmbedder())
    own = distributed.embedder
    report = ray_ingest(distributed, _passages(40) + tiny_corpus(), num_workers=2, batch_size=16)
    try:
        assert report.added == 40 + len(tiny_corpus())
        assert distributed.embedder is own and own.calls == 0  # the workers embedded, not this process
        for q in ["harbour crane town 7", "What is the capital of Veldoria?", "lantern festival"]:
            want = [(h.passage.id, round(h.score, 6)) for h in local.search(q, k=5)]
            assert [(h.passage.id, round(h.score, 6)) for h in distributed.search(q, k=5)] == want
        again = ray_ingest(distributed, _passages(40), num_workers=2)
        assert again.added == 0 and again.duplicates == 40
    finally:
        local.close()
        distributed.close()


def test_ray_ingest_reads_a_corpus_path(tmp_path, ray_local):
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("\n".join(
        f'{{"_id": "d{i}", "title": "", "text": "Document {i} mentions the meadow orchard {i}."}}'
        for i in range(12)) + "\n", encoding="utf-8")
    with Store(tmp_path / "s", HashEmbedder()) as store:
        report = ray_ingest(store, corpus, num_workers=2)
        assert report.added == 12 and len(store) == 12
        assert store.search("meadow orchard 5", k=1)[0].passage.id == "d5"
    assert (tmp_path / "s" / "index" / "manifest.json").exists()  # the snapshot was saved


def test_ray_ingest_refuses_another_embedder(tmp_path, ray_local):
    with Store(tmp_path / "s", HashEmbedder(64)) as store:
        with pytest.raises(ConfigError, match="hash-32"):
            ray_ingest(store, tiny_corpus(), num_workers=1, embedder_factory=functools.partial(HashEmbedder, 32))
        assert len(store) == 0


def test_ray_answer_many_matches_the_pipeline(tmp_path, ray_local):
    path = tmp_path / "store"
    with Store(path, HashEmbedder()) as store:
        store.add_passages(tiny_corpus())
        store.add_passages([Passage("alice-note", "The capital of Veldoria is Ostrava.", kind="note",
                                    namespace="alice")])
        questions = ["What is the capital of Veldoria?", Query("What is the capital of Veldoria?", namespace="alice"),
                     "Where is the lantern festival?", "What colour are bananas?", "Who built the bridge?"]
        want = Pipeline(store, ScriptedGenerator(default="unknown"), PipelineConfig(k=4)).answer_many(questions)
    got = ray_answer_many(path, questions, num_workers=2, batch_size=2, pipeline_config=PipelineConfig(k=4),
                          generator_factory=functools.partial(ScriptedGenerator, default="unknown"),
                          embedder_factory=HashEmbedder)
    assert [(a.question, a.text, a.source, a.citations) for a in got] == \
        [(a.question, a.text, a.source, a.citations) for a in want]
    assert got[0].text != got[1].text  # the namespaces travelled with the questions


def test_missing_ray_names_the_install_command(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "ray", None)
    with Store(tmp_path / "s", HashEmbedder()) as store, pytest.raises(MissingDependencyError, match="pip install"):
        ray_ingest(store, tiny_corpus())


def test_bad_worker_counts_are_refused(tmp_path):
    with Store(tmp_path / "s", HashEmbedder()) as store:
        for bad in (0, -1, True, 1.5):
            with pytest.raises(ConfigError, match="num_workers"):
                ray_ingest(store, tiny_corpus(), num_workers=bad)
    assert ray_answer_many(tmp_path / "s", [], generator_factory=ScriptedGenerator) == []


def test_cli_index_with_workers(tmp_path, capsys, ray_local):
    from rag import cli

    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("".join(f'{{"_id": "{p.id}", "title": "{p.title}", "text": "{p.text}"}}\n'
                              for p in tiny_corpus()), encoding="utf-8")
    code = cli.main(["-q", "index", "--corpus", str(corpus), "--store", str(tmp_path / "s"),
                     "--embedder", "hash-64", "--workers", "2", "--json"])
    out = capsys.readouterr().out
    assert code == 0 and '"added": 8' in out
    with Store(tmp_path / "s", HashEmbedder()) as store:
        assert store.search("What is the capital of Veldoria?", k=1)[0].passage.id == "t1"


def test_cli_workers_without_ray_is_one_line_error(tmp_path, capsys, monkeypatch):
    from rag import cli

    monkeypatch.setitem(sys.modules, "ray", None)
    corpus = tmp_path / "c.txt"
    corpus.write_text("Some text about harbours.\n", encoding="utf-8")
    code = cli.main(["-q", "index", "--corpus", str(corpus), "--store", str(tmp_path / "s"),
                     "--embedder", "hash-64", "--workers", "2"])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("rag: error:") and "pip install" in err


def test_answer_pool_keeps_its_actors_warm_across_calls(tmp_path, ray_local):
    path = tmp_path / "store"
    with Store(path, HashEmbedder()) as store:
        store.add_passages(tiny_corpus())
        questions = ["What is the capital of Veldoria?", "Where is the lantern festival?", "Who built the bridge?"]
        want = Pipeline(store, ScriptedGenerator(default="unknown"), PipelineConfig(k=4)).answer_many(questions)
    made = tmp_path / "made.txt"

    def make_generator():  # a closure: Ray ships it by value; it notes each actor that calls it
        import os

        from rag.testing import ScriptedGenerator

        with open(made, "a", encoding="utf-8") as handle:
            handle.write(f"{os.getpid()}\n")
        return ScriptedGenerator(default="unknown")

    def key(answers):
        return [(a.question, a.text, a.source, a.citations) for a in answers]

    with AnswerPool(path, generator_factory=make_generator, num_workers=2, batch_size=1,
                    pipeline_config=PipelineConfig(k=4), embedder_factory=HashEmbedder) as pool:
        assert key(pool.answer_many(questions)) == key(want)
        assert key(pool.answer_many(questions[::-1])) == key(want)[::-1]
        assert pool.answer_many([]) == []
        pids = pool.pids
    assert sorted(int(pid) for pid in made.read_text().split()) == sorted(pids)  # once per actor, not per call
    with pytest.raises(ConfigError, match="closed"):
        pool.answer_many(questions)
    ray_answer_many(path, questions, generator_factory=make_generator, num_workers=2, batch_size=1,
                    embedder_factory=HashEmbedder)
    assert len(made.read_text().split()) == 4  # a one-shot call starts (and loads) its actors again


def test_answer_pool_refuses_to_share_a_qdrant_local_folder(tmp_path):
    from rag.integrations.qdrant import record_backend

    with Store(tmp_path / "s", HashEmbedder()) as store:
        store.add_passages(tiny_corpus())
    record_backend(tmp_path / "s", path=tmp_path / "qdrant")
    with pytest.raises(ConfigError, match="local mode"):
        AnswerPool(tmp_path / "s", generator_factory=ScriptedGenerator, num_workers=2, embedder_factory=HashEmbedder)
    with pytest.raises(ConfigError, match="batch_size"):
        AnswerPool(tmp_path / "s", generator_factory=ScriptedGenerator, batch_size=0)


def test_ray_own_output_follows_the_ray_logger_level(monkeypatch):
    import logging
    import types

    from rag.integrations import ray as rag_ray

    calls = []
    fake = types.SimpleNamespace(is_initialized=lambda: False, init=lambda **kw: calls.append(kw))
    monkeypatch.setitem(sys.modules, "ray", fake)
    monkeypatch.setattr(logging.getLogger("ray"), "level", logging.ERROR)  # what `rag -q` sets
    rag_ray._connect(None)
    monkeypatch.setattr(logging.getLogger("ray"), "level", logging.NOTSET)  # a library user's default
    rag_ray._connect(None)
    assert [(c["logging_level"], c["log_to_driver"]) for c in calls] == [(logging.ERROR, False), (logging.INFO, True)]
