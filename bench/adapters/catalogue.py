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
from dataclasses import dataclass, field
from pathlib import Path

from bench import REPO_ROOT
from bench.adapters.base import ADAPTER_DIRS, Found, count_parameters, discover, get_adapter
from bench.core.files import CACHE_DIR, atomic_write_bytes

FIELDS = ("name", "description", "reference", "trainable", "causal", "oracle", "config", "train_config", "presets",
          "external", "pretrained_on", "package")
OPTIONAL = {"external": False, "pretrained_on": None, "package": None}   # attributes only some adapters have
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
    #: where `sizes` keeps what it counted (same key as the catalogue's cache); None: not kept
    sizes_file: Path | None = field(default=None, compare=False, repr=False)

    def build(self, **config):
        """The model itself: imports the adapter's module (torch and all), only when a check needs it."""
        return get_adapter(self.name).adapter.build(**config)

    def sizes(self, config: dict) -> tuple[int, int]:
        """`model_sizes` of the model built from `config`, kept in `sizes_file`: the counts are a function
        of the code, which the file's key covers, so a later check need not import the model's module."""
        key = f"{self.name} {json.dumps(config, sort_keys=True)}"
        kept: dict = {}
        if self.sizes_file is not None and self.sizes_file.is_file():
            with contextlib.suppress(OSError, ValueError):
                kept = json.loads(self.sizes_file.read_text())
        if not (isinstance(kept.get(key), list) and len(kept[key]) == 2):
            kept[key] = list(model_sizes(self.build(**config)))
            if self.sizes_file is not None:
                with contextlib.suppress(OSError):   # a read-only checkout: counted again next time
                    atomic_write_bytes(self.sizes_file, json.dumps(kept, indent=1).encode())
        return int(kept[key][0]), int(kept[key][1])


def model_sizes(model) -> tuple[int, int]:
    """(parameters, values of the state dict: parameters and buffers) of a built model."""
    return count_parameters(model), sum(t.numel() for t in model.state_dict().values())


def built_sizes(adapter, config: dict) -> tuple[int, int]:
    """`model_sizes` of `adapter`'s model built from `config`: kept by a catalogue entry, else built."""
    if isinstance(adapter, Described):
        return adapter.sizes(config)
    return model_sizes(adapter.build(**config))


def cache_key(root: Path) -> str:
    """SHA-256 of the interpreter, its environment and every Python file the adapters' modules may import
    from the repository (bench/, baselines/, submissions/)."""
    h = hashlib.sha256(f"{sys.version}\0{sys.prefix}\0{Path(root).resolve()}\0".encode())
    for folder in (BENCH_DIR, *(Path(root) / d for d in ADAPTER_DIRS)):
        for p in sorted(folder.rglob("*.py")):
            h.update(f"{p.relative_to(folder.parent).as_posix()}\0".encode())
            h.update(hashlib.sha256(p.read_bytes()).digest())
    return h.hexdigest()


def _found(entries: list[dict], root: Path, sizes_file: Path | None) -> dict[str, Found]:
    return {e["name"]: Found(adapter=Described(**{f: e.get(f, OPTIONAL.get(f)) for f in FIELDS},
                                               sizes_file=sizes_file), kind=e["kind"], path=root / e["path"])
            for e in entries}


def _survives_json(entries: list[dict]) -> bool:
    try:
        return json.loads(json.dumps(entries)) == entries
    except (TypeError, ValueError):
        return False


def catalogue(root: Path | None = None, *, cache: bool = True, cache_dir: Path | None = None) -> dict[str, Found]:
    """Every adapter that imports cleanly, by name, as `Found` with a `Described` adapter."""
    root = Path(root or REPO_ROOT)
    key = cache_key(root)
    path = Path(cache_dir or CACHE_DIR) / f"adapters-{key}.json"
    sizes_file = path.with_name(f"sizes-{key}.json") if cache else None
    if cache and path.is_file():
        # unreadable or from another version of this module: made again below
        with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
            return _found(json.loads(path.read_text()), root, sizes_file)
    errors: list = []
    entries = [{"kind": f.kind, "path": f.path.relative_to(root).as_posix(),
                **{k: getattr(f.adapter, k, OPTIONAL.get(k)) for k in FIELDS}}
               for f in discover(root, strict=False, errors=errors).values()]
    if cache and not errors and _survives_json(entries):
        with contextlib.suppress(OSError):   # a read-only checkout: no cache
            for old in (*path.parent.glob("adapters-*.json"), *path.parent.glob("sizes-*.json")):
                old.unlink()
            atomic_write_bytes(path, json.dumps(entries, indent=1).encode())
    return _found(entries, root, sizes_file if cache and not errors else None)
