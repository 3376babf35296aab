"""vctk-denoise-bench: a reproducible benchmark and leaderboard for waveform speech denoising."""

from pathlib import Path

__version__ = "0.1.0"

#: The repository root (the package is installed in editable mode from a checkout).
REPO_ROOT = Path(__file__).resolve().parent.parent

#: The benchmark's one sample rate (Hz): prepared audio, models, metrics and speed inputs.
SAMPLE_RATE = 16000
