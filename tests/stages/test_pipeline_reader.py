"""The pipeline's reader switch (PipelineConfig.reader)."""

import pytest

from rag.errors import ConfigError
from rag.pipeline import Pipeline, PipelineConfig
from rag.testing import ScriptedGenerator, ScriptedModel


def read_decision(store, generator, **config) -> tuple[str, str]:
    cfg = PipelineConfig(detect=False, trigger=False, cache=False, **config)
    answer = Pipeline(store, generator, cfg).ask("What is the capital of Veldoria?")
    [record] = [r for r in answer.trace if r.stage == "read"]
    return record.decision, answer.text


def test_the_pipeline_reads_by_likelihood_when_the_generator_scores(store):
    model = ScriptedModel({r"(?s)Context:.*capital of Veldoria\?": "Marrowgate"}, default="none")
    assert read_decision(store, model) == ("likelihood", "Marrowgate")
    assert read_decision(store, model, reader="extractive")[0] == "extract"
    assert read_decision(store, model, extractive=False)[0] == "generate"


def test_a_generator_that_cannot_score_reads_by_rules(store):
    assert read_decision(store, ScriptedGenerator(default="none"))[0] == "extract"


def test_the_reader_switch_is_checked():
    with pytest.raises(ConfigError, match="reader"):
        PipelineConfig(reader="guess")
