"""`bench new NAME`: scaffold a submission in ``submissions/<name_with_underscores>/``: ``adapter.py``
(a tiny residual conv net that trains and passes ``bench check`` as generated; its class attributes
``config`` / ``train_config`` / ``presets`` are the one source of the configuration, deliberately
without a separate config file) and ``README.md``, the model card ``bench check`` requires, filled
with working defaults (the author from ``git config user.name``). Names are lowercase letters, digits
and single '-'; a name an adapter or a file in ``baselines/`` or ``submissions/`` already has is refused.
"""

from __future__ import annotations

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
    errors: list = []
    known = discover(root, strict=False, errors=errors)
    if name in known:
        raise BenchError(f"an adapter named {name!r} already exists ({known[name].path})",
                         hint="choose another name (`bench list` shows the adapters)")


def _author() -> str:
    try:
        out = subprocess.run(["git", "config", "user.name"], capture_output=True, text=True, timeout=5, cwd=REPO_ROOT)
        if out.returncode == 0 and out.stdout.strip():
            return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no user name in some containers
        return "the submitter"


ADAPTER_TEMPLATE = '''"""`__NAME__`: CHANGE ME: what the model is and where it comes from, in a paragraph.

Scaffolded by `bench new __NAME__`. Everything the benchmark needs is in this file:

- `Net`, the model: an ``nn.Module`` mapping a batch of 16 kHz waveforms ``(batch, time)`` to
  enhanced waveforms of exactly the same shape and dtype, for any ``time >= 1``, each utterance
  processed on its own (no statistics over the batch) and deterministically in eval mode.
- `__CLASS__`, its adapter: the name, flags and configuration. The class attributes ``config``
  (the keyword arguments of `Net`), ``train_config`` (the shared trainer's options, see
  bench/train/trainer.py DEFAULTS) and ``presets`` are the one source of truth: `bench run` records the
  resolved values in results/, and ``--set KEY=VALUE`` / ``--train-set KEY=VALUE`` override them.

Check it:   bench check __NAME__
Train it:   bench run --model __NAME__ --preset quick        (see submissions/README.md)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from bench.adapters import Adapter


class Net(torch.nn.Module):
    """CHANGE ME: your model. The example is a tiny residual conv net on the waveform,
    ``y = x + conv_stack(x)``, with 'same' padding so the output has the input's length. Its last
    layer starts at zero, so the untrained model is the identity (it scores as the noisy input).

    Working in the STFT domain instead? `bench.adapters.dsp.STFT` gives an STFT / iSTFT pair valid for any
    length (see submissions/stft_mask_gru/adapter.py for a magnitude-mask example)."""

    def __init__(self, channels: int = 16, kernel_size: int = 9, layers: int = 3):
        super().__init__()
        if kernel_size % 2 == 0:
            raise ValueError("kernel_size must be odd ('same' padding keeps the length)")
        pad = kernel_size // 2
        self.convs = torch.nn.ModuleList(
            torch.nn.Conv1d(1 if i == 0 else channels, channels, kernel_size, padding=pad) for i in range(layers))
        self.out = torch.nn.Conv1d(channels, 1, kernel_size, padding=pad)
        torch.nn.init.zeros_(self.out.weight)
        torch.nn.init.zeros_(self.out.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:   # x: (batch, time), float32, 16 kHz, in [-1, 1]
        h = x[:, None, :]                                  # (batch, 1, time): Conv1d wants channels
        for conv in self.convs:
            h = F.gelu(conv(h))
        return x + self.out(h)[:, 0, :]                    # (batch, time): the same shape as x


class __CLASS__(Adapter):
    name = "__NAME__"            # the name on the command line and the leaderboard (the folder is __FOLDER__)
    description = "tiny residual conv net on the waveform (bench new example)"   # CHANGE ME: one line
    reference = "see README.md (model card)"                                  # CHANGE ME: paper / code link
    trainable = True             # `bench run` trains it with the shared trainer before scoring
    causal = False               # CHANGE: True only if output at t uses input up to t (+ a small lookahead)
    oracle = False               # True only for upper bounds that need the clean reference

    # the keyword arguments of Net: the model that `bench run --model __NAME__` builds
    config = {"channels": 16, "kernel_size": 9, "layers": 3}
    # training options (keys of bench/train/trainer.py DEFAULTS); losses: l1, mrstft, si_sdr (bench/train/losses.py)
    train_config = {"loss": {"l1": 1.0, "mrstft": 1.0}, "lr": 1e-3, "batch_size": 8, "segment_seconds": 2.0}
    # named overrides for `--preset`: "model" updates config, "train" updates train_config.
    # `quick` is required for a trainable adapter (`bench check`): a CPU run of minutes, with a budget.
    presets = {
        "quick": {"model": {}, "train": {"max_minutes": 5.0}},
        "full": {"model": {"channels": 64, "layers": 5},
                 "train": {"max_minutes": 60.0, "batch_size": 16, "segment_seconds": 4.0}},
    }

    def build(self, **config) -> torch.nn.Module:
        return Net(**{**self.config, **config})

    # Override only if enhancing needs more than `model(noisy)` (e.g. chunking very long inputs):
    # def enhance(self, model, noisy, clean=None):
    #     return model(noisy)
'''

CARD_TEMPLATE = """# `__NAME__`

<!-- The model card of this submission. `bench check __NAME__` requires each field below to be present
and non-empty (a field's value may continue on the next lines). The scaffold filled them with
defaults: replace them with the truth before you open a pull request. Comments like this one are ignored. -->

- **Authors:** __AUTHOR__
- **Paper:** none (original work) <!-- a link to the paper (arXiv / DOI) and to the code you started from, or "none" -->
- **Licence:** MIT <!-- the licence of this folder's code (the benchmark is MIT) and of any pretrained weights -->
- **Training budget:** `quick` preset: 5 minutes of training on the CPU (batch 8 x 2 s segments);
  `full` preset: 60 minutes. The exact steps, wall time and hardware of each run are in its
  `results/<track>/__NAME__/<run-id>/summary.json`.
- **Notes:** scaffolded by `bench new` on __DATE__; the model is the example tiny residual conv net
  on the waveform. Describe here what you changed, any external data or pretrained weights (none
  allowed without saying so), and known limitations.

## Model

CHANGE ME: the architecture, its inputs and outputs, the loss, anything a reader needs to judge the result.

## Reproduce

```
bench check __NAME__
bench run --model __NAME__ --preset quick
```
"""


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
    (folder / "adapter.py").write_text(fill(ADAPTER_TEMPLATE))
    (folder / "README.md").write_text(fill(CARD_TEMPLATE))
    return folder
