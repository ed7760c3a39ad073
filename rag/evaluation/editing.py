"""Editing evaluation on EREN-format files: edit success, generalisation, locality, leaks.

Three formats are read (one file holds one):

* *facts* (CounterFact-Hard): ``edit_statement`` is one sentence, ``edit_scope`` holds
  [question, new answer] pairs, ``unrelated`` holds ``same_subj`` / ``neighbor_subj``
  questions with their ``unrelated_true_ans``;
* *prose* (HotpotQA): ``edit_statement`` is a list of paragraphs, or that list written as
  a string; the paragraphs are one note; ``unrelated`` is absent;
* *claims* (FEVER): every scope answer is ``yes`` or ``no`` (is this claim true now?).

All edits of the file are written into one store (not one at a time), then every question
is asked of the pipeline under each configuration. For questions:

* ``edit_success``: the first scope question is answered with the new answer;
* ``generalization``: the other scope questions (paraphrases) are;
* ``locality``: unrelated questions are answered with their true answer
  (``unrelated_true_ans``), as EREN reports it. The file pairs questions and answers by
  position, but in many groups the two lists differ in length and their pairing is off
  (CounterFact-Hard: 947 of 2,048 groups); there an answer counts when it holds any
  true answer of its group;
* ``stability``: unrelated questions get the answer the same configuration gives with no
  edits stored (what ``locality`` meant before);
* ``edit_leak``: unrelated answers that contain the edit's new answer (and did not before).

For claims the full pipeline checks each claim (:meth:`~rag.pipeline.Pipeline.check`);
configurations without the arbiter (plain RAG) ask the reader "Is it true that ...?" over
the retrieved passages and read its yes/no:

* ``edit_success``: the verdict on the first scope claim (the edit itself) matches its
  ``yes``/``no``; ``generalization``: on the other claims of the scope;
* ``consistency``: a paraphrase is answered alike with the first claim exactly when their
  gold answers are alike (the same verdict for a paraphrase, the opposite for a negation),
  averaged over paraphrases;
* ``not_enough_evidence``: the share of claims answered neither yes nor no.
"""

from __future__ import annotations

import ast
import json
import logging
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from rag.errors import InputFormatError
from rag.evaluation.memo import memoize
from rag.evaluation.runs import RunWriter, set_seed
from rag.memory.editor import KnowledgeEditor
from rag.memory.store import Store
from rag.metrics import contains_answer, latency_summary
from rag.pipeline import Pipeline, PipelineConfig
from rag.protocols import Embedder, Generator
from rag.text import same_answer

logger = logging.getLogger(__name__)

#: The ablations run beside the full pipeline.
CONFIGS: dict[str, PipelineConfig] = {
    "full": PipelineConfig(),
    "filter_off": PipelineConfig(filter=False),
    "rewriter_off": PipelineConfig(rewrite=False, decompose=False),
    "arbiter_off": PipelineConfig(arbiter=False),
    "plain_rag": PipelineConfig(filter=False, arbiter=False, extractive=False, trigger=False, detect=False),
}

_CLAIM_LABELS = frozenset({"yes", "no"})


@dataclass(frozen=True, slots=True)
class EditCase:
    """One edit: the notes it writes, the questions in its scope and the unrelated ones.

    Attributes:
        notes: The edit's text (one sentence, or the paragraphs of a prose edit).
        scope: (question or claim, new answer) pairs; the first is the edit itself.
        unrelated: (question, true answers) pairs; the true answers may be empty.
        kind: ``qa`` or ``claim`` (scope answers are ``yes``/``no``).
    """

    notes: tuple[str, ...]
    scope: tuple[tuple[str, str], ...]
    unrelated: tuple[tuple[str, tuple[str, ...]], ...] = ()
    kind: str = "qa"

    @property
    def note(self) -> str:
        """The edit as one note: its paragraphs, one per line."""
        return "\n".join(self.notes)


def _statement(value: Any) -> tuple[str, ...]:
    """``edit_statement`` as paragraphs: a string, a list, or a list written as a string
    (JSON or a Python literal, as EREN's HotpotQA file has it)."""
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("[") and text.endswith("]"):
            parsed: Any = None
            try:
                parsed = json.loads(text)
            except json.JSONDecodeError:
                try:
                    parsed = ast.literal_eval(text)  # literals only: never evaluates code
                except (ValueError, SyntaxError):
                    parsed = None
            if isinstance(parsed, list):
                value = parsed
            else:
                msg = "edit_statement looks like a list but is neither JSON nor a Python list literal"
                raise ValueError(msg)
        else:
            value = [text]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        msg = f"edit_statement must be a string or a list of strings, got {type(value).__name__}"
        raise ValueError(msg)
    notes = tuple(v.strip() for v in value if v.strip())
    if not notes:
        msg = "edit_statement is empty"
        raise ValueError(msg)
    return notes


def _unrelated(rec: dict[str, Any]) -> tuple[tuple[str, tuple[str, ...]], ...]:
    groups = rec.get("unrelated") or {}
    truths = rec.get("unrelated_true_ans") or {}
    if not isinstance(groups, dict) or not isinstance(truths, dict):
        msg = "unrelated and unrelated_true_ans must be objects of question groups"
        raise ValueError(msg)
    out = []
    for group in ("same_subj", "neighbor_subj"):
        questions = [str(q) for q in groups.get(group, [])]
        answers = [str(a) for a in truths.get(group, [])]
        for i, q in enumerate(questions):
            if len(answers) == len(questions):
                out.append((q, (answers[i],)))
            else:  # misaligned in the file: any true answer of the group
                out.append((q, tuple(dict.fromkeys(answers))))
    return tuple(out)


def load_eren(path: str | Path, limit: int | None = None) -> list[EditCase]:
    """Read an EREN-format JSON list of edits (facts, prose or claims; see the module).

    Raises:
        InputFormatError: the file is missing, not JSON, or a record lacks a field; the
            message names the file and the edit.
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        msg = f"cannot read EREN file {path}: {exc}"
        raise InputFormatError(msg) from None
    if not isinstance(data, list):
        msg = f"{path}: expected a JSON list of edits, got a JSON {type(data).__name__}"
        raise InputFormatError(msg)
    cases = []
    for i, rec in enumerate(data[:limit] if limit else data):
        try:
            if not isinstance(rec, dict):
                msg = f"expected an object, got {type(rec).__name__}"
                raise TypeError(msg)
            if "edit_statement" not in rec or "edit_scope" not in rec:
                missing = [k for k in ("edit_statement", "edit_scope") if k not in rec]
                msg = f"missing {', '.join(missing)}"
                raise KeyError(msg)
            scope = tuple((str(q), str(a)) for q, a in rec["edit_scope"])
            if not scope:
                msg = "edit_scope is empty"
                raise ValueError(msg)
            cases.append(EditCase(_statement(rec["edit_statement"]), scope, _unrelated(rec)))
        except (KeyError, TypeError, ValueError) as exc:
            why = exc.args[0] if exc.args else repr(exc)
            msg = f"{path}: edit {i} is malformed: {why}"
            raise InputFormatError(msg) from None
    if not cases:
        msg = f"{path} holds no edits"
        raise InputFormatError(msg)
    # A claims file answers every scope item yes or no; a question file may hold a few
    # yes/no questions ("Were A and B of the same nationality?"), asked as questions.
    if all(a.strip().lower() in _CLAIM_LABELS for c in cases for _, a in c.scope):
        cases = [EditCase(c.notes, tuple((q, a.strip().lower()) for q, a in c.scope), c.unrelated, "claim")
                 for c in cases]
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
    memo = memoize(generator)
    kinds = sorted({c.kind for c in cases})
    writer = RunWriter(out_dir, {"data": str(data), "limit": limit, "configs": list(configs), "n_edits": len(cases),
                                 "kinds": kinds},
                       seed, {"embedder": embedder.name, "generator": generator.name}, overwrite=overwrite)
    results: dict[str, dict[str, float]] = {}
    with writer, tempfile.TemporaryDirectory() as tmp:
        edited = Store(Path(tmp) / "edited", embedder)
        empty = Store(Path(tmp) / "empty", embedder)
        start = time.perf_counter()
        editor = KnowledgeEditor(edited, author="eval")
        for case in tqdm(cases, desc="edits", disable=not show_progress):
            editor.edit(case.note)
        edit_s = time.perf_counter() - start
        asks = [(i, "scope" if j == 0 else "paraphrase", q, a) for i, c in enumerate(cases)
                for j, (q, a) in enumerate(c.scope)]
        asks += [(i, "unrelated", q, truth) for i, c in enumerate(cases) for q, truth in c.unrelated]
        for name in configs:
            config = CONFIGS[name]
            pipeline = Pipeline(edited, memo, config)
            claims = [a for a in asks if cases[a[0]].kind == "claim"]
            questions = [a for a in asks if cases[a[0]].kind != "claim"]
            metrics: dict[str, float] = {}
            latencies: list[float] = []
            secs = 0.0
            if questions:
                answers, lat, took = _answer_all(pipeline, [a[2] for a in questions], batch_size, show_progress, name)
                unrelated = [a[2] for a in questions if a[1] == "unrelated"]
                base = _answer_all(Pipeline(empty, memo, config), unrelated, batch_size, show_progress,
                                   f"{name} (no edits)")[0] if unrelated else []
                metrics.update(_score_questions(writer, name, cases, questions, answers, base))
                latencies += lat
                secs += took
            if claims:
                labels, lat, took = _check_all(pipeline, [a[2] for a in claims], batch_size, show_progress, name)
                metrics.update(_score_claims(writer, name, claims, labels))
                latencies += lat
                secs += took
            metrics.update({"questions": len(asks), "questions_per_s": len(asks) / max(secs, 1e-9),
                            "edits_per_s": len(cases) / max(edit_s, 1e-9), **latency_summary(latencies)})
            results[name] = metrics
            writer.add_metrics(name, metrics)
        edited.close()
        empty.close()
        writer.finish()
    return results


def _score_questions(writer: RunWriter, name: str, cases: Sequence[EditCase], asks: Sequence[tuple],
                     answers: Sequence[Any], base: Sequence[Any]) -> dict[str, float]:
    base_iter = iter(base)
    hits: dict[str, list[float]] = {"scope": [], "paraphrase": [], "locality": [], "stability": [], "leak": []}
    for (i, kind, question, gold), answer in zip(asks, answers):
        record = {"config": name, "edit": i, "kind": kind, "question": question, "answer": answer.text,
                  "source": answer.source, "citations": list(answer.citations)}
        if kind != "unrelated":
            hits[kind].append(contains_answer(answer.text, [gold]) if answer.text else 0.0)
            record["gold"] = [gold]
        else:
            before = next(base_iter)
            new = cases[i].scope[0][1]
            if gold:  # the question's true answers, when the file gives them
                hits["locality"].append(contains_answer(answer.text, list(gold)) if answer.text else 0.0)
                record["true_answers"] = list(gold)
            hits["stability"].append(float(same_answer(answer.text, before.text) or answer.text == before.text))
            leaked = bool(new) and contains_answer(answer.text, [new]) > 0 and not contains_answer(before.text, [new])
            hits["leak"].append(float(leaked))
            record["answer_without_edits"] = before.text
        writer.add_prediction(record)
    return {"edit_success": _mean(hits["scope"]), "generalization": _mean(hits["paraphrase"]),
            "locality": _mean(hits["locality"]), "stability": _mean(hits["stability"]),
            "edit_leak": _mean(hits["leak"])}


def _score_claims(writer: RunWriter, name: str, asks: Sequence[tuple], labels: Sequence[tuple[str, Any]]
                  ) -> dict[str, float]:
    hits: dict[str, list[float]] = {"scope": [], "paraphrase": [], "consistency": [], "nei": []}
    first: dict[int, tuple[str, str]] = {}  # edit -> (gold, predicted) of its first claim
    for (i, kind, claim, gold), (label, record) in zip(asks, labels):
        hits[kind].append(float(label == gold))
        hits["nei"].append(float(label not in _CLAIM_LABELS))
        if kind == "scope":
            first[i] = (gold, label)
        else:
            gold0, label0 = first[i]
            hits["consistency"].append(float((label == label0) == (gold == gold0) and label in _CLAIM_LABELS
                                             and label0 in _CLAIM_LABELS))
        writer.add_prediction({"config": name, "edit": i, "kind": kind, "question": claim, "gold": [gold],
                               "answer": label, **record})
    return {"edit_success": _mean(hits["scope"]), "generalization": _mean(hits["paraphrase"]),
            "consistency": _mean(hits["consistency"]), "not_enough_evidence": _mean(hits["nei"])}


def _check_all(pipeline: Pipeline, claims: Sequence[str], batch_size: int, show: bool, desc: str):
    """Each claim's yes/no label and its prediction record: checked by the pipeline, or, in
    plain RAG (no arbiter), read by the reader as a yes/no question over what is retrieved."""
    out: list[tuple[str, dict[str, Any]]] = []
    latencies: list[float] = []
    start = time.perf_counter()
    for i in tqdm(range(0, len(claims), batch_size), desc=f"{desc} (claims)", disable=not show):
        batch = claims[i : i + batch_size]
        t = time.perf_counter()
        if pipeline.config.arbiter:
            for v in pipeline.check_many(batch):
                out.append((v.label, {"verdict": v.verdict, "source": v.source, "citations": list(v.citations),
                                      "reason": v.reason}))
        else:
            for a in pipeline.answer_many([f"Is it true that {c.strip().rstrip('.')}?" for c in batch]):
                out.append((_yes_no(a.text), {"source": a.source, "citations": list(a.citations),
                                              "reply": a.text}))
        latencies += [(time.perf_counter() - t) * 1000 / max(1, len(batch))] * len(batch)
    return out, latencies, time.perf_counter() - start


def _yes_no(text: str) -> str:
    words = text.strip().lower().replace(",", " ").replace(".", " ").split()
    return words[0] if words and words[0] in _CLAIM_LABELS else ""


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
