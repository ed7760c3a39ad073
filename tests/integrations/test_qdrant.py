"""QdrantIndex beyond the shared retrieval contract: its persistence record, its BM25
weights against the library's BM25, the folder lock of local mode, the recorded backend
and the command line. Runs Qdrant's local mode (no server, no network)."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import numpy as np
import pytest

from rag import cli
from rag.errors import ConfigError, MissingDependencyError, StoreError
from rag.memory.index import IndexBatch, IndexMeta
from rag.memory.sparse import BM25Index
from rag.memory.store import Store
from rag.testing import HashEmbedder, ScriptedGenerator, tiny_corpus
from rag.types import Passage

pytest.importorskip("qdrant_client")

from qdrant_client import QdrantClient, models  # noqa: E402

from rag.integrations.qdrant import (  # noqa: E402
    BACKEND_FILE,
    QdrantIndex,
    index_for_store,
    record_backend,
    term_id,
)

TEXTS = [
    "the lighthouse of brinmoor is painted red and white",
    "brinmoor harbour has a lighthouse and a crane",
    "the crane in the harbour lifts containers",
    "red apples grow in the orchard of brinmoor",
    "a lantern festival is held in marrowgate every winter",
    "marrowgate lantern lantern lantern makers sell red lanterns",
]


def meta(uid: str = "store-a", dim: int = 8, embedder: str = "hash-8") -> IndexMeta:
    return IndexMeta(uid, embedder, dim, Path("unused"))


def batch(keys, texts, dim: int = 8, namespaces=None, kinds=None) -> IndexBatch:
    vectors = HashEmbedder(dim).embed_documents(list(texts))
    return IndexBatch(list(keys), vectors, list(texts), namespaces or ["shared"] * len(keys),
                      kinds or ["passage"] * len(keys))


def sparse_scores(index: QdrantIndex, query: str) -> dict[int, float]:
    terms = sorted({term_id(t) for t in query.split()})
    hits = index.client.query_points(index.collection_name, query=models.SparseVector(indices=terms,
                                     values=[1.0] * len(terms)), using="sparse", limit=100).points
    return {int(p.id): p.score for p in hits}


@pytest.mark.parametrize("b", [0.75, 0.0])
def test_sparse_side_scores_are_the_library_bm25(b):
    index = QdrantIndex(location=":memory:", b=b)
    index.open(meta(), upto=0)
    index.add(batch(range(1, len(TEXTS) + 1), TEXTS))
    reference = BM25Index(b=b)
    reference.add(list(range(1, len(TEXTS) + 1)), TEXTS)
    for query in ["lighthouse brinmoor", "red lantern", "crane harbour containers"]:
        want = dict(reference.search(query, k=100))
        got = sparse_scores(index, query)
        assert set(got) == set(want)
        assert np.allclose([got[k] for k in want], [want[k] for k in want], rtol=1e-4)
    index.close()


def test_deletes_update_the_document_frequencies():
    # With b=0 the document weights do not depend on avgdl, so the scores after deletes
    # must equal the library's BM25 exactly: only a live IDF gets that right.
    index = QdrantIndex(location=":memory:", b=0.0)
    index.open(meta(), upto=0)
    index.add(batch(range(1, len(TEXTS) + 1), TEXTS))
    index.remove([2, 4, 99])
    reference = BM25Index(b=0.0)
    reference.add(list(range(1, len(TEXTS) + 1)), TEXTS)
    reference.remove([2, 4])
    want = dict(reference.search("brinmoor lighthouse red", k=100))
    got = sparse_scores(index, "brinmoor lighthouse red")
    assert set(got) == set(want) == {1, 6}
    assert np.allclose([got[k] for k in want], [want[k] for k in want], rtol=1e-4)
    assert len(index) == len(TEXTS) - 2
    index.close()


def test_reopening_resumes_from_the_recorded_change(tmp_path):
    index = QdrantIndex(path=tmp_path / "q")
    assert index.open(meta(), upto=0) == 0
    index.add(batch([1, 2, 3], TEXTS[:3]))
    index.persist(meta(), 7)
    index.close()
    again = QdrantIndex(path=tmp_path / "q")
    assert again.open(meta(), upto=9) == 7
    assert len(again) == 3
    assert again.search("crane harbour", HashEmbedder(8).embed_query("crane harbour"), 1,
                        namespaces=frozenset({"shared"}))[0][0] == 3
    again.close()


@pytest.mark.parametrize(("other", "upto", "why"), [
    (meta(uid="store-b"), 9, "stale"),
    (meta(embedder="other-8"), 9, "stale"),
    (meta(), 5, "ahead of the database"),
])
def test_a_collection_that_does_not_match_is_rebuilt(tmp_path, caplog, other, upto, why):
    index = QdrantIndex(path=tmp_path / "q", collection="shared-name")
    index.open(meta(), upto=0)
    index.add(batch([1, 2], TEXTS[:2]))
    index.persist(meta(), 7)
    index.close()
    again = QdrantIndex(path=tmp_path / "q", collection="shared-name")
    with caplog.at_level(logging.WARNING, logger="rag.integrations.qdrant"):
        assert again.open(other, upto=upto) == 0
    assert why in caplog.text and "shared-name" in caplog.text
    assert len(again) == 0
    again.close()


def test_a_collection_never_persisted_is_rebuilt_over_not_wiped(tmp_path):
    # On a shared server another process may be filling it: it must not be wiped.
    index = QdrantIndex(path=tmp_path / "q")
    index.open(meta(), upto=0)
    index.add(batch([1, 2], TEXTS[:2]))
    index.close()  # crashed before persist: the points are there, the change seq is not
    again = QdrantIndex(path=tmp_path / "q")
    assert again.open(meta(), upto=4) == 0 and len(again) == 2
    again.close()


def test_a_store_that_crashed_before_persisting_recovers(tmp_path):
    path = tmp_path / "s"
    store = Store(path, HashEmbedder(), index=QdrantIndex(path=tmp_path / "q"))
    store.add_passages(tiny_corpus())
    store.sync()  # indexed, never persisted
    store.remove(["t1"])  # in the database only
    store.index.close()  # the process dies: no Store.close, no persist
    with Store(path, HashEmbedder(), index=QdrantIndex(path=tmp_path / "q")) as again:
        hits = again.search("capital of Veldoria", k=len(tiny_corpus()))
        assert "t1" not in [h.passage.id for h in hits]
        assert len(hits) == len(tiny_corpus()) - 1


def test_a_foreign_collection_is_never_deleted(tmp_path):
    client = QdrantClient(location=":memory:")
    client.create_collection("theirs", vectors_config=models.VectorParams(size=8, distance=models.Distance.DOT))
    client.upsert("theirs", points=[models.PointStruct(id=5, vector=[0.1] * 8, payload={"x": 1})], wait=True)
    index = QdrantIndex(client=client, collection="theirs")
    with pytest.raises(StoreError, match="not made by this library"):
        index.open(meta(), upto=3)
    assert client.count("theirs").count == 1
    index.close()
    assert client.collection_exists("theirs")  # an injected client stays open


def test_store_defaults_to_local_mode_in_its_index_folder(tmp_path):
    with Store(tmp_path / "s", HashEmbedder(), index=QdrantIndex()) as store:
        store.add_passages(tiny_corpus())
        assert store.search("What is the capital of Veldoria?", k=1)[0].passage.id == "t1"
        assert store.index.collection_name == f"rag-{store._uid}"
    assert (tmp_path / "s" / "index" / "qdrant" / "meta.json").exists()


def test_local_mode_folder_is_one_client_at_a_time(tmp_path):
    first = Store(tmp_path / "s", HashEmbedder(), index=QdrantIndex(path=tmp_path / "q"))
    first.add_passages(tiny_corpus())
    assert len(first.search("Veldoria", k=3)) == 3  # the first store's index holds the folder
    second = Store(tmp_path / "s", HashEmbedder(), index=QdrantIndex(path=tmp_path / "q"))
    try:
        with pytest.raises(StoreError, match="another client"):
            second.search("Veldoria", k=1)
    finally:
        first.close()
    try:
        assert len(second.search("Veldoria", k=3)) == 3  # free once the first store closed
    finally:
        second.close()


def test_unusable_before_open_and_with_bad_arguments(tmp_path):
    with pytest.raises(StoreError, match="open"):
        QdrantIndex(location=":memory:").add(batch([1], TEXTS[:1]))
    with pytest.raises(ConfigError, match="one of url, path"):
        QdrantIndex("http://localhost:6333", path=tmp_path)
    with pytest.raises(ConfigError, match="BM25"):
        QdrantIndex(location=":memory:", b=2.0)
    with pytest.raises(ConfigError, match="rrf_k"):
        QdrantIndex(location=":memory:", rrf_k=0)
    index = QdrantIndex(location=":memory:")
    index.open(meta(), upto=0)
    with pytest.raises(ConfigError, match="positive"):
        index.add(batch([0], TEXTS[:1]))
    assert index.search("red", np.zeros(8, np.float32), 3, namespaces=frozenset()) == []
    index.close()


def test_filters_and_parametrised_fusion():
    index = QdrantIndex(location=":memory:", rrf_k=60)
    index.open(meta(), upto=0)
    index.add(batch([1, 2, 3], TEXTS[:3], namespaces=["shared", "alice", "alice"], kinds=["passage", "note", "qa"]))
    vec = HashEmbedder(8).embed_query("brinmoor lighthouse")
    hits = index.search("brinmoor lighthouse", vec, 3, namespaces=frozenset({"alice"}), kinds=frozenset({"note"}))
    assert [key for key, _ in hits] == [2]
    assert hits[0][1] == pytest.approx(2 / 60)  # first on both sides: 1 / (60 + 0) twice (ranks from 0)
    assert index.search("brinmoor", vec, 3, namespaces=frozenset({"alice"}), kinds=frozenset()) == []
    # An empty query and a zero vector search nothing rather than fail.
    assert index.search("the of", np.zeros(8, np.float32), 3, namespaces=frozenset({"shared"})) == []
    index.close()


def test_api_key_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("QDRANT_API_KEY", "secret")
    assert QdrantIndex("http://qdrant.invalid:6333").api_key == "secret"  # no connection until open
    assert QdrantIndex(location=":memory:").api_key is None


def test_missing_client_names_the_install_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "qdrant_client", None)
    with pytest.raises(MissingDependencyError, match="pip install"):
        QdrantIndex(location=":memory:")


def test_recorded_backend_round_trip(tmp_path):
    store = tmp_path / "s"
    store.mkdir()
    assert index_for_store(store) is None
    record_backend(store, path="relative/q", collection="mine")
    recorded = json.loads((store / BACKEND_FILE).read_text())
    assert recorded["path"] == str(Path("relative/q").resolve()) and "api_key" not in recorded
    index = index_for_store(store)
    assert isinstance(index, QdrantIndex) and index.collection == "mine" and index.path.is_absolute()
    override = index_for_store(store, url="http://other:6333")
    assert override.url == "http://other:6333" and override.path is None
    with pytest.raises(ConfigError):
        record_backend(store)
    (store / BACKEND_FILE).write_text('{"backend": "milvus"}')
    with pytest.raises(StoreError, match="milvus"):
        index_for_store(store)


def _cli(capsys, *argv):
    code = cli.main(["-q", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_index_records_qdrant_and_later_commands_use_it(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(cli, "_generator", lambda args: ScriptedGenerator(default="unknown"))
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("".join(json.dumps({"_id": p.id, "title": p.title, "text": p.text}) + "\n"
                              for p in tiny_corpus()))
    store, qdrant = tmp_path / "store", tmp_path / "qdrant"
    code, out, _ = _cli(capsys, "index", "--corpus", str(corpus), "--store", str(store), "--embedder", "hash-64",
                        "--qdrant-path", str(qdrant), "--json")
    assert code == 0 and json.loads(out)["added"] == len(tiny_corpus())
    assert json.loads((store / BACKEND_FILE).read_text())["path"] == str(qdrant.resolve())
    assert (qdrant / "meta.json").exists() and not (store / "index" / "manifest.json").exists()
    code, out, _ = _cli(capsys, "edit", "add", "The capital of Veldoria is Ostrava.", "--store", str(store), "--json")
    assert code == 0
    code, out, _ = _cli(capsys, "ask", "What is the capital of Veldoria?", "--store", str(store), "--json")
    answer = json.loads(out)
    assert code == 0 and answer["answer"] == "Ostrava" and answer["source"] == "memory"
    assert not (store / "index" / "manifest.json").exists()  # no LocalIndex snapshot: Qdrant answered
    with Store(store, HashEmbedder(64), index=QdrantIndex(path=qdrant)) as opened:
        opened.sync()
        assert len(opened.index) == len(tiny_corpus()) + 1


def test_cli_rejects_both_backends(tmp_path, capsys):
    with pytest.raises(SystemExit):
        cli.main(["index", "--corpus", "c", "--qdrant-url", "http://x:6333", "--qdrant-path", str(tmp_path)])
    assert "not allowed with" in capsys.readouterr().err


def test_passages_keep_their_namespace_through_a_reopen(tmp_path):
    path = tmp_path / "s"
    with Store(path, HashEmbedder(), index=QdrantIndex(path=tmp_path / "q")) as store:
        store.add_passages([Passage("a", "The vault code is 1234.", kind="note", namespace="alice")])
    with Store(path, HashEmbedder(), index=QdrantIndex(path=tmp_path / "q")) as store:
        assert [h.passage.id for h in store.search("vault code", k=3, namespace="alice")] == ["a"]
        assert store.search("vault code", k=3, namespace="bob") == []


def test_docstring_example_runs():
    import doctest

    import rag.integrations.qdrant as module

    result = doctest.testmod(module)
    assert result.attempted >= 5 and result.failed == 0


def test_cli_eval_qa_searches_a_store_where_it_records_its_index(tmp_path, capsys, monkeypatch):
    from tests.evaluation.test_qa import generator, write_folder

    monkeypatch.setattr(cli, "_generator", lambda args: generator())
    searched = []
    real_search = QdrantIndex.search
    monkeypatch.setattr(QdrantIndex, "search", lambda self, *a, **k: searched.append(1) or real_search(self, *a, **k))
    folder, store, qdrant = write_folder(tmp_path / "beir"), tmp_path / "store", tmp_path / "qdrant"
    code, _, err = _cli(capsys, "index", "--corpus", str(folder), "--store", str(store), "--embedder", "hash-64",
                        "--qdrant-path", str(qdrant))
    assert code == 0, err
    searched.clear()
    code, out, err = _cli(capsys, "eval", "qa", "--corpus", str(folder), "--store", str(store), "--embedder",
                          "hash-64", "--out", str(tmp_path / "run"), "--configs", "plain_rag", "--json")
    assert code == 0, err
    assert json.loads(out)["runs"][0]["config"] == "plain_rag"
    assert searched  # the questions were searched in Qdrant ...
    assert not (store / "index" / "manifest.json").exists()  # ... and no LocalIndex was built beside it
