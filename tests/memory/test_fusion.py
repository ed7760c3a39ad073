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


def test_fused_hits_are_ranked_anew_and_cut_to_k():
    from rag.memory.fusion import fuse_hits
    from rag.types import Passage, ScoredPassage

    def ranking(*ids):
        return [ScoredPassage(Passage(i, f"text {i}"), 1.0, rank, "hybrid")
                for rank, i in enumerate(ids, 1)]

    fused = fuse_hits([ranking("a", "b", "c"), ranking("b", "d")], 2, retriever="rewrite+hybrid")
    assert [(h.id, h.rank, h.retriever) for h in fused] == [("b", 1, "rewrite+hybrid"),
                                                            ("a", 2, "rewrite+hybrid")]
    assert fused[0].score == 1 / 62 + 1 / 61 and fused[0].passage.text == "text b"
