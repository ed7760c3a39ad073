"""The embedded offline models, for real. Slow: minutes on a CPU the first time."""

import importlib.util

import numpy as np
import pytest

from rag.memory.store import Store
from rag.models import SentenceTransformerEmbedder, TransformersGenerator, load_generator
from rag.pipeline import Pipeline
from rag.testing import tiny_corpus

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def embedder():
    return SentenceTransformerEmbedder()


@pytest.fixture(scope="module")
def gemma():
    return TransformersGenerator("gemma-3-270m")


def test_minilm_embeds_normalised_and_meaningful(embedder):
    docs = embedder.embed_documents(
        ["The Eiffel Tower is in Paris.", "The Colosseum is in Rome.", "Bananas are yellow."]
    )
    query = embedder.embed_query("Where is the Eiffel Tower?")
    assert docs.shape == (3, 384) and docs.dtype == np.float32
    assert np.allclose(np.linalg.norm(docs, axis=1), 1.0, atol=1e-4)
    sims = docs @ query
    assert sims[0] > sims[1] > sims[2] - 0.05 and sims[0] > 0.6


def test_gemma_batched_generation_follows_context(gemma):
    answers = gemma.generate(
        [
            "Context: The Eiffel Tower is in Rome.\nQuestion: In which city is the Eiffel Tower?\nAnswer:",
            "Question: What is the chemical symbol for gold?\nAnswer:",
        ],
        max_new_tokens=12,
    )
    assert len(answers) == 2 and all(a and "\n" not in a for a in answers)
    assert "Rome" in answers[0]  # follows a counterfactual context


def test_dequantised_weights_are_cached(gemma, tmp_path):
    gemma.generate(["Question: 2+2?\nAnswer:"], max_new_tokens=2)
    assert gemma._cached_folder().is_dir()
    again = TransformersGenerator("gemma-3-270m")
    assert again.generate(["Question: What is the capital of France?\nAnswer:"], max_new_tokens=6)[0]


def test_smollm2_chat_runtime_loads():
    gen = TransformersGenerator("smollm2-135m-instruct")
    (answer,) = gen.generate(["Question: What is the capital of France?\nAnswer:"], max_new_tokens=12)
    assert gen.chat and "Paris" in answer


@pytest.mark.skipif(importlib.util.find_spec("llama_cpp") is None, reason="llama-cpp-python not installed")
def test_llama_cpp_runtime_is_chosen_when_installed():
    gen = load_generator("gemma-3-270m")
    assert gen.runtime == "llama.cpp"
    (answer,) = gen.generate(["Context: The Eiffel Tower is in Rome.\nQuestion: In which city is the Eiffel Tower?\nAnswer:"])
    assert "Rome" in answer


def test_end_to_end_with_real_models(tmp_path, embedder, gemma):
    store = Store(tmp_path / "full", embedder)
    store.add_passages(tiny_corpus())
    answer = Pipeline(store, gemma).ask("What is the capital of Veldoria?")
    assert (answer.text, answer.source, answer.citations) == ("Marrowgate", "corpus", ("t1",))
    store.close()
    empty = Store(tmp_path / "empty", embedder)
    closed_book = Pipeline(empty, gemma).ask("What is the capital of France?")
    assert closed_book.source == "parametric" and closed_book.text
    empty.close()


@pytest.mark.skipif(importlib.util.find_spec("llama_cpp") is None, reason="llama-cpp-python not installed")
def test_llama_cpp_contexts_side_by_side_give_the_answers_of_one_in_order():
    from rag.models.generator import LlamaCppGenerator

    prompts = [f"Question: What is the capital of {c}?\nAnswer:" for c in ("France", "Italy", "Japan", "Spain", "Peru")]
    two = LlamaCppGenerator("gemma-3-270m", n_contexts=2, n_ctx=256).generate(prompts, max_new_tokens=8)
    one = LlamaCppGenerator("gemma-3-270m", n_contexts=1, n_ctx=256).generate(prompts, max_new_tokens=8)
    assert two == one
    assert "Paris" in two[0] and "Tokyo" in two[2]
