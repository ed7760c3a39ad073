import numpy as np
import pytest

from rag.errors import ConfigError, StoreError
from rag.memory.dense import DenseIndex


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
