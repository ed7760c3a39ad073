"""Multi-hop decomposition (MeLLo): a nested question becomes single hops answered one after
another, each later hop holding ``{answer}`` for the answer before it.

Three splitters read the surface form, tried in order: a relative clause ("the town where X
was born"), a possessive ("X's brother's wife") and an "of" chain ("the founder of the
company of X"). Each gives an inner question and an outer one; the inner one is split again,
up to three levels.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from rag.errors import ConfigError
from rag.stages.rewrite.grammar import AUX, DO, PARTICIPLES, SKIP, invert, is_past, subject_end
from rag.stages.rewrite.records import PLACEHOLDER, Hop, check_question, strip_q
from rag.text import NAME_JOINERS, fold, tokens

#: Nouns for people: "the person who ..." asks "Who ...?", and "X's wife" is a "who".
_GENERIC_PERSONS = frozenset({"person", "man", "woman", "people", "one", "someone", "individual"})
_PERSON_ROLES = _GENERIC_PERSONS | frozenset(
    """father mother parent son daughter child brother sister wife husband spouse partner friend
    founder cofounder co-founder owner ceo chairman chairwoman chair president director head leader
    mayor governor rector principal dean chancellor coach manager captain author writer creator
    inventor discoverer designer architect composer painter editor publisher producer teacher
    mentor successor predecessor""".split()
)

_STOP_ALT = "|".join(sorted(SKIP, key=len, reverse=True))
_NOUN_WORD = rf"(?:(?!(?:{_STOP_ALT})\b)[a-z][\w-]*)"
#: "the <noun> where/that/which/who/whom/whose <clause>" and "the <noun> in which <clause>",
#: with the clause running to the end of the question.
RELATIVE = re.compile(
    rf"\bthe\s+((?:{_NOUN_WORD}\s+){{0,2}}{_NOUN_WORD})\s+"
    r"(?:(in|at|on|for|from|by|with|to|of|into|through)\s+(which|whom)|"
    r"(where|when|that|which|who|whom|whose))\s+(\S.*)$"
)
_NAME = r"[A-Z0-9][\w'’.-]*(?:\s+(?:(?:of|de|da|del|der|van|von|la|le|du|di|the|and)\s+)?[A-Z0-9][\w'’.-]*)*"
#: "the <noun> of [the] <Name>": the innermost link of an "of" chain.
_OF_LINK = re.compile(rf"\bthe\s+((?:{_NOUN_WORD}\s+)?{_NOUN_WORD})\s+of\s+((?:the\s+)?{_NAME})")
TRIVIAL_OUTER = re.compile(
    r"^(?:who|what|which)\s+(?:is|was|are|were)\s+(?:the\s+name\s+of\s+)?\{answer\}\s*\??$", re.I
)
_MAX_DEPTH = 3


def resolve_hop(hop: Hop, previous_answer: str) -> str:
    """The hop's question with ``{answer}`` filled in by the previous hop's answer.

    Raises:
        ConfigError: The hop waits for an answer and ``previous_answer`` is empty (an
            abstention upstream must stop the chain, not ask "Who is the mayor of ?").

    Example:
        >>> resolve_hop(Hop("Who is the mayor of {answer}?"), "Corvenna.")
        'Who is the mayor of Corvenna?'
    """
    if not hop.needs_answer:
        return hop.question
    answer = (previous_answer or "").strip().rstrip(".").strip()
    if not answer:
        msg = f"previous_answer is empty; cannot fill the hop {hop.question!r}"
        raise ConfigError(msg)
    return hop.question.replace(PLACEHOLDER, answer)


def decompose(question: str, extra_queries: list[str] | None = None) -> tuple[Hop, ...]:
    """The hops of a nested question; empty for a single-hop question.

    ``extra_queries`` (when given) collects inner questions of clauses that do not make a
    second hop ("Who is the person that founded X?" is just "Who founded X?").

    Example:
        >>> [h.question for h in decompose("Who founded the company that makes Glimmer Soap?")]
        ['What company makes Glimmer Soap?', 'Who founded {answer}?']
    """
    hops = _decompose(check_question(question), extra_queries if extra_queries is not None else [], 0)
    key = fold(strip_q(question))
    if len(hops) < 2 or any(fold(strip_q(h)) == key for h in hops) or len(set(hops)) < len(hops):
        return ()
    return tuple(Hop(h) for h in hops)


def _decompose(question: str, extra: list[str], depth: int) -> list[str]:
    if depth >= _MAX_DEPTH:
        return []
    for split in (_split_relative, _split_possessive, _split_of_chain):
        parts = split(question, extra)
        if parts is not None:
            inner, outer = parts
            return (_decompose(inner, extra, depth + 1) or [inner]) + [outer]
    return []


def _outer(question: str, start: int, end: int | None = None) -> str:
    body = strip_q(question)
    tail = body[end:] if end is not None else ""
    return f"{body[:start]}{PLACEHOLDER}{tail}?"


def _split_relative(question: str, extra: list[str]) -> tuple[str, str] | None:
    """ "... the <noun> where/that/which/who/whose/in which <clause>?" """
    body = strip_q(question)
    m = RELATIVE.search(body)
    if m is None:
        return None
    noun, prep, _, rel, clause = m.groups()
    inner, moved = None, ""
    for clause_, moved in _clause_tails(body[: m.start()], clause):
        inner = _inner_question(noun, prep, rel, clause_)
        if inner is not None:
            break
    if inner is None:
        return None
    outer = _outer(question, m.start())
    if moved:
        outer = f"{strip_q(outer)} {moved}?"
    if TRIVIAL_OUTER.match(outer):
        extra.append(inner)  # "Who is the person who founded X?" asks one hop: a query, not a hop
        return None
    return inner, outer


def _inner_question(noun: str, prep: str | None, rel: str | None, clause: str) -> str | None:
    """The relative clause as a question of its own (``None`` when it has no subject/verb)."""
    person = noun.split()[-1] in _GENERIC_PERSONS
    wh_noun = "Who" if person else f"What {noun}"
    if prep:  # "the city in which X was born" -> "In which city was X born?"
        inverted = invert(clause)
        return f"{_capitalise(prep)} which {noun} {inverted}?" if inverted else None
    if rel in ("where", "when"):
        inverted = invert(clause)
        return f"{_capitalise(rel)} {inverted}?" if inverted else None
    if rel == "whose":  # "the country whose capital is Z" -> "What country's capital is Z?"
        return f"{'Whose' if person else wh_noun + chr(39) + 's'} {clause}?"
    if subject_end(clause.split()) > 0:  # object clause: "the club that X plays for"
        inverted = invert(clause)
        return f"{wh_noun} {inverted}?" if inverted else None
    return f"{wh_noun} {clause}?"  # subject clause: "the company that makes Y"


def _clause_tails(prefix: str, clause: str) -> list[tuple[str, str]]:
    """The ways to read where a clause ends: (clause, words that belong to the outer question).

    The clause runs to the end of the question unless the noun phrase is the subject of an
    inverted outer question (the prefix ends in an auxiliary): in "Where was the man who
    founded X born?" the last word, "born", is the outer question's; in "In which country is
    the town where X was born?" "born" follows the clause's own "was" and stays. The
    shortened reading is tried first; the caller falls back to the full clause.
    """
    before = prefix.split()[-1].lower() if prefix.split() else ""
    words = clause.split()
    full = [(clause, "")]
    if before not in AUX or len(words) < 2:
        return full
    last = words[-1].lower()
    participle_ = (last in PARTICIPLES or last.endswith("ed")) and words[-2].lower() not in AUX
    if before in DO or participle_:
        return [(" ".join(words[:-1]), words[-1]), *full]
    return full


def _split_possessive(question: str, extra: list[str]) -> tuple[str, str] | None:
    """ "... X's <noun>['s <noun>]...": the owner's noun is the first hop."""
    body = strip_q(question)
    toks = tokens(body)
    for i, tok in enumerate(toks):
        if not (tok.is_name and re.search(r"['’]s$", tok.text)) or i + 1 >= len(toks):
            continue
        if not toks[i + 1].text[0].islower():
            continue  # "The Cartographer's Silence" is a title, not a possessive
        start = _name_start(toks, i)
        # nouns after the possessive, chained by further "'s"
        segments: list[tuple[int, int]] = []  # token index ranges of each noun run
        j = i + 1
        while j < len(toks):
            k = j
            while k < len(toks) and toks[k].text[0].islower() and toks[k].norm not in SKIP \
                    and not (is_past(toks[k].norm) or toks[k].norm in PARTICIPLES):
                k += 1
                if re.search(r"['’]s$", toks[k - 1].text):
                    break
            if k == j:
                break
            segments.append((j, k))
            if not re.search(r"['’]s$", toks[k - 1].text):
                break
            j = k
        if not segments:
            return None
        before = [t.norm for t in toks[:start]]
        last_start, last_end = segments[-1]
        if any(w in DO for w in before) and last_end - last_start > 1:
            segments[-1] = (last_start, last_end - 1)  # "does X's brother play": "play" is the verb
        np_end = toks[segments[-1][1] - 1].end
        outer = _outer(question, toks[start].start, np_end)
        if not TRIVIAL_OUTER.match(outer):
            np = body[toks[start].start : np_end]
            return f"{_wh_for(toks[segments[-1][1] - 1].norm)} is {np}?", outer
        if len(segments) < 2:
            return None  # "What is X's birthplace?" is one hop
        inner_end = toks[segments[-2][1] - 1].end
        inner = re.sub(r"['’]s$", "", body[toks[start].start : inner_end])
        head = toks[segments[-2][1] - 1].norm
        last = body[toks[segments[-1][0]].start : np_end]
        return f"{_wh_for(head)} is {inner}?", f"{body[: toks[start].start]}{PLACEHOLDER}'s {last}?"
    return None


def _name_start(toks: Sequence, i: int) -> int:
    start = i
    while start > 0:
        prev = toks[start - 1]
        if prev.is_name and not (start == 1 and prev.norm in SKIP):  # not the opening "What"
            start -= 1
        elif prev.norm in NAME_JOINERS and start >= 2 and toks[start - 2].is_name:
            start -= 2
        else:
            break
    return start


def _wh_for(noun: str) -> str:
    return "Who" if noun in _PERSON_ROLES else "What"


def _split_of_chain(question: str, extra: list[str]) -> tuple[str, str] | None:
    """ "the <noun> of the <noun> of <Name>" and "the <role> of <Name>" inside a larger question:
    the innermost link is the first hop. A lone "the <noun> of <Name>" ("Where is the head office
    of X?") usually names one relation, so only person roles ("the founder of X") split."""
    body = strip_q(question)
    for m in _OF_LINK.finditer(body):
        noun = m.group(1)
        chained = bool(re.search(r"\bof\s+$", body[: m.start()]))
        if not chained and noun.split()[-1] not in _PERSON_ROLES:
            continue
        outer = _outer(question, m.start(), m.end())
        if TRIVIAL_OUTER.match(outer):
            continue
        return f"{_wh_for(noun.split()[-1])} is {m.group(0)}?", outer
    return None


def _capitalise(text: str) -> str:
    return text[:1].upper() + text[1:]
