"""BM25 over an incremental inverted index.

rank-bm25 rescans every document per query term (a Python loop: ~50 ms a term at 100k
documents) and cannot add or delete; bm25s is fast but rebuilds on every add. This index
keeps compact posting arrays per term, so adds append, deletes are tombstones, and a query
touches only the postings of its own terms. Scores follow Lucene's BM25 (idf =
ln(1 + (N - df + 0.5) / (df + 0.5))), which is never negative, so tiny corpora do not
collapse to zero scores as BM25Okapi's do; like Lucene 8+, the constant (k1 + 1) factor of the
numerator is left out (it does not change rankings).
"""

from __future__ import annotations

import json
import math
from array import array
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from rag.errors import ConfigError, StoreError
from rag.memory.text import tokenize

FORMAT_VERSION = 1


class BM25Index:
    """Sparse index over integer document keys.

    Args:
        k1: Term-frequency saturation.
        b: Length normalisation.

    Example:
        >>> idx = BM25Index()
        >>> idx.add([1, 2, 3], ["the eiffel tower is in paris", "rome has the colosseum", "bananas"])
        >>> [key for key, _ in idx.search("where is the eiffel tower", k=1)]
        [1]
    """

    def __init__(self, *, k1: float = 1.2, b: float = 0.75) -> None:
        if k1 < 0 or not 0 <= b <= 1:
            msg = f"BM25 needs k1 >= 0 and 0 <= b <= 1, got k1={k1}, b={b}"
            raise ConfigError(msg)
        self.k1, self.b = k1, b
        self._docs: dict[str, array] = {}
        self._tfs: dict[str, array] = {}
        self._keys = array("q")  # slot -> external key
        self._lengths = array("f")  # slot -> document length; 0 marks a deleted slot
        self._slot_of: dict[int, int] = {}
        self._total_length = 0.0
        self._np_cache: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    def __len__(self) -> int:
        return len(self._slot_of)

    def __contains__(self, key: int) -> bool:
        return key in self._slot_of

    @property
    def n_slots(self) -> int:
        """Slots in use, deleted ones included; :meth:`compact` reclaims them."""
        return len(self._keys)

    def add(self, keys: Sequence[int], texts: Sequence[str]) -> None:
        """Index ``texts`` under ``keys``. A key already present is replaced."""
        if len(keys) != len(texts):
            msg = f"add() got {len(keys)} keys for {len(texts)} texts"
            raise ConfigError(msg)
        for key, text in zip(keys, texts):
            key = int(key)
            if key in self._slot_of:
                self.remove([key])
            terms = Counter(tokenize(text))
            slot = len(self._keys)
            self._keys.append(key)
            length = float(max(1, sum(terms.values())))
            self._lengths.append(length)
            self._total_length += length
            self._slot_of[key] = slot
            for term, tf in terms.items():
                if term not in self._docs:
                    self._docs[term] = array("i")
                    self._tfs[term] = array("f")
                self._docs[term].append(slot)
                self._tfs[term].append(float(tf))

    def remove(self, keys: Iterable[int]) -> None:
        """Delete documents by key (tombstones; unknown keys are ignored)."""
        for key in keys:
            slot = self._slot_of.pop(int(key), None)
            if slot is None:
                continue
            self._total_length -= self._lengths[slot]
            self._lengths[slot] = 0.0

    def search(self, query: str, k: int = 10, *, exclude_zero: bool = True) -> list[tuple[int, float]]:
        """The ``k`` best (key, score) pairs for ``query``, best first."""
        if k < 1:
            msg = f"k must be a positive integer, got {k}"
            raise ConfigError(msg)
        n_live = len(self._slot_of)
        if n_live == 0:
            return []
        terms = set(tokenize(query))
        lengths = np.frombuffer(self._lengths, dtype=np.float32)
        avgdl = self._total_length / n_live
        slots_parts, score_parts = [], []
        for term in terms:
            if term not in self._docs:
                continue
            docs, tfs = self._postings(term)
            dl = lengths[docs]
            live = dl > 0  # tombstoned slots have length 0
            df = int(live.sum())
            if df == 0:
                continue
            idf = math.log(1.0 + (n_live - df + 0.5) / (df + 0.5))
            contrib = idf * tfs / (tfs + self.k1 * (1 - self.b + self.b * dl / avgdl))
            contrib[~live] = 0.0
            slots_parts.append(docs)
            score_parts.append(contrib)
        if not slots_parts:
            return []
        slots = np.concatenate(slots_parts)
        contribs = np.concatenate(score_parts)
        uniq, inverse = np.unique(slots, return_inverse=True)
        scores = np.zeros(len(uniq), dtype=np.float64)
        np.add.at(scores, inverse, contribs)
        if exclude_zero:
            keep = scores > 0
            uniq, scores = uniq[keep], scores[keep]
        if len(uniq) == 0:
            return []
        top = min(k, len(uniq))
        best = np.argpartition(-scores, top - 1)[:top]
        # Ties broken by slot (insertion order), so results are stable across runs.
        best = best[np.lexsort((uniq[best], -scores[best]))]
        keys = np.frombuffer(self._keys, dtype=np.int64)
        return [(int(keys[uniq[i]]), float(scores[i])) for i in best]

    def _postings(self, term: str) -> tuple[np.ndarray, np.ndarray]:
        cached = self._np_cache.get(term)
        docs = self._docs[term]
        if cached is None or len(cached[0]) != len(docs):
            cached = (np.frombuffer(docs, dtype=np.int32).copy(),
                      np.frombuffer(self._tfs[term], dtype=np.float32).copy())
            self._np_cache[term] = cached
        return cached

    def compact(self) -> None:
        """Drop tombstoned slots and their postings."""
        keys = np.frombuffer(self._keys, dtype=np.int64)
        lengths = np.frombuffer(self._lengths, dtype=np.float32)
        alive = lengths > 0
        new_slot = np.full(len(keys), -1, dtype=np.int64)
        new_slot[alive] = np.arange(int(alive.sum()))
        docs_new: dict[str, array] = {}
        tfs_new: dict[str, array] = {}
        for term, docs in self._docs.items():
            d = np.frombuffer(docs, dtype=np.int32)
            t = np.frombuffer(self._tfs[term], dtype=np.float32)
            mask = alive[d]
            if not mask.any():
                continue
            docs_new[term] = array("i", new_slot[d[mask]].astype(np.int32).tobytes())
            tfs_new[term] = array("f", t[mask].tobytes())
        self._docs, self._tfs = docs_new, tfs_new
        self._keys = array("q", keys[alive].tobytes())
        self._lengths = array("f", lengths[alive].tobytes())
        self._slot_of = {int(k): i for i, k in enumerate(self._keys)}
        self._np_cache = {}

    def save(self, folder: Path) -> None:
        """Write the index as ``bm25.json`` + ``bm25.npz`` (no pickle). Compacts first."""
        self.compact()
        folder.mkdir(parents=True, exist_ok=True)
        terms = list(self._docs)
        sizes = np.array([len(self._docs[t]) for t in terms], dtype=np.int64)
        docs = np.concatenate([np.frombuffer(self._docs[t], dtype=np.int32) for t in terms]) if terms else np.zeros(0, np.int32)
        tfs = np.concatenate([np.frombuffer(self._tfs[t], dtype=np.float32) for t in terms]) if terms else np.zeros(0, np.float32)
        np.savez(folder / "bm25.npz", sizes=sizes, docs=docs, tfs=tfs,
                 keys=np.frombuffer(self._keys, dtype=np.int64),
                 lengths=np.frombuffer(self._lengths, dtype=np.float32))
        meta = {"format": FORMAT_VERSION, "k1": self.k1, "b": self.b, "terms": terms}
        (folder / "bm25.json").write_text(json.dumps(meta), encoding="utf-8")

    @classmethod
    def load(cls, folder: Path) -> BM25Index:
        """Read an index written by :meth:`save`.

        Raises:
            StoreError: the files are missing, of another format version, or inconsistent.
        """
        try:
            meta = json.loads((folder / "bm25.json").read_text(encoding="utf-8"))
            with np.load(folder / "bm25.npz", allow_pickle=False) as data:
                arrays = {name: data[name] for name in data.files}
        except (OSError, ValueError, KeyError) as exc:
            msg = f"cannot read the BM25 index in {folder}: {exc}"
            raise StoreError(msg) from exc
        if meta.get("format") != FORMAT_VERSION or len(meta["terms"]) != len(arrays["sizes"]):
            msg = f"the BM25 index in {folder} has another format or is inconsistent"
            raise StoreError(msg)
        index = cls(k1=meta["k1"], b=meta["b"])
        offsets = np.concatenate([[0], np.cumsum(arrays["sizes"])])
        for i, term in enumerate(meta["terms"]):
            lo, hi = offsets[i], offsets[i + 1]
            index._docs[term] = array("i", arrays["docs"][lo:hi].tobytes())
            index._tfs[term] = array("f", arrays["tfs"][lo:hi].tobytes())
        index._keys = array("q", arrays["keys"].astype(np.int64).tobytes())
        index._lengths = array("f", arrays["lengths"].astype(np.float32).tobytes())
        index._slot_of = {int(k): i for i, k in enumerate(index._keys)}
        index._total_length = float(arrays["lengths"].sum())
        index._np_cache = {}
        return index
