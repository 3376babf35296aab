"""Errors the CLI turns into one clear message (never a raw traceback)."""

from __future__ import annotations

import errno
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


#: what to do about the OSErrors a user causes (a folder that cannot be written, a full disk, ...)
_OS_HINTS = {
    "EACCES": "no permission: choose a folder you can write to, or change its permissions",
    "EPERM": "operation not permitted here: choose another folder",
    "EROFS": "the file system is read-only: choose another folder",
    "ENOSPC": "the disk is full: free some space or choose a folder on another disk",
    "EDQUOT": "the disk quota is exhausted: free some space or choose another folder",
    "EFBIG": "the file is too large for this file system or the file size limit (ulimit -f)",
    "ENOENT": "a folder on this path does not exist",
    "ENOTDIR": "a part of this path is a file, not a folder",
    "EISDIR": "this is a folder, a file was expected",
    "EEXIST": "something already exists at this path",
    "ENAMETOOLONG": "the path is too long",
}


def os_error_message(exc: OSError) -> BenchError:
    """A `BenchError` for an `OSError`: the path(s), the reason and what to do about it."""
    reason = exc.strerror or str(exc) or exc.__class__.__name__
    name = errno.errorcode.get(exc.errno or -1)
    if name == "EEXIST" and exc.filename is not None and Path(exc.filename).is_file():
        reason, name = "is a file, not a folder", "ENOTDIR"   # mkdir(parents=True) through a file
    where = None if exc.filename is None else str(exc.filename)
    if where is not None and exc.filename2 is not None:
        where += f" -> {exc.filename2}"
    msg = f"{where}: {reason}" if where else f"{reason} ({name or exc.__class__.__name__}; no file name given)"
    return BenchError(msg, hint=_OS_HINTS.get(name or ""))
