"""Exact streaming inference of the causal Demucs (`DemucsStreamer`), on the generic interface of
`bench.adapters.streaming.Streamer`: chunks of any size in, enhanced audio out with a fixed delay.

Latency: ``delay = model.lookahead`` (derived by `Demucs.last_input_index`) and ``hop =
model.total_stride``; see `bench.adapters.streaming` for the two latency figures.

`DemucsStreamer` is exact: it keeps the state of every stage between chunks (the resamplers' and
strided convolutions' input history, the transposed convolutions' overlap-add tails, the U-Net skips
not yet consumed, the LSTM's hidden and cell states) and computes each output sample once, as soon as
everything it depends on has arrived. `flush` zero-pads the input to the model's valid length and
treats the decoded signal as ending where the offline model's does, so for the same model the
streamed output equals offline ``model(x)`` up to float rounding (the same sums in a different order:
chunked convolutions, per-step LSTM input projections, overlap-add tails added across chunks):
below 1e-12 in float64 and below 1e-5 of the output's peak in float32 (tests/test_streaming.py).
The streamer lays out the model's weights once, when it is built: build a new one after changing them.

Input normalization. Offline Demucs divides by the std of the whole utterance, which is not causal.
The streamer uses a running statistic instead (``normalization="running"``, the default when
``model.normalize``): for input sample ``t`` (channel mean for several channels)

    s_t = sqrt( sum_{i<=t} (x_i - m_t)^2 / t ),  m_t = mean(x_0..x_t)   (s_0 = 0)

i.e. the unbiased std of all input seen so far, including ``x_t`` (`bench.adapters.streaming.running_std`; at
the last sample it *equals* the offline std), from float64 running sums of ``x`` and ``x**2``. The
network sees ``x_t / (floor + s_t)`` and output ``t`` is multiplied by ``s_t``. So the streamed output
equals `running_norm_reference` (the offline network run on the same per-sample-normalized input),
and once ``s_t`` has converged it approaches the offline output; for the first few ms of a stream
``s_t`` rests on very few samples. ``normalization=<float>`` uses a fixed std instead (equal to offline
``model(x)`` when it is the utterance's std), ``"off"`` feeds the input unnormalized (what a
``normalize=False`` model does).
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

from bench.adapters.streaming import Streamer, running_std, std_from_sums

from .model import _kernel, _PointwiseGLU

__all__ = ["DemucsStreamer", "running_norm_reference"]


def running_norm_reference(model, x: torch.Tensor) -> torch.Tensor:
    """Offline computation of what `DemucsStreamer` outputs with ``normalization="running"``.

    ``net(x / (floor + s)) * s`` with ``s = running_std(channel mean of x)`` per sample and ``net`` the
    model without its own (utterance-std) normalization. `x` is ``(B, T)`` or ``(B, C, T)``.
    """
    x3 = x.unsqueeze(1) if x.dim() == 2 else x
    s = running_std(x3.mean(dim=1, keepdim=True))
    saved = model.normalize
    model.normalize = False
    try:
        y = model(x3 / (model.floor + s)) * s
    finally:
        model.normalize = saved
    return y[:, 0] if x.dim() == 2 and y.shape[1] == 1 else y


# streaming stages of Demucs; every tensor is (N, C, T) and every stage returns what it can
def _cat(a: torch.Tensor | None, b: torch.Tensor) -> torch.Tensor:
    return b if a is None or a.shape[-1] == 0 else torch.cat((a, b), dim=-1)


class _Upsample2:
    """Streaming `upsample2`. Output ``2 i + 1`` (interpolated) leaves once ``x[i + Z]`` has arrived;
    output ``2 i`` (``= x[i]``) right after output ``2 i - 1``, i.e. once ``x[i - 1 + Z]`` is in (the
    reach `Demucs.last_input_index` assumes)."""

    def __init__(self, zeros: int, kernel: torch.Tensor):
        self.z, self.kernel = zeros, kernel
        self.reset()

    def reset(self) -> None:
        self.buf = None      # padded input from the window of the next output pair on
        self.half = False    # the even sample of the next pair has already been returned

    def push(self, x: torch.Tensor, final: bool = False) -> torch.Tensor:
        n_, c, _ = x.shape
        z = self.z
        if self.buf is None:   # Z - 1 zeros: the signal is zero before its start
            self.buf = x.new_zeros(n_, c, z - 1)
        buf = _cat(self.buf, x)
        n = max(0, buf.shape[-1] - 2 * z + 1)
        parts = []
        if n:
            flat = buf[..., :n + 2 * z - 1].reshape(n_ * c, 1, -1)
            mid = F.conv1d(flat, self.kernel).view(n_, c, n)
            even = buf[..., z - 1:z - 1 + n]
            pairs = torch.stack((even, mid), dim=-1).flatten(-2)
            parts.append(pairs[..., 1:] if self.half else pairs)
            buf = buf[..., n:]
            self.half = False
        if not final and not self.half and buf.shape[-1] >= z:   # the next even sample is known already
            parts.append(buf[..., z - 1:z])
            self.half = True
        self.buf = buf
        if not parts:
            return x.new_zeros(n_, c, 0)
        return parts[0] if len(parts) == 1 else torch.cat(parts, dim=-1)

    def end(self, like: torch.Tensor) -> torch.Tensor:
        """The last outputs: the input is zero from here on; exactly 2x the input length in total."""
        if self.buf is None:
            return like[..., :0]
        return self.push(self.buf.new_zeros(*self.buf.shape[:2], self.z), final=True)


class _Downsample2:
    """Streaming `downsample2`: output ``i`` once the fast sample ``2 i + 2 Z - 1`` has arrived."""

    def __init__(self, zeros: int, kernel: torch.Tensor):
        self.z, self.kernel = zeros, kernel
        self.reset()

    def reset(self) -> None:
        self.carry = None    # 0 or 1 fast sample waiting for its odd partner
        self.even = None
        self.odd = None      # Z zeros + odd samples from the window of the next output on

    def push(self, x: torch.Tensor) -> torch.Tensor:
        n_, c, _ = x.shape
        if self.odd is None:
            self.odd = x.new_zeros(n_, c, self.z)
            self.even = x.new_zeros(n_, c, 0)
        x = _cat(self.carry, x)
        m = x.shape[-1] // 2 * 2
        self.carry = x[..., m:]
        self.even = _cat(self.even, x[..., 0:m:2])
        self.odd = _cat(self.odd, x[..., 1:m:2])
        n = min(self.even.shape[-1], self.odd.shape[-1] - 2 * self.z + 1)
        if n <= 0:
            return x.new_zeros(n_, c, 0)
        flat = self.odd[..., :n + 2 * self.z - 1].reshape(n_ * c, 1, -1)
        mid = F.conv1d(flat, self.kernel).view(n_, c, n)
        y = 0.5 * (self.even[..., :n] + mid)
        self.even, self.odd = self.even[..., n:], self.odd[..., n:]
        return y

    def end(self, like: torch.Tensor) -> torch.Tensor:
        """The last outputs: an odd length is padded by one zero (as offline), then zeros; ceil(T / 2) in total."""
        if self.odd is None:
            return like[..., :0]
        n_, c = self.odd.shape[:2]
        pad = (self.carry.shape[-1] if self.carry is not None else 0) + 2 * (self.z - 1)
        return self.push(self.odd.new_zeros(n_, c, pad))


def _matmul_bias(wt: torch.Tensor, x: torch.Tensor, b: torch.Tensor | None) -> torch.Tensor:
    """``W @ x + b[:, None]`` for ``x (B, I, T)``, given ``wt = W.t()`` laid out ``(I, O)`` contiguous.

    For one item it is computed as ``(x.t() @ wt).t()`` (returned as a transposed view): for the short
    frame counts of a streaming step (1 to a few hundred frames) MKL runs this orientation ~10 %
    faster than ``W @ x``.
    """
    if x.shape[0] == 1:
        xt = x[0].t()
        y = torch.mm(xt, wt) if b is None else torch.addmm(b, xt, wt)
        return y.t()[None]
    y = torch.matmul(wt.t(), x)
    return y if b is None else y.add_(b[:, None])


def _t(w: torch.Tensor) -> torch.Tensor:
    return w.t().contiguous()


class _Layers:
    """The layers of a Demucs block as plain GEMMs on weights laid out once (transposed, see `_matmul_bias`).

    ``Conv1d(K, S)``: the strided frames as columns (``unfold``) times the ``(O, C K)`` weight matrix;
    1x1 ``Conv1d`` and `_PointwiseGLU`: a GEMM (two, one per GLU half); ReLU in place. The same sums
    as the modules compute (PyTorch's CPU convolution reaches the same GEMMs through more layers,
    which costs more than the product itself when a call holds one frame); anything else is called
    as it is.
    """

    def __init__(self, modules):
        self.ops = []
        for m in modules:
            if isinstance(m, _PointwiseGLU):
                w = m.weight.detach()[..., 0]
                b = None if m.bias is None else m.bias.detach()
                h = w.shape[0] // 2
                self.ops.append(("glu", _t(w[:h]), _t(w[h:]), None if b is None else b[:h], None if b is None else b[h:]))
            elif type(m) is torch.nn.Conv1d and m.groups == 1 and m.dilation == (1,) and m.padding == (0,):
                w = m.weight.detach()
                b = None if m.bias is None else m.bias.detach()
                self.ops.append(("conv", _t(w.reshape(w.shape[0], -1)), b, m.kernel_size[0], m.stride[0]))
            elif isinstance(m, torch.nn.ReLU):
                self.ops.append(("relu",))
            else:
                self.ops.append(("module", m))

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        for op in self.ops:
            kind = op[0]
            if kind == "glu":
                a = _matmul_bias(op[1], x, op[3])
                x = a.mul_(_matmul_bias(op[2], x, op[4]).sigmoid_())
            elif kind == "conv":
                w, b, k, s = op[1:]
                if k == 1 and s == 1:
                    x = _matmul_bias(w, x, b)
                else:   # (B, C, T) -> frames (B, C, F, K) -> (B, C K, F)
                    cols = x.unfold(-1, k, s).permute(0, 1, 3, 2).reshape(x.shape[0], -1, (x.shape[-1] - k) // s + 1)
                    x = _matmul_bias(w, cols, b)
            elif kind == "relu":
                x = x.relu_()
            else:
                x = op[1](x)
        return x


class _Encoder:
    """A strided conv block (Conv1d(K, S) -> ReLU -> 1x1 + GLU): frame ``j`` once input ``j S + K - 1`` is in."""

    def __init__(self, block, kernel_size: int, stride: int):
        self.layers, self.k, self.s = _Layers(block), kernel_size, stride
        self.channels = block[0].out_channels
        self.reset()

    def reset(self) -> None:
        self.buf = None

    def push(self, x: torch.Tensor) -> torch.Tensor:
        buf = _cat(self.buf, x)
        f = (buf.shape[-1] - self.k) // self.s + 1 if buf.shape[-1] >= self.k else 0
        if f <= 0:
            self.buf = buf
            return buf.new_zeros(buf.shape[0], self.channels, 0)
        y = self.layers(buf[..., :(f - 1) * self.s + self.k])
        self.buf = buf[..., f * self.s:]
        return y


class _Decoder:
    """A decoder block (1x1 + GLU -> ConvTranspose1d(K, S) [-> ReLU]) with its overlap-add tail.

    Output sample ``n`` is final once frame ``n // S`` (the last frame whose kernel covers it) is in;
    the partial sums of the ``K - S`` samples after the last full hop wait in `tail`. The transposed
    conv is the GEMM + overlap-add of `baselines.demucs.model.conv_transpose1d_gemm`, with the weight
    matrix laid out once (not at every chunk).
    """

    def __init__(self, block):
        mods = list(block)
        i = next(i for i, m in enumerate(mods) if isinstance(m, torch.nn.ConvTranspose1d))
        self.pre, self.convt, self.post = _Layers(mods[:i]), mods[i], _Layers(mods[i + 1:])
        self.s, self.k = self.convt.stride[0], self.convt.kernel_size[0]
        self.co = self.convt.out_channels
        self.nb = -(-self.k // self.s)                       # stride-blocks of the (zero-padded) kernel
        w = self.convt.weight.detach()
        if self.nb * self.s != self.k:
            w = F.pad(w, (0, self.nb * self.s - self.k))
        self.wmat_t = _t(w.permute(1, 2, 0).reshape(self.co * self.nb * self.s, w.shape[0]))
        self.bias = None if self.convt.bias is None else self.convt.bias.detach()[:, None]
        self.reset()

    def reset(self) -> None:
        self.tail = None

    def _finish(self, y: torch.Tensor) -> torch.Tensor:
        if self.bias is not None:
            y = y + self.bias
        return self.post(y)

    def push(self, x: torch.Tensor) -> torch.Tensor:
        b, _, f = x.shape
        if f == 0:
            return x.new_zeros(b, self.co, 0)
        x = self.pre(x)
        s, nb = self.s, self.nb
        z = _matmul_bias(self.wmat_t, x, None).reshape(b, self.co, nb, s, f)
        acc = x.new_zeros(b, self.co, f + nb - 1, s)
        for j in range(nb):                                 # block j of frame i lands on hop i + j
            acc[:, :, j:j + f] += z[:, :, j].transpose(-1, -2)
        acc = acc.view(b, self.co, -1)
        if self.tail is not None and self.tail.shape[-1]:
            acc[..., :self.tail.shape[-1]] += self.tail
        self.tail = acc[..., f * s:]
        return self._finish(acc[..., :f * s])

    def end(self, like: torch.Tensor) -> torch.Tensor:
        if self.tail is None:
            return like.new_zeros(like.shape[0], self.co, 0)
        return self._finish(self.tail[..., :self.k - self.s])   # the offline output ends here


class _LSTM:
    """The causal bottleneck's ``nn.LSTM`` one frame at a time, its (h, c) kept between chunks.

    The same equations as ``nn.LSTM`` (gates i, f, g, o; ``b_ih + b_hh``), written out: PyTorch's
    CPU LSTM re-lays out its weights at every call, which costs more than the step itself when a
    call holds one frame. Input projections are one GEMM per layer and chunk; the recurrent one is
    a GEMV per frame.
    """

    def __init__(self, lstm: torch.nn.LSTM):
        if lstm.bidirectional or lstm.proj_size or lstm.batch_first:
            raise ValueError("streaming needs a uni-directional LSTM without projection, time first")
        self.layers = []
        for layer in range(lstm.num_layers):
            w_ih = getattr(lstm, f"weight_ih_l{layer}").detach()
            w_hh = getattr(lstm, f"weight_hh_l{layer}").detach()
            bias = (getattr(lstm, f"bias_ih_l{layer}") + getattr(lstm, f"bias_hh_l{layer}")).detach() \
                if lstm.bias else None
            self.layers.append((w_ih, w_hh, bias))
        self.hidden = lstm.hidden_size
        self.reset()

    def reset(self) -> None:
        self.state = None

    def push(self, x: torch.Tensor) -> torch.Tensor:      # (T, B, D) -> (T, B, H)
        t_len, b, _ = x.shape
        if self.state is None:
            zeros = x.new_zeros(b, self.hidden)
            self.state = [(zeros, zeros) for _ in self.layers]
        for layer, (w_ih, w_hh, bias) in enumerate(self.layers):
            x2 = x.reshape(t_len * b, -1)
            gates_in = (torch.mm(x2, w_ih.t()) if bias is None else torch.addmm(bias, x2, w_ih.t())).view(t_len, b, -1)
            h, c = self.state[layer]
            outs = []
            for t in range(t_len):
                i, f, g, o = torch.addmm(gates_in[t], h, w_hh.t()).chunk(4, dim=1)
                c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
                h = torch.sigmoid(o) * torch.tanh(c)
                outs.append(h)
            self.state[layer] = (h, c)
            x = torch.stack(outs) if t_len > 1 else outs[0][None]
        return x


class DemucsStreamer(Streamer):
    """Exact streaming inference of a causal `baselines.demucs.model.Demucs`.

    ``delay = model.lookahead`` samples (637 = 39.81 ms for the ``demucs`` adapter's H=48 config,
    763 with the model's default 56-zero sinc filters); ``hop = model.total_stride`` (256 samples,
    16 ms, at the paper geometry). `normalization`: ``"running"`` (default when ``model.normalize``),
    ``"off"`` (default otherwise) or a fixed std (float); see the module docstring.

    Chunks of any size are accepted; every stage computes what the input so far allows, so a chunk
    of 1 sample costs little and a chunk of one hop runs each encoder / decoder level once. The
    model is never modified; the streamer holds its weight matrices transposed for the GEMMs (a
    copy made once, when the streamer is built: 38 MB for H=48).
    """

    def __init__(self, model, normalization: str | float | None = None):
        super().__init__()
        if not getattr(model, "causal", False):
            raise ValueError("DemucsStreamer needs a causal Demucs (causal=True)")
        if model.kernel_size < model.stride:
            raise ValueError("DemucsStreamer needs kernel_size >= stride")
        self.model = model
        if normalization is None:
            normalization = "running" if model.normalize else "off"
        if isinstance(normalization, str) and normalization not in ("running", "off"):
            raise ValueError(f"normalization must be 'running', 'off' or a float, got {normalization!r}")
        self.normalization = normalization
        self.delay = int(model.lookahead)
        self.hop = int(model.total_stride)
        m = model
        dtype, device = self._target()
        kernel = _kernel(m.sinc_zeros, dtype, device)
        stages = m.resample.bit_length() - 1
        # the stages, with the weights laid out once; reset() clears only their state
        self.ups = [_Upsample2(m.sinc_zeros, kernel) for _ in range(stages)]
        self.downs = [_Downsample2(m.sinc_zeros, kernel) for _ in range(stages)]
        self.encoders = [_Encoder(b, m.kernel_size, m.stride) for b in m.encoder]
        self.decoders = [_Decoder(b) for b in m.decoder]          # deepest first
        self.lstm = self._bottleneck()
        self.reset()

    def _bottleneck(self):
        """The streaming stage of the model's bottleneck (``push((T, B, D)) -> (T, B, D)``, ``reset()``):
        here the LSTM's; a subclass for another bottleneck returns its own."""
        return _LSTM(self.model.lstm.lstm)

    def _target(self):
        p = next(self.model.parameters())
        return p.dtype, p.device

    def reset(self) -> None:
        super().reset()
        for stage in (*self.ups, *self.downs, *self.encoders, *self.decoders, self.lstm):
            stage.reset()
        self.skips: list[torch.Tensor | None] = [None] * self.model.depth
        self.n_in = 0            # input samples received
        self.n_out = 0           # output samples returned
        self.pending = None      # computed output samples not returned yet (B, Co, T)
        self.scale = None        # s_t of the samples in `pending` and after (running / fixed normalization)
        self.sums = None         # float64 running sum of x and x**2 (B, 2)

    # -------- the network, one chunk (normalized input) at a time
    def _net(self, x: torch.Tensor, final: bool = False) -> torch.Tensor:
        for up in self.ups:
            y = up.push(x)
            x = torch.cat((y, up.end(y)), dim=-1) if final else y
        for level, enc in enumerate(self.encoders):
            x = enc.push(x)
            self.skips[level] = _cat(self.skips[level], x)
        if x.shape[-1]:
            x = self.lstm.push(x.permute(2, 0, 1)).permute(1, 2, 0)
        for i, dec in enumerate(self.decoders):
            level = self.model.depth - 1 - i
            n = x.shape[-1]
            skip = self.skips[level]
            if n:
                x = x + skip[..., :n]
                self.skips[level] = skip[..., n:]
            y = dec.push(x)
            x = torch.cat((y, dec.end(y)), dim=-1) if final else y
        for down in self.downs:
            y = down.push(x)
            x = torch.cat((y, down.end(y)), dim=-1) if final else y
        return x

    def _normalize(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(network input, per-sample output scale ``(B, 1, T)``) for a raw chunk."""
        norm = self.normalization
        if norm == "off":
            return x, None
        if norm != "running":
            s = torch.full_like(x[:, :1], float(norm))
            return x / (self.model.floor + float(norm)), s
        mono = x.mean(dim=1).double()                               # (B, T)
        if self.sums is None:
            self.sums = mono.new_zeros(mono.shape[0], 2)
        n = self.n_in + torch.arange(1, mono.shape[-1] + 1, dtype=torch.float64, device=mono.device)
        s1 = mono.cumsum(-1) + self.sums[:, :1]
        s2 = (mono * mono).cumsum(-1) + self.sums[:, 1:]
        if mono.shape[-1]:
            self.sums = torch.stack((s1[:, -1], s2[:, -1]), dim=1)
        s = std_from_sums(s1, s2, n).to(x.dtype)[:, None]         # (B, 1, T)
        return x / (self.model.floor + s), s

    def _push(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] != self.model.chin:
            raise ValueError(f"the model takes {self.model.chin} input channel(s), the chunk has {x.shape[1]}")
        xn, s = self._normalize(x)
        self.n_in += x.shape[-1]
        if s is not None:
            self.scale = _cat(self.scale, s)
        y = self._net(xn)
        self.pending = _cat(self.pending, y)
        want = max(0, self.n_in - self.delay) - self.n_out
        have = self.pending.shape[-1]
        if have < want:   # cannot happen if `delay` is the model's true lookahead
            raise RuntimeError(f"internal error: {have} output samples ready, {want} due after {self.n_in} input samples")
        return self._emit(want)

    def _emit(self, k: int) -> torch.Tensor:
        y, self.pending = self.pending[..., :k], self.pending[..., k:]
        if self.scale is not None:
            y = y * self.scale[..., :k]
            self.scale = self.scale[..., k:]
        self.n_out += k
        return y

    def _flush(self) -> torch.Tensor:
        m = self.model
        length = self.n_in
        pad = m.valid_length(length) - length            # the offline model's zero padding
        dtype, device = self._target()
        z = torch.zeros(self._batch, m.chin, pad, dtype=dtype, device=device)
        y = self._net(z, final=True)
        self.pending = _cat(self.pending, y)
        return self._emit(length - self.n_out)
