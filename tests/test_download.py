"""Tests for bench.corpora.download against a local HTTP server with Range support.

The server is a ``ThreadingHTTPServer`` on 127.0.0.1 (ephemeral port) started in a
fixture thread. Its handler (written here: ``SimpleHTTPRequestHandler`` does not
support ``Range``) serves in-memory files, answers ``Range: bytes=N-`` with
``206 Partial Content`` / ``Content-Range`` (or ``416`` past the end), records every
request, and can misbehave on demand: ignore ranges (answer 200), cut the connection
after N bytes, answer error statuses, or stall past the client's timeout.
"""

from __future__ import annotations

import hashlib
import io
import random
import re
import socket
import threading
import time
import zipfile
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from bench.corpora import download as dl
from bench.corpora.archive import EXTRACTED_MARKER, extract_zip
from bench.corpora.download import download, fetch_corpus
from bench.core.errors import DataError

pytestmark = pytest.mark.network

ZIP_NAME = "VCTK-Corpus-0.92.zip"
CORPUS_FILES = {
    "wav48_silence_trimmed/p225/p225_001_mic1.flac": b"fLaC" + bytes(range(256)) * 8,
    "wav48_silence_trimmed/p225/p225_001_mic2.flac": b"fLaC" + b"\x01" * 700,
    "wav48_silence_trimmed/p225/p225_002_mic1.flac": b"fLaC" + b"\x02" * 900,
    "wav48_silence_trimmed/p226/p226_001_mic1.flac": b"fLaC" + b"\x03" * 500,
    "txt/p225/p225_001.txt": b"Please call Stella.\n",
    "txt/p225/p225_002.txt": b"Ask her to bring these things with her from the store.\n",
    "speaker-info.txt": b"ID  AGE  GENDER  ACCENTS  REGION\np225  23  F  English  Southern England\n",
    "README.txt": b"CSTR VCTK Corpus 0.92 (test fixture)\n",
}


def _make_zip(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return buf.getvalue()


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# A payload big enough to span several 4 KiB chunks; deterministic.
PAYLOAD = random.Random(1234).randbytes(50_000)
PAYLOAD_SHA = _sha(PAYLOAD)
FAST = dict(progress=False, chunk_size=4096, timeout=5, retries=2, backoff=0.0)


# --------------------------------------------------------------------------- server


@dataclass
class ServerState:
    """What the server serves, how it misbehaves, and what it was asked."""

    files: dict[str, bytes] = field(default_factory=dict)
    requests: list[dict] = field(default_factory=list)
    ignore_range: bool = False  # answer 200 with the whole body even to a Range request
    cut_after: int | None = None  # next response: send this many body bytes, then close
    fail_codes: list[int] = field(default_factory=list)  # next responses: these error statuses
    stall_s: float = 0.0  # next response: sleep this long before answering
    lock: threading.Lock = field(default_factory=threading.Lock)


class RangeHandler(BaseHTTPRequestHandler):
    """GET handler with ``Range: bytes=N-`` support and switchable misbehaviour."""

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        st: ServerState = self.server.state  # type: ignore[attr-defined]
        with st.lock:
            st.requests.append({"path": self.path, "range": self.headers.get("Range")})
            fail = st.fail_codes.pop(0) if st.fail_codes else None
            cut, st.cut_after = st.cut_after, None
            stall, st.stall_s = st.stall_s, 0.0
        if stall:
            time.sleep(stall)
        if fail is not None:
            self.send_error(fail)
            return
        data = st.files.get(self.path)
        if data is None:
            self.send_error(404, "Not Found")
            return

        start = 0
        rng = self.headers.get("Range")
        if rng and not st.ignore_range:
            m = re.fullmatch(r"bytes=(\d+)-", rng.strip())
            assert m, f"unexpected Range header {rng!r}"
            start = int(m.group(1))
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        body = data[start:]
        self.send_header("Content-Type", "application/zip")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Accept-Ranges", "none" if st.ignore_range else "bytes")
        self.end_headers()
        try:
            if cut is not None:
                self.wfile.write(body[:cut])
                self.close_connection = True
            else:
                self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout test)
            pass

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - keep test output quiet
        pass


@pytest.fixture
def server():
    """A running server; yields ``(base_url, state)``."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), RangeHandler)
    httpd.daemon_threads = True
    httpd.state = ServerState()  # type: ignore[attr-defined]
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    host, port = httpd.server_address[:2]
    try:
        yield f"http://{host}:{port}", httpd.state  # type: ignore[attr-defined]
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


@pytest.fixture
def payload_url(server):
    base, st = server
    st.files["/files/" + ZIP_NAME] = PAYLOAD
    return f"{base}/files/{ZIP_NAME}", st


def _part(dest: Path) -> Path:
    return dest.with_suffix(dest.suffix + ".part")


# --------------------------------------------------------------------------- download


@pytest.mark.parametrize("progress", [False, True])
def test_full_download_checksum_ok(payload_url, tmp_path, progress):
    url, st = payload_url
    dest = tmp_path / "sub" / ZIP_NAME
    opts = {**FAST, "progress": progress}
    assert download(url, dest, sha256=PAYLOAD_SHA.upper(), size=len(PAYLOAD), **opts) == dest
    assert dest.read_bytes() == PAYLOAD
    assert not _part(dest).exists()
    assert len(st.requests) == 1 and st.requests[0]["range"] is None


def test_resume_after_connection_cut(payload_url, tmp_path):
    url, st = payload_url
    st.cut_after = 12_345
    dest = tmp_path / ZIP_NAME
    download(url, dest, sha256=PAYLOAD_SHA, size=len(PAYLOAD), **FAST)
    assert dest.read_bytes() == PAYLOAD
    assert [r["range"] for r in st.requests] == [None, "bytes=12345-"]


def test_resume_from_existing_part(payload_url, tmp_path):
    url, st = payload_url
    dest = tmp_path / ZIP_NAME
    _part(dest).write_bytes(PAYLOAD[:20_000])
    download(url, dest, sha256=PAYLOAD_SHA, size=len(PAYLOAD), **FAST)
    assert dest.read_bytes() == PAYLOAD
    assert [r["range"] for r in st.requests] == ["bytes=20000-"]
    assert not _part(dest).exists()


def test_server_ignoring_range_restarts_from_zero(payload_url, tmp_path):
    url, st = payload_url
    st.ignore_range = True
    dest = tmp_path / ZIP_NAME
    _part(dest).write_bytes(b"\xff" * 10_000)  # wrong bytes: they must not survive
    download(url, dest, sha256=PAYLOAD_SHA, size=len(PAYLOAD), **FAST)
    assert dest.read_bytes() == PAYLOAD
    assert [r["range"] for r in st.requests] == ["bytes=10000-"]


def test_part_already_complete_416(payload_url, tmp_path):
    url, st = payload_url
    dest = tmp_path / ZIP_NAME
    _part(dest).write_bytes(PAYLOAD)
    download(url, dest, sha256=PAYLOAD_SHA, size=None, **FAST)  # size unknown: must ask
    assert dest.read_bytes() == PAYLOAD
    assert [r["range"] for r in st.requests] == [f"bytes={len(PAYLOAD)}-"]


def test_part_complete_with_known_size_makes_no_request(payload_url, tmp_path):
    url, st = payload_url
    dest = tmp_path / ZIP_NAME
    _part(dest).write_bytes(PAYLOAD)
    download(url, dest, sha256=PAYLOAD_SHA, size=len(PAYLOAD), **FAST)
    assert dest.read_bytes() == PAYLOAD
    assert st.requests == []


def test_checksum_mismatch_names_file_and_hashes_and_removes_part(payload_url, tmp_path):
    url, _st = payload_url
    dest = tmp_path / ZIP_NAME
    wrong = "0" * 64
    with pytest.raises(DataError) as err:
        download(url, dest, sha256=wrong, size=len(PAYLOAD), **FAST)
    msg = str(err.value)
    assert ZIP_NAME in msg and wrong in msg and PAYLOAD_SHA in msg
    assert not _part(dest).exists() and not dest.exists()


def test_size_mismatch(payload_url, tmp_path):
    url, _st = payload_url
    dest = tmp_path / ZIP_NAME
    with pytest.raises(DataError) as err:
        download(url, dest, sha256=PAYLOAD_SHA, size=len(PAYLOAD) + 7, **FAST)
    msg = str(err.value)
    assert ZIP_NAME in msg and f"{len(PAYLOAD) + 7:,}" in msg and f"{len(PAYLOAD):,}" in msg
    assert not _part(dest).exists() and not dest.exists()


def test_404_is_a_clear_error(server, tmp_path):
    base, st = server
    dest = tmp_path / ZIP_NAME
    with pytest.raises(DataError) as err:
        download(f"{base}/missing.zip", dest, sha256=None, **FAST)
    msg = str(err.value)
    assert "404" in msg and ZIP_NAME in msg and "missing.zip" in msg
    assert len(st.requests) == 1  # not retried
    assert not dest.exists()


def test_dest_present_with_right_hash_makes_no_request(payload_url, tmp_path):
    url, st = payload_url
    dest = tmp_path / ZIP_NAME
    dest.write_bytes(PAYLOAD)
    assert download(url, dest, sha256=PAYLOAD_SHA, size=len(PAYLOAD), **FAST) == dest
    assert st.requests == []


def test_dest_present_with_wrong_hash_is_replaced(payload_url, tmp_path):
    url, st = payload_url
    dest = tmp_path / ZIP_NAME
    dest.write_bytes(b"stale" * 10)
    download(url, dest, sha256=PAYLOAD_SHA, size=None, **FAST)
    assert dest.read_bytes() == PAYLOAD
    assert len(st.requests) == 1


def test_transient_http_error_is_retried(payload_url, tmp_path):
    url, st = payload_url
    st.fail_codes = [503, 500]
    dest = tmp_path / ZIP_NAME
    download(url, dest, sha256=PAYLOAD_SHA, size=len(PAYLOAD), **FAST)
    assert dest.read_bytes() == PAYLOAD
    assert len(st.requests) == 3


def test_timeout_is_retried_and_resumes(payload_url, tmp_path):
    url, st = payload_url
    st.stall_s = 0.6
    dest = tmp_path / ZIP_NAME
    _part(dest).write_bytes(PAYLOAD[:1000])
    download(url, dest, sha256=PAYLOAD_SHA, size=len(PAYLOAD), **{**FAST, "timeout": 0.2})
    assert dest.read_bytes() == PAYLOAD
    assert [r["range"] for r in st.requests] == ["bytes=1000-", "bytes=1000-"]


def test_persistent_errors_keep_part_and_say_how_to_resume(payload_url, tmp_path):
    url, st = payload_url
    st.fail_codes = [503] * 10
    dest = tmp_path / ZIP_NAME
    _part(dest).write_bytes(PAYLOAD[:3000])
    with pytest.raises(DataError) as err:
        download(url, dest, sha256=PAYLOAD_SHA, size=len(PAYLOAD), **FAST)
    msg = str(err.value)
    assert "kept" in msg and "same command" in msg and str(_part(dest)) in msg
    assert _part(dest).read_bytes() == PAYLOAD[:3000]
    assert len(st.requests) == 1 + FAST["retries"]


def test_connection_refused_keeps_part(tmp_path):
    with socket.socket() as s:  # find a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    dest = tmp_path / ZIP_NAME
    _part(dest).write_bytes(b"abc")
    with pytest.raises(DataError) as err:
        download(f"http://127.0.0.1:{port}/x.zip", dest, sha256=None, **{**FAST, "retries": 1})
    assert "kept" in str(err.value) and "resume" in str(err.value)
    assert _part(dest).read_bytes() == b"abc"


# --------------------------------------------------------------------------- extract


@pytest.fixture
def corpus_zip(tmp_path) -> Path:
    path = tmp_path / ZIP_NAME
    path.write_bytes(_make_zip(CORPUS_FILES))
    return path


def _leftovers(parent: Path) -> list[Path]:
    return [p for p in parent.iterdir() if ".extracting-" in p.name]


def test_extract_zip_and_idempotent(corpus_zip, tmp_path):
    out = tmp_path / "VCTK-Corpus-0.92"
    assert extract_zip(corpus_zip, out, progress=False) == out
    for name, data in CORPUS_FILES.items():
        assert (out / name).read_bytes() == data
    assert (out / EXTRACTED_MARKER).exists()
    assert _leftovers(tmp_path) == []
    # Second call: the marker short-circuits (the archive is not even opened).
    corpus_zip.unlink()
    (out / "README.txt").write_bytes(b"edited")
    assert extract_zip(corpus_zip, out) == out
    assert (out / "README.txt").read_bytes() == b"edited"


@pytest.mark.parametrize("bad_name", ["../evil.txt", "wav48_silence_trimmed/../../evil.txt", "/tmp/evil.txt", "C:/evil.txt"])
def test_zip_slip_member_is_refused(tmp_path, bad_name):
    archive = tmp_path / "bad.zip"
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("wav48_silence_trimmed/p225/p225_001_mic1.flac", b"ok")
        info = zipfile.ZipInfo("placeholder")
        info.filename = bad_name  # ZipInfo would otherwise normalise the name
        zf.writestr(info, b"pwned")
    archive.write_bytes(buf.getvalue())
    out = tmp_path / "work" / "out"
    with pytest.raises(DataError) as err:
        extract_zip(archive, out, progress=False)
    assert bad_name in str(err.value)
    assert not out.exists()
    assert not (tmp_path / "evil.txt").exists() and not (tmp_path / "work" / "evil.txt").exists()


def test_interrupted_extraction_leaves_nothing(corpus_zip, tmp_path, monkeypatch):
    out = tmp_path / "VCTK-Corpus-0.92"
    real_extract = zipfile.ZipFile.extract
    calls = {"n": 0}

    def flaky_extract(self, member, path=None, pwd=None):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real_extract(self, member, path, pwd)

    monkeypatch.setattr(zipfile.ZipFile, "extract", flaky_extract)
    with pytest.raises(KeyboardInterrupt):
        extract_zip(corpus_zip, out, progress=False)
    assert not out.exists() and _leftovers(tmp_path) == []
    monkeypatch.setattr(zipfile.ZipFile, "extract", real_extract)
    extract_zip(corpus_zip, out, progress=False)
    assert (out / EXTRACTED_MARKER).exists()


def test_extract_refuses_unmarked_existing_folder(corpus_zip, tmp_path):
    out = tmp_path / "VCTK-Corpus-0.92"
    out.mkdir()
    (out / "something").write_text("x")
    with pytest.raises(DataError, match="not marked"):
        extract_zip(corpus_zip, out, progress=False)


def test_extract_bad_zip(tmp_path):
    archive = tmp_path / ZIP_NAME
    archive.write_bytes(b"this is not a zip")
    with pytest.raises(DataError, match="not a valid zip"):
        extract_zip(archive, tmp_path / "out", progress=False)


# --------------------------------------------------------------------------- fetch_corpus


def _spec(url: str, data: bytes) -> dict:
    return {
        "url": url,
        "filename": ZIP_NAME,
        "size": len(data),
        "sha256": _sha(data),
        "extract_to": "VCTK-Corpus-0.92",
    }


def test_fetch_corpus_end_to_end(server, tmp_path, monkeypatch):
    base, st = server
    monkeypatch.setattr(dl, "_sleep", lambda seconds: None)  # fetch_corpus uses the default backoff
    data = _make_zip(CORPUS_FILES)
    st.files["/bitstream/" + ZIP_NAME] = data
    st.cut_after = 500  # one interruption on the way, resumed by the retry
    spec = _spec(f"{base}/bitstream/{ZIP_NAME}", data)
    root = tmp_path / "data"
    out = fetch_corpus(spec, root, progress=False)
    assert out == root / "VCTK-Corpus-0.92"
    assert (out / "wav48_silence_trimmed/p225/p225_001_mic1.flac").read_bytes() == CORPUS_FILES[
        "wav48_silence_trimmed/p225/p225_001_mic1.flac"
    ]
    assert (root / ZIP_NAME).read_bytes() == data
    assert [r["range"] for r in st.requests] == [None, "bytes=500-"]
    # Already extracted: no request, even once the archive is gone.
    (root / ZIP_NAME).unlink()
    assert fetch_corpus(spec, root, progress=False) == out
    assert len(st.requests) == 2


def test_fetch_corpus_checks_disk_space(server, tmp_path, monkeypatch):
    base, st = server
    data = _make_zip(CORPUS_FILES)
    spec = {**_spec(f"{base}/{ZIP_NAME}", data), "size": 10_000_000_000}

    class Usage:
        total, used, free = 50_000_000_000, 45_000_000_000, 5_000_000_000

    monkeypatch.setattr(dl.shutil, "disk_usage", lambda path: Usage)
    with pytest.raises(DataError) as err:
        fetch_corpus(spec, tmp_path / "data", progress=False)
    msg = str(err.value)
    assert "5,000,000,000" in msg and "21,000,000,000" in msg
    assert st.requests == []


def test_fetch_corpus_rejects_bad_spec(tmp_path):
    with pytest.raises(DataError):
        fetch_corpus({"filename": ZIP_NAME}, tmp_path)
    with pytest.raises(DataError):
        fetch_corpus({"url": "http://127.0.0.1/x", "filename": "../x.zip"}, tmp_path)
