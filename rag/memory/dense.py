"""Dense index: FAISS inner product over L2-normalised vectors, keyed by int64.

Small indexes are searched exactly; past ``approximate_above`` vectors the index becomes an
inverted file (IVF) whose ``nprobe`` is calibrated on the stored vectors to a target recall.

Both modes are one ``faiss.IndexIVFFlat`` with a hash-table direct map:

* exact mode is a single inverted list, so a search scans every vector (the same work as
  ``IndexFlatIP``, and measured as fast with one thread; ``IndexFlatIP`` on one query was
  several times slower with two OpenMP threads on a busy 2-core machine);
* the direct map makes a removal O(1) (swap with the last entry of its list) where
  ``IndexIDMap2(IndexFlatIP).remove_ids`` rewrites the whole array (12 ms at 25k vectors,
  75 ms at 200k), and it lets the index give its vectors back, so it can be retrained
  without a second copy of them.

Deletes are tombstones, dropped from results by over-fetching a few more hits, and are
physically removed (compaction) once they exceed ``compact_fraction`` of the index;
compaction costs O(tombstones), not a rebuild. (Filtering inside faiss with an
``IDSelectorBatch`` searched no faster, and its set must be rebuilt after every delete:
3 ms at 95k tombstones.) Training happens only when an add crosses ``approximate_above``
or grows the index ``retrain_growth`` times past the size it was trained at, so its cost
is amortised. ``eval/bench_dense.py`` measures all of this.

A snapshot from before this format (a bare ``IndexIDMap2`` file without the side files)
is refused with :class:`StoreError`, so the store rebuilds it from its embeddings.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from rag.errors import ConfigError, StoreError

logger = logging.getLogger(__name__)

FORMAT = 1
# Exact search scans every vector: 0.6 ms at 10k, 2.3 ms at 25k, 4.5 ms at 50k and 11 ms at
# 100k (dim 384, one query, one core of the 2-core dev machine). 50k keeps the exact side
# within the 5 ms dense budget, and stores up to it keep perfect recall and never train.
DEFAULT_APPROXIMATE_ABOVE = 50_000
# nlist = factor * sqrt(N) (1265 lists at 100k, 4000 at 1M). Measured at 100k: factor 4
# builds in 17 s and searches in 0.66 ms, factor 2 in 7.4 s and 1.5 ms (more probes of
# longer lists for the same recall). Search time is paid per query, build once per 4x.
DEFAULT_NLIST_FACTOR = 4.0
# Calibration queries are stored vectors; on real all-MiniLM-L6-v2 embeddings a calibrated
# 0.979 gave 0.975 on held-out passages and 0.971 on short queries: 0.97 keeps 0.95 safe.
DEFAULT_TARGET_RECALL = 0.99
#: Norm of the noise added to calibration queries: cosine to their source vector ~0.5.
#: At cosine ~0.8 (norm 0.75) calibration chose nprobe 48 of 4000 lists at 1M synthetic
#: passages, and short queries of a few of a passage's words then found 0.88 of their
#: exact top 10; at 200k, nprobe 128 gave 0.90 where 512 (this setting) is needed for 0.95.
_CALIBRATION_NOISE = 1.73
# faiss warns (on stderr) below 39 training points per centroid.
_POINTS_PER_CENTROID = 40
_TRAIN_ITERATIONS = 10
_CALIBRATION_QUERIES = 200
_CALIBRATION_K = 10
# Candidate nprobe values, each about 1.5x the last.
_NPROBE_STEPS = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768,
                 1024, 1536, 2048, 3072, 4096)
_CHUNK = 32_768
# Adds smaller than this run on one thread (see _one_thread).
_SMALL_BATCH = 1024


def _faiss() -> Any:
    import faiss

    return faiss


@contextmanager
def _one_thread(when: bool = True) -> Iterator[None]:
    """Run faiss on the calling thread only (the OpenMP setting is per thread).

    A one-vector add or one-query search is microseconds of work, but with two OpenMP
    threads on a busy machine it waits for the second thread to be scheduled: a one-vector
    add measured 17 ms p50 with two threads against 0.03 ms with one.
    """
    faiss = _faiss()
    before = faiss.omp_get_max_threads()
    if not when or before == 1:
        yield
        return
    faiss.omp_set_num_threads(1)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(before)


class DenseIndex:
    """Cosine search over normalised vectors, with adds and deletes by key.

    Args:
        dim: Vector dimension.
        approximate_above: Live vectors above which the index switches from exact search
            to an IVF index (and below half of which it switches back, at compaction).
        nprobe: Inverted lists searched in IVF mode; ``None`` calibrates it at each
            training so that recall@10 on a sample of the stored vectors reaches
            ``target_recall``.
        target_recall: Recall@10 the calibration aims for (above 0.95 to leave a margin
            for queries that lie further from the data than stored passages do).
        nlist_factor: IVF lists per square root of the vectors trained on.
        compact_fraction: Tombstones, as a fraction of the stored vectors, that trigger
            their physical removal; ``0`` removes at once.
        retrain_growth: Retrain the IVF index when it has grown this many times past the
            size it was trained at.
        seed: Seed of the training sample and of k-means.

    Example:
        >>> import numpy as np
        >>> idx = DenseIndex(dim=2)
        >>> idx.add([7, 8], np.array([[1, 0], [0, 1]], dtype=np.float32))
        >>> idx.search(np.array([0.9, 0.1], dtype=np.float32), k=1)[0][0]
        7
        >>> idx.remove([7]); len(idx), idx.mode
        (1, 'exact')
    """

    def __init__(
        self,
        dim: int,
        *,
        approximate_above: int = DEFAULT_APPROXIMATE_ABOVE,
        nprobe: int | None = None,
        target_recall: float = DEFAULT_TARGET_RECALL,
        nlist_factor: float = DEFAULT_NLIST_FACTOR,
        compact_fraction: float = 0.1,
        retrain_growth: float = 4.0,
        seed: int = 0,
    ) -> None:
        if dim < 1:
            msg = f"dim must be a positive integer, got {dim}"
            raise ConfigError(msg)
        if approximate_above < 1:
            msg = f"approximate_above must be a positive integer, got {approximate_above}"
            raise ConfigError(msg)
        if nprobe is not None and nprobe < 1:
            msg = f"nprobe must be a positive integer or None, got {nprobe}"
            raise ConfigError(msg)
        if not 0.0 < target_recall <= 1.0:
            msg = f"target_recall must be in (0, 1], got {target_recall}"
            raise ConfigError(msg)
        if nlist_factor <= 0:
            msg = f"nlist_factor must be positive, got {nlist_factor}"
            raise ConfigError(msg)
        if not 0.0 <= compact_fraction < 1.0:
            msg = f"compact_fraction must be in [0, 1), got {compact_fraction}"
            raise ConfigError(msg)
        if retrain_growth <= 1.0:
            msg = f"retrain_growth must be above 1, got {retrain_growth}"
            raise ConfigError(msg)
        self.dim = dim
        self.approximate_above = int(approximate_above)
        self.fixed_nprobe = nprobe
        self.target_recall = float(target_recall)
        self.nlist_factor = float(nlist_factor)
        self.compact_fraction = float(compact_fraction)
        self.retrain_growth = float(retrain_growth)
        self.seed = int(seed)
        self._tombstones: set[int] = set()
        self._trained_n = 0
        self._calibrated_recall: float | None = None
        self._index = self._empty_ivf(None)
        #: Seconds the last training or mode switch spent per phase (for benchmarks).
        self.last_rebuild: dict[str, float] = {}

    # -- state ----------------------------------------------------------------------------

    def __len__(self) -> int:
        """Live vectors (tombstoned ones excluded)."""
        return int(self._index.ntotal) - len(self._tombstones)

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, (int, np.integer)) or int(key) in self._tombstones:
            return False
        return self._stored(int(key))

    @property
    def mode(self) -> str:
        """``"exact"`` (one list, every vector scanned) or ``"ivf"`` (approximate)."""
        return "exact" if self._index.nlist == 1 else "ivf"

    @property
    def nlist(self) -> int:
        return int(self._index.nlist)

    @property
    def nprobe(self) -> int:
        """Inverted lists a search scans (all of them in exact mode)."""
        return int(self._index.nprobe)

    @property
    def tombstones(self) -> int:
        """Deleted vectors not yet physically removed."""
        return len(self._tombstones)

    def stats(self) -> dict[str, Any]:
        """Mode, sizes and IVF parameters, for logs and benchmarks."""
        return {"mode": self.mode, "live": len(self), "stored": int(self._index.ntotal),
                "tombstones": len(self._tombstones), "nlist": self.nlist, "nprobe": self.nprobe,
                "trained_n": self._trained_n, "calibrated_recall": self._calibrated_recall}

    def _stored(self, key: int) -> bool:
        # The direct map raises on an unknown key; it is the only O(1) membership test
        # faiss exposes, and unknown keys are rare (remove() of keys never added).
        try:
            self._index.direct_map.get(key)
        except RuntimeError:
            return False
        return True

    # -- edits ----------------------------------------------------------------------------

    def add(self, keys: Sequence[int], vectors: np.ndarray) -> None:
        """Add ``vectors`` (n, dim) under ``keys``; a key already present is replaced.

        Costs O(n) except when the add crosses ``approximate_above`` or grows an IVF index
        ``retrain_growth`` times past its training size: that add trains the index.
        """
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[1] != self.dim or len(keys) != len(vectors):
            msg = f"add() needs {len(keys)} vectors of dim {self.dim}, got shape {vectors.shape}"
            raise ConfigError(msg)
        if len(keys) == 0:
            return
        ids = np.asarray(keys, dtype=np.int64)
        # A key given twice in one batch keeps its last vector, as two adds would.
        uniq, first_of_reversed = np.unique(ids[::-1], return_index=True)
        if len(uniq) < len(ids):
            rows = len(ids) - 1 - first_of_reversed
            ids, vectors = ids[rows], np.ascontiguousarray(vectors[rows])
        self._drop(ids)
        self._tombstones.difference_update(ids.tolist())
        live = len(self) + len(ids)
        if self.mode == "exact" and live > self.approximate_above:
            self._rebuild(exact=False, pending=(ids, vectors))
        elif self.mode == "ivf" and live >= self.retrain_growth * self._trained_n:
            self._rebuild(exact=False, pending=(ids, vectors))
        else:
            with _one_thread(len(ids) < _SMALL_BATCH):
                self._index.add_with_ids(vectors, ids)

    def remove(self, keys: Iterable[int]) -> None:
        """Delete ``keys`` (unknown keys are ignored). O(1) per key: a tombstone."""
        fresh = {int(k) for k in keys} - self._tombstones
        found = [k for k in fresh if self._stored(k)]
        if not found:
            return
        if self.compact_fraction == 0.0:
            self._drop(np.asarray(found, dtype=np.int64))
        else:
            self._tombstones.update(found)
            if len(self._tombstones) > self.compact_fraction * self._index.ntotal:
                self.compact()
        if self.mode == "ivf" and len(self) < self.approximate_above // 2:
            # Hysteresis: a store hovering at the threshold does not flip on every edit.
            self._rebuild(exact=True)

    def compact(self) -> None:
        """Physically remove tombstoned vectors (O(tombstones), no retraining)."""
        if not self._tombstones:
            return
        count = len(self._tombstones)
        self._drop(np.fromiter(self._tombstones, dtype=np.int64, count=count))
        self._tombstones.clear()
        logger.debug("compacted %s tombstones; %s vectors left", count, len(self))

    def _drop(self, ids: np.ndarray) -> None:
        faiss = _faiss()
        if len(ids) and self._index.ntotal:
            self._index.remove_ids(faiss.IDSelectorArray(len(ids), faiss.swig_ptr(ids)))

    # -- search ---------------------------------------------------------------------------

    def search(self, vector: np.ndarray, k: int = 10) -> list[tuple[int, float]]:
        """The ``k`` nearest (key, cosine) pairs, best first."""
        if k < 1:
            msg = f"k must be a positive integer, got {k}"
            raise ConfigError(msg)
        query = np.ascontiguousarray(vector, dtype=np.float32).reshape(1, -1)
        if query.shape[1] != self.dim:
            msg = f"search() needs a vector of dim {self.dim}, got shape {np.shape(vector)}"
            raise ConfigError(msg)
        live = len(self)
        if live == 0:
            return []
        faiss = _faiss()
        total, nlist = int(self._index.ntotal), self.nlist
        want = min(k, live)
        # Over-fetch by the expected share of tombstones, plus slack; widen if unlucky.
        fetch = min(total, want + min(len(self._tombstones), want // 2 + 8))
        nprobe = self.nprobe
        params = None
        while True:
            with _one_thread():
                scores, ids = self._index.search(query, fetch, params=params)
            hits = [(int(i), float(s)) for i, s in zip(ids[0], scores[0], strict=True)
                    if i != -1 and int(i) not in self._tombstones]
            if len(hits) >= want:
                return hits[:want]
            if ids[0, -1] == -1:
                # The probed lists hold fewer than `fetch` vectors: a large k (the store
                # widens its fetch under filters) gets more lists rather than fewer hits.
                if nprobe >= nlist:
                    return hits
                nprobe = min(nlist, nprobe * 4)
                params = faiss.SearchParametersIVF(nprobe=nprobe)
            elif fetch >= total:
                return hits
            else:
                fetch = min(total, fetch * 4)

    # -- mode switches --------------------------------------------------------------------

    def _empty_ivf(self, centroids: np.ndarray | None) -> Any:
        faiss = _faiss()
        quantizer = faiss.IndexFlatIP(self.dim)
        if centroids is None:
            # One list, never trained: its centroid only has to exist for the assignment.
            quantizer.add(np.zeros((1, self.dim), dtype=np.float32))
        else:
            quantizer.add(centroids)
        index = faiss.IndexIVFFlat(
            quantizer, self.dim, quantizer.ntotal, faiss.METRIC_INNER_PRODUCT
        )
        index.is_trained = True
        index.set_direct_map_type(faiss.DirectMap.Hashtable)
        index.nprobe = 1
        # The IVF index owns and frees its quantizer (so does one read from disk).
        index.own_fields = True
        quantizer.this.disown()
        index.referenced_objects = []
        return index

    def _rebuild(
        self, *, exact: bool, pending: tuple[np.ndarray, np.ndarray] | None = None
    ) -> None:
        """Move the live vectors, and ``pending`` (ids, vectors) not added yet, into a new
        single-list or freshly trained IVF index."""
        start = time.perf_counter()
        self.compact()
        old = self._index
        if pending is None:
            pending = (np.empty(0, np.int64), np.empty((0, self.dim), np.float32))
        pend_ids, pend_vecs = pending
        live = int(old.ntotal) + len(pend_ids)

        def chunks() -> Iterator[tuple[np.ndarray, np.ndarray]]:
            yield from _iter_vectors(old)
            for lo in range(0, len(pend_ids), _CHUNK):
                yield pend_ids[lo : lo + _CHUNK], pend_vecs[lo : lo + _CHUNK]

        if exact:
            new = self._empty_ivf(None)
            self._trained_n = 0
            self._calibrated_recall = None
        else:
            nlist = round(self.nlist_factor * math.sqrt(live))
            nlist = max(2, min(nlist, live // _POINTS_PER_CENTROID))
            new = self._empty_ivf(self._train(nlist, old, pend_vecs))
            self._trained_n = live
        trained = time.perf_counter()
        _fill(new, chunks)
        self._index = new
        old = None  # frees the previous index before calibration allocates
        filled = time.perf_counter()
        if not exact and self.fixed_nprobe:
            self._index.nprobe = self.fixed_nprobe
            self._calibrated_recall = None
        elif not exact:
            self._index.nprobe = self._calibrate()
        self.last_rebuild = {"train_s": trained - start, "fill_s": filled - trained,
                             "calibrate_s": time.perf_counter() - filled}
        logger.info(
            "dense index now %s over %s vectors (nlist=%s, nprobe=%s, calibrated recall@10=%s);"
            " trained in %.1f s, filled in %.1f s, calibrated in %.1f s", self.mode, live,
            self.nlist, self.nprobe, self._calibrated_recall, *self.last_rebuild.values(),
        )

    def _train(self, nlist: int, old: Any, pending: np.ndarray) -> np.ndarray:
        """k-means centroids from a sample of the vectors of ``old`` and ``pending``."""
        faiss = _faiss()
        stored = int(old.ntotal)
        total = stored + len(pending)
        rng = np.random.default_rng(self.seed)
        size = min(total, nlist * _POINTS_PER_CENTROID)
        picks = np.sort(rng.choice(total, size=size, replace=False))
        cut = int(np.searchsorted(picks, stored))
        _, from_old = _gather(old, picks[:cut])
        sample = np.concatenate([from_old, pending[picks[cut:] - stored]])
        kmeans = faiss.Clustering(self.dim, nlist)
        kmeans.niter = _TRAIN_ITERATIONS
        kmeans.seed = self.seed
        kmeans.spherical = True  # centroids on the sphere, as the vectors are
        kmeans.max_points_per_centroid = size  # already sampled
        kmeans.min_points_per_centroid = 1
        kmeans.train(sample, faiss.IndexFlatIP(self.dim))
        return faiss.vector_to_array(kmeans.centroids).reshape(nlist, self.dim)

    def _calibrate(self) -> int:
        """Smallest nprobe whose recall@10 on query-like vectors hits the target.

        Stored vectors sit inside their clusters, so as queries they overstate recall (a
        target of 0.97 on them gave 0.947 on real short queries at 100k passages). Each
        calibration query is a stored vector pushed off it by random noise, to cosine ~0.5,
        as far as a short query of a few words falls from the passage it should find.
        """
        total = int(self._index.ntotal)
        rng = np.random.default_rng(self.seed + 1)
        rows = np.sort(rng.choice(total, size=min(total, _CALIBRATION_QUERIES), replace=False))
        keys, queries = _gather(self._index, rows)
        noise = rng.standard_normal(queries.shape).astype(np.float32)
        noise /= np.linalg.norm(noise, axis=1, keepdims=True)
        queries = queries + _CALIBRATION_NOISE * noise
        queries /= np.linalg.norm(queries, axis=1, keepdims=True)
        k = min(_CALIBRATION_K, total - 1)
        _, truth = exact_search(self._index, queries, k + 1)
        truth = _without(truth, keys, k)
        best = self.nlist
        self._calibrated_recall = 1.0
        for nprobe in (*(p for p in _NPROBE_STEPS if p < self.nlist), self.nlist):
            self._index.nprobe = nprobe
            _, found = self._index.search(queries, k + 1)
            # Each query is a stored vector: its own key is left out of both sides.
            recall = _recall(_without(found, keys, k), truth)
            if recall >= self.target_recall:
                best, self._calibrated_recall = nprobe, round(recall, 4)
                break
        return best

    # -- persistence ----------------------------------------------------------------------

    @staticmethod
    def _side_paths(path: Path) -> tuple[Path, Path]:
        return path.with_suffix(".json"), path.with_suffix(".tombstones.npy")

    def save(self, path: Path) -> None:
        """Write the index to ``path`` and its state beside it (``<stem>.json``,
        ``<stem>.tombstones.npy``); the JSON is written last and names what it belongs to.
        """
        faiss = _faiss()
        path = Path(path)
        meta_path, tomb_path = self._side_paths(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        meta_path.unlink(missing_ok=True)  # invalid until rewritten
        faiss.write_index(self._index, str(path))
        tombs = np.fromiter(self._tombstones, dtype=np.int64, count=len(self._tombstones))
        with tomb_path.open("wb") as fh:
            np.save(fh, np.sort(tombs), allow_pickle=False)
        meta = {
            "format": FORMAT, "dim": self.dim, "ntotal": int(self._index.ntotal),
            "tombstones": len(tombs), "nlist": self.nlist, "nprobe": self.nprobe,
            "trained_n": self._trained_n, "calibrated_recall": self._calibrated_recall,
            "config": {"approximate_above": self.approximate_above, "nprobe": self.fixed_nprobe,
                       "target_recall": self.target_recall, "nlist_factor": self.nlist_factor,
                       "compact_fraction": self.compact_fraction,
                       "retrain_growth": self.retrain_growth, "seed": self.seed},
        }
        tmp = meta_path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(meta, indent=2), encoding="utf-8")
        tmp.replace(meta_path)

    @classmethod
    def load(cls, path: Path, dim: int) -> DenseIndex:
        """Read an index written by :meth:`save`.

        Raises:
            StoreError: a file is missing, unreadable, inconsistent with the others or of
                another dimension.
        """
        faiss = _faiss()
        path = Path(path)
        meta_path, tomb_path = cls._side_paths(path)
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
            if meta["format"] != FORMAT:
                msg = (f"the dense index state {meta_path} has format {meta['format']}, "
                       f"expected {FORMAT}")
                raise StoreError(msg)
            out = cls(dim, **meta["config"])
            expect = {name: int(meta[name]) for name in ("dim", "ntotal", "nlist", "nprobe",
                                                         "tombstones", "trained_n")}
            recall = meta["calibrated_recall"]
            recall = None if recall is None else float(recall)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            msg = f"cannot read the dense index state {meta_path}: {exc}"
            raise StoreError(msg) from exc
        try:
            index = faiss.read_index(str(path))
        except RuntimeError as exc:
            msg = f"cannot read the dense index {path}: {exc}"
            raise StoreError(msg) from exc
        if index.d != dim or expect["dim"] != dim:
            msg = f"the dense index {path} has dim {index.d}, expected {dim}"
            raise StoreError(msg)
        ip = faiss.METRIC_INNER_PRODUCT
        if not isinstance(index, faiss.IndexIVFFlat) or index.metric_type != ip:
            msg = (f"the dense index {path} is a {type(index).__name__}, "
                   "not an inner-product IndexIVFFlat")
            raise StoreError(msg)
        if index.ntotal != expect["ntotal"] or index.nlist != expect["nlist"]:
            msg = (f"the dense index {path} holds {index.ntotal} vectors in {index.nlist} lists, "
                   f"but {meta_path} says {expect['ntotal']} in {expect['nlist']}")
            raise StoreError(msg)
        try:
            with tomb_path.open("rb") as fh:
                tombs = np.load(fh, allow_pickle=False)
        except (OSError, ValueError) as exc:
            msg = f"cannot read the dense index tombstones {tomb_path}: {exc}"
            raise StoreError(msg) from exc
        if tombs.dtype != np.int64 or tombs.ndim != 1 or len(tombs) != expect["tombstones"]:
            msg = (f"the dense index tombstones {tomb_path} hold {tombs.shape} {tombs.dtype}, "
                   f"expected {expect['tombstones']} int64 keys")
            raise StoreError(msg)
        if index.direct_map.type != faiss.DirectMap.Hashtable:
            index.set_direct_map_type(faiss.DirectMap.Hashtable)
        index.nprobe = expect["nprobe"]
        out._index = index
        out._tombstones = set(tombs.tolist())
        out._trained_n = expect["trained_n"]
        out._calibrated_recall = recall
        return out


# -- vectors back out of the index ----------------------------------------------------------


def _list_views(index: Any, list_no: int) -> tuple[np.ndarray, np.ndarray]:
    """The ids and vectors of one inverted list, as views: valid until the list changes."""
    faiss = _faiss()
    invlists = index.invlists
    size = invlists.list_size(list_no)
    if size == 0:
        return np.empty(0, dtype=np.int64), np.empty((0, index.d), dtype=np.float32)
    ids = faiss.rev_swig_ptr(invlists.get_ids(list_no), size)
    codes = faiss.rev_swig_ptr(invlists.get_codes(list_no), size * index.code_size)
    return ids, codes.view(np.float32).reshape(size, index.d)


def _iter_vectors(
    index: Any, skip: set[int] | None = None
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(ids, vectors) of an IVF index in chunks (copies), leaving out ``skip``."""
    skipped = np.sort(np.fromiter(skip, dtype=np.int64, count=len(skip))) if skip else None
    buf_ids: list[np.ndarray] = []
    buf_vecs: list[np.ndarray] = []
    held = 0
    for list_no in range(index.nlist):
        ids, vecs = _list_views(index, list_no)
        if skipped is not None:
            keep = ~np.isin(ids, skipped, assume_unique=True)
            ids, vecs = ids[keep], vecs[keep]
        for lo in range(0, len(ids), _CHUNK - held):
            part = slice(lo, lo + _CHUNK - held)
            buf_ids.append(ids[part])
            buf_vecs.append(vecs[part])
            held += len(buf_ids[-1])
            if held >= _CHUNK:
                yield np.concatenate(buf_ids), np.concatenate(buf_vecs)
                buf_ids, buf_vecs, held = [], [], 0
    if held:
        yield np.concatenate(buf_ids), np.concatenate(buf_vecs)


def _fill(index: Any, chunks: Callable[[], Iterator[tuple[np.ndarray, np.ndarray]]]) -> None:
    """Add every chunk to an empty IVF index, its lists reserved to their final sizes."""
    faiss = _faiss()
    # Assigning is the costly part of an add, so it is done once and kept (8 bytes a
    # vector); knowing the sizes first avoids the slack of lists grown by doubling.
    assigned = [
        np.zeros(len(ids), dtype=np.int64) if index.nlist == 1
        else index.quantizer.assign(vecs, 1).ravel().astype(np.int64)
        for ids, vecs in chunks()
    ]
    if not assigned:
        return
    sizes = np.bincount(np.concatenate(assigned), minlength=index.nlist)
    for list_no in np.flatnonzero(sizes):
        # std::vector keeps its capacity when shrunk: this reserves the list.
        index.invlists.resize(int(list_no), int(sizes[list_no]))
        index.invlists.resize(int(list_no), 0)
    for (ids, vecs), lists in zip(chunks(), assigned, strict=True):
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        vecs = np.ascontiguousarray(vecs, dtype=np.float32)
        index.add_core(len(ids), faiss.swig_ptr(vecs), faiss.swig_ptr(ids), faiss.swig_ptr(lists))


def _gather(index: Any, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(ids, vectors) at sorted global ``positions`` (list by list order)."""
    out_ids = np.empty(len(positions), dtype=np.int64)
    out = np.empty((len(positions), index.d), dtype=np.float32)
    sizes = np.array([index.invlists.list_size(i) for i in range(index.nlist)], dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(sizes)])
    lists = np.searchsorted(starts, positions, side="right") - 1
    bounds = np.searchsorted(lists, np.arange(index.nlist + 1))
    for list_no in np.flatnonzero(np.diff(bounds)):
        sel = slice(bounds[list_no], bounds[list_no + 1])
        ids, vecs = _list_views(index, int(list_no))
        offsets = positions[sel] - starts[list_no]
        out_ids[sel] = ids[offsets]
        out[sel] = vecs[offsets]
    return out_ids, out


def exact_search(
    index: Any, queries: np.ndarray, k: int, skip: set[int] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Brute-force top ``k`` (scores, ids) of ``queries`` over the vectors of an IVF index."""
    faiss = _faiss()
    queries = np.ascontiguousarray(queries, dtype=np.float32)
    heap = faiss.ResultHeap(len(queries), k, keep_max=True)
    for ids, vecs in _iter_vectors(index, skip):
        scores = queries @ vecs.T
        kk = min(k, len(ids))
        top = np.argpartition(-scores, kk - 1, axis=1)[:, :kk]
        heap.add_result(np.take_along_axis(scores, top, axis=1), ids[top])
    heap.finalize()
    return heap.D, heap.I


def _without(ids: np.ndarray, keys: np.ndarray, k: int) -> np.ndarray:
    """Each row of ``ids`` without its row's key, cut to ``k`` columns."""
    out = np.full((len(ids), k), -1, dtype=np.int64)
    for row, (found, key) in enumerate(zip(ids, keys, strict=True)):
        rest = found[found != key][:k]
        out[row, : len(rest)] = rest
    return out


def _recall(
    found: np.ndarray, truth: np.ndarray, found_scores: np.ndarray | None = None,
    truth_scores: np.ndarray | None = None,
) -> float:
    """Share of the true neighbours found; with scores, a hit tied with the k-th true
    neighbour counts too (which of several equal vectors is returned is arbitrary)."""
    hits = 0
    for row, (f, t) in enumerate(zip(found, truth, strict=True)):
        f, t = f[f != -1], t[t != -1]
        matched = set(f.tolist()) & set(t.tolist())
        if found_scores is not None and truth_scores is not None and len(t):
            cutoff = truth_scores[row, len(t) - 1] - 1e-6
            extra = len(f) - len(matched)
            scores = found_scores[row, : len(f)]
            ties = sum(1 for key, s in zip(f.tolist(), scores, strict=True)
                       if key not in matched and s >= cutoff)
            matched_count = len(matched) + min(ties, extra)
        else:
            matched_count = len(matched)
        hits += min(matched_count, len(t))
    wanted = int((truth != -1).sum())
    return hits / wanted if wanted else 1.0


def recall_at_k(index: DenseIndex, queries: np.ndarray, k: int = 10) -> float:
    """Recall@k of ``index.search`` against brute force over the same live vectors.

    Example:
        >>> import numpy as np
        >>> idx = DenseIndex(4)
        >>> vecs = np.eye(4, dtype=np.float32)
        >>> idx.add([1, 2, 3, 4], vecs)
        >>> recall_at_k(idx, vecs, k=2)
        1.0
    """
    if k < 1:
        msg = f"k must be a positive integer, got {k}"
        raise ConfigError(msg)
    queries = np.ascontiguousarray(queries, dtype=np.float32).reshape(-1, index.dim)
    if len(index) == 0 or len(queries) == 0:
        return 1.0
    kk = min(k, len(index))
    truth_scores, truth = exact_search(index._index, queries, kk, skip=index._tombstones)
    found = np.full((len(queries), kk), -1, dtype=np.int64)
    found_scores = np.full((len(queries), kk), -np.inf, dtype=np.float32)
    for row, query in enumerate(queries):
        hits = index.search(query, kk)
        found[row, : len(hits)] = [key for key, _ in hits]
        found_scores[row, : len(hits)] = [score for _, score in hits]
    return _recall(found, truth, found_scores, truth_scores)
