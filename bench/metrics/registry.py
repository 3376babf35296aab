"""The metric registry: every score the benchmark reports, one function per metric.

In the style of torchmetrics' audio metrics, each metric is a plain function::

    fn(clean: np.ndarray, estimate: np.ndarray, sample_rate: int = 16000) -> float

on two 1-D real arrays ``(time,)`` of equal length (the clean reference and the enhanced
estimate, time-aligned, same sample rate). Any array-like is accepted and computed in float64.
A shape or length mismatch, an empty signal, or a non-1-D input raises `ValueError` with a clear
message; so do NaN/Inf samples and inputs on which the metric is undefined (see each function).

Each metric has a registry entry, a frozen `Metric`, in `METRICS` (fixed display order,
``pesq_wb`` first):

===========  ===========  ==============================  ==================  ======  =====
name         label        implementation                  range               unit    table
===========  ===========  ==============================  ==================  ======  =====
pesq_wb      PESQ-WB      pesq, ITU-T P.862.2 wide-band    (0.999, 4.644)      MOS     main
pesq_nb      PESQ-NB      pesq, ITU-T P.862 + P.862.1      (0.999, 4.549)      MOS     main
stoi         STOI         pystoi, Taal et al. 2011         (-1, 1), ~[0, 1]    --      main
estoi        eSTOI        pystoi, Jensen & Taal 2016       (-1, 1), ~[0, 1]    --      main
si_sdr       SI-SDR       bench (numpy), Le Roux 2019      [-100, 100]         dB      main
snr          SNR          bench (numpy)                    [-100, 100]         dB      main
csig         CSIG         bench.metrics.composite, Hu & Loizou     [1, 5]              MOS     extra
cbak         CBAK         bench.metrics.composite, Hu & Loizou     [1, 5]              MOS     extra
covl         COVL         bench.metrics.composite, Hu & Loizou     [1, 5]              MOS     extra
dnsmos_sig   DNSMOS SIG   speechmos P.835, no reference    (-inf, 4.443]       MOS     extra
dnsmos_bak   DNSMOS BAK   speechmos P.835, no reference    (-inf, 4.521]       MOS     extra
dnsmos_ovrl  DNSMOS OVRL  speechmos P.835, no reference    (-inf, 4.644]       MOS     main
===========  ===========  ==============================  ==================  ======  =====

All are higher-is-better. ``table`` is a display hint (``Metric.table``): "extra" columns are
rarely read and may go to a second table.

Groups, reference-free and optional metrics
    CSIG/CBAK/COVL (one `bench.metrics.composite.composite` run) and DNSMOS SIG/BAK/OVRL (one model
    run) share a ``group``: `compute_all` calls ``GROUPS[group]`` (returns a dict) once per
    utterance for all requested members; ``METRICS[n].fn`` alone still works. DNSMOS has
    ``needs_reference=False`` (clean is shape-checked, otherwise ignored: it scores the noisy
    input too). It needs the optional packages of the ``metrics`` extra; without them its entries
    stay listed with ``unavailable`` set to the reason (``version`` "unavailable: ...") and
    `compute_all` records NaN + ``"MetricUnavailable: <reason>"``. See `available_metrics`.

PESQ
    ``pesq.pesq(fs, ref, deg, mode, on_error=PesqError.RAISE_EXCEPTION)`` from the ``pesq``
    package (ludlows/python-pesq, a wrapper of the ITU-T reference C code). ``"wb"``: P.862.2
    wide-band, 16 kHz only. ``"nb"``: P.862 narrow-band with the P.862.1 MOS-LQO mapping, valid
    at 8 and 16 kHz (at 16 kHz the P.862 input filter band-limits internally). Both return
    MOS-LQO = 0.999 + 4 / (1 + exp(-a * raw + b)) of the raw P.862 score (raw <= 4.5), so the
    maximum (identical signals) is 4.644 (WB) / 4.549 (NB) and the infimum 0.999. The package
    normalises both signals by their joint peak, so PESQ ignores the overall level.
    PESQ is undefined on an all-zero reference or estimate (we raise `ValueError` before calling
    the C code, whose own errors there are a cryptic NaN conversion or ``NoUtterancesError``);
    the C code raises ``pesq.NoUtterancesError`` when it finds no speech in the reference,
    ``pesq.BufferTooShortError`` below 0.25 s, and a near-silent estimate (e.g. 1e-30 noise)
    makes it fail with a NaN conversion error, which we re-raise as a clearer `ValueError`.

STOI / eSTOI
    ``pystoi.stoi(clean, estimate, fs, extended=False/True)`` (resamples to 10 kHz internally,
    drops frames 40 dB below the loudest clean frame). Correlation-based, so (-1, 1) in theory,
    [0, 1] in practice. pystoi returns the sentinel 1e-5 (with a warning) when fewer than 30
    frames (~0.4 s) of active speech remain; we raise `ValueError` instead so it is recorded as a
    failure rather than averaged as a real score. An all-zero reference raises (pystoi would
    return a meaningless 0). An all-zero estimate scores 0 (no intelligible speech): a real score.

SI-SDR (formula id ``si-sdr-v1``)
    Scale-invariant SDR, Le Roux et al., "SDR - half-baked or well done?", ICASSP 2019. Both
    signals are made zero-mean; ``alpha = <s, y> / <s, s>``, ``t = alpha * s``, ``e = y - t``::

        si_sdr = 10 * log10((|t|^2 + eps * |e|^2) / (|e|^2 + eps * |t|^2)),  eps = 1e-10

    The symmetric relative ``eps`` keeps the value exactly scale-invariant and finite: it caps
    the result to [-100, +100] dB (identical or scaled copies give +100 dB, the cap), and moves
    values inside +-60 dB by less than 1e-3 dB. Undefined (raises) when either signal has zero
    energy after mean removal (silent or constant).

SNR (formula id ``snr-v1``)
    ``10 * log10(|s|^2 / |y - s|^2)`` with ``s`` the clean signal and ``y - s`` the residual,
    no mean removal, not scale-invariant (``0.5 * s`` gives 6.02 dB). Same symmetric ``eps``
    cap: [-100, +100] dB, identical signals give +100 dB. Undefined (raises) when the clean
    signal is all zeros; an all-zero estimate gives 0 dB.

Failures
    `compute_all` runs any subset of the registry on one utterance and never raises for a
    metric failure: a metric that raises (any exception) gets NaN and a short message in the
    errors dict. Only caller errors (shape/length mismatch, unknown metric name, bad sample
    rate) raise. NOTE for aggregation: a NaN means "no score", not "bad score" -- a system that
    outputs silence gets NaN PESQ/SI-SDR, so averages that drop NaNs must also report the
    number of failures per system (or rank such systems separately).

CSIG / CBAK / COVL (formula id ``composite-v1``)
    Hu & Loizou (2008), numpy, `bench.metrics.composite` (framing, 95 % trimming of LLR/WSS, segSNR clamp
    documented there). The PESQ term is the PESQ-WB value (P.862.2 MOS-LQO), as VoiceBank-DEMAND
    papers use, not the raw P.862 the paper fitted on 8 kHz speech. Tested per utterance against
    deepfilternet 0.5.6's port (tests/test_composite.py). Undefined (raises) where PESQ is.

DNSMOS P.835 (SIG / BAK / OVRL)
    Microsoft's DNS-challenge models bundled in ``speechmos`` 0.0.1.1, run by `bench.metrics.dnsmos`
    (windowing, threads, level dependence documented there); the version records the package
    versions and the model file's sha256.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from importlib import metadata
from typing import Callable, Iterable

import numpy as np

from bench.metrics.measures import (COMPOSITE_FORMULA, EPS, PESQ_MIN, PESQ_NB_MAX, PESQ_WB_MAX, SI_SDR_FORMULA,  # noqa: F401
                            SNR_FORMULA, _CAP_DB, _check_rate, _check_shapes, estoi, pesq_nb, pesq_wb, si_sdr, snr, stoi)

log = logging.getLogger(__name__)

__all__ = [
    "Metric", "METRICS", "GROUPS", "MetricUnavailable", "compute_all", "metric_versions", "available_metrics",
    "pesq_wb", "pesq_nb", "stoi", "estoi", "si_sdr", "snr",
    "SI_SDR_FORMULA", "SNR_FORMULA", "COMPOSITE_FORMULA", "EPS",
]

# --------------------------------------------------------------------------- registry


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def _composite_group(clean, estimate, sample_rate: int) -> dict[str, float]:
    from bench.metrics.composite import composite

    return composite(clean, estimate, sample_rate, pesq_variant="wb")


def _dnsmos_group(clean, estimate, sample_rate: int) -> dict[str, float]:
    from bench.metrics.dnsmos import dnsmos_p835

    _check_shapes(clean, estimate)  # the same caller contract as every metric, although clean is unused
    return {f"dnsmos_{k}": v for k, v in dnsmos_p835(estimate, _check_rate(sample_rate)).items()}


#: group name -> fn(clean, estimate, sample_rate) -> {metric name (or other key): float}; a group is
#: computed once per utterance by `compute_all` for all of its requested metrics (looked up at call time)
GROUPS: dict[str, Callable[..., dict[str, float]]] = {
    "composite": _composite_group,
    "dnsmos": _dnsmos_group,
}


class MetricUnavailable(RuntimeError):
    """A metric whose optional packages are not installed (recorded as a failure by `compute_all`)."""


@dataclass(frozen=True)
class _GroupValue:
    """The metric function of a grouped metric: one value of its group's result (picklable)."""

    group: str
    key: str

    def __call__(self, clean, estimate, sample_rate: int = 16000) -> float:
        return float(GROUPS[self.group](clean, estimate, sample_rate)[self.key])


@dataclass(frozen=True)
class Metric:
    """One registered metric.

    name: column name in results tables; label: display name; fn: the metric function
    ``fn(clean, estimate, sample_rate) -> float`` (for a grouped metric it computes the whole group);
    higher_is_better; range: (min, max) of possible values; unit: "dB", "MOS" or "";
    implementation: what computes it; version: the package version (``importlib.metadata``)
    or ``"bench/<formula id>"`` for our own numpy code, ``"unavailable: ..."`` when optional
    packages are missing; reference: the paper.
    needs_reference: False for reference-free metrics (DNSMOS: ``clean`` is checked for shape and
    otherwise ignored, so it is also defined for the noisy input and for a silent reference).
    group: metrics with the same group come from one computation, ``GROUPS[group]``, run once per
    utterance by `compute_all`; the group's result holds this metric's value under its name.
    table: "main" or "extra", a display hint (rarely read columns may go to a second table).
    unavailable: None, or why the metric cannot run here (missing optional packages).
    """

    name: str
    label: str
    fn: Callable[..., float]
    higher_is_better: bool
    range: tuple[float, float]
    unit: str
    implementation: str
    version: str
    reference: str = ""
    needs_reference: bool = True
    group: str | None = None
    table: str = "main"
    unavailable: str | None = None

    def __call__(self, clean, estimate, sample_rate: int = 16000) -> float:
        return self.fn(clean, estimate, sample_rate)


def _grouped(name: str, label: str, group: str, **kw) -> Metric:
    return Metric(name, label, _GroupValue(group, name), group=group, **kw)


_PESQ_IMPL = "pesq (ludlows/python-pesq)"
_PESQ_VERSION = _version("pesq")
_PYSTOI_VERSION = _version("pystoi")
_COMPOSITE_IMPL = ("bench (numpy) Hu & Loizou composite.m: LLR, WSS (95% trimmed), segSNR [-10, 35] dB, "
                   "PESQ term = P.862.2 WB MOS-LQO (pesq_wb); clipped to [1, 5]")
_COMPOSITE_REF = "Hu & Loizou, IEEE TASLP 16(1), 2008"


def _dnsmos_metrics() -> tuple[Metric, ...]:
    from bench.metrics import dnsmos

    reason = dnsmos.unavailable_reason()
    impl = (f"speechmos DNSMOS P.835 ({dnsmos.PRIMARY_MODEL}, not personalized), 9.01 s windows every 1 s, "
            "short inputs repeated, 1-thread onnxruntime; no reference")
    ref = "Reddy et al., ICASSP 2022 (DNSMOS P.835)"
    kw = dict(higher_is_better=True, unit="MOS", implementation=impl, version=dnsmos.version(), reference=ref,
              needs_reference=False, unavailable=reason)
    return tuple(_grouped(f"dnsmos_{k}", f"DNSMOS {k.upper()}", "dnsmos",
                          range=(-math.inf, dnsmos.POLY_MAX[k]), table=table, **kw)
                 for k, table in (("sig", "extra"), ("bak", "extra"), ("ovrl", "main")))


METRICS: dict[str, Metric] = {m.name: m for m in (
    Metric("pesq_wb", "PESQ-WB", pesq_wb, True, (PESQ_MIN, PESQ_WB_MAX), "MOS",
           f"{_PESQ_IMPL} ITU-T P.862.2 wide-band", _PESQ_VERSION, "ITU-T P.862.2 (2007)"),
    Metric("pesq_nb", "PESQ-NB", pesq_nb, True, (PESQ_MIN, PESQ_NB_MAX), "MOS",
           f"{_PESQ_IMPL} ITU-T P.862 narrow-band, P.862.1 MOS-LQO mapping", _PESQ_VERSION,
           "ITU-T P.862 (2001), P.862.1 (2003)"),
    Metric("stoi", "STOI", stoi, True, (-1.0, 1.0), "", "pystoi (mpariente/pystoi) stoi(extended=False)",
           _PYSTOI_VERSION, "Taal et al., IEEE TASLP 2011"),
    Metric("estoi", "eSTOI", estoi, True, (-1.0, 1.0), "", "pystoi (mpariente/pystoi) stoi(extended=True)",
           _PYSTOI_VERSION, "Jensen & Taal, IEEE/ACM TASLP 2016"),
    Metric("si_sdr", "SI-SDR", si_sdr, True, (-_CAP_DB, _CAP_DB), "dB",
           "bench (numpy) zero-mean SI-SDR, symmetric eps=1e-10", f"bench/{SI_SDR_FORMULA}",
           "Le Roux et al., ICASSP 2019"),
    Metric("snr", "SNR", snr, True, (-_CAP_DB, _CAP_DB), "dB",
           "bench (numpy) SNR, residual estimate-clean, symmetric eps=1e-10", f"bench/{SNR_FORMULA}", ""),
    *(_grouped(name, label, "composite", higher_is_better=True, range=(1.0, 5.0), unit="MOS",
               implementation=_COMPOSITE_IMPL, version=f"bench/{COMPOSITE_FORMULA}; pesq {_PESQ_VERSION}",
               reference=_COMPOSITE_REF, table=table)
      for name, label, table in (("csig", "CSIG", "extra"), ("cbak", "CBAK", "extra"),
                                 ("covl", "COVL", "extra"))),
    *_dnsmos_metrics(),
)}


def metric_versions() -> dict[str, dict[str, str]]:
    """``{name: {"implementation": ..., "version": ...}}`` for every metric, for the results record.

    A metric whose optional packages are missing has version ``"unavailable: <reason>"``.
    """
    return {m.name: {"implementation": m.implementation, "version": m.version} for m in METRICS.values()}


def available_metrics() -> list[str]:
    """Names of the metrics that can run in this environment, in display order."""
    return [n for n, m in METRICS.items() if m.unavailable is None]


def _error_message(exc: BaseException, limit: int = 200) -> str:
    detail = exc.args[0] if len(exc.args) == 1 else (exc.args or "")
    if isinstance(detail, bytes):  # pesq's C errors carry bytes messages
        detail = detail.decode("utf-8", "replace")
    msg = f"{type(exc).__name__}: {detail}" if str(detail) else type(exc).__name__
    msg = " ".join(msg.split())
    return msg if len(msg) <= limit else msg[: limit - 3] + "..."


def compute_all(clean: np.ndarray, estimate: np.ndarray, sample_rate: int = 16000,
                metrics: Iterable[str] | None = None) -> tuple[dict[str, float], dict[str, str]]:
    """Compute several metrics on one utterance without ever failing on a metric.

    Returns ``(values, errors)``: ``values`` maps each requested metric name (registry order
    when ``metrics`` is None, else the given order) to a float, NaN where the metric failed;
    ``errors`` maps each failed metric name to a short ``"ExceptionType: message"``.
    Metrics of one group (CSIG/CBAK/COVL, DNSMOS SIG/BAK/OVRL) are computed by one call of the
    group function; if it fails, each requested metric of the group gets the same message. A
    metric whose optional packages are missing fails with ``MetricUnavailable: <reason>``.

    Raises `ValueError` only for caller errors: signals that are not 1-D, differ in length or
    are empty, a bad ``sample_rate``, or an unknown metric name. NaN/Inf samples or silent
    signals are per-metric failures (recorded, not raised).
    """
    _check_shapes(clean, estimate)
    _check_rate(sample_rate)
    if metrics is None:
        names = list(METRICS)
    else:
        names = [metrics] if isinstance(metrics, str) else list(metrics)
        unknown = [n for n in names if n not in METRICS]
        if unknown:
            raise ValueError(f"unknown metric(s) {', '.join(map(repr, unknown))}; "
                             f"available: {', '.join(METRICS)}")
    values: dict[str, float] = {}
    errors: dict[str, str] = {}
    groups: dict[str, dict[str, float] | BaseException] = {}
    for name in names:
        m = METRICS[name]
        try:
            if m.unavailable is not None:
                raise MetricUnavailable(m.unavailable)
            if m.group is None:
                values[name] = float(m.fn(clean, estimate, sample_rate))
                continue
            if m.group not in groups:
                try:
                    groups[m.group] = GROUPS[m.group](clean, estimate, sample_rate)
                except Exception as exc:  # noqa: BLE001 -- recorded for every metric of the group
                    groups[m.group] = exc
            result = groups[m.group]
            if isinstance(result, BaseException):
                raise result
            values[name] = float(result[m.fn.key])
        except Exception as exc:  # noqa: BLE001 -- any metric failure is recorded, never raised
            values[name] = math.nan
            errors[name] = _error_message(exc)
            log.debug("metric %s failed: %s", name, errors[name])
    return values, errors
