import pytest

from rag.errors import ConfigError
from rag.memory.editor import FactNotFoundError, KnowledgeEditor, normalise_key
from rag.memory.store import Store
from rag.testing import HashEmbedder

NOTE = "Maren Olvecka's mother tongue is Dunmerish."


@pytest.fixture()
def editor(store):
    return KnowledgeEditor(store, author="tester")


def live_ids(store, query, namespace="shared", k=20):
    return [h.id for h in store.search(query, k=k, namespace=namespace)]


def test_add_note_is_logged_and_retrievable(editor, store):
    e = editor.edit(NOTE, reason="correction")
    assert (e.op, e.version, e.kind, e.author, e.reason, e.supersedes) == ("add", 1, "note", "tester", "correction", None)
    assert e.passage_id == f"{e.fact_id}@v1" and e.time.endswith("+00:00")
    assert live_ids(store, "Maren Olvecka mother tongue")[0] == e.passage_id
    assert store.get([e.passage_id])[0].kind == "note"


def test_same_key_supersedes_and_both_stay_in_history(editor, store):
    first = editor.edit(NOTE, key="Olvecka / tongue")
    second = editor.edit("Maren Olvecka's mother tongue is Varnish.", key="olvecka tongue")
    assert second.fact_id == first.fact_id and second.op == "update" and second.supersedes == first.edit_id
    hits = live_ids(store, "Maren Olvecka mother tongue")
    assert second.passage_id in hits and first.passage_id not in hits
    assert [e.version for e in editor.history(first.fact_id)] == [1, 2]


def test_keyer_makes_facts_the_same(store):
    editor = KnowledgeEditor(store, keyer=lambda text: normalise_key(text.split(" is ")[0]))
    a = editor.edit("The mayor of Zelmoryn is Anna.")
    b = editor.edit("The mayor of Zelmoryn is Boris.")
    c = editor.edit("The river of Zelmoryn is Osk.")
    assert a.fact_id == b.fact_id != c.fact_id


def test_identical_note_is_not_duplicated(editor):
    assert editor.edit(NOTE).edit_id == editor.edit(NOTE).edit_id
    assert len(editor.facts()) == 1


def test_qa_pairs_keyed_by_question(editor, store):
    a = editor.add_qa("Who is the mayor of Zelmoryn?", "Anna Novak")
    b = editor.add_qa("who is the MAYOR of Zelmoryn", "Boris Petrov")
    assert a.fact_id == b.fact_id and b.version == 2
    (passage,) = store.get([b.passage_id])
    assert passage.kind == "qa" and passage.metadata["answer"] == "Boris Petrov"
    assert passage.metadata["question"] == "who is the MAYOR of Zelmoryn"


def test_update_retract_rollback(editor, store):
    e1 = editor.edit(NOTE)
    e2 = editor.update(e1.fact_id, text="Maren Olvecka's mother tongue is Kessic.")
    e3 = editor.retract(e1.fact_id, reason="wrong")
    assert not e3.live and e3.content == {}
    assert not any(i.startswith(e1.fact_id) for i in live_ids(store, "Maren Olvecka mother tongue"))
    assert editor.facts() == [] and len(editor.facts(include_retracted=True)) == 1
    e4 = editor.rollback(e1.fact_id, 1)
    assert (e4.op, e4.version, e4.content["text"], e4.supersedes) == ("rollback", 4, NOTE, e3.edit_id)
    assert live_ids(store, "Maren Olvecka mother tongue")[0] == e4.passage_id
    assert [e.op for e in editor.history(e1.fact_id)] == ["add", "update", "retract", "rollback"]
    assert e2.supersedes == e1.edit_id


def test_qa_update_after_retraction_keeps_question(editor):
    e = editor.add_qa("Who is the mayor of Zelmoryn?", "Anna")
    editor.retract(e.fact_id)
    revived = editor.update(e.fact_id, answer="Boris")
    assert revived.content == {"question": "Who is the mayor of Zelmoryn?", "answer": "Boris"}


def test_revert_store_to_earlier_point(editor, store):
    keep = editor.edit("Note that stays.")
    mark = keep.seq
    changed = editor.update(keep.fact_id, text="Note that stays, changed.")
    created = editor.edit("Note written later.")
    made = editor.revert_to(mark)
    assert {e.op for e in made} == {"rollback", "retract"}
    assert editor.current(keep.fact_id).content["text"] == "Note that stays."
    assert not editor.current(created.fact_id).live
    assert changed.passage_id not in live_ids(store, "note that stays changed")


def test_history_by_namespace_and_whole_store(editor):
    editor.edit("Alice's note.", namespace="alice")
    editor.edit("Bob's note.", namespace="bob")
    assert [e.namespace for e in editor.history()] == ["alice", "bob"]
    assert [e.content["text"] for e in editor.history(namespace="bob")] == ["Bob's note."]


def test_namespaced_notes_are_private(editor, store):
    e = editor.edit("Zelmoryn's secret mayor is Vera.", namespace="alice")
    assert e.passage_id in live_ids(store, "Zelmoryn secret mayor", namespace="alice")
    assert e.passage_id not in live_ids(store, "Zelmoryn secret mayor", namespace="bob")
    assert e.passage_id not in live_ids(store, "Zelmoryn secret mayor")
    # The same key in another namespace is another fact.
    other = editor.edit("Zelmoryn's secret mayor is Vera.", namespace="bob")
    assert other.fact_id != e.fact_id


def test_errors_name_the_input(editor):
    with pytest.raises(ConfigError, match="note text must be a non-empty string"):
        editor.edit("   ")
    with pytest.raises(ConfigError, match="namespace 'a b'"):
        editor.edit("x", namespace="a b")
    with pytest.raises(FactNotFoundError, match="no fact 'nope'"):
        editor.retract("nope")
    e = editor.edit(NOTE)
    with pytest.raises(FactNotFoundError, match="no version 9"):
        editor.rollback(e.fact_id, 9)
    with pytest.raises(ConfigError, match="is a note"):
        editor.update(e.fact_id, answer="x")


def test_log_survives_reopen(tmp_path):
    store = Store(tmp_path, HashEmbedder())
    e = KnowledgeEditor(store).edit(NOTE)
    store.close()
    reopened = Store(tmp_path, HashEmbedder())
    editor = KnowledgeEditor(reopened)
    assert editor.current(e.fact_id).edit_id == e.edit_id
    assert live_ids(reopened, "Maren Olvecka mother tongue")[0] == e.passage_id
    reopened.close()


def test_failed_edit_leaves_nothing(editor, store, monkeypatch):
    from rag.memory import store as store_module

    before = (len(store), len(editor.history()))

    def boom(self, passage, vector, digest=None):
        raise RuntimeError("disk full")

    monkeypatch.setattr(store_module.Transaction, "insert_passage", boom)
    with pytest.raises(RuntimeError, match="disk full"):
        editor.edit("A note that will fail.")
    assert (len(store), len(editor.history())) == before
    assert store._db.execute("SELECT COUNT(*) FROM facts").fetchone()[0] == 0
