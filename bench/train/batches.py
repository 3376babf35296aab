"""Training batches, a pure function of (seed, step) and each item of (seed, step, item index), two ways:
`DeviceBatches` (``noise: "torch"``, the default) cuts and noises resident audio on the training device, with
the shift and spectral-tilt augmentations; `SegmentBatches` (``noise: "numpy"``) runs the reference protocol
in DataLoader workers. The same laws, not the same numbers (docs/training.md, "Data")."""

from __future__ import annotations

import numpy as np
import torch

from bench import SAMPLE_RATE
from bench.train.resident import ResidentAudio
from bench.core.errors import BenchError
from bench.protocol.batched import BatchedProtocol, draw


class SegmentBatches(torch.utils.data.IterableDataset):
    """Infinite stream of (noisy, clean) batches by the numpy reference protocol; `items`: this process's
    slice of the global batch (default all of it)."""

    def __init__(self, clean: dict[str, np.ndarray], protocol, batch_size: int, segment: int, seed: int, start_step: int,
                 weights: dict[str, float] | None = None, items: range | None = None):
        super().__init__()
        self.ids = sorted(clean)
        self.audio = [clean[u] for u in self.ids]
        self.lengths = np.array([len(a) for a in self.audio], dtype=np.float64)
        # draw weights: the track's sampling rule (bench.data.sampling), else the lengths (uniform over the audio)
        self.weights = self.lengths if weights is None else np.array([weights[u] for u in self.ids], dtype=np.float64)
        self.protocol, self.batch_size, self.segment = protocol, batch_size, segment
        self.seed, self.start_step = seed, start_step
        self.items = range(batch_size) if items is None else items

    def batch(self, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        rng = np.random.default_rng([self.seed, step])
        idx = rng.choice(len(self.ids), size=self.batch_size, p=self.weights / self.weights.sum())
        starts = [int(rng.integers(0, max(1, len(self.audio[k]) - self.segment + 1))) for k in idx]
        clean = np.zeros((len(self.items), self.segment), dtype=np.float32)
        noisy = np.zeros_like(clean)
        for row, i in enumerate(self.items):
            k, start = idx[i], starts[i]
            seg = self.audio[k][start:start + self.segment]
            clean[row, :len(seg)] = seg
            noisy[row] = self.protocol.apply(clean[row], f"{self.ids[k]}@{start}", stream=f"train:{self.seed}:{step}:{i}")
        return torch.from_numpy(noisy), torch.from_numpy(clean)

    def __iter__(self):
        info = torch.utils.data.get_worker_info()
        wid, nw = (info.id, info.num_workers) if info else (0, 1)
        step = self.start_step + wid
        while True:
            yield self.batch(step)
            step += nw


#: the spectral tilt's pivot and reach: the gain is slope * log2(f / PIVOT), log2 clipped to +-OCTAVES
TILT_PIVOT_HZ, TILT_OCTAVES, TILT_PAD = 1000.0, 3.0, 1024


def spectral_tilt(x: torch.Tensor, slope_db: torch.Tensor, rate: int = SAMPLE_RATE) -> torch.Tensor:
    """`x` ``(batch, samples)`` filtered, zero-phase, by ``slope_db[i] * clip(log2(f / 1 kHz), -3, 3)`` dB;
    zero padded first, so nothing wraps round from its end to its start."""
    n = x.shape[-1] + TILT_PAD
    f = torch.fft.rfftfreq(n, 1.0 / rate, device=x.device).clamp_min(1.0)
    octaves = torch.log2(f / TILT_PIVOT_HZ).clamp_(-TILT_OCTAVES, TILT_OCTAVES)
    gain = torch.pow(10.0, slope_db.to(torch.float32)[:, None] * octaves[None, :] / 20.0)
    return torch.fft.irfft(torch.fft.rfft(x, n=n) * gain, n=n)[..., :x.shape[-1]].contiguous()


def worker_init(_):
    torch.set_num_threads(1)


class DeviceBatches:
    """(noisy, clean) batches made on the device of `audio`: items `items` of the global batch of a step,
    segments of `segment` samples, then the `shift` and `tilt_db` augmentations (docs/training.md). The tilt
    is one more draw from its item's generator, none when 0, so batches without it are as before."""

    def __init__(self, audio: ResidentAudio, protocol, segment: int, seed: int, items: range, shift: int = 0,
                 tilt_db: float = 0.0):
        if not hasattr(protocol, "spec"):
            raise BenchError(f"noise {protocol.name}: the torch training path needs a protocol spec",
                             hint="train with --train-set noise=numpy")
        if not 0 <= shift < segment:
            raise BenchError(f"shift {shift} must be in [0, segment) = [0, {segment})")
        self.audio, self.protocol = audio, BatchedProtocol(protocol, audio.device)
        self.segment, self.seed, self.items, self.shift, self.tilt_db = segment, seed, items, shift, float(tilt_db)

    def draws(self, step: int):
        """(item generators, uniform numbers (batch, 3) float64: utterance, crop start, shift offset)."""
        gens = self.protocol.item_generators(self.seed, step, self.items)
        return gens, draw("uniform_", self.audio.audio, gens, (len(self.items), 3), dtype=torch.float64)

    def utterances(self, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(utterance index, crop start) of each item of batch `step`."""
        return self.audio.choose(self.draws(step)[1], self.segment)

    def batch(self, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        gens, u = self.draws(step)
        clean = self.audio.segments(*self.audio.choose(u, self.segment), self.segment)
        if self.tilt_db:
            slopes = draw("uniform_", clean, gens, (len(self.items),)).mul_(2 * self.tilt_db).sub_(self.tilt_db)
            clean = spectral_tilt(clean, slopes)
        noisy = self.protocol.apply(clean, gens)
        if self.shift:
            n = self.segment - self.shift
            at = (u[:, 2] * (self.shift + 1)).long().clamp_(max=self.shift)
            idx = at[:, None] + torch.arange(n, device=u.device)[None, :]
            noisy, clean = noisy.gather(1, idx), clean.gather(1, idx)
        return noisy, clean
