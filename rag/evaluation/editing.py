"""Editing evaluation on EREN-format files: edit success, generalisation, locality, leaks.

All edits of the file are written into one store (not one at a time), then every question
is asked of the pipeline under each configuration:

* ``edit_success``: the first scope question is answered with the new answer;
* ``generalization``: the other scope questions (paraphrases) are;
* ``locality``: unrelated questions get the answer the same configuration gives with no
  edits stored;
* ``edit_leak``: unrelated answers that contain the edit's new answer (and did not before).
"""

from __future__ import annotations

import json
import logging
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tqdm.auto import tqdm

from rag.errors import InputFormatError
from rag.evaluation.memo import MemoGenerator
from rag.evaluation.runs import RunWriter, set_seed
from rag.memory.editor import KnowledgeEditor
from rag.memory.store import Store
from rag.metrics import contains_answer, latency_summary
from rag.pipeline import Pipeline, PipelineConfig
from rag.protocols import Embedder, Generator
from rag.stages.arbitrate import same_answer

logger = logging.getLogger(__name__)

#: The ablations run beside the full pipeline.
CONFIGS: dict[str, PipelineConfig] = {
    "full": PipelineConfig(),
    "filter_off": PipelineConfig(filter=False),
    "rewriter_off": PipelineConfig(rewrite=False, decompose=False),
    "arbiter_off": PipelineConfig(arbiter=False),
    "plain_rag": PipelineConfig(filter=False, arbiter=False, extractive=False, trigger=False, detect=False),
}


@dataclass(frozen=True, slots=True)
class EditCase:
    statement: str
    scope: tuple[tuple[str, str], ...]
    unrelated: tuple[str, ...]


def load_eren(path: str | Path, limit: int | None = None) -> list[EditCase]:
    """Read an EREN-format JSON list (``edit_statement``, ``edit_scope``, ``unrelated``).

    Raises:
        InputFormatError: the file is missing, not JSON, or a record lacks a field.
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        msg = f"cannot read EREN file {path}: {exc}"
        raise InputFormatError(msg) from None
    if not isinstance(data, list):
        msg = f"{path}: expected a JSON list of edits"
        raise InputFormatError(msg)
    cases = []
    for i, rec in enumerate(data[:limit] if limit else data):
        try:
            unrelated = rec.get("unrelated", {})
            questions = [q for group in ("same_subj", "neighbor_subj") for q in unrelated.get(group, [])]
            cases.append(EditCase(rec["edit_statement"], tuple((q, a) for q, a in rec["edit_scope"]), tuple(questions)))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            msg = f"{path}: edit {i} is malformed ({exc!r})"
            raise InputFormatError(msg) from None
    if not cases:
        msg = f"{path} holds no edits"
        raise InputFormatError(msg)
    return cases


def run_editing_eval(
    data: str | Path,
    out_dir: str | Path,
    *,
    embedder: Embedder,
    generator: Generator,
    limit: int | None = None,
    configs: Sequence[str] = tuple(CONFIGS),
    seed: int = 0,
    batch_size: int = 32,
    overwrite: bool = False,
    show_progress: bool = True,
) -> dict[str, dict[str, float]]:
    """Run the evaluation and write its run folder; returns metrics per configuration."""
    set_seed(seed)
    cases = load_eren(data, limit)
    memo = MemoGenerator(generator)
    writer = RunWriter(out_dir, {"data": str(data), "limit": limit, "configs": list(configs), "n_edits": len(cases)},
                       seed, {"embedder": embedder.name, "generator": generator.name}, overwrite=overwrite)
    results: dict[str, dict[str, float]] = {}
    with writer, tempfile.TemporaryDirectory() as tmp:
        edited = Store(Path(tmp) / "edited", embedder)
        empty = Store(Path(tmp) / "empty", embedder)
        start = time.perf_counter()
        editor = KnowledgeEditor(edited, author="eval")
        for case in tqdm(cases, desc="edits", disable=not show_progress):
            editor.edit(case.statement)
        edit_s = time.perf_counter() - start
        asks = [(i, "scope" if j == 0 else "paraphrase", q, a) for i, c in enumerate(cases)
                for j, (q, a) in enumerate(c.scope)]
        asks += [(i, "unrelated", q, "") for i, c in enumerate(cases) for q in c.unrelated]
        for name in configs:
            config = CONFIGS[name]
            answers, latencies, secs = _answer_all(Pipeline(edited, memo, config), [a[2] for a in asks],
                                                   batch_size, show_progress, name)
            base, _, _ = _answer_all(Pipeline(empty, memo, config), [a[2] for a in asks if a[1] == "unrelated"],
                                     batch_size, show_progress, f"{name} (no edits)")
            base_iter = iter(base)
            hits = {"scope": [], "paraphrase": [], "locality": [], "leak": []}
            for (i, kind, question, gold), answer in zip(asks, answers):
                record = {"config": name, "edit": i, "kind": kind, "question": question, "answer": answer.text,
                          "source": answer.source, "citations": list(answer.citations)}
                if kind != "unrelated":
                    hits[kind].append(contains_answer(answer.text, [gold]) if answer.text else 0.0)
                    record["gold"] = [gold]
                else:
                    before = next(base_iter)
                    new = cases[i].scope[0][1] if cases[i].scope else ""
                    hits["locality"].append(float(same_answer(answer.text, before.text) or answer.text == before.text))
                    leaked = bool(new) and contains_answer(answer.text, [new]) > 0 and not contains_answer(before.text, [new])
                    hits["leak"].append(float(leaked))
                    record["answer_without_edits"] = before.text
                writer.add_prediction(record)
            metrics = {
                "edit_success": _mean(hits["scope"]), "generalization": _mean(hits["paraphrase"]),
                "locality": _mean(hits["locality"]), "edit_leak": _mean(hits["leak"]),
                "questions": len(asks), "questions_per_s": len(asks) / secs,
                "edits_per_s": len(cases) / edit_s, **latency_summary(latencies),
            }
            results[name] = metrics
            writer.add_metrics(name, metrics)
        edited.close()
        empty.close()
        writer.finish()
    return results


def _answer_all(pipeline: Pipeline, questions: Sequence[str], batch_size: int, show: bool, desc: str):
    answers, latencies = [], []
    start = time.perf_counter()
    for i in tqdm(range(0, len(questions), batch_size), desc=desc, disable=not show):
        t = time.perf_counter()
        batch = pipeline.answer_many(questions[i : i + batch_size])
        per = (time.perf_counter() - t) * 1000 / max(1, len(batch))
        answers.extend(batch)
        latencies.extend([per] * len(batch))
    return answers, latencies, time.perf_counter() - start


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else float("nan")
