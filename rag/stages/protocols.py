"""The seams between the pipeline and its stages: what :class:`~rag.pipeline.Pipeline` calls.

Any object with these methods can stand in for the library's own stage (pass it to
``Pipeline(..., knowledge_filter=..., reader=..., detector=...)``), so that a stage is swapped
without touching the pipeline.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from rag.protocols import Embedder
    from rag.stages.detect import DetectionDecision, DetectionRequest
    from rag.stages.filter import FilterDecision
    from rag.stages.read import Reading
    from rag.types import Passage


@runtime_checkable
class EvidenceFilter(Protocol):
    """Keeps the passages that bear on a question (:class:`~rag.stages.filter.KnowledgeFilter`)."""

    def filter(self, question: str, passages: Sequence[Passage], *,
               sources: Sequence[str] | None = None) -> FilterDecision: ...


@runtime_checkable
class AnswerReader(Protocol):
    """Reads short answers out of evidence, and closed book (:class:`~rag.stages.read.Reader`)."""

    def read_many(self, items: Sequence[tuple[str, Sequence[Passage]]]) -> list[Reading]: ...

    def closed_book(self, questions: Sequence[str]) -> list[str]: ...


@runtime_checkable
class PassageDetector(Protocol):
    """Judges retrieved corpus passages (:class:`~rag.stages.detect.PoisonDetector`).

    ``signals`` names what it reads; the pipeline hands it the deeper search's passages
    only when ``"geometry"`` is among them.
    """

    embedder: Embedder
    signals: tuple[str, ...]

    def inspect_many(self, requests: Sequence[DetectionRequest]) -> list[DetectionDecision]: ...

    def needs_corroboration(self, decision: DetectionDecision) -> bool: ...

    def corroborate(self, deeper: DetectionDecision, depth: int) -> DetectionDecision: ...

    def prepare(self, texts: Sequence[str], *, show_progress: bool | None = None) -> int:
        """Do ahead of questions what depends on a passage alone; return how many texts
        needed it (0 for a detector with nothing to prepare)."""
        ...
