"""What the pipeline does, as one frozen record: an ablation is a different config, not different code."""

from __future__ import annotations

from dataclasses import dataclass

from rag.errors import ConfigError
from rag.stages.arbitrate import ON_CONTESTED
from rag.stages.detect import SIGNALS, SUPPORTS
from rag.types import SOURCES

PARAMETRIC_MODES = ("fallback", "always", "never")
ON_POISONED = ("fallback", "abstain")


@dataclass(frozen=True, slots=True)
class PipelineConfig:
    """What the pipeline does; an ablation is a different config, not different code.

    Attributes:
        k: Passages retrieved per question.
        rewrite: Search with several rewritings of the question, fused.
        decompose: Answer nested (multi-hop) questions one hop at a time.
        max_passages: Corpus passages read per question.
        extractive: Read answers out of the evidence before asking the generator (off:
            the generator answers, as in plain RAG).
        reader: How answers are read out of the evidence when ``extractive``:
            ``likelihood`` (evidence spans scored by the generator; extraction by rules
            with a generator that cannot score) or ``extractive`` (rules only). See
            :mod:`rag.stages.read`.
        filter: Drop evidence that does not bear on the question (off: every retrieved
            passage counts, as in plain RAG).
        arbiter: Choose among sources by ``order`` (off: plain RAG, the reader reads the
            retrieved passages, memory first when ``memory_first``).
        memory_first: Without the arbiter, put memory passages before corpus passages.
        trigger: Answer from a confident QA-memory hit without reading.
        trigger_threshold: Filter score a QA pair needs to trigger.
        cache: Reuse recent answers until the store changes.
        parametric: ``fallback`` (closed-book answer only when nothing else answers),
            ``always`` (also to report conflicts with it) or ``never``.
        abstain: Abstain instead of answering from parametric memory alone.
        order: Source preference, highest first.
        detect: Quarantine corpus passages the poisoned-context detector flags.
        detect_signals: The detector's signals (see :data:`rag.stages.detect.SIGNALS`).
        detect_threshold: Combined score from which a passage is quarantined.
        detect_perplexity: Read the ``anomaly`` signal as the passage's perplexity under
            the generator, when the generator can score text (:class:`~rag.protocols.Scorer`);
            off, or with a generator that cannot score, the signal reads subword markers
            only. Each passage text is scored once and its reading cached (about 0.35 s
            per passage with the default generator on 2 cores).
        on_poisoned: When the detector quarantined every corpus passage and neither user
            nor memory answers: ``fallback`` (the parametric answer, if ``parametric``
            allows one) or ``abstain``.
        on_contested: When the corpus passages that survived the detector disagree and
            their vote does not decide (one passage against one: the tie an attacker can
            always force), and neither user nor memory answers: ``abstain`` (the answer
            is empty and every side is listed in ``Answer.conflicts``), ``parametric``
            (the side the closed-book answer agrees with wins; if it agrees with none,
            abstain) or ``vote`` (the vote's winner, tie or not).
        contest_margin: The vote decides when its winner has more than this many times
            the votes of every contradicting answer.
        detect_support: How the vote tells which answer a corpus passage speaks for:
            ``rules`` (its sentences state it, ranked by a relation lexicon) or
            ``likelihood`` (the answer the passage raises most under the generator; needs a
            generator that scores continuations). See :mod:`rag.stages.detect.support`.
        corroborate: When the only corpus evidence is one crowd of near-copies (three or
            more passages that are one vote), retrieve ``widen`` times deeper once and
            inspect again: a fully poisoned top k hides the clean passages just below it.
            A crowd that search does not corroborate either is quarantined (flag type
            ``uncorroborated``), and the question is answered as if it were not there.
        widen: How many times ``k`` the corroborating search retrieves.
    """

    k: int = 5
    max_passages: int = 3
    rewrite: bool = True
    decompose: bool = True
    extractive: bool = True
    reader: str = "likelihood"
    filter: bool = True
    arbiter: bool = True
    memory_first: bool = True
    trigger: bool = True
    trigger_threshold: float = 0.9
    cache: bool = True
    parametric: str = "fallback"
    abstain: bool = False
    order: tuple[str, ...] = SOURCES
    detect: bool = True
    detect_signals: tuple[str, ...] = SIGNALS
    detect_threshold: float = 0.5
    detect_perplexity: bool = True
    on_poisoned: str = "fallback"
    on_contested: str = "abstain"
    contest_margin: float = 2.0
    detect_support: str = "rules"
    corroborate: bool = True
    widen: int = 3

    def __post_init__(self) -> None:
        if self.k < 1 or self.max_passages < 1:
            msg = f"k and max_passages must be positive, got k={self.k}, max_passages={self.max_passages}"
            raise ConfigError(msg)
        if self.reader not in ("likelihood", "extractive"):
            msg = f"reader must be 'likelihood' or 'extractive', got {self.reader!r}"
            raise ConfigError(msg)
        if self.parametric not in PARAMETRIC_MODES:
            msg = f"parametric must be one of {PARAMETRIC_MODES}, got {self.parametric!r}"
            raise ConfigError(msg)
        if self.on_poisoned not in ON_POISONED:
            msg = f"on_poisoned must be one of {ON_POISONED}, got {self.on_poisoned!r}"
            raise ConfigError(msg)
        if self.on_contested not in ON_CONTESTED:
            msg = f"on_contested must be one of {ON_CONTESTED}, got {self.on_contested!r}"
            raise ConfigError(msg)
        if not isinstance(self.widen, int) or self.widen < 1:
            msg = f"widen must be a positive integer, got {self.widen!r}"
            raise ConfigError(msg)
        if not isinstance(self.contest_margin, int | float) or not 1.0 <= self.contest_margin < float("inf"):
            msg = f"contest_margin must be a finite number >= 1, got {self.contest_margin!r}"
            raise ConfigError(msg)
        if isinstance(self.detect_signals, str) or any(s not in SIGNALS for s in self.detect_signals):
            msg = f"detect_signals must be a tuple of names from {SIGNALS}, got {self.detect_signals!r}"
            raise ConfigError(msg)
        if self.detect_support not in SUPPORTS:
            msg = f"detect_support must be one of {SUPPORTS}, got {self.detect_support!r}"
            raise ConfigError(msg)
        if not 0.0 <= self.detect_threshold <= 1.0:
            msg = f"detect_threshold must lie in [0, 1], got {self.detect_threshold!r}"
            raise ConfigError(msg)
