"""The adapters as the board sees them: `catalogue()` gives what ``discover(strict=False)`` gives (each
adapter's name, kind and path), with the adapter's data attributes (`FIELDS`: presets, training config, ...)
in place of its instance, read from a cache made from the same files when there is one, so that `bench
leaderboard --check` need not import every adapter module and torch (5 s and 650 MB of memory). The cache
(``.cache/adapters-<key>.json``, its key and when it is written: docs/board-speed.md) holds no results:
every results folder is still checked from its files on every rendering; ``cache=False`` always imports."""

from __future__ import annotations

import contextlib
import hashlib
import json
import sys
from dataclasses import dataclass
from pathlib import Path

from bench import REPO_ROOT
from bench.adapters.base import ADAPTER_DIRS, Found, discover, get_adapter
from bench.core.files import atomic_write_bytes

FIELDS = ("name", "description", "reference", "trainable", "causal", "oracle", "config", "train_config", "presets",
          "external", "pretrained_on", "package")
OPTIONAL = {"external": False, "pretrained_on": None, "package": None}   # attributes only some adapters have
CACHE_DIR = REPO_ROOT / ".cache"
BENCH_DIR = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Described:
    """An adapter's data attributes (`FIELDS`), without its module."""

    name: str
    description: str
    reference: str
    trainable: bool
    causal: bool
    oracle: bool
    config: dict
    train_config: dict
    presets: dict
    external: bool = False
    pretrained_on: str | None = None
    package: str | None = None

    def build(self, **config):
        """The model itself: imports the adapter's module (torch and all), only when a check needs it."""
        return get_adapter(self.name).adapter.build(**config)


def cache_key(root: Path) -> str:
    """SHA-256 of the interpreter, its environment and every Python file the adapters' modules may import
    from the repository (bench/, baselines/, submissions/)."""
    h = hashlib.sha256(f"{sys.version}\0{sys.prefix}\0{Path(root).resolve()}\0".encode())
    for folder in (BENCH_DIR, *(Path(root) / d for d in ADAPTER_DIRS)):
        for p in sorted(folder.rglob("*.py")):
            h.update(f"{p.relative_to(folder.parent).as_posix()}\0".encode())
            h.update(hashlib.sha256(p.read_bytes()).digest())
    return h.hexdigest()


def _found(entries: list[dict], root: Path) -> dict[str, Found]:
    return {e["name"]: Found(adapter=Described(**{f: e.get(f, OPTIONAL.get(f)) for f in FIELDS}), kind=e["kind"],
                             path=root / e["path"])
            for e in entries}


def _survives_json(entries: list[dict]) -> bool:
    try:
        return json.loads(json.dumps(entries)) == entries
    except (TypeError, ValueError):
        return False


def catalogue(root: Path | None = None, *, cache: bool = True, cache_dir: Path | None = None) -> dict[str, Found]:
    """Every adapter that imports cleanly, by name, as `Found` with a `Described` adapter."""
    root = Path(root or REPO_ROOT)
    path = Path(cache_dir or CACHE_DIR) / f"adapters-{cache_key(root)}.json"
    if cache and path.is_file():
        # unreadable or from another version of this module: made again below
        with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
            return _found(json.loads(path.read_text()), root)
    errors: list = []
    entries = [{"kind": f.kind, "path": f.path.relative_to(root).as_posix(),
                **{k: getattr(f.adapter, k, OPTIONAL.get(k)) for k in FIELDS}}
               for f in discover(root, strict=False, errors=errors).values()]
    if cache and not errors and _survives_json(entries):
        with contextlib.suppress(OSError):   # a read-only checkout: no cache
            for old in path.parent.glob("adapters-*.json"):
                old.unlink()
            atomic_write_bytes(path, json.dumps(entries, indent=1).encode())
    return _found(entries, root)
