"""Live Link Face CSV: export a FaceMotion in the layout Epic's Live Link Face app records, and import takes.

Layout (one header row, then one row per captured frame):
    Timecode,BlendShapeCount,EyeBlinkLeft,EyeLookDownLeft,...,TongueOut,HeadYaw,HeadPitch,HeadRoll,
    LeftEyeYaw,LeftEyePitch,LeftEyeRoll,RightEyeYaw,RightEyePitch,RightEyeRoll
    00:00:01:12.000,61,0.0123,...
The 52 blendshapes are in Live Link's own order (it differs from Apple's: JawRight before JawLeft, MouthRight
before MouthLeft), PascalCase; BlendShapeCount is 61 (52 shapes + 9 rotations). Timecode is HH:MM:SS:FF.mmm
with FF counted at the take's frame rate (60 by default in the app) and .mmm the sub-frame fraction. Head and
eye rotations are written in radians (our FaceMotion convention); eye roll is always 0 (we have none).

Import is tolerant of what real files contain (BOM, CRLF, blank lines, a trailing comma, columns in any order,
missing rotation columns, timecodes that cross midnight, repeated or dropped frames: the take is resampled onto
a uniform frame grid) and strict about what it cannot recover from (a missing header, no blendshape columns,
non-numeric or non-finite values, unparseable timecodes), which raise InputError naming the line; with
`on_bad_row="skip"` such rows are dropped with a warning instead.
"""

from __future__ import annotations

import csv
import io
import logging
import math
import os
import re
from pathlib import Path

import numpy as np

from avatar.errors import InputError
from avatar.io import atomic_write_text
from avatar.types import ARKIT_BLENDSHAPES, FACE_CHANNELS, FaceMotion

log = logging.getLogger(__name__)

#: The 52 blendshape columns in Live Link Face's order, PascalCase.
LIVELINK_BLENDSHAPES: tuple[str, ...] = (
    "EyeBlinkLeft", "EyeLookDownLeft", "EyeLookInLeft", "EyeLookOutLeft", "EyeLookUpLeft", "EyeSquintLeft",
    "EyeWideLeft", "EyeBlinkRight", "EyeLookDownRight", "EyeLookInRight", "EyeLookOutRight", "EyeLookUpRight",
    "EyeSquintRight", "EyeWideRight", "JawForward", "JawRight", "JawLeft", "JawOpen", "MouthClose",
    "MouthFunnel", "MouthPucker", "MouthRight", "MouthLeft", "MouthSmileLeft", "MouthSmileRight",
    "MouthFrownLeft", "MouthFrownRight", "MouthDimpleLeft", "MouthDimpleRight", "MouthStretchLeft",
    "MouthStretchRight", "MouthRollLower", "MouthRollUpper", "MouthShrugLower", "MouthShrugUpper",
    "MouthPressLeft", "MouthPressRight", "MouthLowerDownLeft", "MouthLowerDownRight", "MouthUpperUpLeft",
    "MouthUpperUpRight", "BrowDownLeft", "BrowDownRight", "BrowInnerUp", "BrowOuterUpLeft", "BrowOuterUpRight",
    "CheekPuff", "CheekSquintLeft", "CheekSquintRight", "NoseSneerLeft", "NoseSneerRight", "TongueOut",
)
#: The 9 rotation columns after the blendshapes.
LIVELINK_ROTATIONS: tuple[str, ...] = ("HeadYaw", "HeadPitch", "HeadRoll", "LeftEyeYaw", "LeftEyePitch",
                                       "LeftEyeRoll", "RightEyeYaw", "RightEyePitch", "RightEyeRoll")
HEADER: tuple[str, ...] = ("Timecode", "BlendShapeCount") + LIVELINK_BLENDSHAPES + LIVELINK_ROTATIONS
assert sorted(n.lower() for n in LIVELINK_BLENDSHAPES) == sorted(n.lower() for n in ARKIT_BLENDSHAPES)

_TIMECODE = re.compile(r"^\s*(\d{1,2}):(\d{2}):(\d{2})[:;](\d{1,3})(?:\.(\d+))?\s*$")
_STANDARD_RATES = (24, 25, 30, 48, 50, 60, 120)
_MAX_ROWS = 1_000_000  # about 4.6 hours at 60 fps: larger files are refused, not read into memory
_CHANNEL_BY_LOWER = {n.lower(): n for n in FACE_CHANNELS}


def format_timecode(seconds: float, rate: float) -> str:
    """HH:MM:SS:FF.mmm for a time in seconds at a timecode rate (frames per second)."""
    if not math.isfinite(seconds) or seconds < 0:
        raise InputError(f"timecode needs a time >= 0, got {seconds!r}")
    frames_total = seconds * rate
    whole = math.floor(frames_total + 1e-6)
    sub = max(0.0, frames_total - whole)
    per_sec = max(1, int(round(rate)))
    secs, ff = divmod(whole, per_sec)
    h, rem = divmod(int(secs), 3600)
    m, s = divmod(rem, 60)
    return f"{h % 24:02d}:{m:02d}:{s:02d}:{int(ff):02d}.{min(999, int(round(sub * 1000))):03d}"


def parse_timecode(text: str, rate: float) -> float:
    """Seconds of an HH:MM:SS:FF[.sub] timecode at a frame rate; InputError when it is not one."""
    m = _TIMECODE.match(text)
    if not m:
        raise InputError(f"not a timecode (HH:MM:SS:FF.mmm): {text[:40]!r}")
    h, mi, s, ff = (int(g) for g in m.groups()[:4])
    sub = float("0." + m.group(5)) if m.group(5) else 0.0
    if mi > 59 or s > 59 or h > 23 or ff >= math.ceil(rate):
        raise InputError(f"timecode out of range at {rate:g} fps: {text[:40]!r}")
    return h * 3600 + mi * 60 + s + (ff + sub) / rate


def to_livelink_csv(face: FaceMotion, start: float = 0.0, timecode_rate: float | None = None) -> str:
    """The Live Link Face CSV text of a FaceMotion (timecodes from `start` seconds)."""
    rate = float(timecode_rate or face.fps)
    lower = {n.lower(): i for i, n in enumerate(face.names)}

    def col(name: str) -> np.ndarray:
        i = lower.get(name.lower())
        return face.frames[:, i] if i is not None else np.zeros(face.num_frames, dtype=np.float32)

    shapes = np.stack([np.clip(col(n), 0.0, 1.0) for n in LIVELINK_BLENDSHAPES], axis=1)
    rot = np.stack([col(n) if not n.endswith("Roll") or n == "HeadRoll" else np.zeros(face.num_frames)
                    for n in LIVELINK_ROTATIONS], axis=1)
    values = np.concatenate([shapes, rot], axis=1)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(HEADER)
    count = str(len(LIVELINK_BLENDSHAPES) + len(LIVELINK_ROTATIONS))
    for i in range(face.num_frames):
        w.writerow([format_timecode(start + i / face.fps, rate), count, *(f"{v:.6g}" for v in values[i])])
    return buf.getvalue()


def write_livelink_csv(face: FaceMotion, path: str | os.PathLike[str], start: float = 0.0) -> Path:
    """Write a FaceMotion as a Live Link Face CSV, atomically."""
    return atomic_write_text(path, to_livelink_csv(face, start=start))


def _guess_rate(frame_numbers: list[int]) -> float:
    top = max(frame_numbers, default=0) + 1
    for r in _STANDARD_RATES:
        if r >= top:
            return float(r)
    raise InputError(f"timecode frame numbers reach {top - 1}: no standard frame rate fits; pass fps=")


def parse_livelink_csv(text: str, fps: float | None = None, on_bad_row: str = "error",
                       angles: str = "radians", name: str = "CSV") -> FaceMotion:
    """Parse Live Link Face CSV text into a FaceMotion on a uniform frame grid.

    fps: the take's frame rate (timecode FF counts at it, and the output uses it); by default it is guessed
    as the smallest standard rate (24, 25, 30, 48, 50, 60, 120) above the largest FF in the file.
    """
    if on_bad_row not in ("error", "skip"):
        raise InputError(f"on_bad_row must be 'error' or 'skip', got {on_bad_row!r}")
    if angles not in ("radians", "degrees"):
        raise InputError(f"angles must be 'radians' or 'degrees', got {angles!r}")
    if fps is not None and (not math.isfinite(float(fps)) or not 0 < float(fps) <= 1000):
        raise InputError(f"fps must be in (0, 1000], got {fps!r}")
    text = text.lstrip("\ufeff")
    rows = csv.reader(io.StringIO(text))
    header: list[str] | None = None
    header_line = 0
    for line_no, row in enumerate(rows, start=1):
        if any(c.strip() for c in row):
            header, header_line = [c.strip() for c in row], line_no
            break
    if header is None:
        raise InputError(f"{name}: the file is empty")
    while header and header[-1] == "":
        header.pop()
    if not header or header[0].lower() != "timecode":
        raise InputError(f"{name}: line {header_line}: expected a header starting with 'Timecode', got "
                         f"{','.join(header[:3])[:60]!r}")
    cols: dict[int, int] = {}  # csv column -> FACE_CHANNELS index
    for j, h in enumerate(header):
        ch = _CHANNEL_BY_LOWER.get(h.lower())
        if ch is not None:
            cols[j] = FACE_CHANNELS.index(ch)
    n_shapes = sum(1 for k in cols.values() if k < len(ARKIT_BLENDSHAPES))
    if n_shapes == 0:
        raise InputError(f"{name}: line {header_line}: no ARKit blendshape columns in the header")
    if n_shapes < len(ARKIT_BLENDSHAPES):
        missing = [n for n in ARKIT_BLENDSHAPES if n.lower() not in {h.lower() for h in header}]
        log.warning("%s: %d blendshape columns missing (set to 0): %s", name, len(missing), ", ".join(missing[:6]))

    stamps: list[tuple[str, int]] = []
    frame_numbers: list[int] = []
    data: list[np.ndarray] = []
    bad: list[str] = []
    src = np.array(list(cols.keys()), dtype=np.int64)
    dst = np.array(list(cols.values()), dtype=np.int64)
    for line_no, row in enumerate(rows, start=header_line + 1):
        if not any(c.strip() for c in row):
            continue
        if len(stamps) >= _MAX_ROWS:
            raise InputError(f"{name}: more than {_MAX_ROWS} rows; split the take first")
        try:
            while len(row) > len(header) and row[-1].strip() == "":
                row = row[:-1]
            if len(row) != len(header):
                raise InputError(f"{len(row)} fields, the header has {len(header)}")
            m = _TIMECODE.match(row[0])
            if not m:
                raise InputError(f"bad timecode {row[0][:30]!r} (want HH:MM:SS:FF.mmm)")
            vals = np.zeros(len(FACE_CHANNELS), dtype=np.float64)
            try:
                picked = np.array([float(row[j]) for j in src], dtype=np.float64)
            except ValueError:
                bad_col = next(j for j in src if not _is_float(row[j]))
                raise InputError(f"column {header[bad_col]}: not a number: {row[bad_col][:20]!r}") from None
            if not np.isfinite(picked).all():
                bad_col = int(src[np.nonzero(~np.isfinite(picked))[0][0]])
                raise InputError(f"column {header[bad_col]}: not a finite number: {row[bad_col][:20]!r}")
            vals[dst] = picked
        except InputError as exc:
            msg = f"{name}: line {line_no}: {exc}"
            if on_bad_row == "error":
                raise InputError(msg) from None
            bad.append(msg)
            continue
        stamps.append((row[0], line_no))
        frame_numbers.append(int(m.group(4)))
        data.append(vals)
    if bad:
        log.warning("skipped %d bad rows; first: %s", len(bad), bad[0])
    if not data:
        raise InputError(f"{name}: no usable data rows" + (f" ({len(bad)} bad; first: {bad[0]})" if bad else ""))

    rate = float(fps) if fps is not None else _guess_rate(frame_numbers)
    times = np.empty(len(stamps))
    for k, (stamp, line_no) in enumerate(stamps):
        try:
            times[k] = parse_timecode(stamp, rate)
        except InputError as exc:
            raise InputError(f"{name}: line {line_no}: {exc}") from None
    # A take that runs past midnight restarts the clock: unwrap by adding a day after each big backward jump.
    jumps = np.diff(times) < -43200
    times[1:] += 86400.0 * np.cumsum(jumps)
    order = np.argsort(times, kind="stable")
    times, values = times[order], np.stack(data)[order]
    t_rel = times - times[0]
    out_fps = rate
    n = int(round(t_rel[-1] * out_fps)) + 1
    if n > _MAX_ROWS * 4:
        raise InputError(f"{name}: the timecodes span {t_rel[-1]:.0f} s; that is too long")
    grid = np.arange(n) / out_fps
    # Repeated timecodes: keep the last row of each (np.unique keeps the first, so search from the end).
    uniq_rev, idx_rev = np.unique(t_rel[::-1], return_index=True)
    keep = len(t_rel) - 1 - idx_rev
    tk, vk = t_rel[keep], values[keep]
    frames = np.stack([np.interp(grid, tk, vk[:, c]) for c in range(vk.shape[1])], axis=1)
    nb = len(ARKIT_BLENDSHAPES)
    if (frames[:, :nb] > 1.001).any() or (frames[:, :nb] < -0.001).any():
        log.warning("%s: blendshape values outside [0, 1] were clipped", name)
    frames[:, :nb] = np.clip(frames[:, :nb], 0.0, 1.0)
    if angles == "degrees":
        frames[:, nb:] = np.deg2rad(frames[:, nb:])
    return FaceMotion(fps=out_fps, frames=frames.astype(np.float32))


def _is_float(s: str) -> bool:
    try:
        float(s)
        return True
    except ValueError:
        return False


def read_livelink_csv(path: str | os.PathLike[str], fps: float | None = None, on_bad_row: str = "error",
                      angles: str = "radians") -> FaceMotion:
    """Read a Live Link Face CSV file (see parse_livelink_csv)."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"Live Link CSV not found: {p}")
    if p.stat().st_size > 2_000_000_000:
        raise InputError(f"{p.name}: too large for a face take")
    try:
        text = p.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(f"{p.name}: not UTF-8 text ({exc.reason})") from None
    return parse_livelink_csv(text, fps=fps, on_bad_row=on_bad_row, angles=angles, name=p.name)
