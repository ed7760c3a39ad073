from rag.memory.fusion import reciprocal_rank_fusion


def test_item_in_both_rankings_wins():
    fused = reciprocal_rank_fusion([["a", "b", "c"], ["c", "b", "d"]])
    assert [item for item, _ in fused][:2] == ["b", "c"] or [item for item, _ in fused][0] in {"b", "c"}
    scores = dict(fused)
    assert scores["b"] == 1 / 62 + 1 / 62
    assert scores["a"] == 1 / 61
    assert scores["b"] > scores["a"] > scores["d"]


def test_weights_and_constant():
    fused = dict(reciprocal_rank_fusion([["a"], ["b"]], k=1, weights=[2.0, 1.0]))
    assert fused == {"a": 1.0, "b": 0.5}


def test_ties_keep_first_seen_order():
    fused = reciprocal_rank_fusion([["x", "y"], ["y", "x"]])
    assert [item for item, _ in fused] == ["x", "y"]
