"""English verb forms and clause structure, crude on purpose: enough for the short questions
rewritten here (base forms, third person, participles, where a clause's subject ends, and
question word order)."""

from __future__ import annotations

import re
from collections.abc import Sequence

from rag.text import NAME_JOINERS, STOPWORDS, WH_WORDS

AUX = frozenset({"is", "was", "are", "were", "has", "have", "had", "can", "could", "will", "would",
                  "shall", "should", "may", "might", "must", "do", "does", "did"})
DO = frozenset({"do", "does", "did"})
#: Words that open a subject noun phrase inside a clause ("where *the river* rises").
_DETERMINERS = frozenset({"the", "a", "an", "his", "her", "its", "their", "my", "our", "your",
                          "this", "these", "those"})
_PRONOUNS = frozenset({"he", "she", "it", "they", "we", "i", "you"})
#: Past tenses whose base form the suffix rules get wrong.
_IRREGULAR_PAST = {
    "wrote": "write", "built": "build", "made": "make", "ran": "run", "led": "lead", "won": "win",
    "sold": "sell", "held": "hold", "taught": "teach", "bought": "buy", "began": "begin",
    "drew": "draw", "sang": "sing", "grew": "grow", "gave": "give", "took": "take",
    "found": "find", "founded": "found", "left": "leave", "met": "meet", "lost": "lose",
    "became": "become", "came": "come", "went": "go", "saw": "see", "knew": "know",
    "told": "tell", "brought": "bring", "spoke": "speak", "chose": "choose", "fought": "fight",
    "flew": "fly", "rose": "rise", "fell": "fall", "died": "die", "lay": "lie", "struck": "strike",
    "sent": "send", "spent": "spend", "shot": "shoot", "wore": "wear", "bore": "bear",
}
#: Past participles that differ from the regular "-ed" form, by base form.
_IRREGULAR_PARTICIPLE = {
    "write": "written", "build": "built", "make": "made", "run": "run", "lead": "led", "win": "won",
    "sell": "sold", "hold": "held", "teach": "taught", "buy": "bought", "begin": "begun",
    "draw": "drawn", "sing": "sung", "grow": "grown", "give": "given", "take": "taken",
    "find": "found", "leave": "left", "meet": "met", "lose": "lost", "become": "become",
    "come": "come", "go": "gone", "see": "seen", "know": "known", "tell": "told",
    "bring": "brought", "speak": "spoken", "choose": "chosen", "fight": "fought", "fly": "flown",
    "rise": "risen", "fall": "fallen", "strike": "struck", "send": "sent", "spend": "spent",
    "shoot": "shot", "wear": "worn", "bear": "born",
}
PARTICIPLES = frozenset(_IRREGULAR_PARTICIPLE.values()) | {"born", "based", "located", "situated"}
#: Verbs whose place is "at" an institution rather than "in" a place ("X works at").
AT_VERBS = frozenset({"work", "study", "teach", "play", "train", "serve", "research"})
_VOWELS = frozenset("aeiou")
SKIP = STOPWORDS | WH_WORDS


def is_past(word: str) -> bool:
    return word in _IRREGULAR_PAST or (word.endswith("ed") and len(word) > 3)


def _needs_e(stem_: str) -> bool:
    """Whether a stem cut from "-ed" lost a final "e" (created, moved, composed, managed)."""
    if len(stem_) < 2:
        return False
    last, before = stem_[-1], stem_[-2]
    if last in "vcz" or (last == "s" and before in _VOWELS and stem_[-3:-2] not in _VOWELS):
        return True
    single_vowel = before in _VOWELS and (len(stem_) < 3 or stem_[-3] not in _VOWELS)
    return stem_.endswith(("at", "ag", "ib", "ud", "id", "rg", "dg")) or (single_vowel and last in "rm")


def base_form(verb: str) -> str:
    """The base form of a past or third-person verb: works -> work, founded -> found."""
    w = verb.lower()
    if w in _IRREGULAR_PAST:
        return _IRREGULAR_PAST[w]
    if w.endswith("ied") and len(w) > 4:
        return w[:-3] + "y"
    if w.endswith("ed") and len(w) > 4:
        s = w[:-2]
        if len(s) > 2 and s[-1] == s[-2] and s[-1] not in "lsz":
            return s[:-1]  # stopped -> stop
        return s + "e" if _needs_e(s) else s
    if w.endswith("ies") and len(w) > 4:
        return w[:-3] + "y"
    if w.endswith(("ches", "shes", "sses", "xes", "zes", "oes")):
        return w[:-2]
    if w.endswith("s") and not w.endswith("ss") and len(w) > 3:
        return w[:-1]
    return w


def third_person(base: str) -> str:
    if base.endswith(("s", "sh", "ch", "x", "z", "o")):
        return base + "es"
    if base.endswith("y") and base[-2:-1] not in _VOWELS:
        return base[:-1] + "ies"
    return base + "s"


def participle(verb: str) -> str:
    """The past participle (also the regular past): founded, written, coached."""
    w = verb.lower()
    if w in PARTICIPLES:
        return w
    base = base_form(w)
    if base in _IRREGULAR_PARTICIPLE:
        return _IRREGULAR_PARTICIPLE[base]
    if base.endswith("e"):
        return base + "d"
    if base.endswith("y") and base[-2:-1] not in _VOWELS:
        return base[:-1] + "ied"
    return base + "ed"


def looks_verb(word: str) -> bool:
    w = word.lower()
    return w in AUX or is_past(w) or w in PARTICIPLES or (w.endswith("s") and not w.endswith("ss"))


def _is_name_word(word: str) -> bool:
    return word[:1].isupper() or any(c.isdigit() for c in word)


def subject_end(words: Sequence[str], *, do_support: bool = False) -> int:
    """Where the subject of a clause ends (0 when the clause opens with its verb).

    A subject is a pronoun, or a noun phrase: names, lowercase nouns after a determiner or
    a possessive, and "of" links ("the author of Salt Ledger"). After "does"/"did" the verb
    is in its base form and cannot be told from a noun, so of two or more lowercase words in
    a row the last is taken for the verb ("does the river | rise", "does X's older brother |
    play").
    """
    if not words:
        return 0
    first = words[0].lower()
    if first in _PRONOUNS:
        return 1
    if first in _DETERMINERS:
        aux = next((i for i, w in enumerate(words[1:], 1) if w.lower() in AUX), None)
        if aux is not None and aux > 1 and not do_support:
            return aux  # "the company that makes Y | is based"
        i, opened = 1, True
    elif _is_name_word(words[0]):
        i, opened = 0, False
    else:
        return 0
    while i < len(words):
        word, low = words[i], words[i].lower()
        nxt = words[i + 1].lower() if i + 1 < len(words) else ""
        if _is_name_word(word):
            i += 1
            opened = _is_possessive(word)
        elif low in NAME_JOINERS and nxt and (_is_name_word(words[i + 1]) or nxt in _DETERMINERS):
            i += 2 if nxt in _DETERMINERS else 1
            opened = nxt in _DETERMINERS
        elif opened and low not in SKIP:
            run = i
            while run < len(words) and words[run][:1].islower() and words[run].lower() not in SKIP:
                if not do_support and run > i and looks_verb(words[run]):
                    break
                run += 1
                if _is_possessive(words[run - 1]):
                    break
            if do_support and run - i >= 2 and not _is_possessive(words[run - 1]):
                return run - 1
            i, opened = run, _is_possessive(words[run - 1])
        else:
            break
    return i


def _is_possessive(word: str) -> bool:
    return bool(re.search(r"['’]s$", word))


def invert(clause: str) -> str | None:
    """Question word order for a declarative clause, with crude do-support:
    "X was born" -> "was X born", "X works" -> "does X work", "X founded Y" -> "did X found Y".
    """
    words = clause.split()
    end = subject_end(words)
    if end == 0 or end >= len(words):
        return None
    subject, verb, rest = " ".join(words[:end]), words[end], words[end + 1 :]
    v = verb.lower()
    if v in AUX:
        head = [v, subject]
    elif is_past(v):
        head = ["did", subject, base_form(v)]
    elif v.endswith("s") and not v.endswith("ss"):
        head = ["does", subject, base_form(v)]
    else:
        head = ["do", subject, v]
    return " ".join(head + rest)

