"""QA evaluation on a BEIR folder with answers: retrieval and answer quality per configuration.

The folder holds ``corpus.jsonl``, ``queries.jsonl``, ``qrels/test.tsv`` (or another split,
or the single ``qrels/*.tsv``) and ``answers.jsonl``, one line per question::

    {"_id": "q0001", "answers": ["Ludmila Novakovic", "Novakovic"]}

(the id may also be spelled ``id``, ``query_id``, ``query-id`` or ``qid``; the answers
``answer``, ``gold_answers`` or ``golds``, as a string, a list, or SQuAD's
``{"text": [...]}``).

The corpus is ingested once into a store that is reused while the corpus file and the
embedder stay the same (the key is written to ``corpus_key.json`` in the store folder).
Every question with gold answers (at most ``limit``, drawn with the seed, kept in file
order) is then answered by each configuration of :data:`CONFIGS`, with the retrieval
depth ``k`` set for all of them.

Per configuration:

* ``em``, ``f1``, ``contains``: SQuAD-normalised answer metrics against the gold answers;
* ``recall@k``, ``hit@k``, ``mrr@k``, ``ndcg@k``: the ranked passages the pipeline
  retrieved, as its ``retrieve`` trace record lists them (after the rewriter's queries are
  fused), mapped to corpus document ids (chunks of one document count once, at their best
  rank), against the qrels of the evaluated questions. A question answered hop by hop has
  no ``retrieve`` record of its own: each hop's question is searched again as the pipeline
  searched it (same rewriter, same ``k``) and the hop rankings are fused by reciprocal rank;
* ``source_adoption``: share of answers from each source; ``latency_ms_p50``/``p95``
  (a batch's time shared by its questions) and ``questions_per_s``.

Example:
    >>> import json, tempfile
    >>> from pathlib import Path
    >>> from rag.testing import HashEmbedder, ScriptedGenerator
    >>> folder = Path(tempfile.mkdtemp())
    >>> _ = (folder / "corpus.jsonl").write_text(
    ...     '{"_id": "d1", "text": "The capital of Veldoria is Marrowgate."}\\n'
    ...     '{"_id": "d2", "text": "Bananas are yellow when ripe."}\\n')
    >>> _ = (folder / "queries.jsonl").write_text('{"_id": "q1", "text": "What is the capital of Veldoria?"}\\n')
    >>> _ = (folder / "answers.jsonl").write_text('{"_id": "q1", "answers": ["Marrowgate"]}\\n')
    >>> (folder / "qrels").mkdir()
    >>> _ = (folder / "qrels" / "test.tsv").write_text("query-id\\tcorpus-id\\tscore\\nq1\\td1\\t1\\n")
    >>> metrics = run_qa_eval(folder, folder / "run", embedder=HashEmbedder(), configs=["full"],
    ...                       generator=ScriptedGenerator(default="Paris"), show_progress=False)
    >>> metrics["full"]["em"], metrics["full"]["hit@1"]
    (1.0, 1.0)
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import random
import shutil
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from rag.errors import ConfigError, InputFormatError
from rag.evaluation.editing import CONFIGS as EDITING_CONFIGS
from rag.evaluation.runs import RunWriter, markdown_table, set_seed
from rag.integrations.qdrant import open_store
from rag.memory.fusion import reciprocal_rank_fusion
from rag.memory.ingest import Chunker
from rag.memory.store import DB_NAME, Store
from rag.metrics import (
    contains_answer,
    exact_match,
    f1_score,
    latency_summary,
    retrieval_metrics,
    source_adoption,
)
from rag.pipeline import Pipeline, PipelineConfig
from rag.protocols import Embedder, Generator
from rag.types import Answer

logger = logging.getLogger(__name__)

#: The configurations compared, in table order: plain RAG (the generator reads the top
#: passages, as in the editing evaluation, and no detector quarantines any), the full
#: pipeline, and the full pipeline with one stage switched off.
CONFIGS: dict[str, PipelineConfig] = {
    "plain_rag": EDITING_CONFIGS["plain_rag"],
    "full": EDITING_CONFIGS["full"],
    "rewriter_off": EDITING_CONFIGS["rewriter_off"],
    "filter_off": EDITING_CONFIGS["filter_off"],
    "trigger_off": PipelineConfig(trigger=False),
    "detector_off": PipelineConfig(detect=False),
    "arbiter_off": EDITING_CONFIGS["arbiter_off"],
}

#: Retrieval cutoffs reported (those above the retrieval depth ``k`` are left out).
CUTOFFS: tuple[int, ...] = (1, 5, 10)
#: Retrieval measures reported at each cutoff.
MEASURES: tuple[str, ...] = ("recall", "hit", "mrr", "ndcg")
#: The file in a store folder that says which corpus and embedder built it.
KEY_FILE = "corpus_key.json"

_QUERY_ID_KEYS = ("_id", "id", "query_id", "query-id", "qid")
_QUERY_TEXT_KEYS = ("text", "query", "question")
_ANSWER_KEYS = ("answers", "answer", "gold_answers", "golds")


# ------------------------------------------------------------------------------ reading


@dataclass(frozen=True, slots=True)
class QAItem:
    """One question with its gold answers."""

    qid: str
    question: str
    answers: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class QADataset:
    """A BEIR folder read for the QA evaluation.

    Attributes:
        folder: The folder.
        items: The questions that have gold answers, in ``queries.jsonl`` order.
        qrels: qid -> document id -> grade, from :attr:`qrels_file`.
        qrels_file: The judgements used.
        skipped: Counts of what was left out: ``no_answers`` (a query without gold
            answers) and ``answers_without_query`` (an answer line for an unknown query).
    """

    folder: Path
    items: tuple[QAItem, ...]
    qrels: Mapping[str, Mapping[str, int]]
    qrels_file: Path
    skipped: Mapping[str, int]


def _first(record: Mapping[str, Any], keys: Sequence[str]) -> Any:
    return next((record[k] for k in keys if k in record), None)


def _jsonl(path: Path) -> list[tuple[int, dict[str, Any]]]:
    """``(line number, object)`` for each non-blank line of a JSONL file."""
    out = []
    with path.open(encoding="utf-8") as handle:
        for n, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                msg = f"{path}:{n}: not valid JSON ({exc.msg})"
                raise InputFormatError(msg) from None
            if not isinstance(record, dict):
                msg = f"{path}:{n}: expected a JSON object, got {type(record).__name__}"
                raise InputFormatError(msg)
            out.append((n, record))
    return out


def _gold_strings(value: Any) -> list[str] | None:
    if isinstance(value, Mapping) and "text" in value:  # SQuAD: {"text": [...], "answer_start": [...]}
        value = value["text"]
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or any(isinstance(v, bool) or not isinstance(v, str | int | float) for v in value):
        return None
    return [str(v).strip() for v in value if str(v).strip()]


def load_answers(path: str | Path) -> dict[str, tuple[str, ...]]:
    """Read ``answers.jsonl``: query id -> gold answers (repeated ids add their answers).

    Raises:
        InputFormatError: a line is not a JSON object with a query id and answers, named
            with its file and line.

    Example:
        >>> import tempfile, pathlib
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "answers.jsonl"
        >>> _ = p.write_text('{"query_id": "q1", "answer": "Paris"}\\n{"id": 7, "answers": ["x", "y"]}\\n')
        >>> load_answers(p)
        {'q1': ('Paris',), '7': ('x', 'y')}
    """
    path = Path(path)
    answers: dict[str, list[str]] = {}
    for n, record in _jsonl(path):
        qid, value = _first(record, _QUERY_ID_KEYS), _first(record, _ANSWER_KEYS)
        golds = _gold_strings(value)
        if qid is None or isinstance(qid, dict | list) or golds is None:
            msg = (f"{path}:{n}: expected a query id ({'/'.join(_QUERY_ID_KEYS)}) and gold answers "
                   f"({'/'.join(_ANSWER_KEYS)}) as a string or a list of strings; got keys {sorted(record)}")
            raise InputFormatError(msg)
        have = answers.setdefault(str(qid), [])
        have.extend(g for g in golds if g not in have)
    return {qid: tuple(golds) for qid, golds in answers.items()}


def load_queries(path: str | Path) -> dict[str, str]:
    """Read ``queries.jsonl``: query id -> question, in file order.

    Raises:
        InputFormatError: a line lacks an id or a question text (file and line named).
    """
    path = Path(path)
    queries: dict[str, str] = {}
    for n, record in _jsonl(path):
        qid, text = _first(record, _QUERY_ID_KEYS), _first(record, _QUERY_TEXT_KEYS)
        if qid is None or isinstance(qid, dict | list) or not isinstance(text, str) or not text.strip():
            msg = (f"{path}:{n}: expected a query id ({'/'.join(_QUERY_ID_KEYS)}) and a non-empty "
                   f"question ({'/'.join(_QUERY_TEXT_KEYS)}); got keys {sorted(record)}")
            raise InputFormatError(msg)
        queries[str(qid)] = text.strip()
    return queries


def load_qrels(path: str | Path) -> dict[str, dict[str, int]]:
    """Read BEIR qrels (``query-id<TAB>corpus-id<TAB>score``, header optional) or TREC qrels
    (``qid 0 docid grade``): qid -> document id -> grade.

    Raises:
        InputFormatError: a line has another shape or a grade that is not an integer.

    Example:
        >>> import tempfile, pathlib
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "test.tsv"
        >>> _ = p.write_text("query-id\\tcorpus-id\\tscore\\nq1\\td1\\t1\\nq1\\td2\\t0\\n")
        >>> load_qrels(p)
        {'q1': {'d1': 1, 'd2': 0}}
    """
    path = Path(path)
    qrels: dict[str, dict[str, int]] = {}
    with path.open(encoding="utf-8") as handle:
        for n, line in enumerate(handle, start=1):
            parts = line.split("\t") if "\t" in line else line.split()
            parts = [p.strip() for p in parts]
            if not line.strip() or (n == 1 and parts[0].lower() in ("query-id", "query_id", "qid")):
                continue
            if len(parts) == 4:  # TREC: qid iteration docid grade
                parts = [parts[0], parts[2], parts[3]]
            try:
                qid, docid, grade_text = parts
                grade = float(grade_text)
                if grade != int(grade):
                    raise ValueError(grade_text)
            except ValueError:
                msg = (f"{path}:{n}: expected 'query-id<TAB>corpus-id<TAB>score' with an integer score, "
                       f"got {line.rstrip()!r}")
                raise InputFormatError(msg) from None
            qrels.setdefault(qid, {})[docid] = int(grade)
    return qrels


def qrels_file(folder: str | Path, split: str = "test") -> Path:
    """The qrels file of a BEIR folder: ``qrels/<split>.tsv``, else the only ``qrels/*.tsv``.

    Raises:
        InputFormatError: there is no qrels folder or file, or several and none is ``split``.
    """
    qrels_dir = Path(folder) / "qrels"
    wanted = qrels_dir / f"{split}.tsv"
    if wanted.is_file():
        return wanted
    found = sorted(qrels_dir.glob("*.tsv")) if qrels_dir.is_dir() else []
    if len(found) == 1:
        logger.info("no %s; using %s", wanted, found[0])
        return found[0]
    if not found:
        msg = f"{folder} is not a BEIR folder: no qrels/*.tsv (expected {wanted})"
    else:
        msg = f"{folder}: no {wanted.name} among qrels {[p.name for p in found]}; choose a split"
    raise InputFormatError(msg)


def check_qa_folder(folder: str | Path, split: str = "test") -> Path:
    """Check that ``folder`` is a BEIR folder with answers, without reading it in full.

    Returns:
        The qrels file that will be used.

    Raises:
        InputFormatError: a file is missing, named in the message.
    """
    folder = Path(folder)
    if not folder.is_dir():
        msg = f"corpus folder {folder} does not exist" if not folder.exists() else f"{folder} is not a folder"
        raise InputFormatError(msg)
    for name in ("corpus.jsonl", "queries.jsonl"):
        if not (folder / name).is_file():
            msg = f"{folder} is not a BEIR folder: {name} is missing"
            raise InputFormatError(msg)
    if not (folder / "answers.jsonl").is_file():
        msg = (f"{folder} has no answers.jsonl (one line per question: "
               '{"_id": QUERY_ID, "answers": [...]}), which the QA evaluation needs')
        raise InputFormatError(msg)
    return qrels_file(folder, split)


def load_qa_folder(folder: str | Path, split: str = "test") -> QADataset:
    """Read a BEIR folder with answers (see the module docstring).

    Raises:
        InputFormatError: a file is missing or malformed (named with its line), or no
            question has gold answers.
    """
    folder = Path(folder)
    qrels_path = check_qa_folder(folder, split)
    queries = load_queries(folder / "queries.jsonl")
    answers = load_answers(folder / "answers.jsonl")
    qrels = load_qrels(qrels_path)
    items = tuple(QAItem(qid, q, answers[qid]) for qid, q in queries.items() if answers.get(qid))
    skipped = {"no_answers": len(queries) - len(items),
               "answers_without_query": sum(qid not in queries for qid in answers)}
    if skipped["answers_without_query"]:
        logger.warning("%s: %d answer lines name no query of queries.jsonl", folder,
                       skipped["answers_without_query"])
    if not items:
        msg = f"{folder}: no question of queries.jsonl has gold answers in answers.jsonl"
        raise InputFormatError(msg)
    return QADataset(folder, items, qrels, qrels_path, skipped)


def select(items: Sequence[QAItem], limit: int | None, seed: int) -> list[QAItem]:
    """At most ``limit`` items drawn with ``seed``, kept in their original order."""
    if limit is None or limit >= len(items):
        return list(items)
    if limit < 1:
        msg = f"limit must be a positive integer, got {limit}"
        raise ConfigError(msg)
    keep = sorted(random.Random(seed).sample(range(len(items)), limit))
    return [items[i] for i in keep]


def parse_configs(names: str | Sequence[str]) -> list[str]:
    """Configuration names from a comma-separated string or a list; ``all`` means every one.

    Raises:
        ConfigError: a name is not in :data:`CONFIGS`, or none is given.

    Example:
        >>> parse_configs("full, plain_rag")
        ['full', 'plain_rag']
    """
    given = [n.strip() for n in (names.split(",") if isinstance(names, str) else names) if n.strip()]
    if given == ["all"]:
        return list(CONFIGS)
    unknown = [n for n in given if n not in CONFIGS]
    if unknown or not given:
        msg = f"unknown configuration(s) {unknown or given}; choose from {', '.join(CONFIGS)} or all"
        raise ConfigError(msg)
    return list(dict.fromkeys(given))


# ------------------------------------------------------------------------------ store


def corpus_key(folder: str | Path, embedder_name: str, chunker: Chunker) -> dict[str, Any]:
    """What a store built from ``folder`` depends on: the corpus file's SHA-256, the
    embedder's name and the chunking."""
    digest = hashlib.sha256()
    with (Path(folder) / "corpus.jsonl").open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return {"corpus_sha256": digest.hexdigest(), "embedder": embedder_name,
            "chunk_size": chunker.size, "chunk_overlap": chunker.overlap}


def open_corpus_store(
    folder: str | Path,
    path: str | Path,
    embedder: Embedder,
    *,
    owned: bool = False,
    chunker: Chunker | None = None,
    show_progress: bool = True,
) -> tuple[Store, bool]:
    """Open the store of ``folder``'s corpus at ``path``, building it when needed.

    Args:
        folder: The BEIR folder.
        path: The store folder.
        embedder: The embedder; part of the key.
        owned: ``path`` belongs to the evaluation (the run folder's ``store``): a store
            there with another key is rebuilt instead of refused.
        chunker: How long documents are cut (part of the key).
        show_progress: Show the ingest progress bar.

    Returns:
        The open store, and whether it was reused as it stood.

    Raises:
        ConfigError: ``path`` holds a store of another corpus or embedder (and is not
            ``owned``), or passages the corpus does not have.
    """
    folder, path = Path(folder), Path(path)
    chunker = chunker or Chunker()
    key = corpus_key(folder, embedder.name, chunker)
    key_path = path / KEY_FILE
    if (path / DB_NAME).exists():
        old = _read_key(key_path)
        if old == key:
            logger.info("reusing store %s (same corpus and embedder)", path)
            return open_store(path, lambda: embedder), True  # on the backend it records (Qdrant)
        built_with = Store.embedder_of(path)
        if old is not None or built_with != embedder.name:
            if not owned:
                msg = (f"store {path} was built from another corpus or embedder "
                       f"({built_with}); give another --store folder")
                raise ConfigError(msg)
            logger.info("store %s was built from another corpus or embedder; rebuilding", path)
            shutil.rmtree(path)
    key_path.unlink(missing_ok=True)
    store = open_store(path, lambda: embedder, create=True)
    try:
        report = store.ingest(folder, chunker=chunker, show_progress=show_progress)
        if report.malformed:
            logger.warning("%s: %d malformed corpus records skipped, first: %s", folder, report.malformed,
                           report.problems[0])
        if len(store) > report.added + report.duplicates:
            msg = (f"store {path} holds {len(store)} passages but the corpus has "
                   f"{report.added + report.duplicates}; give an empty or dedicated --store folder")
            raise ConfigError(msg)
    except BaseException:
        store.close()
        raise
    key_path.write_text(json.dumps(key, indent=2) + "\n", encoding="utf-8")
    return store, False


def _read_key(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


# ------------------------------------------------------------------------------ retrieval run


class _DocIds:
    """Maps passage ids to corpus document ids (a chunk ``d#3`` to ``d``), remembering them."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.known: dict[str, str] = {}

    def __call__(self, passage_ids: Sequence[str]) -> list[str]:
        todo = [p for p in dict.fromkeys(passage_ids) if p not in self.known]
        for passage in self.store.get(todo):
            self.known[passage.id] = str(passage.metadata.get("doc_id", passage.id))
        # Chunks of one document count once, at the best rank.
        return list(dict.fromkeys(self.known.get(p, p) for p in passage_ids))


def retrieved_ids(pipeline: Pipeline, answer: Answer) -> tuple[list[str], str]:
    """The passage ids the pipeline retrieved for ``answer``, best first, and how they were
    found: ``trace`` (its ``retrieve`` record) or ``hops`` (each hop searched again as the
    pipeline searches, rankings fused by reciprocal rank)."""
    for record in answer.trace:
        if record.stage == "retrieve":
            return list(record.details.get("ids", [])), "trace"
    hops = [r.details["question"] for r in answer.trace if r.stage.startswith("hop ") and r.details.get("question")]
    k, store = pipeline.config.k, pipeline.store
    rankings = []
    for question in hops or [answer.question]:
        queries = pipeline.rewriter.rewrite(question).queries if pipeline.config.rewrite else (question,)
        per_query = [[h.id for h in store.search(q, k)] for q in queries]
        if len(per_query) == 1:
            rankings.append(per_query[0])
        else:
            rankings.append([i for i, _ in reciprocal_rank_fusion(per_query)][:k])
    fused = [str(i) for i, _ in reciprocal_rank_fusion(rankings)]
    return fused[:k], "hops" if hops else "search"


def _answer_all(pipeline: Pipeline, questions: Sequence[str], batch_size: int, show: bool, desc: str
                ) -> tuple[list[Answer], list[float], float]:
    answers: list[Answer] = []
    latencies: list[float] = []
    start = time.perf_counter()
    with tqdm(total=len(questions), desc=desc, unit="q", disable=not show) as bar:
        for i in range(0, len(questions), batch_size):
            t = time.perf_counter()
            batch = pipeline.answer_many(questions[i : i + batch_size])
            per = (time.perf_counter() - t) * 1000 / max(1, len(batch))
            answers.extend(batch)
            latencies.extend([per] * len(batch))
            bar.update(len(batch))
    return answers, latencies, time.perf_counter() - start


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else float("nan")


# ------------------------------------------------------------------------------ the run


def run_qa_eval(
    corpus: str | Path,
    out_dir: str | Path,
    *,
    embedder: Embedder,
    generator: Generator,
    store: str | Path | None = None,
    limit: int | None = None,
    configs: str | Sequence[str] = tuple(CONFIGS),
    k: int = 10,
    split: str = "test",
    seed: int = 0,
    batch_size: int = 8,
    overwrite: bool = False,
    show_progress: bool = True,
) -> dict[str, dict[str, Any]]:
    """Run the QA evaluation and write its run folder; returns metrics per configuration.

    Args:
        corpus: The BEIR folder with ``answers.jsonl``.
        out_dir: The run folder (see :class:`~rag.evaluation.runs.RunWriter`); it also holds
            the store (``store/``) unless ``store`` is given.
        embedder: Embeds the corpus and the questions.
        generator: Reads passages and answers closed-book.
        store: A store folder to build or reuse instead of ``out_dir/store``.
        limit: At most this many questions, drawn with ``seed``.
        configs: Names from :data:`CONFIGS` (a list, or a comma-separated string, or ``all``).
        k: Passages every configuration retrieves per question; retrieval is scored at the
            cutoffs of :data:`CUTOFFS` up to ``k``, and at ``k``.
        split: The qrels file, ``qrels/<split>.tsv``.
        seed: Seeds the question draw and every random generator.
        batch_size: Questions answered together (one generator call per stage).
        overwrite: Replace the run files of an existing run folder.
        show_progress: Show progress bars.

    Returns:
        Configuration name -> metrics, as in ``metrics.json``.

    Raises:
        InputFormatError: the folder is not a BEIR folder with answers, or a file is malformed.
        ConfigError: an unknown configuration, a bad ``k``/``limit``/``batch_size``, a
            non-empty run folder without ``overwrite``, or a store of another corpus.
    """
    names = parse_configs(configs)
    if isinstance(k, bool) or not isinstance(k, int) or k < 1 or batch_size < 1:
        msg = f"k and batch_size must be positive integers, got k={k!r}, batch_size={batch_size!r}"
        raise ConfigError(msg)
    set_seed(seed)
    data = load_qa_folder(corpus, split)
    items = select(data.items, limit, seed)
    cutoffs = sorted({c for c in CUTOFFS if c <= k} | {k})
    store_path = Path(store) if store is not None else Path(out_dir) / "store"
    config = {"corpus": str(data.folder), "qrels": str(data.qrels_file), "store": str(store_path),
              "limit": limit, "configs": names, "k": k, "cutoffs": cutoffs, "batch_size": batch_size,
              "questions": len(items), "questions_with_answers": len(data.items), "skipped": dict(data.skipped),
              "pipeline": {n: dataclasses.asdict(dataclasses.replace(CONFIGS[n], k=k)) for n in names}}
    writer = RunWriter(out_dir, config, seed, {"embedder": embedder.name, "generator": generator.name},
                       overwrite=overwrite)
    results: dict[str, dict[str, Any]] = {}
    with writer:
        started = time.perf_counter()
        st, reused = open_corpus_store(data.folder, store_path, embedder, owned=store is None,
                                       show_progress=show_progress)
        with st:
            docs = _DocIds(st)
            judged = {it.qid: dict(data.qrels[it.qid]) for it in items
                      if any(g >= 1 for g in data.qrels.get(it.qid, {}).values())}
            if not judged:
                logger.warning("no evaluated question has a relevant document in %s; retrieval metrics are empty",
                               data.qrels_file)
            for name in names:
                pipeline = Pipeline(st, generator, dataclasses.replace(CONFIGS[name], k=k))
                answers, latencies, secs = _answer_all(pipeline, [it.question for it in items], batch_size,
                                                       show_progress, name)
                run: dict[str, dict[str, float]] = {}
                scores: dict[str, list[float]] = {"em": [], "f1": [], "contains": []}
                found_by: Counter[str] = Counter()
                for item, answer in zip(items, answers):
                    ids, how = retrieved_ids(pipeline, answer)
                    found_by[how] += 1
                    ranked = docs(ids)
                    run[item.qid] = {d: 1.0 / rank for rank, d in enumerate(ranked, start=1)}
                    row = {"em": exact_match(answer.text, item.answers), "f1": f1_score(answer.text, item.answers),
                           "contains": contains_answer(answer.text, item.answers)}
                    for key, value in row.items():
                        scores[key].append(value)
                    writer.add_prediction({
                        "config": name, "qid": item.qid, "question": item.question, "retrieved": ranked,
                        **({"retrieved_passages": ids} if ids != ranked else {}), "retrieval_from": how,
                        "relevant": sorted(d for d, g in data.qrels.get(item.qid, {}).items() if g >= 1),
                        "answer": answer.text, "source": answer.source, "citations": list(answer.citations),
                        "flags": list(answer.flags), "golds": list(item.answers), **row})
                retrieval = retrieval_metrics(run, judged, cutoffs) if judged else {}
                metrics: dict[str, Any] = {
                    "questions": len(items), "judged": len(judged),
                    "em": _mean(scores["em"]), "f1": _mean(scores["f1"]), "contains": _mean(scores["contains"]),
                    **{f"{m}@{c}": retrieval.get(f"{m}@{c}", float("nan")) for m in MEASURES for c in cutoffs},
                    "source_adoption": source_adoption(a.source for a in answers),
                    **latency_summary(latencies), "questions_per_s": len(items) / secs if secs > 0 else float("nan"),
                }
                if found_by["hops"] or found_by["search"]:
                    logger.info("%s: retrieval runs from %s", name, dict(found_by))
                results[name] = metrics
                writer.add_metrics(name, metrics)
                writer.write_trec(run, name, f"run_{name}.trec")
        _plots(writer, results, cutoffs)
        writer.finish(_summary(writer, data, items, results, cutoffs, store_path, reused,
                               time.perf_counter() - started))
    return results


def _plots(writer: RunWriter, results: Mapping[str, Mapping[str, Any]], cutoffs: Sequence[int]) -> None:
    if not results:
        return
    at = 5 if 5 in cutoffs else cutoffs[-1]
    writer.plot_bars("quality.png", "Answer and retrieval quality per configuration", "score",
                     {n: {"em": m["em"], "f1": m["f1"], f"recall@{at}": m[f"recall@{at}"]} for n, m in results.items()})
    writer.plot_bars("latency.png", "Latency per question", "ms",
                     {n: {"p50": m["latency_ms_p50"], "p95": m["latency_ms_p95"]} for n, m in results.items()})


def _summary(writer: RunWriter, data: QADataset, items: Sequence[QAItem], results: Mapping[str, Mapping[str, Any]],
             cutoffs: Sequence[int], store_path: Path, reused: bool, seconds: float) -> str:
    m = writer.manifest
    models = ", ".join(f"{role}: `{name}`" for role, name in m["models"].items())
    skipped = ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in data.skipped.items() if v) or "none"
    first = next(iter(results.values()), {})
    rows = list(results.items())
    parts = [
        f"# QA evaluation `{m['run']}`",
        "",
        f"- corpus: `{data.folder}`, qrels `{data.qrels_file.name}`",
        f"- questions: {len(items)} of {len(data.items)} with gold answers (left out: {skipped}); "
        f"{first.get('judged', 0)} with relevant documents",
        f"- store: `{store_path}` ({'reused' if reused else 'built'})",
        f"- models: {models}; seed {m['seed']}; git {m['git_sha'] or 'unknown'}"
        + (" (dirty)" if m["git_dirty"] else ""),
        f"- retrieval depth k = {cutoffs[-1]} for every configuration; retrieval is scored on the "
        "passages of the pipeline's `retrieve` trace record (hop by hop questions: each hop searched "
        "again, fused by RRF), mapped to document ids",
        f"- {m['start_time']}, {seconds:.1f} s",
        "",
        "## Answers",
        "",
        markdown_table([{"config": n, "em": r["em"], "f1": r["f1"], "contains": r["contains"],
                         "source_adoption": r["source_adoption"]} for n, r in rows]),
        "",
        "## Retrieval",
        "",
        markdown_table([{"config": n, **{f"{me}@{c}": r[f"{me}@{c}"] for me in MEASURES for c in cutoffs}}
                        for n, r in rows]),
        "",
        "## Speed",
        "",
        markdown_table([{"config": n, "latency_ms_p50": r["latency_ms_p50"], "latency_ms_p95": r["latency_ms_p95"],
                         "questions_per_s": r["questions_per_s"]} for n, r in rows]),
    ]
    return "\n".join(parts)
