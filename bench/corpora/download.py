"""Resumable, verified download of a corpus (VCTK 0.92, 11.7 GB) with the standard library's ``urllib``
(docs/tracks.md). Every failure a user can hit is a `DataError` naming the file and the fix."""

from __future__ import annotations

import http.client
import math
import os
import re
import shutil
import socket
import time
import urllib.error
import urllib.request
from contextlib import nullcontext
from pathlib import Path

from bench import __version__
from bench.core.console import bytes_bar
from bench.core.errors import DataError
from bench.core.files import file_sha256
from bench.corpora.archive import EXTRACTED_MARKER, extract_zip, unsafe_member_reason

#: free space needed before fetching a corpus, as a multiple of the archive size (archive + files + slack)
DISK_FACTOR = 2.1
_TRANSIENT_HTTP = frozenset({408, 425, 429, 500, 502, 503, 504})
_NETWORK_ERRORS = (urllib.error.URLError, http.client.HTTPException, ConnectionError, TimeoutError, socket.gaierror)
_sleep = time.sleep   # between retries (tests skip the waits)
_USER_AGENT = f"vctk-denoise-bench/{__version__} (python-urllib)"
_CONTENT_RANGE = re.compile(r"bytes\s+(?:(\d+)-\d+|\*)/(\d+|\*)", re.IGNORECASE)


class _Transient(Exception):
    """A retryable failure of one attempt (the partial file is kept for the next one)."""


class _Restart(Exception):
    """The partial file cannot be continued: discard it and start again from byte 0."""


def _fmt_bytes(n: int | float) -> str:
    """``1234567`` -> ``'1.23 MB (1,234,567 bytes)'``: readable and exact."""
    value, unit = float(n), "B"
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(value) < 1000 or unit == "TB":
            break
        value /= 1000
    return f"{value:.0f} B ({int(n):,} bytes)" if unit == "B" else f"{value:.2f} {unit} ({int(n):,} bytes)"


def _bar(progress: bool, transient: bool = False):
    return bytes_bar(transient=transient) if progress else nullcontext()


def sha256_file(path: Path, *, progress: bool = False, chunk_size: int = 1 << 20) -> str:
    with _bar(progress, transient=True) as prog:
        task = prog.add_task(f"verifying {path.name}", total=path.stat().st_size) if prog else None
        return file_sha256(path, on_chunk=(lambda n: prog.advance(task, n)) if prog else None, chunk_size=chunk_size)


def _content_range(value: str | None) -> tuple[int | None, int | None]:
    """(first byte, total size) of a ``Content-Range`` header; unknown parts are None."""
    if not (m := _CONTENT_RANGE.match((value or "").strip())):
        return None, None
    return (int(m.group(1)) if m.group(1) else None), (int(m.group(2)) if m.group(2) != "*" else None)


def _kept(part: Path) -> str:
    size = part.stat().st_size if part.exists() else 0
    return (f"The partial file {part} ({_fmt_bytes(size)}) was kept; running the same command again resumes the "
            "download from there.")


def _size_mismatch(dest: Path, part: Path, expected: int, actual: int, what: str) -> DataError:
    part.unlink(missing_ok=True)
    return DataError(f"{dest.name}: size mismatch ({what}): expected {_fmt_bytes(expected)}, got {_fmt_bytes(actual)}. "
                     f"The partial file {part} was deleted.",
                     hint="the server may be serving a different version of the file; check the URL and the size "
                          "in the track's download spec.")


def download(url: str, dest: Path, *, sha256: str | None, size: int | None = None, progress: bool = True,
             chunk_size: int = 1 << 20, timeout: float = 30, retries: int = 3, backoff: float = 1.0) -> Path:
    """`dest`, downloaded from `url` unless it already verifies (a part of exactly `size` bytes is verified
    without a request); `retries` waits of ``backoff * 2**k``, each resuming; a mismatch deletes the part."""
    dest = Path(dest)
    part = dest.with_suffix(dest.suffix + ".part")
    expected = sha256.lower() if sha256 else None
    dest.parent.mkdir(parents=True, exist_ok=True)
    if dest.exists() and (size is None or dest.stat().st_size == size) and \
            (expected is None or sha256_file(dest, progress=progress, chunk_size=chunk_size) == expected):
        return dest
    if size is not None and part.exists() and part.stat().st_size > size:
        part.unlink()
    with _bar(progress) as prog:
        task = prog.add_task(f"downloading {dest.name}", total=size) if prog else None

        def report(done: int, total: int | None) -> None:
            if prog:
                prog.update(task, completed=done, total=total)

        complete = size is not None and part.exists() and part.stat().st_size == size
        attempt = restarts = 0
        while not complete:
            try:
                _attempt(url, dest, part, size, chunk_size, timeout, report)
                complete = True
            except _Restart:
                part.unlink(missing_ok=True)
                restarts += 1
                if restarts > 2:   # a server contradicting itself
                    raise DataError(f"{url}: the server's answers to range requests are inconsistent.",
                                    hint=f"try again later or download the file by hand to {dest}") from None
            except _Transient as exc:
                attempt += 1
                if attempt > retries:
                    raise DataError(f"Downloading {dest.name} from {url} failed after {attempt} attempts: {exc}. "
                                    + _kept(part), hint="check your network connection, then run the same command "
                                                        "again.") from exc.__cause__
                _sleep(backoff * 2 ** (attempt - 1))
    if size is not None and part.stat().st_size != size:
        raise _size_mismatch(dest, part, size, part.stat().st_size, "downloaded file")
    if expected is not None:
        actual = sha256_file(part, progress=progress, chunk_size=chunk_size)
        if actual != expected:
            part.unlink(missing_ok=True)
            raise DataError(f"{dest.name}: SHA-256 checksum mismatch: expected {expected}, got {actual}. "
                            f"The corrupt partial file {part} was deleted.",
                            hint="run the same command again to download it afresh; if this repeats, the file on "
                                 "the server differs from the one the benchmark expects.")
    os.replace(part, dest)   # atomic: `dest` never holds an unverified file
    return dest


def _attempt(url: str, dest: Path, part: Path, size: int | None, chunk_size: int, timeout: float, report) -> None:
    """One request, continuing (or restarting) `part` until the body ends."""
    offset = part.stat().st_size if part.exists() else 0
    headers = {"User-Agent": _USER_AGENT, "Accept-Encoding": "identity", **({"Range": f"bytes={offset}-"} if offset else {})}
    try:
        resp = urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)
    except urllib.error.HTTPError as exc:
        exc.close()
        if exc.code == 416 and offset:
            if _content_range(exc.headers.get("Content-Range") if exc.headers else None)[1] == offset:
                report(offset, offset)
                return   # the part already holds the whole file
            raise _Restart() from exc
        if exc.code in _TRANSIENT_HTTP:
            raise _Transient(f"HTTP {exc.code} {exc.reason}") from exc
        hint = ("the file was not found at this URL; check the URL in the track's download spec (the host may have "
                "moved it)." if exc.code in (404, 410) else "check the URL in the track's download spec and your access to it.")
        raise DataError(f"Downloading {dest.name}: {url} answered HTTP {exc.code} {exc.reason}.", hint=hint) from exc
    except _NETWORK_ERRORS as exc:
        raise _Transient(f"{type(exc).__name__}: {getattr(exc, 'reason', None) or exc}") from exc
    with resp:
        try:
            length = int(resp.headers.get("Content-Length"))
        except (TypeError, ValueError):
            length = None
        if resp.status == 206:
            first, total = _content_range(resp.headers.get("Content-Range"))
            if first != offset:
                raise _Restart()   # not the range asked for: do not splice it in
            end, mode = (offset + length if length is not None else total), "ab"
        elif resp.status == 200:   # the server ignored the range (or none was sent): start over
            offset, total, end, mode = 0, length, length, "wb"
        else:
            raise DataError(f"Downloading {dest.name}: {url} answered an unexpected HTTP {resp.status}.")
        if size is not None and total is not None and total != size:
            raise _size_mismatch(dest, part, size, total, "reported by the server")
        received = offset
        report(received, size if size is not None else total)
        try:
            fh = part.open(mode, buffering=0)   # unbuffered: what was received is on disk when we stop
        except OSError as exc:
            raise DataError(f"Cannot write {part}: {exc}.") from exc
        with fh:
            while True:
                try:
                    chunk = resp.read(chunk_size)
                except (OSError, http.client.HTTPException) as exc:
                    raise _Transient(f"{type(exc).__name__}: {exc}") from exc
                if not chunk:
                    break
                try:
                    view = memoryview(chunk)
                    while view:   # raw writes may be short
                        view = view[fh.write(view):]
                except OSError as exc:
                    raise DataError(f"Cannot write {part}: {exc}. " + _kept(part),
                                    hint="free some disk space, then run the same command again.") from exc
                received += len(chunk)
                report(received, size if size is not None else total)
    want = end if end is not None else size   # http.client ends a body cut short silently
    if want is not None and received < want:
        raise _Transient(f"connection closed after {received:,} of {want:,} bytes")
    if size is not None and received > size:
        raise _size_mismatch(dest, part, size, received, "downloaded file")


def fetch_corpus(spec: dict, data_root: Path, *, progress: bool = True) -> Path:
    """Download and extract a track's ``download`` spec (``url``, ``filename``; optional ``size``, ``sha256``,
    ``extract_to``, default the file name's stem) under `data_root`; returns the extracted folder, at once
    when it is already complete. Needs ``DISK_FACTOR x size`` free (minus what is already downloaded);
    the archive is kept afterwards."""
    if not isinstance(spec, dict) or not spec.get("url") or not spec.get("filename"):
        raise DataError(f"Invalid download spec {spec!r}: 'url' and 'filename' are required.",
                        hint="fix the track's 'download' entry.")
    filename = str(spec["filename"])
    extract_to = str(spec.get("extract_to") or Path(filename).stem)
    for key, value in (("filename", filename), ("extract_to", extract_to)):
        if unsafe_member_reason(value) or "/" in value or "\\" in value or value in (".", ".."):
            raise DataError(f"Invalid download spec: {key} {value!r} must be a plain file or folder name.",
                            hint="fix the track's 'download' entry.")
    size = int(spec["size"]) if spec.get("size") is not None else None
    data_root = Path(data_root).expanduser()
    archive, target = data_root / filename, data_root / extract_to
    if (target / EXTRACTED_MARKER).exists():
        return target
    data_root.mkdir(parents=True, exist_ok=True)
    if size is not None:
        part = archive.with_suffix(archive.suffix + ".part")
        have = min(size, archive.stat().st_size if archive.is_file() else part.stat().st_size if part.is_file() else 0)
        needed = max(0, math.ceil(DISK_FACTOR * size) - have)
        free = shutil.disk_usage(data_root).free
        if free < needed:
            raise DataError(f"Not enough free disk space in {data_root}: {_fmt_bytes(free)} free, {_fmt_bytes(needed)} "
                            f"needed ({DISK_FACTOR} x the {_fmt_bytes(size)} archive {filename}, minus "
                            f"{_fmt_bytes(have)} already downloaded).", hint="free some space or choose another data folder.")
    download(str(spec["url"]), archive, sha256=spec.get("sha256") or None, size=size, progress=progress)
    return extract_zip(archive, target, progress=progress)
