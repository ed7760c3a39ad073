"""The pipeline: explicit composition of the stages into cited answers.

The flow of one question::

    cache     a recent answer for the same question, namespace and user facts, unless any
              write to the store has happened since
    rewrite   search queries (the question, its keywords, a declarative form); a nested
              question becomes single hops, answered one after another, each hop's answer
              filling the next (so an edit reaches the questions that depend on it)
    retrieve  hybrid search over memory and corpus in the asker's namespace, per query,
              fused by reciprocal rank
    filter    keep what bears on this question (notes, QA pairs, user facts, passages)
    trigger   a confident QA-memory hit is the memory answer as it stands
    detect    corpus passages read as poisoned are quarantined: out of the evidence, but
              listed in ``Answer.flags`` with every signal's value and reason. Memory and
              user facts are trusted, never judged; their answers are what corpus passages
              are checked against. When every corpus passage is quarantined the answer
              falls back to memory, then the parametric answer, or abstains (``on_poisoned``).
              The corpus answer follows the robust vote of the kept passages: the passages
              backing its winner are read; a vote that does not decide (one passage against
              one) makes the pipeline abstain with every side listed (``on_contested``)
    read      answers per source: user and memory facts give their answer span; corpus
              passages are read (extraction first, the generator second)
    parametric the generator's closed-book answer, when needed
    arbitrate user > memory > corpus > parametric; conflicts recorded
Answer(text, source, citations, conflicts, flags, trace)

Every stage can be switched off in :class:`PipelineConfig`; an ablation is a config.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from rag.config import PipelineConfig
from rag.errors import ConfigError
from rag.memory.fusion import fuse_hits
from rag.memory.store import Store
from rag.protocols import Generator, Scorer
from rag.stages.arbitrate import (
    Candidate,
    PreferenceArbiter,
    fact_candidates,
    settle_contest,
    suspect_parametric,
)
from rag.stages.cache import AnswerCache
from rag.stages.claims import ClaimVerdict
from rag.stages.detect import DetectionDecision, DetectionRequest, PoisonDetector
from rag.stages.filter import Evidence, FilterDecision, KnowledgeFilter
from rag.stages.protocols import AnswerReader, EvidenceFilter, PassageDetector
from rag.stages.read import Reader
from rag.stages.rewrite import GeneratorRewriter, Rewrite, RuleRewriter, resolve_hop
from rag.stages.structure import read_fact
from rag.types import SOURCES, Answer, Passage, Query, ScoredPassage, StageRecord

logger = logging.getLogger(__name__)

__all__ = ["Pipeline", "PipelineConfig"]


@dataclass(slots=True)
class _Work:
    """What the pipeline knows about one question while answering it."""

    query: Query
    trace: list[StageRecord] = field(default_factory=list)
    evidence: list[Evidence] = field(default_factory=list)
    candidates: list[Candidate] = field(default_factory=list)
    reading: Candidate | None = None  # what the reader made of the passages, if anything
    rewrite: Rewrite | None = None
    done: Answer | None = None
    flags: list[dict] = field(default_factory=list)
    poisoned_out: bool = False  # the detector quarantined every corpus passage
    quarantined_answers: list[str] = field(default_factory=list)  # what the quarantined passages say
    support: tuple[str, ...] = ()  # corpus passages backing the detector's robust aggregate
    contest: list[Candidate] = field(default_factory=list)  # the sides of an undecided vote, winner's first
    parametric_asked: bool = False


class Pipeline:
    """Answers questions from a :class:`~rag.memory.store.Store` with a generator.

    Args:
        store: Where passages, notes and QA pairs live.
        generator: Any :class:`~rag.protocols.Generator`.
        config: Stage settings.
        rewriter: Query rewriter (default :class:`~rag.stages.rewrite.RuleRewriter`).
        detector: Poisoned-context detector; by default one built from ``config`` (reading
            perplexity with the generator when ``detect_perplexity`` is on and it has
            ``token_logprobs``).
        knowledge_filter: What keeps the evidence that bears on a question; by default a
            :class:`~rag.stages.filter.KnowledgeFilter` on the store's embedder.
        reader: What reads answers out of the evidence and closed book; by default a
            :class:`~rag.stages.read.Reader` of ``generator`` built from ``config``.
        (Any object with the methods of :mod:`rag.stages.protocols` serves as a stage.)
        cache_size: Answers kept by the cache.

    Example:
        >>> import tempfile
        >>> from rag.memory.store import Store
        >>> from rag.testing import HashEmbedder, ScriptedGenerator, tiny_corpus
        >>> store = Store(tempfile.mkdtemp(), HashEmbedder())
        >>> _ = store.add_passages(tiny_corpus())
        >>> pipe = Pipeline(store, ScriptedGenerator(default="Paris"))
        >>> answer = pipe.ask("What is the capital of Veldoria?")
        >>> answer.text, answer.source, answer.citations
        ('Marrowgate', 'corpus', ('t1',))
        >>> pipe.ask(Query("What is the capital of Veldoria?",
        ...                user_facts=("The capital of Veldoria is Ostrava.",))).source
        'user'
    """

    def __init__(
        self,
        store: Store,
        generator: Generator,
        config: PipelineConfig | None = None,
        *,
        rewriter: RuleRewriter | GeneratorRewriter | None = None,
        detector: PassageDetector | None = None,
        knowledge_filter: EvidenceFilter | None = None,
        reader: AnswerReader | None = None,
        cache_size: int = 1024,
    ) -> None:
        self.store = store
        self.rewriter = rewriter or RuleRewriter()
        self.generator = generator
        self.config = config or PipelineConfig()
        self.reader = reader or Reader(generator, max_passages=self.config.max_passages,
                                       mode=self.config.reader if self.config.extractive else "generate")
        self.filter = knowledge_filter or KnowledgeFilter(store.embedder)
        self.arbiter = PreferenceArbiter(self.config.order, abstain=self.config.abstain)
        self.detector = detector
        if detector is None and self.config.detect:
            scorer = generator if self.config.detect_perplexity and isinstance(generator, Scorer) else None
            self.detector = PoisonDetector(store.embedder, generator=generator, signals=self.config.detect_signals,
                                           threshold=self.config.detect_threshold, scorer=scorer,
                                           contest_margin=self.config.contest_margin,
                                           support=self.config.detect_support)
        self._cache = AnswerCache(cache_size)

    def prepare(self, *, show_progress: bool | None = None) -> int:
        """Score every corpus passage of the store for the detector ahead of questions (its
        perplexity reading), as an index is built ahead of search, so that answering pays
        only for passages written since. Optional: unprepared passages are scored when first
        retrieved. Returns how many passages were scored now (0 without a detector or a
        scorer)."""
        if self.detector is None:
            return 0
        return self.detector.prepare([p.text for p in self.store.passages(kind="passage")],
                                     show_progress=show_progress)

    def ask(self, question: str | Query) -> Answer:
        """Answer one question (a string, or a :class:`~rag.types.Query`)."""
        return self.answer_many([question])[0]

    def answer_many(self, questions: Iterable[str | Query]) -> list[Answer]:
        """Answer many questions; generator calls are batched across them."""
        return self._answer(questions, decompose=self.config.decompose)

    def check(self, claim: str | Query) -> ClaimVerdict:
        """Whether a claim holds given the evidence, by the configured preference order:
        ``supported``, ``refuted`` or ``not enough evidence``, with citations (see
        :mod:`rag.stages.claims`). A :class:`~rag.types.Query` carries user facts and a
        namespace."""
        return self.check_many([claim])[0]

    def check_many(self, claims: Iterable[str | Query]) -> list[ClaimVerdict]:
        """:meth:`check` for many claims; searches and embeddings batched."""
        from rag.stages.claims import ClaimChecker, check_claims  # only claim checking needs it

        checker = ClaimChecker(self.store.embedder, self.reader if self.config.parametric != "never" else None,
                               order=self.config.order)
        return check_claims(checker, self.store, [c if isinstance(c, Query) else Query(c) for c in claims],
                            self.config.k)

    def _answer(self, questions: Iterable[str | Query], *, decompose: bool) -> list[Answer]:
        work = [_Work(q if isinstance(q, Query) else Query(q)) for q in questions]
        for w in work:
            if not w.query.question.strip():
                msg = "question must be a non-empty string"
                raise ConfigError(msg)
        version = self.store.version()
        for w in work:
            w.done = self._cache.get(w.query, version) if self.config.cache else None
        todo = [w for w in work if w.done is None]
        for w in todo:
            start = time.perf_counter()
            w.rewrite = self.rewriter.rewrite(w.query.question) if self.config.rewrite else Rewrite.off(w.query.question)
            w.trace.append(StageRecord("rewrite", w.rewrite.method, _ms(start),
                                       {"queries": list(w.rewrite.queries), "hops": [h.question for h in w.rewrite.hops]}))
            if decompose and w.rewrite.hops:
                w.done = self._answer_hops(w)
                if w.done is not None:
                    self._remember(w, version)
        todo = [w for w in todo if w.done is None]
        for w, hits in zip(todo, self._retrieve(todo)):
            self._gather(w, hits)
        if self.config.parametric == "always":  # early, so that the detector can use it
            self._parametric([w for w in todo if w.done is None])
        self._detect([w for w in todo if w.done is None])
        self._read_corpus([w for w in todo if w.done is None])
        self._parametric([w for w in todo if w.done is None])
        for w in todo:
            if w.done is None:
                w.done = self._decide(w)
                self._remember(w, version)
        return [w.done for w in work]  # type: ignore[misc]

    # -- stages ---------------------------------------------------------------------------

    def _remember(self, w: _Work, version: int) -> None:
        if self.config.cache:
            self._cache.put(w.query, version, w.done)  # type: ignore[arg-type]

    def _answer_hops(self, w: _Work) -> Answer | None:
        """The answer hop by hop; ``None`` when a hop found no evidence (only the closed-book
        answer): a chain through a guess is no chain, and the question is answered whole."""
        q, previous, citations, flags = w.query, "", [], []
        answer: Answer | None = None
        for i, hop in enumerate(w.rewrite.hops):
            question = resolve_hop(hop, previous) if hop.needs_answer else hop.question
            answer = self._answer([Query(question, q.user_facts, q.namespace)], decompose=False)[0]
            w.trace.append(StageRecord(f"hop {i + 1}", answer.source, 0.0,
                                       {"question": question, "answer": answer.text, "citations": list(answer.citations)}))
            flags.extend(answer.flags)
            w.trace.extend(r for r in answer.trace if r.stage == "detect")  # what each hop quarantined
            if answer.source == "parametric":
                w.trace.append(StageRecord("hops", "abandoned", 0.0,
                                           {"reason": f"hop {i + 1} has no evidence; the question is answered whole"}))
                return None
            if answer.abstained:
                return Answer("", "none", tuple(citations), flags=tuple(flags), trace=tuple(w.trace),
                              question=q.question)
            previous = answer.text
            citations.extend(c for c in answer.citations if c not in citations)
        if answer is None:  # a rewrite with no hops never comes here; stay safe if one does
            return Answer("", "none", (), trace=tuple(w.trace), question=q.question)
        return Answer(answer.text, answer.source, tuple(citations), answer.conflicts, tuple(flags),
                      trace=tuple(w.trace), question=q.question)

    def _retrieve(self, work: Sequence[_Work]) -> list[list[ScoredPassage]]:
        start = time.perf_counter()
        found = self._search(work, self.config.k)
        each_ms = _ms(start) / max(1, len(work))
        for w, hits in zip(work, found):
            w.trace.append(StageRecord("retrieve", f"{len(hits)} passages", each_ms, {"ids": [h.id for h in hits]}))
        return found

    def _search(self, work: Sequence[_Work], k: int) -> list[list[ScoredPassage]]:
        """Every search query of every question in one batch; each question's rankings fused."""
        texts = [list(w.rewrite.queries) if w.rewrite else [w.query.question] for w in work]
        flat = self.store.search_many([t for ts in texts for t in ts], k,
                                      namespaces=[w.query.namespace for w, ts in zip(work, texts) for _ in ts])
        out, at = [], 0
        for ts in texts:
            rankings, at = flat[at : at + len(ts)], at + len(ts)
            out.append(rankings[0] if len(rankings) == 1 else fuse_hits(rankings, k, retriever="rewrite+hybrid"))
        return out

    def _gather(self, w: _Work, hits: list[ScoredPassage]) -> None:
        q = w.query
        user = [Passage(f"user:{i}", fact, kind="note", namespace=q.namespace)
                for i, fact in enumerate(q.user_facts) if fact.strip()]
        passages = user + [h.passage for h in hits]
        sources = ["user"] * len(user) + [h.passage.origin for h in hits]
        start = time.perf_counter()
        if self.config.filter:
            decision = self.filter.filter(q.question, passages, sources=sources)
        else:
            decision = FilterDecision(tuple(self._unfiltered(q.question, p, s) for p, s in zip(passages, sources)), ())
        w.evidence = list(decision.kept)
        w.trace.append(StageRecord(
            "filter", f"kept {len(decision.kept)} of {len(passages)}", _ms(start),
            {"kept": [(e.passage.id, round(e.score, 3), e.reason) for e in decision.kept],
             "dropped": [(d.passage_id, round(d.score, 3), d.reason) for d in decision.dropped]}))
        w.candidates.extend(fact_candidates(w.evidence))
        qa = [e for e in w.evidence if e.passage.kind == "qa" and e.score >= self.config.trigger_threshold]
        if self.config.trigger and qa and not any(c.source == "user" for c in w.candidates):
            best = max(qa, key=lambda e: e.score)
            w.trace.append(StageRecord("trigger", "qa memory hit", 0.0, {"id": best.passage.id}))
            w.done = self._finish(w, Candidate("memory", best.answer, (best.passage.id,), best.score), (), "qa memory hit")

    @staticmethod
    def _unfiltered(question: str, passage: Passage, source: str) -> Evidence:
        answer = ""
        if passage.kind == "qa":
            answer = str(passage.metadata.get("answer", ""))
        elif passage.kind == "note":
            answer = read_fact(passage.text, question).answer
        return Evidence(passage, source, 0.0, answer, "filter off")  # type: ignore[arg-type]

    def _read_corpus(self, work: Sequence[_Work]) -> None:
        items, owners = [], []
        for w in work:
            if self.config.arbiter:
                if w.contest:
                    continue  # the vote did not decide; _decide settles it by on_contested
                passages = [e.passage for e in w.evidence if e.source == "corpus"]
                if w.support:  # the robust vote decided: read the passages that back it
                    passages = [p for p in passages if p.id in w.support]
            else:  # plain RAG: read whatever was retrieved, memory first if asked
                passages = [e.passage for e in w.evidence if e.source != "user"]
                if self.config.memory_first:
                    passages.sort(key=lambda p: p.origin != "memory")
            if passages:
                items.append((w.query.question, passages))
                owners.append((w, "corpus"))
            # a note the filter kept for this question but read no answer from (prose: a
            # paragraph rather than one fact) is read like a passage, as memory
            unread = [e.passage for e in w.evidence if e.source == "memory" and not e.answer]
            if self.config.arbiter and unread and not any(c.source == "memory" for c in w.candidates):
                items.append((w.query.question, unread))
                owners.append((w, "memory"))
        start = time.perf_counter()
        readings = self.reader.read_many(items) if items else []
        each = _ms(start) / max(1, len(items))
        for (w, kind), reading in zip(owners, readings, strict=True):
            origin = kind
            if reading.text:
                if reading.citations:
                    cited = next(e.passage for e in w.evidence if e.passage.id == reading.citations[0])
                    origin = cited.origin
                candidate = Candidate(origin, reading.text, reading.citations, 0.5)
                w.candidates.append(candidate)
                if origin == "corpus" or w.reading is None:
                    w.reading = candidate
            w.trace.append(StageRecord("read", reading.method, each, {"answer": reading.text, "of": kind,
                                                                       "citations": list(reading.citations)}))

    def _detect(self, work: Sequence[_Work]) -> None:
        if not self.config.detect or self.detector is None:
            return
        owners = [w for w in work if any(e.source == "corpus" for e in w.evidence)]
        if not owners:
            return
        start = time.perf_counter()
        neighbours = self._neighbours(owners)
        decisions = self.detector.inspect_many([self._detection_request(w, n) for w, n in zip(owners, neighbours)])
        crowded = [i for i, d in enumerate(decisions)
                   if self.config.corroborate and self.detector.needs_corroboration(d)]
        if crowded:
            # one crowd of near-copies and nothing else: look further for independent evidence
            self._widen([owners[i] for i in crowded])
            have = [{e.passage.id for e in owners[i].evidence} for i in crowded]
            again = self.detector.inspect_many([
                self._detection_request(owners[i], tuple(p for p in neighbours[i] if p.id not in ids))
                for i, ids in zip(crowded, have)])
            for i, decision in zip(crowded, again):
                decisions[i] = self.detector.corroborate(decision, self.config.k * self.config.widen)
        each = _ms(start) / len(owners)
        for w, decision in zip(owners, decisions):
            self._quarantine(w, decision, each)
            if self.config.arbiter and not decision.uncorroborated:
                self._weigh_vote(w, decision)

    def _neighbours(self, work: Sequence[_Work]) -> list[tuple[Passage, ...]]:
        """Per question, the corpus passages a search ``widen`` times deeper finds beyond the
        evidence: what the detector's ``geometry`` compares the retrieved ones with (not
        judged, not read). Nothing when that signal is off."""
        if self.detector is None or "geometry" not in self.detector.signals:
            return [()] * len(work)
        return [tuple(found) for found in self._deeper(work)]

    def _deeper(self, work: Sequence[_Work]) -> list[list[Passage]]:
        """Per question, the corpus passages a search ``widen`` times deeper finds beyond its evidence."""
        out = []
        for w, hits in zip(work, self._search(work, self.config.k * self.config.widen), strict=True):
            have = {e.passage.id for e in w.evidence}
            out.append([h.passage for h in hits if h.id not in have and h.passage.origin == "corpus"])
        return out

    def _detection_request(self, w: _Work, neighbours: tuple[Passage, ...] = ()) -> DetectionRequest:
        corpus = [e.passage for e in w.evidence if e.source == "corpus"]
        # memory and user facts are trusted: they are what the corpus is checked against,
        # once the filter has found that they bear on this question (unfiltered, a note
        # about something else would make every corpus passage look contradicted)
        trusted = [e.answer for e in w.evidence if self.config.filter and e.source in ("user", "memory") and e.answer]
        parametric = next((c.answer for c in w.candidates if c.source == "parametric"), None)
        # the store holds every corpus passage's vector: a detector with the store's embedder
        # need not embed them again
        same = self.detector is not None and self.detector.embedder.name == self.store.embedder.name
        known = self.store.vectors([p.id for p in [*corpus, *neighbours]]) if same else {}
        return DetectionRequest(w.query.question, tuple(corpus), tuple(dict.fromkeys(trusted)), parametric,
                                known_vectors=known, neighbours=neighbours)

    def _widen(self, work: Sequence[_Work]) -> None:
        """Retrieve ``widen`` times deeper and add the corpus passages the filter keeps."""
        start = time.perf_counter()
        for w, new in zip(work, self._deeper(work), strict=True):
            if self.config.filter:
                kept = list(self.filter.filter(w.query.question, new, sources=["corpus"] * len(new)).kept)
            else:
                kept = [self._unfiltered(w.query.question, p, "corpus") for p in new]
            w.evidence.extend(kept)
            w.trace.append(StageRecord("widen", f"{len(kept)} more corpus passages", _ms(start) / len(work),
                                       {"k": self.config.k * self.config.widen, "ids": [e.passage.id for e in kept],
                                        "reason": "the evidence was one crowd of near-copies"}))

    def _weigh_vote(self, w: _Work, decision: DetectionDecision) -> None:
        """The corpus's answer follows the robust vote: its backers are read when it
        decided; when it did not, the sides are kept for ``_decide`` (unless user or memory
        answer, which outrank the corpus whatever it says)."""
        w.support = decision.support
        if decision.contested and not any(c.source in ("user", "memory") for c in w.candidates):
            w.contest = [Candidate("corpus", answer, ids, 0.5) for answer, ids in decision.sides()]

    def _quarantine(self, w: _Work, decision: DetectionDecision, ms: float) -> None:
        """Take what the detector removed (flagged passages, an uncorroborated crowd) out of
        the evidence; flag it; trace the verdict on every inspected passage."""
        quarantined = list(decision.removed)
        out = set(quarantined)
        uncorroborated = bool(decision.uncorroborated)
        w.flags.extend(decision.flags())
        verdicts = [v.to_dict() for v in decision.verdicts]
        if out:
            w.evidence = [e for e in w.evidence if e.passage.id not in out]
            w.poisoned_out = not any(e.source == "corpus" for e in w.evidence)
            w.quarantined_answers = decision.removed_answers
        w.trace.append(StageRecord("detect", f"quarantined {len(out)} of {len(decision.verdicts)}", ms,
                                   {"reason": decision.reason, "aggregate": decision.aggregate_answer,
                                    "support": list(decision.support), "rivals": list(decision.rivals),
                                    "witnesses": decision.witnesses, "contested": decision.contested,
                                    "quarantined": quarantined,
                                    "uncorroborated": uncorroborated,
                                    "verdicts": verdicts}))

    def _parametric(self, work: Sequence[_Work]) -> None:
        mode = self.config.parametric
        if mode == "never":
            return
        need = [w for w in work if not w.parametric_asked
                and (mode == "always" or not any(c.source != "parametric" for c in w.candidates))
                and not (w.poisoned_out and self.config.on_poisoned == "abstain")
                and not (w.contest and self.config.on_contested == "abstain" and mode != "always")]
        if not need:
            return
        for w in need:
            w.parametric_asked = True
        start = time.perf_counter()
        answers = self.reader.closed_book([w.query.question for w in need])
        each = _ms(start) / len(need)
        for w, text in zip(need, answers):
            if text:
                w.candidates.append(Candidate("parametric", text, (), 0.1))
            w.trace.append(StageRecord("parametric", "closed book", each, {"answer": text}))

    @staticmethod
    def _withhold_parametric(w: _Work) -> None:
        """Take out a closed-book answer that says what the quarantined passages say
        (:func:`~rag.stages.arbitrate.suspect_parametric`)."""
        suspect = suspect_parametric(w.candidates, w.quarantined_answers)
        if suspect:
            w.candidates = [c for c in w.candidates if c not in suspect]
            w.trace.append(StageRecord("parametric", "withheld", 0.0,
                                       {"answer": suspect[0].answer,
                                        "reason": "agrees with the quarantined passages' answer"}))

    def _settle_contest(self, w: _Work) -> Answer:
        """An undecided corpus vote: abstain, let the closed-book answer pick a side, or
        take the vote's winner (``on_contested``)."""
        parametric = next((c for c in w.candidates if c.source == "parametric"), None)
        winner, why = settle_contest(w.contest, parametric, self.config.on_contested)
        losers = [c for c in w.contest if c is not winner]
        w.trace.append(StageRecord("arbitrate", "abstain" if winner is None else "corpus", 0.0,
                                   {"reason": why, "candidates": [(c.source, c.answer, list(c.evidence))
                                                                  for c in [*w.contest, *w.candidates]]}))
        return self._finish(w, winner, losers, why)

    def _decide(self, w: _Work) -> Answer:
        self._withhold_parametric(w)
        if w.contest and not any(c.source in ("user", "memory") for c in w.candidates):
            return self._settle_contest(w)
        if not self.config.arbiter:
            ranked = sorted(w.candidates, key=lambda c: SOURCES.index(c.source))
            chosen = w.reading or (ranked[0] if ranked else None)
            if chosen is None:
                return self._finish(w, None, (), "no answer")
            return self._finish(w, chosen, (), "plain reading (arbiter off)")
        start = time.perf_counter()
        decision = self.arbiter.arbitrate(w.candidates)
        w.trace.append(StageRecord("arbitrate", decision.winner.source if decision.winner else "abstain", _ms(start),
                                   {"reason": decision.reason,
                                    "candidates": [(c.source, c.answer, list(c.evidence)) for c in w.candidates]}))
        return self._finish(w, decision.winner, decision.conflicts, decision.reason)

    def _finish(self, w: _Work, winner: Candidate | None, conflicts: Sequence[Candidate], reason: str) -> Answer:
        conflict_records = tuple({"source": c.source, "answer": c.answer, "evidence": list(c.evidence)}
                                 for c in conflicts)
        flags = tuple(w.flags)
        if winner is None:
            return Answer("", "none", (), conflict_records, flags, trace=tuple(w.trace), question=w.query.question)
        return Answer(winner.answer, winner.source, tuple(winner.evidence), conflict_records,  # type: ignore[arg-type]
                      flags, trace=tuple(w.trace), question=w.query.question)


def _ms(start: float) -> float:
    return (time.perf_counter() - start) * 1000.0
