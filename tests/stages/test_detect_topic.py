"""The detector's topic gating and settings, apart from the detector: invented facts, fakes only."""

import numpy as np
import pytest

from rag.errors import ConfigError
from rag.stages.detect import DEFAULT_WEIGHTS, DetectionRequest, PoisonDetector
from rag.stages.detect.topic import on_topic, on_topic_of_unsuspected, request_vectors
from rag.testing import HashEmbedder
from rag.types import Passage

Q = "Who founded the harbour of Varnholm?"


class CountingEmbedder(HashEmbedder):
    """Remembers every text it was asked to embed."""

    def __init__(self) -> None:
        super().__init__(dim=16)
        self.texts: list[str] = []

    def embed_documents(self, texts):
        self.texts.extend(texts)
        return super().embed_documents(texts)


def test_vectors_carried_by_the_request_are_not_embedded_again():
    embedder = CountingEmbedder()
    known = Passage("k", "Ana Quell founded the harbour.")
    fresh = Passage("f", "The harbour opened in 1620.")
    carried = np.full(16, 0.25, dtype=np.float32)
    request = DetectionRequest(Q, (known, fresh), known_vectors={"k": carried})
    question_vector, passage_vectors = request_vectors(embedder, [request])[0]
    assert embedder.texts == [Q, fresh.full_text]  # one call, the carried passage left out
    assert np.allclose(passage_vectors[0], carried)
    assert np.allclose(question_vector, HashEmbedder(dim=16).embed_documents([Q])[0])


def test_neighbours_follow_the_passages_and_a_request_without_passages_gets_none():
    request = DetectionRequest(Q, (Passage("a", "Ana Quell founded it."),),
                               neighbours=(Passage("n", "Duskmere."),))
    empty = DetectionRequest("Who built the bridge of Duskmere?", ())
    vectors = request_vectors(HashEmbedder(dim=16), [request, empty])
    assert vectors[0][1].shape == (2, 16)
    assert vectors[1][1].shape == (0, 0)


def test_on_topic_is_relative_to_the_best_passage_and_reads_only_the_first_n():
    question = np.array([1.0, 0.0])
    # the last vector is a neighbour's: closer to the question, but not one of the n passages
    passages = np.array([[0.8, 0.6], [0.3, 0.95], [0.45, 0.89], [1.0, 0.0]])
    assert on_topic((question, passages), 3, 0.5) == [True, False, True]
    assert on_topic((question, passages), 3, 0.0) == [True, True, True]  # ratio 0: no gating at all


def test_a_condemned_echo_does_not_set_the_yardstick():
    question = np.array([1.0, 0.0])
    passages = np.array([[1.0, 0.0], [0.45, 0.89], [0.1, 0.99]])
    first = on_topic((question, passages), 3, 0.5)
    assert first == [True, False, False]

    def widened(pre):
        return on_topic_of_unsuspected(first, pre, question, passages,
                                       topic_ratio=0.5, threshold=0.5)

    assert widened([0.6, 0.1, 0.0]) == [True, True, False]  # against the best not condemned (0.45)
    # when every passage is condemned, or the echo is not, nothing changes
    assert widened([0.6, 0.6, 0.6]) == first
    assert widened([0.1, 0.1, 0.0]) == first


def test_weights_given_override_the_defaults_and_the_rest_stay():
    detector = PoisonDetector(HashEmbedder(), weights={"echo": 1})
    assert detector.weights == {**DEFAULT_WEIGHTS, "echo": 1.0}
    assert isinstance(detector.weights["echo"], float)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"topic_ratio": 1.5}, "topic_ratio must lie in [0, 1], got 1.5"),
    ({"min_lift": float("nan")}, "min_lift must be a finite number, got nan"),
    ({"decisive": "echo"}, "decisive must be a sequence of signal names"),
    # the first bad setting is the one named
    ({"threshold": 2.0, "min_cluster": 1}, "threshold must lie in [0, 1], got 2.0"),
])
def test_the_first_bad_setting_is_named_with_its_value(kwargs, message):
    with pytest.raises(ConfigError) as error:
        PoisonDetector(HashEmbedder(), **kwargs)
    assert str(error.value).startswith(message)
