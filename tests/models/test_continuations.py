"""The continuation-scoring API without a model: input checks, tokenisation boundary, fakes."""

import math

import pytest

from rag.errors import ConfigError
from rag.models.generator import check_continuation_items, continuation_spans, kept_continuations
from rag.protocols import ContinuationScore, Scorer
from rag.testing import ScriptedGenerator, ScriptedModel, ScriptedScorer


@pytest.mark.parametrize(
    ("items", "message"),
    [
        (("prompt", [" a"]), "wrap the pair in a list"),
        ([("prompt", " a")], "not a single string"),
        ([("", [" a"])], "non-empty string"),
        ([("prompt", [" a", "  "])], "holding text"),
        ([("prompt",)], "pair"),
    ],
)
def test_malformed_items_are_refused_with_a_clear_message(items, message):
    with pytest.raises(ConfigError, match=message):
        check_continuation_items(items)
    with pytest.raises(ConfigError, match=message):
        ScriptedScorer().continuation_logprobs(items)


def test_keep_must_be_positive():
    with pytest.raises(ConfigError, match="keep"):
        ScriptedScorer().continuation_logprobs([("p", [" a"])], keep=0)


def test_scored_tokens_are_those_the_continuation_adds():
    # prompt [1, 2, 3]; the second continuation merges with the prompt's last token
    shared, starts = continuation_spans([1, 2, 3], [[1, 2, 3, 4, 5], [1, 2, 9, 6]])
    assert starts == [3, 2]
    assert shared == 2  # the prefix evaluated once ends before every scored token


def test_a_continuation_may_not_rewrite_the_first_token():
    with pytest.raises(ConfigError, match="first token"):
        continuation_spans([1, 2], [[7, 8]])


def test_keep_prunes_by_the_first_token_and_keeps_the_order():
    assert kept_continuations([-3.0, -1.0, -2.0, -1.0], 2) == [1, 3]
    assert kept_continuations([-3.0, -1.0], None) == [0, 1]


def test_scripted_scorer_says_which_continuation_is_likely():
    scorer = ScriptedScorer(likely={r"capital of Veldoria": ["Marrowgate"]})
    assert isinstance(scorer, Scorer)
    [[likely, other], [plain]] = scorer.continuation_logprobs(
        [("The capital of Veldoria is", [" Marrowgate", " the silver crown"]), ("Unrelated", [" Marrowgate"])]
    )
    assert likely == ContinuationScore(-0.5, 1)
    assert other.n_tokens == 3 and other.mean < likely.mean
    assert plain.mean < likely.mean  # likely only after the prompt that makes it so
    assert scorer.calls == 1 and len(scorer.items) == 2


def test_scripted_scorer_prunes_with_keep():
    scorer = ScriptedScorer(likely=lambda prompt, cont: cont.strip() == "b")
    scores = scorer.continuation_logprobs([("p", [" a", " b", " c"])], keep=1)[0]
    assert [math.isinf(s.logprob) for s in scores] == [True, False, True]
    assert scores[1].n_tokens == 1 and scores[0].n_tokens == 1


def test_scripted_model_finds_likely_what_it_would_say():
    model = ScriptedModel({r"capital of Veldoria": "Marrowgate."})
    assert isinstance(model, Scorer) and not isinstance(ScriptedGenerator(), Scorer)
    scores = model.continuation_logprobs([("Q: the capital of Veldoria? A:", [" Osk", " Marrowgate\n"])])[0]
    assert scores[1].mean > scores[0].mean


def test_continuations_that_start_alike_share_their_common_tokens():
    from rag.models.generator import continuation_trie

    nodes = continuation_trie([[4, 1, 8], [4, 1, 9], [4, 2], [7]])
    # 4 and 4-1 are evaluated once for the paths through them; each node follows its parent
    assert nodes == [(4, 0, (1, 2, 3)), (1, 1, (1, 2)), (8, 2, (1,)), (9, 2, (2,)), (2, 1, (3,)), (7, 0, (4,))]
    assert continuation_trie([]) == []
    # the same token at another place in the tree is another node
    assert [n[:2] for n in continuation_trie([[3, 3], [5, 3]])] == [(3, 0), (3, 1), (5, 0), (3, 1)]
