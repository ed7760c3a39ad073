"""Light structure of short facts and questions, from English surface form alone.

No parser or NER model ships offline, so this module reads what short factual English shows
on its face: names are capitalised (or contain digits), the subject of a fact is a name the
question repeats, and the answer is the part of the fact the question does not repeat.

Example: for the note "Maren Olvecka's mother tongue is Dunmerish." and the question
"What language did Maren Olvecka speak?", the shared name is "Maren Olvecka", and the
unshared spans are "mother tongue" and "Dunmerish"; "Dunmerish" is a name in the object slot,
so it is the answer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from rag.text import (
    FILLER,
    NAME_JOINERS,
    Token,
    fold,
    name_spans,
    same_name_word,
    same_word,
    tokens,
)


def _in_question(token: Token, question_words: list[str]) -> bool:
    match = same_name_word if token.is_name else same_word
    return any(match(token.norm, q) for q in question_words)


def _narrows(name: str, parts: list[str]) -> bool:
    """``name`` opens with ``parts`` and goes on with more words ("Velkor TR500X" for "Velkor")."""
    own = [t.norm for t in tokens(name) if t.norm not in NAME_JOINERS and t.norm not in FILLER]
    return len(own) > len(parts) and all(same_name_word(p, o) for p, o in zip(parts, own))


def _name_in_question(name: str, question_words: list[str], question_names: list[str]) -> bool:
    """The question names this name: in full, or by a part of it ("Acker" for "Tobin
    Acker") when every name of the question that overlaps it lies inside it."""
    parts = [t for t in tokens(name) if t.norm not in NAME_JOINERS]
    norms = [t.norm for t in parts]
    if all(_in_question(t, question_words) for t in parts):
        # ... unless a longer name of the question starts with it: a question about the
        # "Velkor TR500X" does not name "Velkor" (a name it ends with, "Ostrander" of "Jonas
        # Ostrander", is the same one shortened).
        return not any(_narrows(other, norms) for other in question_names)
    for other in question_names:
        q_parts = [t.norm for t in tokens(other) if t.norm not in NAME_JOINERS]
        if (q_parts and any(len(q) >= 4 for q in q_parts)
                and all(any(same_name_word(q, n) for n in norms) for q in q_parts)):
            return True
    return False


@dataclass(frozen=True, slots=True)
class FactReading:
    """How one fact sentence relates to one question.

    Attributes:
        answer: The span of the fact the question asks for ("" when none stands out).
        subject: Names of the fact (other than the answer) that the question repeats.
        missing_names: Names of the fact (other than the answer) the question does not repeat.
        masked: The fact with the answer replaced by "what" (the question it answers).
        relation: The fact without subject names and answer (what it says about them).
        question_relation: The question without the names it shares with the fact.
    """

    answer: str
    subject: tuple[str, ...]
    missing_names: tuple[str, ...]
    masked: str
    relation: str
    question_relation: str


_TIME_Q = re.compile(r"\b(when|year|date|century|month|how old)\b", re.I)
_NUMBER_Q = re.compile(r"\b(how many|how much|how tall|how high|how long|how big|how large|population)\b", re.I)
_NAME_Q = re.compile(r"^\s*(who|whom|whose|where)\b|\bby whom\b|\b(which|what) (city|town|country|person|company|river)\b",
                     re.I)


def expected_type(question: str) -> str:
    """What kind of answer a question wants: ``time``, ``number``, ``name`` or ``any``."""
    if _TIME_Q.search(question):
        return "time"
    if _NUMBER_Q.search(question):
        return "number"
    if _NAME_Q.search(question):
        return "name"
    return "any"


def fits_type(span: str, kind: str) -> bool | None:
    """Whether an answer span has the shape a question type wants (``None``: cannot tell)."""
    has_digit = any(c.isdigit() for c in span)
    if kind in ("time", "number"):
        return has_digit
    if kind == "name":
        return any(t.is_name for t in tokens(span))
    return None


def read_fact(fact: str, question: str) -> FactReading:
    """Find the answer span of ``fact`` for ``question``, and the subject they share."""
    q_words = [t.norm for t in tokens(question)]
    kind = expected_type(question)
    toks = tokens(fact)
    q_names = name_spans(question)
    # Names the question refers to, even by a part ("Acker" for "Tobin Acker"), are the
    # subject as a whole: no word of them can be the answer.
    fact_names = name_spans(fact)
    named = [n for n in fact_names if _name_in_question(n, q_words, q_names)]
    covered = [(fact.find(n), fact.find(n) + len(n)) for n in named]
    candidates: list[list[Token]] = []
    run: list[Token] = []
    for tok in toks:
        shared = _in_question(tok, q_words) or any(lo <= tok.start < hi for lo, hi in covered)
        if not shared and tok.norm not in FILLER:
            run.append(tok)
        elif run and not shared and tok.norm in NAME_JOINERS:
            run.append(tok)  # "United States of America" stays one span
        else:
            if run:
                candidates.append(run)
            run = []
    if run:
        candidates.append(run)
    candidates = [part for c in candidates for part in _split_names(c)]
    candidates = [_trim(c) for c in candidates if _trim(c)]
    answer_toks = max(candidates, key=lambda c: _answer_score(c, candidates, toks, kind), default=[])
    if answer_toks and fits_type(fact[answer_toks[0].start : answer_toks[-1].end], kind) is False:
        answer_toks = []  # the fact holds no span of the kind the question asks for
    answer = fact[answer_toks[0].start : answer_toks[-1].end] if answer_toks else ""
    names = [n for n in fact_names if not answer or fold(n) not in fold(answer) and fold(answer) not in fold(n)]
    subject = tuple(n for n in names if n in named)
    # A lone capitalised word opening the sentence ("Historians record that ...") may be no
    # name at all, so it does not count against the fact.
    opener = toks[0].text if toks else ""
    missing = tuple(n for n in names if n not in subject and n != opener)
    if answer_toks:
        masked = fact[: answer_toks[0].start] + "what" + fact[answer_toks[-1].end :]
    else:
        masked = fact
    relation = masked
    question_relation = question
    for name in subject:
        relation = re.sub(re.escape(name) + r"(['’]s)?", " ", relation)
        question_relation = _remove_name(question_relation, name)
    return FactReading(answer, subject, missing, masked.strip(), _squash(relation), _squash(question_relation))


def _remove_name(text: str, name: str) -> str:
    words = {t.norm for t in tokens(name)} - NAME_JOINERS
    kept = [t.text for t in tokens(text) if t.norm not in words]
    return " ".join(kept)


def _squash(text: str) -> str:
    return " ".join(text.split()).strip(" .,;")


def _split_names(run: list[Token]) -> list[list[Token]]:
    """Split "follows Buddhism" into "follows" | "Buddhism" and "citizen of Japan" into
    "citizen of" | "Japan": a name does not share a span with the lowercase words next to
    it, while joiners inside a name ("James I of Aragon") stay in it."""
    parts: list[tuple[bool, list[Token]]] = []
    for i, tok in enumerate(run):
        inside_name = (
            tok.norm in NAME_JOINERS and parts and parts[-1][0] and i + 1 < len(run) and run[i + 1].is_name
        )
        kind = tok.is_name or bool(inside_name)
        if parts and parts[-1][0] == kind:
            parts[-1][1].append(tok)
        else:
            parts.append((kind, [tok]))
    return [toks for _, toks in parts]


def _trim(run: list[Token]) -> list[Token]:
    while run and run[0].norm in FILLER:
        run = run[1:]
    while run and run[-1].norm in FILLER:
        run = run[:-1]
    return run


def _answer_score(cand: list[Token], candidates: list[list[Token]], toks: list[Token], kind: str) -> float:
    """Names and numbers make answers; so does the object slot (after the verb, at the end);
    a span of the kind the question asks for (a year for "when") beats all of those."""
    score = 0.0
    span = " ".join(t.text for t in cand)
    fits = fits_type(span, kind)
    if fits is not None:
        score += 4.0 if fits else -4.0
    elif span.replace(",", "").isdigit():
        score -= 3.0  # a question that asks for no number is not answered by a bare one
    first = cand[0]
    sentence_initial = toks and first.start == toks[0].start
    if any(t.is_name for t in cand) and not (sentence_initial and len(cand) == 1 and first.norm in FILLER):
        score += 2.0
    if cand is candidates[-1]:
        score += 1.0
    if len(cand) == 1 and first.text.islower() and (first.norm.endswith("ly") or first.norm.endswith("ed")):
        score -= 1.5  # adverbs and participles ("originally", "started") are not answers
    return score
