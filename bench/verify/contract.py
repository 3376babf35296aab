"""The adapter contract that `bench check` enforces: one function per rule of `RULES` (``rule_<name>``;
their inputs: submissions/README.md), each adding its results (rule, status, input, what went wrong, how to
fix it) to a `Report`. Every rule runs the model as the scorer does (CPU, eval mode, inference mode; oracles
receive the input as ``clean=``); `bench.verify.check` runs them in order."""

from __future__ import annotations

import json
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from bench import SAMPLE_RATE
from bench.adapters.base import Adapter, Found, count_parameters
from bench.adapters.modelcard import SCAFFOLD_MARKER, card_path, card_problems, scaffold_markers
from bench.adapters.speed import measure_rtf
from bench.core.errors import BenchError
from bench.core.names import MODEL_RE
from bench.train import adversarial
from bench.train.losses import build_loss
from bench.train.runconfig import train_config

#: lengths of the shape check (samples), before the long input
SHORT_LENGTHS = (1, 12345, SAMPLE_RATE)
LONG_SECONDS, LONG_SECONDS_QUICK = 30.0, 5.0
#: batch-invariance tolerance, relative to the input's peak
BATCH_RTOL = 1e-4
PASS, FAIL, SKIP, INFO, WARN = "pass", "FAIL", "skip", "info", "warn"
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
        return next((s for s in (FAIL, WARN, PASS) if s in st), st[0] if st else SKIP)


# test signals (deterministic)
def speech_like(n: int, seed: int = 0, peak: float = 0.5) -> torch.Tensor:
    """A voiced harmonic signal under a syllable-rate envelope plus a little noise, float32."""
    rng = np.random.default_rng(seed)
    t = np.arange(n) / SAMPLE_RATE
    f0 = rng.uniform(100, 200) * (1 + 0.03 * np.sin(2 * np.pi * 5 * t))
    phase = 2 * np.pi * np.cumsum(f0) / SAMPLE_RATE
    x = sum(np.sin(k * phase + rng.uniform(0, 2 * np.pi)) / k for k in range(1, 16))
    x = x * (0.2 + 0.8 * np.clip(np.sin(2 * np.pi * 4 * t), 0, None)) + 0.05 * rng.standard_normal(n)
    m = np.max(np.abs(x)) if n else 1.0
    return torch.from_numpy((peak * x / (m or 1.0)).astype(np.float32))


def stress_inputs(n: int = SAMPLE_RATE) -> dict[str, torch.Tensor]:
    rng = np.random.default_rng(1)
    t = np.arange(n) / SAMPLE_RATE
    square = np.where(np.sin(2 * np.pi * 220 * t) >= 0, 1.0, -1.0).astype(np.float32)
    return {"silence (zeros)": torch.zeros(n),
            "full-scale white noise": torch.from_numpy(rng.uniform(-1, 1, n).astype(np.float32)),
            "clipped square wave (±1, 220 Hz)": torch.from_numpy(square)}


def _desc(x: torch.Tensor) -> str:
    b, n = x.shape
    dur = f"{n / SAMPLE_RATE:g} s" if n >= SAMPLE_RATE and n % SAMPLE_RATE == 0 else f"{n} samples"
    return f"batch {b} x {dur}"


def _exc(exc: BaseException) -> str:
    msg = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {msg[0] if msg else ''}"[:300]


class Runner:
    """Runs the adapter as the scorer does: eval mode, inference mode, CPU, float32 (batch, time)."""

    def __init__(self, adapter: Adapter, model: torch.nn.Module):
        self.adapter, self.model = adapter, model

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        self.model.eval()
        with torch.inference_mode():
            return self.adapter.enhance(self.model, x, clean=x if self.adapter.oracle else None)


# the rules
def rule_import(rep: Report, found: Found) -> None:
    a = found.adapter
    problems = []
    if not MODEL_RE.match(a.name or ""):
        problems.append(f"name {a.name!r} is not lowercase letters, digits and single '-' (starting with a letter)")
    if not (a.description or "").strip():
        problems.append("no `description` (one line for `bench list` and the leaderboard)")
    for flag in ("trainable", "causal", "oracle"):
        if not isinstance(getattr(a, flag), bool):
            problems.append(f"`{flag}` is {getattr(a, flag)!r}, not a bool")
    if problems:
        rep.add("import", FAIL, found.path.name, "; ".join(problems),
                "set the class attributes of the adapter (see bench/adapters/base.py)")
    else:
        rep.add("import", PASS, found.path.name, f"{type(a).__name__} ({found.kind})")


def rule_config(rep: Report, a: Adapter, preset: str | None) -> tuple[dict | None, torch.nn.Module | None]:
    """(config, model built from it), or (None, None) after a failure."""
    rep.config_label = f"preset {preset}" if preset else "default config"
    if preset is not None and preset not in (a.presets or {}):
        rep.add("config", FAIL, rep.config_label, f"no preset {preset!r}",
                f"presets: {', '.join(a.presets or {}) or '(none)'}")
        return None, None
    try:
        cfg = a.resolved_config(preset)
        json.dumps(cfg, allow_nan=False)
        torch.manual_seed(0)
        model = a.build(**cfg)
        if not isinstance(model, torch.nn.Module):
            raise TypeError(f"build() returned {type(model).__name__}, not a torch.nn.Module")
    except (TypeError, ValueError) as exc:
        rep.add("config", FAIL, rep.config_label, _exc(exc),
                "config values must be JSON numbers, strings, booleans, lists or dicts, and `build` must accept "
                "every key of `config` and return an nn.Module")
        return None, None
    except Exception as exc:  # noqa: BLE001 - any error of user code is a failed rule
        rep.add("config", FAIL, rep.config_label, _exc(exc), "`build(**config)` must construct the model on the CPU")
        return None, None
    rep.add("config", PASS, rep.config_label, f"{len(cfg)} config keys, builds {type(model).__name__}")
    return cfg, model


def rule_cpu(rep: Report, run: Runner) -> None:
    model = run.model
    try:
        model.to("cpu")
        x = speech_like(SAMPLE_RATE, 0)[None]
        y = run(x)
        dev = {p.device.type for p in list(model.parameters()) + list(model.buffers())}
        if isinstance(y, torch.Tensor) and y.device.type != "cpu":
            rep.add("cpu", FAIL, _desc(x), f"output is on {y.device}",
                    "do not move tensors to a fixed device; follow the input's device")
        elif dev - {"cpu"}:
            rep.add("cpu", FAIL, "", f"parameters or buffers on {sorted(dev)}", "keep the model on the device it is moved to")
        else:
            rep.add("cpu", PASS, _desc(x), "runs on the CPU")
    except Exception as exc:  # noqa: BLE001
        rep.add("cpu", FAIL, "batch 1 x 1 s", _exc(exc), "the model must run on the CPU with a (batch, time) float32 input")


def _shape_problem(run: Runner, x: torch.Tensor) -> tuple[str, str] | None:
    try:
        y = run(x)
    except Exception as exc:  # noqa: BLE001
        return f"raised {_exc(exc)}", "the model must accept any length >= 1 (pad inside, crop back)"
    if not isinstance(y, torch.Tensor):
        return f"returned {type(y).__name__}, not a tensor", "return a (batch, time) tensor"
    if tuple(y.shape) != tuple(x.shape):
        return (f"output shape {tuple(y.shape)} != input shape {tuple(x.shape)}",
                "return exactly (batch, time): pad the input to what the model needs and crop the output back")
    if y.dtype != x.dtype:
        return f"output dtype {y.dtype} != input dtype {x.dtype}", "return the input's dtype (float32), e.g. `.to(x.dtype)`"
    return None


def rule_shape(rep: Report, run: Runner, long_seconds: float) -> None:
    before = len(rep.results)
    for b, n in [(b, n) for n in SHORT_LENGTHS for b in (1, 2)] + [(1, int(long_seconds * SAMPLE_RATE))]:
        x = torch.stack([speech_like(n, s) for s in range(b)])
        if problem := _shape_problem(run, x):
            rep.add("shape", FAIL, _desc(x), *problem)
    if len(rep.results) == before:   # no failure
        rep.add("shape", PASS, f"lengths 1, 12345, {SAMPLE_RATE} (batch 1, 2), {long_seconds:g} s (batch 1)",
                "shape and dtype kept")


def rule_batch(rep: Report, run: Runner) -> None:
    before = len(rep.results)
    for n in (SAMPLE_RATE, 12345):
        xa = speech_like(n, 3)
        xb = 0.9 * stress_inputs(n)["full-scale white noise"]   # a partner of another level and spectrum
        try:
            ya, yb = run(xa[None]), run(xb[None])
            yab = run(torch.stack([xa, xb]))
            diff = max(float((yab[0] - ya[0]).abs().max()), float((yab[1] - yb[0]).abs().max()))
            tol = BATCH_RTOL * max(float(xa.abs().max()), float(xb.abs().max()))
        except Exception as exc:  # noqa: BLE001
            rep.add("batch", FAIL, f"{n} samples", _exc(exc), "see `shape`")
            continue
        if not math.isfinite(diff) or diff > tol:
            rep.add("batch", FAIL, f"{n} samples alone vs in a batch of 2",
                    f"max |difference| {diff:.3g} > tolerance {tol:.3g}",
                    "process each utterance on its own: no statistics over the batch (e.g. normalize per item with "
                    "dim=-1, not over the whole tensor; no BatchNorm statistics in eval)")
    if len(rep.results) == before:   # no failure
        rep.add("batch", PASS, "1 s and 12345 samples, alone vs batch of 2", f"within {BATCH_RTOL:g} x peak")


def rule_determinism(rep: Report, run: Runner) -> None:
    x = speech_like(SAMPLE_RATE, 5)[None]
    try:
        y1, y2 = run(x), run(x)
    except Exception as exc:  # noqa: BLE001
        rep.add("determinism", FAIL, _desc(x), _exc(exc), "see `shape`")
        return
    if torch.equal(y1, y2):
        rep.add("determinism", PASS, _desc(x), "two eval calls identical")
    else:
        rep.add("determinism", FAIL, _desc(x),
                f"two eval calls differ (max |difference| {float((y1 - y2).abs().max()):.3g})",
                "no randomness in eval mode: use nn.Dropout (off in eval), not F.dropout(training=True) or torch.rand*")


def rule_finite(rep: Report, run: Runner) -> None:
    before = len(rep.results)
    for label, sig in stress_inputs().items():
        try:
            bad = int((~torch.isfinite(run(sig[None]))).sum())
        except Exception as exc:  # noqa: BLE001
            rep.add("finite", FAIL, label, _exc(exc), "the model must handle any waveform in [-1, 1]")
            continue
        if bad:
            rep.add("finite", FAIL, label, f"{bad} NaN/Inf output samples",
                    "guard divisions and logs with an epsilon (e.g. x / (rms + 1e-8), log(p + 1e-8))")
    if len(rep.results) == before:   # no failure
        rep.add("finite", PASS, "1 s of silence, full-scale white noise, clipped square wave", "all outputs finite")


def rule_train(rep: Report, a: Adapter, cfg: dict) -> None:
    if not a.trainable:
        rep.add("train", SKIP, "", "not trainable")
        return
    if "quick" not in (a.presets or {}):
        rep.add("train", FAIL, "presets", "trainable adapter without a 'quick' preset",
                'add presets = {"quick": {"model": {...}, "train": {"max_minutes": ...}}} (a CPU run of minutes)')
        return
    try:
        tcfg = train_config(a, "quick", {})
    except BenchError as exc:
        rep.add("train", FAIL, "preset 'quick'", str(exc).splitlines()[0], "the quick preset's 'train' needs a budget "
                "(max_steps and/or max_minutes) and only keys of bench/train/options.py DEFAULTS")
        return
    try:
        loss_fn = build_loss(tcfg["loss"])
    except Exception as exc:  # noqa: BLE001
        rep.add("train", FAIL, "train_config['loss']", _exc(exc),
                "use losses of bench/train/losses.py, e.g. {'l1': 1.0, 'mrstft': 1.0}")
        return
    where = "batch 2 x 1 s, train mode"
    no_grad_fix = "the output must depend on the parameters through differentiable ops"
    try:
        torch.manual_seed(0)
        model = a.build(**cfg)
        model.train()
        noisy = torch.stack([speech_like(SAMPLE_RATE, 6), speech_like(SAMPLE_RATE, 7)])
        loss, _ = loss_fn(model(noisy).float(), 0.8 * noisy)   # called as the trainer calls it
        if not torch.isfinite(loss):
            rep.add("train", FAIL, where, f"loss is {loss.item()}", "check the model's output scale")
            return
        if not loss.requires_grad:
            rep.add("train", FAIL, where, "no parameter received a non-zero gradient (the loss has no grad_fn)",
                    no_grad_fix + " (no .detach(), no torch.no_grad / inference_mode inside forward)")
            return
        loss.backward()
        grads = [p.grad for p in model.parameters() if p.grad is not None]
        n_params = sum(1 for p in model.parameters() if p.requires_grad)
        if n_params == 0:
            rep.add("train", FAIL, "batch 2 x 1 s", "the model has no trainable parameters",
                    "set trainable = False, or add parameters")
        elif not grads or not any(bool(g.abs().sum() > 0) for g in grads):
            rep.add("train", FAIL, where, "no parameter received a non-zero gradient",
                    no_grad_fix + " (no .detach(), no torch.no_grad)")
        elif not all(bool(torch.isfinite(g).all()) for g in grads):
            rep.add("train", FAIL, where, "NaN/Inf gradients", "guard sqrt/log/abs of complex near zero with an epsilon")
        else:
            rep.add("train", PASS, "preset 'quick'; " + where,
                    f"loss {loss.item():.3g}; gradients finite on {len(grads)}/{n_params} parameter tensors")
            if tcfg.get("adversarial") is not None:
                rule_adversarial(rep, a, tcfg["adversarial"], model, noisy)
    except Exception as exc:  # noqa: BLE001
        rep.add("train", FAIL, where, f"forward/backward raised {_exc(exc)}", "model(noisy) must be differentiable in train mode")


def rule_adversarial(rep: Report, a: Adapter, adv_cfg: dict, model, noisy) -> None:
    """An adversarial step as the trainer takes it (bench/train/adversarial.py): finite losses, gradients to the model."""
    where = "preset 'quick'; adversarial step, batch 2 x 1 s"
    try:
        adv = adversarial.build(a, adv_cfg, "cpu", use_amp=False)
        model.zero_grad(set_to_none=True)
        extra, logged = adv.step(0.8 * noisy, model(noisy).float(), adv_cfg["warmup_steps"], 1.0)
        extra.backward()
        logged = {k: float(v) for k, v in logged.items()}
        grads = [p.grad for p in model.parameters() if p.grad is not None]
        if not all(map(math.isfinite, logged.values())) or not grads or not all(bool(torch.isfinite(g).all()) for g in grads):
            rep.add("train", FAIL, where, f"non-finite losses or gradients ({logged})", "check the discriminator")
            return
        rep.add("train", PASS, where, ", ".join(f"{k} {v:.3g}" for k, v in logged.items()) + "; model gradients finite")
    except Exception as exc:  # noqa: BLE001
        rep.add("train", FAIL, where, f"raised {_exc(exc)}", "discriminator(**config) must map (batch, time) to a "
                "list of (score, features) per sub-discriminator (bench/train/adversarial.py)")


def rule_model_card(rep: Report, found: Found) -> None:
    a = found.adapter
    if found.kind == "baseline":   # maintained here: the card is the reference plus the module docstring
        module = sys.modules.get(type(a).__module__)
        doc = (type(a).__doc__ or "").strip() or (getattr(module, "__doc__", None) or "").strip()
        if (a.reference or "").strip() and doc:
            rep.add("model-card", PASS, "adapter reference + docstring", f"baseline: {a.reference[:60]}")
        else:
            rep.add("model-card", FAIL, found.path.name, "a baseline needs a `reference` and a module docstring",
                    "set `reference` (paper or '-') and describe the method in the module docstring")
        return
    if not (problems := card_problems(found.path)):
        rep.add("model-card", PASS, card_path(found.path).name, "authors, paper, licence, training budget, notes")
    for inp, detail, fix in problems:
        rep.add("model-card", FAIL, inp, detail, fix)
    for path in (Path(found.path), card_path(found.path)):
        if n := scaffold_markers(path):
            rep.add("model-card", WARN, path.name, f"{n} '{SCAFFOLD_MARKER}' marker(s) of the scaffold left",
                    f"edit the parts marked '{SCAFFOLD_MARKER}' (a failure with --strict)")


def rule_size_speed(rep: Report, run: Runner, quick: bool, rtf: bool) -> None:
    rep.parameters = count_parameters(run.model)
    if not rtf:
        rep.add("size/speed", INFO, "", f"{rep.parameters:,} parameters")
        return
    try:
        sec, reps = (2.0, 1) if quick else (10.0, 3)
        rep.rtf = measure_rtf(run.adapter, run.model, seconds=sec, threads=1, repeats=reps)
        rep.add("size/speed", INFO, f"{sec:g} s, CPU, 1 thread", f"{rep.parameters:,} parameters, RTF {rep.rtf:.3f}")
    except Exception as exc:  # noqa: BLE001
        rep.add("size/speed", INFO, "", f"{rep.parameters:,} parameters; RTF not measured ({_exc(exc)})")
