"""Query rewriting: several search queries per question, and nested questions split into hops.

The rewriter sits first in the pipeline. It follows two ideas from the literature:

* *Several queries per question* (ERM4's Query Rewriter+): the original question, its content
  words for the sparse index, and a declarative form ("X founded by") that reads like the
  sentence holding the answer, which suits dense retrieval.
* *Multi-hop decomposition* (MeLLo): a nested question ("Who is the mayor of the town where
  X was born?") becomes single hops answered one after another against memory ("Where was X
  born?", then "Who is the mayor of {answer}?"). Answering hop by hop lets an edited fact
  (X's new birthplace) propagate to the final answer, where one retrieval for the whole
  question would find the old chain.

:class:`RuleRewriter` does both from English surface form alone (see
:mod:`rag.stages.structure` for why no parser). :class:`GeneratorRewriter` asks a small
generator first and falls back to the rules whenever the generator's output is unusable.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from rag.errors import ConfigError
from rag.memory.text import STOPWORDS, fold
from rag.protocols import Generator
from rag.stages.structure import NAME_JOINERS, WH_WORDS, name_spans, tokens

__all__ = [
    "GeneratorRewriter", "Hop", "Rewrite", "RuleRewriter", "decompose", "keyword_query",
    "paraphrase", "parse_hops", "parse_paraphrase", "resolve_hop",
]

#: The placeholder a hop uses for the previous hop's answer.
PLACEHOLDER = "{answer}"
METHODS = ("rules", "generator", "off")

_AUX = frozenset({"is", "was", "are", "were", "has", "have", "had", "can", "could", "will", "would",
                  "shall", "should", "may", "might", "must", "do", "does", "did"})
_DO = frozenset({"do", "does", "did"})
#: Words that open a subject noun phrase inside a clause ("where *the river* rises").
_DETERMINERS = frozenset({"the", "a", "an", "his", "her", "its", "their", "my", "our", "your",
                          "this", "these", "those"})
_PRONOUNS = frozenset({"he", "she", "it", "they", "we", "i", "you"})
#: Nouns for people: "the person who ..." asks "Who ...?", and "X's wife" is a "who".
_GENERIC_PERSONS = frozenset({"person", "man", "woman", "people", "one", "someone", "individual"})
_PERSON_ROLES = _GENERIC_PERSONS | frozenset(
    """father mother parent son daughter child brother sister wife husband spouse partner friend
    founder cofounder co-founder owner ceo chairman chairwoman chair president director head leader
    mayor governor rector principal dean chancellor coach manager captain author writer creator
    inventor discoverer designer architect composer painter editor publisher producer teacher
    mentor successor predecessor""".split()
)
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
_PARTICIPLES = frozenset(_IRREGULAR_PARTICIPLE.values()) | {"born", "based", "located", "situated"}
#: Verbs whose place is "at" an institution rather than "in" a place ("X works at").
_AT_VERBS = frozenset({"work", "study", "teach", "play", "train", "serve", "research"})
_VOWELS = frozenset("aeiou")
_SKIP = STOPWORDS | WH_WORDS

_STOP_ALT = "|".join(sorted(_SKIP, key=len, reverse=True))
_NOUN_WORD = rf"(?:(?!(?:{_STOP_ALT})\b)[a-z][\w-]*)"
#: "the <noun> where/that/which/who/whom/whose <clause>" and "the <noun> in which <clause>",
#: with the clause running to the end of the question.
_RELATIVE = re.compile(
    rf"\bthe\s+((?:{_NOUN_WORD}\s+){{0,2}}{_NOUN_WORD})\s+"
    r"(?:(in|at|on|for|from|by|with|to|of|into|through)\s+(which|whom)|"
    r"(where|when|that|which|who|whom|whose))\s+(\S.*)$"
)
_NAME = r"[A-Z0-9][\w'’.-]*(?:\s+(?:(?:of|de|da|del|der|van|von|la|le|du|di|the|and)\s+)?[A-Z0-9][\w'’.-]*)*"
#: "the <noun> of [the] <Name>": the innermost link of an "of" chain.
_OF_LINK = re.compile(rf"\bthe\s+((?:{_NOUN_WORD}\s+)?{_NOUN_WORD})\s+of\s+((?:the\s+)?{_NAME})")
_TRIVIAL_OUTER = re.compile(
    r"^(?:who|what|which)\s+(?:is|was|are|were)\s+(?:the\s+name\s+of\s+)?\{answer\}\s*\??$", re.I
)
_MAX_DEPTH = 3


@dataclass(frozen=True, slots=True)
class Hop:
    """One single-hop question of a decomposition.

    Attributes:
        question: The question; it may hold the placeholder ``{answer}``, which stands for
            the previous hop's answer (see :func:`resolve_hop`).

    Example:
        >>> Hop("Who is the mayor of {answer}?").needs_answer
        True
    """

    question: str

    @property
    def needs_answer(self) -> bool:
        """Whether the question waits for the previous hop's answer."""
        return PLACEHOLDER in self.question


@dataclass(frozen=True, slots=True)
class Rewrite:
    """What the rewriter made of one question.

    Attributes:
        question: The original question.
        queries: Search queries, the original first, deduplicated case-insensitively.
        hops: Single-hop questions to answer in order; empty for a single-hop question.
        method: ``rules``, ``generator`` (some generator output was used) or ``off``.

    Example:
        >>> Rewrite.off("Who founded Tallow Mills?")
        Rewrite(question='Who founded Tallow Mills?', queries=('Who founded Tallow Mills?',), hops=(), method='off')
    """

    question: str
    queries: tuple[str, ...]
    hops: tuple[Hop, ...] = ()
    method: str = "rules"

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            msg = f"Rewrite.method must be one of {METHODS}, got {self.method!r}"
            raise ConfigError(msg)
        if not self.queries:
            msg = f"Rewrite.queries must hold at least the question itself, got none for {self.question!r}"
            raise ConfigError(msg)

    @classmethod
    def off(cls, question: str) -> Rewrite:
        """The rewrite of a pipeline that does not rewrite: the question is the only query."""
        question = _check_question(question)
        return cls(question, (question,), (), "off")


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
        question = _check_question(question)
        extra: list[str] = []
        hops = decompose(question, extra) if self.decompose else ()
        # a nested question has no simple declarative form; its inner question (when a
        # clause did not make a hop) is the better query
        declarative = "" if hops or _RELATIVE.search(question) else paraphrase(question)
        queries = [question, keyword_query(question), *extra, declarative]
        return Rewrite(question, _dedupe(queries, self.max_queries), hops, "rules")

    def rewrite_many(self, questions: Iterable[str]) -> list[Rewrite]:
        return [self.rewrite(q) for q in questions]


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
        questions = [_check_question(q) for q in questions]
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
            queries = _dedupe([q, para or "", *rules.queries[1:]], self.fallback.max_queries)
            out.append(Rewrite(q, queries, hops if hops is not None else rules.hops, "generator"))
        return out


# --- validation and small helpers -------------------------------------------------------------


def _check_question(question: object) -> str:
    if not isinstance(question, str):
        msg = f"question must be a string, got {type(question).__name__}: {question!r}"
        raise ConfigError(msg)
    if not re.search(r"\w", question):
        msg = f"question must hold at least one word, got {question!r}"
        raise ConfigError(msg)
    return " ".join(question.split())


def _dedupe(queries: Iterable[str], cap: int) -> tuple[str, ...]:
    """Keep the first of each query, comparing without case and final punctuation."""
    seen: set[str] = set()
    kept: list[str] = []
    for query in queries:
        key = fold(query).strip(" ?.!")
        if key and key not in seen:
            seen.add(key)
            kept.append(query)
    return tuple(kept[:cap])


def _strip_q(question: str) -> str:
    return question.strip().rstrip("?.! ").strip()


def _capitalise(text: str) -> str:
    return text[:1].upper() + text[1:]


# --- verb forms (crude on purpose: enough for the short questions rewritten here) -------------


def _is_past(word: str) -> bool:
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
    if w in _PARTICIPLES:
        return w
    base = base_form(w)
    if base in _IRREGULAR_PARTICIPLE:
        return _IRREGULAR_PARTICIPLE[base]
    if base.endswith("e"):
        return base + "d"
    if base.endswith("y") and base[-2:-1] not in _VOWELS:
        return base[:-1] + "ied"
    return base + "ed"


def _looks_verb(word: str) -> bool:
    w = word.lower()
    return w in _AUX or _is_past(w) or w in _PARTICIPLES or (w.endswith("s") and not w.endswith("ss"))


def _is_name_word(word: str) -> bool:
    return word[:1].isupper() or any(c.isdigit() for c in word)


def _subject_end(words: Sequence[str], *, do_support: bool = False) -> int:
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
        aux = next((i for i, w in enumerate(words[1:], 1) if w.lower() in _AUX), None)
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
        elif opened and low not in _SKIP:
            run = i
            while run < len(words) and words[run][:1].islower() and words[run].lower() not in _SKIP:
                if not do_support and run > i and _looks_verb(words[run]):
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


def _invert(clause: str) -> str | None:
    """Question word order for a declarative clause, with crude do-support:
    "X was born" -> "was X born", "X works" -> "does X work", "X founded Y" -> "did X found Y".
    """
    words = clause.split()
    end = _subject_end(words)
    if end == 0 or end >= len(words):
        return None
    subject, verb, rest = " ".join(words[:end]), words[end], words[end + 1 :]
    v = verb.lower()
    if v in _AUX:
        head = [v, subject]
    elif _is_past(v):
        head = ["did", subject, base_form(v)]
    elif v.endswith("s") and not v.endswith("ss"):
        head = ["does", subject, base_form(v)]
    else:
        head = ["do", subject, v]
    return " ".join(head + rest)


# --- queries ----------------------------------------------------------------------------------


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
        elif tok.norm not in _SKIP:
            out.append(re.sub(r"['’]s$", "", tok.text))
    return " ".join(out)


def paraphrase(question: str) -> str:
    """A declarative form of a simple question ("" when none applies): the words that open
    the sentence holding the answer.

    Example:
        >>> paraphrase("Who founded Tallow Mills?"), paraphrase("Where was Ada Quell born?")
        ('Tallow Mills founded by', 'Ada Quell born in')
    """
    words = _strip_q(question).split()
    if len(words) < 2:
        return ""
    lw = [w.lower() for w in words]
    if lw[0] == "in" and len(lw) > 2 and lw[1] in ("which", "what"):
        # "In which country is X?" -> "X is in"; "In what year was X born?" -> "X born in"
        aux = next((i for i, w in enumerate(lw[2:], 2) if w in _AUX), None)
        if aux is not None and aux + 1 < len(words):
            return _where_form(words[aux], words[aux + 1 :])
        return ""
    wh = lw[0]
    if wh in ("where", "when") and lw[1] in _AUX:
        if lw[1] in _DO:
            return _do_form(words[2:], suffix="at" if wh == "where" else "in", past=lw[1] == "did")
        return _where_form(words[1], words[2:])
    if wh == "who" and lw[1] not in _AUX and _looks_verb(lw[1]) and len(words) > 2:
        if any(w in _SKIP - {"the", "of", "and", "a", "an"} for w in lw[2:]):
            return ""  # "Who heads the council of X as mayor?": the object's end is unclear
        return f"{' '.join(words[2:])} {participle(lw[1])} by"  # "Who founded X?" -> "X founded by"
    if wh in ("what", "which") and lw[1] not in _AUX:
        # "Which club does X compete for?" / "Which shipyard built X?"
        verb = next((i for i, w in enumerate(lw[1:4], 1) if _looks_verb(w)), None)
        if verb is None or verb + 1 >= len(words):
            return ""
        if lw[verb] in _DO:
            return _do_form(words[verb + 1 :], suffix="", past=lw[verb] == "did")
        if lw[verb] in _AUX:
            return ""
        return f"{' '.join(words[verb + 1 :])} {participle(lw[verb])} by"
    if wh in ("what", "who") and lw[1] in ("is", "was", "are", "were") and len(words) > 2:
        rest = words[2:]
        if lw[2] == "the" or "'s" in lw[2] or "’s" in lw[2] or any("'s" in w for w in lw[2:4]):
            return f"{' '.join(rest)} {lw[1]}"  # "What is the capital of X?" -> "the capital of X is"
        end = _subject_end(rest)
        if 0 < end < len(rest):  # "Who is X married to?" -> "X is married to"
            return f"{' '.join(rest[:end])} {lw[1]} {' '.join(rest[end:])}"
    return ""


def _where_form(aux: str, rest: Sequence[str]) -> str:
    """"was X born" -> "X born in"; "is X" -> "X is in"."""
    if rest and rest[-1].lower() in _PARTICIPLES | {"founded", "established", "held"} | (
        {rest[-1].lower()} if rest[-1].lower().endswith("ed") else set()
    ) and len(rest) > 1:
        return f"{' '.join(rest[:-1])} {rest[-1]} in"
    return f"{' '.join(rest)} {aux.lower()} in"


def _do_form(words: Sequence[str], *, suffix: str, past: bool) -> str:
    """"X work" -> "X works at"; "X compete for" -> "X competes for"."""
    end = _subject_end(words, do_support=True)
    if end == 0 or end >= len(words):
        return ""
    verb = words[end].lower()
    verb_form = participle(verb) if past else third_person(verb)
    rest = list(words[end + 1 :])
    if not rest and suffix:
        rest = ["at" if suffix == "at" and verb in _AT_VERBS else "in"]
    return " ".join([*words[:end], verb_form, *rest])


# --- decomposition ----------------------------------------------------------------------------


def decompose(question: str, extra_queries: list[str] | None = None) -> tuple[Hop, ...]:
    """The hops of a nested question; empty for a single-hop question.

    ``extra_queries`` (when given) collects inner questions of clauses that do not make a
    second hop ("Who is the person that founded X?" is just "Who founded X?").

    Example:
        >>> [h.question for h in decompose("Who founded the company that makes Glimmer Soap?")]
        ['What company makes Glimmer Soap?', 'Who founded {answer}?']
    """
    hops = _decompose(_check_question(question), extra_queries if extra_queries is not None else [], 0)
    key = fold(_strip_q(question))
    if len(hops) < 2 or any(fold(_strip_q(h)) == key for h in hops) or len(set(hops)) < len(hops):
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
    body = _strip_q(question)
    tail = body[end:] if end is not None else ""
    return f"{body[:start]}{PLACEHOLDER}{tail}?"


def _split_relative(question: str, extra: list[str]) -> tuple[str, str] | None:
    """ "... the <noun> where/that/which/who/whose/in which <clause>?" """
    body = _strip_q(question)
    m = _RELATIVE.search(body)
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
        outer = f"{_strip_q(outer)} {moved}?"
    if _TRIVIAL_OUTER.match(outer):
        extra.append(inner)  # "Who is the person who founded X?" asks one hop: a query, not a hop
        return None
    return inner, outer


def _inner_question(noun: str, prep: str | None, rel: str | None, clause: str) -> str | None:
    """The relative clause as a question of its own (``None`` when it has no subject/verb)."""
    person = noun.split()[-1] in _GENERIC_PERSONS
    wh_noun = "Who" if person else f"What {noun}"
    if prep:  # "the city in which X was born" -> "In which city was X born?"
        inverted = _invert(clause)
        return f"{_capitalise(prep)} which {noun} {inverted}?" if inverted else None
    if rel in ("where", "when"):
        inverted = _invert(clause)
        return f"{_capitalise(rel)} {inverted}?" if inverted else None
    if rel == "whose":  # "the country whose capital is Z" -> "What country's capital is Z?"
        return f"{'Whose' if person else wh_noun + chr(39) + 's'} {clause}?"
    if _subject_end(clause.split()) > 0:  # object clause: "the club that X plays for"
        inverted = _invert(clause)
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
    if before not in _AUX or len(words) < 2:
        return full
    last = words[-1].lower()
    participle_ = (last in _PARTICIPLES or last.endswith("ed")) and words[-2].lower() not in _AUX
    if before in _DO or participle_:
        return [(" ".join(words[:-1]), words[-1]), *full]
    return full


def _split_possessive(question: str, extra: list[str]) -> tuple[str, str] | None:
    """ "... X's <noun>['s <noun>]...": the owner's noun is the first hop."""
    body = _strip_q(question)
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
            while k < len(toks) and toks[k].text[0].islower() and toks[k].norm not in _SKIP \
                    and not (_is_past(toks[k].norm) or toks[k].norm in _PARTICIPLES):
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
        if any(w in _DO for w in before) and last_end - last_start > 1:
            segments[-1] = (last_start, last_end - 1)  # "does X's brother play": "play" is the verb
        np_end = toks[segments[-1][1] - 1].end
        outer = _outer(question, toks[start].start, np_end)
        if not _TRIVIAL_OUTER.match(outer):
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
        if prev.is_name and not (start == 1 and prev.norm in _SKIP):  # not the opening "What"
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
    body = _strip_q(question)
    for m in _OF_LINK.finditer(body):
        noun = m.group(1)
        chained = bool(re.search(r"\bof\s+$", body[: m.start()]))
        if not chained and noun.split()[-1] not in _PERSON_ROLES:
            continue
        outer = _outer(question, m.start(), m.end())
        if _TRIVIAL_OUTER.match(outer):
            continue
        return f"{_wh_for(noun.split()[-1])} is {m.group(0)}?", outer
    return None


# --- generator output -------------------------------------------------------------------------

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
    key = fold(_strip_q(question))
    keys = [fold(_strip_q(line)) for line in resolved]
    if key in keys or len(set(keys)) < len(keys) or _TRIVIAL_OUTER.match(resolved[-1]):
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
    if fold(_strip_q(line)) == fold(_strip_q(question)):
        return None
    if not _names_known(line, question):
        return None
    if not all(fold(n) in fold(line) for n in name_spans(question)):
        return None
    return line


# -- comparison questions ---------------------------------------------------------------

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
_NUMBER_WORDS = {w: i for i, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
    "seventeen eighteen nineteen twenty".split())}


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
    ("Which magazine was started first, Arthur's Magazine or First for Women?"); each
    option must name something (a capitalised word or a number). When no comma sets the
    options off, the first option starts after the comparative word.

    Example:
        >>> comparison("Which magazine was started first Arthur's Magazine or First for Women?").options
        ("Arthur's Magazine", 'First for Women')
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
    found += [float(_NUMBER_WORDS[w]) for w in re.findall(r"[a-z]+", text.lower()) if w in _NUMBER_WORDS]
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
    from rag.stages.read import sentences  # read imports this module's neighbours only

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
