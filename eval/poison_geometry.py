"""How crafted poisons sit among natural passages in the embedder's geometry (reader-free).

    python eval/poison_geometry.py --targets FILE [--gold FILE] [--targets FILE ...] [--limit 100]
        [--out eval/results/poison_geometry.json]

Any target format the poisoning harness reads (PoisonedRAG with ``--gold``, RobustRAG, GMTP)
works; repeat ``--targets`` for several sets (a ``--gold`` belongs to the ``--targets`` before
it). Per set, with all-MiniLM-L6-v2, it prints the 5/25/50/75/95th percentiles of:

* ``poison~poison``, ``poison~benign``, ``benign~benign``: pairwise cosines within one target;
* ``benign near-dup jaccard``: word 3-gram Jaccard of benign pairs above cosine 0.8 (natural
  near-duplicates: syndicated copies have high overlap, independent reports low);
* ``residual poison~poison`` / ``residual benign near-dup``: the same cosines once the
  question's direction is taken out of every vector (what two passages share beyond being
  about the question);
* ``gap poison group`` / ``gap natural group``: a group's mean inner cosine minus its
  members' mean best cosine to a passage outside it, for the target's poisons and for the
  natural groups of three or more benign passages (complete linkage at cosine 0.75).

A reader-free quarantine needs the poison rows to clear the natural rows; the table says
where they overlap.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, table, write_json  # noqa: E402

from rag.evaluation.attacks import load_targets  # noqa: E402
from rag.models import SentenceTransformerEmbedder  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
_WORD = re.compile(r"\w+")


def _off_diagonal(m: np.ndarray) -> np.ndarray:
    return m[~np.eye(len(m), dtype=bool)]


def _jaccard(a: str, b: str) -> float:
    def grams(t: str) -> set[tuple[str, ...]]:
        w = _WORD.findall(t.lower())
        return set(zip(w, w[1:], w[2:], strict=False)) or {tuple(w)}
    ga, gb = grams(a), grams(b)
    return len(ga & gb) / max(1, len(ga | gb))


def _residual(vectors: np.ndarray, question: np.ndarray) -> np.ndarray:
    r = vectors - np.outer(vectors @ question, question)
    return r / np.maximum(np.linalg.norm(r, axis=1, keepdims=True), 1e-9)


def _gap(vectors: np.ndarray, members: list[int]) -> float | None:
    rest = [i for i in range(len(vectors)) if i not in members]
    if len(members) < 2 or not rest:
        return None
    sims = vectors @ vectors.T
    inner = _off_diagonal(sims[np.ix_(members, members)]).mean()
    return float(inner - sims[np.ix_(members, rest)].max(axis=1).mean())


def _groups(vectors: np.ndarray, cosine: float) -> list[list[int]]:
    from scipy.cluster.hierarchy import fcluster, linkage
    from scipy.spatial.distance import squareform

    if len(vectors) < 3:
        return []
    dist = 1.0 - np.clip(vectors @ vectors.T, -1.0, 1.0)
    np.fill_diagonal(dist, 0.0)
    labels = fcluster(linkage(squareform(dist, checks=False), "complete"), 1.0 - cosine, "distance")
    return [list(np.where(labels == g)[0]) for g in set(labels) if (labels == g).sum() >= 3]


def measure(embedder: SentenceTransformerEmbedder, targets: list) -> dict[str, list[float]]:
    rows: dict[str, list[float]] = {k: [] for k in (
        "poison~poison", "poison~benign", "benign~benign", "benign near-dup jaccard",
        "residual poison~poison", "residual benign near-dup", "gap poison group", "gap natural group")}
    for t in targets:
        benign = [c.text for c in t.contexts]
        poisons = list(t.published or t.adv_texts)
        if not poisons:
            continue
        q = embedder.embed_documents([t.question])[0]
        pv = embedder.embed_documents(poisons)
        bv = embedder.embed_documents(benign) if benign else np.zeros((0, pv.shape[1]), dtype=np.float32)
        rows["poison~poison"] += list(_off_diagonal(pv @ pv.T))
        rows["poison~benign"] += list((pv @ bv.T).ravel())
        rp, rb = _residual(pv, q), _residual(bv, q) if len(bv) else bv
        rows["residual poison~poison"] += list(_off_diagonal(rp @ rp.T))
        if len(bv) > 1:
            sims = bv @ bv.T
            rows["benign~benign"] += list(_off_diagonal(sims))
            near = [(i, j) for i in range(len(bv)) for j in range(i + 1, len(bv)) if sims[i, j] > 0.8]
            rows["benign near-dup jaccard"] += [_jaccard(benign[i], benign[j]) for i, j in near]
            rows["residual benign near-dup"] += [float(rb[i] @ rb[j]) for i, j in near]
            for group in _groups(bv, 0.75):
                gap = _gap(bv, group)
                if gap is not None:
                    rows["gap natural group"].append(gap)
        everything = np.vstack([bv, pv])
        gap = _gap(everything, list(range(len(bv), len(everything))))
        if gap is not None:
            rows["gap poison group"].append(gap)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--targets", type=Path, action="append", required=True)
    parser.add_argument("--gold", type=Path, action="append", default=[])
    parser.add_argument("--limit", type=int, default=100)
    parser.add_argument("--out", type=Path, default=ROOT / "eval" / "results" / "poison_geometry.json")
    args = parser.parse_args()
    golds = args.gold + [None] * (len(args.targets) - len(args.gold))
    embedder = SentenceTransformerEmbedder(show_progress=False)
    out, printed = {}, []
    for path, gold in zip(args.targets, golds, strict=True):
        rows = measure(embedder, load_targets(path, gold, limit=args.limit))
        out[path.name] = {k: {"n": len(v), "percentiles": np.percentile(v, [5, 25, 50, 75, 95]).round(3).tolist()
                              if v else None} for k, v in rows.items()}
        for k, v in out[path.name].items():
            p = v["percentiles"]
            printed.append({"set": path.name, "measure": k, "n": v["n"],
                            **({f"p{q}": x for q, x in zip((5, 25, 50, 75, 95), p, strict=True)} if p else {})})
    print(table(printed, ["set", "measure", "n", "p5", "p25", "p50", "p75", "p95"]))
    write_json(args.out, {"machine": machine(), "sets": out})


if __name__ == "__main__":
    main()
