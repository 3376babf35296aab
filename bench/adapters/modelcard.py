"""The model card of a submission: ``README.md`` beside ``adapter.py`` (or ``<file>.md`` beside a
one-file adapter ``<file>.py``) with the fields authors, paper, licence, training budget and notes,
as lines ``- **Field:** value``; `bench check` requires each to be present and filled in."""

from __future__ import annotations

import re
from pathlib import Path

CARD_FIELDS = ("authors", "paper", "licence", "training budget", "notes")
#: accepted spellings of each field label (lower case)
CARD_LABELS = {
    "authors": ("authors", "author", "author(s)"),
    "paper": ("paper", "paper link", "reference", "paper / reference", "paper/reference", "paper or reference"),
    "licence": ("licence", "license"),
    "training budget": ("training budget", "budget"),
    "notes": ("notes", "note"),
}
PLACEHOLDER_RE = re.compile(r"^(todo|tbd|fixme|xxx|\.\.\.|…|-|<[^>]*>|\[[^\]]*\])$", re.I)
#: text `bench new` marks the parts to edit with; left in a submission it is a warning (a failure with --strict)
SCAFFOLD_MARKER = "CHANGE ME"
_FIELD_LINE = re.compile(r"^\s*(?:[-*+]\s+)?[*_]*([A-Za-z][A-Za-z ()/]*?)[*_]*\s*:[*_]*\s*(.*)$")


def card_path(adapter_path: Path) -> Path:
    p = Path(adapter_path)
    return p.parent / "README.md" if p.name == "adapter.py" else p.with_suffix(".md")


def _label_of(text: str) -> str | None:
    t = re.sub(r"\s+", " ", text.strip().lower())
    return next((key for key, labels in CARD_LABELS.items() if t in labels), None)


def parse_model_card(text: str) -> dict[str, str]:
    """Field values of a model card; a value continues on the following lines until a blank line, a heading
    or the next field. HTML comments are ignored."""
    text = re.sub(r"<!--.*?-->", "", text, flags=re.S)
    out: dict[str, str] = {}
    current = None
    for line in text.splitlines():
        m = _FIELD_LINE.match(line)
        key = _label_of(m.group(1)) if m else None
        if key:
            current = key
            out[key] = m.group(2).strip()
            continue
        if current and line.strip() and not line.lstrip().startswith("#"):
            out[current] = (out[current] + " " + line.strip()).strip()
        else:
            current = None
    return out


def card_problems(adapter_path: Path) -> list[tuple[str, str, str]]:
    """Problems with a submission's model card as (input, detail, fix) triples; empty when fine."""
    path = card_path(adapter_path)
    if not path.exists():
        return [(str(path), "no model card", f"write {path} with the fields {', '.join(CARD_FIELDS)} "
                 "(`bench new` writes a template; see submissions/README.md)")]
    fields = parse_model_card(path.read_text(encoding="utf-8", errors="replace"))
    problems = []
    for f in CARD_FIELDS:
        if (v := fields.get(f)) is None:
            problems.append((str(path), f"model card field {f!r} is missing",
                             f"add a line '- **{f.capitalize()}:** ...' to {path.name}"))
        elif not re.sub(r"[*_`\s]", "", v) or PLACEHOLDER_RE.match(re.sub(r"[*_`]", "", v).strip()):
            problems.append((str(path), f"model card field {f!r} is empty or a placeholder ({v!r})",
                             f"fill in '{f}' in {path.name}"))
    return problems


def scaffold_markers(path: Path) -> int:
    """How many `SCAFFOLD_MARKER` texts a file still holds (0 if it cannot be read)."""
    try:
        return Path(path).read_text(encoding="utf-8", errors="replace").count(SCAFFOLD_MARKER)
    except OSError:
        return 0
