"""The rewriter's records (:class:`Hop`, :class:`Rewrite`) and the checks and small text
helpers every part of the rewriter shares."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from rag.errors import ConfigError
from rag.text import fold

#: The placeholder a hop uses for the previous hop's answer.
PLACEHOLDER = "{answer}"
METHODS = ("rules", "generator", "off")


@dataclass(frozen=True, slots=True)
class Hop:
    """One single-hop question of a decomposition.

    Attributes:
        question: The question; it may hold the placeholder ``{answer}``, which stands for
            the previous hop's answer (see :func:`resolve_hop`).

    Example:
        >>> Hop("Who is the mayor of {answer}?").needs_answer
        True
    """

    question: str

    @property
    def needs_answer(self) -> bool:
        """Whether the question waits for the previous hop's answer."""
        return PLACEHOLDER in self.question


@dataclass(frozen=True, slots=True)
class Rewrite:
    """What the rewriter made of one question.

    Attributes:
        question: The original question.
        queries: Search queries, the original first, deduplicated case-insensitively.
        hops: Single-hop questions to answer in order; empty for a single-hop question.
        method: ``rules``, ``generator`` (some generator output was used) or ``off``.

    Example:
        >>> Rewrite.off("Who founded Tallow Mills?")
        Rewrite(question='Who founded Tallow Mills?', queries=('Who founded Tallow Mills?',), hops=(), method='off')
    """

    question: str
    queries: tuple[str, ...]
    hops: tuple[Hop, ...] = ()
    method: str = "rules"

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            msg = f"Rewrite.method must be one of {METHODS}, got {self.method!r}"
            raise ConfigError(msg)
        if not self.queries:
            msg = f"Rewrite.queries must hold at least the question itself, got none for {self.question!r}"
            raise ConfigError(msg)

    @classmethod
    def off(cls, question: str) -> Rewrite:
        """The rewrite of a pipeline that does not rewrite: the question is the only query."""
        question = check_question(question)
        return cls(question, (question,), (), "off")


def check_question(question: object) -> str:
    if not isinstance(question, str):
        msg = f"question must be a string, got {type(question).__name__}: {question!r}"
        raise ConfigError(msg)
    if not re.search(r"\w", question):
        msg = f"question must hold at least one word, got {question!r}"
        raise ConfigError(msg)
    return " ".join(question.split())


def dedupe(queries: Iterable[str], cap: int) -> tuple[str, ...]:
    """Keep the first of each query, comparing without case and final punctuation."""
    seen: set[str] = set()
    kept: list[str] = []
    for query in queries:
        key = fold(query).strip(" ?.!")
        if key and key not in seen:
            seen.add(key)
            kept.append(query)
    return tuple(kept[:cap])


def strip_q(question: str) -> str:
    return question.strip().rstrip("?.! ").strip()

