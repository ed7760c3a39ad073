"""The answer cache apart from the pipeline: invented questions, no models."""

from rag.stages.cache import AnswerCache
from rag.types import Answer, Query

Q = "Who founded the harbour of Varnholm?"


def test_the_same_question_up_to_spacing_and_case_is_served_at_the_same_store_version():
    cache = AnswerCache()
    answer = Answer("Ana Quell", "corpus")
    cache.put(Query(Q), 7, answer)
    assert cache.get(Query("who founded the  harbour of VARNHOLM?"), 7) is answer
    assert cache.get(Query(Q), 8) is None  # a write since: stale


def test_namespace_and_user_facts_are_part_of_the_question():
    cache = AnswerCache()
    cache.put(Query(Q, namespace="ana"), 1, Answer("Ana Quell", "memory"))
    assert cache.get(Query(Q), 1) is None
    assert cache.get(Query(Q, ("Ana Quell founded the harbour.",), namespace="ana"), 1) is None
    assert cache.get(Query(Q, namespace="ana"), 1).text == "Ana Quell"


def test_the_answer_written_longest_ago_goes_first():
    cache = AnswerCache(size=2)
    for i, town in enumerate(["Varnholm", "Duskmere", "Marrowgate"]):
        cache.put(Query(f"Who founded {town}?"), 1, Answer(f"founder {i}", "corpus"))
    assert cache.get(Query("Who founded Varnholm?"), 1) is None
    assert cache.get(Query("Who founded Marrowgate?"), 1).text == "founder 2"
    # an answer written anew is the one kept longest
    cache.put(Query("Who founded Duskmere?"), 1, Answer("again", "corpus"))
    cache.put(Query("Who founded Osk?"), 1, Answer("founder 3", "corpus"))
    assert cache.get(Query("Who founded Marrowgate?"), 1) is None
    assert cache.get(Query("Who founded Duskmere?"), 1).text == "again"
