"""The run folder every evaluation writes, and the seeding helper.

One folder per run::

    config.json        the configuration, as given
    manifest.json      versions, git SHA, seed, models, platform, times, command line, status
    predictions.jsonl  one JSON object per question, appended as soon as it is known
    metrics.json       {"runs": [{"config": NAME, <label>: ..., <metric>: value, ...}, ...]}
    summary.md         markdown tables (by default, one row per metrics row)
    run.trec           optional TREC run file: ``qid Q0 docid rank score tag``
    *.png              optional plots (skipped when matplotlib is not installed)

JSON has no NaN or infinity, so non-finite numbers are written as ``null``.

Example:
    >>> import json, tempfile
    >>> from pathlib import Path
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     with RunWriter(Path(tmp) / "run", {"k": 5}, seed=0, models={"generator": "fake"}) as w:
    ...         w.add_prediction({"question": "Where is the Eiffel Tower?", "answer": "Paris"})
    ...         w.add_metrics("baseline", {"em": 1.0}, attack="none")
    ...     json.loads((Path(tmp) / "run" / "metrics.json").read_text())
    {'runs': [{'config': 'baseline', 'attack': 'none', 'em': 1.0}]}
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import platform
import random
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np

from rag.errors import ConfigError
from rag.metrics import rank_documents

logger = logging.getLogger(__name__)

#: Distributions whose versions the manifest records, keyed by the name shown there.
TRACKED_PACKAGES: dict[str, str] = {
    "rag": "rag-conflicts",
    "torch": "torch",
    "transformers": "transformers",
    "sentence-transformers": "sentence-transformers",
    "faiss-cpu": "faiss-cpu",
    "langchain-core": "langchain-core",
    "numpy": "numpy",
}

CONFIG_FILE = "config.json"
MANIFEST_FILE = "manifest.json"
PREDICTIONS_FILE = "predictions.jsonl"
METRICS_FILE = "metrics.json"
SUMMARY_FILE = "summary.md"
_OWN_FILES = (CONFIG_FILE, MANIFEST_FILE, PREDICTIONS_FILE, METRICS_FILE, SUMMARY_FILE, "run.trec")


def set_seed(seed: int) -> None:
    """Seed Python's ``random``, numpy's global generator and, if imported, torch.

    torch is seeded only when something has already imported it, so that seeding does not
    pay torch's import time in runs that never use it; call this after importing models.

    Args:
        seed: An integer in [0, 2**32).

    Raises:
        ConfigError: If ``seed`` is not such an integer.

    Example:
        >>> set_seed(13); a = random.random(); set_seed(13)
        >>> a == random.random()
        True
    """
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or not 0 <= seed < 2**32:
        msg = f"seed must be an integer in [0, 2**32), got {seed!r}"
        raise ConfigError(msg)
    random.seed(int(seed))
    np.random.seed(int(seed))  # code under evaluation may use the global RNG
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.manual_seed(int(seed))  # seeds every device, CUDA included


def _jsonable(value: Any, where: str) -> Any:
    """``value`` as plain JSON types; ``where`` names it in error messages."""
    if value is None or isinstance(value, str | bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, np.generic):
        return _jsonable(value.item(), where)
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist(), where)
    if isinstance(value, Path):
        return str(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _jsonable(dataclasses.asdict(value), where)
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v, f"{where}[{k!r}]") for k, v in value.items()}
    if isinstance(value, set | frozenset):
        # Sorted so that the same set always writes the same file.
        return sorted((_jsonable(v, where) for v in value), key=repr)
    if isinstance(value, list | tuple):
        return [_jsonable(v, f"{where}[{i}]") for i, v in enumerate(value)]
    msg = f"{where} holds a {type(value).__name__} ({value!r:.60}), which cannot be written as JSON"
    raise ConfigError(msg)


def _write_atomic(path: Path, text: str) -> None:
    # Write-then-rename, so a crash never leaves a half-written JSON file behind.
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _plain_name(filename: str, what: str, suffix: str = "") -> str:
    if not filename or Path(filename).name != filename or filename in (".", ".."):
        msg = f"{what} must be a plain file name inside the run folder, got {filename!r}"
        raise ConfigError(msg)
    if suffix and not filename.endswith(suffix):
        msg = f"{what} must end with {suffix}, got {filename!r}"
        raise ConfigError(msg)
    return filename


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _git(*args: str) -> str | None:
    try:
        done = subprocess.run(
            ["git", *args], capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout if done.returncode == 0 else None


def _package_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {}
    for shown, dist in TRACKED_PACKAGES.items():
        try:
            versions[shown] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[shown] = None
    return versions


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4f}" if abs(value) < 1000 else f"{value:.1f}"
    return str(value).replace("|", "\\|")


def _flatten(row: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    # Nested metrics (source_adoption per source) become dotted columns in the tables.
    flat: dict[str, Any] = {}
    for key, value in row.items():
        if isinstance(value, Mapping):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def markdown_table(rows: Sequence[Mapping[str, Any]]) -> str:
    """A GitHub-flavoured markdown table; columns in first-seen order, nested keys dotted.

    Example:
        >>> print(markdown_table([{"config": "a", "em": 0.5}, {"config": "b", "f1": 1.0}]))
        | config | em | f1 |
        |---|---|---|
        | a | 0.5000 |  |
        | b |  | 1.0000 |
    """
    flat = [_flatten(r) for r in rows]
    columns = list(dict.fromkeys(c for r in flat for c in r))
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_cell(r.get(c)) for c in columns) + " |" for r in flat]
    return "\n".join(lines)


class RunWriter:
    """Writes one evaluation run's folder as the run goes.

    ``config.json`` and a first ``manifest.json`` (status ``running``) are written at once;
    predictions are appended line by line; ``metrics.json`` is rewritten after every
    :meth:`add_metrics`; :meth:`finish` writes the summary and completes the manifest.
    Used as a context manager, the run is finished on exit, with status ``failed`` and the
    error when an exception escapes.

    Args:
        out_dir: The run folder; created if missing.
        config: The run's configuration (JSON-serialisable; paths and numpy values are
            converted).
        seed: The seed the run used (see :func:`set_seed`).
        models: Model names by role, such as ``{"generator": ..., "embedder": ...}``.
        overwrite: Allow a non-empty ``out_dir``: the files a run writes (and the plots the
            old manifest lists) are replaced; other files are left alone.
        command: The command line to record; ``sys.argv`` by default.

    Raises:
        ConfigError: If ``out_dir`` is a file, or a non-empty folder without ``overwrite``,
            or ``config`` cannot be written as JSON.

    Example:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     w = RunWriter(tmp, {"k": 5}, seed=0, models={})
        ...     w.add_prediction({"question": "q", "answer": "a"})
        ...     sorted(p.name for p in w.finish().iterdir())
        ['config.json', 'manifest.json', 'metrics.json', 'predictions.jsonl', 'summary.md']
    """

    def __init__(
        self,
        out_dir: str | os.PathLike[str],
        config: Mapping[str, Any],
        seed: int,
        models: Mapping[str, str] | None = None,
        *,
        overwrite: bool = False,
        command: Sequence[str] | None = None,
    ) -> None:
        self.out_dir = Path(out_dir)
        config_json = json.dumps(_jsonable(dict(config), "config"), indent=2, ensure_ascii=False)
        self._prepare_folder(overwrite)
        self.rows: list[dict[str, Any]] = []
        self.n_predictions = 0
        self._files: list[str] = []
        self._finished = False
        self._started = time.monotonic()
        self.manifest: dict[str, Any] = {
            "run": self.out_dir.name,
            "status": "running",
            "error": None,
            "start_time": _now(),
            "end_time": None,
            "duration_s": None,
            "seed": seed,
            "models": _jsonable(dict(models or {}), "models"),
            "command": list(sys.argv if command is None else command),
            "cwd": os.getcwd(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "packages": _package_versions(),
            "git_sha": (_git("rev-parse", "HEAD") or "").strip() or None,
            "git_dirty": None,
            "n_predictions": 0,
            "files": self._files,
        }
        if self.manifest["git_sha"]:
            status = _git("status", "--porcelain", "--untracked-files=no")
            self.manifest["git_dirty"] = None if status is None else bool(status.strip())
        _write_atomic(self.out_dir / CONFIG_FILE, config_json + "\n")
        self._record(CONFIG_FILE)
        # Created empty now, so a run that crashes before its first answer still parses.
        (self.out_dir / PREDICTIONS_FILE).write_text("", encoding="utf-8")
        self._record(PREDICTIONS_FILE)
        self._write_manifest()
        logger.info("writing run to %s", self.out_dir)

    # ------------------------------------------------------------------ set-up

    def _prepare_folder(self, overwrite: bool) -> None:
        if self.out_dir.exists() and not self.out_dir.is_dir():
            msg = f"run folder {self.out_dir} exists and is not a folder"
            raise ConfigError(msg)
        if self.out_dir.is_dir() and any(self.out_dir.iterdir()):
            if not overwrite:
                msg = f"run folder {self.out_dir} is not empty; use a new folder or overwrite=True"
                raise ConfigError(msg)
            stale = set(_OWN_FILES)
            try:
                old = json.loads((self.out_dir / MANIFEST_FILE).read_text(encoding="utf-8"))
                listed = old.get("files", [])
                stale.update(n for n in listed if isinstance(n, str) and Path(n).name == n)
            except (OSError, ValueError, AttributeError):
                pass  # no readable old manifest: only the fixed names are ours to remove
            for name in stale:
                (self.out_dir / name).unlink(missing_ok=True)
            logger.info("overwriting run folder %s", self.out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)

    def _record(self, name: str) -> None:
        if name not in self._files:
            self._files.append(name)

    def _check_open(self) -> None:
        if self._finished:
            msg = f"run {self.out_dir} is finished; start a new RunWriter to write more"
            raise ConfigError(msg)

    def _write_manifest(self) -> None:
        text = json.dumps(_jsonable(self.manifest, "manifest"), indent=2, ensure_ascii=False)
        _write_atomic(self.out_dir / MANIFEST_FILE, text + "\n")
        self._record(MANIFEST_FILE)

    def _write_metrics(self) -> None:
        text = json.dumps({"runs": self.rows}, indent=2, ensure_ascii=False)
        _write_atomic(self.out_dir / METRICS_FILE, text + "\n")
        self._record(METRICS_FILE)

    # ------------------------------------------------------------------ writing

    def add_prediction(self, record: Mapping[str, Any]) -> None:
        """Append one question's record to ``predictions.jsonl`` right away.

        Args:
            record: The question, retrieved passages, answer, source, gold answers and so
                on; dataclasses, paths and numpy values are converted.

        Raises:
            ConfigError: If ``record`` cannot be written as JSON, or the run is finished.
        """
        self._check_open()
        line = json.dumps(_jsonable(dict(record), "prediction"), ensure_ascii=False)
        # One write per line on a freshly opened file: a crash loses at most this line.
        with (self.out_dir / PREDICTIONS_FILE).open("a", encoding="utf-8") as f:
            f.write(line + "\n")
        self.n_predictions += 1

    def add_metrics(self, config_name: str, metrics: Mapping[str, Any], **labels: Any) -> None:
        """Add one row to ``metrics.json`` (rewritten at once) and the default summary.

        Args:
            config_name: The configuration the metrics belong to (the row's ``config``).
            metrics: Metric name to value, such as ``{"em": 0.61, "recall@5": 0.8}``;
                a value may be a mapping (``source_adoption``).
            **labels: Conditions of the row, such as ``attack="poisonedrag", ratio=0.2``;
                they come before the metrics in the row.

        Raises:
            ConfigError: On an empty name, a metric named like a label or ``config``,
                values that cannot be written as JSON, or a finished run.

        Example:
            >>> import tempfile
            >>> with tempfile.TemporaryDirectory() as tmp:
            ...     w = RunWriter(tmp, {}, seed=0)
            ...     w.add_metrics("guarded", {"asr": 0.1}, attack="poisonedrag", ratio=0.2)
            ...     w.rows
            [{'config': 'guarded', 'attack': 'poisonedrag', 'ratio': 0.2, 'asr': 0.1}]
        """
        self._check_open()
        if not isinstance(config_name, str) or not config_name:
            msg = f"config_name must be a non-empty string, got {config_name!r}"
            raise ConfigError(msg)
        clashes = sorted(((set(metrics) | set(labels)) & {"config"}) | (set(metrics) & set(labels)))
        if clashes:
            msg = f"metric and label names must differ from each other and from 'config': {clashes}"
            raise ConfigError(msg)
        row = {"config": config_name, **labels, **metrics}
        self.rows.append(_jsonable(row, f"metrics of {config_name!r}"))
        self._write_metrics()

    def write_trec(self, run: Mapping[str, Mapping[str, float]], tag: str,
                   filename: str = "run.trec") -> Path:
        """Write a TREC run file: ``qid Q0 docid rank score tag``, ranked as trec_eval does.

        Documents are ranked by score descending, then docid descending, so the rank column
        agrees with the order trec_eval itself would use.

        Args:
            run: qid -> docid -> score.
            tag: The run's name in the last column.
            filename: File name inside the run folder.

        Returns:
            The file's path.

        Raises:
            ConfigError: If the tag, a qid or a docid is empty or holds whitespace, or a
                score is not finite.

        Example:
            >>> import tempfile
            >>> with tempfile.TemporaryDirectory() as tmp:
            ...     w = RunWriter(tmp, {}, seed=0)
            ...     path = w.write_trec({"q1": {"d1": 0.5, "d2": 0.9}}, "bm25")
            ...     print(path.read_text(), end="")
            q1 Q0 d2 1 0.9 bm25
            q1 Q0 d1 2 0.5 bm25
        """
        self._check_open()
        _plain_name(filename, "TREC file name")

        def field(value: Any, what: str) -> str:
            text = str(value)
            if not text or any(c.isspace() for c in text):
                msg = f"TREC {what} must be non-empty without whitespace, got {text!r}"
                raise ConfigError(msg)
            return text

        tag = field(tag, "tag")
        lines = []
        for qid, scores in run.items():
            q = field(qid, "qid")
            for rank, (docid, score) in enumerate(rank_documents(scores), start=1):
                # repr keeps every digit, so tied and near-tied scores stay as they were.
                lines.append(f"{q} Q0 {field(docid, 'docid')} {rank} {score!r} {tag}\n")
        path = self.out_dir / filename
        _write_atomic(path, "".join(lines))
        self._record(filename)
        return path

    def plot_lines(
        self,
        filename: str,
        title: str,
        x_label: str,
        y_label: str,
        series: Mapping[str, Sequence[tuple[float, float]]],
        *,
        joined: bool = True,
    ) -> Path | None:
        """Save a line plot of named ``(x, y)`` series as a PNG, if matplotlib is installed.

        Args:
            filename: A ``.png`` file name inside the run folder.
            title: The plot's title.
            x_label: The x axis label.
            y_label: The y axis label.
            series: Line name to its points, in drawing order.
            joined: Join each series' points by a line (off: a scatter plot).

        Returns:
            The file's path, or None when matplotlib is missing (the skip is logged).

        Raises:
            ConfigError: On a bad file name, no series, or a point that is not an (x, y) pair.

        Example:
            >>> import tempfile
            >>> with tempfile.TemporaryDirectory() as tmp:
            ...     w = RunWriter(tmp, {}, seed=0)
            ...     path = w.plot_lines("asr.png", "ASR", "poison ratio", "asr",
            ...                         {"guarded": [(0.0, 0.0), (0.2, 0.1)]})
            ...     path is None or path.name == "asr.png"
            True
        """
        self._check_open()
        _plain_name(filename, "plot file name", ".png")
        if not series:
            msg = f"plot {filename} needs at least one series"
            raise ConfigError(msg)
        lines: dict[str, tuple[list[float], list[float]]] = {}
        for name, points in series.items():
            pairs = list(points)
            if any(not isinstance(p, Sequence) or len(p) != 2 for p in pairs):
                msg = f"series {name!r} of plot {filename} must hold (x, y) pairs"
                raise ConfigError(msg)
            lines[str(name)] = ([p[0] for p in pairs], [p[1] for p in pairs])
        try:
            # The Figure API, not pyplot: no global backend or figure state is touched.
            from matplotlib.figure import Figure
        except ImportError:
            logger.info("matplotlib is not installed; skipping plot %s", filename)
            return None
        fig = Figure(figsize=(6.4, 4.0))
        ax = fig.subplots()
        markers = "osD^vP*Xh<>"
        for i, (name, (xs, ys)) in enumerate(lines.items()):
            ax.plot(xs, ys, marker=markers[i % len(markers)], label=name, linestyle="-" if joined else "none",
                    alpha=1.0 if joined else 0.8)
        ax.set_title(title)
        ax.set_xlabel(x_label)
        ax.set_ylabel(y_label)
        ax.grid(alpha=0.3)
        ax.legend()
        fig.tight_layout()
        path = self.out_dir / filename
        fig.savefig(path, dpi=120)
        self._record(filename)
        return path

    def plot_points(
        self,
        filename: str,
        title: str,
        x_label: str,
        y_label: str,
        series: Mapping[str, Sequence[tuple[float, float]]],
    ) -> Path | None:
        """:meth:`plot_lines` with the points not joined (they are conditions, not a curve);
        each set has its own colour and marker.

        Example:
            >>> import tempfile
            >>> with tempfile.TemporaryDirectory() as tmp:
            ...     w = RunWriter(tmp, {}, seed=0)
            ...     path = w.plot_points("rc.png", "risk", "abstained", "accuracy", {"a": [(0.1, 0.5)]})
            ...     path is None or path.name == "rc.png"
            True
        """
        return self.plot_lines(filename, title, x_label, y_label, series, joined=False)

    def plot_bars(
        self,
        filename: str,
        title: str,
        y_label: str,
        groups: Mapping[str, Mapping[str, float | None]],
    ) -> Path | None:
        """Save a grouped bar chart as a PNG, if matplotlib is installed.

        Args:
            filename: A ``.png`` file name inside the run folder.
            title: The plot's title.
            y_label: The y axis label.
            groups: Group name (a configuration, say) to its bars, name to height; bars
                are coloured by name across groups. ``None`` or NaN draws no bar.

        Returns:
            The file's path, or None when matplotlib is missing (the skip is logged).

        Raises:
            ConfigError: On a bad file name, no groups, or a height that is not a number.

        Example:
            >>> import tempfile
            >>> with tempfile.TemporaryDirectory() as tmp:
            ...     w = RunWriter(tmp, {}, seed=0)
            ...     path = w.plot_bars("em.png", "EM", "score", {"full": {"em": 0.5, "f1": 0.6}})
            ...     path is None or path.name == "em.png"
            True
        """
        self._check_open()
        _plain_name(filename, "plot file name", ".png")
        if not groups:
            msg = f"plot {filename} needs at least one group"
            raise ConfigError(msg)
        bars = list(dict.fromkeys(name for heights in groups.values() for name in heights))
        for group, heights in groups.items():
            for name, value in heights.items():
                if value is not None and (isinstance(value, bool) or not isinstance(value, int | float | np.number)):
                    msg = f"bar {name!r} of group {group!r} in plot {filename} must be a number, got {value!r}"
                    raise ConfigError(msg)
        try:
            from matplotlib.figure import Figure
        except ImportError:
            logger.info("matplotlib is not installed; skipping plot %s", filename)
            return None
        fig = Figure(figsize=(max(6.4, 1.1 * len(groups) * max(1, len(bars)) ** 0.5 + 2), 4.0))
        ax = fig.subplots()
        width = 0.8 / max(1, len(bars))
        for i, name in enumerate(bars):
            xs = [g + (i - (len(bars) - 1) / 2) * width for g in range(len(groups))]
            ys = [float("nan") if h.get(name) is None else float(h[name]) for h in groups.values()]
            ax.bar(xs, ys, width, label=name)
        ax.set_xticks(range(len(groups)), [str(g) for g in groups], rotation=20, ha="right")
        ax.set_title(title)
        ax.set_ylabel(y_label)
        ax.grid(axis="y", alpha=0.3)
        ax.legend()
        fig.tight_layout()
        path = self.out_dir / filename
        fig.savefig(path, dpi=120)
        self._record(filename)
        return path

    def finish(self, summary_md: str | None = None, *, status: str = "completed",
               error: str | None = None) -> Path:
        """Write ``metrics.json``, ``summary.md`` and the final manifest; return the folder.

        Args:
            summary_md: The summary's markdown; by default a header with the seed and
                models and a table of the metrics rows.
            status: Recorded in the manifest (``completed`` or ``failed``).
            error: What went wrong, for a failed run.

        Raises:
            ConfigError: If the run is already finished.
        """
        self._check_open()
        self._finished = True
        self._write_metrics()
        self.manifest.update(
            status=status,
            error=error,
            end_time=_now(),
            duration_s=round(time.monotonic() - self._started, 3),
            n_predictions=self.n_predictions,
        )
        if summary_md is None:
            summary_md = self._default_summary()
        _write_atomic(self.out_dir / SUMMARY_FILE, summary_md.rstrip("\n") + "\n")
        self._record(SUMMARY_FILE)
        self._write_manifest()
        logger.info("run %s %s: %d predictions, %d metrics rows",
                    self.out_dir, status, self.n_predictions, len(self.rows))
        return self.out_dir

    def _default_summary(self) -> str:
        m = self.manifest
        models = ", ".join(f"{role}: `{name}`" for role, name in m["models"].items()) or "none"
        parts = [
            f"# Run `{m['run']}`",
            "",
            f"- status: {m['status']}" + (f" ({m['error']})" if m.get("error") else ""),
            f"- seed: {m['seed']}",
            f"- models: {models}",
            f"- predictions: {self.n_predictions}",
            f"- started {m['start_time']}, finished {m['end_time']} ({m['duration_s']} s)",
            f"- git: {m['git_sha'] or 'unknown'}" + (" (dirty)" if m["git_dirty"] else ""),
            "",
            "## Metrics",
            "",
            markdown_table(self.rows) if self.rows else "No metrics recorded.",
        ]
        return "\n".join(parts)

    # ------------------------------------------------------------------ context manager

    def __enter__(self) -> RunWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._finished:
            return
        if exc is None:
            self.finish()
        else:
            self.finish(status="failed", error=f"{type(exc).__name__}: {exc}")
