"""The names that become folder names (run ids, models, tracks) and the check that every output path
stays inside its root. A name is validated before anything is written; a path is resolved (symlinks,
``..``) and refused when it leaves its root."""

from __future__ import annotations

import re
from pathlib import Path

from bench.core.errors import BenchError

#: run ids: letters, digits, '.', '_', '-'; starts with a letter or digit (so never '.', '..' or hidden)
RUN_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
#: adapter (model) names: lowercase letters, digits and single '-' between them, starting with a letter
MODEL_RE = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")
#: track names and split ids: lowercase letters, digits, '.', '_', '-'; starts with a letter or digit
TRACK_RE = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
MAX_LEN = 100


def _check(kind: str, value, pattern: re.Pattern, rule: str) -> str:
    if not isinstance(value, str) or len(value) > MAX_LEN or not pattern.match(value) or ".." in value:
        raise BenchError(f"invalid {kind} {value!r}: {rule}, at most {MAX_LEN} characters",
                         hint="names become folder names: no '/', no '..', no spaces")
    return value


def validate_run_id(run_id) -> str:
    return _check("run id", run_id, RUN_ID_RE, "use letters, digits, '.', '_' and '-', starting with a letter or digit")


def validate_model_name(name) -> str:
    return _check("model name", name, MODEL_RE,
                  "use lowercase letters, digits and single '-', starting with a letter (e.g. my-model)")


def validate_track_name(name) -> str:
    return _check("track name", name, TRACK_RE,
                  "use lowercase letters, digits, '.', '_' and '-', starting with a letter or digit")


def inside(root: Path | str, path: Path | str, what: str = "output") -> Path:
    """`path` resolved; a `BenchError` when it does not lie inside `root` (also resolved)."""
    root_r, path_r = Path(root).resolve(), Path(path).resolve()
    if path_r != root_r and root_r not in path_r.parents:
        raise BenchError(f"{what} path {path} resolves to {path_r}, outside {root_r}",
                         hint="run ids, model and track names must not contain '/' or '..'")
    return path_r
