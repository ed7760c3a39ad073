"""Evaluation support: the run folder every evaluation writes, and seeding.

Example:
    >>> import tempfile
    >>> from rag.evaluation import RunWriter
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     writer = RunWriter(f"{tmp}/run", {"k": 5}, seed=0, models={})
    ...     writer.add_metrics("baseline", {"em": 0.5})
    ...     writer.finish().name
    'run'
"""

from rag.evaluation.runs import RunWriter, set_seed

__all__ = ["RunWriter", "set_seed"]
