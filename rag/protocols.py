"""The seams of the library. Any object with these methods plugs in."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class Embedder(Protocol):
    """Maps texts to L2-normalised float32 vectors."""

    @property
    def name(self) -> str:
        """Identifies the model; indexes built with another name are rebuilt."""
        ...

    @property
    def dim(self) -> int: ...

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        """Return an array of shape ``(len(texts), dim)``, dtype float32."""
        ...

    def embed_query(self, text: str) -> np.ndarray:
        """Return an array of shape ``(dim,)``, dtype float32.

        An embedder may also offer ``embed_queries(texts) -> (len(texts), dim)``, the same
        in one batch; :meth:`~rag.memory.store.Store.search_many` uses it when present.
        """
        ...


@runtime_checkable
class Generator(Protocol):
    """Completes prompts. Batched: many prompts per call, one completion each."""

    @property
    def name(self) -> str: ...

    def generate(
        self,
        prompts: Sequence[str],
        *,
        max_new_tokens: int = 32,
        stop: Sequence[str] = ("\n",),
    ) -> list[str]:
        """Return one completion per prompt, cut at the first stop string, stripped."""
        ...


@runtime_checkable
class Scorer(Protocol):
    """Scores text under a language model: an optional capability of a generator.

    Generators that have it (both runtimes of :mod:`rag.models.generator`) let the poison
    detector read perplexity; those without it still work, and the perplexity term is absent.
    """

    def token_logprobs(self, texts: Sequence[str]) -> list[np.ndarray]:
        """Per text, the log-probability (natural log) of each token after the first given
        the tokens before it: a float array of length ``n_tokens - 1``."""
        ...
