"""Claim checking on FEVER edits, each claim against its own edit's note alone (no retrieval):
accuracy and consistency on edits 0-49 (fit), 50-99 and 100-199 (checks), and claims/s.

    python eval/bench_claims.py /tmp/claims_pairs.json   # writes [claim, label, reason, gold] rows
"""
import json, sys, time, numpy as np
from rag.models import load_embedder
from rag.stages.claims import ClaimChecker
from rag.types import Passage
d = json.load(open('/work/shared/data/eren_fever_dev.json'))[:200]
items, meta = [], []
for i, e in enumerate(d):
    note = e['edit_statement'] if isinstance(e['edit_statement'], str) else e['edit_statement'][0]
    for j, (c, g) in enumerate(e['edit_scope']):
        items.append((c, {"memory": [Passage(f"n{i}", note, kind="note")]})); meta.append((i, j, g))
ch = ClaimChecker(load_embedder())
t = time.time(); V = ch.check_many(items); dt = time.time() - t
out = []
for s, (lo, hi) in enumerate([(0, 50), (50, 100), (100, 200)]):
    acc, cons, first = [], [], {}
    for v, (i, j, g) in zip(V, meta):
        if not lo <= i < hi: continue
        acc.append(v.label == g)
        if j == 0: first[i] = (g, v.label)
        else:
            g0, l0 = first[i]; cons.append((v.label == l0) == (g == g0) and v.label in ("yes", "no") and l0 in ("yes", "no"))
    out.append(f"edits {lo}-{hi - 1}: acc {np.mean(acc):.3f} cons {np.mean(cons):.3f} (n={len(acc)})")
print(" | ".join(out), f"| {len(items) / dt:.0f} claims/s")
json.dump([[c, v.label, v.reason, g] for (c, _), v, (_, _, g) in zip(items, V, meta)], open(sys.argv[1], 'w'))
