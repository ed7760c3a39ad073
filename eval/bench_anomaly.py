"""What the ``anomaly`` signal reads on poisons and on clean text of several kinds.

    python eval/bench_anomaly.py --nq FILE --nq-gold FILE --realtimeqa FILE --gmtp FILE
        [--limit 30] [--skip 0] [--generator gemma-3-270m] [--out eval/results/bench_anomaly.json]

Per kind of passage it prints the percentiles of the marker reading (``marker_signal``), the
mean negative log-likelihood per token under the generator, the worst eight-token window's,
and the window's excess over the passage's own median token (what a gibberish stretch adds to
the passage's baseline; a text the model reads poorly throughout, as a foreign language, has a
high median and a small excess). Then, for candidate decision quantities, the share of each kind
that would be flagged, and the scoring cost per passage.

Kinds: gold passages of NQ (PoisonedRAG), RealtimeQA's real snippets, GMTP's ``gt_text``
(clean); the harness's biomedical and non-English innocence texts, RealtimeQA snippets with
typos (clean, unusual); GMTP's published HotFlip documents, the project's own token attack on
NQ, and the published paraphrase poisons of NQ and RealtimeQA (crafted).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, table, write_json  # noqa: E402

from rag.evaluation.attacks import TokenAttack, add_typos, load_targets, poison_texts  # noqa: E402
from rag.evaluation.poisoning import BIOMEDICAL, NON_ENGLISH  # noqa: E402
from rag.models import DEFAULT_GENERATOR, SentenceTransformerEmbedder, load_generator  # noqa: E402
from rag.stages.detect.anomaly import marker_signal  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
CLEAN = ("nq gold", "realtimeqa snippet", "gmtp gold", "biomedical", "non-english", "realtimeqa typos")


def stats(logprobs: np.ndarray) -> dict[str, float]:
    nll = -np.asarray(logprobs, dtype=np.float64)
    if nll.size < 2:
        return {"mean_nll": 0.0, "window_nll": 0.0, "excess": 0.0}
    width = min(8, nll.size)
    window = float(np.convolve(nll, np.ones(width) / width, mode="valid").max())
    return {"mean_nll": float(nll.mean()), "window_nll": window, "excess": window - float(np.median(nll))}


def kinds(args: argparse.Namespace) -> dict[str, list[str]]:
    sl = slice(args.skip, args.skip + args.limit)
    nq = load_targets(args.nq, args.nq_gold)[sl]
    rt = load_targets(args.realtimeqa)[sl]
    gm = load_targets(args.gmtp)[sl]
    attack = TokenAttack(SentenceTransformerEmbedder(show_progress=False))
    snippets = [c.text for t in rt for c in t.contexts[:3]]
    return {
        "nq gold": [t.gold for t in nq if t.gold],
        "realtimeqa snippet": snippets,
        "gmtp gold": [c.text for t in gm for c in t.contexts],
        "biomedical": [text for _, _, text in BIOMEDICAL],
        "non-english": [text for _, _, text in NON_ENGLISH],
        "realtimeqa typos": [add_typos(s) for s in snippets[::3]],
        "gmtp hotflip": [p for t in gm for p in t.published],
        "nq token attack": [p for t in nq for p in poison_texts(t, "token", 1, token_attack=attack)],
        "nq paraphrase": [p for t in nq for p in t.published[:2]],
        "realtimeqa poison": [p for t in rt for p in t.published[:2]],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nq", type=Path, required=True)
    parser.add_argument("--nq-gold", type=Path, required=True)
    parser.add_argument("--realtimeqa", type=Path, required=True)
    parser.add_argument("--gmtp", type=Path, required=True)
    parser.add_argument("--limit", type=int, default=30)
    parser.add_argument("--skip", type=int, default=0, help="targets of each file to pass over first")
    parser.add_argument("--generator", default=DEFAULT_GENERATOR)
    parser.add_argument("--out", type=Path, default=ROOT / "eval" / "results" / "bench_anomaly.json")
    args = parser.parse_args()
    texts = kinds(args)
    generator = load_generator(args.generator)
    generator.token_logprobs(["warm up the scorer."])
    per_kind: dict[str, list[dict[str, float]]] = {}
    seconds = 0.0
    count = 0
    for kind, items in texts.items():
        start = time.perf_counter()
        logprobs = generator.token_logprobs(items)
        seconds += time.perf_counter() - start
        count += len(items)
        per_kind[kind] = [{"markers": marker_signal(t).value, **stats(lp)} for t, lp in zip(items, logprobs, strict=True)]
    rows = []
    for kind, values in per_kind.items():
        for measure in ("markers", "mean_nll", "window_nll", "excess"):
            v = np.array([x[measure] for x in values])
            p = np.percentile(v, [5, 25, 50, 75, 95]) if v.size else [float("nan")] * 5
            rows.append({"kind": kind, "measure": measure, "n": int(v.size),
                         **{f"p{q}": float(x) for q, x in zip((5, 25, 50, 75, 95), p, strict=True)},
                         "max": float(v.max()) if v.size else float("nan"),
                         "min": float(v.min()) if v.size else float("nan")})
    print(table(rows, ["kind", "measure", "n", "min", "p5", "p25", "p50", "p75", "p95", "max"]))
    rules = {
        "markers >= 0.5": lambda x: x["markers"] >= 0.5,
        "window_nll >= 9": lambda x: x["window_nll"] >= 9.0,
        "excess >= 5": lambda x: x["excess"] >= 5.0,
        "excess >= 6": lambda x: x["excess"] >= 6.0,
    }
    flagged = [{"kind": kind, "clean": kind in CLEAN,
                **{name: float(np.mean([rule(x) for x in values])) for name, rule in rules.items()}}
               for kind, values in per_kind.items()]
    print()
    print(table(flagged, ["kind", "clean", *rules]))
    print(f"\nscoring: {1000 * seconds / max(count, 1):.1f} ms per passage ({count} passages)")
    write_json(args.out, {"machine": machine(), "args": {k: str(v) for k, v in vars(args).items()},
                          "per_kind": per_kind, "flagged": flagged, "ms_per_passage": 1000 * seconds / max(count, 1)})


if __name__ == "__main__":
    main()
