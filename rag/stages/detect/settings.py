"""The detector's settings checked in one place: each bad value is refused with its name."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from rag.errors import ConfigError
from rag.protocols import Generator, Scorer
from rag.stages.detect.records import SIGNALS

#: How the contest tells which answer a passage speaks for (see ``PoisonDetector``'s ``support``).
SUPPORTS = ("rules", "likelihood")


def check_settings(
    *,
    generator: Generator | None,
    signals: Sequence[str],
    weights: Mapping[str, float] | None,
    threshold: float,
    duplicate_threshold: float,
    shingle_threshold: float,
    min_cluster: int,
    contest_margin: float,
    topic_ratio: float,
    max_new_tokens: int,
    support: str,
    min_lift: float,
    scorer: Scorer | None,
    nll_range: tuple[float, float],
    window_nll_range: tuple[float, float],
    decisive: Sequence[str],
) -> None:
    """Refuse the first setting of a :class:`~rag.stages.detect.PoisonDetector` that is out
    of range (the arguments are the detector's, documented there).

    Raises:
        ConfigError: Naming the bad setting and its value.

    Example:
        >>> from rag.stages.detect.records import DECISIVE
        >>> check_settings(
        ...     generator=None, signals=("echo",), weights={"echo": -1.0}, threshold=0.5,
        ...     duplicate_threshold=0.8, shingle_threshold=0.5, min_cluster=3, contest_margin=2.0,
        ...     topic_ratio=0.5, max_new_tokens=8, support="rules", min_lift=0.0, scorer=None,
        ...     nll_range=(1.0, 2.0), window_nll_range=(1.0, 2.0), decisive=DECISIVE)
        Traceback (most recent call last):
        ...
        rag.errors.ConfigError: weights['echo'] must be a finite number >= 0, got -1.0
    """
    if isinstance(signals, str):
        msg = ("signals must be a sequence of names such as ('echo', 'anomaly'), "
               f"got the string {signals!r}")
        raise ConfigError(msg)
    unknown = [s for s in signals if s not in SIGNALS]
    if unknown:
        msg = f"unknown signal(s) {unknown} in signals; choose from {list(SIGNALS)}"
        raise ConfigError(msg)
    for name, weight in (weights or {}).items():
        if name not in SIGNALS:
            msg = f"unknown signal {name!r} in weights; choose from {list(SIGNALS)}"
            raise ConfigError(msg)
        if not isinstance(weight, int | float) or not math.isfinite(weight) or weight < 0:
            msg = f"weights[{name!r}] must be a finite number >= 0, got {weight!r}"
            raise ConfigError(msg)
    for name, value, lo in (("threshold", threshold, 0.0),
                            ("duplicate_threshold", duplicate_threshold, -1.0),
                            ("shingle_threshold", shingle_threshold, 0.0)):
        if not isinstance(value, int | float) or not lo <= value <= 1.0:
            msg = f"{name} must lie in [{lo:g}, 1], got {value!r}"
            raise ConfigError(msg)
    if not isinstance(min_cluster, int) or min_cluster < 2:
        msg = f"min_cluster must be an integer >= 2, got {min_cluster!r}"
        raise ConfigError(msg)
    if not isinstance(contest_margin, int | float) or not 1.0 <= contest_margin < math.inf:
        msg = f"contest_margin must be a finite number >= 1, got {contest_margin!r}"
        raise ConfigError(msg)
    if not isinstance(topic_ratio, int | float) or not 0.0 <= topic_ratio <= 1.0:
        msg = f"topic_ratio must lie in [0, 1], got {topic_ratio!r}"
        raise ConfigError(msg)
    if not isinstance(max_new_tokens, int) or max_new_tokens < 1:
        msg = f"max_new_tokens must be a positive integer, got {max_new_tokens!r}"
        raise ConfigError(msg)
    for name, bounds in (("nll_range", nll_range), ("window_nll_range", window_nll_range)):
        if (not isinstance(bounds, tuple | list) or len(bounds) != 2
                or not all(isinstance(b, int | float) and math.isfinite(b) for b in bounds)
                or not 0 <= bounds[0] < bounds[1]):
            msg = f"{name} must be two finite numbers 0 <= low < high, got {bounds!r}"
            raise ConfigError(msg)
    if scorer is not None and not callable(getattr(scorer, "token_logprobs", None)):
        msg = f"scorer must have a token_logprobs(texts) method, got {type(scorer).__name__}"
        raise ConfigError(msg)
    if isinstance(decisive, str) or any(s not in SIGNALS for s in decisive):
        msg = f"decisive must be a sequence of signal names from {list(SIGNALS)}, got {decisive!r}"
        raise ConfigError(msg)
    if support not in SUPPORTS:
        msg = f"support must be one of {list(SUPPORTS)}, got {support!r}"
        raise ConfigError(msg)
    if support == "likelihood" and not callable(getattr(generator, "continuation_logprobs", None)):
        msg = ("support='likelihood' needs a generator that scores continuations "
               f"(continuation_logprobs); got {type(generator).__name__}: use support='rules'")
        raise ConfigError(msg)
    if not isinstance(min_lift, int | float) or not math.isfinite(min_lift):
        msg = f"min_lift must be a finite number, got {min_lift!r}"
        raise ConfigError(msg)
