"""Checking a claim against the evidence: ``supported``, ``refuted`` or ``not enough evidence``.

A claim is judged sentence by sentence against the evidence the store returns for it (user
facts, memory notes, corpus passages), by quantities that do not depend on the data set:

1. *Topic*: the embedder's cosine of the claim to the sentence. Below ``topic_threshold``
   the sentence says nothing about the claim; it must also share a name with the claim
   when the claim names something.
2. *Values*: the claim's content words the sentence lacks (up to a suffix or a typo) need a
   counterpart in the sentence. A name or number is a value only itself stands for; another
   word is paraphrased by a sentence word whose embedder cosine reaches ``word_threshold``
   ("film" for "movie"). When a claim word has no counterpart, a positive sentence that
   states other words in its place refutes the claim ("Telemundo is a Spanish-language
   network" against "... an English-language network") when fewer than half of the claim's
   content words lack a counterpart (the rest of the claim agrees); a negative sentence ("X
   is not in A"), one about something else, or one that just says less decides nothing.
3. *Polarity*, read from structure: the parity of negations in the sentence and in the
   claim. A negation is a negative particle (``not``, ``n't``, ``never``, ``no``, ...) or a
   verb that negates its complement (``refuse``/``fail``/``decline`` to). When every claim
   word has its counterpart and the cosine reaches ``same_threshold``, equal parity
   supports the claim and different parity refutes it ("Nicholas Brody is not a character
   on Homeland" refutes "Nicholas Brody is a character in Homeland").

The levels are weighed in the preference order (user > memory > corpus > parametric): the
highest level with a sentence that supports or refutes decides, and decisive sentences of
lower levels that disagree are listed as conflicts. When no evidence decides, the
generator's closed-book yes/no answer is the parametric verdict (if allowed).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rag.errors import ConfigError
from rag.memory.store import Store
from rag.memory.text import STOPWORDS
from rag.protocols import Embedder
from rag.stages.read import Reader, sentences
from rag.stages.structure import name_spans, same_name_word, same_word, tokens
from rag.types import SOURCES, Passage, Query

SUPPORTED = "supported"
REFUTED = "refuted"
NOT_ENOUGH = "not enough evidence"
VERDICTS = (SUPPORTED, REFUTED, NOT_ENOUGH)

#: Negative particles: each flips the polarity of the sentence it is in.
_NEGATIONS = frozenset({"not", "never", "no", "nor", "neither", "none", "nobody", "nothing", "cannot", "without"})
#: Verbs whose complement did not happen ("refused to release" = did not release).
_NEGATING_VERBS = re.compile(r"\b(?:refus|fail|declin)\w*\s+to\b", re.IGNORECASE)
_WORD = re.compile(r"[a-z]+(?:['’][a-z]+)?", re.IGNORECASE)


def polarity(text: str) -> int:
    """+1 for an affirmative sentence, -1 for a negated one (odd number of negations)."""
    words = [w.lower().replace("’", "'") for w in _WORD.findall(text)]
    count = sum(w in _NEGATIONS or w.endswith("n't") for w in words)
    count += len(_NEGATING_VERBS.findall(text))
    return -1 if count % 2 else 1


def _name_words(text: str) -> list[str]:
    """The words of the names and numbers in ``text`` (sentence-initial fillers aside)."""
    return [t.text for name in name_spans(text) for t in tokens(name) if t.is_name]


def _missing(words: Sequence[str], other: Sequence[str]) -> list[str]:
    return [w for w in words if not any(same_name_word(w, o) for o in other)]


def _content_words(text: str) -> list[tuple[str, bool]]:
    """The words that carry the statement, each with whether it is a name or number; no
    stopwords, no negations (polarity reads those)."""
    text = _NEGATING_VERBS.sub(" ", text)
    return [(t.norm, t.is_name and i > 0) for i, t in enumerate(tokens(text))
            if t.norm not in STOPWORDS and t.norm not in _NEGATIONS and not t.norm.replace("’", "'").endswith("n't")]


def _differing(claim: str, sentence: str) -> tuple[list[tuple[str, bool]], list[tuple[str, bool]]]:
    """The claim's content words the sentence lacks, and the sentence's the claim lacks
    (up to a suffix or a typo)."""
    a, b = _content_words(claim), _content_words(sentence)

    def lacks(words: list[tuple[str, bool]], other: list[tuple[str, bool]]) -> list[tuple[str, bool]]:
        return list(dict.fromkeys((w, name) for w, name in words
                                  if not any(same_word(w, o) or same_name_word(w, o) for o, _ in other)))

    return lacks(a, b), lacks(b, a)


@dataclass(frozen=True, slots=True)
class SentenceJudgement:
    """What one evidence sentence says about the claim."""

    passage_id: str
    source: str
    sentence: str
    similarity: float
    verdict: str
    reason: str


@dataclass(frozen=True, slots=True)
class ClaimVerdict:
    """Whether a claim holds, by which level, on which evidence.

    Attributes:
        claim: The claim checked.
        verdict: ``supported``, ``refuted`` or ``not enough evidence``.
        source: The level that decided (``user``, ``memory``, ``corpus``, ``parametric``) or
            ``none``.
        citations: Ids of the passages whose sentences decided, best first (user facts
            are ``user:<i>``; none for a parametric verdict).
        evidence: The deciding sentence of each cited passage, in the same order.
        score: The best deciding sentence's cosine to the claim (0 when none).
        reason: Why, in words.
        conflicts: Decisive evidence of lower levels that disagrees with the verdict.
    """

    claim: str
    verdict: str
    source: str
    citations: tuple[str, ...] = ()
    evidence: tuple[str, ...] = ()
    score: float = 0.0
    reason: str = ""
    conflicts: tuple[dict[str, Any], ...] = field(default_factory=tuple)

    @property
    def label(self) -> str:
        """``yes``, ``no`` or ``""``: the verdict as a FEVER-style answer."""
        return {SUPPORTED: "yes", REFUTED: "no"}.get(self.verdict, "")

    def to_dict(self) -> dict[str, Any]:
        return {"claim": self.claim, "verdict": self.verdict, "source": self.source,
                "citations": list(self.citations), "evidence": list(self.evidence),
                "score": round(self.score, 4), "reason": self.reason, "conflicts": list(self.conflicts)}


class ClaimChecker:
    """Judges claims against evidence sentences, level by level in preference order.

    Args:
        embedder: Gives the claim-to-sentence cosine.
        reader: Asks the generator for a closed-book yes/no when no evidence decides
            (``None``: no parametric verdict).
        order: Preference order, highest first.
        topic_threshold: Cosine from which a sentence can refute by stating another value
            for the claim's slot.
        same_threshold: Cosine from which a sentence whose names agree with the claim's
            states the same thing up to polarity.
        word_threshold: Word cosine from which a sentence word paraphrases a claim word.
            On FEVER edits 300-450 (not the ones reported) with all-minilm-l6-v2, 0.5
            balanced the two errors (paraphrases of the edit and of the claim it replaced
            right 0.51 and 0.75 of the time); a higher threshold trades the first for
            the second.

    Example:
        >>> from rag.testing import HashEmbedder
        >>> checker = ClaimChecker(HashEmbedder())
        >>> note = Passage("n1", "Nicholas Brody is not a character on Homeland.", kind="note")
        >>> checker.check("Nicholas Brody is not a character on Homeland.", {"memory": [note]}).verdict
        'supported'
        >>> checker.check("Nicholas Brody is a character on Homeland.", {"memory": [note]}).verdict
        'refuted'
    """

    def __init__(self, embedder: Embedder, reader: Reader | None = None, *, order: Sequence[str] = SOURCES,
                 topic_threshold: float = 0.5, same_threshold: float = 0.7, word_threshold: float = 0.5) -> None:
        for name, value in (("topic_threshold", topic_threshold), ("same_threshold", same_threshold),
                            ("word_threshold", word_threshold)):
            if not -1.0 <= value <= 1.0:
                msg = f"{name} must be a cosine in [-1, 1], got {value}"
                raise ConfigError(msg)
        unknown = [s for s in order if s not in SOURCES]
        if unknown:
            msg = f"order holds unknown levels {unknown}; choose from {SOURCES}"
            raise ConfigError(msg)
        self.embedder = embedder
        self.reader = reader
        self.order = tuple(order)
        self.topic_threshold = topic_threshold
        self.same_threshold = same_threshold
        self.word_threshold = word_threshold
        self._words: dict[str, np.ndarray] = {}  # word -> vector, asked again for every claim

    def check(self, claim: str, evidence: dict[str, Sequence[Passage]]) -> ClaimVerdict:
        """One claim against ``evidence`` (level -> passages)."""
        return self.check_many([(claim, evidence)])[0]

    def check_many(self, items: Sequence[tuple[str, dict[str, Sequence[Passage]]]]) -> list[ClaimVerdict]:
        """Claims with their evidence by level; sentences embedded in one batch."""
        units: list[list[tuple[str, Passage, str]]] = []
        texts: list[str] = []
        for claim, evidence in items:
            mine = [(level, p, s) for level in self.order if level != "parametric"
                    for p in evidence.get(level, ()) for s in sentences(p.text) or [p.text]]
            units.append(mine)
            texts += [claim, *(s for _, _, s in mine)]
        unique = list(dict.fromkeys(texts))  # one note is evidence for many claims
        at_unique = {t: i for i, t in enumerate(unique)}
        embedded = self.embedder.embed_documents(unique) if unique else np.zeros((0, 1))
        vectors = embedded[[at_unique[t] for t in texts]] if texts else embedded
        verdicts: list[ClaimVerdict | None] = []
        at = 0
        for (claim, _), mine in zip(items, units):
            claim_vec, sent_vecs = vectors[at], vectors[at + 1 : at + 1 + len(mine)]
            at += 1 + len(mine)
            judged = [self.judge(claim, s, float(v @ claim_vec), p.id, level)
                      for (level, p, s), v in zip(mine, sent_vecs)]
            verdicts.append(self._decide(claim, judged))
        self._parametric(items, verdicts)
        return [v for v in verdicts if v is not None]

    def judge(self, claim: str, sentence: str, similarity: float, passage_id: str = "", source: str = "memory"
              ) -> SentenceJudgement:
        """What ``sentence`` says about ``claim``, given their cosine."""
        def out(verdict: str, reason: str) -> SentenceJudgement:
            return SentenceJudgement(passage_id, source, sentence, similarity, verdict, reason)

        if similarity < self.topic_threshold:
            return out(NOT_ENOUGH, f"off topic ({similarity:.2f} < {self.topic_threshold:.2f})")
        claim_names, sentence_names = _name_words(claim), _name_words(sentence)
        if claim_names and len(_missing(claim_names, sentence_names)) == len(claim_names):
            return out(NOT_ENOUGH, "shares no name with the claim")
        claim_only, sentence_only = _differing(claim, sentence)
        unmatched = self._without_counterpart(claim_only, sentence_only)
        if unmatched:
            # another value for one slot of the claim: the rest of the claim must agree
            # (fewer than half its content words unmatched), else it is another statement
            agrees = 2 * len(unmatched) < len(_content_words(claim))
            if sentence_only and agrees and polarity(sentence) > 0:
                stated = ", ".join(w for w, _ in sentence_only)
                return out(REFUTED, f"states {stated} where the claim says {', '.join(unmatched)}")
            return out(NOT_ENOUGH, f"does not state {', '.join(unmatched)}")
        if similarity < self.same_threshold:
            return out(NOT_ENOUGH, f"another statement ({similarity:.2f} < {self.same_threshold:.2f})")
        if polarity(claim) == polarity(sentence):
            return out(SUPPORTED, f"states it ({similarity:.2f})")
        return out(REFUTED, f"states its negation ({similarity:.2f})")

    def _without_counterpart(self, claim_only: Sequence[tuple[str, bool]],
                             sentence_only: Sequence[tuple[str, bool]]) -> list[str]:
        """The claim's words that no word of the sentence paraphrases. A name or number is
        a value: only itself (up to a typo) stands for it. Another word is paraphrased by a
        sentence word with a word cosine of at least ``word_threshold``."""
        common = [w for w, name in sentence_only if not name]
        missing = [w for w, name in claim_only if name or not common]
        words = [w for w, name in claim_only if not name and common]
        if words:
            self._embed_words([*words, *common])
            missing += [w for w in words if max(float(self._words[w] @ self._words[s]) for s in common) < self.word_threshold]
        return missing

    def _embed_words(self, words: Sequence[str]) -> None:
        new = [w for w in dict.fromkeys(words) if w not in self._words]
        if new:
            for w, v in zip(new, self.embedder.embed_documents(new)):
                self._words[w] = v

    def _decide(self, claim: str, judged: Sequence[SentenceJudgement]) -> ClaimVerdict | None:
        decisive = [j for j in judged if j.verdict != NOT_ENOUGH]
        if not decisive:
            return None
        for level in self.order:
            mine = [j for j in decisive if j.source == level]
            if not mine:
                continue
            best = max(mine, key=lambda j: j.similarity)
            backing = [j for j in mine if j.verdict == best.verdict]
            lower = self.order[self.order.index(level) + 1 :]
            conflicts = tuple({"source": j.source, "verdict": j.verdict, "passage_id": j.passage_id,
                               "sentence": j.sentence}
                              for j in decisive if j.verdict != best.verdict and (j.source in lower or j.source == level))
            first = {}  # passage -> its best backing sentence, so citations and evidence align
            for j in sorted(backing, key=lambda j: -j.similarity):
                first.setdefault(j.passage_id, j.sentence)
            return ClaimVerdict(claim, best.verdict, level, tuple(first), tuple(first.values()),
                                best.similarity, f"{level}: {best.reason}", conflicts)
        return None

    def _parametric(self, items: Sequence[tuple[str, Any]], verdicts: list[ClaimVerdict | None]) -> None:
        open_ = [i for i, v in enumerate(verdicts) if v is None]
        if open_ and self.reader is not None and "parametric" in self.order:
            replies = self.reader.closed_book([f"Is it true that {_unstop(items[i][0])}? Answer yes or no."
                                               for i in open_])
        else:
            replies = [""] * len(open_)
        for i, reply in zip(open_, replies):
            word = (_WORD.findall(reply) or [""])[0].lower()
            verdict = {"yes": SUPPORTED, "no": REFUTED}.get(word)
            claim = items[i][0]
            if verdict is None:
                verdicts[i] = ClaimVerdict(claim, NOT_ENOUGH, "none", reason="no evidence bears on the claim")
            else:
                verdicts[i] = ClaimVerdict(claim, verdict, "parametric", reason=f"closed-book answer {reply!r}")


def _unstop(claim: str) -> str:
    return claim.strip().rstrip(".!")


def check_claims(checker: ClaimChecker, store: Store, queries: Sequence[Query], k: int) -> list[ClaimVerdict]:
    """Search the store for each claim (in its namespace), add its user facts, and check it.

    Args:
        checker: Judges the evidence.
        store: Memory and corpus.
        queries: The claims, as queries (``question`` holds the claim).
        k: Passages retrieved per claim.
    """
    for q in queries:
        if not q.question.strip():
            msg = "claim must be a non-empty string"
            raise ConfigError(msg)
    found = store.search_many([q.question for q in queries], k, namespaces=[q.namespace for q in queries])
    items = []
    for q, hits in zip(queries, found):
        evidence: dict[str, list[Passage]] = {"user": [Passage(f"user:{i}", f, kind="note")
                                                        for i, f in enumerate(q.user_facts)]}
        for hit in hits:
            evidence.setdefault(hit.passage.origin, []).append(hit.passage)
        items.append((q.question, evidence))
    return checker.check_many(items)
