"""The ``anomaly`` signal: text a language model finds improbable, as white-box poisons leave it.

HotFlip-style poisons carry a stretch of tokens optimised against a retriever: strings no
writer produces. Their improbability is measured, not described: under the generator, the
worst window of eight tokens of such a passage reads a negative log-likelihood far above any
fluent text's. Measured with gemma-3-270m (``eval/bench_anomaly.py``, 30 targets per set):
GMTP's published HotFlip documents (made against Contriever by another team) have a worst
window of 10.9 nats and up, the project's own token attack 9.8 and up, while gold passages
of NQ, GMTP and RealtimeQA reach 7.3-8.1 at the 95th percentile (9.2 at most), the same with
typos 9.5 at most, and Czech and Welsh text 8.4 at most. The mean over the passage is the
second reading: a passage that is salad throughout.

Letters are not judged. Rules of English spelling, a lexicon of common words and a bigram
model of letters, which this module held before, flagged none of GMTP's documents and half
of the non-English innocence texts: they described the development attack, not poisons.
Without a scorer the signal reads only the markers a subword tokenizer leaves in adversarial
text (``##ing``, ``[MASK]``), which need no language to recognise.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Mapping, Sequence

import numpy as np

from rag.protocols import Scorer
from rag.stages.detect.records import Signal, ramp

#: Mean negative log-likelihood per token (nats) from which the mean reading starts to rise,
#: and where it reaches 1. Fluent encyclopedia text reads about 2.5 to 3.5 under the default
#: generator, text with a typo every few words about 5, token salads 6.5 and up.
NLL_RANGE: tuple[float, float] = (5.5, 8.0)
#: The same for the worst window of eight tokens. The low end sits above every clean
#: passage measured; the high end below every published HotFlip document (see the module).
WINDOW_NLL_RANGE: tuple[float, float] = (8.0, 10.0)
WINDOW = 8
#: Texts whose perplexity reading is remembered (a digest and a short signal each, about 200
#: bytes): a prepared corpus of this many passages stays scored.
CACHE_SIZE = 1_000_000
_PREPARE_BATCH = 32

_SUBWORD = re.compile(r"##\w|\[(mask|unused\d*|cls|sep|pad|unk)\]", re.I)


def marker_signal(text: str) -> Signal:
    """The share of whitespace tokens that carry a subword tokenizer's markers (``##ing``,
    ``[MASK]``), 0.05 -> 0 and 0.2 -> 1: what is left of ``anomaly`` without a scorer.

    Example:
        >>> marker_signal("The capital of Ostrelia is Varnholm.").value
        0.0
        >>> marker_signal("ostrelia ##ving [MASK] capital ##lmn is Duskmere.").value
        1.0
    """
    raws = text.split()
    if not raws:
        return Signal("anomaly", 0.0, "empty text")
    marked = [r for r in raws if _SUBWORD.search(r)]
    share = len(marked) / max(len(raws), 10)  # one marker in four words is still one marker
    detail = f"subword markers on {len(marked)} of {len(raws)} tokens"
    if marked:
        detail += ", e.g. " + ", ".join(repr(m) for m in marked[:3])
    return Signal("anomaly", round(ramp(share, 0.05, 0.2), 3), detail)


def perplexity_signal(
    logprobs: Sequence[float],
    *,
    nll_range: tuple[float, float] = NLL_RANGE,
    window_nll_range: tuple[float, float] = WINDOW_NLL_RANGE,
) -> Signal:
    """How improbable a passage reads under a language model.

    Args:
        logprobs: The passage's per-token log-probabilities (see
            :meth:`rag.protocols.Scorer.token_logprobs`).
        nll_range: Mean negative log-likelihood per token at which the value leaves 0 and
            reaches 1.
        window_nll_range: The same for the worst window of eight tokens.

    Returns:
        An ``anomaly`` signal: the larger of the two ramped readings.

    Example:
        >>> perplexity_signal([-2.0] * 20).value
        0.0
        >>> perplexity_signal([-2.0] * 12 + [-15.0] * 8).value
        1.0
    """
    nll = -np.asarray(logprobs, dtype=np.float64)
    if nll.size == 0:
        return Signal("anomaly", 0.0, "too short to score")
    mean = float(nll.mean())
    width = min(WINDOW, nll.size)
    window = float(np.convolve(nll, np.ones(width) / width, mode="valid").max())
    value = max(ramp(mean, *nll_range), ramp(window, *window_nll_range))
    return Signal("anomaly", round(value, 3),
                  f"perplexity {math.exp(min(mean, 50.0)):.0f} (mean nll {mean:.2f}, "
                  f"worst {WINDOW}-token window {window:.2f})")


def anomaly_signal(text: str, perplexity: Signal | None = None) -> Signal:
    """The ``anomaly`` signal of a passage: its perplexity reading when there is one (see
    :func:`perplexity_signal`), else its subword markers; the larger of both when both speak.

    Args:
        text: The passage text.
        perplexity: The passage's :func:`perplexity_signal`, or ``None`` without a scorer.

    Example:
        >>> anomaly_signal("The capital of Ostrelia is Varnholm.").detail
        'subword markers on 0 of 6 tokens'
        >>> anomaly_signal("The capital of Ostrelia is Varnholm.", perplexity_signal([-2.0] * 9)).value
        0.0
    """
    markers = marker_signal(text)
    if perplexity is None:
        return markers
    if markers.value > perplexity.value:
        return Signal("anomaly", markers.value, f"{markers.detail}; {perplexity.detail}")
    return perplexity


class PerplexityCache:
    """Each text's :func:`perplexity_signal` under a scorer, computed once per text.

    The reading is a property of the passage, not of the question, and the costliest part of
    an inspection (one forward pass per passage): a corpus scored ahead of questions, as an
    index is built ahead of search, stays scored.

    Args:
        scorer: Scores texts under a language model (usually the generator).
        nll_range: Bounds of the mean negative log-likelihood per token.
        window_nll_range: Bounds of the worst eight-token window's.

    Example:
        >>> from rag.testing import ScriptedScorer
        >>> cache = PerplexityCache(ScriptedScorer(), NLL_RANGE, WINDOW_NLL_RANGE)
        >>> cache.prepare(["Varnholm is a city.", "Varnholm is a city."], show_progress=False)
        1
    """

    def __init__(self, scorer: Scorer, nll_range: tuple[float, float], window_nll_range: tuple[float, float]) -> None:
        self.scorer = scorer
        self.nll_range = nll_range
        self.window_nll_range = window_nll_range
        self._readings: dict[bytes, Signal] = {}

    def prepare(self, texts: Sequence[str], *, show_progress: bool | None = None) -> int:
        """Score the texts not scored yet, in batches.

        Args:
            texts: Passage texts (``Passage.text``), as the detector will see them.
            show_progress: Show a progress bar; ``None`` shows one for more than a batch.

        Returns:
            How many texts were scored now.
        """
        todo = list(dict.fromkeys(t for t in texts if _digest(t) not in self._readings))
        if not todo:
            return 0
        from tqdm.auto import tqdm

        show = len(todo) > _PREPARE_BATCH if show_progress is None else show_progress
        with tqdm(total=len(todo), desc="scoring passages", unit="passage", disable=not show, leave=False) as bar:
            for lo in range(0, len(todo), _PREPARE_BATCH):
                self._score(todo[lo : lo + _PREPARE_BATCH])
                bar.update(min(_PREPARE_BATCH, len(todo) - lo))
        return len(todo)

    def readings(self, texts: Sequence[str]) -> Mapping[str, Signal]:
        """The reading of each text, one scorer call for those not seen before."""
        self._score(list(dict.fromkeys(t for t in texts if _digest(t) not in self._readings)))
        return {t: self._readings[_digest(t)] for t in texts}

    def _score(self, texts: list[str]) -> None:
        if not texts:
            return
        if len(self._readings) + len(texts) > CACHE_SIZE:
            self._readings.clear()
        for text, logprobs in zip(texts, self.scorer.token_logprobs(texts), strict=True):
            self._readings[_digest(text)] = perplexity_signal(logprobs, nll_range=self.nll_range,
                                                              window_nll_range=self.window_nll_range)


def _digest(text: str) -> bytes:
    return hashlib.blake2b(text.encode("utf-8"), digest_size=16).digest()
