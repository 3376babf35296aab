"""The adapter contract: the one interface every model of the benchmark follows. An adapter names a model,
builds it from a config, says whether it is trainable / causal / an oracle, and maps 16 kHz waveforms
``(batch, time)`` to enhanced ones of the same shape. Adapters live in ``baselines/`` and ``submissions/``,
one per folder (``<folder>/adapter.py``) or file (``<folder>/<name>.py``), found by `discover()`; a worked
example: submissions/README.md and `bench new`."""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import importlib.machinery
import importlib.util
import inspect
import math
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from bench import REPO_ROOT
from bench.core.errors import AdapterError, BenchError
from bench.core.names import validate_model_name

if TYPE_CHECKING:   # torch is imported by the adapters' modules, not to register `bench list`
    import torch

ADAPTER_DIRS = ("baselines", "submissions")


class Adapter:
    """Base class of all adapters. Subclass it, set the class attributes, implement `build`."""

    #: unique name used on the command line and the leaderboard (lowercase, digits, '-')
    name: ClassVar[str] = ""
    #: one line for `bench list` and the leaderboard
    description: ClassVar[str] = ""
    #: where the method comes from (paper, library); shown by `bench list --verbose`
    reference: ClassVar[str] = ""
    #: True if `bench run` must train it before scoring
    trainable: ClassVar[bool] = False
    #: True if output at time t depends only on input up to t plus a fixed lookahead (see `latency_ms`)
    causal: ClassVar[bool] = False
    #: True if the model needs the clean reference (an upper bound, never ranked)
    oracle: ClassVar[bool] = False
    #: default constructor arguments of `build` (the model's config)
    config: ClassVar[dict] = {}
    #: training defaults for the shared trainer (see bench/train/options.py), e.g. {"loss": {"si_sdr": 1.0}}
    train_config: ClassVar[dict] = {}
    #: named overrides: {"quick": {"model": {...}, "train": {...}}, "full": {...}}
    presets: ClassVar[dict] = {}

    def build(self, **config) -> torch.nn.Module:
        """Return the model: an ``nn.Module`` mapping ``(batch, time)`` to ``(batch, time)``."""
        raise NotImplementedError

    def enhance(self, model: torch.nn.Module, noisy: torch.Tensor, clean: torch.Tensor | None = None) -> torch.Tensor:
        """Enhance a batch ``(batch, time)`` -> ``(batch, time)``. Oracles also receive `clean`."""
        return model(noisy)

    def latency_ms(self, model: torch.nn.Module) -> float | None:
        """Algorithmic latency of a causal model in ms (its lookahead), or None if not stated."""
        return None

    def streamer(self, model: torch.nn.Module):
        """A streaming wrapper for online inference (a causal model's `bench.adapters.streaming.Streamer`:
        ``push``, ``flush``, ``delay``, ``hop``; docs/streaming.md), or None (the default: offline only)."""
        return None

    def discriminator(self, **config) -> torch.nn.Module | None:
        """A discriminator for adversarial training, or None (the default). Used only when the training config
        has an ``"adversarial"`` block, whose ``"discriminator"`` dict is `config`; it maps ``(batch, time)`` to
        one ``(score, features)`` per sub-discriminator (docs/training.md, "Adversarial training")."""
        return None

    def resolved_config(self, preset: str | None = None, overrides: dict | None = None) -> dict:
        check_preset(self, preset)
        cfg = dict(self.config)
        if preset:
            cfg.update(self.presets[preset].get("model", {}))
        cfg.update(overrides or {})
        return cfg


def check_preset(adapter, preset: str | None) -> None:
    if preset and preset not in adapter.presets:
        raise AdapterError(f"adapter {adapter.name!r} has no preset {preset!r}",
                           hint=f"presets: {', '.join(adapter.presets) or '(none)'}")


@dataclass(frozen=True)
class Found:
    adapter: Adapter
    kind: str  # "baseline" | "submission"
    path: Path


def _module_files(folder: Path):
    if not folder.is_dir():
        return
    for entry in sorted(folder.iterdir()):
        if entry.name.startswith(("_", ".")):
            continue
        if entry.is_dir() and (entry / "adapter.py").exists():
            yield entry / "adapter.py", f"{folder.name}.{entry.name}.adapter"
        elif entry.suffix == ".py":
            yield entry, f"{folder.name}.{entry.stem}"


def _root_package(root: Path) -> str:
    """A synthetic package whose ``__path__`` is `root`: adapters under a root other than the
    repository's import as ``<package>.submissions.<name>.adapter``, never shadowed by (or
    shadowing) the repository's own ``baselines``/``submissions`` packages."""
    pkg = "_bench_root_" + hashlib.sha256(str(root).encode()).hexdigest()[:12]
    if pkg not in sys.modules:
        spec = importlib.machinery.ModuleSpec(pkg, None, is_package=True)
        spec.submodule_search_locations = [str(root)]
        sys.modules[pkg] = importlib.util.module_from_spec(spec)
    return pkg


def _import(path: Path, modname: str, root: Path | None = None):
    root_path = Path(root or REPO_ROOT).resolve()
    if root_path != Path(REPO_ROOT).resolve():
        modname = f"{_root_package(root_path)}.{modname}"
    elif str(REPO_ROOT) not in sys.path:
        sys.path.insert(0, str(REPO_ROOT))
    try:
        return importlib.import_module(modname)
    except Exception as exc:
        tb = traceback.format_exception_only(type(exc), exc)[-1].strip()
        raise AdapterError(f"{path}: cannot import the adapter module ({tb})",
                           hint="fix the error above; `python -c 'import " + modname + "'` shows the full traceback") from exc


def discover(root: Path | None = None, *, strict: bool = True,
             errors: list[tuple[Path, AdapterError]] | None = None) -> dict[str, Found]:
    """All adapters in baselines/ and submissions/ by name. With ``strict=False`` broken modules are
    skipped (and appended to `errors` as ``(path, error)`` when a list is given)."""
    root = Path(root or REPO_ROOT)
    found: dict[str, Found] = {}
    for folder_name in ADAPTER_DIRS:
        kind = "baseline" if folder_name == "baselines" else "submission"
        for path, modname in _module_files(root / folder_name):
            try:
                mod = _import(path, modname, root)
            except AdapterError as exc:
                if strict:
                    raise
                if errors is not None:
                    errors.append((path, exc))
                continue
            for obj in vars(mod).values():
                if (isinstance(obj, type) and issubclass(obj, Adapter) and obj is not Adapter
                        and obj.__module__ == mod.__name__ and obj.name):
                    try:
                        validate_model_name(obj.name)   # it becomes a folder name under results/ and runs/
                    except BenchError as exc:
                        bad = AdapterError(f"{path}: adapter {obj.__name__}: name {obj.name!r} is not lowercase "
                                           "letters, digits and single '-' (starting with a letter)", hint=exc.hint)
                        bad.adapter_name = obj.name
                        if strict:
                            raise bad from None
                        if errors is not None:
                            errors.append((path, bad))
                        continue
                    if obj.name in found:
                        raise AdapterError(f"two adapters are named {obj.name!r}: {found[obj.name].path} and {path}")
                    found[obj.name] = Found(adapter=obj(), kind=kind, path=path)
    return found


def get_adapter(name: str) -> Found:
    adapters = discover()
    if name not in adapters:
        raise AdapterError(f"no adapter named {name!r}", hint=f"known: {', '.join(sorted(adapters))}; see `bench list`")
    return adapters[name]


def model_option_keys(adapter) -> list[str]:
    """The model options an adapter takes: its config keys, its presets' model keys, `build`'s parameters."""
    keys = set(adapter.config).union(*((p or {}).get("model", {}) for p in adapter.presets.values()))
    with contextlib.suppress(TypeError, ValueError):
        params = inspect.signature(adapter.build).parameters.values()
        keys |= {p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    return sorted(keys)


#: the types a model option's value may have, by the type of its default (bool first: a bool is an int too)
KINDS = ((bool, bool), (int, int), (float, (int, float)), (str, str), ((list, tuple), (list, tuple)), (dict, dict))


def _same_kind(default, value) -> bool:
    kind = next((v for d, v in KINDS if isinstance(default, d)), None)
    if default is None or value is None or kind is None:
        return True
    if isinstance(value, bool) and kind is not bool:   # True is no number here
        return False
    return isinstance(value, kind) and (not isinstance(default, float) or math.isfinite(value))


def check_model_values(adapter, overrides: dict, source: str = "--set") -> None:
    """Model options: known keys of `adapter`, values of the type of the adapter's default."""
    valid = model_option_keys(adapter)
    if unknown := sorted(set(overrides) - set(valid)):
        raise BenchError(f"{source}: unknown model option(s) {unknown} for {adapter.name}",
                         hint=f"valid: {', '.join(valid) or '(none: this model takes no options)'}")
    for key, value in overrides.items():
        default = adapter.config.get(key)
        if not _same_kind(default, value):
            raise BenchError(f"{source} {key}={value!r}: expected {type(default).__name__} like the default "
                             f"{default!r} of {adapter.name}")


#: optional model packages (top-level module) -> the line that installs them
INSTALL_LINE = {"asteroid": "pip install -e '.[models]'", "speechbrain": "pip install -e '.[models]'"}


def build_model(adapter, config: dict, overrides: dict | None = None, source: str = "--set"):
    """``adapter.build(**config)``; a missing package is one `BenchError` naming the install line, and with
    `overrides`, any other constructor error is one line naming those keys (e.g. ``--set hidden=-3``)."""
    try:
        return adapter.build(**config)
    except ModuleNotFoundError as exc:
        top = (exc.name or "").split(".")[0]
        raise BenchError(f"{adapter.name} needs the package {top!r}, which is not installed",
                         hint=INSTALL_LINE.get(top, "pip install -e '.[models]'")) from None
    except Exception as exc:  # noqa: BLE001 -- the model's own error, named by the keys that caused it
        if not overrides:
            raise
        msg = " ".join(str(exc).split())[:200]
        keys = " ".join(f"{k}={v!r}" for k, v in overrides.items())
        raise BenchError(f"{source} {keys}: {adapter.name} cannot be built with this value "
                         f"({type(exc).__name__}: {msg})", hint=f"defaults: {adapter.config}") from None


def count_parameters(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
