"""The demo: build a store from the shipped corpus, answer questions with citations, then
write an edit, show the answers it changes and the ones it leaves alone, and undo it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, TextIO

from rag.errors import InputFormatError
from rag.memory.editor import KnowledgeEditor
from rag.memory.store import Store
from rag.models import DEFAULT_EMBEDDER, load_embedder
from rag.pipeline import Pipeline
from rag.protocols import Embedder, Generator
from rag.text import same_answer
from rag.types import Answer

#: The demo corpus in a source checkout.
DEMO_CORPUS = Path(__file__).resolve().parent.parent / "corpora" / "demo"
N_PLAIN_QUESTIONS = 4


def _jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        msg = f"demo corpus file {path} is missing"
        raise InputFormatError(msg)
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _show(out: TextIO, store: Store, question: str, answer: Answer, gold: str | None) -> None:
    out.write(f"Q: {question}\n")
    mark = ""
    if gold is not None:
        mark = "  [matches expected]" if same_answer(answer.text, gold) else f"  [expected: {gold}]"
    out.write(f"A: {answer.text or '(no answer)'}  (source: {answer.source}){mark}\n")
    for passage in store.get(list(answer.citations)):
        out.write(f"   cites [{passage.id}] {passage.full_text[:110]}\n")


def run_demo(
    out: TextIO,
    *,
    generator: Generator,
    corpus: Path | None = None,
    store_path: Path = Path("indexes") / "demo",
    embedder: Embedder | None = None,
    show_progress: bool = True,
) -> None:
    """Run the demo, writing a readable transcript to ``out``."""
    corpus = corpus or DEMO_CORPUS
    if not (corpus / "corpus.jsonl").is_file():
        msg = f"demo corpus not found at {corpus}; pass --corpus with the corpora/demo folder"
        raise InputFormatError(msg)
    queries = {q["_id"]: q["text"] for q in _jsonl(corpus / "queries.jsonl")}
    answers = {a["_id"]: a["answers"][0] for a in _jsonl(corpus / "answers.jsonl")}
    edit = _jsonl(corpus / "edits.jsonl")[0]

    store = Store(store_path, embedder or load_embedder(DEFAULT_EMBEDDER))
    with store:
        report = store.ingest(corpus, show_progress=show_progress)
        out.write(f"== Store {store_path}: {len(store)} passages "
                  f"({report.added} added now, {report.duplicates} already there)\n\n")
        pipeline = Pipeline(store, generator)

        edited_qid = edit["question_id"]
        unrelated = [q for q in edit.get("unrelated_same_subject", []) if q in queries][:1]
        subject = edit["subject"].lower()
        # Ids: q#### invented world, qr### real knowledge, qm### multi-hop (corpora/demo/README.md).
        invented = [q for q in queries if q[1:].isdigit() and subject not in queries[q].lower()]
        real = [q for q in queries if q.startswith("qr")]
        plain = invented[: N_PLAIN_QUESTIONS - 1] + real[:1]
        asked = plain + [edited_qid] + unrelated
        out.write("== Questions answered from the corpus\n")
        for qid, answer in zip(asked, pipeline.answer_many([queries[q] for q in asked])):
            _show(out, store, queries[qid], answer, answers.get(qid))
        out.write("\n== Edit: a note written to memory\n")
        out.write(f"   \"{edit['statement']}\"\n\n")
        editor = KnowledgeEditor(store, author="demo")
        note = editor.edit(edit["statement"], key=f"demo/{edit['subject']}/{edit.get('relation', '')}",
                           reason="demo edit")
        out.write(f"   fact {note.fact_id}, version {note.version} ({note.op})\n\n")
        try:
            after = [edited_qid] + unrelated
            texts = [queries[q] for q in after] + list(edit.get("paraphrases", []))[:1]
            golds = [edit["new_answer"]] + [answers.get(q) for q in unrelated] + [edit["new_answer"]]
            for question, answer, gold in zip(texts, pipeline.answer_many(texts), golds):
                _show(out, store, question, answer, gold)
        finally:
            editor.retract(note.fact_id, reason="demo done")
        out.write("\n== Edit retracted: the answer goes back\n")
        _show(out, store, queries[edited_qid], pipeline.ask(queries[edited_qid]), answers.get(edited_qid))
