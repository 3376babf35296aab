"""Resumable, verified download and safe extraction of the VCTK 0.92 corpus.

Three public functions:

* :func:`download` fetches one URL to a file through a ``.part`` file, resuming an
  interrupted transfer with an HTTP ``Range`` request, retrying transient network
  errors with backoff, and verifying size and SHA-256 before the file appears under
  its final name (``os.replace``, so the final name never holds a partial file).
* :func:`extract_zip` extracts a zip archive into a temporary sibling folder, refusing
  unsafe member names (zip-slip), then renames the folder into place, so an
  interrupted extraction never leaves a half-extracted corpus behind.
* :func:`fetch_corpus` ties both together for a track's ``download`` spec and checks
  free disk space first.

Every failure a user can hit is raised as :class:`bench.errors.DataError` with a
message naming the file concerned and, where useful, a hint with the fix.
Only the standard library (``urllib``) is used for HTTP; ``rich`` draws the progress bars.
"""

from __future__ import annotations

import hashlib
import http.client
import math
import os
import re
import shutil
import socket
import tempfile
import time
import urllib.error
import urllib.request
import zipfile
from contextlib import nullcontext
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO, Callable

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from bench import __version__
from bench.errors import DataError

__all__ = ["download", "extract_zip", "fetch_corpus", "sha256_file", "EXTRACTED_MARKER", "DISK_FACTOR"]

#: Name of the marker file written inside a folder once its extraction is complete.
EXTRACTED_MARKER = ".extracted"

#: Free space needed before fetching a corpus, as a multiple of the archive size
#: (the archive itself, plus the extracted files, plus a little slack).
DISK_FACTOR = 2.1

#: HTTP statuses worth retrying: the server or a proxy may answer differently later.
_TRANSIENT_HTTP = frozenset({408, 425, 429, 500, 502, 503, 504})

#: Exceptions that mean "the network failed", as opposed to "the request is wrong".
_NETWORK_ERRORS: tuple[type[BaseException], ...] = (
    urllib.error.URLError,  # includes HTTPError, handled before this in the code
    http.client.HTTPException,  # IncompleteRead, RemoteDisconnected, BadStatusLine...
    ConnectionError,  # ConnectionResetError, ConnectionAbortedError, BrokenPipeError
    TimeoutError,  # socket.timeout is an alias of TimeoutError since Python 3.10
    socket.gaierror,
)

#: Sleep used between retries (a module attribute so tests can skip the waits).
_sleep = time.sleep

_USER_AGENT = f"vctk-denoise-bench/{__version__} (python-urllib)"
_CONTENT_RANGE = re.compile(r"bytes\s+(?:(\d+)-(\d+)|\*)/(\d+|\*)", re.IGNORECASE)


class _Transient(Exception):
    """A retryable failure of one attempt (the partial file is kept for the next one)."""


class _Restart(Exception):
    """The partial file cannot be continued: discard it and start again from byte 0."""


# --------------------------------------------------------------------------- helpers


def _console() -> Console:
    return Console(stderr=True)


def _fmt_bytes(n: int | float) -> str:
    """``1234567`` -> ``'1.23 MB (1,234,567 bytes)'``: readable and exact."""
    value = float(n)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(value) < 1000 or unit == "TB":
            human = f"{value:.0f} {unit}" if unit == "B" else f"{value:.2f} {unit}"
            break
        value /= 1000
    return f"{human} ({int(n):,} bytes)"


def sha256_file(path: Path, *, progress: bool = False, chunk_size: int = 1 << 20) -> str:
    """Return the hex SHA-256 of ``path``, reading it in ``chunk_size`` pieces.

    With ``progress=True`` a rich progress bar shows the verification (hashing the
    11.7 GB VCTK archive takes tens of seconds).
    """
    digest = hashlib.sha256()
    total = path.stat().st_size
    bar = (
        Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=_console(),
            transient=True,
        )
        if progress
        else nullcontext()
    )
    with bar as prog, path.open("rb") as fh:
        task = prog.add_task(f"verifying {path.name}", total=total) if prog else None
        while chunk := fh.read(chunk_size):
            digest.update(chunk)
            if prog is not None:
                prog.advance(task, len(chunk))
    return digest.hexdigest()


def _parse_content_range(value: str | None) -> tuple[int | None, int | None, int | None]:
    """Parse ``Content-Range`` into ``(first, last, total)``; missing parts are ``None``."""
    if not value:
        return None, None, None
    m = _CONTENT_RANGE.match(value.strip())
    if not m:
        return None, None, None
    first, last, total = m.groups()
    return (
        int(first) if first is not None else None,
        int(last) if last is not None else None,
        int(total) if total not in (None, "*") else None,
    )


def _content_length(resp: Any) -> int | None:
    value = resp.headers.get("Content-Length")
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _resume_message(part: Path) -> str:
    size = part.stat().st_size if part.exists() else 0
    return (
        f"The partial file {part} ({_fmt_bytes(size)}) was kept; "
        "running the same command again resumes the download from there."
    )


def _write_all(fh: BinaryIO, data: bytes) -> None:
    """Write all of ``data`` to an unbuffered file (raw writes may be short)."""
    view = memoryview(data)
    while view:
        n = fh.write(view)
        view = view[n:]


def _size_mismatch(dest: Path, part: Path, expected: int, actual: int, what: str) -> DataError:
    part.unlink(missing_ok=True)
    return DataError(
        f"{dest.name}: size mismatch ({what}): expected {_fmt_bytes(expected)}, "
        f"got {_fmt_bytes(actual)}. The partial file {part} was deleted.",
        hint="the server may be serving a different version of the file; "
        "check the URL and the size in the track's download spec.",
    )


# --------------------------------------------------------------------------- download


def download(
    url: str,
    dest: Path,
    *,
    sha256: str | None,
    size: int | None = None,
    progress: bool = True,
    chunk_size: int = 1 << 20,
    timeout: float = 30,
    retries: int = 3,
    backoff: float = 1.0,
) -> Path:
    """Download ``url`` to ``dest``, resumably, and verify it before it appears.

    The bytes go to ``dest`` + ``'.part'`` (``VCTK-Corpus-0.92.zip.part``). When that
    partial file already exists, the request carries ``Range: bytes=N-`` where ``N``
    is its size, and the server's answer decides what happens:

    * ``206 Partial Content`` (with a ``Content-Range`` starting at ``N``): the body
      is appended to the partial file;
    * ``200 OK`` (the server ignores ranges): the partial file is truncated and the
      download restarts from byte 0;
    * ``416 Range Not Satisfiable`` whose ``Content-Range: bytes */T`` says ``T == N``:
      the partial file is already complete and goes straight to verification
      (any other 416 discards the partial file and restarts from 0).

    When ``size`` is known and the partial file already has exactly that many bytes,
    no request is made at all.

    After the transfer, the size (if ``size`` is given) and the SHA-256 (if ``sha256``
    is given, computed by streaming the file) are checked, and only then is the partial
    file renamed to ``dest`` with :func:`os.replace` (atomic on one filesystem), so
    ``dest`` never holds an unverified file. If ``dest`` already exists with the
    right hash (or, with no ``sha256``, the right size / at all), it is returned at
    once without any request; an existing ``dest`` with the wrong hash is replaced
    only once a fresh download verifies.

    Transient failures (connection refused/reset, timeouts, truncated bodies, HTTP
    408/425/429/5xx) are retried ``retries`` times with exponential backoff
    (``backoff``, ``2*backoff``, ``4*backoff``... seconds), each retry resuming from
    what was received so far. If they persist, :class:`DataError` is raised saying
    that the partial file was kept and that the same command resumes it. Other HTTP
    errors (404, 403...) raise :class:`DataError` at once.

    Args:
        url: the URL to fetch (``http``, ``https``; redirects are followed).
        dest: the final path; its parent folders are created.
        sha256: the expected hex SHA-256 (case-insensitive), or ``None`` to skip the check.
        size: the expected size in bytes, or ``None`` to skip the check.
        progress: draw a rich progress bar (bytes, speed, time left) on stderr.
        chunk_size: bytes read from the network (and hashed) at a time.
        timeout: socket timeout in seconds for connecting and for each read.
        retries: how many times a transient failure is retried before giving up.
        backoff: the first retry delay in seconds; it doubles at each retry.

    Returns:
        ``dest``.

    Raises:
        DataError: on a checksum mismatch (naming the file, the expected and the actual
            hash; the partial file is deleted), a size mismatch (partial file deleted),
            an HTTP error, persistent network errors (partial file kept), or a failure
            to write the partial file.
    """
    dest = Path(dest)
    part = dest.with_suffix(dest.suffix + ".part")
    expected_hash = sha256.lower() if sha256 else None
    dest.parent.mkdir(parents=True, exist_ok=True)

    # 1. Already there?
    if dest.exists() and _existing_ok(dest, expected_hash, size, progress, chunk_size):
        return dest

    # 2. A partial file larger than the expected size cannot be continued.
    if size is not None and part.exists() and part.stat().st_size > size:
        part.unlink()

    bar = (
        Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=_console(),
        )
        if progress
        else nullcontext()
    )
    with bar as prog:
        task = prog.add_task(f"downloading {dest.name}", total=size) if prog is not None else None

        def report(completed: int, total: int | None) -> None:
            if prog is not None:
                prog.update(task, completed=completed, total=total)

        # 3. Transfer, with retries.
        complete = size is not None and part.exists() and part.stat().st_size == size
        attempt = 0
        restarts = 0
        while not complete:
            try:
                _attempt(url, dest, part, size, chunk_size, timeout, report)
                complete = True
            except _Restart:
                part.unlink(missing_ok=True)
                restarts += 1
                if restarts > 2:  # pragma: no cover - a server contradicting itself
                    raise DataError(
                        f"{url}: the server's answers to range requests are inconsistent.",
                        hint="try again later or download the file by hand to " + str(dest),
                    ) from None
            except _Transient as exc:
                attempt += 1
                if attempt > retries:
                    raise DataError(
                        f"Downloading {dest.name} from {url} failed after {attempt} attempts: {exc}. "
                        + _resume_message(part),
                        hint="check your network connection, then run the same command again.",
                    ) from exc.__cause__
                _sleep(backoff * 2 ** (attempt - 1))

    # 4. Verify, then publish atomically.
    actual_size = part.stat().st_size
    if size is not None and actual_size != size:
        raise _size_mismatch(dest, part, size, actual_size, "downloaded file")
    if expected_hash is not None:
        actual_hash = sha256_file(part, progress=progress, chunk_size=chunk_size)
        if actual_hash != expected_hash:
            part.unlink(missing_ok=True)
            raise DataError(
                f"{dest.name}: SHA-256 checksum mismatch: expected {expected_hash}, got {actual_hash}. "
                f"The corrupt partial file {part} was deleted.",
                hint="run the same command again to download it afresh; if this repeats, "
                "the file on the server differs from the one the benchmark expects.",
            )
    os.replace(part, dest)
    return dest


def _existing_ok(dest: Path, expected_hash: str | None, size: int | None, progress: bool, chunk_size: int) -> bool:
    """Whether an existing ``dest`` already is the wanted file (so nothing is downloaded)."""
    if size is not None and dest.stat().st_size != size:
        return False
    if expected_hash is None:
        return True
    return sha256_file(dest, progress=progress, chunk_size=chunk_size) == expected_hash


def _attempt(
    url: str,
    dest: Path,
    part: Path,
    size: int | None,
    chunk_size: int,
    timeout: float,
    report: Callable[[int, int | None], None],
) -> None:
    """One HTTP request: continue (or restart) ``part`` until the body ends.

    Returns normally when the body was received in full. Raises :class:`_Transient`
    for retryable failures, :class:`_Restart` when the partial file must be discarded,
    and :class:`DataError` for permanent ones.
    """
    offset = part.stat().st_size if part.exists() else 0
    headers = {"User-Agent": _USER_AGENT, "Accept-Encoding": "identity"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    request = urllib.request.Request(url, headers=headers)

    try:
        resp = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        exc.close()
        if exc.code == 416 and offset:
            _first, _last, total = _parse_content_range(exc.headers.get("Content-Range") if exc.headers else None)
            if total is not None and total == offset:
                report(offset, total)
                return  # the partial file already holds the whole file
            raise _Restart() from exc
        if exc.code in _TRANSIENT_HTTP:
            raise _Transient(f"HTTP {exc.code} {exc.reason}") from exc
        hint = (
            "the file was not found at this URL; check the URL in the track's download spec "
            "(the host may have moved it)."
            if exc.code in (404, 410)
            else "check the URL in the track's download spec and your access to it."
        )
        raise DataError(f"Downloading {dest.name}: {url} answered HTTP {exc.code} {exc.reason}.", hint=hint) from exc
    except _NETWORK_ERRORS as exc:
        reason = getattr(exc, "reason", None) or exc
        raise _Transient(f"{type(exc).__name__}: {reason}") from exc

    with resp:
        status = resp.status
        length = _content_length(resp)
        if status == 206:
            first, _last, total = _parse_content_range(resp.headers.get("Content-Range"))
            if first != offset:
                raise _Restart()  # not the range asked for: do not splice it in
            expected_end = offset + length if length is not None else (total if total is not None else None)
            mode = "ab"
        elif status == 200:
            offset = 0  # the server ignored the range (or none was sent): start over
            total = length
            expected_end = length
            mode = "wb"
        else:  # pragma: no cover - other 2xx codes have no body we could use
            raise DataError(f"Downloading {dest.name}: {url} answered an unexpected HTTP {status}.")

        if size is not None and total is not None and total != size:
            raise _size_mismatch(dest, part, size, total, "reported by the server")
        report(offset, size if size is not None else total)

        received = offset
        try:
            # Unbuffered: what was received is on disk (modulo the OS cache) when we stop.
            fh: BinaryIO = part.open(mode, buffering=0)
        except OSError as exc:
            raise DataError(f"Cannot write {part}: {exc}.") from exc
        with fh:
            while True:
                try:
                    chunk = resp.read(chunk_size)
                except OSError as exc:  # ConnectionResetError, TimeoutError, ...
                    raise _Transient(f"{type(exc).__name__}: {exc}") from exc
                except http.client.HTTPException as exc:  # IncompleteRead, ...
                    raise _Transient(f"{type(exc).__name__}: {exc}") from exc
                if not chunk:
                    break
                try:
                    _write_all(fh, chunk)
                except OSError as exc:
                    raise DataError(
                        f"Cannot write {part}: {exc}. " + _resume_message(part),
                        hint="free some disk space, then run the same command again.",
                    ) from exc
                received += len(chunk)
                report(received, size if size is not None else total)

    # http.client ends a body cut short by the server silently: detect it ourselves.
    if expected_end is not None and received < expected_end:
        raise _Transient(f"connection closed after {received:,} of {expected_end:,} bytes")
    if expected_end is None and size is not None and received < size:
        raise _Transient(f"connection closed after {received:,} of {size:,} bytes")
    if size is not None and received > size:
        raise _size_mismatch(dest, part, size, received, "downloaded file")


# --------------------------------------------------------------------------- extract


def _unsafe_reason(name: str) -> str | None:
    """Why a zip member name would escape the extraction folder, or ``None`` if it is safe."""
    if not name:
        return "empty name"
    norm = name.replace("\\", "/")
    if norm.startswith("/") or re.match(r"^[A-Za-z]:", norm):
        return "absolute path"
    if ".." in PurePosixPath(norm).parts:
        return "'..' component"
    if "\x00" in name:
        return "NUL character"
    return None


def extract_zip(archive: Path, dest_dir: Path, *, progress: bool = True) -> Path:
    """Extract ``archive`` into ``dest_dir`` safely, atomically and only once.

    * **Idempotent:** if ``dest_dir/.extracted`` exists, returns at once.
    * **Safe:** every member name is checked before anything is written; a member
      with an absolute path (``/etc/x``, ``C:\\x``) or a ``..`` component (zip-slip)
      makes the whole extraction fail with a :class:`DataError` naming the member.
    * **Atomic:** members are extracted into a temporary sibling folder
      (``.<name>.extracting-XXXX`` next to ``dest_dir``), the marker is written last,
      and the folder is renamed to ``dest_dir``. An interruption (error, Ctrl-C, power
      loss) leaves no ``dest_dir``; leftover temporary folders are removed by the next call.

    With ``progress=True`` a rich progress bar counts the members. The archive's members are placed directly
    under ``dest_dir`` (the VCTK 0.92 zip has no top-level folder, so this gives
    ``dest_dir/wav48_silence_trimmed/p225/p225_001_mic1.flac``...).

    Args:
        archive: the zip file.
        dest_dir: the folder to create.
        progress: draw a rich progress bar on stderr.

    Returns:
        ``dest_dir``.

    Raises:
        DataError: the archive is missing or not a valid zip, a member is unsafe or
            corrupt (CRC error), or ``dest_dir`` exists without the marker.
    """
    archive, dest_dir = Path(archive), Path(dest_dir)
    marker = dest_dir / EXTRACTED_MARKER
    if marker.exists():
        return dest_dir
    if dest_dir.exists() and (not dest_dir.is_dir() or any(dest_dir.iterdir())):
        raise DataError(
            f"{dest_dir} already exists but is not marked as a complete extraction "
            f"(no {EXTRACTED_MARKER} file).",
            hint=f"delete it and run the same command again; if you extracted {archive.name} "
            f"there yourself and it is complete, create an empty {marker} file instead.",
        )
    if not archive.is_file():
        raise DataError(f"{archive}: archive not found.", hint="download it first (run the same command with downloading enabled).")

    parent = dest_dir.parent
    parent.mkdir(parents=True, exist_ok=True)
    prefix = f".{dest_dir.name}.extracting-"
    for stale in parent.glob(prefix + "*"):  # left by an earlier interrupted run
        shutil.rmtree(stale, ignore_errors=True)

    try:
        zf = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError) as exc:
        raise DataError(
            f"{archive}: not a valid zip archive ({exc}).",
            hint="delete it and run the same command again to download it afresh.",
        ) from exc

    with zf:
        members = zf.infolist()
        for info in members:  # check every name before writing anything
            reason = _unsafe_reason(info.filename)
            if reason:
                raise DataError(
                    f"{archive}: refusing to extract unsafe member {info.filename!r} ({reason}: "
                    f"it would be written outside {dest_dir}).",
                    hint="the archive is not the expected corpus; delete it and download it again.",
                )

        tmp = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
        ok = False
        try:
            bar = (
                Progress(
                    TextColumn("[bold]{task.description}"),
                    BarColumn(),
                    MofNCompleteColumn(),
                    TaskProgressColumn(),
                    TimeRemainingColumn(),
                    console=_console(),
                )
                if progress
                else nullcontext()
            )
            with bar as prog:
                task = prog.add_task(f"extracting {archive.name}", total=len(members)) if prog is not None else None
                for info in members:
                    try:
                        zf.extract(info, tmp)
                    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError) as exc:
                        raise DataError(
                            f"{archive}: member {info.filename!r} is corrupt ({exc}).",
                            hint="delete the archive and run the same command again to download it afresh.",
                        ) from exc
                    if prog is not None:
                        prog.advance(task)
            (tmp / EXTRACTED_MARKER).write_text(f"{archive.name}\n{len(members)} members\n")
            if dest_dir.exists():
                dest_dir.rmdir()  # empty (checked above); os.replace needs no target or an empty one
            os.replace(tmp, dest_dir)
            ok = True
        finally:
            if not ok:
                shutil.rmtree(tmp, ignore_errors=True)
    return dest_dir


# --------------------------------------------------------------------------- corpus


def fetch_corpus(spec: dict, data_root: Path, *, progress: bool = True) -> Path:
    """Download and extract a track's corpus; return the extracted folder.

    ``spec`` is a track's ``download`` entry, e.g.::

        {"url": "https://datashare.ed.ac.uk/.../VCTK-Corpus-0.92.zip",
         "filename": "VCTK-Corpus-0.92.zip", "size": 11747302977,
         "sha256": "f96258be...", "extract_to": "VCTK-Corpus-0.92"}

    ``url`` and ``filename`` are required; ``size`` and ``sha256`` are checked when
    present; ``extract_to`` defaults to the file name without its extension.

    Steps: if ``data_root/extract_to`` is already a complete extraction, return it at
    once (the archive need not still exist). Otherwise check that the free space on
    ``data_root`` is at least ``2.1 x size`` (minus the bytes of the archive already
    downloaded, complete or partial), download ``data_root/filename`` with
    :func:`download` (resumable, verified), and extract it with :func:`extract_zip`.
    The archive is kept afterwards; delete it by hand to reclaim the space.

    Raises:
        DataError: a malformed spec, too little disk space (with the numbers), or any
            failure of :func:`download` / :func:`extract_zip`.
    """
    if not isinstance(spec, dict) or not spec.get("url") or not spec.get("filename"):
        raise DataError(
            f"Invalid download spec {spec!r}: 'url' and 'filename' are required.",
            hint="fix the track's 'download' entry.",
        )
    url = str(spec["url"])
    filename = str(spec["filename"])
    extract_to = str(spec.get("extract_to") or Path(filename).stem)
    for key, value in (("filename", filename), ("extract_to", extract_to)):
        if _unsafe_reason(value) or "/" in value or "\\" in value or value in (".", ".."):
            raise DataError(
                f"Invalid download spec: {key} {value!r} must be a plain file or folder name.",
                hint="fix the track's 'download' entry.",
            )
    size = spec.get("size")
    size = int(size) if size is not None else None
    sha256 = spec.get("sha256") or None

    data_root = Path(data_root).expanduser()
    archive = data_root / filename
    target = data_root / extract_to
    if (target / EXTRACTED_MARKER).exists():
        return target

    data_root.mkdir(parents=True, exist_ok=True)
    if size is not None:
        part = archive.with_suffix(archive.suffix + ".part")
        have = 0
        if archive.is_file():
            have = archive.stat().st_size
        elif part.is_file():
            have = part.stat().st_size
        needed = max(0, math.ceil(DISK_FACTOR * size) - min(have, size))
        free = shutil.disk_usage(data_root).free
        if free < needed:
            raise DataError(
                f"Not enough free disk space in {data_root}: {_fmt_bytes(free)} free, "
                f"{_fmt_bytes(needed)} needed ({DISK_FACTOR} x the {_fmt_bytes(size)} archive "
                f"{filename}, minus {_fmt_bytes(min(have, size))} already downloaded).",
                hint="free some space or choose another data folder.",
            )

    download(url, archive, sha256=sha256, size=size, progress=progress)
    return extract_zip(archive, target, progress=progress)
