"""Error hierarchy.

Every error the library raises on purpose derives from :class:`RagError` and from the
builtin it refines, so callers can catch either (``except ValueError`` still works).
Stages that make judgements (filter, detector, arbiter) return decision records instead
of raising.
"""

from __future__ import annotations


class RagError(Exception):
    """Root of the library's errors."""


class ConfigError(RagError, ValueError):
    """A constructor or call argument is invalid."""


class InputFormatError(RagError, ValueError):
    """An input file or record is malformed. The message names the file and line."""


class EmptyCorpusError(RagError, ValueError):
    """A corpus to ingest holds no passages."""


class StoreNotFoundError(RagError, FileNotFoundError):
    """A store folder does not exist or holds no store."""


class StoreError(RagError, RuntimeError):
    """A store is in a state that prevents the operation (other embedder, corrupt file)."""


class MissingDependencyError(RagError, ImportError):
    """An optional package is not installed. The message names the pip command."""


class ModelLoadError(RagError, RuntimeError):
    """A model file or folder could not be loaded."""
