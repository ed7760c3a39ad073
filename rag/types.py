"""Records that flow through the library: plain frozen dataclasses.

Vocabulary:

* A :class:`Passage` is a unit of retrievable text. ``kind`` says what it is (a corpus
  ``passage``, a memory ``note`` or a ``qa`` pair); ``origin`` says which preference level
  it belongs to (``memory`` for edits, ``corpus`` for ingested documents).
* An :class:`Answer` names the ``source`` that won, one of :data:`SOURCES`, highest first.
* Every stage appends a :class:`StageRecord` to the answer's ``trace``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

#: Preference levels, highest first: user > memory > corpus > parametric.
SOURCES: tuple[str, ...] = ("user", "memory", "corpus", "parametric")
Source = Literal["user", "memory", "corpus", "parametric", "none"]
Kind = Literal["passage", "note", "qa"]
#: Every :data:`Kind`, in a fixed order (indexes store a kind as its position here).
PASSAGE_KINDS: tuple[str, ...] = ("passage", "note", "qa")

#: Namespace that every question sees in addition to its own.
SHARED_NAMESPACE = "shared"


@dataclass(frozen=True, slots=True)
class Passage:
    """A unit of retrievable text with provenance.

    Example:
        >>> Passage(id="p1", text="The Eiffel Tower is in Paris.", title="Eiffel Tower").origin
        'corpus'
    """

    id: str
    text: str
    title: str = ""
    kind: Kind = "passage"
    namespace: str = SHARED_NAMESPACE
    metadata: Mapping[str, Any] = field(default_factory=dict)

    @property
    def origin(self) -> Source:
        """The preference level this passage belongs to: ``memory`` or ``corpus``."""
        return "corpus" if self.kind == "passage" else "memory"

    @property
    def full_text(self) -> str:
        """Title and text joined, as indexed and shown to the generator."""
        if self.title and not self.text.startswith(self.title):
            return f"{self.title}. {self.text}"
        return self.text


@dataclass(frozen=True, slots=True)
class ScoredPassage:
    """A passage with the score and 1-based rank a retriever gave it."""

    passage: Passage
    score: float
    rank: int
    retriever: str

    @property
    def id(self) -> str:
        return self.passage.id


@dataclass(frozen=True, slots=True)
class Query:
    """One question, with facts the user states in the request and the asker's namespace.

    Example:
        >>> Query("Where is the Eiffel Tower?", user_facts=("The Eiffel Tower is in Rome.",))
        Query(question='Where is the Eiffel Tower?', user_facts=('The Eiffel Tower is in Rome.',), namespace='shared')
    """

    question: str
    user_facts: tuple[str, ...] = ()
    namespace: str = SHARED_NAMESPACE


@dataclass(frozen=True, slots=True)
class StageRecord:
    """What one stage decided about one question, and how long it took."""

    stage: str
    decision: str
    duration_ms: float = 0.0
    details: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Answer:
    """The pipeline's answer to one question.

    Attributes:
        text: The answer; empty when the pipeline abstains.
        source: The preference level the answer came from, or ``none`` on abstention.
        citations: Ids of the passages the answer was taken from.
        conflicts: Candidate answers from other sources that disagreed.
        flags: Notes about suspicious evidence (poison verdicts and the like).
        trace: One record per stage that ran.
    """

    text: str
    source: Source
    citations: tuple[str, ...] = ()
    conflicts: tuple[Mapping[str, Any], ...] = ()
    flags: tuple[Mapping[str, Any], ...] = ()
    trace: tuple[StageRecord, ...] = ()
    question: str = ""

    @property
    def abstained(self) -> bool:
        return self.source == "none"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict with ``answer``, ``source``, ``citations`` and the rest."""
        data = asdict(self)
        data["answer"] = data.pop("text")
        return data
