"""Speech corpora on disk, in the layouts the tracks use (VCTK 0.92 and 0.80, ``librispeech``,
``speechocean762``, clean/noisy ``pairs``; docs/tracks.md lists their file patterns). `scan` lists the
utterances of the given speakers, optionally picking some of each speaker's files by length; the file
header, not the folder name, gives the sample rate."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import soundfile as sf

from bench.core.errors import DataError

LAYOUTS = {  # VCTK: one folder per speaker under a fixed folder
    "0.92": {"dir": "wav48_silence_trimmed", "pattern": re.compile(r"^(?P<utt>[ps]\d+_\d+)_(?P<mic>mic[12])\.flac$")},
    "0.80": {"dir": "wav48", "pattern": re.compile(r"^(?P<utt>[ps]\d+_\d+)\.(?:wav|flac)$")},
}
SUBSET_LAYOUTS = {  # one folder per speaker under a subset (split) folder
    "librispeech": {"pattern": re.compile(r"^(?P<utt>(?P<spk>\d+)-\d+-\d+)\.flac$"), "recursive": True},
    "speechocean762": {"pattern": re.compile(r"^(?P<utt>\d{9})\.(?:flac|wav)$"), "recursive": False},
}
PAIRS_PATTERN = re.compile(r"^(?P<utt>(?P<spk>[ps]\d+)_\d+)\.(?:wav|flac)$")
ALL_LAYOUTS = (*LAYOUTS, *SUBSET_LAYOUTS, "pairs")


@dataclass(frozen=True)
class SourceFile:
    utt_id: str
    speaker: str
    path: str  # relative to the corpus root, POSIX separators
    noisy_path: str = ""  # pairs layout only


def detect_layout(root: Path) -> str:
    """The VCTK release of a VCTK corpus folder (0.92 or 0.80)."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: corpus folder does not exist")
    for name, lay in LAYOUTS.items():
        if (root / lay["dir"]).is_dir():
            return name
    raise DataError(f"{root}: not a VCTK corpus folder: expected wav48_silence_trimmed/ (VCTK 0.92) or wav48/ "
                    f"(VCTK 0.80){_found(root)}")


def marker_dirs(layout: str, *, subsets=(), clean_dir: str = "clean", noisy_dir: str = "noisy") -> list[str]:
    """Folders whose presence identifies a corpus folder of `layout` (any one of them suffices)."""
    if layout in LAYOUTS:
        return [lay["dir"] for lay in LAYOUTS.values()]
    if layout in SUBSET_LAYOUTS:
        return list(subsets)
    if layout == "pairs":
        return [clean_dir]
    raise DataError(f"unknown corpus layout {layout!r}; known: {', '.join(ALL_LAYOUTS)}")


def _found(root: Path) -> str:
    """What the folder holds, for an error message."""
    if not root.is_dir():
        return " (folder does not exist)"
    return "; found: " + (", ".join(sorted(p.name for p in root.iterdir())[:12]) or "(empty)")


def _speaker_files(root: Path, layout: str, spk: str, *, subset, mic, clean_dir, noisy_dir, strict) -> list[SourceFile]:
    if layout in LAYOUTS:
        lay = LAYOUTS[layout]
        sdir = root / lay["dir"] / spk
        files = sorted(sdir.iterdir()) if sdir.is_dir() else None
    elif layout in SUBSET_LAYOUTS:
        lay = SUBSET_LAYOUTS[layout]
        sdir = root / subset / spk
        files = (sorted(sdir.rglob("*")) if lay["recursive"] else sorted(sdir.iterdir())) if sdir.is_dir() else None
    else:  # pairs
        sdir = root / clean_dir
        files = [f for f in sorted(sdir.iterdir()) if (m := PAIRS_PATTERN.match(f.name)) and m.group("spk") == spk]
    if files is None:
        if not strict:
            return []
        raise DataError(f"{sdir}: missing speaker {spk} (no such folder)",
                        hint="the corpus is incomplete or not the expected release; re-download or re-extract it")
    rows = []
    for f in files:
        m = lay["pattern"].match(f.name) if layout != "pairs" else PAIRS_PATTERN.match(f.name)
        if not m or not f.is_file():
            continue
        if layout == "0.92" and m.group("mic") != mic:
            continue
        utt = m.group("utt")
        if (layout in LAYOUTS and not utt.startswith(spk + "_")) or (layout == "librispeech" and m.group("spk") != spk):
            raise DataError(f"{f}: file of another speaker in the folder of {spk}")
        noisy = ""
        if layout == "pairs":
            nf = root / noisy_dir / f.name
            if strict and not nf.is_file():
                raise DataError(f"{nf}: the noisy file of the pair {f} is missing")
            noisy = nf.relative_to(root).as_posix()
        rows.append(SourceFile(utt, spk, f.relative_to(root).as_posix(), noisy))
    if not rows and strict:
        expected = {"0.92": f"<utt>_{mic}.flac", "0.80": "<utt>.wav or <utt>.flac",
                    "librispeech": "<spk>-<chapter>-<n>.flac",
                    "speechocean762": "<nnnnnnnnn>.flac", "pairs": f"{spk}_<nnn>.wav or .flac"}[layout]
        raise DataError(f"{sdir}: speaker {spk} has no audio files named {expected}")
    if dup := sorted(i for i, n in Counter(r.utt_id for r in rows).items() if n > 1):
        raise DataError(f"{sdir}: utterances present twice (e.g. both .wav and .flac): {', '.join(dup[:5])}")
    return rows


def pick_by_length(root: Path, rows: list[SourceFile], pick: dict, *, strict: bool = True) -> list[SourceFile]:
    """Rows ``[start, start + count)`` of one speaker's files sorted by (number of samples, utterance id)."""
    start, count = int(pick.get("start", 0)), int(pick["count"])
    if pick.get("by", "length") != "length":
        raise DataError(f"unknown utterance pick {pick!r}: only by 'length' is defined")
    if len(rows) < start + count and strict:
        raise DataError(f"speaker {rows[0].speaker if rows else '?'} has {len(rows)} utterances, the selection takes "
                        f"ranks {start}..{start + count - 1} by length")
    sized = []
    for r in rows:
        try:
            sized.append((sf.info(str(root / r.path)).frames, r.utt_id, r))
        except RuntimeError as exc:
            if strict:
                raise DataError(f"{root / r.path}: cannot read the audio header ({exc})") from None
    return [r for _, _, r in sorted(sized, key=lambda t: t[:2])[start:start + count]]


def scan(root: Path, speakers: list[str], *, layout: str | None = None, mic: str = "mic1", subset: str | None = None,
         pick: dict | None = None, clean_dir: str = "clean", noisy_dir: str = "noisy",
         strict: bool = True) -> list[SourceFile]:
    """Utterances of `speakers` under `root` (`layout` None: VCTK of either release), sorted by (speaker in the
    given order, utterance id); a speaker without files is an error, skipped when not `strict`."""
    root = Path(root)
    if layout is None or layout in LAYOUTS:
        found = detect_layout(root)
        if layout and found != layout:
            raise DataError(f"{root}: has the VCTK {found} layout ({LAYOUTS[found]['dir']}/), "
                            f"but this track is defined on VCTK {layout} ({LAYOUTS[layout]['dir']}/)")
        layout = found
    elif layout in SUBSET_LAYOUTS:
        if not subset:
            raise DataError(f"a {layout} corpus needs a subset (e.g. train-clean-100, test)")
        if not (root / subset).is_dir():
            raise DataError(f"{root}: not a {layout} corpus folder with the subset {subset}/{_found(root)}")
    elif layout == "pairs":
        for d in (clean_dir, noisy_dir):
            if not (root / d).is_dir():
                raise DataError(f"{root}: not a folder of clean/noisy pairs: expected {clean_dir}/ and {noisy_dir}/"
                                + _found(root))
    else:
        raise DataError(f"unknown corpus layout {layout!r}; known: {', '.join(ALL_LAYOUTS)}")
    out: list[SourceFile] = []
    for spk in speakers:
        rows = _speaker_files(root, layout, spk, subset=subset, mic=mic, clean_dir=clean_dir, noisy_dir=noisy_dir,
                              strict=strict)
        rows.sort(key=lambda r: r.utt_id)
        if pick and rows:
            rows = sorted(pick_by_length(root, rows, pick, strict=strict), key=lambda r: r.utt_id)
        out.extend(rows)
    return out
