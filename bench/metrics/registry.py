"""The metric registry: every score the benchmark reports, each ``fn(clean, estimate, sample_rate=16000) ->
float`` on two equal-length 1-D arrays with a frozen `Metric` entry in `METRICS` (display order, all
higher-is-better), and `compute_all`. What each metric measures, its range and failure cases: docs/metrics.md."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Callable, Iterable

import numpy as np

from bench.core.env import package_version
from bench.metrics import dnsmos
from bench.metrics.composite import composite
from bench.metrics.measures import (CAP_DB, COMPOSITE_FORMULA, EPS, ESTOI_SEEDING, PESQ_MIN,  # noqa: F401
                                    PESQ_NB_MAX, PESQ_WB_MAX, SI_SDR_FORMULA, SNR_FORMULA, check_rate,
                                    check_shapes, estoi, pesq_nb, pesq_wb, si_sdr, snr, stoi)

log = logging.getLogger(__name__)

__all__ = [
    "Metric", "METRICS", "GROUPS", "MetricUnavailable", "compute_all", "metric_versions", "available_metrics",
    "pesq_wb", "pesq_nb", "stoi", "estoi", "si_sdr", "snr",
    "SI_SDR_FORMULA", "SNR_FORMULA", "COMPOSITE_FORMULA", "EPS",
]


def _dnsmos_group(clean, estimate, sample_rate: int) -> dict[str, float]:
    check_shapes(clean, estimate)  # the same caller contract as every metric, although clean is unused
    return {f"dnsmos_{k}": v for k, v in dnsmos.dnsmos_p835(estimate, check_rate(sample_rate)).items()}


#: group name -> fn(clean, estimate, sample_rate) -> {metric name (or other key): float}; a group is
#: computed once per utterance by `compute_all` for all of its requested metrics (looked up at call time)
GROUPS: dict[str, Callable[..., dict[str, float]]] = {
    "composite": composite,   # its default PESQ term, pesq_wb
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
    """One registered metric; what each field means: docs/metrics.md."""

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
_PESQ_VERSION = package_version("pesq") or "not installed"
_PYSTOI_VERSION = package_version("pystoi") or "not installed"
_COMPOSITE_IMPL = ("bench (numpy) Hu & Loizou composite.m: LLR, WSS (95% trimmed), segSNR [-10, 35] dB, "
                   "PESQ term = P.862.2 WB MOS-LQO (pesq_wb); clipped to [1, 5]")
_COMPOSITE_REF = "Hu & Loizou, IEEE TASLP 16(1), 2008"


def _dnsmos_metrics() -> tuple[Metric, ...]:
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
    Metric("estoi", "eSTOI", estoi, True, (-1.0, 1.0), "",
           "pystoi (mpariente/pystoi) stoi(extended=True), numpy's global random state seeded per utterance",
           f"{_PYSTOI_VERSION}; bench/{ESTOI_SEEDING}", "Jensen & Taal, IEEE/ACM TASLP 2016"),
    Metric("si_sdr", "SI-SDR", si_sdr, True, (-CAP_DB, CAP_DB), "dB",
           "bench (numpy) zero-mean SI-SDR, symmetric eps=1e-10", f"bench/{SI_SDR_FORMULA}",
           "Le Roux et al., ICASSP 2019"),
    Metric("snr", "SNR", snr, True, (-CAP_DB, CAP_DB), "dB",
           "bench (numpy) SNR, residual estimate-clean, symmetric eps=1e-10", f"bench/{SNR_FORMULA}", ""),
    *(_grouped(name, label, "composite", higher_is_better=True, range=(1.0, 5.0), unit="MOS",
               implementation=_COMPOSITE_IMPL, version=f"bench/{COMPOSITE_FORMULA}; pesq {_PESQ_VERSION}",
               reference=_COMPOSITE_REF, table=table)
      for name, label, table in (("csig", "CSIG", "extra"), ("cbak", "CBAK", "extra"),
                                 ("covl", "COVL", "extra"))),
    *_dnsmos_metrics(),
)}


def metric_versions() -> dict[str, dict[str, str]]:
    """``{name: {"implementation": ..., "version": ...}}`` of every metric, for the results record."""
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
    """``(values, errors)`` of the requested metrics (all, in registry order, when None) on one utterance,
    never raising for a metric: NaN and a short ``"ExceptionType: message"`` where one failed (a failed group
    fails each of its metrics; missing packages: ``MetricUnavailable``). Raises `ValueError` only for caller
    errors: signals not 1-D, of different lengths or empty, a bad ``sample_rate``, an unknown metric."""
    check_shapes(clean, estimate)
    check_rate(sample_rate)
    names = list(METRICS) if metrics is None else [metrics] if isinstance(metrics, str) else list(metrics)
    if unknown := [n for n in names if n not in METRICS]:
        raise ValueError(f"unknown metric(s) {', '.join(map(repr, unknown))}; available: {', '.join(METRICS)}")
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
