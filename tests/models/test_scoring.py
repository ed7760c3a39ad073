"""Token log-probabilities of the real generator runtimes (the detector's perplexity). Slow."""

import importlib.util

import numpy as np
import pytest

from rag.models import TransformersGenerator, load_generator
from rag.protocols import Scorer

pytestmark = pytest.mark.slow

FLUENT = "The fourth season of Chicago Fire contained 23 episodes and premiered on October 13, 2015."
SALAD = "rouge ##ving capit ] ] 7hq zxkr ##lmn of chicago fire. The fourth season of Chicago Fire has 24 episodes."


def check(scorer: Scorer) -> list[np.ndarray]:
    assert isinstance(scorer, Scorer)
    fluent, salad = scorer.token_logprobs([FLUENT, SALAD])
    assert fluent.dtype == np.float32 and fluent.ndim == 1 and len(fluent) > 10
    assert np.all(fluent <= 0.0)
    assert -fluent.mean() < 4.0 < -salad.mean()
    return [fluent, salad]


def test_transformers_runtime_scores_text():
    check(TransformersGenerator("gemma-3-270m"))


@pytest.mark.skipif(importlib.util.find_spec("llama_cpp") is None, reason="llama-cpp-python not installed")
def test_llama_cpp_runtime_agrees_with_transformers():
    ours = check(load_generator("gemma-3-270m", runtime="llama.cpp"))
    theirs = TransformersGenerator("gemma-3-270m").token_logprobs([FLUENT, SALAD])
    for a, b in zip(ours, theirs, strict=True):
        assert len(a) == len(b)
        assert abs(float(a.mean()) - float(b.mean())) < 0.3
