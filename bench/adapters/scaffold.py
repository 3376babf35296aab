"""`bench new NAME`: ``submissions/<name_with_underscores>/`` from ``templates/``: an ``adapter.py`` that trains
and passes ``bench check`` as generated, and its ``README.md`` model card. A name already taken is refused."""

from __future__ import annotations

import contextlib
import datetime as _dt
import getpass
import re
import subprocess
from pathlib import Path

from bench import REPO_ROOT
from bench.adapters.base import ADAPTER_DIRS, discover
from bench.core.errors import BenchError
from bench.core.names import MODEL_RE

MAX_NAME = 40
TEMPLATES = Path(__file__).resolve().parent / "templates"


def folder_name(name: str) -> str:
    return name.replace("-", "_")


def class_name(name: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in name.split("-"))


def validate_name(name: str, root: Path | None = None) -> None:
    """Raise BenchError (with the rule and a suggestion) if `name` cannot be a new submission."""
    root = Path(root or REPO_ROOT)
    if not MODEL_RE.match(name or "") or len(name) > MAX_NAME:
        suggestion = re.sub(r"-+", "-", re.sub(r"[^a-z0-9]+", "-", (name or "").lower())).strip("-")
        if suggestion and not suggestion[0].isalpha():
            suggestion = "m-" + suggestion
        raise BenchError(f"invalid model name {name!r}: use lowercase letters, digits and single '-', starting with a "
                         f"letter, at most {MAX_NAME} characters (it is the name on the command line and the leaderboard)",
                         hint=f"e.g. `bench new {suggestion[:MAX_NAME] or 'my-model'}`")
    stem = folder_name(name)
    for d in ADAPTER_DIRS:
        for cand in (root / d / stem, root / d / f"{stem}.py", root / d / name):
            if cand.exists():
                raise BenchError(f"{cand} already exists: the name {name!r} is taken",
                                 hint="choose another name (`bench list` shows the adapters)")
    known = discover(root, strict=False)
    if name in known:
        raise BenchError(f"an adapter named {name!r} already exists ({known[name].path})",
                         hint="choose another name (`bench list` shows the adapters)")


def _author() -> str:
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        out = subprocess.run(["git", "config", "user.name"], capture_output=True, text=True, timeout=5, cwd=REPO_ROOT)
        if out.returncode == 0 and out.stdout.strip():
            return out.stdout.strip()
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no user name in some containers
        return "the submitter"


def scaffold(name: str, root: Path | None = None, *, author: str | None = None) -> Path:
    """Write ``submissions/<folder>/adapter.py`` and ``README.md`` under `root`; returns the folder."""
    root = Path(root or REPO_ROOT)
    validate_name(name, root)
    folder = root / "submissions" / folder_name(name)
    subs = {"__NAME__": name, "__CLASS__": class_name(name), "__FOLDER__": f"submissions/{folder_name(name)}/",
            "__AUTHOR__": author or _author(), "__DATE__": _dt.date.today().isoformat()}

    def fill(t: str) -> str:
        for k, v in subs.items():
            t = t.replace(k, v)
        return t

    folder.mkdir(parents=True)
    for file in ("adapter.py", "README.md"):
        (folder / file).write_text(fill((TEMPLATES / f"{file}.tmpl").read_text()))
    return folder
