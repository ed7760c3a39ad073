"""The poison detector: composes the signals, the vote and the contest for each question."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import replace

from rag.protocols import Embedder, Generator, Scorer
from rag.stages.detect import topic
from rag.stages.detect.agreement import (
    OFF_TOPIC,
    cluster_signals,
    isolation_signal,
    trusted_conflict_signal,
    units,
)
from rag.stages.detect.anomaly import (
    NLL_RANGE,
    WINDOW_NLL_RANGE,
    PerplexityCache,
    anomaly_signal,
)
from rag.stages.detect.answers import group_answers
from rag.stages.detect.echo import echo_signal
from rag.stages.detect.geometry import geometry_signals
from rag.stages.detect.instruction import instruction_signal
from rag.stages.detect.isolated import extracted, generate_open, worth_reading
from rag.stages.detect.records import (
    AGREEMENT_LEVEL,
    DECISIVE,
    DEFAULT_WEIGHTS,
    SIGNALS,
    DetectionDecision,
    DetectionRequest,
    Signal,
    Verdict,
    answers_tuple,
    decision_reason,
)
from rag.stages.detect.settings import check_settings
from rag.stages.detect.support import (
    MIN_LIFT,
    LikelihoodStanding,
    RuleStanding,
    Sides,
    likelihood_sides,
)
from rag.stages.detect.vote import MIN_TRUST, contest, representative, robust_vote
from rag.types import Passage

logger = logging.getLogger(__name__)

# Signals that need each passage's isolated answer (the others read the text alone).
ANSWER_SIGNALS = frozenset({"cluster", "isolation", "trusted_conflict"})


class PoisonDetector:
    """Flags poisoned passages by independent signals; quarantines, never deletes.

    Args:
        embedder: Embeds passages to find near-duplicates (cosine similarity).
        generator: Reads the answer of passages that extraction cannot read; ``None``
            leaves such passages without an answer. Called once per :meth:`inspect`, with
            every open passage in one batch.
        signals: The signals to compute, any of :data:`SIGNALS`. Leaving one out switches
            it off: it is not computed and does not appear in the verdicts.
        weights: Weight of each signal in the combined score, overriding
            :data:`DEFAULT_WEIGHTS` for the names given.
        threshold: Score from which a passage is poisoned, in [0, 1], when independent
            evidence agrees (see ``decisive``).
        duplicate_threshold: Embedding cosine from which two passages that read the same
            answer count as one unit (share one vote). 0.8 with all-MiniLM-L6-v2: on a
            calibration split of PoisonedRAG's NQ targets (targets 50-79, not the ones
            evaluated first), crafted poisons of one target have pairwise cosines of
            0.70 / 0.83 / 0.97 (5th / 50th / 95th percentile) while poison and gold passage
            have 0.44 / 0.58 / 0.79; Jaccard overlap of word 3-grams stays near 0.05, so
            paraphrased poisons are near-duplicates in meaning only.
        shingle_threshold: Jaccard overlap of word 3-grams from which two passages are
            near-duplicates (catches copies whose embeddings drift apart).
        min_cluster: Smallest crowd of near-duplicates the ``cluster`` signal reads. Two is
            too few: mirrored pages and re-posts pair up in clean corpora all the time.
        contest_margin: The vote decides when its winner has more than this many times the
            votes of every contradicting answer; otherwise the decision is ``contested``.
            2 means that one independent passage against one (or two against one) is no
            majority, since an attacker can always match one clean passage with one poison.
        topic_ratio: Only passages whose cosine to the question is at least this share of
            the best inspected passage's take part in a contest; the others were retrieved
            for a word they share, not for the question. 0.5 with all-MiniLM-L6-v2: on a
            split of PoisonedRAG's NQ targets (targets 20-39), gold passages and poisons sit
            at 0.59-1.0 of the best, other targets' gold passages mostly below 0.47. Off the
            topic, ``isolation`` and ``trusted_conflict`` read 0 too.
        max_new_tokens: Length limit of a generated isolated answer.
        support: How the contest tells which answer a passage speaks for: ``"rules"`` (its
            sentences state the answer about the question's subject, the relation lexicon
            ranking statements; :class:`~rag.stages.detect.support.RuleStanding`) or
            ``"likelihood"`` (the sides are the passages' best candidate spans, and a
            passage speaks for the side it raises most under the generator:
            :func:`~rag.stages.detect.support.likelihood_sides`; then the passage's answer
            is that side and nothing is generated; needs a generator with
            ``continuation_logprobs``).
        min_lift: With ``support="likelihood"``, the per-token lift from which a passage
            speaks for an answer.
        scorer: Scores passages under a language model for ``anomaly`` (usually the
            generator itself); ``None`` leaves ``anomaly`` to subword markers alone.
        nll_range: Bounds of the mean negative log-likelihood per token (see
            :func:`perplexity_signal`).
        window_nll_range: Bounds of the worst eight-token window's.
        decisive: The signals that quarantine a passage on their own (at a reading of at
            least :data:`~rag.stages.detect.records.AGREEMENT_LEVEL`); any other needs a
            second signal at that level. :data:`SIGNALS` restores the plain weighted sum.

    Raises:
        ConfigError: If a signal or weight name is unknown, a weight is negative, or a
            threshold lies outside its range.

    Example:
        >>> from rag.testing import HashEmbedder
        >>> detector = PoisonDetector(HashEmbedder())
        >>> q = "What is the capital of Ostrelia?"
        >>> decision = detector.inspect(q, [
        ...     Passage("clean", "The capital of Ostrelia is Varnholm."),
        ...     Passage("poison", "What is the capital of Ostrelia. The capital of Ostrelia is Duskmere."),
        ... ])
        >>> decision.quarantined, decision.aggregate_answer
        (('poison',), 'Varnholm')
        >>> decision.verdict("poison").signal("echo").value
        1.0
    """

    def __init__(
        self,
        embedder: Embedder,
        *,
        generator: Generator | None = None,
        signals: Sequence[str] = SIGNALS,
        weights: Mapping[str, float] | None = None,
        threshold: float = 0.5,
        duplicate_threshold: float = 0.8,
        shingle_threshold: float = 0.5,
        min_cluster: int = 3,
        contest_margin: float = 2.0,
        topic_ratio: float = 0.5,
        max_new_tokens: int = 8,
        support: str = "rules",
        min_lift: float = MIN_LIFT,
        scorer: Scorer | None = None,
        nll_range: tuple[float, float] = NLL_RANGE,
        window_nll_range: tuple[float, float] = WINDOW_NLL_RANGE,
        decisive: Sequence[str] = DECISIVE,
    ) -> None:
        check_settings(generator=generator, signals=signals, weights=weights, threshold=threshold,
                       duplicate_threshold=duplicate_threshold, shingle_threshold=shingle_threshold,
                       min_cluster=min_cluster, contest_margin=contest_margin, topic_ratio=topic_ratio,
                       max_new_tokens=max_new_tokens, support=support, min_lift=min_lift, scorer=scorer,
                       nll_range=nll_range, window_nll_range=window_nll_range, decisive=decisive)
        self.embedder = embedder
        self.generator = generator
        self.signals: tuple[str, ...] = tuple(s for s in SIGNALS if s in signals)
        self.weights: Mapping[str, float] = {**DEFAULT_WEIGHTS, **{n: float(w) for n, w in (weights or {}).items()}}
        self.threshold = float(threshold)
        self.duplicate_threshold = float(duplicate_threshold)
        self.shingle_threshold = float(shingle_threshold)
        self.min_cluster = min_cluster
        self.contest_margin = float(contest_margin)
        self.topic_ratio = float(topic_ratio)
        self.max_new_tokens = max_new_tokens
        self.scorer = scorer
        self.decisive = frozenset(decisive)
        self.support = support
        self.min_lift = float(min_lift)
        self.nll_range = (float(nll_range[0]), float(nll_range[1]))
        self.window_nll_range = (float(window_nll_range[0]), float(window_nll_range[1]))
        self._perplexity_cache = (PerplexityCache(scorer, self.nll_range, self.window_nll_range)
                                  if scorer is not None and "anomaly" in self.signals else None)

    def inspect(
        self,
        question: str,
        passages: Sequence[Passage],
        *,
        trusted_answers: Sequence[str] = (),
        parametric_answer: str | None = None,
    ) -> DetectionDecision:
        """Read every enabled signal on every passage and decide what to quarantine.

        Args:
            question: The question the passages were retrieved for.
            passages: The retrieved passages, best first.
            trusted_answers: Answers from trusted sources (memory notes, QA pairs, facts the
                user stated). A passage contradicting all of them reads high on
                ``trusted_conflict``.
            parametric_answer: The generator's closed-book answer; contradicting it is weak
                evidence only.

        Returns:
            The decision, with one verdict per passage in input order.

        Raises:
            ConfigError: If ``trusted_answers`` is a string instead of a sequence of strings.
        """
        request = DetectionRequest(question, tuple(passages), answers_tuple(trusted_answers), parametric_answer)
        return self.inspect_many([request])[0]

    def inspect_many(self, requests: Sequence[DetectionRequest]) -> list[DetectionDecision]:
        """:meth:`inspect` for many questions; the generator (isolated answers) and the
        scorer (perplexity) are each called once for all of them.

        Example:
            >>> from rag.testing import HashEmbedder
            >>> detector = PoisonDetector(HashEmbedder())
            >>> [d.kept for d in detector.inspect_many([
            ...     DetectionRequest("What is the capital of Veldoria?",
            ...                      (Passage("a", "The capital of Veldoria is Marrowgate."),)),
            ...     DetectionRequest("Who built it?", ())])]
            [('a',), ()]
        """
        requests = list(requests)
        items = [(r.question, r.passages) for r in requests]
        vectors = topic.request_vectors(self.embedder, requests)
        on_topic = [topic.on_topic(v, len(r.passages), self.topic_ratio)
                    for v, r in zip(vectors, requests, strict=True)]
        answers = extracted(items)
        sides: list[Sides | None] = [None] * len(requests)
        if self.support == "likelihood":  # the passages speak for measured sides, nothing is generated
            sides = [likelihood_sides(self.generator, r.question, r.passages, on, min_lift=self.min_lift)
                     for r, on in zip(requests, on_topic, strict=True)]
            answers = [s.spoken() for s in sides]
        elif ANSWER_SIGNALS & set(self.signals):
            worth = [worth_reading(r.question, r.passages, row, on)
                     for r, row, on in zip(requests, answers, on_topic, strict=True)]
            if self.generator is not None:
                generate_open(self.generator, items, answers, worth, max_new_tokens=self.max_new_tokens)
        perplexity = self._perplexity([p.text for r in requests for p in r.passages])
        return [self._inspect(r, a, perplexity, v, on, side)
                for r, a, v, on, side in zip(requests, answers, vectors, on_topic, sides, strict=True)]

    def prepare(self, texts: Sequence[str], *, show_progress: bool | None = None) -> int:
        """Score ``texts`` ahead of any question, as an index is built ahead of search (see
        :meth:`~rag.stages.detect.anomaly.PerplexityCache.prepare`); without a scorer, or
        with ``anomaly`` off, nothing is done.

        Returns:
            How many texts were scored now.
        """
        if self._perplexity_cache is None:
            return 0
        return self._perplexity_cache.prepare(texts, show_progress=show_progress)

    def _perplexity(self, texts: Sequence[str]) -> Mapping[str, Signal]:
        """The perplexity reading of each text, one scorer call for those not seen before."""
        return {} if self._perplexity_cache is None else self._perplexity_cache.readings(texts)

    def _inspect(self, request: DetectionRequest, answers: list[str], perplexity: Mapping[str, Signal],
                 vectors: topic.Vectors, on_topic: Sequence[bool],
                 sides: Sides | None) -> DetectionDecision:
        question, passages = request.question, list(request.passages)
        passage_vectors = vectors[1][: len(passages)]
        trusted_answers, parametric_answer = request.trusted_answers, request.parametric_answer
        if not passages:
            return DetectionDecision((), (), (), "", "no passages to inspect")
        trusted = [t for t in trusted_answers if t and t.strip()]
        parametric = parametric_answer if parametric_answer and parametric_answer.strip() else None
        texts = [p.text for p in passages]
        groups, group_texts = group_answers(answers)
        crowds = units(passages, groups, passage_vectors, duplicate_threshold=self.duplicate_threshold,
                       shingle_threshold=self.shingle_threshold)

        readings: list[dict[str, Signal]] = [{} for _ in passages]
        for i, passage in enumerate(passages):
            if "echo" in self.signals:
                readings[i]["echo"] = (
                    Signal("echo", 0.0, "QA pairs repeat their question by design")
                    if passage.kind == "qa" else echo_signal(question, passage.text)
                )
            if "anomaly" in self.signals:
                readings[i]["anomaly"] = anomaly_signal(passage.text, perplexity.get(passage.text))
            if "instruction" in self.signals:
                readings[i]["instruction"] = instruction_signal(passage.text)
            if "trusted_conflict" in self.signals:
                readings[i]["trusted_conflict"] = (
                    trusted_conflict_signal(answers[i], texts[i], trusted, parametric) if on_topic[i]
                    else Signal("trusted_conflict", 0.0, OFF_TOPIC))
        if "cluster" in self.signals:
            for i, sig in enumerate(cluster_signals(answers, texts, crowds, self.min_cluster)):
                readings[i]["cluster"] = sig
        if "geometry" in self.signals:
            pool_texts = texts + [p.text for p in request.neighbours]
            for i, sig in enumerate(geometry_signals(vectors[0], vectors[1], pool_texts, len(passages))):
                readings[i]["geometry"] = sig

        # the vote weighs each passage by what the vote-independent signals make of it: a
        # passage they already condemn (score at the threshold) keeps only a token vote
        pre = [self._combine(r) for r in readings]
        trust = [self._trust(s) for s in pre]
        on_topic = topic.on_topic_of_unsuspected(on_topic, pre, vectors[0], passage_vectors,
                                                 topic_ratio=self.topic_ratio, threshold=self.threshold)
        everyone = range(len(passages))
        voters = [i for i in everyone if on_topic[i]]  # off the topic, a passage has no say
        vote = robust_vote(voters, groups, crowds, trust, answers, group_texts, trusted, parametric)
        if "isolation" in self.signals:
            for i in everyone:
                readings[i]["isolation"] = (isolation_signal(i, answers, texts, groups, group_texts, vote) if on_topic[i]
                                            else Signal("isolation", 0.0, OFF_TOPIC))

        verdicts = []
        for i, passage in enumerate(passages):
            score = self._combine(readings[i])
            sigs = tuple(readings[i][name] for name in self.signals)
            verdicts.append(Verdict(passage.id, round(score, 3), score >= self.threshold and self._agreed(readings[i]),
                                    sigs, answers[i]))
        kept_idx = [i for i, v in enumerate(verdicts) if not v.poisoned]
        kept_vote = robust_vote([i for i in kept_idx if on_topic[i]], groups, crowds, trust, answers, group_texts,
                                trusted, parametric)
        aggregate = representative(kept_vote.winner, kept_idx, groups, answers, group_texts)
        stance = (RuleStanding(question, answers, texts, groups, group_texts) if sides is None
                  else LikelihoodStanding(sides.lift, {g: sides.speaks[g] for g in group_texts}, groups, self.min_lift))
        side, support, rivals, contested, worth = contest(
            [i for i in kept_idx if on_topic[i]], groups, kept_vote, trust, passage_vectors, self.contest_margin, stance)
        if side is not None and side != kept_vote.winner:  # the passages' texts back another answer
            aggregate = representative(side, kept_idx, groups, answers, group_texts)
        decision = DetectionDecision(
            verdicts=tuple(verdicts),
            kept=tuple(passages[i].id for i in kept_idx),
            quarantined=tuple(v.passage_id for v in verdicts if v.poisoned),
            aggregate_answer=aggregate,
            reason=decision_reason(verdicts, kept_vote, group_texts, aggregate, len(kept_idx), threshold=self.threshold,
                                   weights=self.weights, contest_margin=self.contest_margin, contested=contested),
            support=tuple(passages[i].id for i in support),
            rivals=tuple(passages[i].id for i in rivals),
            contested=contested,
            witnesses=round(worth, 3),
        )
        logger.debug("detect %r: %s", question, decision.reason)
        return decision

    def needs_corroboration(self, decision: DetectionDecision) -> bool:
        """At least ``min_cluster`` kept passages back the answer, worth fewer than two
        independent witnesses (paraphrases of one claim), and nothing contradicts it: how a
        fully poisoned top k looks. A deeper search should look for independent evidence."""
        return len(decision.support) >= self.min_cluster and decision.witnesses < 2.0 and not decision.rivals

    def corroborate(self, deeper: DetectionDecision, depth: int) -> DetectionDecision:
        """The decision on a deeper search's passages, with the crowd quarantined when even
        that search did not corroborate it and a second piece of evidence agrees: a signal
        (``geometry`` reading one crafted group, an echoed question, ...) reading at least
        :data:`~rag.stages.detect.records.AGREEMENT_LEVEL` on most of the crowd. Natural
        corpora seldom hold three paraphrases of one claim and nothing else that states it,
        poisoning attacks do; but syndicated copies of one report are such a crowd too, and
        they carry no other mark.

        Args:
            deeper: :meth:`inspect` of the passages of a search ``depth`` deep.
            depth: How many passages that search retrieved (for the reason).
        """
        if not self.needs_corroboration(deeper):
            return deeper
        marked = [pid for pid in deeper.support
                  if any(s.value >= AGREEMENT_LEVEL for s in deeper.verdict(pid).signals)]
        if 2 * len(marked) <= len(deeper.support):
            return deeper
        why = (f"one of {len(deeper.support)} passages backing {deeper.aggregate_answer!r} worth "
               f"{deeper.witnesses:.2f} independent witnesses; nothing in the top {depth} corroborates them, "
               f"and {len(marked)} of them read as suspicious by a signal")
        return replace(deeper, uncorroborated=deeper.support, crowd_reason=why)

    def _agreed(self, readings: Mapping[str, Signal]) -> bool:
        """Independent evidence agrees: a decisive signal reads at least
        :data:`AGREEMENT_LEVEL`, or two signals do (one of them may be a lost vote). A
        detector of one signal (an ablation) has no second to ask."""
        firm = [name for name, sig in readings.items() if sig.value >= AGREEMENT_LEVEL and self.weights[name] > 0]
        return len(firm) >= min(2, len(self.signals)) or any(name in self.decisive for name in firm)

    def _trust(self, score: float) -> float:
        if self.threshold <= 0.0:
            return 1.0 if score <= 0.0 else MIN_TRUST
        return max(MIN_TRUST, 1.0 - score / self.threshold)

    def _combine(self, readings: Mapping[str, Signal]) -> float:
        return min(1.0, sum(self.weights[name] * sig.value for name, sig in readings.items()))
