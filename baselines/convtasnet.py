"""`convtasnet`: Conv-TasNet (Luo & Mesgarani, IEEE/ACM TASLP 2019) from Asteroid, as a 1-source denoiser.

The model is Asteroid's `asteroid.models.ConvTasNet` with ``n_src=1`` and ``sample_rate=16000``
(Asteroid's default is 8000; with the learned "free" filterbank the rate changes no weight, only the
metadata). A learned 1-D conv encoder (``n_filters`` filters of ``kernel_size`` samples, hop
``stride``), a temporal convolutional network (TCN: ``n_repeats`` x ``n_blocks`` dilated depthwise-
separable conv blocks with ``bn_chan`` bottleneck / ``hid_chan`` hidden / ``skip_chan`` skip channels)
that estimates one mask (``mask_act``) over the encoder output, and a transposed-conv decoder. The
defaults of `ConvTasNetAdapter.config` are Asteroid's constructor defaults, which are the paper's best
non-causal config (N=512, L=16, B=128, H=512, Sc=128, P=3, X=8, R=3, gLN): 4,984,497 parameters at
``n_src=1``. 65,664 of them never train: every TCN block has a residual 1x1 conv (as in Luo's code),
but with skip connections the mask reads only the skip sum, so the last block's residual is unused.
Asteroid's WHAM recipe trains the model with ``mask_act="relu"``; its constructor default, kept here,
is ``"sigmoid"``, a bounded mask that suits denoising.

Length handling (`ConvTasNetDenoiser`): the encoder is an unpadded strided conv, so the input is
zero-padded on the right to the next length that whole frames cover (at least ``kernel_size``
samples), run through the network, and the output cropped back: ``(batch, time) -> (batch, time)`` for
any ``time >= 1``. Right padding keeps a causal config causal.

Causality: the default (``causal=False``, global layer norm ``gLN``) is non-causal, so the adapter says
``causal = False``. ``causal=True`` builds causal TCN convs (Asteroid then switches ``gLN`` to the
per-frame ``cLN`` itself, with a warning; pass ``norm_type="cLN"`` to avoid it); such a model looks
``kernel_size - 1`` samples ahead (the encoder frame), but the class attribute stays False because it
describes the default config.

Training recipe (the ``full`` preset): Asteroid's LibriMix ConvTasNet recipe (``egs/librimix/ConvTasNet``:
``local/conf.yml`` and ``train.py``), as far as the shared trainer goes: negative SI-SDR (the paper's
objective; Asteroid's ``pairwise_neg_sisdr``, PIT being moot with one source), Adam at lr 1e-3 with no
weight decay (the trainer's AdamW with weight_decay 0), gradients clipped at norm 5, batch 6 of 3 s
segments. Not reproduced: the recipe's ``half_lr`` (halve the lr on a validation plateau) and early
stopping (the trainer keeps the lr constant under a time budget and keeps the best checkpoint), and its
``mask_act="relu"`` (the model config keeps the constructor's ``"sigmoid"``, see above).

The ``quick`` preset is a 62,705-parameter model (64 filters of 32 samples, hop 16; 2 x 4 blocks of
32/64/32 channels, a 61 ms receptive field) for a CPU smoke run: one step on 8 x 2 s costs ~0.65 s of
CPU time (forward, backward and Adam, one thread).

Objectives. SI-SDR alone (the paper's and Asteroid's objective, and this adapter's ``train_config``, so
the ``full`` preset) leaves the output's level and sign free: trained on it, the ``quick`` model output
inverted, ~25 dB too quiet audio (validation scale -0.05), unusable with `bench enhance` and
under-scored by the level-sensitive metrics (PESQ). The ``quick`` preset therefore trains on the SNR
(``{"snr": 1}``, `bench.train.losses`): the same dB units, the same gradient on the shape once the
output is at the clean level, and no freedom in level or sign. SI-SDR plus SNR (weights 1 + 1) was tried
first and kept the output inverted and ever quieter (validation scale -0.011 at step 200, -0.006 at 400):
with the output near zero the SNR term sits at 0 dB and barely moves, while SI-SDR's gradient, which grows
as the output shrinks, keeps shaping an inverted output. The paper's
SI-SDR-only recipe on the ``quick`` model stays selectable as the ``paper-quick`` preset (identical to
``quick`` but for the loss; it is what the first ``convtasnet · quick`` runs trained on).

How Asteroid is installed here (the ``models`` extra of pyproject.toml): ``asteroid==0.7.0``. Its
metadata pins ``torchmetrics<=0.11.4`` (and asks for ``pytorch-lightning>=2.0``, ``torchaudio>=0.5``,
``asteroid-filterbanks>=0.4``, ``pb-bss-eval``, ``torch-stoi``, ``torch-optimizer<0.2``, ``julius``,
``huggingface-hub``); pip resolves it together with ``torch==2.11.0`` / ``torchaudio==2.11.0``, bringing
``torchmetrics 0.11.4`` and ``pytorch-lightning 2.6.6``. Checked with that environment:

- ``import asteroid.models`` imports cleanly, with no warning (``python -W always``) and no network
  access (``asteroid`` imports ``requests``/``huggingface_hub`` but only calls them in
  ``from_pretrained``).
- Nothing in Asteroid (0.7.0) or asteroid-filterbanks (0.4.0) imports torchaudio, so the APIs that
  torchaudio 2.9+ removed (I/O backends, sox effects, ...) do not touch it. Every ``asteroid.*``
  module imports except ``asteroid.data``, whose ``__init__`` imports the AVSpeech dataset, which needs
  ``librosa`` (not installed; not a torchaudio problem, and the benchmark does not use Asteroid's
  datasets). ``asteroid.engine.System`` imports with pytorch-lightning 2.6.6 (it is not used: the
  benchmark's own trainer trains the model).
"""

from __future__ import annotations

import torch

from bench.adapters import Adapter
from bench.adapters.dsp import FramedWaveformNet

SAMPLE_RATE = 16000


class ConvTasNetDenoiser(FramedWaveformNet):
    """Asteroid's ConvTasNet (``n_src=1``) mapping ``(batch, time)`` to ``(batch, time)`` for any length."""

    def __init__(self, n_filters=512, kernel_size=16, stride=8, fb_name="free", encoder_activation=None,
                 n_blocks=8, n_repeats=3, bn_chan=128, hid_chan=512, skip_chan=128, conv_kernel_size=3,
                 norm_type="gLN", mask_act="sigmoid", causal=False):
        super().__init__()
        from asteroid.models import ConvTasNet   # imported here: the benchmark core does not need asteroid

        self.kernel_size, self.stride = int(kernel_size), int(stride)
        self.net = ConvTasNet(n_src=1, sample_rate=SAMPLE_RATE, fb_name=fb_name, n_filters=n_filters,
                              kernel_size=kernel_size, stride=stride, encoder_activation=encoder_activation,
                              n_blocks=n_blocks, n_repeats=n_repeats, bn_chan=bn_chan, hid_chan=hid_chan,
                              skip_chan=skip_chan, conv_kernel_size=conv_kernel_size, norm_type=norm_type,
                              mask_act=mask_act, causal=causal)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[-1]
        y = self.net(self.framed_input(x))                               # (batch, 1, valid_length)
        return y[:, 0, :n]


#: the `quick` / `paper-quick` model (62,705 parameters) and budget
QUICK_MODEL = {"n_filters": 64, "kernel_size": 32, "stride": 16, "bn_chan": 32, "hid_chan": 64, "skip_chan": 32,
               "n_blocks": 4, "n_repeats": 2}
QUICK_TRAIN = {"max_steps": 2400, "max_minutes": None, "batch_size": 8, "segment_seconds": 2.0, "valid_every": 200,
               "checkpoint_every": 200}


class ConvTasNetAdapter(Adapter):
    name = "convtasnet"
    description = "Conv-TasNet (learned encoder + TCN mask + decoder), Asteroid, 1 source, SI-SDR (SNR at quick)"
    reference = "Luo & Mesgarani, IEEE/ACM TASLP 2019; Asteroid (Pariente et al., Interspeech 2020)"
    trainable = True
    causal = False
    # Asteroid 0.7.0's ConvTasNet constructor defaults (the paper's best config); 4,984,497 parameters
    config = {"n_filters": 512, "kernel_size": 16, "stride": 8, "fb_name": "free", "encoder_activation": None,
              "n_blocks": 8, "n_repeats": 3, "bn_chan": 128, "hid_chan": 512, "skip_chan": 128,
              "conv_kernel_size": 3, "norm_type": "gLN", "mask_act": "sigmoid", "causal": False}
    # Asteroid's LibriMix recipe (see the module docstring)
    train_config = {"loss": {"si_sdr": 1.0}, "lr": 1e-3, "weight_decay": 0.0, "batch_size": 6,
                    "segment_seconds": 3.0, "grad_clip": 5.0}
    presets = {
        # 62,705 parameters, for a few-minute CPU smoke run; SNR, a level- and sign-aware objective
        # (see the module docstring, "Objectives")
        "quick": {"model": dict(QUICK_MODEL), "train": {**QUICK_TRAIN, "loss": {"snr": 1.0}}},
        # the same model and budget on the paper's SI-SDR-only objective (output level and sign left free)
        "paper-quick": {"model": dict(QUICK_MODEL), "train": {**QUICK_TRAIN, "loss": {"si_sdr": 1.0}}},
        "full": {"model": {},
                 "train": {"max_steps": 20000, "max_minutes": None, "batch_size": 6, "segment_seconds": 3.0,
                           "num_workers": 4, "valid_every": 200, "checkpoint_every": 1000}},
    }

    def build(self, **config) -> torch.nn.Module:
        return ConvTasNetDenoiser(**{**self.config, **config})
