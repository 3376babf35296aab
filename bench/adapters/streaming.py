"""Online (streaming) inference for causal models: audio in chunks of any size, enhanced audio out with a
fixed delay, as a live device would run it (`Adapter.streamer`). The contract and user guide: docs/streaming.md."""

from __future__ import annotations

import numpy as np
import torch

from bench import SAMPLE_RATE

__all__ = ["Streamer", "stream", "running_std", "std_from_sums"]


class Streamer:
    """Subclasses set `delay` and `hop` and implement `_push(x)` / `_flush()` on ``(B, C, T)`` tensors. Chunks
    (torch or numpy) may be ``(T,)``, ``(B, T)`` (independent mono streams) or ``(B, C, T)``; outputs are torch
    tensors of the same rank. The first chunk fixes the batch size."""

    sample_rate: int = SAMPLE_RATE
    #: output delay in samples: pushes have returned max(0, n - delay) samples after n input samples
    delay: int = 0
    #: natural chunk size in samples (the hop a live device would use)
    hop: int = 1

    def __init__(self):
        self._rank, self._batch = None, None

    # -------- public API
    def push(self, chunk) -> torch.Tensor:
        x = self._as_tensor(chunk)
        with torch.inference_mode():
            y = self._push(x)
        return self._restore(y)

    def flush(self) -> torch.Tensor:
        """Return the rest of the output (the stream then has exactly the input's length) and reset."""
        if self._rank is None:
            return torch.zeros(0)
        with torch.inference_mode():
            y = self._flush()
        out = self._restore(y)
        self.reset()
        return out

    def reset(self) -> None:
        """Forget the stream: the next push starts a new one."""
        self._rank, self._batch = None, None

    @property
    def latency_ms(self) -> float:   # algorithmic latency
        return 1000.0 * self.delay / self.sample_rate

    @property
    def latency_with_hop_ms(self) -> float:
        """Worst-case latency when input arrives in blocks of `hop`: ``1000 * (delay + hop - 1) / sample_rate``."""
        return 1000.0 * (self.delay + self.hop - 1) / self.sample_rate

    # -------- to implement
    def _push(self, x: torch.Tensor) -> torch.Tensor:    # (B, C, T) -> (B, Co, T')
        raise NotImplementedError

    def _flush(self) -> torch.Tensor:
        raise NotImplementedError

    # -------- helpers
    def _target(self) -> tuple[torch.dtype, torch.device]:
        return torch.float32, torch.device("cpu")

    def _as_tensor(self, chunk) -> torch.Tensor:
        x = torch.from_numpy(np.ascontiguousarray(chunk)) if isinstance(chunk, np.ndarray) else torch.as_tensor(chunk)
        dtype, device = self._target()
        x = x.to(dtype=dtype, device=device)
        rank = x.dim()
        if rank not in (1, 2, 3):
            raise ValueError(f"a chunk must be (time,), (batch, time) or (batch, channels, time), got {tuple(x.shape)}")
        x3 = x.reshape(1, 1, -1) if rank == 1 else x.unsqueeze(1) if rank == 2 else x
        if self._rank is None:
            self._rank, self._batch = rank, x3.shape[0]
        elif rank != self._rank or x3.shape[0] != self._batch:
            raise ValueError(f"chunk of shape {tuple(x.shape)} does not continue the stream "
                             f"(rank {self._rank}, batch {self._batch}); flush() or reset() first")
        return x3

    def _restore(self, y: torch.Tensor) -> torch.Tensor:
        if self._rank == 1:
            return y.reshape(-1)
        if self._rank == 2:
            return y[:, 0] if y.shape[1] == 1 else y
        return y


def stream(streamer: Streamer, x, chunk: int | list[int] | None = None) -> torch.Tensor:
    """`streamer`'s whole output for `x`, fed in chunks of `chunk` samples (default: the hop; a list of sizes
    is cycled), then flushed: the same length as `x`, aligned with it."""
    x = torch.from_numpy(np.ascontiguousarray(x)) if isinstance(x, np.ndarray) else torch.as_tensor(x)
    sizes = [int(chunk or streamer.hop)] if not isinstance(chunk, (list, tuple)) else [int(c) for c in chunk]
    if any(c < 1 for c in sizes):
        raise ValueError("chunk sizes must be positive")
    streamer.reset()
    outs, pos, i, n = [], 0, 0, x.shape[-1]
    while pos < n:
        c = sizes[i % len(sizes)]
        outs.append(streamer.push(x[..., pos:pos + c]))
        pos += c
        i += 1
    outs.append(streamer.flush())
    return torch.cat([o for o in outs if o.numel()] or [outs[-1]], dim=-1)


def running_std(x: torch.Tensor) -> torch.Tensor:
    """The causal normalization statistic: ``s_t`` = unbiased std of ``x[..., :t + 1]`` (``s_0 = 0``), from
    float64 running sums, in x's dtype."""
    x64 = x.double()
    n = torch.arange(1, x.shape[-1] + 1, dtype=torch.float64, device=x.device)
    s1, s2 = x64.cumsum(-1), (x64 * x64).cumsum(-1)
    return std_from_sums(s1, s2, n).to(x.dtype)


def std_from_sums(s1: torch.Tensor, s2: torch.Tensor, n: torch.Tensor) -> torch.Tensor:
    var = (s2 - s1 * s1 / n) / (n - 1).clamp_min(1)
    return torch.where(n > 1, var.clamp_min(0), torch.zeros_like(var)).sqrt()
