"""Poisoned-context detector: independent signals per passage, quarantine, robust aggregate.

Corpus poisoning (PoisonedRAG and its kin) injects passages crafted to be retrieved for a
target question and to make the reader give the attacker's answer. The attacks leave
different marks, so the detector reads several *independent* signals, each on a 0..1 scale
(0 clean, 1 certainly poisoned), and combines them:

========================  ======  =========================================================
signal                    weight  what it measures
========================  ======  =========================================================
``echo``                  0.6     the passage repeats the question near-verbatim at a
                                  sentence start (black-box PoisonedRAG prepends it)
``cluster``               0.5     a crowd of near-duplicates converging on one answer that
                                  the rest of the evidence does not support
``isolation``             0.4     the passage's own answer loses the robust vote of all
                                  passages' isolated answers (RobustRAG)
``trusted_conflict``      0.4     its answer contradicts a trusted answer (memory, user);
                                  contradicting the parametric answer counts 0.35 only
``anomaly``               0.6     improbable under the generator (white-box HotFlip poisons)
``instruction``           0.6     instructions aimed at the model ("ignore previous ...")
``geometry``              0.3     one of a group the embedder's geometry reads as crafted
                                  for the question (:mod:`~rag.stages.detect.geometry`)
========================  ======  =========================================================

The combined score is the weighted sum clipped to [0, 1]; a passage is poisoned when the
score reaches the threshold (0.5) and independent evidence agrees: two signals read at least
0.5, or a decisive one does (``instruction``; see ``PoisonDetector``'s ``decisive``). An
echoed question or a token salad needs a second mark (a lost vote is one): a FAQ passage
opens with its question, and biomedical or foreign text reads improbable. ``cluster``,
``isolation`` and ``trusted_conflict`` need each other or a third signal: natural duplicates, noisy extraction and honest minority passages are common in
clean retrieval, so a lone vote loss must not quarantine anything; and a corpus passage
that contradicts an edit in memory is *superseded*, not poisoned: the edit wins by
preference anyway, and the stale passage stays visible as the conflict it is.

Robust aggregation. Each passage's answer is read *alone* (extraction first, then one
batched generator call for the passages extraction left open). Answers are grouped by
normalised text and containment ("Paris" ~ "Paris, France"). Votes are not counted per
passage: near-duplicate passages giving the same answer form one *unit* whose members share
a single vote, and every vote is weighted by the passage's trust: 1 - s / threshold, where
s is its score from the signals that do not depend on the vote (a passage those signals
already condemn keeps only a token vote). Six near-copies of a poison therefore weigh as
much as one independent passage at most, and less as soon as any other signal reads them
as suspicious. Sharing one vote (rather than square-root weighting, which still lets six
copies outvote one passage 2.4 to 1) is the choice that keeps the vote robust at the 6x
poisoning rates of the literature. Ties go to the answer that agrees with a trusted answer,
then with the parametric answer, then to the one read by more independent units, then to
the one ranked first; never to the one read by more passages, which near-copies inflate.

Anomaly. ``anomaly`` is a measurement: each passage's negative log-likelihood per token
under a :class:`~rag.protocols.Scorer` (both generator runtimes of :mod:`rag.models` are one;
the pipeline passes its generator), the mean over the passage and the worst window of eight
tokens, each ramped between bounds set above every clean text measured and below the
published HotFlip poisons (see :mod:`~rag.stages.detect.anomaly`). Without a scorer it reads
only subword markers. Each text is scored once and its reading remembered.

The package keeps one module per concern: :mod:`~rag.stages.detect.records` (signals,
verdicts, decisions), one module per text signal (:mod:`~rag.stages.detect.echo`,
:mod:`~rag.stages.detect.anomaly`, :mod:`~rag.stages.detect.instruction`), the answer-based
signals (:mod:`~rag.stages.detect.agreement`), the grouping of answers
(:mod:`~rag.stages.detect.answers`), what a passage states
(:mod:`~rag.stages.detect.statements`), who speaks for which answer, by those rules or by
the generator's likelihood (:mod:`~rag.stages.detect.support`), the vote and the contest
(:mod:`~rag.stages.detect.vote`), which passages are on the question's topic
(:mod:`~rag.stages.detect.topic`), and :class:`PoisonDetector`, which composes them
(:mod:`~rag.stages.detect.detector`; its settings are checked in
:mod:`~rag.stages.detect.settings`).
"""

from rag.stages.detect.agreement import PARAMETRIC_CONFLICT
from rag.stages.detect.anomaly import (
    NLL_RANGE,
    WINDOW_NLL_RANGE,
    anomaly_signal,
    marker_signal,
    perplexity_signal,
)
from rag.stages.detect.detector import PoisonDetector
from rag.stages.detect.echo import echo_signal
from rag.stages.detect.instruction import instruction_signal
from rag.stages.detect.records import (
    DEFAULT_WEIGHTS,
    SIGNALS,
    DetectionDecision,
    DetectionRequest,
    Signal,
    Verdict,
)
from rag.stages.detect.settings import SUPPORTS
from rag.stages.detect.vote import TOPIC_COSINE

__all__ = [
    "DEFAULT_WEIGHTS",
    "NLL_RANGE",
    "PARAMETRIC_CONFLICT",
    "SIGNALS",
    "SUPPORTS",
    "TOPIC_COSINE",
    "WINDOW_NLL_RANGE",
    "DetectionDecision",
    "DetectionRequest",
    "PoisonDetector",
    "Signal",
    "Verdict",
    "anomaly_signal",
    "marker_signal",
    "echo_signal",
    "instruction_signal",
    "perplexity_signal",
]
