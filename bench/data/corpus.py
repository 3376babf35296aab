"""The VCTK corpus on disk, in its two official layouts.

- VCTK 0.92: ``wav48_silence_trimmed/<speaker>/<speaker>_<nnn>_<mic>.flac`` (mic1 or mic2, 48 kHz FLAC)
- VCTK 0.80: ``wav48/<speaker>/<speaker>_<nnn>.wav`` (48 kHz WAV; FLAC accepted, as in vctk-mini)

`scan` lists the utterances of the given speakers; the file header, not the folder name, gives
the sample rate (vctk-mini keeps 16 kHz files under ``wav48/``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from bench.errors import DataError

LAYOUTS = {
    "0.92": {"dir": "wav48_silence_trimmed", "pattern": re.compile(r"^(?P<utt>[ps]\d+_\d+)_(?P<mic>mic[12])\.flac$")},
    "0.80": {"dir": "wav48", "pattern": re.compile(r"^(?P<utt>[ps]\d+_\d+)\.(?:wav|flac)$")},
}


@dataclass(frozen=True)
class SourceFile:
    utt_id: str
    speaker: str
    path: str  # relative to the corpus root, POSIX separators


def detect_layout(root: Path) -> str:
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: corpus folder does not exist")
    for name, lay in LAYOUTS.items():
        if (root / lay["dir"]).is_dir():
            return name
    listing = ", ".join(sorted(p.name for p in root.iterdir())[:12]) or "(empty)"
    raise DataError(f"{root}: not a VCTK corpus folder: expected wav48_silence_trimmed/ (VCTK 0.92) or wav48/ "
                    f"(VCTK 0.80); found: {listing}")


def scan(root: Path, speakers: list[str], *, layout: str | None = None, mic: str = "mic1") -> list[SourceFile]:
    """Utterances of `speakers` under `root`, sorted by (speaker, utterance id).

    A listed speaker without a folder or without matching files is an error naming it.
    """
    root = Path(root)
    found_layout = detect_layout(root)
    if layout and found_layout != layout:
        raise DataError(f"{root}: has the VCTK {found_layout} layout ({LAYOUTS[found_layout]['dir']}/), "
                        f"but this track is defined on VCTK {layout} ({LAYOUTS[layout]['dir']}/)")
    lay = LAYOUTS[found_layout]
    audio_dir = root / lay["dir"]
    out: list[SourceFile] = []
    for spk in speakers:
        sdir = audio_dir / spk
        if not sdir.is_dir():
            raise DataError(f"{sdir}: missing speaker {spk} (no such folder)",
                            hint="the corpus is incomplete or not the expected VCTK release; re-download or re-extract it")
        rows = []
        for f in sorted(sdir.iterdir()):
            m = lay["pattern"].match(f.name)
            if not m:
                continue
            if found_layout == "0.92" and m.group("mic") != mic:
                continue
            if not m.group("utt").startswith(spk + "_"):
                raise DataError(f"{f}: file of another speaker in the folder of {spk}")
            rows.append(SourceFile(m.group("utt"), spk, f.relative_to(root).as_posix()))
        if not rows:
            expected = f"<utt>_{mic}.flac" if found_layout == "0.92" else "<utt>.wav or <utt>.flac"
            raise DataError(f"{sdir}: speaker {spk} has no audio files named {expected}")
        ids = [r.utt_id for r in rows]
        if len(set(ids)) != len(ids):
            dup = sorted({i for i in ids if ids.count(i) > 1})
            raise DataError(f"{sdir}: utterances present twice (e.g. both .wav and .flac): {', '.join(dup[:5])}")
        out.extend(rows)
    return out
