"""Checking a claim against the evidence: ``supported``, ``refuted`` or ``not enough evidence``.

A claim is judged sentence by sentence against the evidence the store returns for it (user
facts, memory notes, corpus passages). The decision rests on one measured quantity, the
embedder's cosine of the claim to the sentence, with a reading by rules as one input:

1. *Topic*: below ``topic_threshold`` the sentence says nothing about the claim; it must
   also share a name with the claim when the claim names something. Such sentences decide
   nothing.
2. *Aligned difference* (:mod:`rag.stages.claim_diff`): a sentence of the other polarity
   refutes the claim, whatever their cosine (a claim and its negation get opposite
   verdicts); one that differs from the claim only by function words, negation words or
   suffixes supports it; one that puts another number where the claim states one refutes it.
3. *Same statement*: an on-topic sentence supports the claim when their cosine reaches
   ``same_threshold``, or reaches the lower ``rule_threshold`` and the rules read the
   sentence as stating the claim (every claim word has a counterpart in the sentence, up
   to a suffix, a typo or a word the embedder finds close, and the negations agree in
   parity). Otherwise it states something else about the claim's names, and refutes it:
   memory is read as the current state of what it names.

Why these quantities: on 100 FEVER edits (849 claims, each edit's note in the store) the
paraphrases of an edit and of the claim it replaced are told apart by the cosine alone
83% of the time (the replaced claim's paraphrases, "released" for "refused to release",
sit close to the note); the rules' support reading adds 2 points, their refutations
nothing. The generator's likelihood of "Yes"/"No" (or "true"/"false") after the note and
the claim, and how much the note raises it over the claim alone, scored 0.56-0.61 alone and
added under one point beside the cosine (gemma-3-270m), so the checker does not pay for it.
The thresholds were fit on those 100 edits and checked on the next 100.

The levels are weighed in the preference order (user > memory > corpus > parametric): the
highest level with a deciding sentence decides (its sentence closest to the claim), and
deciding sentences of lower levels that disagree are listed as conflicts. When no evidence
decides, the generator's closed-book yes/no answer is the parametric verdict (if allowed).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rag.errors import ConfigError
from rag.memory.store import Store
from rag.protocols import Embedder
from rag.stages.claim_diff import NEGATIONS as _NEGATIONS
from rag.stages.claim_diff import differences, other_value
from rag.stages.read import Reader, sentences
from rag.text import STOPWORDS, name_words, same_name_word, same_word, tokens
from rag.types import SOURCES, Passage, Query

SUPPORTED = "supported"
REFUTED = "refuted"
NOT_ENOUGH = "not enough evidence"
VERDICTS = (SUPPORTED, REFUTED, NOT_ENOUGH)

#: Verbs whose complement did not happen ("refused to release" = did not release).
_NEGATING_VERBS = re.compile(r"\b(?:refus|fail|declin)\w*\s+to\b", re.IGNORECASE)
_WORD = re.compile(r"[a-z]+(?:['’][a-z]+)?", re.IGNORECASE)


def polarity(text: str) -> int:
    """+1 for an affirmative sentence, -1 for a negated one (odd number of negations)."""
    words = [w.lower().replace("’", "'") for w in _WORD.findall(text)]
    count = sum(w in _NEGATIONS or w.endswith("n't") for w in words)
    count += len(_NEGATING_VERBS.findall(text))
    return -1 if count % 2 else 1


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
        topic_threshold: Cosine from which a sentence bears on the claim at all.
        same_threshold: Cosine from which an on-topic sentence states the claim.
        rule_threshold: Cosine from which an on-topic sentence the rules read as stating
            the claim does. With all-minilm-l6-v2, 0.95 and 0.74 were the best pair on
            FEVER edits 0-99 (0.86 of claims right); on edits 100-199 the same pair gets
            0.74, where the best pair would get 0.79.
        word_threshold: Word cosine from which a sentence word paraphrases a claim word
            for the rules ("film" for "movie").

    Example:
        >>> from rag.testing import HashEmbedder
        >>> checker = ClaimChecker(HashEmbedder())
        >>> note = Passage("n1", "Orla Venn plays the cello in the Kestrel Quartet.", kind="note")
        >>> checker.check("Orla Venn plays the cello in the Kestrel Quartet.", {"memory": [note]}).verdict
        'supported'
        >>> checker.check("Orla Venn plays the violin in the Kestrel Quartet.", {"memory": [note]}).verdict
        'refuted'
        >>> checker.check("The moon is made of green cheese.", {"memory": [note]}).verdict
        'not enough evidence'
    """

    def __init__(self, embedder: Embedder, reader: Reader | None = None, *, order: Sequence[str] = SOURCES,
                 topic_threshold: float = 0.5, same_threshold: float = 0.95, rule_threshold: float = 0.74,
                 word_threshold: float = 0.5) -> None:
        for name, value in (("topic_threshold", topic_threshold), ("same_threshold", same_threshold),
                            ("rule_threshold", rule_threshold), ("word_threshold", word_threshold)):
            if not -1.0 <= value <= 1.0:
                msg = f"{name} must be a cosine in [-1, 1], got {value}"
                raise ConfigError(msg)
        if rule_threshold > same_threshold:
            msg = f"rule_threshold ({rule_threshold}) must not exceed same_threshold ({same_threshold})"
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
        self.rule_threshold = rule_threshold
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
        """What ``sentence`` says about ``claim``, given their cosine (see the module)."""
        def out(verdict: str, reason: str) -> SentenceJudgement:
            return SentenceJudgement(passage_id, source, sentence, similarity, verdict, reason)

        if similarity < self.topic_threshold:
            return out(NOT_ENOUGH, f"off topic ({similarity:.2f} < {self.topic_threshold:.2f})")
        # a claim naming only numbers is on topic by the cosine: another number is a value
        # judged below (claim_diff.other_value), not another topic
        claim_names, sentence_names = name_words(claim), name_words(sentence)
        only_numbers = all(any(c.isdigit() for c in w) for w in claim_names)
        if claim_names and not only_numbers and len(_missing(claim_names, sentence_names)) == len(claim_names):
            return out(NOT_ENOUGH, "shares no name with the claim")
        if polarity(claim) != polarity(sentence):
            return out(REFUTED, f"states its negation ({similarity:.2f})")
        diffs = differences(claim, sentence)
        if not diffs:
            return out(SUPPORTED, f"states it word for word ({similarity:.2f})")
        changed = next((d for d in diffs if other_value(d, sentence)), None)
        if changed is not None:
            return out(REFUTED, f"states another value ({changed.sentence_span!r} for {changed.claim_span!r})")
        if similarity >= self.same_threshold:
            return out(SUPPORTED, f"states it ({similarity:.2f} >= {self.same_threshold:.2f})")
        reading = self._rules_read(claim, sentence)
        if reading == "states it" and similarity >= self.rule_threshold:
            return out(SUPPORTED, f"states it by the rules ({similarity:.2f} >= {self.rule_threshold:.2f})")
        return out(REFUTED, f"states something else ({reading}; {similarity:.2f} < {self.same_threshold:.2f})")

    def _rules_read(self, claim: str, sentence: str) -> str:
        """The rules' reading of an on-topic sentence: ``states it`` when every content word
        of the claim has a counterpart in the sentence and the negations agree in parity;
        otherwise why not."""
        claim_only, sentence_only = _differing(claim, sentence)
        unmatched = self._without_counterpart(claim_only, sentence_only)
        if unmatched:
            return f"does not state {', '.join(unmatched)}"
        if polarity(claim) != polarity(sentence):
            return "states its negation"
        return "states it"

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
