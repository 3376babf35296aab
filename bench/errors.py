"""Errors the CLI turns into one clear message (never a raw traceback)."""

from __future__ import annotations

from pathlib import Path


class BenchError(Exception):
    """Base class: a user-facing problem with a clear message and, where useful, a fix."""

    def __init__(self, message: str, *, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message}\n  -> {self.hint}"


class AudioError(BenchError):
    """A problem with one audio file: names the file and the problem."""

    def __init__(self, path: str | Path, problem: str, *, hint: str | None = None):
        self.path = Path(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}", hint=hint)


class DataError(BenchError):
    """A problem with a corpus, a layout, a split or a manifest."""


class ManifestMismatch(DataError):
    """Files under a frozen manifest are missing or changed."""

    def __init__(self, message: str, missing: list[str], changed: list[str], *, hint: str | None = None):
        self.missing = missing
        self.changed = changed
        super().__init__(message, hint=hint)


class ResultsError(BenchError):
    """A results folder that does not validate or does not match the current benchmark."""


class AdapterError(BenchError):
    """An adapter that cannot be found, imported or does not follow the contract."""
