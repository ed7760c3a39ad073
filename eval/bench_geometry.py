"""The reader-free poison geometry (``rag.stages.detect.geometry``): calibrated on one half of
the development data, measured on the other.

    python eval/bench_geometry.py [--fit] [--k 5] [--widen 3]
        [--cache FILE] [--out eval/results/bench_geometry.json]

Per set, one store as the poisoning harness builds it (every target's benign passages, and
under an attack every target's poisons at the ratio), searched densely (all-MiniLM-L6-v2,
cosine) for each question: the top ``k`` are judged, the top ``k * widen`` are the deeper
search the geometry compares them with. Conditions: clean; ``syndicated`` (two wire copies of
each target's answering passage added, as the harness's innocence set); ``blackbox`` and
``paraphrase`` (the harness's attacks) and ``published`` (the file's own poisons) at 1, 2, 4
and 6 poisons per target (``published`` holds at most 5).

Halves: calibration on NQ targets 50-99 and RealtimeQA questions 25-49; measurement on NQ
0-49, RealtimeQA 0-24 and GMTP 0-49 (GMTP takes no part in the calibration). ``--fit`` fits
the logistic coefficients and the threshold on the calibration half and prints them (paste
them into the module); without it, the module's constants are measured on both halves.

Reports per set, condition and ratio: poisons in the top k, recall of those (quarantined:
a member of a group scoring at the threshold), clean passages in the top k and the
false-positive rate on them; and per feature the median over poison groups and over natural
groups (a group with no poison).
"""

from __future__ import annotations

import argparse
import pickle
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, table, write_json  # noqa: E402

from rag.evaluation.attacks import load_targets, poison_texts  # noqa: E402
from rag.evaluation.poisoning import _answering  # noqa: E402
from rag.models import SentenceTransformerEmbedder  # noqa: E402
from rag.stages.detect import geometry  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
DATA = Path("/work/shared/data")
SETS = {
    "nq": (DATA / "poisonedrag_nq.json", DATA / "ragdefender_golden_nq.txt", range(0, 50), range(50, 100)),
    "realtimeqa": (DATA / "robustrag_realtimeqa_dev.json", None, range(0, 25), range(25, 50)),
    "gmtp": (DATA / "gmtp_hotflip_nq_dev.json", None, range(0, 50), range(0)),
}
RATIOS = (1, 2, 4, 6)


class Embeddings:
    """Embeds each text once."""

    def __init__(self, cache: Path | None = None) -> None:
        self.model = SentenceTransformerEmbedder(show_progress=False)
        self.path = cache
        self.cache: dict[str, np.ndarray] = pickle.loads(cache.read_bytes()) if cache and cache.exists() else {}

    def save(self) -> None:
        if self.path:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.write_bytes(pickle.dumps(self.cache))

    def __call__(self, texts: list[str]) -> np.ndarray:
        todo = list(dict.fromkeys(t for t in texts if t not in self.cache))
        if todo:
            self.cache.update(zip(todo, self.model.embed_documents(todo), strict=True))
        return np.array([self.cache[t] for t in texts]) if texts else np.zeros((0, 384), dtype=np.float32)


def conditions(name: str, targets: list) -> list[tuple[str, int, list[tuple[str, str, bool]]]]:
    """(condition, ratio, added passages as (owner target id, text, is poison))."""
    out = [("clean", 0, []), ("syndicated", 0, [
        (t.id, text, False) for t in targets
        for p in [_answering(t)]
        for text in (f"(Wire) {p.text}", f"{p.text} This story first ran on the wire and is republished with permission.")])]
    attacks = ["published"] if name == "gmtp" else ["blackbox", "paraphrase", "published"]
    for attack in attacks:
        for ratio in RATIOS:
            if attack == "published" and ratio > 5:
                continue
            out.append((attack, ratio, [(t.id, text, True) for t in targets for text in poison_texts(t, attack, ratio)]))
    return out


def run_set(name: str, emb: Embeddings, k: int, widen: int) -> list[dict]:
    """Per question and condition: the groups among its top ``k`` and their labels."""
    path, gold, _, _ = SETS[name]
    targets = load_targets(path, gold)
    benign = [(t.id, c.full_text, c.text, False) for t in targets for c in t.contexts]
    records = []
    for cond, ratio, added in conditions(name, targets):
        pool = benign + [(tid, text, text, poison) for tid, text, poison in added]
        vectors = emb([full for _, full, _, _ in pool])
        texts = [text for _, _, text, _ in pool]
        poison = np.array([p for *_, p in pool])
        questions = emb([t.question for t in targets])
        for ti, t in enumerate(targets):
            q = questions[ti]
            order = np.argsort(-(vectors @ q))[: k * widen]
            groups = geometry.candidate_groups(q, vectors[order], [texts[i] for i in order], k)
            member = {}
            for g in groups:
                for m in g.members:
                    member[m] = g
            records.append({
                "set": name, "index": ti, "condition": cond, "ratio": ratio,
                "top": [{"poison": bool(poison[order[j]]), "group": member.get(j)} for j in range(min(k, len(order)))],
                "groups": [(g, float(poison[order[list(g.members)]].mean()), sum(m < k for m in g.members))
                           for g in groups],
            })
    return records


def in_half(r: dict, half: str) -> bool:
    _, _, measure, calibrate = SETS[r["set"]]
    return r["index"] in (calibrate if half == "calibration" else measure)


def fit(records: list[dict]) -> tuple[dict[str, float], float, float]:
    """Logistic regression (L2, standardised features, one sample per group weighted by its
    members in the top k), then the lowest threshold with <= 1% false positives among the
    calibration half's clean passages in the top k."""
    rows = [(g, label) for r in records for g, label, inside in r["groups"] for _ in range(inside)]
    x = np.array([[g.features[f] for f in geometry.FEATURES] for g, _ in rows])
    y = np.array([1.0 if label >= 0.5 else 0.0 for _, label in rows])
    mu, sd = x.mean(axis=0), x.std(axis=0) + 1e-9
    z = (x - mu) / sd
    w, b = np.zeros(z.shape[1]), 0.0
    pos = y.mean()
    weight = np.where(y == 1, 0.5 / pos, 0.5 / (1 - pos))  # classes balanced
    for _ in range(5000):
        p = 1 / (1 + np.exp(-(z @ w + b)))
        grad = weight * (p - y)
        w -= 0.1 * (z.T @ grad / len(y) + 0.01 * w)
        b -= 0.1 * grad.mean()
    coef = w / sd
    intercept = b - float((w * mu / sd).sum())
    geometry.COEFFICIENTS = dict(zip(geometry.FEATURES, (round(float(c), 3) for c in coef), strict=True))
    geometry.INTERCEPT = round(intercept, 3)
    clean_scores = []
    for r in records:
        for top in r["top"]:
            if not top["poison"]:
                clean_scores.append(geometry.group_score(top["group"].features) if top["group"] else 0.0)
    threshold = max(0.5, float(np.quantile(clean_scores, 0.99)) + 1e-3)
    return geometry.COEFFICIENTS, geometry.INTERCEPT, round(threshold, 3)


def report(records: list[dict], threshold: float) -> list[dict]:
    rows = []
    keys = sorted({(r["set"], r["condition"], r["ratio"]) for r in records},
                  key=lambda s: (list(SETS).index(s[0]), s[1] != "clean", s[1] != "syndicated", s[1], s[2]))
    for half in ("calibration", "measurement"):
        for s, cond, ratio in keys:
            rs = [r for r in records if (r["set"], r["condition"], r["ratio"]) == (s, cond, ratio) and in_half(r, half)]
            if not rs:
                continue
            hit = lambda top: top["group"] is not None and geometry.group_score(top["group"].features) >= threshold  # noqa: E731
            poisons = [top for r in rs for top in r["top"] if top["poison"]]
            clean = [top for r in rs for top in r["top"] if not top["poison"]]
            rows.append({"half": half, "set": s, "condition": cond, "ratio": ratio or "-",
                         "poisons in top k": len(poisons),
                         "recall": round(sum(map(hit, poisons)) / len(poisons), 3) if poisons else "-",
                         "clean in top k": len(clean),
                         "fpr": round(sum(map(hit, clean)) / len(clean), 3) if clean else "-"})
    return rows


def feature_medians(records: list[dict]) -> list[dict]:
    rows = []
    for s in SETS:
        for kind in ("poison", "natural"):
            gs = [g for r in records if r["set"] == s for g, label, _ in r["groups"]
                  if (label >= 0.5 if kind == "poison" else label == 0)]
            if gs:
                rows.append({"set": s, "groups": kind, "n": len(gs), "size": float(np.median([g.size for g in gs])),
                             **{f: round(float(np.median([g.features[f] for g in gs])), 3) for f in geometry.FEATURES},
                             "score": round(float(np.median([g.score for g in gs])), 3)})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fit", action="store_true")
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--widen", type=int, default=3)
    parser.add_argument("--cache", type=Path, default=None, help="a file remembering the embeddings between runs")
    parser.add_argument("--out", type=Path, default=ROOT / "eval" / "results" / "bench_geometry.json")
    args = parser.parse_args()
    emb = Embeddings(args.cache)
    records = [r for s in SETS for r in run_set(s, emb, args.k, args.widen)]
    emb.save()
    threshold = geometry.THRESHOLD
    if args.fit:
        coef, intercept, threshold = fit([r for r in records if in_half(r, "calibration") and r["set"] != "gmtp"])
        print(f"COEFFICIENTS = {coef}\nINTERCEPT = {intercept}\nTHRESHOLD = {threshold}")
        records = [r | {"groups": [(geometry.Group(g.members, g.features, geometry.group_score(g.features)), lab, ins)
                                   for g, lab, ins in r["groups"]]} for r in records]
    medians = feature_medians(records)
    print(table(medians, ["set", "groups", "n", "size", *geometry.FEATURES, "score"]))
    rows = report(records, threshold)
    print(table(rows, ["half", "set", "condition", "ratio", "poisons in top k", "recall", "clean in top k", "fpr"]))
    write_json(args.out, {"machine": machine(), "k": args.k, "widen": args.widen, "threshold": threshold,
                          "coefficients": dict(geometry.COEFFICIENTS), "intercept": geometry.INTERCEPT,
                          "features": medians, "rows": rows})


if __name__ == "__main__":
    main()
