"""Rewriting by rules: the keyword query, the declarative paraphrase, and
:class:`RuleRewriter`, which adds the hops of :mod:`rag.stages.rewrite.hops`."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from rag.errors import ConfigError
from rag.stages.rewrite.grammar import (
    AT_VERBS,
    AUX,
    DO,
    PARTICIPLES,
    SKIP,
    looks_verb,
    participle,
    subject_end,
    third_person,
)
from rag.stages.rewrite.hops import RELATIVE, decompose
from rag.stages.rewrite.records import Rewrite, check_question, dedupe, strip_q
from rag.text import name_spans, tokens


class RuleRewriter:
    """Cheap, deterministic rewriting from surface form: keywords, a declarative paraphrase,
    and the decomposition of nested questions.

    Args:
        max_queries: Most search queries per question, the original included.
        decompose: Split nested questions into hops.

    Example:
        >>> r = RuleRewriter().rewrite("Who is the mayor of the town where Ada Quell was born?")
        >>> [h.question for h in r.hops]
        ['Where was Ada Quell born?', 'Who is the mayor of {answer}?']
        >>> r.queries[1]
        'mayor town Ada Quell born'
    """

    def __init__(self, *, max_queries: int = 3, decompose: bool = True) -> None:
        if not isinstance(max_queries, int) or isinstance(max_queries, bool) or max_queries < 1:
            msg = f"max_queries must be a positive integer, got {max_queries!r}"
            raise ConfigError(msg)
        self.max_queries = max_queries
        self.decompose = decompose

    def rewrite(self, question: str) -> Rewrite:
        question = check_question(question)
        extra: list[str] = []
        hops = decompose(question, extra) if self.decompose else ()
        # a nested question has no simple declarative form; its inner question (when a
        # clause did not make a hop) is the better query
        declarative = "" if hops or RELATIVE.search(question) else paraphrase(question)
        queries = [question, keyword_query(question), *extra, declarative]
        return Rewrite(question, dedupe(queries, self.max_queries), hops, "rules")

    def rewrite_many(self, questions: Iterable[str]) -> list[Rewrite]:
        return [self.rewrite(q) for q in questions]


def _name_offsets(text: str) -> list[tuple[int, int]]:
    found, pos = [], 0
    for span in name_spans(text):
        i = text.find(span, pos)
        if i >= 0:
            found.append((i, i + len(span)))
            pos = i + len(span)
    return found


def keyword_query(question: str) -> str:
    """Content words in order: names kept whole, stopwords and question words dropped.

    Example:
        >>> keyword_query("Who is the rector of the university where Ada Quell works?")
        'rector university Ada Quell works'
    """
    spans = _name_offsets(question)
    out: list[str] = []
    for tok in tokens(question):
        span = next((s for s in spans if s[0] <= tok.start < s[1]), None)
        if span is not None:
            if tok.start == span[0]:
                out.append(question[span[0] : span[1]])
        elif tok.norm not in SKIP:
            out.append(re.sub(r"['’]s$", "", tok.text))
    return " ".join(out)


def paraphrase(question: str) -> str:
    """A declarative form of a simple question ("" when none applies): the words that open
    the sentence holding the answer.

    Example:
        >>> paraphrase("Who founded Tallow Mills?"), paraphrase("Where was Ada Quell born?")
        ('Tallow Mills founded by', 'Ada Quell born in')
    """
    words = strip_q(question).split()
    if len(words) < 2:
        return ""
    lw = [w.lower() for w in words]
    if lw[0] == "in" and len(lw) > 2 and lw[1] in ("which", "what"):
        # "In which country is X?" -> "X is in"; "In what year was X born?" -> "X born in"
        aux = next((i for i, w in enumerate(lw[2:], 2) if w in AUX), None)
        if aux is not None and aux + 1 < len(words):
            return _where_form(words[aux], words[aux + 1 :])
        return ""
    wh = lw[0]
    if wh in ("where", "when") and lw[1] in AUX:
        if lw[1] in DO:
            return _do_form(words[2:], suffix="at" if wh == "where" else "in", past=lw[1] == "did")
        return _where_form(words[1], words[2:])
    if wh == "who" and lw[1] not in AUX and looks_verb(lw[1]) and len(words) > 2:
        if any(w in SKIP - {"the", "of", "and", "a", "an"} for w in lw[2:]):
            return ""  # "Who heads the council of X as mayor?": the object's end is unclear
        return f"{' '.join(words[2:])} {participle(lw[1])} by"  # "Who founded X?" -> "X founded by"
    if wh in ("what", "which") and lw[1] not in AUX:
        # "Which club does X compete for?" / "Which shipyard built X?"
        verb = next((i for i, w in enumerate(lw[1:4], 1) if looks_verb(w)), None)
        if verb is None or verb + 1 >= len(words):
            return ""
        if lw[verb] in DO:
            return _do_form(words[verb + 1 :], suffix="", past=lw[verb] == "did")
        if lw[verb] in AUX:
            return ""
        return f"{' '.join(words[verb + 1 :])} {participle(lw[verb])} by"
    if wh in ("what", "who") and lw[1] in ("is", "was", "are", "were") and len(words) > 2:
        rest = words[2:]
        if lw[2] == "the" or "'s" in lw[2] or "’s" in lw[2] or any("'s" in w for w in lw[2:4]):
            return f"{' '.join(rest)} {lw[1]}"  # "What is the capital of X?" -> "the capital of X is"
        end = subject_end(rest)
        if 0 < end < len(rest):  # "Who is X married to?" -> "X is married to"
            return f"{' '.join(rest[:end])} {lw[1]} {' '.join(rest[end:])}"
    return ""


def _where_form(aux: str, rest: Sequence[str]) -> str:
    """"was X born" -> "X born in"; "is X" -> "X is in"."""
    if rest and rest[-1].lower() in PARTICIPLES | {"founded", "established", "held"} | (
        {rest[-1].lower()} if rest[-1].lower().endswith("ed") else set()
    ) and len(rest) > 1:
        return f"{' '.join(rest[:-1])} {rest[-1]} in"
    return f"{' '.join(rest)} {aux.lower()} in"


def _do_form(words: Sequence[str], *, suffix: str, past: bool) -> str:
    """"X work" -> "X works at"; "X compete for" -> "X competes for"."""
    end = subject_end(words, do_support=True)
    if end == 0 or end >= len(words):
        return ""
    verb = words[end].lower()
    verb_form = participle(verb) if past else third_person(verb)
    rest = list(words[end + 1 :])
    if not rest and suffix:
        rest = ["at" if suffix == "at" and verb in AT_VERBS else "in"]
    return " ".join([*words[:end], verb_form, *rest])
