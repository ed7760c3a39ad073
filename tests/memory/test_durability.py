"""Crashes and concurrent writers: nothing acknowledged is lost, nothing half-written stays."""

import os
import signal
import subprocess
import sys
import textwrap
import time

from rag.memory.editor import KnowledgeEditor
from rag.memory.store import Store
from rag.testing import HashEmbedder

INGEST_CHILD = textwrap.dedent("""
    import sys
    from rag.memory.store import Store
    from rag.testing import HashEmbedder
    from rag.types import Passage
    store = Store(sys.argv[1], HashEmbedder())
    for b in range(10_000):
        batch = [Passage(f"p{b}-{i}", f"passage about town{b}x{i} in Marrowgate") for i in range(50)]
        store.add_passages(batch, batch_size=50, show_progress=False)
        print(b, flush=True)  # acknowledged: the batch is committed
""")

EDIT_CHILD = textwrap.dedent("""
    import sys
    from rag.memory.editor import KnowledgeEditor
    from rag.memory.store import Store
    from rag.testing import HashEmbedder
    editor = KnowledgeEditor(Store(sys.argv[1], HashEmbedder()), author=sys.argv[2])
    for i in range(int(sys.argv[3])):
        e = editor.edit(f"Writer {sys.argv[2]} note {i}: the mayor of town {i} is person {i}.")
        print(e.edit_id, flush=True)
""")


def _env():
    return dict(os.environ, PYTHONPATH=os.getcwd())


def test_kill_9_during_ingest_loses_no_acknowledged_batch(tmp_path):
    child = subprocess.Popen([sys.executable, "-c", INGEST_CHILD, str(tmp_path)], stdout=subprocess.PIPE,
                             text=True, env=_env())
    acknowledged = []
    deadline = time.monotonic() + 60
    while len(acknowledged) < 5 and time.monotonic() < deadline:
        acknowledged.append(int(child.stdout.readline()))
    time.sleep(0.05)  # let it be mid-batch
    child.send_signal(signal.SIGKILL)
    child.wait()
    store = Store(tmp_path, HashEmbedder(), create=False)
    total = len(store)
    assert total >= 50 * len(acknowledged)
    assert total % 50 == 0  # whole batches only
    ids = {p.id for p in store.get([f"p{b}-{i}" for b in acknowledged for i in range(50)])}
    assert len(ids) == 50 * len(acknowledged)
    assert store.search("town2x3", k=1)[0].id == "p2-3"
    store.close()


def test_kill_9_during_edits_loses_no_acknowledged_edit(tmp_path):
    Store(tmp_path, HashEmbedder()).close()
    child = subprocess.Popen([sys.executable, "-c", EDIT_CHILD, str(tmp_path), "w", "100000"],
                             stdout=subprocess.PIPE, text=True, env=_env())
    acknowledged = [child.stdout.readline().strip() for _ in range(30)]
    child.send_signal(signal.SIGKILL)
    child.wait()
    store = Store(tmp_path, HashEmbedder())
    logged = {e.edit_id for e in KnowledgeEditor(store).history()}
    assert set(acknowledged) <= logged
    # Every logged edit has its live passage: the log and the passages commit together.
    for e in KnowledgeEditor(store).facts():
        assert store.get([e.passage_id])
    store.close()


def test_two_processes_writing_edits_lose_none(tmp_path):
    Store(tmp_path, HashEmbedder()).close()
    n = 40
    children = [subprocess.Popen([sys.executable, "-c", EDIT_CHILD, str(tmp_path), who, str(n)],
                                 stdout=subprocess.PIPE, text=True, env=_env()) for who in ("a", "b")]
    outputs = [c.communicate(timeout=120)[0].split() for c in children]
    assert all(c.returncode == 0 for c in children)
    store = Store(tmp_path, HashEmbedder())
    history = KnowledgeEditor(store).history()
    assert {e.edit_id for e in history} == set(outputs[0]) | set(outputs[1])
    assert len(history) == 2 * n and sorted(e.author for e in history) == ["a"] * n + ["b"] * n
    assert len(store) == 2 * n
    assert len(store.search("Writer b note 7 mayor of town 7", k=2 * n)) == 2 * n
    store.close()
