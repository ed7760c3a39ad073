"""Candidate answers: the short spans of a passage that could answer a question.

The likelihood reader (:mod:`rag.stages.read`) lets the generator choose among them, so
this module only has to propose, not to judge: it over-generates from the shape of the
text (capitalisation, digits, stop words) and knows no relation or question type beyond
telling a yes/no question. Kinds of span:

* names and numbers: runs of capitalised or digit-bearing words ("Elvis Presley",
  "October 13, 2015", "Apollo 11"), short lower-case joiners inside allowed ("Bank of
  England"), and every shorter run inside them;
* a number with the word after it ("23 episodes", "64 kg");
* short phrases: runs of up to ``max_phrase_words`` lower-case words with no stop word
  ("midpiece", "wrought iron tower");
* ``yes`` and ``no`` for a question that opens with an auxiliary verb.

Spans made only of the question's own words are left out: an answer adds something.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from rag.text import STOPWORDS, fold, words

_WORD = re.compile(r"[$€£]?\w+(?:['’./:-]\w+)*%?", re.UNICODE)
#: Openers of a yes/no question (an English closed class, not a list grown from misses).
_YES_NO = re.compile(
    r"^\s*(?:is|are|was|were|am|do|does|did|can|could|will|would|shall|should|has|have|had|may|might|must)\b",
    re.IGNORECASE,
)


def is_yes_no(question: str) -> bool:
    """True when ``question`` opens with an auxiliary verb ("Is Paris in France?")."""
    return bool(_YES_NO.match(question))


def _name_like(word: str) -> bool:
    return word[0].isupper() or word[0] in "$€£" or any(c.isdigit() for c in word)


def _joiner(word: str) -> bool:
    # "of", "de", "van", "y": short lower-case words that sit inside names
    return word.islower() and len(word) <= 3


def _spans(text: str, max_name_words: int, max_phrase_words: int) -> list[str]:
    # reference markers ("[135]") are no answers
    words = [w for w in _WORD.finditer(text) if not (text[w.start() - 1 : w.start()] == "[" and text[w.end() : w.end() + 1] == "]")]
    out: list[str] = []

    def gap(i: int) -> str:  # the text between word i and word i + 1, white space as " "
        g = text[words[i].end() : words[i + 1].start()]
        if len(words[i].group()) == 1 and words[i].group().isupper() and g.startswith("."):
            g = g[1:]  # an initial: "John B. Watson"
        return " " if g.isspace() else g

    def emit_runs(run: list[int], longest: int, edge_ok: callable) -> None:  # type: ignore[valid-type]
        for a in range(len(run)):
            for b in range(a, min(len(run), a + longest)):
                if edge_ok(words[run[a]].group()) and edge_ok(words[run[b]].group()):
                    out.append(text[words[run[a]].start() : words[run[b]].end()])

    i = 0
    while i < len(words):  # names and numbers
        if not _name_like(words[i].group()):
            i += 1
            continue
        run = [i]
        j = i
        while j + 1 < len(words):
            g, nxt = gap(j), words[j + 1].group()
            if g == " " and _name_like(nxt):
                run.append(j + 1)
                j += 1
            elif g == ", " and nxt[0].isdigit() and words[j].group()[0].isdigit():  # "13, 2015"
                run.append(j + 1)
                j += 1
            elif (g == " " and _joiner(nxt) and j + 2 < len(words) and gap(j + 1) == " "
                  and _name_like(words[j + 2].group())):
                run += [j + 1, j + 2]
                j += 2
            else:
                break
        emit_runs(run, max_name_words, lambda w: not _joiner(w))
        i = j + 1
    for i, w in enumerate(words):  # a number and its unit or counted noun
        if w.group()[0].isdigit() and i + 1 < len(words) and gap(i) == " " and words[i + 1].group().isalpha():
            out.append(text[w.start() : words[i + 1].end()])
    i = 0
    while i < len(words):  # short phrases of lower-case content words
        run = []
        j = i
        while j < len(words) and words[j].group().islower() and fold(words[j].group()) not in STOPWORDS:
            run.append(j)
            if j + 1 < len(words) and gap(j) != " ":
                j += 1
                break
            j += 1
        emit_runs(run, max_phrase_words, lambda w: True)
        i = max(j, i + 1)
    return out


def candidates(
    question: str, passages: Sequence[str], *, max_name_words: int = 5, max_phrase_words: int = 3
) -> list[str]:
    """Candidate answers to ``question`` from the texts ``passages``, each once, in order of
    first appearance (``yes`` and ``no`` first for a yes/no question).

    Example:
        >>> candidates("Who recorded the song?", ["It was recorded by Elvis Presley in 1961."])
        ['It', 'Elvis', 'Elvis Presley', 'Presley', '1961', 'recorded']
    """
    asked = set(words(question))
    out = ["yes", "no"] if is_yes_no(question) else []
    seen = set(out)
    for text in passages:
        for span in _spans(text, max_name_words, max_phrase_words):
            key = fold(span)
            said = set(words(key))
            if key in seen or not said or said <= asked:
                continue
            seen.add(key)
            out.append(span)
    return out
