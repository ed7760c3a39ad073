"""Deterministic fakes for tests and examples: no model, no network, same output every run."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping, Sequence

import numpy as np

from rag.models.generator import (
    check_continuation_items,
    check_keep,
    cut_at_stop,
    kept_continuations,
)
from rag.protocols import ContinuationScore
from rag.text import tokenize
from rag.types import Passage

__all__ = ["HashEmbedder", "ScriptedGenerator", "ScriptedModel", "ScriptedScorer", "prompt_context", "tiny_corpus"]


class HashEmbedder:
    """Bag-of-words embedder: each token gets a vector seeded by its SHA-256.

    Texts sharing words get similar vectors, so retrieval tests behave like the real thing
    in miniature. Seeded by SHA-256, not ``hash()``, so vectors agree across processes.

    Example:
        >>> emb = HashEmbedder(dim=32)
        >>> v = emb.embed_documents(["the eiffel tower", "eiffel tower paris", "bananas"])
        >>> bool(v[0] @ v[1] > v[0] @ v[2])
        True
    """

    def __init__(self, dim: int = 64) -> None:
        self._dim = dim
        self._cache: dict[str, np.ndarray] = {}
        self.calls = 0

    @property
    def name(self) -> str:
        return f"hash-{self._dim}"

    @property
    def dim(self) -> int:
        return self._dim

    def _token_vector(self, token: str) -> np.ndarray:
        vec = self._cache.get(token)
        if vec is None:
            seed = int.from_bytes(hashlib.sha256(token.encode("utf-8")).digest()[:8], "little")
            vec = np.random.default_rng(seed).standard_normal(self._dim).astype(np.float32)
            self._cache[token] = vec
        return vec

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        self.calls += 1
        out = np.zeros((len(texts), self._dim), dtype=np.float32)
        for i, text in enumerate(texts):
            tokens = tokenize(text) or [text.strip().lower() or "<empty>"]
            vec = np.sum([self._token_vector(t) for t in tokens], axis=0)
            out[i] = vec / (np.linalg.norm(vec) or 1.0)
        return out

    def embed_query(self, text: str) -> np.ndarray:
        return self.embed_documents([text])[0]

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self.embed_documents(texts)


class ScriptedGenerator:
    """Answers prompts by rules, and records every prompt it saw and how many calls.

    Args:
        rules: Either a mapping from a regular expression to the reply for prompts it
            matches (first match wins, searched case-insensitively), or a function from
            prompt to reply.
        default: Reply when no rule matches.

    Example:
        >>> gen = ScriptedGenerator({r"capital of France": "Paris"}, default="unknown")
        >>> gen.generate(["Question: What is the capital of France?\\nAnswer:", "Hi"])
        ['Paris', 'unknown']
        >>> len(gen.prompts)
        2
    """

    def __init__(
        self, rules: Mapping[str, str] | Callable[[str], str] | None = None, *, default: str = ""
    ) -> None:
        self._rules = rules if callable(rules) else [(re.compile(p, re.I), r) for p, r in (rules or {}).items()]
        self.default = default
        self.prompts: list[str] = []
        self.calls = 0

    @property
    def name(self) -> str:
        return "scripted"

    def _reply(self, prompt: str) -> str:
        if callable(self._rules):
            return self._rules(prompt)
        for pattern, reply in self._rules:
            if pattern.search(prompt):
                return reply
        return self.default

    def generate(
        self, prompts: Sequence[str], *, max_new_tokens: int = 32, stop: Sequence[str] = ("\n",)
    ) -> list[str]:
        self.calls += 1
        self.prompts.extend(prompts)
        return [cut_at_stop(self._reply(p), stop) for p in prompts]


#: Per-word log-probability of a continuation the fakes find likely after its prompt.
LIKELY_LOGPROB = -0.5


class ScriptedScorer:
    """A fake :class:`~rag.protocols.Scorer`: one token per whitespace word, scored by a rule.

    Args:
        rule: Log-probability of a word; by default -2.0 for plain words and -12.0 for
            anything holding a digit inside letters, a subword marker or a symbol.
        likely: Which continuations are likely given a prompt: a mapping from a regular
            expression (searched in the prompt, case-insensitively, first match wins) to
            the likely continuation or continuations, or a function ``(prompt,
            continuation) -> bool``. Every word of a likely continuation scores
            :data:`LIKELY_LOGPROB`, better than any word ``rule`` scores by default;
            comparison ignores case and surrounding white space.

    Example:
        >>> scorer = ScriptedScorer()
        >>> [round(float(x), 1) for x in scorer.token_logprobs(["the cat ##zq sat"])[0]]
        [-2.0, -12.0, -2.0]
        >>> scorer.calls, scorer.texts
        (1, ['the cat ##zq sat'])
        >>> likely = ScriptedScorer(likely={r"capital of Veldoria": "Marrowgate"})
        >>> [s.mean for s in likely.continuation_logprobs(
        ...     [("The capital of Veldoria is", [" Marrowgate", " Osk river"])])[0]]
        [-0.5, -2.0]
    """

    def __init__(
        self,
        rule: Callable[[str], float] | None = None,
        *,
        likely: Mapping[str, str | Sequence[str]] | Callable[[str, str], bool] | None = None,
    ) -> None:
        self.rule = rule or _default_word_logprob
        if callable(likely):
            self._likely = likely
        else:
            table = [(re.compile(p, re.I), [c] if isinstance(c, str) else list(c)) for p, c in (likely or {}).items()]
            self._likely = lambda prompt, cont: _likely_by_table(table, prompt, cont)
        self.calls = 0
        self.texts: list[str] = []
        self.items: list[tuple[str, list[str]]] = []

    def token_logprobs(self, texts: Sequence[str]) -> list[np.ndarray]:
        self.calls += 1
        self.texts.extend(texts)
        return [np.array([self.rule(w) for w in text.split()[1:]], dtype=np.float32) for text in texts]

    def continuation_logprobs(
        self, items: Sequence[tuple[str, Sequence[str]]], *, keep: int | None = None
    ) -> list[list[ContinuationScore]]:
        """Each word of a continuation is a token: :data:`LIKELY_LOGPROB` when the
        continuation is likely after the prompt, ``rule(word)`` otherwise. Same checks as
        the real runtimes; ``keep`` prunes by the first word's score."""
        checked = check_continuation_items(items)
        check_keep(keep)
        self.calls += 1
        self.items.extend(checked)
        out = []
        for prompt, continuations in checked:
            words = [self._word_logprobs(prompt, c) for c in continuations]
            scores = [ContinuationScore(float("-inf"), len(w)) for w in words]
            for i in kept_continuations([w[0] for w in words], keep):
                scores[i] = ContinuationScore(float(sum(words[i])), len(words[i]))
            out.append(scores)
        return out

    def _word_logprobs(self, prompt: str, continuation: str) -> list[float]:
        if self._likely(prompt, continuation):
            return [LIKELY_LOGPROB] * len(continuation.split())
        return [self.rule(w) for w in continuation.split()]


def _likely_by_table(table: list[tuple[re.Pattern[str], list[str]]], prompt: str, continuation: str) -> bool:
    for pattern, likely in table:
        if pattern.search(prompt):
            return continuation.strip().lower() in {c.strip().lower() for c in likely}
    return False


class ScriptedModel(ScriptedGenerator):
    """A :class:`ScriptedGenerator` that also scores (a fake :class:`~rag.protocols.Scorer`):
    the continuation it finds likely after a prompt is the reply it would generate for it.

    Example:
        >>> model = ScriptedModel({r"capital of Veldoria": "Marrowgate."})
        >>> [s.mean for s in model.continuation_logprobs(
        ...     [("Q: capital of Veldoria? A:", [" Marrowgate", " Osk"])])[0]]
        [-0.5, -2.0]
    """

    def __init__(
        self, rules: Mapping[str, str] | Callable[[str], str] | None = None, *, default: str = ""
    ) -> None:
        super().__init__(rules, default=default)
        self.scorer = ScriptedScorer(likely=self._would_say)

    def _would_say(self, prompt: str, continuation: str) -> bool:
        reply = cut_at_stop(self._reply(prompt), ("\n",)).strip(" .").lower()
        return bool(reply) and continuation.strip().lower() == reply

    def token_logprobs(self, texts: Sequence[str]) -> list[np.ndarray]:
        return self.scorer.token_logprobs(texts)

    def continuation_logprobs(
        self, items: Sequence[tuple[str, Sequence[str]]], *, keep: int | None = None
    ) -> list[list[ContinuationScore]]:
        return self.scorer.continuation_logprobs(items, keep=keep)


def _default_word_logprob(word: str) -> float:
    core = word.strip(".,;:!?\"'()")
    return -2.0 if core and (core.isalpha() or core.isdigit()) else -12.0


def prompt_context(prompt: str) -> str | None:
    """The passages a reader prompt shows for the asked question (its last ``Context:``
    block, after any worked examples), or ``None`` for a closed-book prompt. For fake
    generators that answer from the context.

    Example:
        >>> prompt_context("Context: Ex.\nQuestion: a\nAnswer: b\nContext: Real.\nQuestion: q\nAnswer:")
        'Real.'
        >>> prompt_context("Question: q\nAnswer:") is None
        True
    """
    if "Context: " not in prompt:
        return None
    return prompt.rsplit("Context: ", 1)[1].split("\nQuestion:")[0]


def tiny_corpus() -> list[Passage]:
    """Eight passages about invented and real places, for tests and examples."""
    facts = [
        ("t1", "Veldoria", "The capital of Veldoria is Marrowgate."),
        ("t2", "Veldoria", "Veldoria's official currency is the silver crown."),
        ("t3", "Marrowgate", "Marrowgate was founded in 1312 on the banks of the river Osk."),
        ("t4", "Ilsa Brennick", "Ilsa Brennick was born in Marrowgate and works as a glassblower."),
        ("t5", "Ilsa Brennick", "Ilsa Brennick's mother tongue is Veldorian."),
        ("t6", "Eiffel Tower", "The Eiffel Tower is a wrought-iron tower in Paris, France."),
        ("t7", "Colosseum", "The Colosseum is an ancient amphitheatre in Rome, Italy."),
        ("t8", "Banana", "Bananas are yellow when ripe and grow in tropical climates."),
    ]
    return [Passage(id=i, text=t, title=title) for i, title, t in facts]
