"""Exclusive locks on run folders and prepared tracks, so that two bench processes never write the same
folder: an ``flock`` on a small file holding the owner's pid (`LOCK_NAME` in the folder), released by the
kernel however the process ends, so never stale; the file is removed on a normal release."""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path

from bench.core.errors import BenchError

LOCK_NAME = ".bench.lock"


def _holder(path: Path) -> str:
    try:
        pid = path.read_text().strip()
    except OSError:
        return "another bench process"
    return f"bench process {pid}" if pid.isdigit() else "another bench process"


@contextlib.contextmanager
def hold(path: Path | str, what: str, *, hint: str | None = None, remove_empty_folder: bool = False):
    """Hold an exclusive lock on `path` (the lock file) for the ``with`` block; `BenchError` naming `what`
    and the holder's pid when another process holds it."""
    path = Path(path)
    while True:
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except FileNotFoundError:
            continue  # a releasing holder removed the emptied folder just now
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise BenchError(f"{what} is in use by {_holder(path)} (lock {path})",
                             hint=hint or "wait for it to finish; a lock held by a process that ended is released "
                                          "by the system") from None
        try:
            same = os.fstat(fd).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)  # the holder removed the file while we waited for it: lock the new one
    try:
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        yield path
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)   # while still held: a process that opens it afterwards locks a new file
        os.close(fd)
        if remove_empty_folder:
            with contextlib.suppress(OSError):
                path.parent.rmdir()   # only when empty


def folder_lock(folder: Path | str, what: str, **kw):
    return hold(Path(folder) / LOCK_NAME, what, **kw)


@contextlib.contextmanager
def hold_all(locks: list[tuple[Path, str]], **kw):
    """Hold the folder locks of ``(folder, what)`` pairs, in order, for the ``with`` block."""
    with contextlib.ExitStack() as stack:
        for folder, what in locks:
            stack.enter_context(folder_lock(folder, what, **kw))
        yield
