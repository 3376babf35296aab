"""The results format: one folder per scoring of a run on one evaluation set
(``results/<track>/<noise>/<model>/<run-id>/``), its summary validated by a JSON schema (`schema/`), and the
checks that make a folder trustworthy. docs/results-format.md describes the files."""

from __future__ import annotations

import datetime
import hashlib
import io
import json
import math
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import jsonschema
import numpy as np
import pandas as pd

from bench import REPO_ROOT
from bench.core.errors import BenchError, ResultsError
from bench.core.files import atomic_write_bytes
from bench.core.names import inside
from bench.data.tracks import load_track
from bench.metrics.stats import bootstrap_cis
from bench.protocol import DEFAULT_PROTOCOL
from bench.scoring.derivations import Derivations

SCHEMA_DIR = Path(__file__).resolve().parent / "schema"
SCHEMA_FILES = {1: "summary.schema.json", 2: "summary-v2.schema.json"}
SCHEMA_VERSION = 2
RESULTS_DIR = REPO_ROOT / "results"
CI_CONFIDENCE = 0.95
CI_RESAMPLES = 10000
CI_SEED = 0
#: a recomputed statistic must match the summary to this absolute tolerance (the CSV holds 6 decimals)
RECOMPUTE_TOL = 1e-6
#: the shipped weights' file name (= bench.scoring.weights.WEIGHTS_FILE; that module loads torch)
WEIGHTS_FILE = "weights.safetensors"
STAT_FIELDS = ("mean", "ci_low", "ci_high", "n", "failures", "noisy_mean", "delta", "delta_ci_low", "delta_ci_high")


@lru_cache(maxsize=None)
def schema(version: int = SCHEMA_VERSION) -> dict:
    return json.loads((SCHEMA_DIR / SCHEMA_FILES[version]).read_text())


def rel(path: Path) -> str:
    """A path as the messages and the board show it: relative to the repository when inside it."""
    p = Path(path).resolve()
    try:
        return p.relative_to(Path(REPO_ROOT).resolve()).as_posix()
    except ValueError:
        return str(path)


def run_dir(track: str, noise: str, model: str, run_id: str, root: Path | None = None) -> Path:
    return Path(root or RESULTS_DIR) / track / noise / model / run_id


def dump_json(obj) -> bytes:
    return (json.dumps(obj, indent=2, sort_keys=False, allow_nan=False) + "\n").encode()


def write_json(path: Path, obj) -> None:
    atomic_write_bytes(Path(path), dump_json(obj))


def _clean(v):
    return None if v is None or (isinstance(v, float) and not math.isfinite(v)) else float(v)


def summarize_metrics(df: pd.DataFrame, metric_names: list[str], *, resamples: int = CI_RESAMPLES,
                      confidence: float = CI_CONFIDENCE, seed: int = CI_SEED) -> dict:
    """Mean, bootstrap CI, failures, and the paired improvement over the noisy input, per metric (the CIs of
    all metrics in one `bootstrap_cis` call: the same numbers as one `bootstrap_ci` call each)."""
    names = list(dict.fromkeys(metric_names))
    scores = np.ascontiguousarray(df[names].to_numpy(dtype=float).T)   # two lookups, not two per metric
    inputs = np.ascontiguousarray(df[[f"noisy_{m}" for m in names]].to_numpy(dtype=float).T)
    paired = ~(np.isnan(scores) | np.isnan(inputs))
    deltas = [vals[p] - noisy[p] for vals, noisy, p in zip(scores, inputs, paired)]
    cis = bootstrap_cis([*scores, *deltas], n_resamples=resamples, confidence=confidence, seed=seed)
    out = {}
    for m, vals, noisy, (mean, lo, hi), (d_mean, d_lo, d_hi) in zip(names, scores, inputs, cis, cis[len(names):]):
        out[m] = {"mean": _clean(mean), "ci_low": _clean(lo), "ci_high": _clean(hi),
                  "n": int(np.sum(~np.isnan(vals))), "failures": int(np.sum(np.isnan(vals))),
                  "noisy_mean": _clean(np.nanmean(noisy) if np.any(~np.isnan(noisy)) else None),
                  "delta": _clean(d_mean), "delta_ci_low": _clean(d_lo), "delta_ci_high": _clean(d_hi)}
    return out


def per_utterance_bytes(df: pd.DataFrame) -> bytes:
    return df.to_csv(index=False, float_format="%.6f", lineterminator="\n").encode()


def read_per_utterance(raw: bytes) -> pd.DataFrame:
    return pd.read_csv(io.BytesIO(raw), dtype={"utt_id": str, "errors": str, "output_sha256": str})


def sha256_bytes(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


def _format_checker():
    fc = jsonschema.FormatChecker()
    if "date-time" not in fc.checkers:  # jsonschema checks it only with the optional rfc3339-validator

        @fc.checks("date-time", raises=ValueError)
        def _date_time(value) -> bool:  # RFC 3339: full date, time and UTC offset
            return not isinstance(value, str) or ("T" in value.upper() and
                                                  datetime.datetime.fromisoformat(value).tzinfo is not None)

    return fc


@lru_cache(maxsize=None)
def _validator(version: int) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(schema(version), format_checker=_format_checker())


def validate_summary(summary: dict, source: str = "summary.json") -> None:
    version = summary.get("schema_version") if isinstance(summary, dict) else None
    if version not in SCHEMA_FILES:
        raise ResultsError(f"{source}: unknown schema_version {version!r} (known: {sorted(SCHEMA_FILES)})")
    if errors := sorted(_validator(version).iter_errors(summary), key=lambda e: list(e.path)):
        msgs = [f"{'/'.join(map(str, e.path)) or '(root)'}: {e.message}" for e in errors[:5]]
        raise ResultsError(f"{source} does not validate against the results schema v{version}:\n  " + "\n  ".join(msgs))


@dataclass
class Run:
    path: Path
    summary: dict
    per_utterance: pd.DataFrame
    config: dict = field(default_factory=dict)   # config.json
    env: dict = field(default_factory=dict)      # env.json ({} when missing)

    @property
    def model(self) -> str:
        return self.summary["model"]["name"]

    @property
    def track(self) -> str:
        return self.summary["benchmark"]["track"]["name"]

    @property
    def noise(self) -> str:
        """The noise folder: the protocol's name (+stream for a streaming scoring)."""
        b = self.summary["benchmark"]
        stream = (b.get("evaluation") or {}).get("mode") == "stream"
        return b["protocol"]["name"] + ("+stream" if stream else "")

    @property
    def run_id(self) -> str:
        return self.summary["run_id"]

    @property
    def split_id(self) -> str:
        return self.summary["benchmark"]["track"]["split_id"]

    @property
    def role(self) -> str:
        return (self.summary["benchmark"].get("evaluation") or {}).get("role", "main")

    @property
    def metric_names(self) -> list[str]:
        return list(self.summary["metrics"])

    @property
    def commit(self) -> str | None:
        return (self.summary.get("provenance") or {}).get("commit") or (self.env.get("git") or {}).get("commit")

    @property
    def dirty(self) -> bool:
        """Made from uncommitted code, by any of its evidence: ``provenance.dirty``, a non-empty
        ``dirty_paths``, env.json's git record (dirty, another commit, or none at all)."""
        prov, git = self.summary.get("provenance") or {}, self.env.get("git") or {}
        if prov.get("dirty") or prov.get("dirty_paths") or git.get("dirty") or git.get("dirty_paths"):
            return True
        return not git.get("commit") or ("commit" in prov and prov["commit"] != git["commit"])


def _read_json(path: Path, folder: Path):
    """A JSON file of a run folder; ResultsError when missing, outside the folder, unreadable or not JSON."""
    if not path.is_file():
        raise ResultsError(f"{rel(path)}: missing")
    if path.is_symlink() or path.resolve().parent != folder.resolve():
        raise ResultsError(f"{rel(path)}: a link out of its run folder; the files of a run live in it")
    try:
        return json.loads(path.read_text())
    except RecursionError:
        raise ResultsError(f"{rel(path)}: nested too deeply to read") from None
    except json.JSONDecodeError as exc:
        raise ResultsError(f"{rel(path)}: not valid JSON ({exc})") from None
    except (OSError, ValueError) as exc:   # unreadable, not UTF-8
        raise ResultsError(f"{rel(path)}: cannot be read ({type(exc).__name__}: {str(exc)[:120]})") from None


def non_finite(obj, where: str = "") -> str | None:
    """The first field (``a/b/c``) holding NaN or an infinity (json.loads accepts them, the writer never
    writes them), or None."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return where or "(root)"
    items = obj.items() if isinstance(obj, dict) else enumerate(obj) if isinstance(obj, list) else ()
    for k, v in items:
        if (bad := non_finite(v, f"{where}/{k}" if where else str(k))) is not None:
            return bad
    return None


def load_run(path: Path, derivations: Derivations | None = None) -> Run:
    """Load a results folder; raises ResultsError naming the file and the problem if it is not valid.
    `derivations`: skip the schema and the recomputation for a summary and CSV derived before."""
    path = Path(path)
    spath = path / "summary.json"
    if not spath.exists():
        raise ResultsError(f"{rel(path)}: not a run folder (no summary.json)")
    summary = _read_json(spath, path)
    entry = derivations.entry(spath, summary) if derivations else None
    derived = entry is not None and entry.is_file()
    if not derived:
        validate_summary(summary, rel(spath))
    if (bad := non_finite(summary)) is not None:
        raise ResultsError(f"{rel(spath)}: {bad} is not a finite number (a statistic is a number or null)")
    config = _read_json(path / summary["files"]["config"], path)
    if not isinstance(config, dict):
        raise ResultsError(f"{rel(path / 'config.json')}: not a JSON object")
    env = _read_json(path / "env.json", path) if (path / "env.json").exists() else {}
    csv_path = path / summary["files"]["per_utterance"]
    if not csv_path.is_file() or csv_path.is_symlink():
        raise ResultsError(f"{rel(csv_path)}: missing")
    raw = csv_path.read_bytes()
    if sha256_bytes(raw) != summary["files"]["per_utterance_sha256"]:
        raise ResultsError(f"{rel(csv_path)}: SHA-256 differs from the one recorded in summary.json (edited after scoring?)")
    try:
        df = read_per_utterance(raw)
    except (ValueError, pd.errors.ParserError) as exc:
        raise ResultsError(f"{rel(csv_path)}: cannot be read as CSV ({str(exc)[:120]})") from None
    run = Run(path, summary, df, config, env if isinstance(env, dict) else {})
    if not derived:
        check_recompute(run)
        if entry is not None:
            derivations.note(entry)
    outputs_dir(run)
    weights_file(run, path.parent.parent.parent.parent)
    return run


def outputs_dir(run: Run) -> Path | None:
    """The folder of the run's shipped outputs (None when not shipped): ``outputs.dir`` is one plain folder
    name and the folder lies inside the run folder (no ``..``, no link out); ResultsError otherwise."""
    o = run.summary.get("outputs") or {}
    if not o.get("shipped"):
        return None
    name = o.get("dir")
    if not isinstance(name, str) or name in ("", ".", "..") or "/" in name or "\\" in name:
        raise ResultsError(f"{rel(run.path)}/summary.json: outputs.dir {name!r} is not a folder name inside the run folder")
    d = run.path / name
    if d.is_symlink() or (d.exists() and d.resolve().parent != run.path.resolve()):
        raise ResultsError(f"{rel(run.path)}/summary.json: outputs.dir {name!r} resolves outside the run folder")
    return d


def weights_file(run: Run, results_root: Path) -> Path | None:
    """The run's shipped weights (None when not shipped): ``weights.file`` names
    ``<track>/<noise>/<model>/<run-id>/weights.safetensors`` of this run (its home folder, relative to the
    results root) and resolves inside the results root; ResultsError otherwise."""
    w = run.summary.get("weights") or {}
    if not (w.get("shipped") and w.get("file")):
        return None
    parts = Path(w["file"]).parts
    if (len(parts) != 5 or any(p in (".", "..") for p in parts) or Path(w["file"]).is_absolute()
            or parts[2:] != (run.model, run.run_id, WEIGHTS_FILE)):
        raise ResultsError(f"{rel(run.path)}/summary.json: weights.file {w['file']!r} is not "
                           f"<track>/<noise>/{run.model}/{run.run_id}/{WEIGHTS_FILE} of this run")
    f = Path(results_root) / w["file"]
    try:
        inside(results_root, f, "weights.file")
    except BenchError:
        raise ResultsError(f"{rel(run.path)}/summary.json: weights.file {w['file']!r} resolves outside the results "
                           "folder") from None
    if any(q.is_symlink() for q in (f, f.parent, f.parent.parent, f.parent.parent.parent)):
        raise ResultsError(f"{rel(run.path)}/summary.json: weights.file {w['file']!r} passes through a link")
    return f


def check_home(d: Path, results_root: Path) -> None:
    """A run folder is ``<track>/<noise>/<model>/<run-id>`` of the results root itself: no link on the way."""
    root = Path(results_root)
    chain = [Path(d), Path(d).parent, Path(d).parent.parent, Path(d).parent.parent.parent]
    if link := next((q for q in chain if q.is_symlink()), None):
        raise ResultsError(f"{rel(link.parent)}/{link.name}: a symbolic link (to {link.resolve()}); run folders live "
                           "inside results/")
    if chain[3].parent.resolve() != root.resolve():
        raise ResultsError(f"{rel(d)}: not a folder <track>/<noise>/<model>/<run-id> of {rel(root)}")


def check_recompute(run: Run) -> None:
    """Every statistic of the summary must equal its recomputation from per_utterance.csv."""
    df, s = run.per_utterance, run.summary
    where = rel(run.path)
    if "utt_id" not in df.columns:
        raise ResultsError(f"{where}/per_utterance.csv: no utt_id column")
    if dup := df["utt_id"][df["utt_id"].duplicated()].tolist():
        raise ResultsError(f"{where}/per_utterance.csv: utterance {dup[0]} appears {int((df['utt_id'] == dup[0]).sum())} "
                           f"times ({len(set(dup))} duplicated ids)")
    n = len(df)
    if n != s["counts"]["utterances"]:
        raise ResultsError(f"{where}: summary counts {s['counts']['utterances']} utterances, per_utterance.csv has {n}")
    if col := next((c for m in s["metrics"] for c in (m, f"noisy_{m}") if c not in df.columns), None):
        raise ResultsError(f"{where}: per_utterance.csv has no column {col!r} listed in summary.json")
    ci = s.get("ci") or {}
    for key, want in (("confidence", CI_CONFIDENCE), ("resamples", CI_RESAMPLES), ("seed", CI_SEED)):
        if ci.get(key) != want:   # the benchmark fixes them; the intervals are recomputed with its values
            raise ResultsError(f"{where}/summary.json: ci.{key} is {ci.get(key)!r}, the benchmark's is {want}")
    fresh = summarize_metrics(df, list(s["metrics"]))
    for m, stats in s["metrics"].items():
        for name in STAT_FIELDS:
            got, want = stats[name], fresh[m][name]
            if (got is None) != (want is None) or (want is not None and abs(got - want) > RECOMPUTE_TOL):
                raise ResultsError(f"{where}/summary.json: {name} {m} = {got} but per_utterance.csv gives {want}")
    failed = int((df["errors"].fillna("") != "").sum()) if "errors" in df.columns else 0
    if s["counts"]["failed_utterances"] != failed:
        raise ResultsError(f"{where}/summary.json: failed_utterances = {s['counts']['failed_utterances']} "
                           f"but per_utterance.csv gives {failed}")


def check_against_benchmark(run: Run, *, protocol, track_record: dict, test_ids: list[str] | None) -> None:
    """Refuse a run scored under another protocol, split or utterance set than the current benchmark."""
    b = run.summary["benchmark"]
    where = rel(run.path)
    if b["protocol"]["sha256"] != protocol.sha256 or b["protocol"]["name"] != protocol.name:
        raise ResultsError(f"{where}: scored under protocol {b['protocol']['name']} ({b['protocol']['sha256'][:12]}), "
                           f"the benchmark is {protocol.name} ({protocol.sha256[:12]})",
                           hint="re-score the model with the current protocol")
    if b["track"]["manifest_sha256"] != track_record["manifest_sha256"] or b["track"]["split_id"] != track_record["split_id"]:
        raise ResultsError(f"{where}: scored on split {b['track']['split_id']} (manifest {b['track']['manifest_sha256'][:12]}), "
                           f"the track is {track_record['split_id']} (manifest {track_record['manifest_sha256'][:12]})",
                           hint="re-score the model on the current split")
    if b["split"] != "test":
        raise ResultsError(f"{where}: scored on the {b['split']} split; only the test split is ranked")
    if test_ids is not None:
        got, want = list(run.per_utterance["utt_id"]), set(test_ids)
        if set(got) != want or len(got) != len(want):
            raise ResultsError(f"{where}: scored {len(got)} utterances, the test split has {len(want)} "
                               f"({len(want - set(got))} missing, {len(set(got) - want)} unexpected)")


def iter_run_dirs(root: Path | None = None):
    """Every results folder: ``<track>/<noise>/<model>/<run-id>/summary.json``."""
    root = Path(root or RESULTS_DIR)
    if root.exists():
        yield from (summary.parent for summary in sorted(root.glob("*/*/*/*/summary.json")))


def find_run(spec: str, track: str | None = None, root: Path | None = None, noise: str | None = None) -> Path:
    """Resolve a run given as a folder path, `model` (latest run) or `model@run-id` (on the track's
    ranked set unless `noise` says otherwise)."""
    p = Path(spec)
    if (p / "summary.json").exists():
        return p
    model, _, run_id = spec.partition("@")
    noise = noise or DEFAULT_PROTOCOL
    cands = [d for d in iter_run_dirs(root) if d.parent.name == model and d.parent.parent.name == noise
             and (track is None or d.parent.parent.parent.name == track)]
    if run_id:
        cands = [d for d in cands if d.name == run_id]
    if not cands:
        raise ResultsError(f"no run found for {spec!r}" + (f" on track {track}" if track else ""),
                           hint="give a run folder, MODEL or MODEL@RUN_ID; `ls results/<track>/<noise>/<model>/` lists runs")
    recency = {d: _recency(d) for d in cands}
    latest = max(cands, key=recency.__getitem__).name
    return max((d for d in cands if d.name == latest), key=lambda d: (_is_home(d), recency[d]))


def _is_home(run_dir: Path) -> bool:
    """Whether the folder is on the track its run trained on (where it keeps its weights): of one run scored
    on several tracks, the one `find_run` gives."""
    try:
        s = json.loads((run_dir / "summary.json").read_text())
        return s["benchmark"]["track"]["name"] == (s.get("training") or {}).get("track")
    except (OSError, ValueError, KeyError, TypeError):
        return False


def _recency(run_dir: Path) -> tuple:
    """Sort key of "the latest run": runs on their track's current split before archived ones, then by the
    summary's creation time (not the folder name: run ids may be any name)."""
    try:
        s = json.loads((run_dir / "summary.json").read_text())
        t = s["benchmark"]["track"]
        try:
            current = load_track(t["name"]).split_id == t["split_id"]
        except BenchError:   # a test-only or unregistered track: no split is archived
            current = True
        return (current, str(s.get("created", "")), run_dir.name)
    except (OSError, ValueError, KeyError, TypeError):
        return (False, "", run_dir.name)   # unreadable: load_run names the problem if it is chosen
