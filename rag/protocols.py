"""The seams of the library. Any object with these methods plugs in."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple, Protocol, runtime_checkable

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


class ContinuationScore(NamedTuple):
    """The log-probability (natural log) of a continuation given its prompt, summed over the
    tokens the continuation adds, and how many tokens those are."""

    logprob: float
    n_tokens: int

    @property
    def mean(self) -> float:
        """The length-normalised log-probability: per token, so long answers are not
        penalised for their length alone."""
        return self.logprob / max(1, self.n_tokens)


@runtime_checkable
class Scorer(Protocol):
    """Scores text under a language model: an optional capability of a generator.

    Generators that have it (both runtimes of :mod:`rag.models.generator`) let the poison
    detector read perplexity and the reader score candidate answers; those without it still
    work, and the perplexity term and the likelihood reader are absent.
    """

    def token_logprobs(self, texts: Sequence[str]) -> list[np.ndarray]:
        """Per text, the log-probability (natural log) of each token after the first given
        the tokens before it: a float array of length ``n_tokens - 1``."""
        ...

    def continuation_logprobs(
        self, items: Sequence[tuple[str, Sequence[str]]], *, keep: int | None = None
    ) -> list[list[ContinuationScore]]:
        """Per ``(prompt, continuations)`` item, per continuation, how likely the model finds
        the continuation right after the prompt (plain text, no chat template). With
        ``keep``, only the ``keep`` continuations of an item whose first token is likeliest
        are scored in full; the others score ``-inf`` (a cheap beam of one step).

        The prompt and ``prompt + continuation`` are tokenised alike, and the tokens the
        continuation adds are the ones scored. Each prompt is evaluated once for all its
        continuations, so the cost grows with the continuations, not with prompts times
        continuations.
        """
        ...
