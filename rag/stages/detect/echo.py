"""The ``echo`` signal: a passage that repeats the question near-verbatim at a sentence start.

Black-box PoisonedRAG prepends the target question to each crafted text so that it is
retrieved; honest passages answer a question, they do not restate it.
"""

from __future__ import annotations

import math
import re

from rag.stages.detect.records import Signal, ramp
from rag.text import WH_WORDS, WORD, fold, longest_common_subsequence, stem, stems

_SENTENCE_END = re.compile(r"[.!?:;]")


_AUXILIARIES = frozenset(
    "is are was were do does did can could will would should shall has have had may might must".split()
)


def echo_signal(question: str, text: str) -> Signal:
    """How near-verbatim ``text`` repeats ``question``.

    For every window of the passage that starts on a question word, the reading is the
    geometric mean of two shares: the question's words the window repeats in the same order
    (longest common subsequence) and the question's word pairs it repeats side by side. A
    passage that merely talks about the same entities stays low because

    * a declarative answer reorders the question, which breaks its word pairs
      ("Varnholm is the capital" against "Is Varnholm the capital");
    * the question's marker (its wh-word, or its leading auxiliary) must be in the window,
      else the share halves; a question without any marker (a keyword query) halves too,
      since every relevant passage repeats a keyword query;
    * windows inside a sentence count 0.6 (a relative clause "..., who designed the bridge,
      ..." repeats a question legitimately);
    * the share maps to a value from 0.6 (value 0) to 0.9 (value 1).

    Args:
        question: The question asked.
        text: The passage text.

    Returns:
        The ``echo`` signal.

    Example:
        >>> echo_signal("Who designed the Corvel Bridge?",
        ...             "Who designed the Corvel Bridge. Mira Sendak did.").value
        1.0
        >>> echo_signal("Who designed the Corvel Bridge?",
        ...             "The Corvel Bridge was designed by Tomas Hallek.").value
        0.0
    """
    q = stems(question)
    if not q:
        return Signal("echo", 0.0, "question has no words")
    q_set = set(q)
    q_pairs = list(zip(q, q[1:], strict=False))
    marker = next((w for w in q[:3] if w in WH_WORDS), q[0] if q[0] in _AUXILIARIES else None)
    folded = fold(text)
    matches = list(WORD.finditer(folded))
    words = [stem(m.group()) for m in matches]
    # a word starts a sentence when the gap before it holds sentence-ending punctuation
    starts = [i == 0 or bool(_SENTENCE_END.search(folded[matches[i - 1].end() : m.start()]))
              for i, m in enumerate(matches)]
    width = len(q) + 3
    best, best_at, best_cov = 0.0, -1, 0
    for i, w in enumerate(words):
        if w not in q_set:
            continue
        window = words[i : i + width]
        common = longest_common_subsequence(q, window)
        if q_pairs:
            pairs = set(zip(window, window[1:], strict=False))
            share = math.sqrt(common / len(q) * sum(p in pairs for p in q_pairs) / len(q_pairs))
        else:
            share = common / len(q)
        if marker is None or marker not in window:
            share *= 0.5
        if not starts[i]:
            share *= 0.6
        if share > best:
            best, best_at, best_cov = share, i, common
    if best_at < 0:
        return Signal("echo", 0.0, "shares no question word")
    value = round(ramp(best, 0.6, 0.9), 3)
    return Signal("echo", value, f"repeats {best_cov}/{len(q)} question words in order at word {best_at} "
                                 f"(adjusted share {best:.2f})")


# anomaly

# Common English words: the source of the character-bigram model that tells word-like
