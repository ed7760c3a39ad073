"""Rewriting by a small generator (:class:`GeneratorRewriter`) and the checks its output must
pass (:func:`parse_hops`, :func:`parse_paraphrase`) before it replaces the rules' result."""

from __future__ import annotations

import re
from collections.abc import Iterable

from rag.errors import ConfigError
from rag.protocols import Generator
from rag.stages.rewrite.hops import TRIVIAL_OUTER
from rag.stages.rewrite.records import PLACEHOLDER, Hop, Rewrite, check_question, dedupe, strip_q
from rag.stages.rewrite.rules import RuleRewriter
from rag.text import fold, name_spans


class GeneratorRewriter:
    """Asks a generator for a paraphrase and for sub-questions; falls back to the rules.

    The generator is tiny, so its output is checked before use: sub-questions must be one
    question per line, each ending in "?", the later ones referring to the earlier answer,
    and naming nothing the question does not name. Anything else is replaced by the rule
    rewriter's result.

    Args:
        generator: Any :class:`~rag.protocols.Generator`.
        fallback: The rules used for keyword queries and when the output is unusable.
        max_new_tokens: Length limit of each completion.

    Example:
        >>> from rag.testing import ScriptedGenerator
        >>> gen = ScriptedGenerator({r"Steps:\\s*$": "Where was Ada Quell born?\\nWho is the mayor of {answer}?"})
        >>> r = GeneratorRewriter(gen).rewrite("Who is mayor of Ada Quell's home town?")
        >>> r.method, [h.question for h in r.hops]
        ('generator', ['Where was Ada Quell born?', 'Who is the mayor of {answer}?'])
    """

    DECOMPOSE_PROMPT = (
        "Split the question into simple questions, one per line. "
        "Write {answer} for the answer to the line before.\n\n"
        "Question: Who is the mayor of the city where Lena Vost was born?\n"
        "Steps:\nWhere was Lena Vost born?\nWho is the mayor of {answer}?\n\n"
        "Question: What currency is used in the country whose capital is Dunmere?\n"
        "Steps:\nWhich country has the capital Dunmere?\nWhat currency is used in {answer}?\n\n"
        "Question: Who wrote The Glass Orchard?\n"
        "Steps:\nWho wrote The Glass Orchard?\n\n"
        "Question: {question}\nSteps:\n"
    )
    PARAPHRASE_PROMPT = (
        "Say the question in other words.\n\n"
        "Question: Where was Lena Vost born?\nRewrite: What is the birthplace of Lena Vost?\n\n"
        "Question: Who founded Harrow Mills?\nRewrite: Which person started Harrow Mills?\n\n"
        "Question: {question}\nRewrite:"
    )
    STOP = ("\n\n", "\nQuestion:")

    def __init__(self, generator: Generator, *, fallback: RuleRewriter | None = None,
                 max_new_tokens: int = 48) -> None:
        if not callable(getattr(generator, "generate", None)):
            msg = f"generator must have a generate(prompts, ...) method, got {type(generator).__name__}"
            raise ConfigError(msg)
        if not isinstance(max_new_tokens, int) or max_new_tokens < 1:
            msg = f"max_new_tokens must be a positive integer, got {max_new_tokens!r}"
            raise ConfigError(msg)
        self.generator = generator
        self.fallback = fallback if fallback is not None else RuleRewriter()
        self.max_new_tokens = max_new_tokens

    def paraphrase_prompt(self, question: str) -> str:
        return self.PARAPHRASE_PROMPT.replace("{question}", question)

    def decompose_prompt(self, question: str) -> str:
        return self.DECOMPOSE_PROMPT.replace("{question}", question)

    def rewrite(self, question: str) -> Rewrite:
        return self.rewrite_many([question])[0]

    def rewrite_many(self, questions: Iterable[str]) -> list[Rewrite]:
        """Batched :meth:`rewrite`: one generator call for all questions."""
        questions = [check_question(q) for q in questions]
        if not questions:
            return []
        decompose_too = self.fallback.decompose
        prompts: list[str] = []
        for q in questions:
            prompts.append(self.paraphrase_prompt(q))
            if decompose_too:
                prompts.append(self.decompose_prompt(q))
        raw = self.generator.generate(prompts, max_new_tokens=self.max_new_tokens, stop=self.STOP)
        step = 2 if decompose_too else 1
        out = []
        for i, q in enumerate(questions):
            rules = self.fallback.rewrite(q)
            para = parse_paraphrase(raw[step * i] if step * i < len(raw) else "", q)
            hops = parse_hops(raw[step * i + 1], q) if decompose_too and step * i + 1 < len(raw) else None
            if para is None and hops is None:
                out.append(rules)
                continue
            queries = dedupe([q, para or "", *rules.queries[1:]], self.fallback.max_queries)
            out.append(Rewrite(q, queries, hops if hops is not None else rules.hops, "generator"))
        return out


_NUMBERING = re.compile(r"^\s*(?:\d+\s*[.):]|[-*•]|(?:step|q|question)\s*\d*\s*[:.)])\s*", re.I)
_MARKER = re.compile(r"\{\s*(?:answer|ans|1)\s*\}|\[\s*(?:answer|ans|1)\s*\]|<\s*answer\s*>|#1\b|\bANSWER\b",
                     re.I)
_REFERENCE = re.compile(r"\b(?:(?:that|this|the same)\s+[a-z]+|he|she|they|him|them|it|there)\b", re.I)


def _clean_line(line: str) -> str:
    line = _NUMBERING.sub("", line.strip())
    return " ".join(line.strip().strip('"“”').split())


def _names_known(text: str, question: str) -> bool:
    """Every name in ``text`` occurs in ``question``: a tiny model must not invent entities."""
    q = fold(question)
    return all(fold(n) in q for n in name_spans(text.replace(PLACEHOLDER, " ")))


def _with_placeholder(line: str) -> str | None:
    if _MARKER.search(line):
        return _MARKER.sub(PLACEHOLDER, line, count=1)
    m = _REFERENCE.search(line)
    if m is None:
        return None
    if m.group(0).lower() == "there":
        return line[: m.start()] + f"in {PLACEHOLDER}" + line[m.end() :]
    return line[: m.start()] + PLACEHOLDER + line[m.end() :]


def parse_hops(text: str, question: str) -> tuple[Hop, ...] | None:
    """Sub-questions from a generator's output, or ``None`` when they are unusable.

    Usable: two to four lines, each a question ending in "?", the first standing alone,
    each later one referring to the answer before it (``{answer}`` or a "that city"/"he"
    reference, rewritten to ``{answer}``), none repeating the question or naming anything
    the question does not name.

    Example:
        >>> parse_hops("1. Where was Ada Quell born?\\n2. Who is the mayor of that town?",
        ...            "Who is the mayor of the town where Ada Quell was born?")
        (Hop(question='Where was Ada Quell born?'), Hop(question='Who is the mayor of {answer}?'))
        >>> parse_hops("Ada Quell was born in Dunmere.", "Where was Ada Quell born?") is None
        True
    """
    lines = [_clean_line(line) for line in (text or "").splitlines()]
    lines = [line for line in lines if line]
    if not 2 <= len(lines) <= 4 or any(not line.endswith("?") for line in lines):
        return None
    if _MARKER.search(lines[0]) or PLACEHOLDER in lines[0]:
        return None
    resolved = [lines[0]]
    for line in lines[1:]:
        filled = _with_placeholder(line)
        if filled is None:
            return None
        resolved.append(filled)
    key = fold(strip_q(question))
    keys = [fold(strip_q(line)) for line in resolved]
    if key in keys or len(set(keys)) < len(keys) or TRIVIAL_OUTER.match(resolved[-1]):
        return None
    if not all(_names_known(line, question) for line in resolved):
        return None
    if name_spans(question) and not name_spans(lines[0]):
        return None  # the first hop must be about something the question names
    return tuple(Hop(line) for line in resolved)


def parse_paraphrase(text: str, question: str) -> str | None:
    """A generator's paraphrase, or ``None`` when it is unusable: empty, a copy of the question,
    too long, or dropping or inventing a name."""
    line = _clean_line((text or "").strip().splitlines()[0] if (text or "").strip() else "")
    line = re.sub(r"^(?:rewrite|question)\s*:\s*", "", line, flags=re.I)
    if len(line.split()) < 2 or len(line) > 2 * len(question) + 20 or PLACEHOLDER in line:
        return None
    if fold(strip_q(line)) == fold(strip_q(question)):
        return None
    if not _names_known(line, question):
        return None
    if not all(fold(n) in fold(line) for n in name_spans(question)):
        return None
    return line
