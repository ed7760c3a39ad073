import json
import logging

import pytest

from rag.errors import ConfigError, InputFormatError, StoreError, StoreNotFoundError
from rag.memory.store import Store
from rag.testing import HashEmbedder, tiny_corpus
from rag.types import Passage


def ids(hits):
    return [h.id for h in hits]


def test_search_ranks_relevant_passage_first(store):
    hits = store.search("What is the capital of Veldoria?", k=3)
    assert hits[0].id == "t1"
    assert [h.rank for h in hits] == [1, 2, 3]
    assert hits[0].score >= hits[1].score >= hits[2].score


def test_duplicates_by_content_are_skipped(store):
    report = store.add_passages([Passage("other-id", "The capital of Veldoria is Marrowgate.", title="Veldoria")])
    assert (report.added, report.duplicates) == (0, 1)
    assert len(store) == 8


def test_same_id_new_content_replaces_and_keeps_old_row(store):
    store.add_passages([Passage("t1", "The capital of Veldoria is Ostrava.", title="Veldoria")])
    assert len(store) == 8
    assert store.get(["t1"])[0].text.endswith("Ostrava.")
    assert "Marrowgate" not in " ".join(h.passage.text for h in store.search("capital of Veldoria", k=1))
    assert store._db.execute("SELECT COUNT(*) FROM passages WHERE id = 't1'").fetchone()[0] == 2


def test_remove_hides_passage(store):
    assert store.remove(["t1", "missing"]) == 1
    assert "t1" not in ids(store.search("capital of Veldoria", k=8))
    assert store.get(["t1"]) == []


def test_namespaces_never_leak(store):
    store.add_passages([
        Passage("a-note", "Veldoria's capital moved to Alphaville.", kind="note", namespace="alice"),
        Passage("b-note", "Veldoria's capital moved to Betatown.", kind="note", namespace="bob"),
    ])
    alice = ids(store.search("capital of Veldoria", k=10, namespace="alice"))
    bob = ids(store.search("capital of Veldoria", k=10, namespace="bob"))
    shared = ids(store.search("capital of Veldoria", k=10))
    assert "a-note" in alice and "b-note" not in alice
    assert "b-note" in bob and "a-note" not in bob
    assert "a-note" not in shared and "b-note" not in shared and "t1" in shared


def test_search_many_embeds_once_and_keeps_each_querys_namespace(store):
    store.add_passages([Passage("a-note", "Veldoria's capital moved to Alphaville.", kind="note", namespace="alice")])
    queries = ["capital of Veldoria", "capital of Veldoria", "Who wrote Moby-Dick?"]
    namespaces = ["alice", "shared", "alice"]
    calls = store.embedder.calls
    many = store.search_many(queries, 3, namespaces=namespaces)
    assert store.embedder.calls == calls + 1
    assert [ids(h) for h in many] == [ids(store.search(q, 3, namespace=n)) for q, n in zip(queries, namespaces)]
    assert "a-note" in ids(many[0]) and "a-note" not in ids(many[1])
    assert store.search_many([], 3) == []
    with pytest.raises(ConfigError, match="one namespace per query"):
        store.search_many(queries, 3, namespaces=["alice"])


def test_kind_filter(store):
    store.add_passages([Passage("n1", "Veldoria's capital is Ostrava now.", kind="note")])
    assert ids(store.search("capital of Veldoria", k=5, kinds=["note"])) == ["n1"]
    assert store.count("note") == 1 and store.count("passage") == 8


def test_filters_widen_the_candidate_pool(tmp_path):
    s = Store(tmp_path, HashEmbedder())
    # 300 notes rank above the one passage; a passage-only search must dig past all of them.
    s.add_passages([Passage(f"n{i}", f"veldoria veldoria fact number {i}", kind="note") for i in range(300)])
    s.add_passages([Passage("deep", "an unrelated sentence about veldoria", namespace="carol")])
    assert ids(s.search("veldoria", k=1, namespace="carol", kinds=["passage"])) == ["deep"]
    assert ids(s.search("veldoria", k=1, namespace="dave", kinds=["passage"])) == []
    assert len(s.search("veldoria", k=400, namespace="carol")) == 301


def test_unknown_kind_is_refused(store):
    with pytest.raises(ConfigError, match="kinds"):
        store.search("capital", kinds=["notes"])
    with pytest.raises(ConfigError, match="kind 'memo'"):
        store.add_passages([Passage("m1", "a memo", kind="memo")])


def test_reopen_uses_snapshot_and_replays_later_changes(tmp_path, caplog):
    s = Store(tmp_path, HashEmbedder())
    s.add_passages(tiny_corpus())
    s.save_indexes()
    s.add_passages([Passage("late", "Marrowgate hosts the lantern festival.")])
    s.remove(["t8"])
    s._db.close()  # a crash: no snapshot written after the last changes
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="rag.memory"):
        reopened = Store(tmp_path, HashEmbedder(), create=False)
        hits = ids(reopened.search("lantern festival", k=3))
    assert "rebuilding" not in caplog.text
    assert hits[0] == "late"
    assert "t8" not in ids(reopened.search("bananas yellow", k=9))
    reopened.close()


@pytest.mark.parametrize("damage", ["delete_manifest", "corrupt_faiss", "wrong_uid"])
def test_damaged_snapshot_is_rebuilt_with_a_log_line(tmp_path, caplog, damage):
    s = Store(tmp_path, HashEmbedder())
    s.add_passages(tiny_corpus())
    s.close()
    index = tmp_path / "index"
    if damage == "delete_manifest":
        (index / "manifest.json").unlink()
    elif damage == "corrupt_faiss":
        (index / "dense.faiss").write_bytes(b"\0" * 64)
    else:
        manifest = json.loads((index / "manifest.json").read_text())
        manifest["store_uid"] = "someone-else"
        (index / "manifest.json").write_text(json.dumps(manifest))
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="rag.memory"):
        reopened = Store(tmp_path, HashEmbedder())
        assert ids(reopened.search("capital of Veldoria", k=1)) == ["t1"]
    assert "rebuilding the indexes" in caplog.text
    reopened.close()


def test_other_embedder_is_refused(tmp_path):
    Store(tmp_path, HashEmbedder(32)).close()
    with pytest.raises(StoreError, match="built with embedder 'hash-32'"):
        Store(tmp_path, HashEmbedder(64))
    assert Store.embedder_of(tmp_path) == "hash-32"


def test_missing_store(tmp_path):
    with pytest.raises(StoreNotFoundError, match="no store at"):
        Store(tmp_path / "nothing", HashEmbedder(), create=False)
    with pytest.raises(StoreNotFoundError):
        Store.embedder_of(tmp_path / "nothing")


def test_two_handles_see_each_others_writes(tmp_path):
    a = Store(tmp_path, HashEmbedder())
    b = Store(tmp_path, HashEmbedder())
    a.add_passages(tiny_corpus())
    assert ids(b.search("capital of Veldoria", k=1)) == ["t1"]
    b.add_passages([Passage("from-b", "Ostrava is twinned with Marrowgate.")])
    assert "from-b" in ids(a.search("Ostrava twinned", k=2))
    a.close()
    b.close()


def test_strict_ingest_of_bad_file_writes_nothing(tmp_path):
    corpus = tmp_path / "c.jsonl"
    corpus.write_text('{"_id": "a", "text": "fine"}\n{oops\n')
    s = Store(tmp_path / "s", HashEmbedder())
    with pytest.raises(InputFormatError, match=r"c\.jsonl:2"):
        s.ingest(corpus, strict=True)
    assert len(s) == 0
    report = s.ingest(corpus)
    assert (report.added, report.malformed) == (1, 1)


def test_ingest_twice_is_idempotent(tmp_path):
    corpus = tmp_path / "c.jsonl"
    corpus.write_text("".join(json.dumps({"_id": p.id, "title": p.title, "text": p.text}) + "\n" for p in tiny_corpus()))
    s = Store(tmp_path / "s", HashEmbedder())
    assert s.ingest(corpus).added == 8
    again = s.ingest(corpus)
    assert (again.added, again.duplicates) == (0, 8)


def test_bad_passage_rejected_before_writing(store):
    with pytest.raises(ConfigError, match="non-empty id and text"):
        store.add_passages([Passage("ok", "good text"), Passage("", "no id")])
    assert store.get(["ok"]) == []


def test_store_path_that_is_a_file(tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(ConfigError, match="is a file"):
        Store(f, HashEmbedder())


def test_vectors_are_the_stored_embeddings_of_live_passages(store):
    import numpy as np

    passage = tiny_corpus()[0]
    found = store.vectors([passage.id, "nope"])
    assert set(found) == {passage.id}
    assert np.allclose(found[passage.id], store.embedder.embed_documents([passage.full_text])[0])
    store.remove([passage.id])
    assert store.vectors([passage.id]) == {}


def test_passages_lists_the_live_passages_in_write_order_by_kind(store):
    corpus = tiny_corpus()
    store.add_passages([Passage("n1", "Veldoria's capital is Ostrava now.", kind="note")])
    store.remove([corpus[1].id])
    expected = [p.id for p in corpus if p.id != corpus[1].id]
    assert [p.id for p in store.passages(kind="passage", batch=2)] == expected  # read across batches
    assert [p.id for p in store.passages(kind="note")] == ["n1"]
    assert [p.id for p in store.passages()] == [*expected, "n1"]
    assert next(store.passages(kind="passage")).text == corpus[0].text
