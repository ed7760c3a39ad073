"""The answer cache: a recent answer stands until the store changes."""

from __future__ import annotations

from collections import OrderedDict

from rag.types import Answer, Query


class AnswerCache:
    """Recent answers by question, namespace and user facts, each valid for the store
    version it was answered at (any write to the store makes it stale).

    Args:
        size: How many answers are kept; the one written longest ago goes first.

    Example:
        >>> cache = AnswerCache(size=8)
        >>> cache.put(Query("Who founded  Varnholm?"), 3, Answer("Ana Quell", "corpus"))
        >>> cache.get(Query("who founded Varnholm?"), 3).text
        'Ana Quell'
        >>> cache.get(Query("who founded Varnholm?"), 4) is None  # the store changed since
        True
    """

    def __init__(self, size: int = 1024) -> None:
        self.size = size
        self._answers: OrderedDict[tuple, tuple[int, Answer]] = OrderedDict()

    @staticmethod
    def _key(q: Query) -> tuple:
        """The same question up to spacing and case, in the same namespace, with the same facts."""
        return (q.namespace, " ".join(q.question.split()).lower(), q.user_facts)

    def get(self, query: Query, version: int) -> Answer | None:
        """The answer given to ``query`` at store ``version``, if it is still kept."""
        hit = self._answers.get(self._key(query))
        return hit[1] if hit is not None and hit[0] == version else None

    def put(self, query: Query, version: int, answer: Answer) -> None:
        """Keep ``answer`` to ``query`` at store ``version``."""
        key = self._key(query)
        self._answers[key] = (version, answer)
        self._answers.move_to_end(key)
        while len(self._answers) > self.size:
            self._answers.popitem(last=False)
