import functools
import json
import math
from collections import Counter

import numpy as np
import pytest

from rag.errors import ConfigError, StoreError
from rag.memory import sparse
from rag.memory.sparse import BM25Index
from rag.text import tokenize

DOCS = [
    "the eiffel tower is in paris",
    "rome has the colosseum and the forum",
    "bananas are yellow",
    "paris is the capital of france and paris has museums",
]


def lucene_bm25(query, docs, k1=1.2, b=0.75):
    """Reference BM25 computed the slow, obvious way."""
    toks = [tokenize(d) for d in docs]
    n, avgdl = len(docs), sum(len(t) for t in toks) / len(docs)
    scores = []
    for t in toks:
        s = 0.0
        for term in set(tokenize(query)):
            df = sum(term in d for d in toks)
            if not df:
                continue
            idf = math.log(1 + (n - df + 0.5) / (df + 0.5))
            tf = t.count(term)
            s += idf * tf / (tf + k1 * (1 - b + b * len(t) / avgdl))
        scores.append(s)
    return scores


def assert_same_ranking(got, expected):
    assert [k for k, _ in got] == [k for k, _ in expected]
    assert [s for _, s in got] == pytest.approx([s for _, s in expected])


def test_scores_match_reference_formula():
    idx = BM25Index()
    idx.add(list(range(len(DOCS))), DOCS)
    ref = lucene_bm25("paris tower museums", DOCS)
    got = dict(idx.search("paris tower museums", k=10))
    for key, score in enumerate(ref):
        if score > 0:
            assert got[key] == pytest.approx(score, rel=1e-5)
        else:
            assert key not in got


def test_two_document_corpus_still_scores():
    # rank_bm25's BM25Okapi gives all zeros here; Lucene idf does not.
    idx = BM25Index()
    idx.add([1, 2], ["alpha beta", "gamma delta"])
    assert idx.search("alpha", k=2)[0][0] == 1


def test_remove_and_replace():
    idx = BM25Index()
    idx.add([1, 2, 3], DOCS[:3])
    idx.remove([1])
    assert 1 not in idx and len(idx) == 2
    assert all(key != 1 for key, _ in idx.search("eiffel tower", k=3))
    idx.add([2], ["now about the eiffel tower"])
    assert idx.search("eiffel", k=1)[0][0] == 2
    assert len(idx) == 2


def test_compact_keeps_results():
    idx = BM25Index()
    idx.add(list(range(4)), DOCS)
    idx.remove([0, 2])
    before = idx.search("paris rome", k=5)
    idx.compact()
    assert idx.n_slots == 2
    assert_same_ranking(idx.search("paris rome", k=5), before)


def test_save_load_round_trip(tmp_path):
    idx = BM25Index(k1=1.5, b=0.6)
    idx.add([10, 20, 30, 40], DOCS)
    idx.remove([20])
    idx.save(tmp_path)
    loaded = BM25Index.load(tmp_path)
    assert_same_ranking(loaded.search("paris colosseum", k=4), idx.search("paris colosseum", k=4))
    loaded.add([50], ["colosseum colosseum"])
    assert loaded.search("colosseum", k=1)[0][0] == 50


def test_corrupt_files_raise_store_error(tmp_path):
    idx = BM25Index()
    idx.add([1, 2, 3], DOCS[:3])
    idx.save(tmp_path)
    (tmp_path / "bm25.npz").write_bytes(b"not an npz")
    with pytest.raises(StoreError, match="BM25"):
        BM25Index.load(tmp_path)


def test_bad_arguments():
    with pytest.raises(ConfigError, match="k1"):
        BM25Index(k1=-1)
    idx = BM25Index()
    with pytest.raises(ConfigError, match="3 keys for 2 texts"):
        idx.add([1, 2, 3], ["a", "b"])
    with pytest.raises(ConfigError, match="k must be"):
        idx.search("x", k=0)


def test_ties_are_broken_by_insertion_order():
    idx = BM25Index()
    idx.add([5, 3, 9], ["same words here", "same words here", "other"])
    assert [k for k, _ in idx.search("same words", k=2)] == [5, 3]


def test_scores_match_bm25s_lucene_on_larger_corpus():
    """Cross-check against an established implementation of the same formula."""
    bm25s = pytest.importorskip("bm25s")
    rng = np.random.default_rng(0)
    vocab = [f"w{i}" for i in range(300)]
    docs = [" ".join(rng.choice(vocab, size=rng.integers(5, 40))) for _ in range(400)]
    idx = BM25Index(k1=1.5, b=0.75)
    idx.add(list(range(len(docs))), docs)
    ref = bm25s.BM25(method="lucene", k1=1.5, b=0.75)
    ref.index([tokenize(d) for d in docs], show_progress=False)
    for q in ["w1 w2 w3", "w10 w200", "w299"]:
        expected = ref.get_scores(tokenize(q))
        for key, score in idx.search(q, k=50):
            assert score == pytest.approx(expected[key], rel=1e-4)


# -- the index against a brute-force scorer, through adds, removes, compactions, reloads --

VOCAB = [f"t{i}" for i in range(60)]
ZIPF = 1.0 / np.arange(1, len(VOCAB) + 1)  # a few very frequent terms, a long tail


@functools.cache
def _counts(text):
    return Counter(tokenize(text))


def brute_force(live, query, k, k1=1.2, b=0.75):
    """Top k of the Lucene formula over ``live`` (key -> text, in insertion order)."""
    if not live:
        return []
    toks = {key: _counts(text) for key, text in live.items()}
    n, avgdl = len(toks), sum(max(1, t.total()) for t in toks.values()) / len(toks)
    terms = set(tokenize(query))
    df = {term: sum(term in t for t in toks.values()) for term in terms}
    scored = []
    for order, (key, t) in enumerate(toks.items()):
        s = 0.0
        for term in terms:
            if df[term] and term in t:
                idf = math.log(1 + (n - df[term] + 0.5) / (df[term] + 0.5))
                tf = t[term]
                s += idf * tf / (tf + k1 * (1 - b + b * max(1, t.total()) / avgdl))
        if s > 0:
            scored.append((-s, order, key))
    return [(key, -neg) for neg, _, key in sorted(scored)[:k]]


def assert_matches_reference(got, expected):
    """Same scores rank by rank, same documents except among (near-)ties."""
    assert [s for _, s in got] == pytest.approx([s for _, s in expected], rel=1e-5)
    ref = dict(expected)
    cutoff = expected[-1][1] * (1 + 1e-5) if expected else 0.0
    for key, score in got:
        assert key in ref or score <= cutoff, (key, score)
    for key, score in expected:
        assert score <= cutoff or key in dict(got), (key, score)


def random_text(rng):
    words = rng.choice(VOCAB, size=int(rng.integers(1, 25)), p=ZIPF / ZIPF.sum())
    # stopwords and case are part of what the index sees through tokenize
    return " ".join(str(w).upper() if rng.random() < 0.1 else str(w) for w in words) + " the of"


def random_query(rng):
    words = list(rng.choice(VOCAB, size=int(rng.integers(1, 7)), p=ZIPF / ZIPF.sum()))
    words.append(VOCAB[-1 - int(rng.integers(0, 10))])  # a rare term: makes pruning possible
    if rng.random() < 0.2:
        words.append("unknownword")
    return " ".join(str(w) for w in words)


@pytest.mark.parametrize(("seed", "k1", "b", "sample"), [
    (0, 1.2, 0.75, None),
    (1, 1.5, 0.0, 16),  # no length normalisation; pruning thresholds from subsampled postings
    (2, 0.0, 0.75, 16),  # no tf saturation: every contribution is the idf
    (3, 0.9, 1.0, None),
])
def test_random_operations_match_brute_force(seed, k1, b, sample, tmp_path, monkeypatch):
    rng = np.random.default_rng(seed)
    if sample:
        monkeypatch.setattr(sparse, "_SAMPLE", sample)
    pruned = []
    original = BM25Index._add_for
    monkeypatch.setattr(BM25Index, "_add_for",
                        lambda self, *a: (pruned.append(1), original(self, *a))[1])
    idx = BM25Index(k1=k1, b=b)
    live: dict[int, str] = {}
    next_key = 0
    for step in range(45):
        op = rng.random()
        if op < 0.35:  # a bulk add (numpy path) or a few single adds, some replacing keys
            count = int(rng.integers(64, 120)) if rng.random() < 0.5 else int(rng.integers(1, 5))
            keys = []
            for _ in range(count):
                if live and rng.random() < 0.15:
                    keys.append(int(rng.choice(list(live))))
                else:
                    keys.append(next_key)
                    next_key += 1
            texts = [random_text(rng) for _ in keys]
            idx.add(keys, texts)
            for key, text in zip(keys, texts):
                live.pop(key, None)  # a replaced key moves to the end
                live[key] = text
        elif op < 0.6 and live:
            size = min(len(live), int(rng.integers(1, 30)))
            drop = [int(x) for x in rng.choice(list(live), size=size, replace=False)]
            idx.remove(drop + [10**9])  # unknown keys are ignored
            for key in drop:
                del live[key]
        elif op < 0.7:
            idx.compact()
            assert idx.n_slots == len(live)
        elif op < 0.75:
            idx.save(tmp_path / f"s{step}")
            idx = BM25Index.load(tmp_path / f"s{step}")
        assert len(idx) == len(live)
        for _ in range(3):
            query, k = random_query(rng), int(rng.choice([1, 3, 10, 50]))
            expected = brute_force(live, query, k, k1=k1, b=b)
            assert_matches_reference(idx.search(query, k=k), expected)
    assert pruned, "no query took the pruned path; the test lost its point"


def test_bulk_and_single_adds_build_the_same_index():
    rng = np.random.default_rng(5)
    texts = [random_text(rng) for _ in range(300)]
    bulk, single = BM25Index(), BM25Index()
    bulk.add(list(range(300)), texts)
    for key, text in enumerate(texts):
        single.add([key], [text])
    assert bulk._terms == single._terms
    assert bulk._docs == single._docs and bulk._tfs == single._tfs
    for q in ["t0 t1 t59", "t3", "t10 t20 t30"]:
        assert bulk.search(q, k=20) == single.search(q, k=20)


def test_pruning_keeps_exact_results_with_frequent_terms():
    # one rare term with a high idf, then terms present in nearly every document
    docs = [f"common{i % 3} filler{i % 7} everywhere" for i in range(2000)]
    docs[1234] += " needle needle"
    docs[77] += " needle"
    idx = BM25Index()
    idx.add(list(range(len(docs))), docs)
    query = "needle everywhere common0 filler3"
    expected = brute_force(dict(enumerate(docs)), query, 5)
    assert_matches_reference(idx.search(query, k=5), expected)
    assert [key for key, _ in idx.search(query, k=2)] == [1234, 77]


def test_save_load_after_removes(tmp_path):
    idx = BM25Index()
    idx.add(list(range(4)), DOCS)
    idx.add([10, 11], ["paris paris paris", "rome rome"])
    idx.remove([0, 10, 99])
    before = idx.search("paris rome colosseum", k=10)
    idx.save(tmp_path)
    loaded = BM25Index.load(tmp_path)
    assert len(loaded) == 4 and loaded.n_slots == 4 and 0 not in loaded and 10 not in loaded
    assert_same_ranking(loaded.search("paris rome colosseum", k=10), before)
    live = {1: DOCS[1], 2: DOCS[2], 3: DOCS[3], 11: "rome rome"}
    assert_matches_reference(loaded.search("paris rome", k=10), brute_force(live, "paris rome", 10))
    loaded.remove([11])
    loaded.add([0], ["the eiffel tower again"])
    del live[11]
    live[0] = "the eiffel tower again"
    expected = brute_force(live, "eiffel rome", 10)
    assert_matches_reference(loaded.search("eiffel rome", k=10), expected)


def test_removing_every_document():
    idx = BM25Index()
    idx.add([1, 2], ["alpha beta", "beta gamma"])
    idx.remove([1, 2])
    assert len(idx) == 0 and idx.search("beta", k=3) == []
    idx.compact()
    assert idx.n_slots == 0 and idx.n_terms == 0
    idx.add([3], ["gamma"])
    assert idx.search("gamma beta", k=3)[0][0] == 3


def test_held_numpy_views_do_not_block_writes():
    # A view kept alive (say by a traceback holding a search frame) pins an array's memory.
    idx = BM25Index()
    idx.add([1, 2], ["alpha beta", "beta gamma"])
    held = [np.frombuffer(a, dtype=np.int32) for a in idx._docs]
    held += [np.frombuffer(idx._keys, dtype=np.int64),
             np.frombuffer(idx._lengths, dtype=np.float32)]
    idx.add(list(range(10, 80)), ["beta epsilon"] * 70)  # the bulk path
    held += [np.frombuffer(a, dtype=np.int32) for a in idx._tfs]
    idx.add([3], ["beta delta"])
    idx.remove([1])
    held.append(np.frombuffer(idx._dead, dtype=np.int32))
    idx.remove([2])
    assert [key for key, _ in idx.search("delta", k=5)] == [3]
    assert len(idx.search("beta", k=100)) == 71


@pytest.mark.parametrize(("name", "change", "message"), [
    ("docs", lambda a: a[::-1].copy(), "out of order"),
    ("docs", lambda a: a + 5, "outside the documents"),
    ("keys", lambda a: np.zeros_like(a), "duplicate document keys"),
    ("sizes", lambda a: a[:-1], "disagree"),
    ("lengths", lambda a: -a, "not all positive"),
    ("tfs", lambda a: a * 0, "below 1"),
])
def test_inconsistent_saved_index_raises_store_error(tmp_path, name, change, message):
    idx = BM25Index()
    idx.add([1, 2, 3], ["alpha beta", "alpha gamma", "alpha"])
    idx.save(tmp_path)
    with np.load(tmp_path / "bm25.npz") as data:
        arrays = dict(data)
    arrays[name] = change(arrays[name])
    np.savez(tmp_path / "bm25.npz", **arrays)
    with pytest.raises(StoreError, match=message):
        BM25Index.load(tmp_path)


def test_saved_index_of_another_format_raises_store_error(tmp_path):
    idx = BM25Index()
    idx.add([1], ["alpha"])
    idx.save(tmp_path)
    meta = json.loads((tmp_path / "bm25.json").read_text(encoding="utf-8"))
    meta["format"] = 99
    (tmp_path / "bm25.json").write_text(json.dumps(meta), encoding="utf-8")
    with pytest.raises(StoreError, match="format 99"):
        BM25Index.load(tmp_path)


def test_concurrent_adds_and_searches():
    import threading

    idx = BM25Index()
    idx.add(list(range(200)), [f"word{i % 10} shared" for i in range(200)])
    errors = []

    def writer():
        try:
            for i in range(200, 600):
                idx.add([i], [f"word{i % 10} shared extra"])
                if i % 3 == 0:
                    idx.remove([i - 100])
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    thread = threading.Thread(target=writer)
    thread.start()
    while thread.is_alive():
        assert len(idx.search("word3 shared", k=10)) == 10
    thread.join()
    assert not errors
    live = {i: f"word{i % 10} shared" + (" extra" if i >= 200 else "") for i in range(600)}
    for i in range(200, 600):
        if i % 3 == 0:
            live.pop(i - 100)
    expected = brute_force(live, "word3 shared", 10)
    assert_matches_reference(idx.search("word3 shared", k=10), expected)
