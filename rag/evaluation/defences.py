"""Published defences against corpus poisoning, reimplemented to run beside the pipeline.

Each defence sits behind one small protocol, :class:`Defence`: it receives, per question,
the retrieved passages and their embeddings, and returns which passages it keeps and which
it flags, each with a reason and the values its rule read. A defence may also give the
answer itself (RobustRAG answers from its aggregate). :class:`DefendedRAG` runs any of them
as plain RAG does: retrieve as the pipeline's plain configuration does (the rewriter's
queries, fused), defend, and let the generator read the kept passages.

``robustrag``   :class:`RobustRAGKeyword`: Xiang et al. 2024, "Certifiably Robust RAG against
                Retrieval Corruption": isolate-then-aggregate, keyword aggregation.
``trustrag``    :class:`TrustRAG`: Zhou et al. 2025, "TrustRAG: Enhancing Robustness and
                Trustworthiness in RAG": two-cluster k-means with a similarity gate, then
                the generator's own knowledge against the remaining passages.
``ragdefender`` :class:`RAGDefender`: Kim et al. 2025, "Rescuing the Unpoisoned: Efficient
                Defense against Knowledge Corruption Attacks on RAG Systems": estimate the
                number of poisons by clustering (single-hop), remove the passages most often
                in the most similar pairs.
``perplexity``  :class:`PerplexityFilter`: the classic baseline (Jain et al. 2023, used
                against PoisonedRAG): drop passages whose perplexity under the generator is
                above a threshold calibrated on clean passages.

Where each differs from its paper is said in its docstring.
"""

from __future__ import annotations

import logging
import math
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

from rag.errors import ConfigError
from rag.memory.fusion import reciprocal_rank_fusion
from rag.protocols import Generator, Scorer
from rag.stages.read import Reader
from rag.stages.rewrite import RuleRewriter
from rag.text import longest_common_subsequence, same_answer, tokenize
from rag.types import Answer, Passage, ScoredPassage, StageRecord

logger = logging.getLogger(__name__)

__all__ = [
    "DEFENCES",
    "DefenceDecision",
    "DefenceRequest",
    "DefendedRAG",
    "Defence",
    "Judgement",
    "PerplexityFilter",
    "RAGDefender",
    "RobustRAGKeyword",
    "TrustRAG",
    "rouge_l",
]

#: The defences the poisoning harness runs, by configuration name.
DEFENCES: tuple[str, ...] = ("robustrag", "trustrag", "ragdefender", "perplexity")


@dataclass(frozen=True, slots=True)
class DefenceRequest:
    """One question's retrieved passages (in rank order) and their L2-normalised vectors."""

    question: str
    passages: tuple[Passage, ...]
    vectors: np.ndarray


@dataclass(frozen=True, slots=True)
class Judgement:
    """What a defence made of one passage: flagged or not, why, and the values it read."""

    passage_id: str
    flagged: bool
    reason: str
    signals: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class DefenceDecision:
    """A defence's decision on one question.

    Attributes:
        judgements: One per retrieved passage, in rank order.
        answer: The defence's own answer, when it answers (RobustRAG); None when the
            generator is to read the kept passages.
        details: Values of the decision as a whole (estimated poisons, kept keywords).
    """

    judgements: tuple[Judgement, ...]
    answer: str | None = None
    details: Mapping[str, Any] = field(default_factory=dict)

    @property
    def kept(self) -> tuple[str, ...]:
        return tuple(j.passage_id for j in self.judgements if not j.flagged)

    @property
    def flagged(self) -> tuple[str, ...]:
        return tuple(j.passage_id for j in self.judgements if j.flagged)


@runtime_checkable
class Defence(Protocol):
    """Judges the retrieved passages of many questions at once."""

    name: str

    def defend_many(self, requests: Sequence[DefenceRequest]) -> list[DefenceDecision]: ...


def _is_no_answer(text: str) -> bool:
    low = text.lower()
    return not text.strip() or "don't know" in low or "do not know" in low or low.strip(" .") == "unknown"


def _isolated_answers(reader: Reader, requests: Sequence[DefenceRequest]) -> list[list[str]]:
    """Each passage answered alone (one generator call for all of them)."""
    items = [(r.question, [p]) for r in requests for p in r.passages]
    readings = reader.read_many(items) if items else []
    out, at = [], 0
    for r in requests:
        out.append([x.text for x in readings[at : at + len(r.passages)]])
        at += len(r.passages)
    return out


# ------------------------------------------------------------------------------ RobustRAG


def _keywords(answer: str) -> list[str]:
    """The answer's content words, in order, each once (stopwords out)."""
    return list(dict.fromkeys(tokenize(answer)))


class RobustRAGKeyword:
    """RobustRAG's keyword aggregation: isolate, then aggregate (Xiang et al. 2024).

    Every retrieved passage is answered alone; answers that say nothing ("I don't know",
    empty) do not count. Each answer's keywords are counted once; the keywords that occur
    in at least ``min(alpha * m, beta)`` of the ``m`` answers are kept, and the generator
    answers the question from the kept keywords (most frequent first). No keyword kept:
    abstain. A passage is flagged when none of its answer's keywords was kept.

    Differs from the paper: keywords are the answer's content words (the project's
    tokenizer), not spaCy's noun and adjective spans; the decoding variant (aggregating
    next-token distributions across passages) is not implemented: the generator
    protocols give completions and token log-probabilities of given text, not
    next-token distributions.

    Args:
        generator: Answers each passage and the keyword prompt.
        alpha: Share of the answers a keyword must reach (paper: 0.3).
        beta: Cap on the count threshold (paper: 3).
    """

    name = "robustrag"

    def __init__(self, generator: Generator, *, alpha: float = 0.3, beta: float = 3.0) -> None:
        if not 0.0 < alpha <= 1.0 or beta < 1.0:
            msg = f"RobustRAG needs 0 < alpha <= 1 and beta >= 1, got alpha={alpha}, beta={beta}"
            raise ConfigError(msg)
        self.alpha, self.beta = alpha, beta
        self.reader = Reader(generator, max_passages=1, extractive=False)

    def defend_many(self, requests: Sequence[DefenceRequest]) -> list[DefenceDecision]:
        isolated = _isolated_answers(self.reader, requests)
        partial = []
        for request, answers in zip(request_list := list(requests), isolated, strict=True):
            spoken = [a for a in answers if not _is_no_answer(a)]
            counts = Counter(w for a in spoken for w in _keywords(a))
            mu = min(self.alpha * len(spoken), self.beta)
            order = {w: i for i, w in enumerate(dict.fromkeys(w for a in spoken for w in _keywords(a)))}
            kept = sorted((w for w, c in counts.items() if c >= mu), key=lambda w: (-counts[w], order[w]))
            judgements = []
            for p, a in zip(request.passages, answers, strict=True):
                words = _keywords(a) if not _is_no_answer(a) else []
                share = sum(w in kept for w in words) / len(words) if words else 0.0
                top = max((counts[w] for w in words), default=0)
                flagged = bool(words) and share == 0.0
                reason = (f"isolated answer {a!r}: no keyword reaches the count {mu:.1f}" if flagged
                          else f"isolated answer {a!r}" + (": keywords kept" if words else ": no answer"))
                judgements.append(Judgement(p.id, flagged, reason,
                                            {"kept_keyword_share": share, "max_keyword_count": float(top)}))
            partial.append((judgements, kept, mu, len(spoken)))
        prompts = [(r.question, [Passage("robustrag:keywords", "Keywords: " + ", ".join(kept))])
                   for r, (_, kept, _, _) in zip(request_list, partial, strict=True) if kept]
        finals = iter(self.reader.read_many(prompts)) if prompts else iter(())
        out = []
        for judgements, kept, mu, m in partial:
            answer = next(finals).text if kept else ""
            out.append(DefenceDecision(tuple(judgements), answer,
                                       {"keywords": kept, "threshold": mu, "answers_counted": m}))
        return out


# ------------------------------------------------------------------------------ TrustRAG


def rouge_l(a: str, b: str) -> float:
    """ROUGE-L F-measure of two texts over lowercase word tokens.

    Example:
        >>> round(rouge_l("the cat sat on the mat", "the cat lay on the mat"), 3)
        0.833
    """
    x, y = tokenize(a, stopwords=frozenset()), tokenize(b, stopwords=frozenset())
    if not x or not y:
        return 0.0
    lcs = longest_common_subsequence(x, y)
    if not lcs:
        return 0.0
    p, r = lcs / len(y), lcs / len(x)
    return 2 * p * r / (p + r)


def _kmeans2(x: np.ndarray, seed: int, n_init: int = 10, iters: int = 100) -> np.ndarray:
    """Labels (0/1) of two-cluster k-means with k-means++ seeding; the best of ``n_init``."""
    rng = np.random.default_rng(seed)
    best, best_inertia = np.zeros(len(x), dtype=int), math.inf
    for _ in range(n_init):
        first = int(rng.integers(len(x)))
        d = ((x - x[first]) ** 2).sum(1)
        second = int(rng.choice(len(x), p=d / d.sum())) if d.sum() > 0 else (first + 1) % len(x)
        centres = x[[first, second]].copy()
        labels = np.zeros(len(x), dtype=int)
        for _ in range(iters):
            new = ((x[:, None, :] - centres[None]) ** 2).sum(2).argmin(1)
            if (new == labels).all() and _ > 0:
                break
            labels = new
            for c in (0, 1):
                if (labels == c).any():
                    centres[c] = x[labels == c].mean(0)
        inertia = float(((x - centres[labels]) ** 2).sum())
        if len(set(labels.tolist())) == 2 and inertia < best_inertia - 1e-12:
            best, best_inertia = labels, inertia
    return best


def _mean_pairwise(sims: np.ndarray, members: Sequence[int]) -> float:
    pairs = [sims[i, j] for n, i in enumerate(members) for j in members[n + 1 :]]
    return float(np.mean(pairs)) if pairs else float("nan")


def _ngram_duplicates(texts: Sequence[str], members: Sequence[int], gate: float) -> set[int]:
    """TrustRAG's n-gram filter within a group: a passage whose ROUGE-L with a later one (or
    with the first passage found overlapping) is above ``gate`` goes, with its partner."""
    out: set[int] = set()
    reference: int | None = None
    for n, i in enumerate(members):
        if i in out:
            continue
        for j in members[n + 1 :]:
            if rouge_l(texts[i], texts[j]) > gate:
                out.update((i, j))
                reference = i if reference is None else reference
                break
        if reference is not None and reference != i and rouge_l(texts[i], texts[reference]) > gate:
            out.add(i)
    return out


class TrustRAG:
    """TrustRAG (Zhou et al. 2025): cluster filtering, then the generator's own knowledge.

    Stage 1 (clean retrieval), as the authors' code does it: if no two retrieved passages
    share enough n-grams (ROUGE-L F above ``rouge_gate``), nothing is filtered. Otherwise
    the embeddings are standardised and normalised and split by two-cluster k-means; a
    cluster whose mean pairwise cosine (of the original vectors) is above ``threshold``
    (0.88 in the paper) is suspicious and removed; when both are, everything is; when
    neither is, only n-gram near-copies within each cluster go. A single passage against
    a loose cluster is removed as an outlier; against a tight one, the cluster goes.

    Stage 2 (conflict removal). The paper asks the LLM to write its internal knowledge
    and to consolidate it with the passages in one long prompt; a 270M generator cannot
    follow that prompt, so here the generator's closed-book answer is its internal
    knowledge and each remaining passage's isolated answer is its claim: when the
    internal answer agrees with at least one passage, the passages whose answer
    contradicts it are removed. The final answer is the generator reading the kept
    passages (the paper's final prompt also shows the internal knowledge).

    Args:
        generator: Gives the internal knowledge and the isolated answers.
        threshold: The similarity gate on a cluster's mean cosine.
        rouge_gate: The n-gram overlap that counts as a near-copy.
        self_assess: Run stage 2.
        seed: Seeds k-means.
    """

    name = "trustrag"

    def __init__(self, generator: Generator, *, threshold: float = 0.88, rouge_gate: float = 0.25,
                 self_assess: bool = True, seed: int = 0) -> None:
        if not -1.0 <= threshold <= 1.0 or not 0.0 <= rouge_gate <= 1.0:
            msg = f"TrustRAG needs threshold in [-1, 1] and rouge_gate in [0, 1], got {threshold}, {rouge_gate}"
            raise ConfigError(msg)
        self.threshold, self.rouge_gate, self.self_assess, self.seed = threshold, rouge_gate, self_assess, seed
        self.reader = Reader(generator, max_passages=1, extractive=False)

    def cluster_filter(self, request: DefenceRequest) -> tuple[dict[int, str], dict[int, dict[str, float]]]:
        """Stage 1: {index: reason} of the removed passages, and every passage's values."""
        texts = [p.full_text for p in request.passages]
        n = len(texts)
        overlap = [max((rouge_l(texts[i], texts[j]) for j in range(n) if j != i), default=0.0) for i in range(n)]
        values = {i: {"max_rouge_l": overlap[i]} for i in range(n)}
        if n < 2 or max(overlap, default=0.0) <= self.rouge_gate:
            return {}, values
        v = np.asarray(request.vectors, dtype=np.float64)
        sims = v @ v.T
        z = (v - v.mean(0)) / np.where(v.std(0) > 0, v.std(0), 1.0)
        z /= np.maximum(np.linalg.norm(z, axis=1, keepdims=True), 1e-12)
        labels = _kmeans2(z, self.seed) if n > 2 else np.arange(n)
        groups = [[i for i in range(n) if labels[i] == c] for c in (0, 1)]
        means = [_mean_pairwise(sims, g) for g in groups]
        for g, m in zip(groups, means, strict=True):
            for i in g:
                values[i]["cluster_cosine"] = m
                values[i]["cluster_size"] = float(len(g))
        thr = self.threshold
        removed: dict[int, str] = {}

        def drop(members: Sequence[int], why: str) -> None:
            for i in members:
                removed.setdefault(i, why)

        if all(len(g) == 1 for g in groups):
            return {}, values
        if any(len(g) == 1 for g in groups):
            single, crowd = sorted(groups, key=len)
            m = means[groups.index(crowd)]
            if m > thr:
                if sims[single[0], crowd[0]] > thr:
                    drop(range(n), f"every passage is in a cluster of mean cosine above {thr}")
                else:
                    drop(crowd, f"in a cluster of {len(crowd)} with mean cosine {m:.3f} > {thr}")
            else:
                drop(single, f"a lone passage beside a loose cluster (mean cosine {m:.3f} <= {thr})")
            return removed, values
        high, low = sorted(range(2), key=lambda c: -means[c])
        if means[low] > thr:
            drop(range(n), f"both clusters have mean cosine above {thr}")
        elif means[high] < thr:
            for c in (0, 1):
                drop(sorted(_ngram_duplicates(texts, groups[c], self.rouge_gate)),
                     f"an n-gram near-copy (ROUGE-L > {self.rouge_gate}) within its cluster")
        else:
            drop(groups[high], f"in a cluster of {len(groups[high])} with mean cosine {means[high]:.3f} > {thr}")
            drop(sorted(_ngram_duplicates(texts, groups[low], self.rouge_gate)),
                 f"an n-gram near-copy (ROUGE-L > {self.rouge_gate}) within its cluster")
        return removed, values

    def defend_many(self, requests: Sequence[DefenceRequest]) -> list[DefenceDecision]:
        stage1 = [self.cluster_filter(r) for r in requests]
        removed = [dict(s[0]) for s in stage1]
        internal: list[str] = [""] * len(requests)
        if self.self_assess:
            internal = self.reader.closed_book([r.question for r in requests])
            rest = [DefenceRequest(r.question, tuple(p for i, p in enumerate(r.passages) if i not in gone),
                                   r.vectors) for r, gone in zip(requests, removed, strict=True)]
            answers = _isolated_answers(self.reader, rest)
            for q, (r, gone, said) in enumerate(zip(requests, removed, answers, strict=True)):
                idx = [i for i in range(len(r.passages)) if i not in gone]
                own = internal[q]
                if _is_no_answer(own) or not any(same_answer(own, a) for a in said if not _is_no_answer(a)):
                    continue  # the generator knows nothing the passages back: no judgement
                for i, a in zip(idx, said, strict=True):
                    if not _is_no_answer(a) and not same_answer(own, a):
                        gone[i] = (f"its answer {a!r} contradicts the generator's own knowledge {own!r}, "
                                   "which other passages back")
        out = []
        for r, gone, (_, values), own in zip(requests, removed, stage1, internal, strict=True):
            judgements = tuple(Judgement(p.id, i in gone, gone.get(i, "kept"), values[i])
                               for i, p in enumerate(r.passages))
            out.append(DefenceDecision(judgements, None, {"internal_knowledge": own}))
        return out


# ------------------------------------------------------------------------------ RAGDefender


def _ward2(x: np.ndarray) -> np.ndarray:
    """Labels (0/1) of Ward agglomerative clustering cut at two clusters."""
    clusters: list[list[int]] = [[i] for i in range(len(x))]
    while len(clusters) > 2:
        best, pair = math.inf, (0, 1)
        for a in range(len(clusters)):
            for b in range(a + 1, len(clusters)):
                ca, cb = x[clusters[a]].mean(0), x[clusters[b]].mean(0)
                na, nb = len(clusters[a]), len(clusters[b])
                cost = na * nb / (na + nb) * float(((ca - cb) ** 2).sum())
                if cost < best - 1e-12:
                    best, pair = cost, (a, b)
        a, b = pair
        clusters[a] += clusters.pop(b)
    labels = np.zeros(len(x), dtype=int)
    for i in clusters[1] if len(clusters) > 1 else []:
        labels[i] = 1
    return labels


def _tfidf_majority(texts: Sequence[str], top: int = 5) -> int:
    """How many texts hold most of the ``top`` terms of highest summed TF-IDF (RAGDefender's
    second estimate: crafted passages share their key terms)."""
    docs = [tokenize(t) for t in texts]
    n = len(docs)
    df = Counter(w for d in docs for w in set(d))
    score: Counter[str] = Counter()
    for d in docs:
        if not d:
            continue
        tf = Counter(d)
        vec = {w: c * (math.log((1 + n) / (1 + df[w])) + 1) for w, c in tf.items()}
        norm = math.sqrt(sum(v * v for v in vec.values())) or 1.0
        for w, v in vec.items():
            score[w] += v / norm
    terms = [w for w, _ in sorted(score.items(), key=lambda kv: (-kv[1], kv[0]))[:top]]
    return sum(sum(w in set(d) for w in terms) > len(terms) // 2 for d in docs)


class RAGDefender:
    """RAGDefender, single-hop (Kim et al. 2025): how many poisons, then which.

    Stage 1 estimates the number of poisons ``N``: Ward agglomerative clustering of the
    retrieved embeddings into two groups, and a TF-IDF count (passages holding most of the
    five highest-weighted terms). If that count is at most half the passages, the poisons
    are the minority (``N`` = the smaller group), else the majority (``N`` = the larger).
    Stage 2 ranks the pairs of passages by cosine, takes the ``max(1, N(N-1)/2)`` most
    similar pairs, and removes the ``N`` passages that occur in them most often (ties by
    mean cosine to the rest).

    As in the paper, ``N`` is at least one whenever two or more passages were retrieved:
    the defence always removes something, also from clean retrieval. Differs from the
    paper: the embeddings are the project's embedder's (the paper uses a separate
    similarity model, all-MiniLM-L6-v2, which is also the project's default), and the
    clustering and TF-IDF are the project's own numpy code, not scikit-learn's.
    """

    name = "ragdefender"

    def defend_many(self, requests: Sequence[DefenceRequest]) -> list[DefenceDecision]:
        return [self.defend(r) for r in requests]

    @staticmethod
    def estimate(request: DefenceRequest) -> int:
        n = len(request.passages)
        if n < 2:
            return 0
        labels = _ward2(np.asarray(request.vectors, dtype=np.float64))
        ones = int(labels.sum())
        by_terms = _tfidf_majority([p.full_text for p in request.passages])
        return min(ones, n - ones) if by_terms <= n // 2 else max(ones, n - ones)

    def defend(self, request: DefenceRequest) -> DefenceDecision:
        n = len(request.passages)
        estimate = self.estimate(request)
        v = np.asarray(request.vectors, dtype=np.float64)
        sims = v @ v.T if n else np.zeros((0, 0))
        mean_sim = [(sims[i].sum() - sims[i, i]) / max(1, n - 1) for i in range(n)]
        counts = [0] * n
        if estimate:
            pairs = sorted(((sims[i, j], i, j) for i in range(n) for j in range(i + 1, n)), reverse=True)
            for _, i, j in pairs[: max(1, estimate * (estimate - 1) // 2)]:
                counts[i] += 1
                counts[j] += 1
        ranked = sorted(range(n), key=lambda i: (-counts[i], -mean_sim[i], i))
        removed = set(ranked[:estimate])
        judgements = tuple(
            Judgement(p.id, i in removed,
                      f"among the {estimate} passages most often in the most similar pairs" if i in removed else "kept",
                      {"estimated_poisons": float(estimate), "pair_count": float(counts[i]),
                       "mean_cosine": float(mean_sim[i])})
            for i, p in enumerate(request.passages))
        return DefenceDecision(judgements, None, {"estimated_poisons": estimate})


# ------------------------------------------------------------------------------ perplexity


def perplexity(scorer: Scorer, texts: Sequence[str]) -> list[float]:
    """Per text, exp of the mean negative token log-probability under ``scorer``."""
    out = []
    for lp in scorer.token_logprobs(list(texts)):
        lp = np.asarray(lp, dtype=np.float64)
        out.append(float(np.exp(-lp.mean())) if lp.size else 1.0)
    return out


class PerplexityFilter:
    """Drop passages whose perplexity under the generator is above ``threshold``.

    :meth:`calibrate` sets the threshold from clean passages: a quantile of their
    perplexities, so that about ``1 - quantile`` of clean passages is dropped by design.
    Same rule as the baseline in the papers (their threshold is also set on clean text).
    """

    name = "perplexity"

    def __init__(self, scorer: Scorer, threshold: float) -> None:
        if not callable(getattr(scorer, "token_logprobs", None)):
            msg = "the perplexity defence needs a generator that can score text (token_logprobs)"
            raise ConfigError(msg)
        if not threshold > 0:
            msg = f"perplexity threshold must be positive, got {threshold!r}"
            raise ConfigError(msg)
        self.scorer, self.threshold = scorer, float(threshold)

    @staticmethod
    def calibrate(scorer: Scorer, clean: Sequence[str], quantile: float = 0.99) -> float:
        """The ``quantile`` of the clean passages' perplexities."""
        if not clean:
            msg = "the perplexity threshold needs clean passages to calibrate on"
            raise ConfigError(msg)
        if not 0.0 < quantile <= 1.0:
            msg = f"quantile must lie in (0, 1], got {quantile!r}"
            raise ConfigError(msg)
        return float(np.quantile(perplexity(scorer, clean), quantile))

    def defend_many(self, requests: Sequence[DefenceRequest]) -> list[DefenceDecision]:
        texts = [p.full_text for r in requests for p in r.passages]
        values = iter(perplexity(self.scorer, texts) if texts else [])
        out = []
        for r in requests:
            judgements = []
            for p in r.passages:
                ppl = next(values)
                high = ppl > self.threshold
                judgements.append(Judgement(p.id, high, f"perplexity {ppl:.1f} {'>' if high else '<='} "
                                                        f"{self.threshold:.1f}", {"perplexity": ppl}))
            out.append(DefenceDecision(tuple(judgements), None, {"threshold": self.threshold}))
        return out


# ------------------------------------------------------------------------------ runner


class DefendedRAG:
    """Plain RAG with a defence between retrieval and reading.

    Retrieval is the pipeline's plain configuration's: the rule rewriter's queries, each
    searched, fused by reciprocal rank (no multi-hop decomposition). The defence judges the
    ``k`` retrieved passages; the generator reads the first ``max_passages`` kept ones (no
    extraction, as in plain RAG), or answers closed-book when nothing is kept. A defence
    that answers itself (RobustRAG) gives the answer; its empty answer is an abstention.

    Answers carry the trace the harness reads: ``retrieve`` (ids), ``detect`` (a verdict
    per passage with the defence's values, and the ``quarantined`` ids) and ``read``.

    Args:
        store: The store searched.
        generator: The reader.
        defence: Any :class:`Defence`; None reads every retrieved passage.
        k: Passages retrieved.
        max_passages: Passages read.
    """

    def __init__(self, store: Any, generator: Generator, defence: Defence | None, *, k: int = 5,
                 max_passages: int = 3) -> None:
        if defence is not None and not isinstance(defence, Defence):
            msg = f"defence must have a name and defend_many(requests), got {type(defence).__name__}"
            raise ConfigError(msg)
        self.store, self.defence, self.k = store, defence, k
        self.rewriter = RuleRewriter()
        self.reader = Reader(generator, max_passages=max_passages, extractive=False)

    def retrieve(self, questions: Sequence[str]) -> list[list[ScoredPassage]]:
        queries = [list(self.rewriter.rewrite(q).queries) for q in questions]
        flat = self.store.search_many([x for qs in queries for x in qs], self.k)
        out, at = [], 0
        for qs in queries:
            rankings, at = flat[at : at + len(qs)], at + len(qs)
            if len(rankings) == 1:
                out.append(rankings[0])
                continue
            by_id = {h.id: h for ranking in rankings for h in ranking}
            fused = reciprocal_rank_fusion([[h.id for h in ranking] for ranking in rankings])
            out.append([by_id[i] for i, _ in fused[: self.k]])
        return out

    def answer_many(self, questions: Sequence[str]) -> list[Answer]:
        start = time.perf_counter()
        hits = self.retrieve(questions)
        retrieve_ms = (time.perf_counter() - start) * 1000 / max(1, len(questions))
        passages = [[h.passage for h in hs] for hs in hits]
        decisions: list[DefenceDecision | None] = [None] * len(questions)
        defend_ms = 0.0
        if self.defence is not None:
            start = time.perf_counter()
            # the store keeps every passage's vector, as the pipeline's detector reads them
            flat = [p for ps in passages for p in ps]
            stored = self.store.vectors([p.id for p in flat])
            missing = [p.full_text for p in flat if p.id not in stored]
            fresh = iter(self.store.embedder.embed_documents(missing) if missing else ())
            vectors = {p.id: stored[p.id] if p.id in stored else next(fresh) for p in flat}
            dim = self.store.embedder.dim
            requests = [DefenceRequest(q, tuple(ps), np.array([vectors[p.id] for p in ps], dtype=np.float32)
                                       .reshape(len(ps), dim))
                        for q, ps in zip(questions, passages, strict=True)]
            decisions = list(self.defence.defend_many(requests))
            defend_ms = (time.perf_counter() - start) * 1000 / max(1, len(questions))
        to_read = [(q, [p for p in ps if d is None or p.id in d.kept])
                   for q, ps, d in zip(questions, passages, decisions, strict=True) if d is None or d.answer is None]
        readings = iter(self.reader.read_many(to_read)) if to_read else iter(())
        out = []
        for q, ps, d in zip(questions, passages, decisions, strict=True):
            trace = [StageRecord("retrieve", f"{len(ps)} passages", retrieve_ms, {"ids": [p.id for p in ps]})]
            flags: list[dict[str, Any]] = []
            if d is not None:
                verdicts = [{"passage_id": j.passage_id, "poisoned": j.flagged, "score": 1.0 if j.flagged else 0.0,
                             "signals": dict(j.signals), "reasons": {"rule": j.reason}} for j in d.judgements]
                flags = [{"type": self.defence.name, "action": "quarantined", "passage_id": j.passage_id,  # type: ignore[union-attr]
                          "score": 1.0, "signals": dict(j.signals), "reason": j.reason}
                         for j in d.judgements if j.flagged]
                trace.append(StageRecord("detect", f"quarantined {len(d.flagged)} of {len(ps)}", defend_ms,
                                         {"reason": self.defence.name,  # type: ignore[union-attr]
                                          "quarantined": list(d.flagged), "verdicts": verdicts,
                                          **{k: v for k, v in d.details.items() if k != "quarantined"}}))
            if d is not None and d.answer is not None:
                text, source = d.answer, "corpus" if d.answer else "none"
                citations = d.kept if d.answer else ()
            else:
                reading = next(readings)
                text, citations = reading.text, reading.citations
                source = "corpus" if reading.method != "closed_book" else "parametric"
                if not text:
                    source = "none"
                trace.append(StageRecord("read", reading.method, 0.0, {"answer": text}))
            out.append(Answer(text, source, tuple(citations), (), tuple(flags), tuple(trace), question=q))  # type: ignore[arg-type]
        return out
