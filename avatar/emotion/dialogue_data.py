"""Our hand-written dialogue lines (`datasets/dialogue/`): category, intensity and VAD per line, split by group.

    >>> rows = load_dialogue("train")
    >>> rows[0].category, rows[0].vad
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from avatar.errors import InputError

#: The categories of the dialogue set and of the model's categorical head, in the head's order.
CATEGORIES: tuple[str, ...] = ("neutral", "happy", "sad", "angry", "fearful", "disgusted", "surprised")
DATA_DIR = Path(__file__).resolve().parents[2] / "datasets" / "dialogue"


@dataclass(frozen=True)
class DialogueLine:
    """One labelled line: its text, group (situation), split, category, intensity (0..1) and VAD in [-1, 1].

    `batch` names the writing batch; `genre` and `speaker` are set for batches after the first (else "")."""

    id: str
    group: str
    split: str
    category: str
    intensity: str
    intensity_value: float
    vad: tuple[float, float, float]
    variant: str
    tags: tuple[str, ...]
    text: str
    batch: str = "batch1"
    genre: str = ""
    speaker: str = ""


def load_dialogue(split: str | None = None, path: str | Path | None = None) -> list[DialogueLine]:
    """Rows of lines.csv, all or one split ('train', 'dev', 'test'); InputError when the file is malformed."""
    path = Path(path or DATA_DIR / "lines.csv")
    out = []
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            for row in csv.DictReader(fh):
                if split is not None and row["split"] != split:
                    continue
                if row["category"] not in CATEGORIES:
                    raise InputError(f"{path}: unknown category {row['category']!r} in row {row['id']}")
                out.append(DialogueLine(
                    id=row["id"], group=row["group"], split=row["split"], category=row["category"],
                    intensity=row["intensity"], intensity_value=float(row["intensity_value"]),
                    vad=(float(row["valence"]), float(row["arousal"]), float(row["dominance"])),
                    variant=row["variant"], tags=tuple(row["tags"].split()), text=row["text"],
                    batch=row.get("batch") or "batch1", genre=row.get("genre") or "", speaker=row.get("speaker") or ""))
    except (OSError, KeyError, ValueError) as exc:
        raise InputError(f"cannot read the dialogue set {path}: {exc}") from exc
    return out


def load_triples(path: str | Path | None = None) -> list[tuple[str, str, str, str]]:
    """The graded intensity triples: (category, mild, plain, strong) per row of triples.csv."""
    path = Path(path or DATA_DIR / "triples.csv")
    with open(path, newline="", encoding="utf-8") as fh:
        return [(r["category"], r["mild"], r["plain"], r["strong"]) for r in csv.DictReader(fh)]
