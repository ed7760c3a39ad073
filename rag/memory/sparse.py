"""BM25 over an incremental inverted index.

rank-bm25 rescans every document per query term (a Python loop: ~50 ms a term at 100k
documents) and cannot add or delete; bm25s is fast but rebuilds on every add. This index
keeps compact posting arrays per term, so adds append, deletes are tombstones, and a query
touches only the postings of its own terms. Scores follow Lucene's BM25 (idf =
ln(1 + (N - df + 0.5) / (df + 0.5))), which is never negative, so tiny corpora do not
collapse to zero scores as BM25Okapi's do; like Lucene 8+, the constant (k1 + 1) factor of the
numerator is left out (it does not change rankings).

Layout: each document has a slot (insertion order); each term has an id, and per term id
two ``array`` objects hold its postings: the slots holding the term, ascending, and the
term frequencies. Adds append (many documents at once are grouped by term with numpy);
a delete sets the slot's length to infinity (a tombstone) and logs the slot, from which
each term's live document frequency is kept up to date without rescanning its postings.

A query reads the postings through zero-copy numpy views and scatter-adds each term's
contributions into a reusable dense score buffer (one float64 per slot), rarest term
first; once the terms left cannot lift an unseen document into the top k (MaxScore, see
``_score``), they are scored only for the remaining candidates. Results are exact.
"""

from __future__ import annotations

import json
import math
import threading
from array import array
from collections import Counter
from collections.abc import Iterable, Sequence
from itertools import chain
from pathlib import Path

import numpy as np

from rag.errors import ConfigError, StoreError
from rag.text import tokenize

FORMAT_VERSION = 1
_DEAD = math.inf  # document length of a deleted slot: its BM25 contributions become 0
_BATCH_ADD = 64  # from this many documents, add() indexes them with numpy
_COMPACT_TERMS = 4096  # terms rewritten at a time by compact()
_SAMPLE = 8192  # slots whose scores give the pruning threshold
_SLACK = 1e-5  # relative margin on score bounds, far above float32 rounding (~1e-7)
_TINY = float(np.nextafter(0.0, 1.0))  # ">= _TINY" is "> 0"


def _union(parts: list[np.ndarray]) -> np.ndarray:
    """Sorted distinct values of sorted, distinct ``parts``."""
    if len(parts) == 1:
        return parts[0]
    # sort-based: np.unique's hash table is several times slower on these sizes
    merged = np.sort(np.concatenate(parts))
    if len(merged) < 2:
        return merged
    return merged[np.concatenate(([True], merged[1:] != merged[:-1]))]


def _kth_largest(values: np.ndarray, k: int) -> float:
    """The k-th largest of ``values`` (k <= len(values))."""
    return float(np.partition(values, len(values) - k)[len(values) - k])


class BM25Index:
    """Sparse index over integer document keys.

    Safe to share between threads: every method holds the index's lock.

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
        self._lock = threading.RLock()
        self._term_id: dict[str, int] = {}
        self._terms: list[str] = []  # term id -> term
        self._docs: list[array] = []  # term id -> slots holding the term, ascending
        self._tfs: list[array] = []  # term id -> term frequency in each of those slots
        self._keys = array("q")  # slot -> external key
        self._lengths = array("f")  # slot -> document length in terms; _DEAD once deleted
        self._slot_of: dict[int, int] = {}
        self._total_length = 0.0
        self._dead = array("i")  # slots deleted since the last compaction, in order
        # term id -> (postings counted, deaths seen, live df)
        self._df: dict[int, tuple[int, int, int]] = {}
        self._max_tf: dict[int, tuple[int, float]] = {}  # term id -> (postings seen, max tf)
        self._scores = np.zeros(0, dtype=np.float64)  # all zero between queries

    def __len__(self) -> int:
        return len(self._slot_of)

    def __contains__(self, key: int) -> bool:
        return key in self._slot_of

    @property
    def n_slots(self) -> int:
        """Slots in use, deleted ones included; :meth:`compact` reclaims them."""
        return len(self._keys)

    @property
    def n_terms(self) -> int:
        """Distinct terms with postings (deleted documents' included until :meth:`compact`)."""
        return len(self._terms)

    # -- writes ---------------------------------------------------------------------------------

    def add(self, keys: Sequence[int], texts: Sequence[str]) -> None:
        """Index ``texts`` under ``keys``. A key already present is replaced."""
        if len(keys) != len(texts):
            msg = f"add() got {len(keys)} keys for {len(texts)} texts"
            raise ConfigError(msg)
        keys = [int(key) for key in keys]
        token_lists = [tokenize(text) for text in texts]
        with self._lock:
            first = len(self._keys)
            for key, tokens in zip(keys, token_lists):
                if key in self._slot_of:  # also an earlier duplicate within this batch
                    self._remove_one(key)
                length = float(max(1, len(tokens)))
                self._slot_of[key] = len(self._keys)
                self._append_to("_keys", key)
                self._append_to("_lengths", length)
                self._total_length += length
            if len(token_lists) >= _BATCH_ADD:
                self._index_batch(first, token_lists)
            else:
                for slot, tokens in enumerate(token_lists, start=first):
                    self._index_one(slot, tokens)

    def _index_one(self, slot: int, tokens: list[str]) -> None:
        term_id, docs, tfs = self._term_id, self._docs, self._tfs
        for term, tf in Counter(tokens).items():
            tid = term_id.get(term)
            if tid is None:
                tid = self._new_term(term)
            try:
                docs[tid].append(slot)
                tfs[tid].append(tf)
            except BufferError:
                self._extend_copy(tid, array("i", [slot]), array("f", [tf]))

    def _index_batch(self, first: int, token_lists: list[list[str]]) -> None:
        """Postings of many documents at once: numpy groups them by term (the same postings
        as :meth:`_index_one` per document, with far less Python work per posting)."""
        flat = list(chain.from_iterable(token_lists))
        term_id = self._term_id
        for term in dict.fromkeys(flat):  # new terms get ids in order of first use
            if term not in term_id:
                self._new_term(term)
        ids = np.fromiter(map(term_id.__getitem__, flat), dtype=np.int64, count=len(flat))
        slots = np.repeat(np.arange(first, first + len(token_lists), dtype=np.int64),
                          [len(tokens) for tokens in token_lists])
        pairs = np.sort(ids << 32 | slots)  # by term, then slot
        if not len(pairs):
            return
        starts = np.flatnonzero(np.concatenate(([True], pairs[1:] != pairs[:-1])))
        tf = np.diff(np.append(starts, len(pairs))).astype(np.float32)
        pairs = pairs[starts]
        term_of = pairs >> 32
        slot_bytes = memoryview((pairs & 0xFFFFFFFF).astype(np.int32).view(np.uint8))
        tf_bytes = memoryview(tf.view(np.uint8))
        bounds = np.flatnonzero(np.concatenate(([True], term_of[1:] != term_of[:-1], [True])))
        groups = zip(bounds[:-1].tolist(), bounds[1:].tolist(), term_of[bounds[:-1]].tolist())
        for lo, hi, tid in groups:
            try:
                self._docs[tid].frombytes(slot_bytes[4 * lo:4 * hi])
                self._tfs[tid].frombytes(tf_bytes[4 * lo:4 * hi])
            except BufferError:
                d, t = array("i"), array("f")
                d.frombytes(slot_bytes[4 * lo:4 * hi])
                t.frombytes(tf_bytes[4 * lo:4 * hi])
                self._extend_copy(tid, d, t)

    def _new_term(self, term: str) -> int:
        tid = self._term_id[term] = len(self._terms)
        self._terms.append(term)
        self._docs.append(array("i"))
        self._tfs.append(array("f"))
        return tid

    def _append_to(self, name: str, value: float) -> None:
        try:
            getattr(self, name).append(value)
        except BufferError:
            # A numpy view still holds the array (e.g. a traceback kept a search's frame
            # alive); growing would move the memory under it, so grow a copy instead.
            old = getattr(self, name)
            new = array(old.typecode, old)
            new.append(value)
            setattr(self, name, new)

    def _extend_copy(self, tid: int, slots: array, tfs: array) -> None:
        # Same as _append_to, for one term's postings; the two arrays end equally long
        # even if the slots went in before the tfs array refused.
        docs, freqs = array("i", self._docs[tid]), array("f", self._tfs[tid])
        del docs[len(freqs):]
        docs.extend(slots)
        freqs.extend(tfs)
        self._docs[tid], self._tfs[tid] = docs, freqs

    def remove(self, keys: Iterable[int]) -> None:
        """Delete documents by key (tombstones; unknown keys are ignored)."""
        with self._lock:
            for key in keys:
                self._remove_one(int(key))

    def _remove_one(self, key: int) -> None:
        slot = self._slot_of.pop(key, None)
        if slot is None:
            return
        self._total_length -= self._lengths[slot]
        self._lengths[slot] = _DEAD
        self._append_to("_dead", slot)

    # -- queries --------------------------------------------------------------------------------

    def search(self, query: str, k: int = 10) -> list[tuple[int, float]]:
        """The ``k`` best (key, score) pairs for ``query``, best first.

        Only documents holding at least one query term are returned (they always score
        above zero); ties are broken by insertion order.
        """
        if k < 1:
            msg = f"k must be a positive integer, got {k}"
            raise ConfigError(msg)
        tokens = tokenize(query)
        with self._lock:
            term_ids = {self._term_id[t] for t in tokens if t in self._term_id}
            if not self._slot_of or not term_ids:
                return []
            n = len(self._keys)
            if len(self._scores) < n:
                self._scores = np.zeros(n + n // 4 + 1024, dtype=np.float64)
            scores = self._scores
            touched: list[np.ndarray] = []
            try:
                slots = self._score(sorted(term_ids), k, scores, n, touched)
                values = scores[slots]
            except BaseException:
                scores[:n] = 0.0
                raise
            if sum(map(len, touched)) * 8 > n:
                scores[:n] = 0.0  # a memset beats a scatter over this many slots
            else:
                for docs in touched:
                    scores[docs] = 0.0
            keys = np.frombuffer(self._keys, dtype=np.int64)
            if len(slots) > k:
                kth = np.partition(values, len(values) - k)[len(values) - k]
                keep = values >= kth  # every tie of the k-th score, so ties go by slot below
                slots, values = slots[keep], values[keep]
            order = np.lexsort((slots, -values))[:k]
            return [(int(keys[s]), float(v)) for s, v in zip(slots[order], values[order])]

    def _score(self, term_ids: list[int], k: int, scores: np.ndarray, n: int,
               touched: list[np.ndarray]) -> np.ndarray:
        """Accumulate the query's scores into ``scores``; return the slots that can be top k.

        The postings of every term scored in full go to ``touched``: they hold every slot
        whose score changed.

        Terms go rarest first. Before each term, the scores so far give ``theta``, a lower
        bound of the final k-th best score (the k-th best partial score of a sample of
        distinct slots; scores only grow). If the remaining terms together cannot add
        ``theta`` to any document (``bound``: idf times the largest tf part any of their
        postings can have), a document not yet touched cannot reach the top k, nor can a
        touched one whose partial score is below ``theta - bound`` (MaxScore). The rest of
        the terms are then scored only for the surviving candidates (binary search in their
        sorted postings, or a lookup table), so frequent terms stop costing O(df) each, and
        theta is raised from the candidates' own scores after each term.
        The result is exact: every candidate gets all of its contributions, computed by
        the same float32 expression in the same term order as the exhaustive path.
        """
        plan = [self._term_plan(tid) for tid in term_ids]
        plan = [p for p in plan if p[3] > 0]  # terms whose every posting is deleted
        plan.sort(key=lambda p: len(p[1]))
        if not plan:
            return np.zeros(0, dtype=np.int64)
        # sum of the bounds of plan[i:], with slack for float32 rounding of contributions
        bounds = [p[4] for p in plan]
        remaining = np.cumsum(bounds[::-1])[::-1] * (1 + _SLACK)
        sample = self._sample(plan)
        reachable = 0.0  # bound of the partial scores so far: theta cannot exceed it
        for i, (_, docs, tfs, _, _, idf) in enumerate(plan):
            if i > 0 and len(sample) >= k and reachable > remaining[i]:
                theta = _kth_largest(scores[sample], k)
                if theta > remaining[i]:
                    candidates = self._candidates(plan[:i], scores, theta - remaining[i], n)
                    for j in range(i, len(plan)):
                        # the candidates' own k-th best partial score is a tighter theta
                        partial = scores[candidates]
                        theta = max(theta, _kth_largest(partial, k))
                        candidates = candidates[partial >= theta - remaining[j]]
                        _, docs, tfs, _, _, idf = plan[j]
                        self._add_for(candidates, docs, tfs, idf, scores)
                    return candidates
            touched.append(docs)
            self._add_all(docs, tfs, idf, scores)
            reachable += bounds[i] * (1 + _SLACK)
        theta = _kth_largest(scores[sample], k) if len(sample) >= k else 0.0
        return self._candidates(plan, scores, theta, n)

    def _term_plan(self, tid: int) -> tuple[int, np.ndarray, np.ndarray, int, float, float]:
        """(term id, slots, tfs, live df, score bound, idf) of one query term."""
        docs = np.frombuffer(self._docs[tid], dtype=np.int32)
        tfs = np.frombuffer(self._tfs[tid], dtype=np.float32)
        df = self._live_df(tid, docs) if self._dead else len(docs)
        n_live = len(self._slot_of)
        idf = math.log(1.0 + (n_live - df + 0.5) / (df + 0.5))
        seen, max_tf = self._max_tf.get(tid, (0, 0.0))
        if seen < len(docs):
            max_tf = max(max_tf, float(tfs[seen:].max()))
            self._max_tf[tid] = (len(docs), max_tf)
        # tf / (tf + k1 * (1 - b + b * dl / avgdl)) grows with tf and shrinks with dl >= 0
        floor = self.k1 * (1 - self.b)
        bound = idf * (max_tf / (max_tf + floor) if max_tf + floor > 0 else 1.0)
        return tid, docs, tfs, df, bound, idf

    def _live_df(self, tid: int, docs: np.ndarray) -> int:
        """Live postings of a term, kept up to date from the log of deleted slots."""
        seen, logged, df = self._df.get(tid, (0, 0, 0))
        dead = np.frombuffer(self._dead, dtype=np.int32)[logged:]
        lengths = np.frombuffer(self._lengths, dtype=np.float32)
        if len(dead) and seen:
            if len(dead) * 16 < seen:
                # each slot is deleted once, so a logged slot found in the counted prefix
                # was counted live
                old = docs[:seen]
                pos = np.minimum(np.searchsorted(old, dead), seen - 1)
                df -= int(np.count_nonzero(old[pos] == dead))
            else:
                df = seen - int(np.count_nonzero(lengths[docs[:seen]] == _DEAD))
        if seen < len(docs):
            df += len(docs) - seen - int(np.count_nonzero(lengths[docs[seen:]] == _DEAD))
        self._df[tid] = (len(docs), len(self._dead), df)
        return df

    def _sample(self, plan: list) -> np.ndarray:
        """Distinct slots from the rarest terms' postings, up to _SAMPLE of them."""
        parts, size = [], 0
        for _, docs, *_ in plan:
            if size + len(docs) > _SAMPLE:
                step = -(-len(docs) // (_SAMPLE - size)) if size < _SAMPLE else 0
                if step:
                    parts.append(docs[::step])
                break
            parts.append(docs)
            size += len(docs)
        return _union(parts)

    def _weights(self, tfs: np.ndarray, dl: np.ndarray, idf: float) -> np.ndarray:
        """idf * tf / (tf + k1 * (1 - b + b * dl / avgdl)) in float32; 0 for deleted slots."""
        avgdl = self._total_length / len(self._slot_of)
        length_weight = self.k1 * self.b / avgdl
        if length_weight > 0:
            # in place; a dead slot's infinite length makes its contribution exactly 0
            denom = dl * np.float32(length_weight)
            denom += np.float32(self.k1 * (1 - self.b))
            denom += tfs
            contrib = np.multiply(tfs, np.float32(idf))
            contrib /= denom
            return contrib
        contrib = tfs * np.float32(idf) / (tfs + np.float32(self.k1))
        if self._dead:
            contrib[dl == _DEAD] = 0.0
        return contrib

    def _add_all(self, docs: np.ndarray, tfs: np.ndarray, idf: float, scores: np.ndarray) -> None:
        dl = np.frombuffer(self._lengths, dtype=np.float32)[docs]
        scores[docs] += self._weights(tfs, dl, idf)  # a term's postings hold distinct slots

    def _add_for(self, slots: np.ndarray, docs: np.ndarray, tfs: np.ndarray, idf: float,
                 scores: np.ndarray) -> None:
        """Add a term's contributions to ``slots`` (sorted) only."""
        if not len(slots):
            return
        if len(slots) * 8 < len(docs):  # binary search: O(slots * log(postings))
            pos = np.minimum(np.searchsorted(docs, slots), len(docs) - 1)
            hit = docs[pos] == slots
            slots, tfs = slots[hit], tfs[pos[hit]]
        else:  # a lookup table over the slots: O(postings)
            hit = np.isin(docs, slots, kind="table")
            slots, tfs = docs[hit], tfs[hit]
        dl = np.frombuffer(self._lengths, dtype=np.float32)[slots]
        scores[slots] += self._weights(tfs, dl, idf)

    def _candidates(self, plan: list, scores: np.ndarray, threshold: float, n: int) -> np.ndarray:
        """Sorted distinct slots of ``plan``'s postings scoring > 0 and >= ``threshold``."""
        threshold = max(threshold, _TINY)
        if sum(len(p[1]) for p in plan) * 4 > n:  # scanning every slot is cheaper
            return np.flatnonzero(scores[:n] >= threshold).astype(np.int32)
        return _union([docs[scores[docs] >= threshold] for _, docs, *_ in plan])

    # -- maintenance ----------------------------------------------------------------------------

    def compact(self) -> None:
        """Drop tombstoned slots, their postings and the terms left without any."""
        with self._lock:
            if not self._dead:
                return
            lengths = np.frombuffer(self._lengths, dtype=np.float32)
            alive = lengths != _DEAD
            new_slot = np.cumsum(alive, dtype=np.int32) - 1
            terms: list[str] = []
            docs_out: list[array] = []
            tfs_out: list[array] = []
            # a few thousand terms at a time: the copies stay small next to the index
            for lo in range(0, len(self._terms), _COMPACT_TERMS):
                hi = lo + _COMPACT_TERMS
                docs, tfs, sizes = self._flat_postings(lo, hi)
                keep = alive[docs]
                # live postings per term (every term has at least one posting)
                kept = np.add.reduceat(keep, np.cumsum(sizes) - sizes, dtype=np.int64)
                terms += [t for t, n in zip(self._terms[lo:hi], kept.tolist()) if n]
                _split_postings(kept[kept > 0], new_slot[docs[keep]], tfs[keep], docs_out, tfs_out)
            keys = np.frombuffer(self._keys, dtype=np.int64)[alive]
            self._set_postings(terms, docs_out, tfs_out)
            self._set_slots(keys, lengths[alive])

    def _flat_postings(self, lo: int = 0, hi: int | None = None
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Postings of term ids lo..hi concatenated, and the number of each term's."""
        docs, tfs = self._docs[lo:hi], self._tfs[lo:hi]
        sizes = np.fromiter(map(len, docs), dtype=np.int64, count=len(docs))
        return (np.frombuffer(b"".join(docs), dtype=np.int32),
                np.frombuffer(b"".join(tfs), dtype=np.float32), sizes)

    def _set_postings(self, terms: list[str], docs: list[array], tfs: list[array]) -> None:
        self._terms, self._docs, self._tfs = terms, docs, tfs
        self._term_id = {t: i for i, t in enumerate(terms)}
        self._max_tf = {}

    def _set_slots(self, keys: np.ndarray, lengths: np.ndarray) -> None:
        self._keys = array("q", np.ascontiguousarray(keys, dtype=np.int64).tobytes())
        self._lengths = array("f", np.ascontiguousarray(lengths, dtype=np.float32).tobytes())
        self._slot_of = dict(zip(keys.tolist(), range(len(keys))))
        self._total_length = float(lengths.sum(dtype=np.float64))
        self._dead = array("i")
        self._df = {}
        self._scores = np.zeros(0, dtype=np.float64)

    def save(self, folder: Path) -> None:
        """Write the index as ``bm25.json`` + ``bm25.npz`` (no pickle). Compacts first."""
        with self._lock:
            self.compact()
            folder.mkdir(parents=True, exist_ok=True)
            docs, tfs, sizes = self._flat_postings()
            np.savez(folder / "bm25.npz", sizes=sizes, docs=docs, tfs=tfs,
                     keys=np.frombuffer(self._keys, dtype=np.int64),
                     lengths=np.frombuffer(self._lengths, dtype=np.float32))
            meta = {"format": FORMAT_VERSION, "k1": self.k1, "b": self.b, "terms": self._terms}
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
            terms, sizes = meta["terms"], arrays["sizes"]
            docs, tfs = arrays["docs"], arrays["tfs"]
            keys, lengths = arrays["keys"], arrays["lengths"]
            k1, b = float(meta["k1"]), float(meta["b"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            msg = f"cannot read the BM25 index in {folder}: {exc}"
            raise StoreError(msg) from exc
        problem = _inconsistency(meta, terms, sizes, docs, tfs, keys, lengths)
        if problem is None and not (k1 >= 0 and 0 <= b <= 1):
            problem = f"k1={k1}, b={b}"
        if problem:
            msg = f"the BM25 index in {folder} is inconsistent: {problem}"
            raise StoreError(msg)
        index = cls(k1=k1, b=b)
        docs_out: list[array] = []
        tfs_out: list[array] = []
        _split_postings(sizes, docs, tfs, docs_out, tfs_out)
        index._set_postings(list(terms), docs_out, tfs_out)
        index._set_slots(keys, lengths)
        if len(index._slot_of) != len(keys):
            msg = f"the BM25 index in {folder} is inconsistent: duplicate document keys"
            raise StoreError(msg)
        return index


def _split_postings(sizes: np.ndarray, docs: np.ndarray, tfs: np.ndarray,
                    docs_out: list[array], tfs_out: list[array]) -> None:
    """Append one pair of arrays per term, cut from concatenated postings by ``sizes``."""
    doc_bytes = memoryview(np.ascontiguousarray(docs, dtype=np.int32).view(np.uint8))
    tf_bytes = memoryview(np.ascontiguousarray(tfs, dtype=np.float32).view(np.uint8))
    lo = 0
    for hi in np.cumsum(sizes).tolist():
        d, t = array("i"), array("f")
        d.frombytes(doc_bytes[4 * lo:4 * hi])
        t.frombytes(tf_bytes[4 * lo:4 * hi])
        docs_out.append(d)
        tfs_out.append(t)
        lo = hi


def _inconsistency(meta: dict, terms: list, sizes: np.ndarray, docs: np.ndarray, tfs: np.ndarray,
                   keys: np.ndarray, lengths: np.ndarray) -> str | None:
    """What is wrong with a saved index's arrays, or None (a search relies on all of it)."""
    if meta.get("format") != FORMAT_VERSION:
        return f"format {meta.get('format')!r}, expected {FORMAT_VERSION}"
    if len(terms) != len(sizes) or len(set(terms)) != len(terms):
        return "the terms disagree with the posting sizes or repeat"
    if len(sizes) and sizes.min() < 1 or int(sizes.sum()) != len(docs) or len(docs) != len(tfs):
        return "posting sizes disagree with the postings"
    if len(keys) != len(lengths):
        return "document keys disagree with the document lengths"
    if len(lengths) and not (np.isfinite(lengths).all() and lengths.min() > 0):
        return "document lengths are not all positive"
    if len(docs):
        if docs.min() < 0 or docs.max() >= len(keys):
            return "postings point outside the documents"
        if not tfs.min() >= 1:
            return "term frequencies below 1"
        ascending = docs[1:] > docs[:-1]
        ascending[np.cumsum(sizes)[:-1] - 1] = True  # a new term starts over
        if not ascending.all():
            return "postings out of order"
    return None
