"""File helpers every package uses: the SHA-256 of a file, CSV tables with a header, atomic writes (a
temporary file beside the target, then a rename), so that a reader never sees half a file, and the key of a
cache entry's code."""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import os
import shutil
import sys
from importlib import metadata
from pathlib import Path
from typing import Callable

from bench import REPO_ROOT

CHUNK = 1 << 20
#: what commands keep between runs (adapter attributes, drawn images, derived results folders): each entry
#: is a function of its key, which covers its inputs and its code; ``--no-cache`` bypasses them
CACHE_DIR = REPO_ROOT / ".cache"


def read_csv(path: Path | str) -> list[dict]:
    """The rows of a CSV file with a header line, as dicts."""
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def csv_bytes(header, rows) -> bytes:
    """A CSV table (``\\n`` line ends): `header`, then `rows`."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    w.writerows(rows)
    return buf.getvalue().encode()


def file_sha256(path: Path | str, *, on_chunk: Callable[[int], None] | None = None, chunk_size: int = CHUNK) -> str:
    """SHA-256 of a file's bytes; `on_chunk(nbytes)` is called after each chunk read (a progress bar)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(chunk_size):
            digest.update(chunk)
            if on_chunk is not None:
                on_chunk(len(chunk))
    return digest.hexdigest()


@contextlib.contextmanager
def atomic_path(path: Path | str):
    """Yield a temporary path beside `path` for the ``with`` block to write; on success it is renamed to
    `path`, on any error removed. An `OSError` names `path`, not the temporary file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")   # bench.data.prepare removes those of ended processes
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        if isinstance(exc, OSError):
            raise OSError(exc.errno, exc.strerror, str(path)) from None
        raise


def atomic_write_bytes(path: Path | str, payload: bytes, *, fsync: bool = True) -> None:
    """Write `payload` to `path` atomically (flushed to disk first with `fsync`)."""
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        fh.write(payload)
        if fsync:
            fh.flush()
            os.fsync(fh.fileno())


def code_key(files, packages=()) -> str:
    """SHA-256 of the interpreter's version, the bytes of source `files` and the installed versions of
    `packages`: the code a cache entry is a function of."""
    h = hashlib.sha256(f"{sys.version}\0".encode())
    for path in files:
        h.update(hashlib.sha256(Path(path).read_bytes()).digest())
    for package in packages:
        with contextlib.suppress(metadata.PackageNotFoundError):
            h.update(f"{package} {metadata.version(package)}\0".encode())
    return h.hexdigest()


class CacheFolder:
    """``.cache/<name>-<code key>/``: entries that are functions of their name and of the code (`code_key` of
    `code` and `packages`). The first entry written under a new code key removes the folders of the others;
    a write that fails (a read-only checkout) is skipped: the entry is made again next time."""

    def __init__(self, name: str, code, packages=(), root: Path | None = None):
        self.name = name
        self.folder = Path(root or CACHE_DIR) / f"{name}-{code_key(code, packages)[:32]}"

    def write(self, entry: str, payload: bytes, *, fsync: bool = True) -> None:
        with contextlib.suppress(OSError):
            if not self.folder.is_dir():
                for old in self.folder.parent.glob(f"{self.name}-*"):
                    shutil.rmtree(old, ignore_errors=True)
            atomic_write_bytes(self.folder / entry, payload, fsync=fsync)
