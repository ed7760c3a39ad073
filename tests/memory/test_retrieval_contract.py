"""The retrieval contract: written once, run against every RetrievalIndex implementation.

A backend joins by adding a factory to ``BACKENDS``: ``factory(tmp_path) -> RetrievalIndex``.
A factory called twice with the same folder must reach the same persisted state (that is
what reopening a store means).
"""

from __future__ import annotations

import numpy as np
import pytest

from rag.memory.editor import KnowledgeEditor
from rag.memory.index import LocalIndex, RetrievalIndex
from rag.memory.store import Store
from rag.testing import HashEmbedder, tiny_corpus
from rag.types import Passage


def _local(tmp_path):
    return LocalIndex()


def _qdrant(tmp_path):
    # Local mode on disk: the same folder reopens the same collection.
    pytest.importorskip("qdrant_client")
    from rag.integrations.qdrant import QdrantIndex

    return QdrantIndex(path=tmp_path / "qdrant")


BACKENDS = {"local": _local, "qdrant": _qdrant}


@pytest.fixture(params=sorted(BACKENDS))
def make_index(request):
    return BACKENDS[request.param]


@pytest.fixture()
def open_store(tmp_path, make_index):
    opened: list[Store] = []

    def _open() -> Store:
        store = Store(tmp_path / "store", HashEmbedder(), index=make_index(tmp_path))
        opened.append(store)
        return store

    yield _open
    for store in opened:
        try:
            store.close()
        except Exception:  # noqa: BLE001 - a test may have closed it already
            pass


def ids(hits):
    return [h.passage.id for h in hits]


def test_backend_implements_the_protocol(make_index, tmp_path):
    assert isinstance(make_index(tmp_path), RetrievalIndex)


def test_finds_the_passage_that_answers(open_store):
    store = open_store()
    store.add_passages(tiny_corpus())
    assert ids(store.search("What is the capital of Veldoria?", k=1)) == ["t1"]
    hits = store.search("capital of Veldoria", k=3)
    assert len(hits) == 3 and len(set(ids(hits))) == 3
    assert [h.rank for h in hits] == [1, 2, 3]
    assert all(a.score >= b.score for a, b in zip(hits, hits[1:]))


def test_k_bounds_the_results(open_store):
    store = open_store()
    store.add_passages(tiny_corpus())
    assert len(store.search("Veldoria", k=2)) == 2
    assert len(store.search("Veldoria", k=100)) == len(tiny_corpus())


def test_empty_store_returns_nothing(open_store):
    assert open_store().search("anything at all", k=5) == []


def test_removed_passages_are_not_returned(open_store):
    store = open_store()
    store.add_passages(tiny_corpus())
    store.remove(["t1"])
    assert "t1" not in ids(store.search("What is the capital of Veldoria?", k=8))


def test_a_new_version_of_an_id_replaces_the_old(open_store):
    store = open_store()
    store.add_passages([Passage("x", "The lighthouse of Brinmoor is painted red.")])
    store.add_passages([Passage("x", "The lighthouse of Brinmoor is painted green.")])
    hits = store.search("lighthouse Brinmoor painted", k=5)
    assert ids(hits) == ["x"] and "green" in hits[0].passage.text


def test_namespaces_never_leak(open_store):
    store = open_store()
    store.add_passages(tiny_corpus())
    store.add_passages([Passage("alice-note", "The capital of Veldoria is Ostrava.", kind="note",
                                namespace="alice")])
    assert "alice-note" in ids(store.search("capital of Veldoria", k=10, namespace="alice"))
    assert "alice-note" not in ids(store.search("capital of Veldoria", k=100, namespace="bob"))
    assert "alice-note" not in ids(store.search("capital of Veldoria", k=100))


def test_kind_filter(open_store):
    store = open_store()
    store.add_passages(tiny_corpus())
    store.add_passages([Passage("n1", "Veldoria's capital is Ostrava now.", kind="note"),
                        Passage("q1", "Q: What is the capital of Veldoria? A: Ostrava", kind="qa")])
    assert ids(store.search("capital of Veldoria", k=5, kinds=["note"])) == ["n1"]
    assert set(ids(store.search("capital of Veldoria", k=5, kinds=["note", "qa"]))) == {"n1", "q1"}
    assert {"n1", "q1"}.isdisjoint(ids(store.search("capital of Veldoria", k=20, kinds=["passage"])))


def test_filters_reach_past_many_better_ranked_passages(open_store):
    store = open_store()
    store.add_passages([Passage(f"n{i}", f"veldoria veldoria fact number {i}", kind="note") for i in range(300)])
    store.add_passages([Passage("deep", "an unrelated sentence about veldoria", namespace="carol")])
    assert ids(store.search("veldoria", k=1, namespace="carol", kinds=["passage"])) == ["deep"]
    assert ids(store.search("veldoria", k=1, namespace="dave", kinds=["passage"])) == []


def test_lexical_and_semantic_sides_both_count(open_store):
    store = open_store()
    store.add_passages(tiny_corpus())
    store.add_passages([Passage("code", "Serial number ZX-4471-Q belongs to the harbour crane.")])
    # A rare exact token is found (the sparse side) among natural-language passages.
    assert ids(store.search("ZX-4471-Q", k=1)) == ["code"]


def test_edits_are_visible_at_once_and_retractions_vanish(open_store):
    store = open_store()
    store.add_passages(tiny_corpus())
    editor = KnowledgeEditor(store)
    edit = editor.edit("The capital of Veldoria is Ostrava.")
    top = store.search("capital of Veldoria Ostrava", k=3)
    assert edit.passage_id in ids(top)
    editor.retract(edit.fact_id)
    assert edit.passage_id not in ids(store.search("capital of Veldoria Ostrava", k=20))


def test_reopening_keeps_everything_and_replays_later_changes(tmp_path, make_index):
    path = tmp_path / "store"
    store = Store(path, HashEmbedder(), index=make_index(tmp_path))
    store.add_passages(tiny_corpus())
    store.save_indexes()
    store.add_passages([Passage("late", "Marrowgate hosts the lantern festival.")])
    store.remove(["t8"])
    store.close()
    reopened = Store(path, HashEmbedder(), index=make_index(tmp_path))
    try:
        assert ids(reopened.search("lantern festival", k=1)) == ["late"]
        assert "t8" not in ids(reopened.search("bananas yellow", k=20))
        assert len(reopened.search("Veldoria", k=100)) == len(tiny_corpus())
    finally:
        reopened.close()


def test_another_process_writes_are_seen(tmp_path, make_index):
    path = tmp_path / "store"
    reader = Store(path, HashEmbedder(), index=make_index(tmp_path))
    reader.add_passages(tiny_corpus())
    assert ids(reader.search("lantern festival", k=1)) != ["late"]
    writer = Store(path, HashEmbedder(), index=make_index(tmp_path / "writer"))
    writer.add_passages([Passage("late", "Marrowgate hosts the lantern festival.")])
    writer.close()
    try:
        assert ids(reader.search("lantern festival", k=1)) == ["late"]
    finally:
        reader.close()


def test_scores_are_finite(open_store):
    store = open_store()
    store.add_passages(tiny_corpus())
    assert all(np.isfinite(h.score) for h in store.search("Veldoria river", k=8))
