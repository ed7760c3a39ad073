"""A generator wrapper that remembers its completions, for evaluations."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from rag.errors import ConfigError
from rag.protocols import Generator


class MemoGenerator:
    """Remembers completions by prompt and settings.

    Greedy decoding is deterministic, so the closed-book answer to a question is the same
    under every configuration and store an evaluation compares: it is generated once.

    Example:
        >>> from rag.testing import ScriptedGenerator
        >>> inner = ScriptedGenerator(default="Paris")
        >>> memo = MemoGenerator(inner)
        >>> memo.generate(["Q?", "Q?"]) + memo.generate(["Q?"])
        ['Paris', 'Paris', 'Paris']
        >>> inner.prompts
        ['Q?']
    """

    def __init__(self, inner: Generator) -> None:
        self.inner, self.name = inner, inner.name
        self.memo: dict[tuple[str, tuple], str] = {}

    def generate(self, prompts: Sequence[str], **kwargs: Any) -> list[str]:
        key_of = [(p, tuple(sorted(kwargs.items(), key=str))) for p in prompts]
        todo = list(dict.fromkeys(k for k in key_of if k not in self.memo))
        if todo:
            for k, out in zip(todo, self.inner.generate([k[0] for k in todo], **kwargs)):
                self.memo[k] = out
        return [self.memo[k] for k in key_of]


class MemoScorer(MemoGenerator):
    """A :class:`MemoGenerator` that also remembers token log-probabilities by text (both
    are deterministic), so that a pipeline built on it reads perplexity as on the model."""

    def __init__(self, inner: Generator) -> None:
        super().__init__(inner)
        if not can_score(inner):
            msg = f"generator {inner.name!r} cannot score text (no token_logprobs)"
            raise ConfigError(msg)
        self.scored: dict[str, np.ndarray] = {}

    def __getattr__(self, name: str) -> Any:
        # other scoring calls of the inner model pass through, unremembered
        if name.startswith("_") or name == "inner":
            raise AttributeError(name)
        return getattr(self.inner, name)

    def token_logprobs(self, texts: Sequence[str]) -> list[np.ndarray]:
        todo = list(dict.fromkeys(t for t in texts if t not in self.scored))
        if todo:
            for t, lp in zip(todo, self.inner.token_logprobs(todo), strict=True):  # type: ignore[attr-defined]
                self.scored[t] = lp
        return [self.scored[t] for t in texts]


def can_score(generator: Any) -> bool:
    """Whether ``generator`` scores text (``token_logprobs``)."""
    return callable(getattr(generator, "token_logprobs", None))


def memoize(generator: Generator) -> MemoGenerator:
    """A memo of ``generator`` that also scores (and remembers token log-probabilities)
    when the generator can score, so that a pipeline on it reads as on the model itself."""
    return MemoScorer(generator) if can_score(generator) else MemoGenerator(generator)
