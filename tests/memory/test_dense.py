import json

import numpy as np
import pytest

from rag.errors import ConfigError, StoreError
from rag.memory.dense import DenseIndex, recall_at_k


def unit(rows):
    a = np.asarray(rows, dtype=np.float32)
    return a / np.linalg.norm(a, axis=1, keepdims=True)


def test_search_finds_nearest_and_respects_k():
    idx = DenseIndex(3)
    idx.add([10, 20, 30], unit([[1, 0, 0], [0, 1, 0], [0, 0, 1]]))
    hits = idx.search(unit([[0.1, 0.9, 0.0]])[0], k=2)
    assert [key for key, _ in hits] == [20, 10]
    assert hits[0][1] > hits[1][1]


def test_add_existing_key_replaces_vector():
    idx = DenseIndex(2)
    idx.add([1, 2], unit([[1, 0], [0, 1]]))
    idx.add([1], unit([[0, 1]]))
    assert len(idx) == 2
    assert idx.search(unit([[1, 0]])[0], k=2)[0][1] < 0.5


def test_remove_then_search():
    idx = DenseIndex(2)
    idx.add([1, 2], unit([[1, 0], [0.9, 0.1]]))
    idx.remove([1])
    assert [k for k, _ in idx.search(unit([[1, 0]])[0], k=5)] == [2]


def test_save_load(tmp_path):
    idx = DenseIndex(2)
    idx.add([5, 6], unit([[1, 0], [0, 1]]))
    idx.save(tmp_path / "d.faiss")
    loaded = DenseIndex.load(tmp_path / "d.faiss", 2)
    assert loaded.search(unit([[0, 1]])[0], k=1)[0][0] == 6
    with pytest.raises(StoreError, match="dim 2, expected 3"):
        DenseIndex.load(tmp_path / "d.faiss", 3)
    (tmp_path / "bad.faiss").write_bytes(b"garbage")
    with pytest.raises(StoreError, match="cannot read"):
        DenseIndex.load(tmp_path / "bad.faiss", 2)


def test_shape_errors_name_the_problem():
    idx = DenseIndex(4)
    with pytest.raises(ConfigError, match="dim 4"):
        idx.add([1], np.zeros((1, 3), dtype=np.float32))
    with pytest.raises(ConfigError):
        DenseIndex(0)
    assert idx.search(np.zeros(4, dtype=np.float32), k=3) == []


# -- approximate mode, tombstones, persistence ------------------------------------------------

DIM = 32


def clustered(n, seed, *, clusters=40, noise=0.6):
    """Gaussian clusters around fixed random centres, normalised (seeded)."""
    centres = np.random.default_rng(1234).standard_normal((clusters, DIM))
    rng = np.random.default_rng(seed)
    points = centres[rng.integers(0, clusters, n)] + noise * rng.standard_normal((n, DIM))
    return unit(points)


def small_ivf(n=1200, **kwargs):
    idx = DenseIndex(DIM, approximate_above=500, **kwargs)
    idx.add(np.arange(n), clustered(n, seed=1))
    return idx


def test_switches_to_ivf_above_the_threshold_and_keeps_results():
    idx = DenseIndex(DIM, approximate_above=500)
    vectors = clustered(900, seed=1)
    idx.add(np.arange(500), vectors[:500])
    assert idx.mode == "exact" and idx.nlist == 1
    idx.add([500], vectors[500:501])  # one past the threshold: this add trains
    assert idx.mode == "ivf" and idx.nlist > 1 and len(idx) == 501
    assert 1 <= idx.nprobe <= idx.nlist
    idx.add(np.arange(501, 900), vectors[501:900])  # grows < 4x: no retraining
    assert idx.stats()["trained_n"] == 501 and len(idx) == 900
    assert idx.search(vectors[42], k=1)[0][0] == 42


def test_retrains_after_growing_past_retrain_growth():
    idx = DenseIndex(DIM, approximate_above=500, retrain_growth=2.0)
    vectors = clustered(1200, seed=1)
    idx.add(np.arange(600), vectors[:600])
    first = idx.stats()
    idx.add(np.arange(600, 1200), vectors[600:])  # past 2x the 600 it was trained on
    assert idx.stats()["trained_n"] == 1200 and idx.nlist >= first["nlist"]


def test_ivf_recall_against_exact_search():
    idx = small_ivf(2000)
    assert idx.mode == "ivf"
    queries = clustered(100, seed=2)  # held out: not in the index
    assert recall_at_k(idx, queries, k=10) >= 0.95
    assert idx.stats()["calibrated_recall"] >= idx.target_recall


def test_fixed_nprobe_is_used_and_full_probe_is_exact():
    idx = small_ivf(nprobe=10_000)
    assert idx.mode == "ivf" and idx.nprobe == 10_000
    assert recall_at_k(idx, clustered(30, seed=3), k=10) == 1.0


def test_large_k_probes_more_lists_instead_of_returning_fewer():
    idx = small_ivf(1200, nprobe=1)
    assert idx.mode == "ivf" and idx.nlist > 4
    hits = idx.search(clustered(1, seed=7)[0], k=700)
    assert len(hits) == 700 and len({key for key, _ in hits}) == 700
    assert [s for _, s in hits] == sorted((s for _, s in hits), reverse=True)
    assert len(idx.search(clustered(1, seed=7)[0], k=5000)) == 1200


def test_remove_is_a_tombstone_until_compaction():
    idx = small_ivf(1000, compact_fraction=0.1)
    stored = idx.stats()["stored"]
    idx.remove(range(50))
    assert len(idx) == 950 and idx.tombstones == 50 and idx.stats()["stored"] == stored
    assert 3 not in idx and 60 in idx
    vectors = clustered(1000, seed=1)
    for key in (0, 7, 49):
        assert key not in [k for k, _ in idx.search(vectors[key], k=20)]
    idx.remove(range(50, 101))  # 101 > 10% of 1000: compaction
    assert idx.tombstones == 0 and idx.stats()["stored"] == 899 and len(idx) == 899
    idx.remove([5, 10_000, -3])  # already removed or unknown: nothing happens
    assert len(idx) == 899 and idx.tombstones == 0


def test_search_over_fetches_past_tombstones():
    idx = DenseIndex(DIM, compact_fraction=0.9)
    vectors = clustered(300, seed=4)
    idx.add(np.arange(300), vectors)
    near = [k for k, _ in idx.search(vectors[0], k=60)]
    idx.remove(near[:40])  # the 40 nearest are gone
    hits = idx.search(vectors[0], k=10)
    assert len(hits) == 10 and not set(near[:40]) & {k for k, _ in hits}
    assert [k for k, _ in hits] == near[40:50]
    assert recall_at_k(idx, vectors[:20], k=10) == 1.0


def test_compact_fraction_zero_removes_at_once():
    idx = small_ivf(800, compact_fraction=0.0)
    idx.remove([1, 2, 3])
    assert idx.tombstones == 0 and len(idx) == 797 and 2 not in idx


def test_re_add_after_delete_replaces():
    idx = small_ivf(1000)
    vectors = clustered(1000, seed=1)
    idx.remove([5])
    assert 5 not in idx and idx.tombstones == 1
    idx.add([5], vectors[6:7])  # back, with another vector
    assert 5 in idx and idx.tombstones == 0 and len(idx) == 1000
    assert idx.stats()["stored"] == 1000  # the old copy is gone, not shadowed
    keys = {k for k, _ in idx.search(vectors[6], k=2)}
    assert keys == {5, 6}
    fresh = clustered(2, seed=9)
    idx.add([5, 5], fresh)  # twice in one batch: the last wins
    assert len(idx) == 1000 and idx.search(fresh[1], k=1) == [(5, pytest.approx(1.0))]


def test_switches_back_to_exact_when_it_shrinks():
    idx = small_ivf(1000)
    assert idx.mode == "ivf"
    idx.remove(range(760))  # below half the threshold (250)
    assert idx.mode == "exact" and len(idx) == 240 and idx.tombstones == 0
    assert recall_at_k(idx, clustered(20, seed=5), k=10) == 1.0


@pytest.mark.parametrize("n", [300, 1200])
def test_save_load_round_trip_in_both_modes(tmp_path, n):
    idx = DenseIndex(DIM, approximate_above=500, compact_fraction=0.5, target_recall=0.9)
    vectors = clustered(n, seed=1)
    idx.add(np.arange(n), vectors)
    idx.remove([1, 2, 3])
    idx.save(tmp_path / "index" / "dense.faiss")
    assert {p.name for p in (tmp_path / "index").iterdir()} == {
        "dense.faiss", "dense.json", "dense.tombstones.npy"}
    loaded = DenseIndex.load(tmp_path / "index" / "dense.faiss", DIM)
    assert loaded.stats() == idx.stats()
    assert loaded.mode == ("ivf" if n > 500 else "exact")
    config = (loaded.approximate_above, loaded.compact_fraction, loaded.target_recall)
    assert config == (500, 0.5, 0.9)
    queries = clustered(20, seed=6)
    assert [loaded.search(q, k=5) for q in queries] == [idx.search(q, k=5) for q in queries]
    assert 2 not in loaded and len(loaded) == n - 3
    loaded.add([2], vectors[2:3])  # the loaded index stays editable
    assert 2 in loaded and loaded.tombstones == 2


@pytest.mark.parametrize("damage", ["missing_json", "bad_json", "count_mismatch", "bad_npy",
                                    "missing_npy", "pickled_npy", "bad_config"])
def test_damaged_side_files_raise_store_error(tmp_path, damage):
    idx = small_ivf(600)
    idx.remove([1])
    path = tmp_path / "dense.faiss"
    idx.save(path)
    meta_path, tomb_path = tmp_path / "dense.json", tmp_path / "dense.tombstones.npy"
    meta = json.loads(meta_path.read_text())
    if damage == "missing_json":
        meta_path.unlink()
    elif damage == "bad_json":
        meta_path.write_text("{not json")
    elif damage == "count_mismatch":
        meta["ntotal"] += 1
        meta_path.write_text(json.dumps(meta))
    elif damage == "bad_npy":
        tomb_path.write_bytes(b"\x93NUMPY garbage")
    elif damage == "missing_npy":
        tomb_path.unlink()
    elif damage == "pickled_npy":
        np.save(tomb_path, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    else:
        meta["config"]["compact_fraction"] = 7
        meta_path.write_text(json.dumps(meta))
    with pytest.raises(StoreError, match="dense index"):
        DenseIndex.load(path, DIM)


def test_legacy_flat_snapshot_is_refused(tmp_path):
    import faiss

    legacy = faiss.IndexIDMap2(faiss.IndexFlatIP(2))
    legacy.add_with_ids(unit([[1, 0]]), np.array([1], dtype=np.int64))
    faiss.write_index(legacy, str(tmp_path / "dense.faiss"))
    with pytest.raises(StoreError, match="cannot read the dense index state"):
        DenseIndex.load(tmp_path / "dense.faiss", 2)


def test_bad_arguments_name_the_value():
    with pytest.raises(ConfigError, match="approximate_above"):
        DenseIndex(4, approximate_above=0)
    with pytest.raises(ConfigError, match="compact_fraction must be in \\[0, 1\\), got 1.5"):
        DenseIndex(4, compact_fraction=1.5)
    with pytest.raises(ConfigError, match="nprobe"):
        DenseIndex(4, nprobe=0)
    with pytest.raises(ConfigError, match="dim 4"):
        DenseIndex(4).search(np.zeros(3, dtype=np.float32))


def test_store_runs_on_an_ivf_index_and_reopens_it(tmp_path, caplog):
    import logging

    from rag.memory.index import LocalIndex
    from rag.memory.store import Store
    from rag.testing import HashEmbedder
    from rag.types import Passage

    words = [f"w{i}" for i in range(60)]
    rng = np.random.default_rng(0)
    texts = [" ".join(rng.choice(words, 8)) + f" unique{i}" for i in range(300)]
    passages = [Passage(f"p{i}", text) for i, text in enumerate(texts)]
    with Store(tmp_path, HashEmbedder(), index=LocalIndex(dense={"approximate_above": 100})) as s:
        s.add_passages(passages)
        s.remove(["p3"])
        assert s.search(passages[7].text, k=1)[0].id == "p7"
        assert s.index.dense.mode == "ivf" and len(s.index.dense) == 299
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="rag.memory"):
        reopened = Store(tmp_path, HashEmbedder())
        assert reopened.search(passages[42].text, k=1)[0].id == "p42"
        assert "p3" not in [h.id for h in reopened.search(passages[3].text, k=5)]
    assert "rebuilding" not in caplog.text and reopened.index.dense.mode == "ivf"
    reopened.close()
