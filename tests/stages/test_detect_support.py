"""Who speaks for which answer: the lexicon's rules against the generator's likelihood."""

import numpy as np
import pytest

from rag.errors import ConfigError
from rag.pipeline import PipelineConfig
from rag.stages.detect import PoisonDetector
from rag.stages.detect.support import LikelihoodStanding, likelihood_sides
from rag.stages.read import extract
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


def test_likelihood_support_reads_then_scores_the_lift_matrix_in_one_call():
    det = detector("likelihood")
    det.inspect(Q, [GOLD, POISON])
    scorer = det.generator.scorer
    # one call reads each passage's own spans, one scores every side after every passage
    assert scorer.calls == 2
    reading, lift = scorer.items[:2], scorer.items[2:]
    assert [prompt_context(p) for p, _ in reading] == [GOLD.text, POISON.text]
    assert len(lift) == 3 and prompt_context(lift[-1][0]) is None  # and closed book
    # each passage's best reading first (then its second best), the same for every prompt
    assert all([c.strip() for c in conts][:2] == ["Marrowgate", "Duskmere"] for _, conts in lift)
    assert len({tuple(conts) for _, conts in lift}) == 1
    # nothing is generated: the sides are spans the passages hold
    assert det.generator.prompts == []


# extraction reads "Ilsa Brennick" here (who rebuilt it), not the capital it names
TRAIL = Passage("g3", "The capital of Veldoria, Marrowgate, was rebuilt in 1312 by Ilsa Brennick.")


def test_a_passage_speaks_for_the_span_it_raises_even_when_extraction_reads_another():
    assert extract(Q, [TRAIL]).answer == "Ilsa Brennick"
    decision = detector("likelihood").inspect(Q, [GOLD, TRAIL, POISON])
    assert decision.aggregate_answer == "Marrowgate"
    assert set(decision.support) == {"g1", "g3"} and decision.rivals == ("p1",)
    assert decision.verdict("g3").answer == "Marrowgate"


def test_sides_are_pooled_from_each_passage_and_merged_by_equivalence():
    def says(prompt: str) -> str:
        context = prompt_context(prompt) or ""
        return "Marrowgate City" if "Marrowgate City" in context else "Marrowgate" if "Marrowgate" in context else ""

    passages = [Passage("a", "Marrowgate City hosts the parliament of Veldoria."),
                Passage("b", "The parliament of Veldoria meets in Marrowgate, by the Osk."),
                Passage("c", "Veldoria exports amber and rye.")]
    sides = likelihood_sides(ScriptedModel(says), Q, passages, [True, True, True], per_passage=1, min_lift=0.25)
    # "Marrowgate" is one side with "Marrowgate City"; the third passage's best span is another
    assert len(sides.answers) == 2 and sides.answers[0] == "Marrowgate City"
    assert sides.speaks[:2] == (0, 0)
    assert sides.speaks[2] is None  # it raises nothing: the model would not say its span
    assert sides.spoken()[2] == ""


def test_passages_off_the_topic_put_up_no_side_and_speak_for_none():
    sides = likelihood_sides(ScriptedModel(reader), Q, [GOLD, POISON], [True, False], per_passage=1)
    assert sides.answers == ("Marrowgate",)
    assert sides.speaks == (0, None) and np.isneginf(sides.lift[1]).all()


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
