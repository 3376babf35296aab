"""Training batches, two ways; batch ``step`` is a pure function of (seed, step) in both.

- ``noise: "torch"`` (the default), `DeviceBatches`: the train audio is resident on the training device
  (`bench.data.resident.ResidentAudio`), segments are chosen and gathered there and noised there by the
  batched torch protocol (`bench.protocol.batched.BatchedProtocol`): nothing goes through the host, and
  the host never waits for the device. Every item of the global batch has its own generators, keyed by
  (seed, step, item index), which draw its utterance, its crop start, its shift and all its noise; so
  N data-parallel processes, each making its slice of the global batch, make exactly what one process
  makes with the whole of it.
- ``noise: "numpy"``, `SegmentBatches`: the numpy reference protocol in DataLoader worker processes (one
  batch per worker at a time), the trainer's data path before the torch path existed; kept to compare
  and as a reference. Its noise streams are keyed by item too (``train:<seed>:<step>:<i>``).

The two paths draw from the same laws (utterance by the track's sampling weights, crop start uniform,
the protocol's noise; tests/test_protocol_batched.py, tests/test_batches.py), not the same numbers.
"""

from __future__ import annotations

import numpy as np
import torch

from bench.data.resident import ResidentAudio
from bench.errors import BenchError
from bench.protocol.batched import BatchedProtocol, draw


class SegmentBatches(torch.utils.data.IterableDataset):
    """Infinite stream of (noisy, clean) batches made by the numpy reference protocol; batch `step`
    depends only on (seed, step). `items`: the part of the global batch of `batch_size` items to make (a
    data-parallel process's slice; default all of it)."""

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


def worker_init(_):
    torch.set_num_threads(1)


class DeviceBatches:
    """(noisy, clean) batches made on the device of `audio`: items `items` of the global batch of
    training step ``step``, segments of `segment` samples; with `shift` > 0 both are then cropped to
    ``segment - shift`` samples at an offset uniform in ``0 .. shift`` (the reference Demucs recipe's
    shift augmentation, the same offset for noisy and clean)."""

    def __init__(self, audio: ResidentAudio, protocol, segment: int, seed: int, items: range, shift: int = 0):
        if not hasattr(protocol, "spec"):
            raise BenchError(f"noise {protocol.name}: the torch training path needs a protocol spec",
                             hint="train with --train-set noise=numpy")
        if not 0 <= shift < segment:
            raise BenchError(f"shift {shift} must be in [0, segment) = [0, {segment})")
        self.audio, self.protocol = audio, BatchedProtocol(protocol, audio.device)
        self.segment, self.seed, self.items, self.shift = segment, seed, items, shift

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
        noisy = self.protocol.apply(clean, gens)
        if self.shift:
            n = self.segment - self.shift
            at = (u[:, 2] * (self.shift + 1)).long().clamp_(max=self.shift)
            idx = at[:, None] + torch.arange(n, device=u.device)[None, :]
            noisy, clean = noisy.gather(1, idx), clean.gather(1, idx)
        return noisy, clean
