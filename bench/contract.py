"""`bench check`: validate an adapter against the contract before any training.

Rules, in order (each failure names the rule, the input and what to fix; `bench check NAME` prints
them as a table and exits 1 on any failure):

``import``       the module is discovered and imports (an import error shows the file and the error)
                 and defines an `Adapter` subclass with a valid ``name`` and a ``description``
``config``       the config to check (the adapter's default, or ``--preset``) is JSON-serializable
                 (results record it) and ``build(**config)`` returns an ``nn.Module``
``cpu``          the model runs on the CPU (every check here runs on the CPU, under
                 ``torch.inference_mode`` in eval mode, as the scorer does)
``shape``        output shape and dtype equal the input's (float32 ``(batch, time)``) for lengths 1,
                 12345 (odd), 16000 (1 s) at batch 1 and 2, and 30 s at batch 1 (5 s with ``--quick``)
``batch``        batch-size invariance: an utterance alone and inside a batch with another utterance of
                 the same length (of a very different level) give the same output within
                 ``1e-4 x`` the input's peak, at 1 s and 12345 samples
``determinism``  in eval mode two calls on the same input give identical outputs
``finite``       no NaN or Inf on 1 s of silence, of full-scale white noise and of a clipped square wave
``train``        trainable adapters only: a ``quick`` preset exists and resolves to a valid training
                 config with a budget (`bench.train.train_config`), and a forward + backward pass in
                 train mode on 2 x 1 s with the adapter's own loss gives a finite loss and finite
                 gradients, some of them non-zero
``model-card``   submissions: a model card (``README.md`` beside ``adapter.py``, or ``<file>.md`` beside a
                 one-file adapter ``<file>.py``) with the fields authors, paper, licence, training budget and notes,
                 each non-empty. Baselines are maintained in this repository (MIT, budgets in their
                 presets): their card is the adapter's ``reference`` plus the module docstring.
                 ``CHANGE ME`` markers the scaffold left in a submission's adapter.py or card are a
                 warning (``warn``), a failure with ``--strict``.
``size/speed``   reported, never failing: parameter count and CPU real-time factor
                 (`bench.speed.measure_rtf`, 1 thread; 10 s input, 3 repeats; 2 s once with ``--quick``)

Oracle adapters receive the input itself as ``clean=``.

``--quick`` is the fast mode for CI: 30 s becomes 5 s, the RTF is measured on 2 s, and models are
built with their ``quick`` preset when they have one (unless ``--preset`` says otherwise).
``bench check --all --quick`` checks every adapter in about 10 s on 2 CPU cores; ``bench check --all``
(default, paper-size configs, 30 s inputs, 10 s RTF) about 10 minutes, mostly SepFormer.
Checks run with 1 torch thread by default (``--threads``): on a small shared machine that is faster.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

from typing import TYPE_CHECKING

from bench import SAMPLE_RATE
from bench.errors import AdapterError, BenchError

if TYPE_CHECKING:  # annotations only
    import torch

    from bench.adapters import Adapter, Found

# torch (and bench.adapters, which imports it) are imported inside the functions: `bench --help` and
# the other commands stay fast, as this module is imported by bench/cli.py to register `bench check`.

NAME_RE = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")
#: lengths of the shape check (samples); the last one is the long input
SHORT_LENGTHS = (1, 12345, SAMPLE_RATE)
LONG_SECONDS, LONG_SECONDS_QUICK = 30.0, 5.0
#: batch-invariance tolerance, relative to the input's peak
BATCH_RTOL = 1e-4
CARD_FIELDS = ("authors", "paper", "licence", "training budget", "notes")
#: accepted spellings of each model-card field label (lower case)
CARD_LABELS = {
    "authors": ("authors", "author", "author(s)"),
    "paper": ("paper", "paper link", "reference", "paper / reference", "paper/reference", "paper or reference"),
    "licence": ("licence", "license"),
    "training budget": ("training budget", "budget"),
    "notes": ("notes", "note"),
}
PLACEHOLDER_RE = re.compile(r"^(todo|tbd|fixme|xxx|\.\.\.|…|-|<[^>]*>|\[[^\]]*\])$", re.I)

PASS, FAIL, SKIP, INFO, WARN = "pass", "FAIL", "skip", "info", "warn"
#: text the scaffold marks the parts to edit with; left in a submission it is a warning (a failure with --strict)
SCAFFOLD_MARKER = "CHANGE ME"
RULES = ("import", "config", "cpu", "shape", "batch", "determinism", "finite", "train", "model-card", "size/speed")


@dataclass
class Result:
    rule: str
    status: str
    input: str = ""
    detail: str = ""
    fix: str = ""


@dataclass
class Report:
    name: str
    kind: str
    path: str
    config_label: str = "default config"
    results: list[Result] = field(default_factory=list)
    parameters: int | None = None
    rtf: float | None = None
    strict: bool = False

    @property
    def ok(self) -> bool:
        return not self.failures

    @property
    def failures(self) -> list[Result]:
        bad = (FAIL, WARN) if self.strict else (FAIL,)
        return [r for r in self.results if r.status in bad]

    def add(self, rule: str, status: str, input: str = "", detail: str = "", fix: str = "") -> Result:
        r = Result(rule, status, input, detail, fix)
        self.results.append(r)
        return r

    def status_of(self, rule: str) -> str:
        st = [r.status for r in self.results if r.rule == rule]
        for s in (FAIL, WARN, PASS):
            if s in st:
                return s
        return st[0] if st else SKIP


# ----------------------------------------------------------------------------------------------
# test signals (deterministic)
def speech_like(n: int, seed: int = 0, peak: float = 0.5) -> torch.Tensor:
    """A voiced harmonic signal under a syllable-rate envelope plus a little noise, float32."""
    import numpy as np
    import torch

    rng = np.random.default_rng(seed)
    t = np.arange(n) / SAMPLE_RATE
    f0 = rng.uniform(100, 200) * (1 + 0.03 * np.sin(2 * np.pi * 5 * t))
    phase = 2 * np.pi * np.cumsum(f0) / SAMPLE_RATE
    x = sum(np.sin(k * phase + rng.uniform(0, 2 * np.pi)) / k for k in range(1, 16))
    x = x * (0.2 + 0.8 * np.clip(np.sin(2 * np.pi * 4 * t), 0, None)) + 0.05 * rng.standard_normal(n)
    m = np.max(np.abs(x)) if n else 1.0
    return torch.from_numpy((peak * x / (m or 1.0)).astype(np.float32))


def stress_inputs(n: int = SAMPLE_RATE) -> dict[str, torch.Tensor]:
    import numpy as np
    import torch

    rng = np.random.default_rng(1)
    t = np.arange(n) / SAMPLE_RATE
    return {
        "silence (zeros)": torch.zeros(n),
        "full-scale white noise": torch.from_numpy(rng.uniform(-1, 1, n).astype(np.float32)),
        "clipped square wave (±1, 220 Hz)": torch.from_numpy(np.where(np.sin(2 * np.pi * 220 * t) >= 0, 1.0, -1.0).astype(np.float32)),
    }


def _desc(x: torch.Tensor) -> str:
    b, n = x.shape
    dur = f"{n / SAMPLE_RATE:g} s" if n >= SAMPLE_RATE and n % SAMPLE_RATE == 0 else f"{n} samples"
    return f"batch {b} x {dur}"


def _exc(exc: BaseException) -> str:
    msg = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {msg[0] if msg else ''}"[:300]


class _Runner:
    """Runs the adapter as the scorer does: eval mode, inference mode, CPU, float32 (batch, time)."""

    def __init__(self, adapter: Adapter, model: torch.nn.Module):
        self.adapter, self.model = adapter, model

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        import torch

        self.model.eval()
        with torch.inference_mode():
            clean = x if self.adapter.oracle else None
            return self.adapter.enhance(self.model, x, clean=clean)


# ----------------------------------------------------------------------------------------------
# model card
def card_path(found: Found) -> Path:
    p = Path(found.path)
    return p.parent / "README.md" if p.name == "adapter.py" else p.with_suffix(".md")


def _label_of(text: str) -> str | None:
    t = re.sub(r"\s+", " ", text.strip().lower())
    for key, labels in CARD_LABELS.items():
        if t in labels:
            return key
    return None


_FIELD_LINE = re.compile(r"^\s*(?:[-*+]\s+)?[*_]*([A-Za-z][A-Za-z ()/]*?)[*_]*\s*:[*_]*\s*(.*)$")


def parse_model_card(text: str) -> dict[str, str]:
    """Field values of a model card: lines ``- **Field:** value`` (or ``Field: value``); a value may
    continue on the following lines (until a blank line, a heading or the next field). HTML comments
    are ignored."""
    text = re.sub(r"<!--.*?-->", "", text, flags=re.S)
    out: dict[str, str] = {}
    current = None
    for line in text.splitlines():
        m = _FIELD_LINE.match(line)
        key = _label_of(m.group(1)) if m else None
        if key:
            current = key
            out[key] = m.group(2).strip()
            continue
        if current and line.strip() and not line.lstrip().startswith("#"):
            out[current] = (out[current] + " " + line.strip()).strip()
        else:
            current = None
    return out


def check_model_card(found: Found) -> list[tuple[str, str, str]]:
    """Problems with a submission's model card as (input, detail, fix) triples; empty when fine."""
    path = card_path(found)
    if not path.exists():
        return [(str(path), "no model card", f"write {path} with the fields {', '.join(CARD_FIELDS)} "
                 "(`bench new` writes a template; see submissions/README.md)")]
    fields = parse_model_card(path.read_text(encoding="utf-8", errors="replace"))
    problems = []
    for f in CARD_FIELDS:
        v = fields.get(f)
        if v is None:
            problems.append((str(path), f"model card field {f!r} is missing",
                             f"add a line '- **{f.capitalize()}:** ...' to {path.name}"))
        elif not re.sub(r"[*_`\s]", "", v) or PLACEHOLDER_RE.match(re.sub(r"[*_`]", "", v).strip()):
            problems.append((str(path), f"model card field {f!r} is empty or a placeholder ({v!r})",
                             f"fill in '{f}' in {path.name}"))
    return problems


# ----------------------------------------------------------------------------------------------
def resolve_found(name: str, root: Path | None = None) -> tuple[Found | None, list[tuple[Path, AdapterError]]]:
    """The adapter `name` (or None) and the modules that failed to import."""
    from bench.adapters import discover

    errors: list[tuple[Path, AdapterError]] = []
    found = discover(root, strict=False, errors=errors)
    return found.get(name), errors


def _kind_of(path: Path) -> str:
    folder = path.parent.parent if path.name == "adapter.py" else path.parent
    return "baseline" if folder.name == "baselines" else "submission"


def _module_stem(path: Path) -> str:
    return path.parent.name if path.name == "adapter.py" else path.stem


def check_found(found: Found, *, quick: bool = False, preset: str | None = None, rtf: bool = True,
                strict: bool = False, threads: int | None = 1) -> Report:
    """Check one discovered adapter against every rule, with `threads` torch threads (None: leave the
    setting alone; 1, the default, is the fastest on a small shared machine); never raises for a broken adapter."""
    from contextlib import nullcontext

    from bench.speed import torch_threads

    with torch_threads(threads) if threads else nullcontext():
        return _check_found(found, quick=quick, preset=preset, rtf=rtf, strict=strict)


class _NoModel(Exception):
    pass


def _check_found(found: Found, *, quick: bool, preset: str | None, rtf: bool, strict: bool) -> Report:
    import torch

    from bench.adapters import count_parameters

    a = found.adapter
    rep = Report(a.name, found.kind, str(found.path), strict=strict)
    long_seconds = LONG_SECONDS_QUICK if quick else LONG_SECONDS

    # import / metadata
    problems = []
    if not NAME_RE.match(a.name or ""):
        problems.append(f"name {a.name!r} is not lowercase letters, digits and single '-' (starting with a letter)")
    if not (a.description or "").strip():
        problems.append("no `description` (one line for `bench list` and the leaderboard)")
    for flag in ("trainable", "causal", "oracle"):
        if not isinstance(getattr(a, flag), bool):
            problems.append(f"`{flag}` is {getattr(a, flag)!r}, not a bool")
    if problems:
        rep.add("import", FAIL, found.path.name, "; ".join(problems), "set the class attributes of the adapter (see bench/adapters.py)")
    else:
        rep.add("import", PASS, found.path.name, f"{type(a).__name__} ({found.kind})")

    # config
    use_preset = preset
    if use_preset is None and quick and "quick" in (a.presets or {}):
        use_preset = "quick"
    rep.config_label = f"preset {use_preset}" if use_preset else "default config"
    model = None
    try:
        if use_preset is not None and use_preset not in (a.presets or {}):
            rep.add("config", FAIL, rep.config_label, f"no preset {use_preset!r}",
                    f"presets: {', '.join(a.presets or {}) or '(none)'}")
            raise _NoModel
        cfg = a.resolved_config(use_preset)
        json.dumps(cfg, allow_nan=False)
        torch.manual_seed(0)
        model = a.build(**cfg)
        if not isinstance(model, torch.nn.Module):
            raise TypeError(f"build() returned {type(model).__name__}, not a torch.nn.Module")
        rep.add("config", PASS, rep.config_label, f"{len(cfg)} config keys, builds {type(model).__name__}")
    except _NoModel:
        pass
    except (TypeError, ValueError) as exc:
        fix = ("config values must be JSON numbers, strings, booleans, lists or dicts, and `build` must accept "
               "every key of `config` and return an nn.Module")
        rep.add("config", FAIL, rep.config_label, _exc(exc), fix)
    except Exception as exc:  # noqa: BLE001 - any error of user code is a failed rule
        rep.add("config", FAIL, rep.config_label, _exc(exc), "`build(**config)` must construct the model on the CPU")
    if model is None:
        _card(rep, found)
        rep.add(", ".join(r for r in RULES[2:] if r != "model-card"), SKIP, "", "need a model (see `config`)")
        return rep

    run = _Runner(a, model)
    rep.parameters = count_parameters(model)

    # cpu
    try:
        model.to("cpu")
        x = speech_like(SAMPLE_RATE, 0)[None]
        y = run(x)
        dev = {p.device.type for p in list(model.parameters()) + list(model.buffers())}
        if isinstance(y, torch.Tensor) and y.device.type != "cpu":
            rep.add("cpu", FAIL, _desc(x), f"output is on {y.device}", "do not move tensors to a fixed device; follow the input's device")
        elif dev - {"cpu"}:
            rep.add("cpu", FAIL, "", f"parameters or buffers on {sorted(dev)}", "keep the model on the device it is moved to")
        else:
            rep.add("cpu", PASS, _desc(x), "runs on the CPU")
    except Exception as exc:  # noqa: BLE001
        rep.add("cpu", FAIL, "batch 1 x 1 s", _exc(exc), "the model must run on the CPU with a (batch, time) float32 input")

    # shape and dtype
    cases = [(b, n) for n in SHORT_LENGTHS for b in (1, 2)] + [(1, int(long_seconds * SAMPLE_RATE))]
    shape_ok = True
    for b, n in cases:
        x = torch.stack([speech_like(n, s) for s in range(b)])
        try:
            y = run(x)
        except Exception as exc:  # noqa: BLE001
            shape_ok = False
            rep.add("shape", FAIL, _desc(x), f"raised {_exc(exc)}", "the model must accept any length >= 1 (pad inside, crop back)")
            continue
        if not isinstance(y, torch.Tensor):
            shape_ok = False
            rep.add("shape", FAIL, _desc(x), f"returned {type(y).__name__}, not a tensor", "return a (batch, time) tensor")
        elif tuple(y.shape) != tuple(x.shape):
            shape_ok = False
            rep.add("shape", FAIL, _desc(x), f"output shape {tuple(y.shape)} != input shape {tuple(x.shape)}",
                    "return exactly (batch, time): pad the input to what the model needs and crop the output back")
        elif y.dtype != x.dtype:
            shape_ok = False
            rep.add("shape", FAIL, _desc(x), f"output dtype {y.dtype} != input dtype {x.dtype}",
                    "return the input's dtype (float32), e.g. `.to(x.dtype)`")
    if shape_ok:
        rep.add("shape", PASS, f"lengths 1, 12345, 16000 (batch 1, 2), {long_seconds:g} s (batch 1)", "shape and dtype kept")

    # batch invariance
    batch_ok = True
    for n in (SAMPLE_RATE, 12345):
        xa = speech_like(n, 3)
        xb = 0.9 * stress_inputs(n)["full-scale white noise"]   # a partner of another level and spectrum
        try:
            ya, yb = run(xa[None]), run(xb[None])
            yab = run(torch.stack([xa, xb]))
            diff = max(float((yab[0] - ya[0]).abs().max()), float((yab[1] - yb[0]).abs().max()))
            tol = BATCH_RTOL * max(float(xa.abs().max()), float(xb.abs().max()))
        except Exception as exc:  # noqa: BLE001
            batch_ok = False
            rep.add("batch", FAIL, f"{n} samples", _exc(exc), "see `shape`")
            continue
        if not math.isfinite(diff) or diff > tol:
            batch_ok = False
            rep.add("batch", FAIL, f"{n} samples alone vs in a batch of 2",
                    f"max |difference| {diff:.3g} > tolerance {tol:.3g}",
                    "process each utterance on its own: no statistics over the batch (e.g. normalize per item with "
                    "dim=-1, not over the whole tensor; no BatchNorm statistics in eval)")
    if batch_ok:
        rep.add("batch", PASS, "1 s and 12345 samples, alone vs batch of 2", f"within {BATCH_RTOL:g} x peak")

    # determinism
    x = speech_like(SAMPLE_RATE, 5)[None]
    try:
        y1, y2 = run(x), run(x)
        if torch.equal(y1, y2):
            rep.add("determinism", PASS, _desc(x), "two eval calls identical")
        else:
            rep.add("determinism", FAIL, _desc(x), f"two eval calls differ (max |difference| {float((y1 - y2).abs().max()):.3g})",
                    "no randomness in eval mode: use nn.Dropout (off in eval), not F.dropout(training=True) or torch.rand*")
    except Exception as exc:  # noqa: BLE001
        rep.add("determinism", FAIL, _desc(x), _exc(exc), "see `shape`")

    # finite on stress inputs
    fin_ok = True
    for label, sig in stress_inputs().items():
        try:
            y = run(sig[None])
            bad = int((~torch.isfinite(y)).sum())
        except Exception as exc:  # noqa: BLE001
            fin_ok = False
            rep.add("finite", FAIL, label, _exc(exc), "the model must handle any waveform in [-1, 1]")
            continue
        if bad:
            fin_ok = False
            rep.add("finite", FAIL, label, f"{bad} NaN/Inf output samples",
                    "guard divisions and logs with an epsilon (e.g. x / (rms + 1e-8), log(p + 1e-8))")
    if fin_ok:
        rep.add("finite", PASS, "1 s of silence, full-scale white noise, clipped square wave", "all outputs finite")

    # trainable
    if a.trainable:
        _train_rule(rep, found, cfg)
    else:
        rep.add("train", SKIP, "", "not trainable")

    _card(rep, found)

    # size and speed
    if rtf:
        try:
            from bench.speed import measure_rtf

            sec, reps = (2.0, 1) if quick else (10.0, 3)
            rep.rtf = measure_rtf(a, model, seconds=sec, threads=1, repeats=reps)
            rep.add("size/speed", INFO, f"{sec:g} s, CPU, 1 thread", f"{rep.parameters:,} parameters, RTF {rep.rtf:.3f}")
        except Exception as exc:  # noqa: BLE001
            rep.add("size/speed", INFO, "", f"{rep.parameters:,} parameters; RTF not measured ({_exc(exc)})")
    else:
        rep.add("size/speed", INFO, "", f"{rep.parameters:,} parameters")
    return rep


def _train_rule(rep: Report, found: Found, cfg: dict) -> None:
    import torch

    from bench.losses import build_loss
    from bench.train import train_config

    a = found.adapter
    if "quick" not in (a.presets or {}):
        rep.add("train", FAIL, "presets", "trainable adapter without a 'quick' preset",
                'add presets = {"quick": {"model": {...}, "train": {"max_minutes": ...}}} (a CPU run of minutes)')
        return
    try:
        tcfg = train_config(a, "quick", {})
    except BenchError as exc:
        rep.add("train", FAIL, "preset 'quick'", str(exc).splitlines()[0],
                "the quick preset's 'train' needs a budget (max_steps and/or max_minutes) and only keys of bench/train.py DEFAULTS")
        return
    try:
        loss_fn = build_loss(tcfg["loss"])
    except Exception as exc:  # noqa: BLE001
        rep.add("train", FAIL, "train_config['loss']", _exc(exc), "use losses of bench/losses.py, e.g. {'l1': 1.0, 'mrstft': 1.0}")
        return
    try:
        torch.manual_seed(0)
        model = a.build(**cfg)
        model.train()
        noisy = torch.stack([speech_like(SAMPLE_RATE, 6), speech_like(SAMPLE_RATE, 7)])
        clean = 0.8 * noisy
        est = model(noisy)   # as the trainer calls it
        loss, _ = loss_fn(est.float(), clean)
        if not torch.isfinite(loss):
            rep.add("train", FAIL, "batch 2 x 1 s, train mode", f"loss is {loss.item()}", "check the model's output scale")
            return
        if not loss.requires_grad:
            rep.add("train", FAIL, "batch 2 x 1 s, train mode", "no parameter received a non-zero gradient "
                    "(the loss has no grad_fn)", "the output must depend on the parameters through differentiable ops "
                    "(no .detach(), no torch.no_grad / inference_mode inside forward)")
            return
        loss.backward()
        grads = [p.grad for p in model.parameters() if p.grad is not None]
        n_params = sum(1 for p in model.parameters() if p.requires_grad)
        if n_params == 0:
            rep.add("train", FAIL, "batch 2 x 1 s", "the model has no trainable parameters", "set trainable = False, or add parameters")
            return
        if not grads or not any(bool(g.abs().sum() > 0) for g in grads):
            rep.add("train", FAIL, "batch 2 x 1 s, train mode", "no parameter received a non-zero gradient",
                    "the output must depend on the parameters through differentiable ops (no .detach(), no torch.no_grad)")
            return
        if not all(bool(torch.isfinite(g).all()) for g in grads):
            rep.add("train", FAIL, "batch 2 x 1 s, train mode", "NaN/Inf gradients",
                    "guard sqrt/log/abs of complex near zero with an epsilon")
            return
        rep.add("train", PASS, "preset 'quick'; batch 2 x 1 s, train mode",
                f"loss {loss.item():.3g}; gradients finite on {len(grads)}/{n_params} parameter tensors")
    except Exception as exc:  # noqa: BLE001
        rep.add("train", FAIL, "batch 2 x 1 s, train mode", f"forward/backward raised {_exc(exc)}",
                "model(noisy) must be differentiable in train mode")


def _card(rep: Report, found: Found) -> None:
    a = found.adapter
    if found.kind == "baseline":
        doc = (getattr(type(a), "__doc__", None) or "").strip() or (_module_doc(a) or "").strip()
        if (a.reference or "").strip() and doc:
            rep.add("model-card", PASS, "adapter reference + docstring", f"baseline: {a.reference[:60]}")
        else:
            rep.add("model-card", FAIL, found.path.name, "a baseline needs a `reference` and a module docstring",
                    "set `reference` (paper or '-') and describe the method in the module docstring")
        return
    problems = check_model_card(found)
    if not problems:
        rep.add("model-card", PASS, card_path(found).name, "authors, paper, licence, training budget, notes")
    for inp, detail, fix in problems:
        rep.add("model-card", FAIL, inp, detail, fix)
    for path in (Path(found.path), card_path(found)):
        try:
            n = path.read_text(encoding="utf-8", errors="replace").count(SCAFFOLD_MARKER)
        except OSError:
            continue
        if n:
            rep.add("model-card", WARN, path.name, f"{n} '{SCAFFOLD_MARKER}' marker(s) of the scaffold left",
                    f"edit the parts marked '{SCAFFOLD_MARKER}' (a failure with --strict)")


def _module_doc(a: Adapter) -> str | None:
    import sys

    mod = sys.modules.get(type(a).__module__)
    return getattr(mod, "__doc__", None)


def import_failure_report(path: Path, err: AdapterError, kind: str) -> Report:
    rep = Report(_module_stem(path).replace("_", "-"), kind, str(path))
    detail = err.message.split(": ", 1)[-1] if err.message.startswith(str(path)) else err.message
    hint = err.hint or ""
    if "_bench_root_" in hint:   # imported under another --root: that module name means nothing outside
        hint = f"fix the error in {path}"
    rep.add("import", FAIL, str(path), detail, hint)
    rep.add(", ".join(RULES[1:]), SKIP, "", "need the module to import")
    return rep


def check(name: str, *, root: Path | None = None, quick: bool = False, preset: str | None = None, rtf: bool = True,
          strict: bool = False, threads: int | None = 1) -> Report:
    """Check adapter `name` under `root` (default: the repository)."""
    from bench.adapters import discover

    found, errors = resolve_found(name, root)
    if found is not None:
        return check_found(found, quick=quick, preset=preset, rtf=rtf, strict=strict, threads=threads)
    stem = name.replace("-", "_")
    for path, err in errors:
        if _module_stem(path) in (name, stem):
            return import_failure_report(path, err, _kind_of(path))
    known = sorted(discover(root, strict=False))
    hint = f"known: {', '.join(known)}"
    if errors:
        hint += "; modules that failed to import: " + ", ".join(str(p) for p, _ in errors)
    raise AdapterError(f"no adapter named {name!r}", hint=hint)


def check_all(*, root: Path | None = None, quick: bool = False, preset: str | None = None, rtf: bool = True,
              strict: bool = False, threads: int | None = 1, progress=None) -> list[Report]:
    from bench.adapters import discover

    errors: list[tuple[Path, AdapterError]] = []
    found = discover(root, strict=False, errors=errors)
    reports = []
    for path, err in errors:
        reports.append(import_failure_report(path, err, _kind_of(path)))
    for name in sorted(found):
        if progress:
            progress(name)
        p = preset if (preset is None or preset in found[name].adapter.presets) else None
        reports.append(check_found(found[name], quick=quick, preset=p, rtf=rtf, strict=strict, threads=threads))
    return reports


# ----------------------------------------------------------------------------------------------
# CLI
_STYLE = {PASS: "[green]pass[/]", FAIL: "[bold red]FAIL[/]", SKIP: "[dim]skip[/]", INFO: "[cyan]info[/]", WARN: "[yellow]warn[/]"}


def report_table(rep: Report):
    from rich.markup import escape
    from rich.table import Table

    t = Table(title=escape(f"bench check {rep.name} ({rep.kind}, {rep.config_label}): {rep.path}"), show_lines=False)
    cols = ("rule", "result", "input", "detail") + (("fix",) if not rep.ok else ())
    for col in cols:
        t.add_column(col, overflow="fold")
    for r in rep.results:
        row = [r.rule, _STYLE.get(r.status, r.status), escape(r.input), escape(r.detail)]
        t.add_row(*row, *([escape(r.fix) if r in rep.failures else ""] if not rep.ok else []))
    return t


def summary_table(reports: list[Report], quick: bool = False):
    from rich.table import Table

    t = Table(title="bench check --all" + (" --quick" if quick else ""), caption=f"rules: {', '.join(RULES[:-1])}")
    for col in ("adapter", "kind", "config", "result", "params", "RTF 1 thr"):
        t.add_column(col, justify="right" if col in ("params", "RTF 1 thr") else "left",
                     no_wrap=col in ("adapter", "kind", "params", "RTF 1 thr"))
    for rep in reports:
        if rep.ok:
            warned = [r for r in RULES[:-1] if rep.status_of(r) == WARN]
            result = _STYLE[PASS] + (f" [yellow](warn: {', '.join(warned)})[/]" if warned else "")
        else:
            result = _STYLE[FAIL] + " " + ", ".join(sorted({r.rule for r in rep.failures}, key=RULES.index))
        t.add_row(rep.name, rep.kind, rep.config_label.replace("preset ", "").replace(" config", ""), result,
                  "-" if rep.parameters is None else f"{rep.parameters:,}", "-" if rep.rtf is None else f"{rep.rtf:.3f}")
    return t


def cmd_check(args) -> int:
    from rich.markup import escape

    from bench.console import console, err_console

    root = Path(args.root) if args.root else None
    if not args.all and not args.name:
        raise BenchError("bench check: give an adapter NAME or --all", hint="`bench list` shows the adapters")
    if args.all:
        reports = check_all(root=root, quick=args.quick, preset=args.preset, rtf=not args.no_rtf, strict=args.strict,
                            threads=args.threads, progress=lambda n: err_console.print(f"[dim]checking {n} ...[/]"))
    else:
        reports = [check(args.name, root=root, quick=args.quick, preset=args.preset, rtf=not args.no_rtf,
                         strict=args.strict, threads=args.threads)]
    for rep in reports:
        if args.all and rep.ok and not args.verbose_tables:
            continue
        console.print(report_table(rep))
    if args.all:
        console.print(summary_table(reports, args.quick))
    bad = [r for r in reports if not r.ok]
    for rep in bad:
        for r in rep.failures:
            err_console.print("[bold red]FAIL[/] " + escape(f"{rep.name} [{r.rule}] {r.input}: {r.detail}"
                                                            + (f"\n  -> {r.fix}" if r.fix else "")),
                              soft_wrap=True, highlight=False)
    if bad:
        err_console.print(f"[red]{len(bad)} of {len(reports)} adapter(s) break the contract[/]")
        return 1
    console.print(f"[green]ok[/] {len(reports)} adapter(s) follow the contract")
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser("check", help="check an adapter against the contract (shapes, batch invariance, "
                                            "determinism, NaN, training step, model card) before any training")
    p.add_argument("name", nargs="?", default=None, help="adapter name (see `bench list`)")
    p.add_argument("--all", action="store_true", help="check every adapter in baselines/ and submissions/ (CI)")
    p.add_argument("--quick", action="store_true",
                   help="fast mode: 5 s instead of 30 s, RTF on 2 s, and the `quick` preset's model when there is one")
    p.add_argument("--preset", default=None, help="check the model of this preset (default: the adapter's config)")
    p.add_argument("--no-rtf", action="store_true", help="skip the real-time-factor measurement")
    p.add_argument("--strict", action="store_true", help=f"warnings fail too (e.g. '{SCAFFOLD_MARKER}' markers left by the scaffold)")
    p.add_argument("--threads", type=int, default=1,
                   help="torch threads for the checks (default 1: fastest on a shared machine; the RTF always uses 1)")
    p.add_argument("--root", default=None, help="folder holding baselines/ and submissions/ (default: the repository)")
    p.add_argument("--verbose-tables", action="store_true", help="with --all, print every adapter's table, not only failing ones")
    p.set_defaults(func=cmd_check)
