"""Dialogue scripts: characters and lines, read from YAML / JSON, JSONL or CSV and validated with pydantic.

Two levels of validation, because they fail differently (docs/batch.md):

- the file as a whole (unreadable, not YAML/JSON/CSV, no `lines`, a broken `characters` section, unknown
  top-level keys) raises InputError: the CLI stops with exit code 2 before rendering anything;
- each line is checked on its own (`check_lines`): a bad line (unknown character, empty text, an id that
  is not a plain folder name, a duplicate id, a typo in a key) becomes a `LineFailure` and the other lines
  still render.
"""

from __future__ import annotations

import csv
import io
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Union

from pydantic import ConfigDict, Field, field_validator

from avatar.emotion.dynamics import Personality
from avatar.errors import InputError
from avatar.io import safe_name
from avatar.text import escaped, find_invalid
from avatar.types import VAD, Strict

#: Script files larger than this are refused before reading (a script is text; 64 MiB is ~1M lines).
MAX_SCRIPT_BYTES = 64 * 2**20
#: A line of dialogue longer than this is refused (split long speeches into several lines).
MAX_LINE_CHARS = 20_000
#: Names in OUTDIR that a line id may not take.
RESERVED_IDS = frozenset({"manifest.jsonl", "scene.mp4", "scene.json"})

EmotionSpec = Union[str, list, dict, VAD, None]


def parse_emotion(value: EmotionSpec, where: str) -> VAD | None:
    """An emotion given as a label ('angry'), [v, a, d], or {valence, arousal, dominance} (missing = 0)."""
    if value is None or isinstance(value, VAD):
        return value
    if isinstance(value, str):
        from avatar.emotion.labels import vad_for_label

        return vad_for_label(value)
    if isinstance(value, (list, tuple)):
        if len(value) != 3:
            raise InputError(f"{where}: an emotion list needs 3 numbers [valence, arousal, dominance]")
        return VAD(*value)
    if isinstance(value, dict):
        extra = set(value) - {"valence", "arousal", "dominance"}
        if extra:
            raise InputError(f"{where}: unknown emotion keys {sorted(extra)}; use valence, arousal, dominance")
        return VAD(**{k: value[k] for k in ("valence", "arousal", "dominance") if k in value})
    raise InputError(f"{where}: an emotion is a label, [v, a, d] or a mapping, got {type(value).__name__}")


class Character(Strict):
    """A character: TTS voice, avatar file, Big Five personality and optional starting mood."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    voice: str | None = Field(default=None, max_length=200)
    avatar: str | None = Field(default=None, max_length=4096)
    personality: Personality = Field(default_factory=Personality)
    base_emotion: VAD | None = None

    @field_validator("base_emotion", mode="before")
    @classmethod
    def _emotion(cls, v: EmotionSpec) -> VAD | None:
        return parse_emotion(v, "base_emotion")


class Line(Strict):
    """One line of dialogue: a unique id (its output folder), who says it, the text, an optional emotion."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    character: str = Field(min_length=1, max_length=200)
    text: str
    emotion: VAD | None = None
    audio: str | None = Field(default=None, min_length=1, max_length=4096)  # a recording to perform, not our TTS

    @field_validator("id", mode="before")
    @classmethod
    def _id(cls, v: Any) -> str:
        if isinstance(v, bool) or not isinstance(v, (str, int)):
            raise InputError(f"id must be a string, got {type(v).__name__}")
        return safe_name(str(v))  # the id names a folder in OUTDIR: no '/', '..', leading dot

    @field_validator("text")
    @classmethod
    def _text(cls, v: str) -> str:
        from avatar.emotion.sentences import check_text

        if len(v) > MAX_LINE_CHARS:
            raise InputError(f"text is {len(v):,} characters; a line is limited to {MAX_LINE_CHARS:,}")
        check_text(v)  # empty / whitespace-only text is refused here, before any model runs
        return v

    @field_validator("emotion", mode="before")
    @classmethod
    def _emotion(cls, v: EmotionSpec) -> VAD | None:
        return parse_emotion(v, "emotion")


@dataclass(frozen=True)
class Script:
    """A parsed script: characters (None when the file gave none: any name is then allowed) and raw lines.

    `trusted`: the files it names (avatars, recordings) may lie outside its folder; otherwise they must resolve
    inside it (symbolic links followed), as a glTF's buffers and images must, so that an untrusted script cannot
    copy other files into OUTDIR."""

    characters: dict[str, Character] | None
    lines: list[Any]  # raw records; check_lines validates each one on its own
    source: Path | None = None
    trusted: bool = False

    def avatar_path(self, character: Character) -> Path | None:
        """The character's avatar file, relative paths taken from the script's folder; a shipped avatar's name
        (`default-male`, `toon`) stands for its file unless the script's folder holds a file of that name."""
        from avatar.render.avatars import NAMED_AVATARS, avatar_dir

        p = self.path(character.avatar, "avatar")
        if character.avatar in NAMED_AVATARS and p is not None and not p.exists():
            return avatar_dir() / NAMED_AVATARS[character.avatar]
        return p

    def audio_path(self, line: Line) -> Path | None:
        """The line's recording, relative paths taken from the script's folder."""
        return self.path(line.audio, "audio")

    def path(self, name: str | None, what: str = "file") -> Path | None:
        """A file the script names (None stays None): `~` expanded, relative to the script's folder, and inside
        that folder unless the script is trusted (InputError, worded the same whether or not the file exists)."""
        if name is None:
            return None
        if "\x00" in name:
            raise InputError("a file name in the script holds a NUL character")
        p = Path(os.path.expanduser(name))
        if not p.is_absolute() and self.source is not None:
            p = self.source.parent / p
        p = p.resolve()
        if not self.trusted and self.source is not None:
            base = self.source.parent.resolve()
            if base not in p.parents:
                raise InputError(f"{what} {name!r} is outside the script's folder; pass --trust-script to allow "
                                 "files elsewhere")
        return p


@dataclass(frozen=True)
class LineFailure:
    """A line refused before rendering (or one whose render failed), with the reason."""

    index: int
    id: str | None
    error: str
    character: str | None = None
    text: str | None = None
    stage: str = "validate"


def check_lines(script: Script) -> tuple[list[tuple[int, Line]], list[LineFailure]]:
    """Validate every line on its own; returns the good lines (with their index) and the failures."""
    good: list[tuple[int, Line]] = []
    bad: list[LineFailure] = []
    seen: dict[str, int] = {}  # id folded to lower case -> index of the line that took it
    for i, raw in enumerate(script.lines):
        if isinstance(raw, LineFailure):  # a row the reader could not parse at all
            bad.append(raw)
            continue
        rid = raw.get("id") if isinstance(raw, dict) else None
        rid = str(rid) if isinstance(rid, (str, int)) and not isinstance(rid, bool) else None
        who = raw.get("character") if isinstance(raw, dict) and isinstance(raw.get("character"), str) else None
        said = raw.get("text") if isinstance(raw, dict) and isinstance(raw.get("text"), str) else None
        # JSON/YAML escapes can spell lone surrogates: refuse them (avatar.text) before they reach a message,
        # a folder name or the manifest, and keep only escaped copies for the failure record.
        invalid = find_invalid(raw, "text")
        rid, who, said = (escaped(s) if isinstance(s, str) else s for s in (rid, who, said))

        def fail(msg: str, i: int = i, rid: object = rid, who: object = who, said: object = said) -> None:
            bad.append(LineFailure(index=i, id=rid, error=msg, character=who, text=said))  # this line's values

        if not isinstance(raw, dict):
            fail(f"line {i + 1} is a {type(raw).__name__}, not a mapping with id, character, text")
            continue
        if invalid:
            fail(f"line {i + 1}: {invalid}")
            continue
        try:
            line = Line.model_validate(raw)
        except InputError as exc:  # 'line N:' says what it is; pydantic's 'invalid Line:' would say it again
            fail(f"line {i + 1}: {str(exc).removeprefix('invalid Line: ')}")
            continue
        if line.id.lower() in RESERVED_IDS:
            fail(f"line {i + 1}: id {line.id!r} is reserved for the batch's own files")
            continue
        # Folded to lower case: two ids that differ only in case would share a folder on macOS / Windows.
        if line.id.lower() in seen:
            fail(f"line {i + 1}: duplicate id {line.id!r} (first used by line {seen[line.id.lower()] + 1})")
            continue
        if script.characters is not None and line.character not in script.characters:
            known = ", ".join(sorted(script.characters)) or "none"
            fail(f"line {i + 1}: unknown character {line.character!r} (known: {known})")
            continue
        try:
            audio = script.audio_path(line)
        except InputError as exc:
            fail(f"line {i + 1}: {exc}")
            continue
        if audio is not None and not audio.is_file():
            fail(f"line {i + 1}: audio file not found: {audio}")
            continue
        seen[line.id.lower()] = i
        good.append((i, line))
    return good, bad


# --------------------------------------------------------------------------------------------------
# Reading files
# --------------------------------------------------------------------------------------------------


def _read_text(path: Path) -> str:
    if not path.exists():
        raise InputError(f"script not found: {path}")
    if not path.is_file():
        raise InputError(f"script {path} is not a file")
    if path.stat().st_size > MAX_SCRIPT_BYTES:
        raise InputError(f"script {path} is larger than {MAX_SCRIPT_BYTES // 2**20} MiB; split it first")
    try:
        return path.read_text(encoding="utf-8-sig")  # -sig: a BOM from Windows editors is not content
    except UnicodeDecodeError:
        raise InputError(f"script {path} is not UTF-8 text") from None


def _characters(raw: Any, where: str) -> dict[str, Character]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise InputError(f"{where}: `characters` must map each name to its settings")
    out: dict[str, Character] = {}
    for name, settings in raw.items():
        if not isinstance(name, str) or not name.strip():
            raise InputError(f"{where}: character names must be non-empty strings, got {name!r}")
        try:
            out[name] = Character.model_validate(settings if settings is not None else {})
        except InputError as exc:
            raise InputError(f"{where}: character {name!r}: {exc}") from None
    return out


def _load_yaml(text: str, where: str) -> Any:
    import yaml

    try:
        return yaml.safe_load(text)  # safe_load: a script builds no Python objects
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise InputError(f"{where} is not valid YAML{at}: {problem}") from None


def load_characters(path: str | os.PathLike[str]) -> dict[str, Character]:
    """Characters from a YAML/JSON file holding a `characters:` mapping (for JSONL and CSV scripts)."""
    p = Path(path)
    data = _load_yaml(_read_text(p), str(p))
    if not isinstance(data, dict) or set(data) - {"characters"} or "characters" not in data:
        raise InputError(f"{p}: a characters file holds one key, `characters:`, mapping names to settings")
    return _characters(data["characters"], str(p))


def _parse_mapping(data: Any, where: str, source: Path | None) -> Script:
    if not isinstance(data, dict):
        raise InputError(f"{where}: a script is a mapping with `characters:` and `lines:`")
    extra = set(data) - {"characters", "lines", "title"}
    if extra:
        raise InputError(f"{where}: unknown top-level keys {sorted(map(str, extra))}; "
                         "expected characters, lines (and optional title)")
    invalid = find_invalid({k: data[k] for k in ("characters", "title") if k in data})
    if invalid:
        raise InputError(f"{where}: {invalid}")
    lines = data.get("lines")
    if not isinstance(lines, list) or not lines:
        raise InputError(f"{where}: `lines:` must be a non-empty list of lines")
    # No `characters:` at all means every name is welcome with default settings (as for JSONL and CSV).
    chars = _characters(data["characters"], where) if "characters" in data else None
    return Script(characters=chars, lines=lines, source=source)


def _parse_jsonl(text: str, where: str, source: Path | None) -> Script:
    rows: list[Any] = []
    parsed = 0
    for n, raw in enumerate(text.splitlines()):
        if not raw.strip():
            continue
        try:
            rows.append(json.loads(raw))
            parsed += 1
        except json.JSONDecodeError as exc:
            # One broken row is a bad line, not a broken file: record it and render the rest.
            rows.append(LineFailure(index=len(rows), id=None, error=f"file line {n + 1} is not JSON: {exc.msg}"))
    if not rows:
        raise InputError(f"{where}: the script has no lines")
    if parsed == 0:
        raise InputError(f"{where}: no row is a JSON object; a JSONL script has one line object per row")
    return Script(characters=None, lines=rows, source=source)


_CSV_EMOTION = ("valence", "arousal", "dominance")


def _parse_csv(text: str, where: str, source: Path | None) -> Script:
    # strict: a stray quote is an error, not text. A cell that holds a line break is refused as well: it is
    # almost always an unclosed quote that swallowed the rows after it (the summary would say all ok).
    reader = csv.DictReader(io.StringIO(text), strict=True)
    start = [1]  # the file line the record being read starts on
    try:
        return _read_csv_rows(reader, where, source, start)
    except csv.Error as exc:
        raise InputError(f"{where}: file line {_first_filled(text, start[0])}: {exc}; is a quote left open?") from None
    except _CellWithBreakError as exc:
        raise InputError(f"{where}: file line {_first_filled(text, start[0])}: a cell runs on to file line "
                         f"{exc.args[0]}; is a quote left open? (a CSV cell may not hold a line break)") from None


class _CellWithBreakError(Exception):
    """A CSV record whose cell holds a line break (args: the file line it ends on)."""


def _first_filled(text: str, line: int) -> int:
    """The first file line from `line` on that is not blank (the csv reader skips blank lines between records)."""
    lines = text.splitlines()
    return next((n for n in range(line, len(lines) + 1) if lines[n - 1].strip()), line)


def _read_csv_rows(reader: csv.DictReader, where: str, source: Path | None, start: list[int]) -> Script:
    header = [h.strip() for h in (reader.fieldnames or [])]
    missing = {"id", "character", "text"} - set(header)
    if missing:
        raise InputError(f"{where}: the CSV header needs columns id, character, text (missing: {sorted(missing)})")
    known = {"id", "character", "text", "emotion", "audio", *_CSV_EMOTION}
    extra = set(header) - known
    if extra:
        raise InputError(f"{where}: unknown CSV columns {sorted(extra)}; known: {sorted(known)}")
    reader.fieldnames = header
    rows: list[Any] = []
    start[0] = reader.line_num + 1
    for row in reader:
        if any("\n" in v or "\r" in v for v in row.values() if isinstance(v, str)):
            raise _CellWithBreakError(reader.line_num)
        extra = row.pop(None, None)  # cells beyond the header's columns
        rec: dict[str, Any] = {k: v for k, v in row.items()
                               if v is not None and (k == "text" or v.strip() != "")}
        nums = {k: rec.pop(k) for k in _CSV_EMOTION if k in rec}
        problem = None
        if extra:
            problem = (f"file line {reader.line_num} has {len(extra)} more cell(s) than the header "
                       "(quote text with commas)")
        elif nums and "emotion" in rec:
            problem = (f"file line {reader.line_num}: give either an emotion label or valence/arousal/dominance, "
                       "not both")
        elif nums:
            rec["emotion"] = nums  # VAD parses the numbers; a non-number fails that line only
        if problem:
            rows.append(LineFailure(index=len(rows), id=rec.get("id"), error=problem, character=rec.get("character"),
                                    text=rec.get("text")))
        else:
            rows.append(rec)
        start[0] = reader.line_num + 1
    if not rows:
        raise InputError(f"{where}: the script has no lines")
    return Script(characters=None, lines=rows, source=source)


def parse_script(text: str, fmt: str, where: str = "script", source: Path | None = None) -> Script:
    """Parse script text in a format: 'yaml' (also JSON), 'jsonl' or 'csv'."""
    if fmt == "yaml":
        return _parse_mapping(_load_yaml(text, where), where, source)
    if fmt == "jsonl":
        return _parse_jsonl(text, where, source)
    if fmt == "csv":
        try:
            return _parse_csv(text, where, source)
        except csv.Error as exc:  # the csv module's own complaints (a stray carriage return, a NUL) are bad input
            raise InputError(f"{where}: not valid CSV: {exc}") from None
    raise InputError(f"unknown script format {fmt!r}; use yaml, jsonl or csv")


def script_format(path: Path) -> str:
    """The format a file name implies: .jsonl/.ndjson, .csv, else YAML (which also reads .json)."""
    suffix = path.suffix.lower()
    return {".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv"}.get(suffix, "yaml")


def load_script(path: str | os.PathLike[str], characters: str | os.PathLike[str] | None = None, *,
                trusted: bool = False) -> Script:
    """Read a script file; `characters` (a YAML/JSON file) gives the characters of a JSONL or CSV script.

    trusted: let the script (and `characters`) name avatar and audio files outside the script's folder."""
    p = Path(path)
    script = parse_script(_read_text(p), script_format(p), str(p), source=p.resolve())
    chars = script.characters
    if characters is not None:
        if script.characters:
            raise InputError(f"{p} defines its own characters; --characters is for JSONL and CSV scripts")
        chars = load_characters(characters)
    script = Script(characters=chars, lines=script.lines, source=script.source, trusted=trusted)
    for name, ch in (script.characters or {}).items():
        try:
            ap = script.avatar_path(ch)
        except InputError as exc:
            raise InputError(f"character {name!r}: {exc}") from None
        if ap is not None and not ap.is_file():
            raise InputError(f"character {name!r}: avatar file not found: {ap}")
    return script
