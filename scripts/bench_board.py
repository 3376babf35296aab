"""Speed of the board (issue 27): `bench leaderboard --check` and `bench verify --all --fast` at the baseline
commit (2fe5361, checked out into a temporary `git worktree`) and at this checkout, side by side in one run.

Cases: the committed results; synthetic results trees of N runs (the noisy runs of every set, copied, and
N - that many runs made from the committed ones with each metric's per-utterance scores shuffled, their
summaries written by the project's own results code, so every folder passes the board's checks; files other
than summary.json and per_utterance.csv are hard links). Every measurement is a fresh process (``python -m
bench ...``, the code's tree as working directory); wall time, peak memory (``ru_maxrss`` from ``os.wait4``)
and CPU time (user + system; the machine may be shared) are reported, with the ratios. The new code is measured
once with empty caches (``cold``, what a fresh clone's first check pays), then as it runs after
(``warm``), then with only the derived summaries gone (every folder's schema and statistics checked again).
The board itself changed by design after the baseline (the summary table, the row rule's marks), so the bytes
are compared with another commit, ``--same-as`` (the code before this round of speed work): it and this
checkout render the committed results and each synthetic tree to temporary folders and leaderboard.md and
every file of site/ are compared byte for byte. Nothing is written in the repository but the caches (.cache/,
git-ignored: adapters, sizes, images, derived summaries); the temporary folder is removed unless --keep.

    python scripts/bench_board.py [--sizes 200 1000 2000] [--baseline 2fe5361] [--same-as f03541b] [--keep]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.scoring.results import (dump_json, per_utterance_bytes, read_per_utterance, sha256_bytes,  # noqa: E402
                                   summarize_metrics)


def measure(cmd: list[str], cwd: Path) -> tuple[float, float, int, float]:
    """(wall seconds, peak memory MiB, exit status, CPU seconds (user + system)) of one fresh process."""
    env = {**os.environ, "PYTHONPATH": str(cwd)}
    t0 = time.perf_counter()
    p = subprocess.Popen([sys.executable, "-m", "bench", *cmd], cwd=cwd, env=env, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT)
    out = p.stdout.read().decode(errors="replace")
    _, status, usage = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t0
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode not in (0, 1):
        print(out[-2000:])
    return wall, usage.ru_maxrss / 1024, p.returncode, usage.ru_utime + usage.ru_stime


def _link_tree(src: Path, dst: Path, skip=()) -> None:
    for p in src.rglob("*"):
        if p.is_file() and p.name not in skip:
            q = dst / p.relative_to(src)
            q.parent.mkdir(parents=True, exist_ok=True)
            os.link(p, q)


def synthetic_run(template: Path, out_root: Path, replica: int, rng: np.random.Generator) -> None:
    """A copy of `template` as run ``<run-id>-s<replica>`` with every metric's scores shuffled over the
    utterances (noisy columns kept: they equal the noisy run's) and its statistics recomputed."""
    s = json.loads((template / "summary.json").read_text())
    df = read_per_utterance((template / s["files"]["per_utterance"]).read_bytes())
    for m in s["metrics"]:
        df[m] = df[m].to_numpy()[rng.permutation(len(df))]
    run_id = f"{s['run_id']}-s{replica}"
    dst = out_root / template.parent.parent.parent.name / template.parent.parent.name / template.parent.name / run_id
    _link_tree(template, dst, skip=("summary.json", s["files"]["per_utterance"]))
    raw = per_utterance_bytes(df)
    ci = s.get("ci") or {}
    s["metrics"] = summarize_metrics(df, list(s["metrics"]), **{k: v for k, v in (
        ("resamples", ci.get("resamples")), ("confidence", ci.get("confidence")), ("seed", ci.get("seed")))
        if v is not None})
    s["run_id"] = run_id
    created = datetime.datetime.fromisoformat(s["created"]) + datetime.timedelta(seconds=replica + 1)
    s["created"] = created.isoformat()
    s["files"]["per_utterance_sha256"] = sha256_bytes(raw)
    (dst / s["files"]["per_utterance"]).write_bytes(raw)
    (dst / "summary.json").write_bytes(dump_json(s))


def make_tree(src: Path, dst: Path, n: int, seed: int = 0) -> int:
    """A results tree of `n` runs under `dst` (see the module docstring); returns the number of runs."""
    runs = sorted(p.parent for p in src.glob("*/*/*/*/summary.json"))
    noisy = [d for d in runs if d.parent.name == "noisy"]
    others = [d for d in runs if d.parent.name != "noisy"]
    for d in noisy:
        _link_tree(d, dst / d.relative_to(src))
    rng = np.random.default_rng(seed)
    for i in range(n - len(noisy)):
        synthetic_run(others[i % len(others)], dst, i // len(others), rng)
    return len(list(dst.glob("*/*/*/*/summary.json")))


def same_tree(a: Path, b: Path) -> list[str]:
    """Files that differ between two rendered boards (leaderboard.md and site/)."""
    fa = {p.relative_to(a).as_posix(): p for p in a.rglob("*") if p.is_file()}
    fb = {p.relative_to(b).as_posix(): p for p in b.rglob("*") if p.is_file()}
    return sorted(k for k in fa.keys() | fb.keys() if k not in fa or k not in fb or fa[k].read_bytes() != fb[k].read_bytes())


def row(table: list, case: str, cmd: str, base, new, note: str = "") -> None:
    (bw, bm, brc, bc), (nw, nm, nrc, nc) = base, new
    table.append((case, cmd, bw, bc, bm, brc, nw, nc, nm, nrc, note))
    print(f"| {case} | {cmd} | {bw:.1f} / {bc:.1f} | {bm:.0f} | {brc} | {nw:.1f} / {nc:.1f} | {nm:.0f} | {nrc} | "
          f"{bw / nw:.1f}x / {bc / nc:.1f}x | {note} |", flush=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", type=int, nargs="*", default=[200, 1000, 2000])
    ap.add_argument("--baseline", default="2fe5361", help="the code timed against (the issue's)")
    ap.add_argument("--same-as", default="f03541b", help="the code whose board the new one must equal byte for "
                    "byte (the board changed by design after the baseline; this is the last commit before this "
                    "round of speed work)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary folder (its path is printed)")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench_board-"))
    base, same = tmp / "baseline", tmp / "same-as"
    for where, commit in ((base, args.baseline), (same, args.same_as)):
        subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", "-q", str(where), commit], check=True)
    try:
        return run(args, tmp, base, same)
    finally:
        for where in (base, same):
            subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(where)], check=False)
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            print(f"kept {tmp}")


def _runs(results: Path) -> int:
    return sum(1 for _ in results.glob("*/*/*/*/summary.json"))


def render_both(tmp: Path, results: Path, same: Path, name: str) -> list[str]:
    """leaderboard.md and site/ of `results` rendered by the `--same-as` code and by this checkout: the files
    that differ (none: byte-identical)."""
    outs = {}
    for code, tree in (("same-as", same), ("new", REPO)):
        outs[code] = tmp / f"render-{name}-{code}"
        out = measure(["leaderboard", "--results-dir", str(results), "--output", str(outs[code] / "leaderboard.md")],
                      tree)
        if out[2] != 0:
            return [f"rendering by the {code} code failed (rc {out[2]})"]
    diff = same_tree(outs["same-as"], outs["new"])
    files = sum(1 for p in outs["new"].rglob("*") if p.is_file())
    print(f"{name}: leaderboard.md and site/ by the new code and by {same.name} ({files} files): "
          f"{'BYTE-IDENTICAL' if not diff else 'DIFFERENT'}" + (f"; differ: {diff[:10]}" if diff else ""), flush=True)
    for d in outs.values():
        shutil.rmtree(d, ignore_errors=True)
    return diff


def run(args, tmp: Path, base: Path, same: Path) -> int:
    commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    print(f"baseline {args.baseline} vs this checkout ({commit}{', with local changes' if _dirty() else ''}); "
          f"boards compared with {args.same_as}; {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at start")
    print("| case | command | baseline wall / CPU s | baseline MiB | rc | new wall / CPU s | new MiB | rc | "
          "speed-up wall / CPU | note |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    table: list = []
    check = ["leaderboard", "--check"]
    shutil.rmtree(REPO / ".cache", ignore_errors=True)
    cold = measure(check, REPO)
    b = measure(check, base)
    case = f"committed ({_runs(base / 'results')} / {_runs(REPO / 'results')} runs)"
    row(table, case, "leaderboard --check", b, cold, "new: cold caches (adapters, derived summaries, images)")
    row(table, case, "leaderboard --check", b, measure(check, REPO), "new: warm")
    for old in (REPO / ".cache").glob("derived-*"):
        shutil.rmtree(old)
    row(table, case, "leaderboard --check", b, measure(check, REPO), "new: every summary derived again")
    row(table, case, "verify --all --fast", measure(["verify", "--all", "--fast"], base),
        measure(["verify", "--all", "--fast"], REPO))
    differ = render_both(tmp, REPO / "results", same, "committed results")
    walls = {}
    for n in args.sizes:
        t0 = time.perf_counter()
        tree = tmp / f"syn-{n}"
        count = make_tree(REPO / "results", tree / "results", n)
        out = tree / "board" / "leaderboard.md"
        made = measure(["leaderboard", "--results-dir", str(tree / "results"), "--output", str(out)], REPO)
        print(f"synthetic tree of {count} runs made in {time.perf_counter() - t0:.0f} s, rendered by the new code "
              f"(rc {made[2]}) in {made[0]:.1f} s wall / {made[3]:.1f} s CPU, {made[1]:.0f} MiB, every summary "
              "derived", flush=True)
        cmd = ["leaderboard", "--check", "--results-dir", str(tree / "results"), "--output", str(out)]
        b, new = measure(cmd, base), measure(cmd, REPO)
        walls[n] = (b[0], new[0], b[3], new[3])
        row(table, f"synthetic, {count} runs", "leaderboard --check", b, new,
            f"new: exit {new[2]} (its own board); baseline: exit {b[2]} (1: its board format predates the summary table)")
        differ += render_both(tmp, tree / "results", same, f"synthetic {count} runs")
        shutil.rmtree(tree, ignore_errors=True)
    if 1000 in walls and 2000 in walls:
        w1, w2 = walls[1000], walls[2000]
        print(f"1,000 -> 2,000 runs, wall (CPU): baseline x{w2[0] / w1[0]:.2f} (x{w2[2] / w1[2]:.2f}), "
              f"new x{w2[1] / w1[1]:.2f} (x{w2[3] / w1[3]:.2f})")
    print(f"load average {os.getloadavg()[0]:.1f} at the end")
    return 0 if not differ else 1


def _dirty() -> bool:
    return bool(subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True).stdout.strip())


if __name__ == "__main__":
    sys.exit(main())
