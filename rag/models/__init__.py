"""Offline model loading: embedders and generators from installed packages or local files."""

from __future__ import annotations

import re
from pathlib import Path

from rag.errors import ConfigError
from rag.models.embedder import SentenceTransformerEmbedder
from rag.models.generator import LlamaCppGenerator, TransformersGenerator, load_generator
from rag.models.offline import DEFAULT_EMBEDDER, DEFAULT_GENERATOR, EMBEDDERS, GENERATORS
from rag.protocols import Embedder

__all__ = [
    "DEFAULT_EMBEDDER", "DEFAULT_GENERATOR", "EMBEDDERS", "GENERATORS", "LlamaCppGenerator",
    "SentenceTransformerEmbedder", "TransformersGenerator", "load_embedder", "load_generator",
]

_HASH = re.compile(r"hash-(\d+)")


def load_embedder(spec: str | Path = DEFAULT_EMBEDDER) -> Embedder:
    """An embedder from a packaged name, a local sentence-transformers folder, or ``hash-N``
    (the deterministic test fake of dimension N)."""
    if match := _HASH.fullmatch(str(spec)):
        from rag.testing import HashEmbedder

        return HashEmbedder(int(match.group(1)))
    if str(spec) in EMBEDDERS or Path(spec).is_dir():
        return SentenceTransformerEmbedder(spec)
    msg = f"embedder {str(spec)!r} is not {', '.join(EMBEDDERS)}, hash-N, or a model folder"
    raise ConfigError(msg)
