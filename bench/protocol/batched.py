"""A batched torch implementation of a protocol spec, for training noise on the training device: the same
spec and distributions as the numpy float64 reference (which alone makes the frozen sets), in float32 on a
whole ``(batch, time)`` tensor: *statistically* equivalent, not bit-identical (tests/test_protocol_batched.py).
Each item keeps its own clean power and threshold; a batch is a pure function of (protocol, seed, step[,
item]) on one kind of device. A spec this path does not implement is refused when it is built."""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

import torch

from bench.core.errors import BenchError
from bench.protocol.manipulations import Context, keyword_params, param_problems


@dataclass(frozen=True)
class BatchContext(Context):
    clean_power: torch.Tensor  # (batch,) mean |X_clean|^2 over all coefficients of each item


class ItemGenerators:
    """One `torch.Generator` per batch item (row): a slice of a batch draws exactly what its items draw in
    the whole batch, so N data-parallel processes reproduce one process with the global batch."""

    def __init__(self, generators):
        self.generators = list(generators)
        if not self.generators:
            raise ValueError("ItemGenerators needs at least one generator")
        self.device = self.generators[0].device

    def __len__(self) -> int:
        return len(self.generators)


def draw(fill: str, X, gen, shape, dtype=torch.float32) -> torch.Tensor:
    """A tensor of `shape` on X's device filled by ``Tensor.<fill>_`` (``uniform_`` or ``normal_``) from
    `gen`: one generator for the whole tensor, or `ItemGenerators` (one per row of the first dimension)."""
    out = torch.empty(shape, device=X.device, dtype=dtype)
    if isinstance(gen, ItemGenerators):
        if shape[0] != len(gen):
            raise ValueError(f"{len(gen)} item generators for a batch of {shape[0]}")
        for row, g in zip(out, gen.generators):
            getattr(row, fill)(generator=g)
        return out
    return getattr(out, fill)(generator=gen)


def _poisson(rates: torch.Tensor, gen) -> torch.Tensor:
    if isinstance(gen, ItemGenerators):
        return torch.cat([torch.poisson(rates[i:i + 1], generator=g) for i, g in enumerate(gen.generators)])
    return torch.poisson(rates, generator=gen)


# the manipulations: op(X, gen, ctx, **params) -> X, X complex64 (batch, freq_bins, frames);
# gen: a torch.Generator for the whole batch, or ItemGenerators (one per item)
def _rand(X, gen, *shape):
    return draw("uniform_", X, gen, shape)


def _uniform(X, gen, lo: float, hi: float, *shape):
    return lo + (hi - lo) * _rand(X, gen, *shape)


def _zero(X, mask):
    return torch.where(mask, 0, X)


def _power(X):
    return X.real.square() + X.imag.square()


def at_or_above_quantile(values: torch.Tensor, q: float) -> torch.Tensor:
    """Per row of ``(batch, n)``, the order statistic ``t`` with ``values >= t`` exactly ``values >=
    numpy.quantile(row, q)``: the quantile lies between the order statistics ``floor(q (n - 1))`` and
    ``ceil(q (n - 1))``, and only the upper one is reached from above. `torch.kthvalue` has no size limit."""
    n = values.shape[1]
    k = min(int(math.ceil(q * (n - 1))), n - 1)
    return torch.kthvalue(values, k + 1, dim=1).values


def zero_strongest(X, gen, ctx, *, top_fraction: float, prob: float):
    """Zero each of an item's strongest `top_fraction` coefficients (by magnitude) with probability `prob`."""
    power = _power(X)
    thr = at_or_above_quantile(power.flatten(1), 1.0 - top_fraction)[:, None, None]
    return _zero(X, (power >= thr) & (power > 0) & (_rand(X, gen, *X.shape) < prob))


def zero_random(X, gen, ctx, *, prob: float):
    """Zero each coefficient independently with probability `prob`."""
    return _zero(X, _rand(X, gen, *X.shape) < prob)


def band_count_cap(mean: float) -> int:
    """Most rectangles drawn per item: the Poisson count is truncated at mean + 10 sd + 10, which a
    Poisson variable exceeds with probability < 1e-12, so the truncation never shows in practice."""
    return int(math.ceil(mean + 10.0 * math.sqrt(mean) + 10.0)) if mean > 0 else 0


def band_rectangles(X, gen, ctx, *, rate_per_second: float, width_hz, duration_ms, freq_range_hz):
    """``(count, f0, width, t0, frames)`` of each item's `zero_bands` rectangles: ``count`` (batch,), the
    others (batch, cap), of which each row's first ``count`` are used; the reference's distributions."""
    B, n_bins, n_frames = X.shape
    mean = rate_per_second * n_frames * ctx.hop_length / ctx.sample_rate
    cap = band_count_cap(mean)
    count = _poisson(torch.full((B,), float(mean), device=X.device), gen).clamp_(max=cap)
    lo_bin = int(math.floor(freq_range_hz[0] / ctx.hz_per_bin))
    hi_bin = min(n_bins, int(math.ceil(freq_range_hz[1] / ctx.hz_per_bin)) + 1)
    u = _rand(X, gen, B, cap, 4)
    width = torch.round((width_hz[0] + (width_hz[1] - width_hz[0]) * u[..., 0]) / ctx.hz_per_bin).clamp_(min=1)
    frames = torch.round((duration_ms[0] + (duration_ms[1] - duration_ms[0]) * u[..., 1])
                         / ctx.ms_per_frame).clamp_(min=1)
    f_span = (hi_bin - width + 1).clamp(min=lo_bin + 1) - lo_bin  # number of allowed start bins
    f0 = lo_bin + torch.minimum(torch.floor(u[..., 2] * f_span), f_span - 1)
    t_span = (n_frames - frames + 1).clamp(min=1)
    t0 = torch.minimum(torch.floor(u[..., 3] * t_span), t_span - 1)
    return count.long(), f0.long(), width.long(), t0.long(), frames.long()


def zero_bands(X, gen, ctx, *, rate_per_second: float, width_hz, duration_ms, freq_range_hz):
    """Zero time-frequency rectangles (see `band_rectangles`), vectorised over items and rectangles: each
    rectangle adds +1/-1 at its four corners of a 2-D difference array whose double cumulative sum counts
    the rectangles covering each coefficient (unused rectangles add 0)."""
    count, f0, width, t0, frames = band_rectangles(X, gen, ctx, rate_per_second=rate_per_second, width_hz=width_hz,
                                                   duration_ms=duration_ms, freq_range_hz=freq_range_hz)
    B, n_bins, n_frames = X.shape
    cap = f0.shape[1]
    if cap == 0:
        return X
    used = (torch.arange(cap, device=X.device)[None, :] < count[:, None]).to(torch.int32)  # (B, cap)
    f1, t1 = (f0 + width).clamp(max=n_bins), (t0 + frames).clamp(max=n_frames)
    diff = torch.zeros(B, (n_bins + 1) * (n_frames + 1), dtype=torch.int32, device=X.device)
    for f, t, sign in ((f0, t0, 1), (f1, t0, -1), (f0, t1, -1), (f1, t1, 1)):
        diff.scatter_add_(1, f * (n_frames + 1) + t, sign * used)
    covered = diff.view(B, n_bins + 1, n_frames + 1).cumsum(1).cumsum(2)[:, :n_bins, :n_frames] > 0
    return _zero(X, covered)


def zero_frames(X, gen, ctx, *, prob: float):
    """Zero whole STFT frames with probability `prob` each."""
    B, _, n_frames = X.shape
    return _zero(X, _rand(X, gen, B, 1, n_frames) < prob)


def scale_random(X, gen, ctx, *, prob: float, gain_db):
    """Multiply each coefficient with probability `prob` by a gain uniform in dB in `gain_db`."""
    mask = _rand(X, gen, *X.shape) < prob
    gains = torch.exp(_uniform(X, gen, gain_db[0], gain_db[1], *X.shape) * (math.log(10.0) / 20.0))
    return X * gains.masked_fill_(~mask, 1.0)


def add_floor(X, gen, ctx, *, prob: float, snr_db, tilt_db_per_octave, reference_hz: float):
    """Add complex Gaussian values to each coefficient with probability `prob`: per item, mean power =
    its clean power minus an SNR uniform in `snr_db`, tilted by a slope uniform in `tilt_db_per_octave`
    around `reference_hz` (the spectral shape has mean 1 over the bins)."""
    B, n_bins, n_frames = X.shape
    snr = _uniform(X, gen, snr_db[0], snr_db[1], B)
    tilt = _uniform(X, gen, tilt_db_per_octave[0], tilt_db_per_octave[1], B)
    freqs = torch.arange(n_bins, device=X.device, dtype=torch.float32) * ctx.hz_per_bin
    octaves = torch.log2(freqs.clamp(min=ctx.hz_per_bin) / reference_hz)
    shape = torch.pow(10.0, tilt[:, None] * octaves[None, :] / 10.0)
    shape = shape / shape.mean(dim=1, keepdim=True)
    power = ctx.clean_power[:, None] * torch.pow(10.0, -snr / 10.0)[:, None] * shape  # (B, F)
    scale = torch.sqrt(power / 2.0)[..., None]
    re, im = draw("normal_", X, gen, X.shape), draw("normal_", X, gen, X.shape)
    mask = _rand(X, gen, *X.shape) < prob
    scale = scale * mask
    return X + torch.complex(re.mul_(scale), im.mul_(scale))


TORCH_MANIPULATIONS = {op.__name__: op for op in (zero_strongest, zero_random, zero_bands, zero_frames,
                                                  scale_random, add_floor)}

#: what this path knows of a spec; anything else in it is something it would silently ignore
KNOWN_FIELDS = {"name", "id", "version", "description", "sample_rate", "stft", "seeding", "manipulations",
                "output"}
STFT_FIELDS = {"n_fft", "hop_length", "win_length", "window", "center", "pad_mode", "dtype"}
OUTPUT_FIELDS = {"clip", "storage"}


def check_supported(spec: dict) -> None:
    """Raise `BenchError` naming whatever in `spec` the torch path does not implement."""
    name = spec.get("name", "<unnamed>")

    def fail(what: str):
        raise BenchError(f"protocol {name}: the batched torch path does not implement {what}",
                         hint="use the numpy reference (Protocol.apply), or implement it in "
                              "bench/protocol/batched.py")

    for where, got, known in (("field", set(spec), KNOWN_FIELDS),
                              ("stft field", set(spec.get("stft", {})), STFT_FIELDS),
                              ("output field", set(spec.get("output", {})), OUTPUT_FIELDS)):
        if got - known:
            fail(f"the {where}(s) {', '.join(sorted(got - known))}")
    st = spec["stft"]
    if st.get("window") != "hann":
        fail(f"the STFT window {st.get('window')!r} (only 'hann')")
    if st.get("win_length") != st.get("n_fft"):
        fail(f"win_length {st.get('win_length')} != n_fft {st.get('n_fft')}")
    if st.get("center") is not True or st.get("pad_mode") not in ("reflect", "constant"):
        fail(f"center={st.get('center')!r}, pad_mode={st.get('pad_mode')!r} "
             "(needs center=true, reflect or constant)")
    for i, step in enumerate(spec["manipulations"]):
        op = step.get("op")
        if op not in TORCH_MANIPULATIONS:
            fail(f"manipulation {i}: op {op!r} (implemented: {', '.join(sorted(TORCH_MANIPULATIONS))})")
        if problems := param_problems(keyword_params(TORCH_MANIPULATIONS[op]), step):
            fail(f"manipulation {i} ({op}) with {problems}")


class BatchedProtocol:
    """The protocol `protocol` (a `bench.protocol.Protocol`) applied to ``(batch, time)`` float32 tensors."""

    def __init__(self, protocol, device: str | torch.device = "cpu"):
        check_supported(protocol.spec)
        self.protocol = protocol
        self.device = torch.device(device)
        st = protocol.spec["stft"]
        self.n_fft, self.hop_length, self.pad_mode = int(st["n_fft"]), int(st["hop_length"]), st["pad_mode"]
        self.clip = float(protocol.spec["output"]["clip"])
        self.steps = [(TORCH_MANIPULATIONS[s["op"]], {k: v for k, v in s.items() if k != "op"})
                      for s in protocol.spec["manipulations"]]
        self._windows: dict[torch.device, torch.Tensor] = {}

    @property
    def name(self) -> str:
        return self.protocol.name

    def _seeded(self, device, *parts) -> torch.Generator:
        """A generator on `device` (default: this protocol's) seeded from sha256(name | global seed | parts)."""
        key = "\x1f".join([self.name, str(self.protocol.global_seed), *(str(p) for p in parts)])
        g = torch.Generator(device=torch.device(device) if device is not None else self.device)
        g.manual_seed(int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "little") & ((1 << 63) - 1))
        return g

    def generator(self, seed: int, step: int, device: str | torch.device | None = None) -> torch.Generator:
        """A generator seeded from sha256(name | global seed | "batched-train" | seed | step)."""
        return self._seeded(device, "batched-train", int(seed), int(step))

    def item_generators(self, seed: int, step: int, items,
                        device: str | torch.device | None = None) -> ItemGenerators:
        """One generator per item ``i`` of `items` (the global batch of step `step`), seeded from sha256(name |
        global seed | "batched-train-item" | seed | step | i): not from the batch or the process."""
        return ItemGenerators([self._seeded(device, "batched-train-item", int(seed), int(step), int(i))
                               for i in items])

    def _window(self, device: torch.device) -> torch.Tensor:
        if device not in self._windows:
            self._windows[device] = torch.hann_window(self.n_fft, periodic=True, dtype=torch.float32, device=device)
        return self._windows[device]

    def stft(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stft(x, n_fft=self.n_fft, hop_length=self.hop_length, window=self._window(x.device),
                          center=True, pad_mode=self.pad_mode, return_complex=True)

    def istft(self, X: torch.Tensor, length: int) -> torch.Tensor:
        return torch.istft(X, n_fft=self.n_fft, hop_length=self.hop_length, window=self._window(X.device),
                           center=True, length=length)

    def apply(self, clean: torch.Tensor, generator: torch.Generator | ItemGenerators) -> torch.Tensor:
        """Noisy versions ``(batch, time)`` float32 of ``clean`` ``(batch, time)``, on ``clean.device``;
        `generator`: one for the whole batch (`generator`) or one per item (`item_generators`)."""
        if not isinstance(clean, torch.Tensor) or clean.dim() != 2 or not clean.is_floating_point():
            got = tuple(clean.shape) if isinstance(clean, torch.Tensor) else type(clean).__name__
            raise BenchError(f"protocol {self.name} (batched): expected a float (batch, time) tensor, got {got}")
        if generator.device.type != clean.device.type:
            raise BenchError(f"protocol {self.name} (batched): generator on {generator.device}, "
                             f"batch on {clean.device}",
                             hint="make it with BatchedProtocol.generator(seed, step, device=batch.device)")
        if isinstance(generator, ItemGenerators) and len(generator) != clean.shape[0]:
            raise BenchError(f"protocol {self.name} (batched): {len(generator)} item generators for a batch of "
                             f"{clean.shape[0]}")
        n = clean.shape[1]
        if n <= self.n_fft // 2:
            raise BenchError(f"protocol {self.name} (batched): segments of {n} samples; "
                             f"needs more than {self.n_fft // 2}")
        X = self.stft(clean.to(torch.float32))
        ctx = BatchContext(self.protocol.sample_rate, self.n_fft, self.hop_length,
                           clean_power=_power(X).mean(dim=(1, 2)))
        for op, params in self.steps:
            X = op(X, generator, ctx, **params)
        return self.istft(X, n).clamp_(-self.clip, self.clip)
