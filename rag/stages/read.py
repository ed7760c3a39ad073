"""Reading an answer out of evidence with the generator, and citing what it came from.

The offline generators are tiny, so they are asked one narrow thing: a short answer to a
question from a few passages (or from nothing, for the closed-book answer). Citation is
structural: a passage is cited when the answer's words occur in it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from rag.errors import ConfigError
from rag.memory.text import fold, tokenize
from rag.protocols import Generator
from rag.types import Passage

_LEADS = re.compile(
    r"^(?:the answer is|answer:|a:|it is|it's|they are|he is|she is)\s+", re.IGNORECASE
)


def clean_answer(text: str) -> str:
    """Trim a generated answer to its core: no lead-in, no trailing full stop or quotes."""
    text = text.strip().strip('"\u201c\u201d').strip()
    text = _LEADS.sub("", text)
    return text.rstrip(" .").strip()


def supports(answer: str, passage_text: str) -> bool:
    """True when every content word of ``answer`` occurs in ``passage_text``."""
    words = tokenize(answer) or fold(answer).split()
    if not words:
        return False
    haystack = set(tokenize(passage_text, stopwords=frozenset()))
    return all(w in haystack for w in words)


@dataclass(frozen=True, slots=True)
class Reading:
    """A short answer and the ids of the passages that support it."""

    text: str
    citations: tuple[str, ...]


class Reader:
    """Asks the generator for a short answer from evidence, or closed-book.

    Args:
        generator: Any :class:`~rag.protocols.Generator`.
        max_passages: Passages shown in one prompt (small models do best with few).
        max_new_tokens: Length limit of an answer.

    Example:
        >>> from rag.testing import ScriptedGenerator
        >>> reader = Reader(ScriptedGenerator({"Marrowgate": "Marrowgate."}))
        >>> reader.read("What is the capital of Veldoria?",
        ...             [Passage("t1", "The capital of Veldoria is Marrowgate.")])
        Reading(text='Marrowgate', citations=('t1',))
    """

    def __init__(self, generator: Generator, *, max_passages: int = 3, max_new_tokens: int = 24) -> None:
        if max_passages < 1:
            msg = f"max_passages must be a positive integer, got {max_passages}"
            raise ConfigError(msg)
        self.generator = generator
        self.max_passages = max_passages
        self.max_new_tokens = max_new_tokens

    @staticmethod
    def context_prompt(question: str, passages: Sequence[Passage]) -> str:
        context = "\n".join(p.full_text for p in passages)
        return f"Context: {context}\nQuestion: {question.strip()}\nAnswer:"

    @staticmethod
    def closed_book_prompt(question: str) -> str:
        return f"Question: {question.strip()}\nAnswer:"

    def read(self, question: str, passages: Sequence[Passage]) -> Reading:
        return self.read_many([(question, passages)])[0]

    def read_many(self, items: Sequence[tuple[str, Sequence[Passage]]]) -> list[Reading]:
        """Batched :meth:`read`: one generator call for all items."""
        shown = [list(passages[: self.max_passages]) for _, passages in items]
        prompts = [
            self.context_prompt(q, ps) if ps else self.closed_book_prompt(q)
            for (q, _), ps in zip(items, shown)
        ]
        raw = self.generator.generate(prompts, max_new_tokens=self.max_new_tokens, stop=("\n",))
        readings = []
        for (question, _), text, ps in zip(items, raw, shown):
            answer = clean_answer(text)
            cited = tuple(p.id for p in ps if answer and self._cites(question, answer, p))
            readings.append(Reading(answer, cited))
        return readings

    @staticmethod
    def _cites(question: str, answer: str, passage: Passage) -> bool:
        """The passage holds the answer and shares a question word besides the answer's own."""
        if not supports(answer, passage.full_text):
            return False
        topic = set(tokenize(question)) - set(tokenize(answer))
        return not topic or bool(topic & set(tokenize(passage.full_text)))

    def closed_book(self, questions: Sequence[str]) -> list[str]:
        """The generator's parametric answers, no evidence."""
        return [r.text for r in self.read_many([(q, []) for q in questions])]
