"""Knowledge-preference evaluation: is the configured winner obeyed when sources conflict?

Conflict cases are built from a BEIR-style folder with answers (``corpus.jsonl``,
``queries.jsonl``, ``answers.jsonl``, ``qrels/test.tsv``):

1. *Questions*: those with a single relevant passage in which the gold answer of
   ``answers.jsonl`` occurs as a span (a string match: the cases are built without the
   system's own readers, so that what they can read does not choose what is tested). The
   fact sentence is the passage's first sentence holding the span. At most ``limit``
   questions, after a seeded shuffle.
2. *Answers per level*: ``corpus`` is the original passage (the true answer); ``memory``
   and ``user`` are the fact sentence with the answer span replaced by two distinct answers
   of *other* questions (the template is the sentence with its answer slot), chosen by
   answer shape: first answers of the same capitalisation and digit shape to questions
   with the same question word, then of the same shape, then of the same coarse shape
   (digits, capitalised or lowercase); ``parametric`` is the generator's closed-book
   answer (asked once per question).
3. *Cases*: every non-empty subset of the four levels (4 singles, 6 pairs, 4 triples and
   the full set). Each case has its own namespace ``case-<n>`` holding its corpus passage
   and its memory note (written with :class:`~rag.memory.editor.KnowledgeEditor`); the
   shared namespace stays empty, so a case sees only its own evidence. The user level is
   ``Query.user_facts``. Cases without ``parametric`` run with ``parametric="never"``,
   the others with ``parametric="fallback"``.
4. *Expected winner*: the highest level of the case under the configured order. A case is
   *obeyed* when the answer's source is that level and its text is the same answer
   (:func:`~rag.text.same_answer`) as the one planted there. An abstention is
   never obeyed (it stays in the denominator and is also reported as ``abstained``). Cases
   whose expected answer is empty (a closed-book answer the generator could not give) or
   whose levels are all outside the order are not scored.
5. *Counts before anything is left out*: ``built_<level>`` is the number of cases each
   level would be the expected winner of over every question with a gold answer and one
   relevant passage, before questions are left out (answer not in the passage, fewer than
   two counterfactual answers) and before unscored cases; ``n_<level>`` is the number
   scored.

Example:
    >>> from rag.evaluation.preference import subsets
    >>> [len(s) for s in subsets()]
    [1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 4]
"""

from __future__ import annotations

import dataclasses
import json
import logging
import random
import re
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from rag.errors import ConfigError, InputFormatError
from rag.evaluation.memo import memoize
from rag.evaluation.runs import RunWriter, markdown_table, set_seed
from rag.memory.editor import KnowledgeEditor
from rag.memory.store import Store
from rag.metrics import latency_summary, source_adoption
from rag.pipeline import Pipeline, PipelineConfig
from rag.protocols import Embedder, Generator
from rag.stages.read import Reader, sentences
from rag.text import answer_words, fold, same_answer, tokens
from rag.types import SOURCES, Answer, Passage, Query

logger = logging.getLogger(__name__)

#: Preference levels, in the library's default order.
LEVELS: tuple[str, ...] = SOURCES
_SIZE_NAMES = {1: "singles", 2: "pairs", 3: "triples", 4: "all"}


def subsets(levels: Sequence[str] = LEVELS) -> list[tuple[str, ...]]:
    """Every non-empty subset of ``levels`` (sizes 1 to all), each in ``levels`` order."""
    return [c for n in range(1, len(levels) + 1) for c in combinations(levels, n)]


def expected_level(subset: Sequence[str], order: Sequence[str]) -> str:
    """The level that should win among ``subset`` under ``order`` (``none`` if no level of
    the subset is ranked at all)."""
    return next((s for s in order if s in subset), "none")


# ------------------------------------------------------------------------------ loading


@dataclass(frozen=True, slots=True)
class FactItem:
    """A question whose single relevant passage states its answer in a well-formed sentence.

    Attributes:
        qid: Query id.
        question: The question.
        gold: The gold answer as it is written in the sentence.
        passage: The relevant corpus passage.
        sentence: The fact sentence inside the passage.
        start: Offset of the answer span in ``sentence``.
        end: End offset of the answer span in ``sentence``.
    """

    qid: str
    question: str
    gold: str
    passage: Passage
    sentence: str
    start: int
    end: int

    def with_answer(self, answer: str) -> str:
        """The fact sentence with the answer span replaced by ``answer``."""
        return self.sentence[: self.start] + answer + self.sentence[self.end :]


@dataclass(frozen=True, slots=True)
class ConflictCase:
    """One case: a question and the answer planted at each level present."""

    case_id: int
    item: FactItem
    subset: tuple[str, ...]
    answers: Mapping[str, str]  # level -> planted answer (parametric: closed-book answer)
    user_fact: str
    memory_note: str
    expected: str
    expected_answer: str

    @property
    def namespace(self) -> str:
        return f"case-{self.case_id}"

    @property
    def scored(self) -> bool:
        return self.expected != "none" and bool(self.expected_answer.strip())


def _jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        msg = f"{path} is missing (expected a BEIR folder with corpus, queries, answers and qrels)"
        raise InputFormatError(msg)
    records = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as exc:
            msg = f"{path}:{n}: not JSON ({exc})"
            raise InputFormatError(msg) from None
    return records


def _qrels(path: Path) -> dict[str, list[str]]:
    if not path.is_file():
        msg = f"{path} is missing (expected qrels/test.tsv)"
        raise InputFormatError(msg)
    relevant: dict[str, list[str]] = defaultdict(list)
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        parts = line.split("\t")
        if not line.strip() or parts[0] == "query-id":
            continue
        try:
            qid, pid, score = parts[0], parts[1], int(float(parts[2]))
        except (IndexError, ValueError):
            msg = f"{path}:{n}: expected 'query-id<TAB>corpus-id<TAB>score', got {line!r}"
            raise InputFormatError(msg) from None
        if score >= 1:
            relevant[qid].append(pid)
    return relevant


def _spans(sentence: str, answer: str) -> list[tuple[int, int]]:
    pattern = re.compile(r"(?<!\w)" + re.escape(answer) + r"(?!\w)", re.IGNORECASE)
    return [(m.start(), m.end()) for m in pattern.finditer(sentence)]


def _read_item(qid: str, question: str, gold: str, passage: Passage) -> FactItem | None:
    """The first sentence of ``passage`` holding ``gold`` as a span, or None."""
    for sentence in sentences(passage.text) or [passage.text]:
        for start, end in _spans(sentence, gold):
            return FactItem(qid, question, sentence[start:end], passage, sentence, start, end)
    return None


def load_fact_items(corpus_dir: str | Path) -> tuple[list[FactItem], dict[str, int]]:
    """Questions of a BEIR folder usable for conflict cases, in file order, and counts of
    the questions left out by reason."""
    folder = Path(corpus_dir)
    corpus = {str(r["_id"]): r for r in _jsonl(folder / "corpus.jsonl")}
    queries = {str(r["_id"]): str(r["text"]) for r in _jsonl(folder / "queries.jsonl")}
    answers = {str(r["_id"]): list(r.get("answers") or []) for r in _jsonl(folder / "answers.jsonl")}
    relevant = _qrels(folder / "qrels" / "test.tsv")
    items: list[FactItem] = []
    skipped: Counter[str] = Counter()
    for qid, question in queries.items():
        pids = relevant.get(qid, [])
        gold = str(answers[qid][0]).strip() if answers.get(qid) else ""
        if not gold:
            skipped["no_answer"] += 1
            continue
        if len(pids) != 1 or pids[0] not in corpus:
            skipped["not_single_passage"] += 1
            continue
        rec = corpus[pids[0]]
        passage = Passage(pids[0], str(rec.get("text", "")), str(rec.get("title", "") or ""))
        item = _read_item(qid, question, gold, passage)
        if item is None:
            skipped["answer_not_in_passage"] += 1
            continue
        items.append(item)
    if not items:
        msg = f"{folder}: no question has a single relevant passage holding its gold answer"
        raise InputFormatError(msg)
    return items, dict(skipped)


# ------------------------------------------------------------------------------ counterfactuals


def answer_shape(answer: str) -> str:
    """Capitalisation and digit shape of an answer, one letter per word: ``A`` capitalised,
    ``9`` holding a digit, ``a`` otherwise ("Ludmila Novakovic" -> "AA", "1979" -> "9")."""
    out = []
    for tok in tokens(answer):
        out.append("9" if any(c.isdigit() for c in tok.text) else "A" if tok.text[0].isupper() else "a")
    return "".join(out)


def _coarse_shape(answer: str) -> str:
    shape = answer_shape(answer)
    return "9" if "9" in shape else shape[:1]


def _wh(question: str) -> str:
    words = fold(question).split()
    return words[0] if words else ""


def counterfactuals(item: FactItem, pool: Sequence[FactItem], rng: random.Random, n: int = 2) -> list[str]:
    """``n`` distinct answers of other questions that fit ``item``'s answer slot by shape.

    Candidates come in tiers, each shuffled: answers of the same shape to questions with
    the same question word ("who", "when", ...); then of the same shape; then of the same
    coarse shape (digits, capitalised or lowercase). A candidate is taken when it differs
    from the gold and the answers already taken and does not occur in the original passage.
    """
    others = [o for o in pool if o.qid != item.qid]
    shape, coarse, wh = answer_shape(item.gold), _coarse_shape(item.gold), _wh(item.question)
    tiers = [
        [o.gold for o in others if answer_shape(o.gold) == shape and _wh(o.question) == wh],
        [o.gold for o in others if answer_shape(o.gold) == shape],
        [o.gold for o in others if _coarse_shape(o.gold) == coarse],
    ]
    chosen: list[str] = []
    seen: set[tuple[str, ...]] = set()
    for tier in tiers:
        tier = sorted(set(tier))
        rng.shuffle(tier)
        for answer in tier:
            key = answer_words(answer)
            if key in seen:
                continue
            seen.add(key)
            if same_answer(answer, item.gold) or any(same_answer(answer, c) for c in chosen):
                continue
            if _spans(item.passage.full_text, answer):
                continue
            chosen.append(answer)
            if len(chosen) == n:
                return chosen
    return chosen


# ------------------------------------------------------------------------------ generator memo


# ------------------------------------------------------------------------------ cases


def build_cases(
    items: Sequence[FactItem],
    closed_book: Mapping[str, str],
    order: Sequence[str],
    seed: int = 0,
) -> tuple[list[ConflictCase], int]:
    """Conflict cases for every item and subset; also the number of items left out for
    lack of two counterfactual answers."""
    rng = random.Random(seed + 1)
    cases: list[ConflictCase] = []
    dropped = 0
    for item in items:
        fakes = counterfactuals(item, items, rng, 2)
        if len(fakes) < 2:
            dropped += 1
            continue
        user_answer, memory_answer = fakes
        answers = {"user": user_answer, "memory": memory_answer, "corpus": item.gold,
                   "parametric": closed_book.get(item.qid, "")}
        for subset in subsets():
            expected = expected_level(subset, order)
            cases.append(ConflictCase(
                case_id=len(cases), item=item, subset=subset,
                answers={s: answers[s] for s in subset},
                user_fact=item.with_answer(user_answer) if "user" in subset else "",
                memory_note=item.with_answer(memory_answer) if "memory" in subset else "",
                expected=expected, expected_answer=answers.get(expected, ""),
            ))
    return cases, dropped


def built_counts(n_questions: int, order: Sequence[str]) -> dict[str, int]:
    """Cases each level is the expected winner of, over ``n_questions`` questions with all
    their subsets (the counts before any question or case is left out)."""
    per_question = Counter(expected_level(s, order) for s in subsets())
    return {level: n_questions * per_question.get(level, 0) for level in LEVELS}


def _populate(store: Store, cases: Sequence[ConflictCase]) -> list[str]:
    """Write the cases' corpus passages and memory notes; return the ids written."""
    passages = [Passage(f"{c.item.passage.id}@{c.namespace}", c.item.passage.text, c.item.passage.title,
                        namespace=c.namespace, metadata={"case": c.case_id, "doc_id": c.item.passage.id})
                for c in cases if "corpus" in c.subset]
    store.add_passages(passages, show_progress=False)
    editor = KnowledgeEditor(store, author="preference-eval")
    notes = [editor.edit(c.memory_note, namespace=c.namespace, reason="preference eval case")
             for c in cases if c.memory_note]
    return [p.id for p in passages] + [e.passage_id for e in notes if e.passage_id]


def _query(case: ConflictCase) -> Query:
    return Query(case.item.question, user_facts=(case.user_fact,) if case.user_fact else (),
                 namespace=case.namespace)


def _answer_cases(pipeline: Pipeline, cases: Sequence[ConflictCase], batch_size: int) -> list[tuple[Answer, float]]:
    out: list[tuple[Answer, float]] = []
    for i in range(0, len(cases), batch_size):
        batch = cases[i : i + batch_size]
        start = time.perf_counter()
        answers = pipeline.answer_many([_query(c) for c in batch])
        per = (time.perf_counter() - start) * 1000 / max(1, len(batch))
        out.extend((a, per) for a in answers)
    return out


def is_obeyed(case: ConflictCase, answer: Answer) -> bool:
    """The answer comes from the expected level and gives the answer planted there."""
    return case.scored and answer.source == case.expected and same_answer(answer.text, case.expected_answer)


# ------------------------------------------------------------------------------ metrics


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else float("nan")


def preference_metrics(
    results: Sequence[tuple[ConflictCase, Answer, float]], n_questions: int
) -> dict[str, Any]:
    """``obeyed`` overall, per expected level and per subset size, counts, abstentions,
    source adoption and latency."""
    scored = [(c, a) for c, a, _ in results if c.scored]
    hits = [float(is_obeyed(c, a)) for c, a in scored]
    metrics: dict[str, Any] = {"obeyed": _mean(hits)}
    for level in LEVELS:
        metrics[f"obeyed_{level}"] = _mean([float(is_obeyed(c, a)) for c, a in scored if c.expected == level])
    for size, name in _SIZE_NAMES.items():
        metrics[f"obeyed_{name}"] = _mean([float(is_obeyed(c, a)) for c, a in scored if len(c.subset) == size])
    metrics["abstained"] = _mean([float(a.abstained) for _, a in scored])
    metrics["questions"] = n_questions
    metrics["cases"] = len(results)
    metrics["cases_scored"] = len(scored)
    for level in LEVELS:
        metrics[f"n_{level}"] = sum(1 for c, _ in scored if c.expected == level)
    if results:
        metrics["source_adoption"] = source_adoption([a.source for _, a, _ in results])
        metrics.update(latency_summary([ms for _, _, ms in results]))
    return metrics


def level_rows(results: Sequence[tuple[ConflictCase, Answer, float]]) -> list[dict[str, Any]]:
    """One summary row per expected-winner level."""
    rows = []
    for level in LEVELS:
        mine = [(c, a) for c, a, _ in results if c.scored and c.expected == level]
        if not mine:
            continue
        rows.append({
            "expected winner": level,
            "cases": len(mine),
            "obeyed": _mean([float(is_obeyed(c, a)) for c, a in mine]),
            "answered from it": _mean([float(a.source == level) for _, a in mine]),
            "abstained": _mean([float(a.abstained) for _, a in mine]),
            "top wrong source": _top_wrong(mine),
        })
    return rows


def subset_rows(results: Sequence[tuple[ConflictCase, Answer, float]]) -> list[dict[str, Any]]:
    """One summary row per subset of levels."""
    by_subset: dict[tuple[str, ...], list[tuple[ConflictCase, Answer]]] = defaultdict(list)
    for c, a, _ in results:
        if c.scored:
            by_subset[c.subset].append((c, a))
    return [{"levels": "+".join(s), "expected": cases[0][0].expected, "cases": len(cases),
             "obeyed": _mean([float(is_obeyed(c, a)) for c, a in cases]), "top wrong source": _top_wrong(cases)}
            for s, cases in by_subset.items()]


def _top_wrong(pairs: Sequence[tuple[ConflictCase, Answer]]) -> str:
    wrong = Counter(a.source if a.source != c.expected else f"{a.source} (other answer)"
                    for c, a in pairs if not is_obeyed(c, a))
    if not wrong:
        return ""
    source, n = wrong.most_common(1)[0]
    return f"{source} ({n})"


def _summary(writer: RunWriter, metrics: Mapping[str, Any], results: Sequence[tuple[ConflictCase, Answer, float]],
             order: Sequence[str], info: Mapping[str, Any]) -> str:
    m = writer.manifest
    models = ", ".join(f"{role}: `{name}`" for role, name in m["models"].items()) or "none"
    overall = {k: v for k, v in metrics.items() if k.startswith("obeyed") or k in ("abstained", "cases_scored")}
    parts = [
        f"# Knowledge-preference run `{m['run']}`",
        "",
        f"- order: {' > '.join(order)}",
        f"- questions: {info['questions']} ({info['dropped_no_counterfactual']} left out for lack of two "
        f"counterfactual answers; skipped while loading: {info['skipped'] or 'none'})",
        f"- cases: {metrics.get('cases', 0)} ({metrics.get('cases_scored', 0)} scored); before any question "
        f"was left out ({metrics.get('questions_before_leaving_out', 0)} questions): "
        + ", ".join(f"{level} {metrics.get(f'built_{level}', 0)}" for level in LEVELS),
        f"- seed: {m['seed']}; models: {models}",
        "",
        "## Obeyed by expected winner",
        "",
        markdown_table(level_rows(results)) if results else "No cases.",
        "",
        "## Obeyed by levels present",
        "",
        markdown_table(subset_rows(results)) if results else "No cases.",
        "",
        "## Overall",
        "",
        markdown_table([overall]),
    ]
    return "\n".join(parts)


# ------------------------------------------------------------------------------ the run


def run_preference_eval(
    corpus_dir: str | Path,
    out_dir: str | Path,
    *,
    embedder: Embedder,
    generator: Generator,
    limit: int | None = None,
    seed: int = 0,
    overwrite: bool = False,
    show_progress: bool = True,
    config: PipelineConfig | None = None,
    batch_size: int = 64,
    chunk_questions: int = 16,
) -> dict[str, float]:
    """Build the conflict cases of ``corpus_dir``, answer them, write the run folder.

    Args:
        corpus_dir: A BEIR folder with ``answers.jsonl`` (the demo corpus, for instance).
        out_dir: The run folder (see :class:`~rag.evaluation.runs.RunWriter`).
        embedder: Embeds the case store.
        generator: Reads passages and gives closed-book answers.
        limit: Questions used at most (after a seeded shuffle).
        seed: Seeds the shuffle and the choice of counterfactual answers.
        overwrite: Allow a non-empty ``out_dir``.
        show_progress: Show progress bars.
        config: The pipeline settings; its ``parametric`` mode is replaced per case
            (``never`` without the parametric level, ``fallback`` with it) and its ``order``
            decides the expected winner.
        batch_size: Questions per ``answer_many`` call.
        chunk_questions: Questions whose cases are in the store at the same time.

    Returns:
        The metrics (also the ``full`` row of ``metrics.json``).
    """
    if batch_size < 1 or chunk_questions < 1 or (limit is not None and limit < 1):
        msg = f"batch_size, chunk_questions and limit must be positive, got {batch_size}, {chunk_questions}, {limit}"
        raise ConfigError(msg)
    set_seed(seed)
    base = config or PipelineConfig()
    order = tuple(base.order)
    items, skipped = load_fact_items(corpus_dir)
    random.Random(seed).shuffle(items)
    # every question with a gold answer and one relevant passage, before any is left out
    candidates = len(items) + skipped.get("answer_not_in_passage", 0)
    if limit is not None:
        items = items[:limit]
        candidates = min(candidates, limit)
    memo = memoize(generator)
    closed = Reader(memo, max_passages=base.max_passages, extractive=base.extractive).closed_book(
        [i.question for i in items])
    closed_book = {i.qid: text for i, text in zip(items, closed)}
    cases, dropped = build_cases(items, closed_book, order, seed)
    n_questions = len(items) - dropped
    info = {"questions": n_questions, "dropped_no_counterfactual": dropped, "skipped": skipped}
    run_config = {"corpus_dir": str(corpus_dir), "limit": limit, "pipeline": dataclasses.asdict(base),
                  "order": list(order), "batch_size": batch_size, "chunk_questions": chunk_questions,
                  **info, "cases": len(cases)}
    writer = RunWriter(out_dir, run_config, seed, {"embedder": embedder.name, "generator": generator.name},
                       overwrite=overwrite)
    with writer, tempfile.TemporaryDirectory() as tmp:
        # One store, nothing in "shared": a case sees only its own namespace. Questions are
        # written, answered and removed a chunk at a time, because a namespace with fewer
        # than k passages makes every search scan the whole index.
        store = Store(Path(tmp) / "cases", embedder)
        pipelines = {mode: Pipeline(store, memo, dataclasses.replace(base, parametric=mode))
                     for mode in ("never", "fallback")}
        answered: dict[int, tuple[Answer, float]] = {}
        by_question: dict[str, list[ConflictCase]] = defaultdict(list)
        for c in cases:
            by_question[c.item.qid].append(c)
        groups = list(by_question.values())
        try:
            for i in tqdm(range(0, len(groups), chunk_questions), desc="questions", disable=not show_progress):
                chunk = [c for g in groups[i : i + chunk_questions] for c in g]
                written = _populate(store, chunk)
                for mode, pipeline in pipelines.items():
                    group = [c for c in chunk if ("parametric" in c.subset) == (mode == "fallback")]
                    for case, result in zip(group, _answer_cases(pipeline, group, batch_size)):
                        answered[case.case_id] = result
                store.remove(written)
        finally:
            store.close()
        results = [(c, *answered[c.case_id]) for c in cases]
        for case, answer, ms in results:
            writer.add_prediction({
                "case": case.case_id, "qid": case.item.qid, "question": case.item.question,
                "subset": list(case.subset), "planted": dict(case.answers),
                "user_facts": [case.user_fact] if case.user_fact else [], "memory_note": case.memory_note,
                "corpus_passage": case.item.passage.id if "corpus" in case.subset else None,
                "expected_level": case.expected, "expected_answer": case.expected_answer, "scored": case.scored,
                "answer": answer.text, "source": answer.source, "citations": list(answer.citations),
                "conflicts": [dict(c) for c in answer.conflicts], "obeyed": is_obeyed(case, answer),
                "latency_ms": ms,
            })
        metrics = preference_metrics(results, n_questions)
        metrics["questions_before_leaving_out"] = candidates
        for level, n in built_counts(candidates, order).items():
            metrics[f"built_{level}"] = n
        writer.add_metrics("full", metrics)
        writer.finish(_summary(writer, metrics, results, order, info))
    return metrics
