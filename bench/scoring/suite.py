"""The evaluation suite: every frozen test set a run is scored on (roles: main = ranked, stream, tier,
cross-corpus, recorded, diagnostic), whatever protocol the model was trained with, and the metrics each
role uses (`ROLE_METRICS`; DNSMOS, the costliest, where it tells most). Each set's results go to
``results/<track>/<noise>[+stream]/<model>/<run-id>/``; docs/results-format.md has the table."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bench.data.evaluation import evaluation_sets
from bench.data.prepared import PreparedTrack
from bench.data.tracks import available_tracks, load_track
from bench.metrics.registry import METRICS
from bench.protocol import DEFAULT_PROTOCOL, Protocol

CORE = ("pesq_wb", "pesq_nb", "stoi", "estoi", "si_sdr", "snr")
COMPOSITE = ("csig", "cbak", "covl")
DIAGNOSTIC = ("pesq_wb", "stoi", "si_sdr")
ROLE_METRICS = {
    "main": tuple(METRICS),
    "stream": CORE + COMPOSITE,
    "tier": CORE,
    "cross-corpus": CORE + COMPOSITE,
    "recorded": tuple(METRICS),
    "diagnostic": DIAGNOSTIC,
}
ROLES = tuple(ROLE_METRICS)
STREAM_SUFFIX = "+stream"


@dataclass(frozen=True)
class Evaluation:
    role: str
    prepared: PreparedTrack
    mode: str = "offline"   # "offline" or "stream"

    @property
    def track(self) -> str:
        return self.prepared.track.name

    @property
    def noise(self) -> str:
        """The folder of this set under ``results/<track>/``: the noise's name (+stream)."""
        return self.prepared.protocol.name + (STREAM_SUFFIX if self.mode == "stream" else "")

    @property
    def key(self) -> str:
        return f"{self.track}/{self.noise}"

    @property
    def metrics(self) -> tuple[str, ...]:
        return ROLE_METRICS[self.role]

    def record(self) -> dict:
        return {"key": self.key, "role": self.role, "mode": self.mode}


def suite(track, prepared_root: Path, *, streaming: bool = False, protocol: str = DEFAULT_PROTOCOL) -> list[Evaluation]:
    """The evaluation sets of a run on track `track` (a Track or a name), the ranked (main) set first."""
    track = load_track(track) if isinstance(track, str) else track
    proto = Protocol.load(protocol)
    out = []
    for s in evaluation_sets(track, proto, prepared_root):
        out.append(Evaluation(s.role, s.prepared))
        if s.role == "main":
            if streaming:
                out.append(Evaluation("stream", s.prepared, "stream"))
            out += [Evaluation("tier", PreparedTrack(track, Protocol.load(t), prepared_root)) for t in track.tiers]
    return out


def role_of(track_name: str, noise: str) -> str | None:
    """The role of results folder ``results/<track_name>/<noise>/`` in the suite of its benchmark track,
    or None when no benchmark track's suite has such a set (its runs are refused by the board)."""
    mode_stream = noise.endswith(STREAM_SUFFIX)
    base = noise.removesuffix(STREAM_SUFFIX)
    for name in available_tracks():
        track = load_track(name)
        if track_name == name:
            if base == DEFAULT_PROTOCOL:
                return "stream" if mode_stream else "main"
            if mode_stream:
                return None
            if base in track.tiers:
                return "tier"
            if track.diagnostics and base.startswith(f"{DEFAULT_PROTOCOL}.only-"):
                return "diagnostic"
        elif track_name in track.evaluation_tracks and not mode_stream:
            t = load_track(track_name)
            if t.recorded and base == "recorded":
                return "recorded"
            if not t.recorded and base == DEFAULT_PROTOCOL:
                return "cross-corpus"
    return None
