"""A generator wrapper that remembers its completions, for evaluations."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

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
