"""Live Link Face CSV: exact layout, round trip, tolerant import, clear errors on bad rows."""

from __future__ import annotations

import numpy as np
import pytest

from avatar.errors import InputError
from avatar.face.livelink import (HEADER, LIVELINK_BLENDSHAPES, format_timecode, parse_livelink_csv,
                                  parse_timecode, read_livelink_csv, to_livelink_csv, write_livelink_csv)
from avatar.types import FACE_CHANNELS, FaceMotion


def motion(n: int = 50, fps: float = 60.0, seed: int = 0) -> FaceMotion:
    rng = np.random.default_rng(seed)
    frames = np.zeros((n, len(FACE_CHANNELS)), dtype=np.float32)
    frames[:, :52] = rng.uniform(0, 1, size=(n, 52))
    frames[:, 52:] = rng.uniform(-0.3, 0.3, size=(n, len(FACE_CHANNELS) - 52))
    return FaceMotion(fps=fps, frames=frames)


def test_layout_matches_live_link_face() -> None:
    text = to_livelink_csv(motion(3))
    lines = text.splitlines()
    header = lines[0].split(",")
    assert header[:2] == ["Timecode", "BlendShapeCount"] and len(header) == 2 + 52 + 9 and tuple(header) == HEADER
    assert header.index("JawRight") < header.index("JawLeft")  # Live Link's order, not Apple's
    assert header.index("MouthRight") < header.index("MouthLeft")
    assert header[-9:] == ["HeadYaw", "HeadPitch", "HeadRoll", "LeftEyeYaw", "LeftEyePitch", "LeftEyeRoll",
                           "RightEyeYaw", "RightEyePitch", "RightEyeRoll"]
    row = lines[2].split(",")
    assert row[0] == "00:00:00:01.000" and row[1] == "61" and len(row) == len(header)


def test_timecodes() -> None:
    assert format_timecode(0.0, 60) == "00:00:00:00.000"
    assert format_timecode(61.5, 60) == "00:01:01:30.000"
    assert format_timecode(3600 + 2 + 0.5 / 30 + 1 / 30 * 0.25, 30) == "01:00:02:00.750"
    assert parse_timecode("14:03:52:28.207", 60) == pytest.approx(14 * 3600 + 3 * 60 + 52 + 28.207 / 60)
    with pytest.raises(InputError):
        parse_timecode("14:03:52", 60)
    with pytest.raises(InputError):
        parse_timecode("25:00:00:00", 60)


def test_round_trip(tmp_path) -> None:
    m = motion(120, fps=60.0)
    path = write_livelink_csv(m, tmp_path / "take.csv", start=3725.0)
    back = read_livelink_csv(path)
    assert back.fps == 60.0 and back.num_frames == m.num_frames and back.names == FACE_CHANNELS
    assert np.allclose(back.frames, m.frames, atol=1e-5)
    m30 = motion(45, fps=30.0, seed=1)
    back30 = parse_livelink_csv(to_livelink_csv(m30))
    assert back30.fps == 30.0 and np.allclose(back30.frames, m30.frames, atol=1e-5)


def test_tolerates_what_real_files_contain() -> None:
    m = motion(10)
    lines = to_livelink_csv(m).splitlines()
    # BOM, CRLF, a trailing comma on every row, blank lines, a repeated row and a dropped frame.
    body = [lines[0] + ","] + [ln + "," for ln in lines[1:]]
    body.insert(3, "")
    body.insert(5, body[4])
    del body[8]
    text = "\ufeff" + "\r\n".join(body) + "\r\n\r\n"
    back = parse_livelink_csv(text)
    assert back.num_frames == 10  # the dropped frame is interpolated back onto the grid
    assert np.allclose(back.frames[0], m.frames[0], atol=1e-5)
    assert np.allclose(back.frames[-1], m.frames[-1], atol=1e-5)


def test_columns_in_any_order_and_missing_rotations() -> None:
    names = list(reversed(LIVELINK_BLENDSHAPES))
    rows = ["Timecode,BlendShapeCount," + ",".join(names)]
    for i in range(4):
        vals = [0.0] * 52
        vals[names.index("JawOpen")] = 0.1 * i
        rows.append(f"00:00:00:{i:02d}.000,52," + ",".join(str(v) for v in vals))
    back = parse_livelink_csv("\n".join(rows), fps=60)
    assert np.allclose(back.channel("jawOpen"), [0.0, 0.1, 0.2, 0.3], atol=1e-6)
    assert not back.channel("headYaw").any()


def test_midnight_and_degrees() -> None:
    m = motion(4, fps=30.0)
    lines = to_livelink_csv(m).splitlines()
    stamps = ["23:59:59:28.000", "23:59:59:29.000", "00:00:00:00.000", "00:00:00:01.000"]
    rows = [lines[0]] + [s + ln[ln.index(","):] for s, ln in zip(stamps, lines[1:])]
    back = parse_livelink_csv("\n".join(rows), angles="degrees")
    assert back.num_frames == 4
    assert np.allclose(back.frames[:, 52:], np.deg2rad(m.frames[:, 52:]), atol=1e-6)


@pytest.mark.parametrize("mutate,needle", [
    (lambda r: r[:2] + ["abc"] + r[3:], "not a number"),
    (lambda r: r[:2] + ["nan"] + r[3:], "not a finite number"),
    (lambda r: r[:10], "fields"),
    (lambda r: ["12:00"] + r[1:], "bad timecode"),
])
def test_bad_rows_raise_with_line_numbers_or_are_skipped(mutate, needle: str) -> None:
    lines = to_livelink_csv(motion(6)).splitlines()
    row = lines[3].split(",")
    lines[3] = ",".join(mutate(row))
    text = "\n".join(lines)
    with pytest.raises(InputError) as err:
        parse_livelink_csv(text, name="take.csv")
    assert "take.csv: line 4" in str(err.value) and needle in str(err.value)
    skipped = parse_livelink_csv(text, on_bad_row="skip")
    assert skipped.num_frames == 6  # the skipped frame is interpolated from its neighbours


@pytest.mark.parametrize("text,needle", [
    ("", "empty"),
    ("\n\n", "empty"),
    ("frame,jawOpen\n0,0.5\n", "header"),
    ("Timecode,Foo,Bar\n00:00:00:00.000,1,2\n", "no ARKit blendshape columns"),
    ("Timecode,BlendShapeCount,JawOpen\n", "no usable data rows"),
    ("Timecode,BlendShapeCount,JawOpen\n00:00:00:00.000,1,x\n", "no usable data rows"),
])
def test_broken_files(text: str, needle: str) -> None:
    with pytest.raises(InputError) as err:
        parse_livelink_csv(text, on_bad_row="skip")
    assert needle in str(err.value)


def test_frame_numbers_beyond_the_given_rate() -> None:
    text = "Timecode,BlendShapeCount,JawOpen\n00:00:00:00.000,1,0.1\n00:00:00:45.000,1,0.2\n"
    assert parse_livelink_csv(text).fps == 48.0  # guessed: the smallest standard rate above FF 45
    with pytest.raises(InputError) as err:
        parse_livelink_csv(text, fps=30)
    assert "line 3" in str(err.value)


def test_file_errors(tmp_path) -> None:
    with pytest.raises(InputError):
        read_livelink_csv(tmp_path / "missing.csv")
    bad = tmp_path / "latin1.csv"
    bad.write_bytes("Timecode,JawOpen\n00:00:00:00.000,0.5 \xe9\n".encode("latin-1"))
    with pytest.raises(InputError):
        read_livelink_csv(bad)
    with pytest.raises(InputError):
        parse_livelink_csv("Timecode,JawOpen\n", on_bad_row="ignore")
