"""Comparison questions ("Which magazine was started first, A or B?"): what they ask for, and
the answer from the values the evidence states, compared in code."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from rag.stages.read import sentences
from rag.text import NUMBER_WORDS, STOPWORDS, fold, name_spans, tokens

#: Comparative words and what they ask for: the smaller or the larger value, of a date or a
#: quantity. The comparison itself is done here, in code: a small generator does not
#: compare two years reliably.
_COMPARATIVES: dict[str, tuple[str, str]] = {
    **dict.fromkeys(("first", "earlier", "earliest", "older", "oldest", "before", "sooner"), ("min", "time")),
    **dict.fromkeys(("later", "latest", "younger", "youngest", "newer", "newest", "recently", "recent", "last"),
                    ("max", "time")),
    **dict.fromkeys(("more", "most", "larger", "largest", "bigger", "biggest", "longer", "longest", "taller",
                     "tallest", "higher", "highest", "greater", "greatest", "heavier", "wider", "deeper"),
                    ("max", "number")),
    **dict.fromkeys(("fewer", "fewest", "less", "least", "smaller", "smallest", "shorter", "shortest", "lower",
                     "lowest", "lighter"), ("min", "number")),
}
_OPTIONS = re.compile(r"(?P<a>[^,?]+?)\s+or\s+(?P<b>[^,?]+?)\s*\??\s*$")
_YEAR = re.compile(r"(?<!\d)(1[0-9]{3}|20[0-9]{2})(?!\d)")
_NUMBER = re.compile(r"(?<![\w.])\d{1,3}(?:,\d{3})+(?![\d])|(?<![\w.])\d+(?:\.\d+)?(?![\d])")


@dataclass(frozen=True, slots=True)
class Comparison:
    """A question asking which of two named things has the smaller or larger value.

    Attributes:
        options: The two things, as the question names them.
        pick: ``min`` or ``max``.
        kind: ``time`` (a year is compared) or ``number``.
        word: The comparative word the question uses.
    """

    options: tuple[str, str]
    pick: str
    kind: str
    word: str


def comparison(question: str) -> Comparison | None:
    """The comparison a question asks for, or ``None``.

    The question must end in two options joined by "or" and hold a comparative word
    ("Which magazine was started first, Korvel's Quarterly or Tallow Review?"); each
    option must name something (a capitalised word or a number). When no comma sets the
    options off, the first option starts after the comparative word.

    Example:
        >>> comparison("Which magazine was started first Korvel's Quarterly or Tallow Review?").options
        ("Korvel's Quarterly", 'Tallow Review')
    """
    text = question.strip()
    words = [t.norm for t in tokens(text)]
    hit = next(((w, _COMPARATIVES[w]) for w in words if w in _COMPARATIVES), None)
    if hit is None or " or " not in text:
        return None
    word, (pick, kind) = hit
    tail = text.rsplit(",", 1)[1] if "," in text else text
    if "," not in text:
        # no comma: the first option starts after the comparative word
        at = re.search(rf"\b{re.escape(word)}\b", tail, flags=re.I)
        tail = tail[at.end():] if at else tail
    m = _OPTIONS.search(tail)
    if not m:
        return None
    a, b = (re.sub(r"^(?:the\s+)?(?:between\s+)?", "", m[g].strip(" :;\"'"), flags=re.I) for g in ("a", "b"))
    if not (name_spans(a) and name_spans(b)) or len(a.split()) > 8 or len(b.split()) > 8:
        return None
    return Comparison((a, b), pick, kind, word)


def _values(text: str, kind: str) -> list[float]:
    if kind == "time":
        return [float(y) for y in _YEAR.findall(text)]
    found = [float(n.replace(",", "")) for n in _NUMBER.findall(text)]
    found += [float(NUMBER_WORDS[w]) for w in re.findall(r"[a-z]+", text.lower()) if w in NUMBER_WORDS]
    return found


def compare(comp: Comparison, question: str, paragraphs: Sequence[tuple[str, str]]) -> tuple[str, tuple[str, ...], str] | None:
    """Answer a comparison from stated values: ``(answer, ids, reason)`` or ``None``.

    ``paragraphs`` are (passage id, paragraph) pairs. The value of an option is read from
    the paragraphs that name it: the sentence sharing most content words with the question
    (the comparative word aside) among those holding a value of the kind asked for (a year
    for time, any number otherwise), and in it the first value (the smallest year when the
    question asks for the earliest, since "(1844–1846)" opens with the start). ``None``
    when an option has no value or the two values are equal.
    """
    asked = {w for w in (t.norm for t in tokens(question)) if w not in STOPWORDS and w != comp.word}
    found: list[tuple[float, str]] = []
    for option in comp.options:
        option_words = [t.norm for t in tokens(option) if t.norm not in STOPWORDS] or [fold(option)]
        best: tuple[int, float, str] | None = None
        for pid, paragraph in paragraphs:
            if not all(w in fold(paragraph) for w in option_words):
                continue
            for sentence in sentences(paragraph) or [paragraph]:
                values = _values(sentence, comp.kind)
                if not values:
                    continue
                overlap = len(asked & {t.norm for t in tokens(sentence)})
                value = min(values) if comp.kind == "time" and comp.pick == "min" else values[0]
                if best is None or overlap > best[0]:
                    best = (overlap, value, pid)
        if best is None:
            return None
        found.append((best[1], best[2]))
    (va, ida), (vb, idb) = found
    if va == vb:
        return None
    a_wins = (va < vb) == (comp.pick == "min")
    answer = comp.options[0] if a_wins else comp.options[1]
    fmt = (lambda v: f"{v:g}")
    reason = (f"comparison by code ({comp.word}): {comp.options[0]} {fmt(va)} vs {comp.options[1]} {fmt(vb)}")
    return answer, tuple(dict.fromkeys((ida, idb))), reason
