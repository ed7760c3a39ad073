"""Reading a short answer out of evidence, and citing the passages it came from.

The offline generators are tiny, so the reader asks them as little as it can. It first
*extracts*: for every sentence of the evidence it finds the span the question does not
repeat (see :mod:`rag.stages.structure`) and keeps the best sentence whose names and
relation agree with the question. Only when no sentence qualifies does it ask the
generator for a short answer, and then it cites the passages that hold that answer.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from rag.errors import ConfigError
from rag.memory.text import fold, tokenize
from rag.protocols import Generator
from rag.stages.relations import reading_concepts, relations_agree
from rag.stages.structure import read_fact
from rag.types import Passage

_LEADS = re.compile(
    r"^(?:the answer is|answer:|a:|it is|it's|they are|he is|she is)\s+", re.IGNORECASE
)
# an initial ("John B. Watson") or a title ("Dr. Sendak") ends no sentence
_SENTENCE = re.compile(r"(?<=[.!?])(?<!\b[A-Z]\.)(?<!\b(?:Mr|Dr|St|Ms|Jr|Sr|vs)\.)(?<!\bMrs\.)\s+(?=[A-Z0-9\"“])")


#: Shown before a closed-book question. With no passage to copy from, a base model asked
#: bare goes on in sentences until the token limit ("He was born in the town of St. Paul,
#: Minnesota."); three short answers first make it answer in a few words and stop at the
#: line end, which is also ~3x fewer tokens to generate. The answers are of three kinds
#: (place, person, year) and none is a likely default for another question.
CLOSED_BOOK_EXAMPLES = (
    "Question: What is the capital of Kenya?\nAnswer: Nairobi\n"
    "Question: Who wrote Pride and Prejudice?\nAnswer: Jane Austen\n"
    "Question: In which year did the Berlin Wall fall?\nAnswer: 1989\n"
)


#: Shown before a question with context, for the same reason: asked bare, a base model
#: restates the question and runs out of tokens before the answer ("The first underwater
#: cable was laid in"). On 30 NQ questions with their gold passage (targets 20-49 of the
#: development data) gemma-3-270m's 8-token answer held the gold answer 13 times with these
#: two examples against 10 without, and generated fewer tokens.
CONTEXT_EXAMPLES = (
    "Context: The Statue of Liberty was dedicated on October 28, 1886, in New York Harbor.\n"
    "Question: when was the statue of liberty dedicated\nAnswer: October 28, 1886\n"
    "Context: Pride and Prejudice is an 1813 novel of manners written by Jane Austen.\n"
    "Question: who wrote pride and prejudice\nAnswer: Jane Austen\n"
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


def sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE.split(text) if s.strip()]


@dataclass(frozen=True, slots=True)
class Reading:
    """A short answer, the ids of the passages that support it, and how it was found
    (``extract``, ``generate`` or ``closed_book``)."""

    text: str
    citations: tuple[str, ...]
    method: str = "generate"


@dataclass(frozen=True, slots=True)
class Extraction:
    """The answer one sentence gives to a question, and how well it fits."""

    answer: str
    sentence: str
    passage_id: str
    score: float
    relation: bool | None


def extract(question: str, passages: Sequence[Passage], *, max_words: int | None = None) -> Extraction | None:
    """The best answer span among the sentences of ``passages`` (earlier passages win ties).

    A sentence qualifies when it shares a name with the question, its answer span is not
    empty, and its relation does not contradict the question's; with ``max_words``, only
    sentences of at most that many words are read.
    """
    q_concepts = None
    best: Extraction | None = None
    for rank, passage in enumerate(passages):
        for sentence in sentences(passage.text):
            if max_words is not None and len(sentence.split()) > max_words:
                continue
            reading = read_fact(sentence, question)
            if not reading.answer or not reading.subject:
                continue
            q_read, f_concepts = reading_concepts(question, reading)
            q_concepts = q_read if q_concepts is None else q_concepts
            agree = relations_agree(q_concepts, f_concepts)
            if agree is False:
                continue
            score = 2.0 * (agree is True) + len(reading.subject) - 0.5 * len(reading.missing_names) - 0.1 * rank
            if best is None or score > best.score:
                best = Extraction(reading.answer, sentence, passage.id, score, agree)
    return best


class Reader:
    """Answers a question from evidence: extraction first, the generator second.

    Args:
        generator: Any :class:`~rag.protocols.Generator`.
        max_passages: Passages read per question (small models do best with few).
        max_new_tokens: Length limit of a generated answer.
        extractive: Try extraction before generation.
        max_sentence_words: Extraction reads fact-shaped sentences only (notes, short
            statements); longer prose goes to the generator. Surface rules misread prose:
            on 100 NQ questions with their gold Wikipedia passage, extraction from
            sentences over 16 words was exact once in 47 answers, while it was exact 275
            times in 354 on sentences of at most 16 words in the demo corpus.

    Example:
        >>> from rag.testing import ScriptedGenerator
        >>> reader = Reader(ScriptedGenerator(default="unused"))
        >>> reader.read("What is the capital of Veldoria?",
        ...             [Passage("t1", "The capital of Veldoria is Marrowgate.")])
        Reading(text='Marrowgate', citations=('t1',), method='extract')
    """

    def __init__(
        self, generator: Generator, *, max_passages: int = 3, max_new_tokens: int = 16, extractive: bool = True,
        max_sentence_words: int | None = 16,
    ) -> None:
        if max_sentence_words is not None and max_sentence_words < 1:
            msg = f"max_sentence_words must be a positive integer or None, got {max_sentence_words}"
            raise ConfigError(msg)
        self.max_sentence_words = max_sentence_words
        if max_passages < 1:
            msg = f"max_passages must be a positive integer, got {max_passages}"
            raise ConfigError(msg)
        self.generator = generator
        self.max_passages = max_passages
        self.max_new_tokens = max_new_tokens
        self.extractive = extractive

    @staticmethod
    def context_prompt(question: str, passages: Sequence[Passage]) -> str:
        context = "\n".join(p.full_text for p in passages)
        return f"{CONTEXT_EXAMPLES}Context: {context}\nQuestion: {question.strip()}\nAnswer:"

    @staticmethod
    def closed_book_prompt(question: str) -> str:
        return f"{CLOSED_BOOK_EXAMPLES}Question: {question.strip()}\nAnswer:"

    def read(self, question: str, passages: Sequence[Passage]) -> Reading:
        return self.read_many([(question, passages)])[0]

    def read_many(self, items: Sequence[tuple[str, Sequence[Passage]]]) -> list[Reading]:
        """Batched :meth:`read`: one generator call for every item extraction left open."""
        shown = [list(passages[: self.max_passages]) for _, passages in items]
        readings: list[Reading | None] = []
        for (question, _), ps in zip(items, shown):
            found = extract(question, ps, max_words=self.max_sentence_words) if self.extractive and ps else None
            readings.append(Reading(found.answer, (found.passage_id,), "extract") if found else None)
        open_items = [i for i, r in enumerate(readings) if r is None]
        if open_items:
            prompts = [
                self.context_prompt(items[i][0], shown[i]) if shown[i] else self.closed_book_prompt(items[i][0])
                for i in open_items
            ]
            raw = self.generator.generate(prompts, max_new_tokens=self.max_new_tokens, stop=("\n",))
            for i, text in zip(open_items, raw):
                question, ps = items[i][0], shown[i]
                answer = clean_answer(text)
                cited = tuple(p.id for p in ps if answer and self._cites(question, answer, p))
                readings[i] = Reading(answer, cited, "generate" if ps else "closed_book")
        return [r for r in readings if r is not None]

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
