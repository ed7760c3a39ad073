"""Isolated answers: what each retrieved passage answers when read alone (RobustRAG's
isolate-then-aggregate), the input of the answer signals and of the vote.

Extraction reads first; the generator reads only the passages extraction left open that
could still take a side, all questions of a batch in one call.
"""

from __future__ import annotations

from collections.abc import Sequence

from rag.protocols import Generator
from rag.stages.detect.answers import is_no_answer
from rag.stages.detect.statements import STATED_FOR_RELATION, could_answer, names_relation, standing
from rag.stages.read import Reader, clean_answer, extract
from rag.types import Passage

#: One question and its retrieved passages.
Item = tuple[str, Sequence[Passage]]


def extracted(items: Sequence[Item]) -> list[list[str]]:
    """Per question, each passage's stored QA answer, else what extraction reads ("" if
    nothing).

    Example:
        >>> extracted([("Who is the mayor of Zelmoryn?",
        ...             [Passage("q", "Who is the mayor?", kind="qa", metadata={"answer": "Ilsa Brennick"})])])
        [['Ilsa Brennick']]
    """
    answers: list[list[str]] = []
    for question, passages in items:
        row: list[str] = []
        for passage in passages:
            stored = passage.metadata.get("answer") if passage.kind == "qa" else None
            if isinstance(stored, str) and stored.strip():
                row.append(stored.strip())
                continue
            found = extract(question, [passage])
            row.append(found.answer if found else "")
        answers.append(row)
    return answers


def worth_reading(question: str, passages: Sequence[Passage], extracted_answers: Sequence[str],
                  on_topic: Sequence[bool]) -> list[bool]:
    """Which passages the generator should read: only what could take a side (see
    :func:`~rag.stages.detect.statements.standing`). A passage off the topic has no say; one
    without a number cannot tell when or how many; and once extraction found an answer stated
    for the question's relation, only passages with a sentence that names the relation can
    contest it."""
    named = any(a and on and standing(question, a, p.text) == STATED_FOR_RELATION
                for a, p, on in zip(extracted_answers, passages, on_topic, strict=True))
    return [on and could_answer(question, p.text) and (not named or names_relation(question, p.text))
            for p, on in zip(passages, on_topic, strict=True)]


def generate_open(generator: Generator, items: Sequence[Item], answers: list[list[str]],
                  worth: Sequence[Sequence[bool]], *, max_new_tokens: int) -> None:
    """Fill in, in place and with one generator call, the answers extraction left open where
    ``worth`` (one flag per passage) allows."""
    open_items = [(q, i) for q, row in enumerate(answers) for i, a in enumerate(row)
                  if not a and worth[q][i]]
    if not open_items:
        return
    prompts = [Reader.context_prompt(items[q][0], [items[q][1][i]]) for q, i in open_items]
    raw = generator.generate(prompts, max_new_tokens=max_new_tokens, stop=("\n",))
    for (q, i), text in zip(open_items, raw, strict=True):
        answer = clean_answer(text)
        answers[q][i] = "" if is_no_answer(answer) else answer
