"""Token log-probabilities of the real generator runtimes (the detector's perplexity). Slow."""

import importlib.util

import numpy as np
import pytest

from rag.models import TransformersGenerator, load_generator
from rag.protocols import Scorer

pytestmark = pytest.mark.slow

FLUENT = "The fourth season of Harbor Watch contained 23 episodes and premiered on March 2, 2011."
SALAD = "rouge ##ving capit ] ] 7hq zxkr ##lmn of harbor watch. The fourth season of Harbor Watch has 24 episodes."


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


RED_HERRING = "Context: The Eiffel Tower is in Rome. Question: In which city is the Eiffel Tower? Answer:"
CLOSED = "Question: In which city is the Eiffel Tower? Answer:"
CONTINUATIONS = [" Rome", " Paris", " the city of Rome", " London, England"]


def check_continuations(scorer: Scorer) -> None:
    with_ctx, without = scorer.continuation_logprobs([(RED_HERRING, CONTINUATIONS), (CLOSED, CONTINUATIONS)])
    # the scores are token_logprobs of the whole text, summed over what the continuation adds
    base = len(scorer.token_logprobs([RED_HERRING])[0])
    for cont, score in zip(CONTINUATIONS, with_ctx, strict=True):
        full = scorer.token_logprobs([RED_HERRING + cont])[0]
        assert score.n_tokens == len(full) - base >= 1
        assert abs(score.logprob - float(full[base:].sum())) < 0.1
    rome, paris = 0, 1
    # gemma-3-270m still prefers Paris after this bare prompt, but the context narrows the gap a lot
    assert without[paris].logprob - without[rome].logprob > 2.0
    assert (with_ctx[rome].logprob - with_ctx[paris].logprob) - (without[rome].logprob - without[paris].logprob) > 2.0
    # scoring a batch of one or many, pruned or not, gives the same numbers for the kept
    alone = scorer.continuation_logprobs([(RED_HERRING, [" Rome"])])[0][0]
    assert abs(alone.logprob - with_ctx[rome].logprob) < 0.05
    pruned = scorer.continuation_logprobs([(RED_HERRING, CONTINUATIONS)], keep=2)[0]
    assert sum(np.isfinite(s.logprob) for s in pruned) == 2


def test_transformers_runtime_scores_continuations():
    check_continuations(TransformersGenerator("gemma-3-270m"))


@pytest.mark.skipif(importlib.util.find_spec("llama_cpp") is None, reason="llama-cpp-python not installed")
def test_llama_cpp_runtime_scores_continuations():
    check_continuations(load_generator("gemma-3-270m", runtime="llama.cpp"))


@pytest.mark.skipif(importlib.util.find_spec("llama_cpp") is None, reason="llama-cpp-python not installed")
def test_llama_cpp_scores_after_a_prompt_longer_than_one_batch():
    # a prompt of several hundred tokens is evaluated in chunks; the last chunk gives the logits
    long_prompt = "Context: " + " ".join([FLUENT] * 30) + " " + RED_HERRING
    ours = load_generator("gemma-3-270m", runtime="llama.cpp").continuation_logprobs([(long_prompt, [" Rome", " Paris"])])[0]
    theirs = TransformersGenerator("gemma-3-270m").continuation_logprobs([(long_prompt, [" Rome", " Paris"])])[0]
    for a, b in zip(ours, theirs, strict=True):
        assert a.n_tokens == b.n_tokens and abs(a.logprob - b.logprob) < 0.3


@pytest.mark.skipif(importlib.util.find_spec("llama_cpp") is None, reason="llama-cpp-python not installed")
def test_llama_cpp_reuses_saved_prompts_and_shared_tokens_without_changing_scores():
    # prompts that share a long start (few-shot examples) evaluate it once; a prompt scored
    # again is restored from its saved state; years that share digits share their tokens
    gen = load_generator("gemma-3-270m", runtime="llama.cpp")
    examples = f"Context: {FLUENT}\n"  # token_logprobs below reads 96 tokens at most
    years = [" 2011", " 2012", " 2001", " March 2, 2011"]
    items = [(examples + RED_HERRING, years), (examples + CLOSED, years)]
    first = gen.continuation_logprobs(items)
    again = gen.continuation_logprobs(items)
    assert [[s.logprob for s in row] for row in first] == [[s.logprob for s in row] for row in again]
    for (prompt, conts), row in zip(items, first, strict=True):
        base = len(gen.token_logprobs([prompt])[0])
        for cont, score in zip(conts, row, strict=True):
            full = gen.token_logprobs([prompt + cont])[0]
            assert score.n_tokens == len(full) - base
            assert abs(score.logprob - float(full[base:].sum())) < 0.3
