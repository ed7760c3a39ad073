"""How a note of several sentences bears on a question: by one of its sentences, by two
that bridge a name of the question to the name it asks about, or, when nothing else from
memory is kept, as the best-ranked note whose best sentence or pair is close enough.

Used by :class:`~rag.stages.filter.KnowledgeFilter`; see its module for the whole judgment.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from rag.protocols import Embedder
from rag.stages.evidence import Dropped, Evidence
from rag.stages.read import sentences
from rag.stages.relations import CONFLICT, reading_concepts, relation_match
from rag.stages.structure import read_fact
from rag.text import name_spans, name_words, same_name_word, tokens
from rag.types import Passage, Source


def windows(text: str) -> list[str]:
    """The sentences of a note, paragraph by paragraph."""
    return [s for paragraph in text.splitlines() if paragraph.strip() for s in sentences(paragraph) or [paragraph]]


def placeholder(text: str, names: Sequence[str]) -> str:
    for name in names:
        text = re.sub(re.escape(name) + r"(['’]s)?", lambda m: "X's" if m.group(1) else "X", text, flags=re.I)
    return text


def judge_windows(embedder: Embedder, question: str, items: Sequence[tuple[Passage, Source, Dropped]],
                  kept: list[Evidence], dropped: list[Dropped], *, window_threshold: float,
                  conflict_threshold: float) -> None:
    """Keep each note of ``items`` one of whose sentences (or, for a bridge question, two)
    bears on the question; drop the others with their reason."""
    q_names = name_spans(question)
    q_words = name_words(question)
    texts = [placeholder(question, q_names)]
    owners: list[tuple[int, str]] = []
    for k, (passage, _, _) in enumerate(items):
        for window in windows(passage.text):
            w_words = [t.text for t in tokens(window)]
            if q_words and not any(same_name_word(a, b) for a in q_words for b in w_words):
                continue  # names nothing the question names
            owners.append((k, window))
            texts.append(placeholder(window, q_names))
    sims = np.zeros(0)
    if owners:
        vecs = embedder.embed_documents(texts)
        sims = vecs[1:] @ vecs[0]
    best: dict[int, tuple[float, str, str]] = {}
    for (k, window), sim in zip(owners, sims):
        reading = read_fact(window, question)
        needed = window_threshold
        if reading.subject and relation_match(*reading_concepts(question, reading)) == CONFLICT:
            needed = max(needed, conflict_threshold)
        if sim >= needed and (k not in best or sim > best[k][0]):
            # the answer is left to the reader: rules misread prose (a paragraph's first
            # name span is seldom what a multi-hop question asks for)
            best[k] = (float(sim), window, "")
    bridged = bridges(embedder, question, q_names, q_words, items, [k for k in range(len(items)) if k not in best],
                      window_threshold=window_threshold)
    for k, (passage, source, why) in enumerate(items):
        if k in bridged and k not in best:
            sim, chain = bridged[k]
            kept.append(Evidence(passage, source, sim, "", f"bridge ({sim:.2f}): {chain[:120]}"))
            continue
        if k not in best:
            top = max((float(s) for (j, _), s in zip(owners, sims) if j == k), default=0.0)
            dropped.append(Dropped(passage.id, top, f"{why.reason}; no sentence bears on the question "
                                                    f"(best {top:.2f} < {window_threshold:.2f})"))
            continue
        sim, window, answer = best[k]
        kept.append(Evidence(passage, source, sim, answer, f"sentence bears on the question ({sim:.2f}): "
                                                           f"{window[:80]}"))

def bridges(embedder: Embedder, question: str, q_names: Sequence[str], q_words: Sequence[str],
            items: Sequence[tuple[Passage, Source, Dropped]], open_: Sequence[int], *,
            window_threshold: float) -> dict[int, tuple[float, str]]:
    """Notes that bear on a bridge question through two sentences: hop 1 names a name
    of the question, hop 2 names a name hop 1 adds (the bridge entity, "The Oberoi
    Group" from "The Oberoi family ... through The Oberoi Group"). The pair bears when
    the embedder's cosine of the question to the two sentences read together (names of
    the question replaced by a placeholder) reaches ``window_threshold``, as one
    sentence must. Hop 2 may come from another note; every note of the chain is kept."""
    if not open_ or not q_words:
        return {}
    sentences_of = [(k, w) for k, (p, _, _) in enumerate(items) for w in windows(p.text)]
    pairs: list[tuple[int, int, str]] = []
    for k in open_:
        for w1 in (w for j, w in sentences_of if j == k):
            toks1 = [t.text for t in tokens(w1)]
            if not any(same_name_word(a, b) for a in q_words for b in toks1):
                continue
            bridge = [t.text for n in name_spans(w1) for t in tokens(n)
                      if t.is_name and len(t.text) > 2 and not any(same_name_word(a, t.text) for a in q_words)]
            if not bridge:
                continue
            for j, w2 in sentences_of:
                if w2 != w1 and any(same_name_word(a, t.text) for a in bridge for t in tokens(w2)):
                    pairs.append((k, j, f"{w1} {w2}"))
    if not pairs:
        return {}
    vecs = embedder.embed_documents([placeholder(question, q_names)]
                                         + [placeholder(text, q_names) for _, _, text in pairs])
    sims = vecs[1:] @ vecs[0]
    out: dict[int, tuple[float, str]] = {}
    for (k, j, text), sim in zip(pairs, sims):
        if sim < window_threshold:
            continue
        for note in {k, j}:
            if note not in out or sim > out[note][0]:
                out[note] = (float(sim), text)
    return out


def top_note(embedder: Embedder, question: str, passages: Sequence[Passage], sources: Sequence[Source],
             kept: list[Evidence], dropped: list[Dropped], *, note_threshold: float) -> None:
    """When no note or user fact was kept, the best-ranked note of several sentences
    is kept if the embedder's cosine of the question to its best sentence, or pair of
    adjacent sentences, reaches ``note_threshold`` (the question as asked, names and
    all: a paragraph about the question's subject states many of its relations, while
    a one-sentence fact, never taken here, states one). Its answer is left to the
    reader."""
    if note_threshold > 1.0 or any(e.source in ("user", "memory") for e in kept):
        return
    top = next(((p, s) for p, s in zip(passages, sources)
                if s == "memory" and p.kind == "note" and len(windows(p.text)) > 1), None)
    if top is None:
        return
    parts = windows(top[0].text)
    spans = parts + [f"{a} {b}" for a, b in zip(parts, parts[1:])]
    vecs = embedder.embed_documents([question, *spans])
    sim = float(np.max(vecs[1:] @ vecs[0]))
    if sim < note_threshold:
        return
    dropped[:] = [d for d in dropped if d.passage_id != top[0].id]
    kept.append(Evidence(top[0], top[1], sim, "", f"top note; best sentence or pair {sim:.2f} "
                                                  f">= {note_threshold:.2f}"))
