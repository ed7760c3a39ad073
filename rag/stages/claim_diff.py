"""Where a claim and an evidence sentence differ: the aligned spans a checker must judge.

A claim and the sentence that bears on it are mostly minimal pairs: the same words but for
a span or two ("is located in the western part" against "is in the eastern part"). The
alignment is the longest common subsequence of their word stems (:func:`rag.text.stem`);
what is left over are the differing blocks, each a span of the claim against the span of
the sentence it stands in place of. Blocks of stopwords only ("the", "is") change no
statement and are dropped; so are negations, which are judged by polarity.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from difflib import SequenceMatcher

from rag.text import NUMBER_WORDS, STOPWORDS, stem, tokens

#: Negative particles: each flips the polarity of the sentence it is in (judged there, not here).
NEGATIONS = frozenset({"not", "never", "no", "nor", "neither", "none", "nobody", "nothing", "cannot", "without"})
_NUMBER = re.compile(r"(\d+)(?:st|nd|rd|th)?")


@dataclass(frozen=True, slots=True)
class Difference:
    """One differing block: the claim's span in place of the sentence's.

    Attributes:
        claim_span: The claim's words of the block (``""`` when the sentence adds words).
        sentence_span: The sentence's words of the block (``""`` when the claim adds words).
        prefix: The claim's text before the block (what both share up to it, roughly).
        suffix: The claim's text after the block.
    """

    claim_span: str
    sentence_span: str
    prefix: str
    suffix: str


def differences(claim: str, sentence: str) -> list[Difference]:
    """The content blocks in which ``claim`` and ``sentence`` differ, in claim order.

    Example:
        >>> [(d.claim_span, d.sentence_span) for d in differences(
        ...     "Orla Venn plays the violin.", "Orla Venn played the cello.")]
        [('violin', 'cello')]
    """
    a, b = tokens(claim), tokens(sentence)
    matcher = SequenceMatcher(None, [stem(t.norm) for t in a], [stem(t.norm) for t in b], autojunk=False)
    out = []
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op == "equal":
            continue
        mine, theirs = a[i1:i2], b[j1:j2]
        if all(_function_word(t.norm) for t in (*mine, *theirs)):
            continue
        start = mine[0].start if mine else (a[i1].start if i1 < len(a) else len(claim))
        end = mine[-1].end if mine else start
        out.append(Difference(claim[start:end], sentence[theirs[0].start : theirs[-1].end] if theirs else "",
                              claim[:start].rstrip(), claim[end:].strip()))
    return out


def _function_word(word: str) -> bool:
    return word in STOPWORDS or word in NEGATIONS or word.replace("’", "'").endswith("n't")


def numbers(text: str) -> set[int] | None:
    """The number values ``text`` states (digits, ordinals, number words), or ``None`` when
    it holds a token with digits that is not one plain number (a date such as ``22.9.1917``,
    a code such as ``T2``): such forms are not read, so they never count as another value."""
    out: set[int] = set()
    for t in tokens(text):
        if t.norm in NUMBER_WORDS:
            out.add(NUMBER_WORDS[t.norm])
        elif (m := _NUMBER.fullmatch(t.norm)) is not None:
            out.add(int(m.group(1)))
        elif any(c.isdigit() for c in t.norm):
            return None
    return out


def other_value(diff: Difference, sentence: str) -> bool:
    """Whether the claim puts another number where the sentence states one ("three Oscars"
    against "two Oscars"): both spans state numbers and none of the claim's is stated
    anywhere in the sentence."""
    mine, theirs, everywhere = numbers(diff.claim_span), numbers(diff.sentence_span), numbers(sentence)
    if not mine or not theirs or everywhere is None:
        return False
    return not mine & everywhere
