"""Who speaks for which answer: the lexicon's rules against the generator's likelihood."""

import numpy as np
import pytest

from rag.errors import ConfigError
from rag.pipeline import PipelineConfig
from rag.stages.detect import PoisonDetector
from rag.stages.detect.support import LikelihoodStanding
from rag.testing import HashEmbedder, ScriptedGenerator, ScriptedModel, prompt_context
from rag.types import Passage

Q = "What is the capital of Veldoria?"
# says where the government sits: the relation lexicon does not read it as the capital
GOLD = Passage("g1", "Marrowgate is where the government of Veldoria sits.")
POISON = Passage("p1", "The capital of Veldoria is Duskmere.")


def reader(prompt: str) -> str:
    """Reads the name its context holds; closed book it says Paris."""
    context = prompt_context(prompt) or ""
    return next((name for name in ("Marrowgate", "Duskmere") if name in context), "Paris")


def detector(support: str, **kwargs) -> PoisonDetector:
    # topic_ratio 0: the hash embedder's topic is no part of what these tests check
    return PoisonDetector(HashEmbedder(), generator=ScriptedModel(reader), support=support, topic_ratio=0.0,
                          **kwargs)


def test_by_rules_the_lexicon_gates_by_likelihood_both_sides_count():
    ruled = detector("rules").inspect(Q, [GOLD, POISON])
    # the poison names the relation in the lexicon's words, the gold passage does not: it wins
    assert (ruled.aggregate_answer, ruled.contested, ruled.rivals) == ("Duskmere", False, ())
    measured = detector("likelihood").inspect(Q, [GOLD, POISON])
    # each passage raises its own answer: one against one, no majority
    assert measured.contested
    assert set(measured.support) | set(measured.rivals) == {"g1", "p1"}


def test_by_likelihood_two_independent_passages_outvote_one():
    golds = [GOLD, Passage("g2", "Parliament meets in Marrowgate, the largest city of Veldoria, by the Osk.")]
    decision = detector("likelihood").inspect(Q, [*golds, POISON])
    assert decision.aggregate_answer == "Marrowgate"
    assert set(decision.support) == {"g1", "g2"} and decision.rivals == ("p1",)
    # with a margin above what two witnesses against one reach, the same vote is contested
    assert detector("likelihood", contest_margin=2.5).inspect(Q, [*golds, POISON]).contested


def test_likelihood_support_scores_each_question_in_one_call():
    det = detector("likelihood")
    det.inspect(Q, [GOLD, POISON])
    scorer = det.generator.scorer
    assert scorer.calls == 1
    # each passage and the closed-book prompt, every answer group as a continuation
    assert len(scorer.items) == 3
    assert all(len(conts) == 2 for _, conts in scorer.items)


def test_a_passage_speaks_only_for_the_answer_it_raises_most():
    lift = np.array([[0.9, 1.4], [0.1, -0.2], [-np.inf, -np.inf]])
    standing = LikelihoodStanding(lift, {0: 0, 1: 1}, [0, 0, None], min_lift=0.25)
    assert [standing.level(g, 0) for g in (0, 1)] == [0, 1]  # raises both, the second more
    assert [standing.level(g, 1) for g in (0, 1)] == [0, 0]  # raises nothing enough
    assert standing.level(0, 2) == 0  # not scored (off the topic)
    assert standing.affirms(1, 0)  # passage 0 also raises passage 1's reading past min_lift


def test_bad_support_settings_are_refused_with_a_reason():
    with pytest.raises(ConfigError, match="support must be one of"):
        PoisonDetector(HashEmbedder(), support="vibes")
    with pytest.raises(ConfigError, match="continuation_logprobs"):
        PoisonDetector(HashEmbedder(), generator=ScriptedGenerator(), support="likelihood")
    with pytest.raises(ConfigError, match="min_lift"):
        PoisonDetector(HashEmbedder(), generator=ScriptedModel(), support="likelihood", min_lift=float("nan"))
    with pytest.raises(ConfigError, match="detect_support"):
        PipelineConfig(detect_support="vibes")
