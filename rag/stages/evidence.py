"""What the knowledge filter decides about each passage: kept as evidence, or dropped."""

from __future__ import annotations

from dataclasses import dataclass

from rag.types import Passage, Source


@dataclass(frozen=True, slots=True)
class Evidence:
    """A passage that bears on the question, with the answer it gives (if it is a fact)."""

    passage: Passage
    source: Source
    score: float
    answer: str
    reason: str


@dataclass(frozen=True, slots=True)
class Dropped:
    passage_id: str
    score: float
    reason: str


@dataclass(frozen=True, slots=True)
class FilterDecision:
    kept: tuple[Evidence, ...]
    dropped: tuple[Dropped, ...]
