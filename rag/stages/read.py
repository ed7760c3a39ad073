"""Reading a short answer out of evidence, and citing the passages it came from.

Three modes (:data:`READERS`):

* ``likelihood``: the candidate answers are spans of the evidence
  (:mod:`rag.stages.candidates`); the generator scores each as the answer after the
  passages and the question (one batched scoring call,
  :meth:`~rag.protocols.Scorer.continuation_logprobs`), and the candidate with the best
  length-normalised log-probability (:func:`answer_score`) wins. Needs a generator that
  scores; with none it reads ``extractive``.
* ``extractive``: for every sentence of the evidence it finds the span the question does
  not repeat (see :mod:`rag.stages.structure`) and keeps the best sentence whose names
  and relation agree with the question.
* ``generate``: the generator writes a short answer.

The first two fall back to generation when they find nothing; a generated answer cites
the passages that hold it.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from rag.errors import ConfigError
from rag.protocols import ContinuationScore, Generator, Scorer
from rag.stages.candidates import candidates
from rag.stages.relations import reading_concepts, relations_agree
from rag.stages.structure import read_fact
from rag.text import fold, tokenize
from rag.types import Passage

logger = logging.getLogger(__name__)

#: Reader modes; see the module docstring.
READERS = ("likelihood", "extractive", "generate")

#: What follows a scored answer: the end of the answer line, so that a span cut short
#: ("Elvis" for "Elvis Presley") pays for the model's surprise at the answer ending there.
ANSWER_END = "\n"

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
    (``likelihood``, ``extract``, ``generate`` or ``closed_book``)."""

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


def answer_score(score: ContinuationScore) -> float:
    """How good an answer a scored span is: its log-probability over the square root of its
    token count. The sum alone favours short spans; the mean per token favours numbers and
    dates, whose digits the tokeniser splits into many predictable tokens ("September 14,
    2016" beat "Roanoke"). With gemma-3-270m on 50 NQ and 30 RealtimeQA questions with their
    gold passage, the square root held the gold answer in 49 readings, the sum in 48, the
    mean in 43 (log-probability ratios against a prompt without the passage or the question,
    PMI, in 7 to 27)."""
    return score.logprob / math.sqrt(max(1, score.n_tokens))


@dataclass(frozen=True, slots=True)
class AnswerLikelihoods:
    """How likely each candidate answer is with each passage and with none, for one question.

    Attributes:
        answers: The candidate answers, in the order of the columns.
        passage_ids: The passages, in the order of the rows of ``with_passage``.
        with_passage: ``(len(passage_ids), len(answers))`` summed log-probabilities of each
            answer (and the end of the answer line) after the passage and the question.
        without: ``(len(answers),)`` the same after the question alone (closed book).
        n_tokens: ``(len(passage_ids) + 1, len(answers))`` tokens each score sums over, the
            last row for ``without``.
    """

    answers: tuple[str, ...]
    passage_ids: tuple[str, ...]
    with_passage: np.ndarray
    without: np.ndarray
    n_tokens: np.ndarray

    def per_token(self) -> tuple[np.ndarray, np.ndarray]:
        """``with_passage`` and ``without`` divided by their token counts."""
        counts = np.maximum(self.n_tokens, 1)
        return self.with_passage / counts[:-1], self.without / counts[-1]

    def lift(self) -> np.ndarray:
        """``(passages, answers)``: how much each passage raises each answer's per-token
        log-probability over the closed-book one (positive: the passage speaks for it)."""
        given, alone = self.per_token()
        return given - alone[None, :]


def answer_likelihoods(
    scorer: Scorer, question: str, passages: Sequence[Passage], answers: Sequence[str]
) -> AnswerLikelihoods:
    """Score every candidate answer after every passage and after none, in ONE batched
    scoring call: the support-by-likelihood matrix of a question.

    Each passage is shown alone with the reader's context prompt
    (:meth:`Reader.context_prompt`); the passage-free row uses the closed-book prompt.

    Raises:
        ConfigError: an answer is empty (see :func:`rag.models.generator.check_continuation_items`).
    """
    conts = [f" {a.strip()}{ANSWER_END}" for a in answers]
    items = [(Reader.context_prompt(question, [p]), conts) for p in passages]
    items.append((Reader.closed_book_prompt(question), conts))
    rows = scorer.continuation_logprobs(items) if answers else [[] for _ in items]
    sums = np.array([[s.logprob for s in row] for row in rows], dtype=np.float64).reshape(len(items), len(answers))
    counts = np.array([[s.n_tokens for s in row] for row in rows], dtype=np.int64).reshape(len(items), len(answers))
    return AnswerLikelihoods(tuple(answers), tuple(p.id for p in passages), sums[:-1], sums[-1], counts)


class Reader:
    """Answers a question from evidence, in one of the :data:`READERS` modes.

    Args:
        generator: Any :class:`~rag.protocols.Generator`; the ``likelihood`` mode needs
            one that is also a :class:`~rag.protocols.Scorer`.
        max_passages: Passages read per question (small models do best with few).
        max_new_tokens: Length limit of a generated answer.
        extractive: Try extraction before generation (the mode when ``mode`` is ``None``).
        max_sentence_words: Extraction reads fact-shaped sentences only (notes, short
            statements); longer prose goes to the generator. Surface rules misread prose:
            on 100 NQ questions with their gold Wikipedia passage, extraction from
            sentences over 16 words was exact once in 47 answers, while it was exact 275
            times in 354 on sentences of at most 16 words in the demo corpus.
        mode: ``likelihood``, ``extractive`` or ``generate``; ``None`` takes
            ``extractive`` or ``generate`` from ``extractive``. ``likelihood`` with a
            generator that cannot score reads ``extractive``.
        keep: In ``likelihood`` mode, the candidates per question scored in full (those
            whose first token the generator finds likeliest); the rest cost one logit
            lookup each.

    Example:
        >>> from rag.testing import ScriptedGenerator
        >>> reader = Reader(ScriptedGenerator(default="unused"))
        >>> reader.read("What is the capital of Veldoria?",
        ...             [Passage("t1", "The capital of Veldoria is Marrowgate.")])
        Reading(text='Marrowgate', citations=('t1',), method='extract')
    """

    def __init__(
        self, generator: Generator, *, max_passages: int = 3, max_new_tokens: int = 16, extractive: bool = True,
        max_sentence_words: int | None = 16, mode: str | None = None, keep: int | None = 16,
    ) -> None:
        if max_sentence_words is not None and max_sentence_words < 1:
            msg = f"max_sentence_words must be a positive integer or None, got {max_sentence_words}"
            raise ConfigError(msg)
        if max_passages < 1:
            msg = f"max_passages must be a positive integer, got {max_passages}"
            raise ConfigError(msg)
        if mode is not None and mode not in READERS:
            msg = f"mode must be one of {READERS} or None, got {mode!r}"
            raise ConfigError(msg)
        if keep is not None and (not isinstance(keep, int) or keep < 1):
            msg = f"keep must be a positive integer or None, got {keep!r}"
            raise ConfigError(msg)
        mode = mode or ("extractive" if extractive else "generate")
        if mode == "likelihood" and not isinstance(generator, Scorer):
            logger.info("generator %s cannot score text: the reader reads extractively",
                        getattr(generator, "name", type(generator).__name__))
            mode = "extractive"
        self.mode = mode
        self.max_sentence_words = max_sentence_words
        self.generator = generator
        self.max_passages = max_passages
        self.max_new_tokens = max_new_tokens
        self.extractive = mode == "extractive"
        self.keep = keep

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
        """Batched :meth:`read`: one scoring call, then one generator call for every item
        the mode's reading left open."""
        shown = [list(passages[: self.max_passages]) for _, passages in items]
        readings: list[Reading | None] = [None] * len(items)
        if self.mode == "extractive":
            for i, ((question, _), ps) in enumerate(zip(items, shown, strict=True)):
                found = extract(question, ps, max_words=self.max_sentence_words) if ps else None
                readings[i] = Reading(found.answer, (found.passage_id,), "extract") if found else None
        elif self.mode == "likelihood":
            self._read_by_likelihood([q for q, _ in items], shown, readings)
        open_items = [i for i, r in enumerate(readings) if r is None]
        if open_items:
            prompts = [
                self.context_prompt(items[i][0], shown[i]) if shown[i] else self.closed_book_prompt(items[i][0])
                for i in open_items
            ]
            raw = self.generator.generate(prompts, max_new_tokens=self.max_new_tokens, stop=("\n",))
            for i, text in zip(open_items, raw, strict=True):
                question, ps = items[i][0], shown[i]
                answer = clean_answer(text)
                cited = tuple(p.id for p in ps if answer and self._cites(question, answer, p))
                readings[i] = Reading(answer, cited, "generate" if ps else "closed_book")
        return [r for r in readings if r is not None]

    def _read_by_likelihood(
        self, questions: Sequence[str], shown: Sequence[Sequence[Passage]], readings: list[Reading | None]
    ) -> None:
        """Fill ``readings`` with the likeliest span of each item's passages (those with any)."""
        todo, spans, batch = [], [], []
        for i, (question, ps) in enumerate(zip(questions, shown, strict=True)):
            found = candidates(question, [p.full_text for p in ps]) if ps else []
            if found:
                todo.append(i)
                spans.append(found)
                batch.append((self.context_prompt(question, ps), [f" {c}{ANSWER_END}" for c in found]))
        if not batch:
            return
        scored = self.generator.continuation_logprobs(batch, keep=self.keep)  # type: ignore[attr-defined]
        for i, found, scores in zip(todo, spans, scored, strict=True):
            best = max(range(len(found)), key=lambda j: (answer_score(scores[j]), -j))
            answer = found[best]
            key = fold(answer)
            cited = tuple(p.id for p in shown[i] if key in fold(p.full_text))
            readings[i] = Reading(answer, cited, "likelihood")

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
