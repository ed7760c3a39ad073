"""Words, stems, names and answers: the text helpers every part of ``rag`` shares.

One home for each concept, so that the sparse index, the stages, the detector and the
metrics read text the same way:

* :func:`fold` (case and accents), :data:`WORD` / :func:`words` (``\\w+`` words of folded
  text) and :func:`tokenize` (those words without stopwords: the sparse index's terms);
* :func:`tokens` (words with their offsets and surface form, for reading structure),
  :func:`stem` / :func:`stems` (a crude suffix stripper) and :func:`same_word`;
* :func:`name_spans` / :func:`name_words` (capitalised or numeric runs: the only name
  finder, as no NER model ships offline) and :func:`same_name_word` (names up to a typo);
* :func:`same_answer`: whether two short answers name the same thing.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

#: A word: a run of letters, digits and underscores.
WORD = re.compile(r"\w+", re.UNICODE)

STOPWORDS = frozenset(
    """a an and are as at be been being but by can could did do does doing for from had has
    have having he her hers him his how i if in into is it its itself me my no nor not of on
    or our ours she so some such than that the their theirs them then there these they this
    those through to too very was we were what when where which while who whom whose why will
    with would you your yours""".split()
)
WH_WORDS = frozenset({"what", "who", "whom", "whose", "where", "when", "which", "why", "how"})
#: Words that join the parts of a name ("James I of Aragon", "Leonardo da Vinci").
NAME_JOINERS = frozenset({"of", "de", "da", "del", "della", "der", "den", "van", "von", "la", "le",
                          "du", "di", "des", "y", "al", "bin", "ibn", "the", "and", "&"})
#: Words that carry no fact of their own: auxiliaries and time adverbs of edit notes.
FILLER = STOPWORDS | WH_WORDS | frozenset(
    {"now", "currently", "also", "still", "today", "actually", "officially", "new", "longer"}
)
#: Number words and the numbers they name ("three seasons" states a 3).
NUMBER_WORDS = {w: i for i, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
    "seventeen eighteen nineteen twenty".split())}
_ARTICLES = frozenset({"a", "an", "the"})


# ------------------------------------------------------------------------------ words


def fold(text: str) -> str:
    """Lowercase and strip accents, so that 'Déjà' and 'deja' compare equal."""
    if text.isascii():  # the common case, and the hot path of indexing
        return text.lower()
    decomposed = unicodedata.normalize("NFKD", text.lower())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def words(text: str) -> list[str]:
    """The folded words of ``text``, stopwords and all.

    Example:
        >>> words("The Café de Flore, 1887!")
        ['the', 'cafe', 'de', 'flore', '1887']
    """
    return WORD.findall(fold(text))


def tokenize(text: str, *, stopwords: frozenset[str] = STOPWORDS) -> list[str]:
    """Word tokens, folded, without stopwords: the terms the sparse index sees."""
    return [t for t in words(text) if t not in stopwords]


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


def shingles(text: str, n: int = 3) -> frozenset[tuple[str, ...]]:
    """The word ``n``-grams of ``text`` (the whole text as one when it is shorter)."""
    ws = words(text)
    if len(ws) < n:
        return frozenset({tuple(ws)}) if ws else frozenset()
    return frozenset(tuple(ws[i : i + n]) for i in range(len(ws) - n + 1))


# ------------------------------------------------------------------------------ tokens and stems

# a word may hold inner apostrophes, full stops and hyphens ("O'Neill", "U.S", "Moby-Dick")
_TOKEN = re.compile(r"[\w][\w'’.-]*[\w]|[\w]", re.UNICODE)


@dataclass(frozen=True, slots=True)
class Token:
    """A word of a text with its offsets; ``norm`` is folded, without a possessive 's."""

    text: str
    start: int
    end: int

    @property
    def norm(self) -> str:
        return fold(re.sub(r"['’]s$", "", self.text))

    @property
    def is_name(self) -> bool:
        return self.text[0].isupper() or any(c.isdigit() for c in self.text)


def tokens(text: str) -> list[Token]:
    """The words of ``text`` with their offsets, in order."""
    return [Token(m.group(), m.start(), m.end()) for m in _TOKEN.finditer(text)]


#: Words whose suffix is not a suffix ("founded" is not "found", "news" is not "new").
_STEM_EXCEPTIONS = frozenset({"founded", "news", "series", "species", "analysis", "sometimes", "thus"})


def stem(word: str) -> str:
    """A crude suffix stripper: enough to match plays/play, founded/found, speaks/speak."""
    w = fold(word)
    if w in _STEM_EXCEPTIONS:
        return w
    for suffix in ("ing", "ed", "es", "s"):
        if len(w) > len(suffix) + 3 and w.endswith(suffix):
            return w[: -len(suffix)]
    return w


def stems(text: str) -> list[str]:
    """The stems of the words of ``text``, in order."""
    return [stem(w) for w in words(text)]


def same_word(a: str, b: str) -> bool:
    """The same word up to a suffix (stems equal, or one a short extension of the other)."""
    sa, sb = stem(a), stem(b)
    if sa == sb:
        return True
    short, long_ = sorted((sa, sb), key=len)
    return len(short) >= 3 and long_.startswith(short) and len(long_) - len(short) <= 2


# ------------------------------------------------------------------------------ names


def name_spans(text: str) -> list[str]:
    """Runs of capitalised or numeric tokens (names), joined by name joiners; the
    sentence-initial function word ("The", "What") is not part of a name.

    Example:
        >>> name_spans("What did Ada Quell of Varnholm write in 1887?")
        ['Ada Quell of Varnholm', '1887']
    """
    toks = tokens(text)
    spans: list[list[Token]] = []
    current: list[Token] = []
    for i, tok in enumerate(toks):
        lowered = tok.norm
        gap = text[toks[i - 1].end : tok.start] if i else ""
        starts_sentence = i == 0 or any(c in gap for c in ".!?;:")
        if current and gap.strip():  # a name never runs across punctuation
            spans.append(current)
            current = []
        if tok.is_name and not (starts_sentence and lowered in FILLER):
            current.append(tok)
        elif current and lowered in NAME_JOINERS and i + 1 < len(toks) and toks[i + 1].is_name:
            current.append(tok)
        else:
            if current:
                spans.append(current)
            current = []
    if current:
        spans.append(current)
    return [text[s[0].start : s[-1].end].removesuffix("'s").removesuffix("’s") for s in spans]


def name_words(text: str) -> list[str]:
    """The words of the names and numbers in ``text``, joiners left out ("Ada", "Quell",
    "Varnholm" of "Ada Quell of Varnholm")."""
    return [t.text for name in name_spans(text) for t in tokens(name) if t.is_name]


def _edit_distance_at_most(a: str, b: str, limit: int) -> bool:
    """Whether Levenshtein(a, b) <= limit (banded, stops as soon as it cannot be)."""
    if abs(len(a) - len(b)) > limit:
        return False
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, start=1):
        current = [i] + [0] * len(b)
        for j, cb in enumerate(b, start=1):
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb))
        if min(current) > limit:
            return False
        previous = current
    return previous[-1] <= limit


def same_name_word(a: str, b: str) -> bool:
    """Words of a name match up to a typo: one edit in words of 5-7 letters, two from 8
    ("Varnholm" and "Varnhol"), as questions often misspell foreign names."""
    if same_word(a, b):
        return True
    if not (a.isalpha() and b.isalpha()):
        return False  # "Korvath-1" and "Korvath-2" are different things
    shorter = min(len(a), len(b))
    return shorter >= 5 and _edit_distance_at_most(a, b, 1 if shorter < 8 else 2)



# ------------------------------------------------------------------------------ answers


def answer_words(answer: str) -> tuple[str, ...]:
    """What :func:`same_answer` compares: the answer's content words (folded, stopwords
    out, number words as digits), or, for an answer of stopwords only ("The Who"), its
    words without articles.

    Example:
        >>> answer_words("The Three Graces of Varnholm")
        ('3', 'graces', 'varnholm')
    """
    content = [str(NUMBER_WORDS.get(w, w)) for w in tokenize(answer)]
    return tuple(content or (str(NUMBER_WORDS.get(w, w)) for w in words(answer) if w not in _ARTICLES))


def same_answer(a: str, b: str) -> bool:
    """Two short answers name the same thing: the content words of one (see
    :func:`answer_words`) all occur in the other's, in the same order, gaps allowed.

    So case, accents, punctuation, stopwords, number words and added qualifiers do not
    matter ("the Osk" and "Osk"; "Varnholm" and "Varnholm, Ostrelia"; "H. Ada Quell" and
    "H. Ada 'Ostra' Quell"; "17 days" and "seventeen days"), while other words and another
    order do ("Paris" and "Rome"; "A beat B" and "B beat A"). An empty answer agrees with
    nothing. Measured on the development data's labelled answer pairs by
    ``eval/bench_answer_equivalence.py``.

    Example:
        >>> same_answer("Varnholm", "Varnholm, Ostrelia"), same_answer("the Osk", "Osk")
        (True, True)
        >>> same_answer("Varnholm", "Ostrelia"), same_answer("of", "University of Varnholm")
        (False, False)
    """
    wa, wb = answer_words(a), answer_words(b)
    if not wa or not wb:
        return False
    short, long_ = sorted((wa, wb), key=len)
    return longest_common_subsequence(short, long_) == len(short)
