"""Text normalisation and comparison shared by the sparse index, the stages and the metrics."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

_WORD = re.compile(r"\w+", re.UNICODE)

STOPWORDS = frozenset(
    """a an and are as at be been being but by can could did do does doing for from had has
    have having he her hers him his how i if in into is it its itself me my no nor not of on
    or our ours she so some such than that the their theirs them then there these they this
    those through to too very was we were what when where which while who whom whose why will
    with would you your yours""".split()
)


def fold(text: str) -> str:
    """Lowercase and strip accents, so that 'Déjà' and 'deja' compare equal."""
    if text.isascii():  # the common case, and the hot path of indexing
        return text.lower()
    decomposed = unicodedata.normalize("NFKD", text.lower())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def tokenize(text: str, *, stopwords: frozenset[str] = STOPWORDS) -> list[str]:
    """Word tokens, folded, without stopwords: the terms the sparse index sees."""
    return [t for t in _WORD.findall(fold(text)) if t not in stopwords]


def longest_common_subsequence(a: Sequence[str], b: Sequence[str]) -> int:
    """Length of the longest common subsequence of two token lists (order kept, gaps allowed).

    Example:
        >>> longest_common_subsequence("who built the bridge".split(), "the bridge who built it".split())
        2
    """
    prev = [0] * (len(b) + 1)
    for x in a:
        cur = [0]
        for j, y in enumerate(b):
            cur.append(prev[j] + 1 if x == y else max(prev[j + 1], cur[j]))
        prev = cur
    return prev[-1]
