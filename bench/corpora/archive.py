"""Safe, atomic, idempotent extraction of a corpus archive: unsafe member names (absolute paths, ``..``:
zip-slip) are refused before anything is written; members go to a temporary sibling folder that is
renamed into place with a completion marker, so an interruption never leaves a half-extracted corpus."""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import zipfile
from contextlib import nullcontext
from pathlib import Path, PurePosixPath

from bench.core.console import progress_bar
from bench.core.errors import DataError

#: written inside a folder once its extraction is complete
EXTRACTED_MARKER = ".extracted"


def unsafe_member_reason(name: str) -> str | None:
    """Why a zip member name would escape the extraction folder, or None if it is safe."""
    norm = name.replace("\\", "/")
    if not name:
        return "empty name"
    if norm.startswith("/") or re.match(r"^[A-Za-z]:", norm):
        return "absolute path"
    if ".." in PurePosixPath(norm).parts:
        return "'..' component"
    return "NUL character" if "\x00" in name else None


def extract_zip(archive: Path, dest_dir: Path, *, progress: bool = True) -> Path:
    """Extract `archive`'s members directly under `dest_dir`, once (``dest_dir/.extracted`` marks it done),
    atomically (an interrupted extraction leaves no `dest_dir`), refusing absolute or ``..`` names."""
    archive, dest_dir = Path(archive), Path(dest_dir)
    marker = dest_dir / EXTRACTED_MARKER
    if marker.exists():
        return dest_dir
    if dest_dir.exists() and (not dest_dir.is_dir() or any(dest_dir.iterdir())):
        raise DataError(f"{dest_dir} already exists but is not marked as a complete extraction (no {EXTRACTED_MARKER} file).",
                        hint=f"delete it and run the same command again; if you extracted {archive.name} there yourself "
                             f"and it is complete, create an empty {marker} file instead.")
    if not archive.is_file():
        raise DataError(f"{archive}: archive not found.",
                        hint="download it first (run the same command with downloading enabled).")
    parent = dest_dir.parent
    parent.mkdir(parents=True, exist_ok=True)
    prefix = f".{dest_dir.name}.extracting-"
    for stale in parent.glob(prefix + "*"):   # left by an earlier interrupted run
        shutil.rmtree(stale, ignore_errors=True)
    try:
        zf = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError) as exc:
        raise DataError(f"{archive}: not a valid zip archive ({exc}).",
                        hint="delete it and run the same command again to download it afresh.") from exc
    with zf:
        members = zf.infolist()
        for info in members:   # every name is checked before anything is written
            if reason := unsafe_member_reason(info.filename):
                raise DataError(f"{archive}: refusing to extract unsafe member {info.filename!r} ({reason}: it would be "
                                f"written outside {dest_dir}).",
                                hint="the archive is not the expected corpus; delete it and download it again.")
        tmp = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
        try:
            with progress_bar() if progress else nullcontext() as prog:
                task = prog.add_task(f"extracting {archive.name}", total=len(members)) if prog else None
                for info in members:
                    try:
                        zf.extract(info, tmp)
                    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError) as exc:
                        raise DataError(f"{archive}: member {info.filename!r} is corrupt ({exc}).",
                                        hint="delete the archive and run the same command again to download it afresh.") from exc
                    if prog:
                        prog.advance(task)
            (tmp / EXTRACTED_MARKER).write_text(f"{archive.name}\n{len(members)} members\n")
            if dest_dir.exists():
                dest_dir.rmdir()   # empty (checked above)
            os.replace(tmp, dest_dir)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
    return dest_dir
