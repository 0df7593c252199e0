"""Every command's outputs: checked before the work, never a device or a read-only file, write failures as one
`error:` line that says what was kept (issue 20, items 3 and 4)."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from pathlib import Path

import pytest

from avatar.errors import InputError, OutputError

ROOT = Path(__file__).resolve().parents[1]
AVATAR = str(Path(sys.executable).parent / "avatar")


def _run(*args: str, cwd: Path, stdin: str | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([AVATAR, *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=300,
                          input=stdin)


@pytest.fixture()
def spot(tmp_path: Path) -> Path:
    """A folder with the things an output must not clobber: a FIFO, a read-only file, a plain file."""
    os.mkfifo(tmp_path / "fifo.mp4")
    for name in ("ro.mp4", "ro.wav", "ro.json", "ro.bvh"):
        (tmp_path / name).write_text("keep me")
        (tmp_path / name).chmod(0o444)
    (tmp_path / "afile").write_text("a file")
    (tmp_path / "in.wav").write_bytes(b"")  # never read: every case fails on its output first
    return tmp_path


LONG = "n" * 252 + ".mp4"  # 256 bytes


@pytest.mark.parametrize("args, needle", [
    (["say", "Hi.", "-o", "fifo.mp4"], "not a regular file"),
    (["say", "Hi.", "-o", "/dev/null"], "not a regular file"),
    (["say", "Hi.", "-o", "ro.mp4"], "read-only; pass --force"),
    (["say", "Hi.", "-o", "afile/x.mp4"], "a part of the path is a file"),
    (["say", "Hi.", "-o", LONG], "limit is 255"),
    (["say", "Hi.", "-o", "x.mp4", "--keep", "afile"], "--keep 'afile' is a file, not a folder"),
    (["say", "Hi.", "-o", "x.mp4", "--keep", "afile/sub"], "is a file, not a folder"),
    (["tts", "Hi.", "-o", "ro.wav"], "read-only; pass --force"),
    (["tts", "Hi.", "-o", "x.wav", "--timeline", "afile/t.json"], "a part of the path is a file"),
    (["face", "--audio", "in.wav", "-o", "ro.json"], "read-only; pass --force"),
    (["gesture", "--audio", "in.wav", "-o", "ro.bvh"], "read-only; pass --force"),
    (["batch", "script.yaml", "-o", "afile/out"], "is a file, not a folder"),
    (["stream", "--ws", "0", "--no-play", "--audio-out", "ro.wav"], "read-only; pass --force"),
    (["stream", "--ws", "0", "--no-play", "--audio-out", "afile/s.wav"], "a part of the path is a file"),
])
def test_bad_outputs_are_refused_before_any_work(spot: Path, args: list[str], needle: str) -> None:
    before = {p.name: p.stat().st_mtime_ns for p in spot.iterdir()}
    r = _run(*args, cwd=spot, stdin="")
    assert r.returncode == 2, (r.returncode, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and needle in lines[0], r.stderr
    assert {p.name: p.stat().st_mtime_ns for p in spot.iterdir()} == before  # nothing written, nothing replaced
    assert (spot / "fifo.mp4").is_fifo() and (spot / "ro.mp4").read_text() == "keep me"


def test_force_replaces_a_read_only_output(spot: Path) -> None:
    r = _run("tts", "Hi.", "-o", "ro.wav", "--force", "--valence", "0", cwd=spot)
    assert r.returncode == 0, r.stderr
    assert (spot / "ro.wav").read_bytes()[:4] == b"RIFF"


def _enospc_write_mp4(path, *args, **kwargs):
    """write_mp4 on a full disk: some bytes reach the temp file, then the OS says no."""
    from avatar.io import atomic_path

    with atomic_path(path) as tmp:
        tmp.write_bytes(b"\0" * 1000)
        raise OSError(errno.ENOSPC, "No space left on device")


def test_a_full_disk_while_writing_the_video_keeps_the_animation_data(tmp_path: Path, monkeypatch) -> None:
    """`say` with --keep: the emotion, speech and motion work is saved when the video cannot be; one error line,
    exit 1, no temp file."""
    import avatar.render.video as video
    from avatar.cli import app
    from typer.testing import CliRunner

    monkeypatch.setattr(video, "write_mp4", _enospc_write_mp4)
    monkeypatch.chdir(tmp_path)
    r = CliRunner().invoke(app, ["say", "Hello there.", "-o", "x.mp4", "--keep", "kept", "--size", "64",
                                 "--render-workers", "1", "--valence", "0.2"])
    assert r.exit_code == 1, r.output
    err = r.stderr.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: cannot write x.mp4: no space left on the device; "
                                               "the animation data was written to kept"), r.stderr
    assert sorted(p.name for p in (tmp_path / "kept").iterdir()) == sorted(
        ["speech.wav", "timeline.json", "emotion.json", "face.json", "face.csv", "body.bvh", "animation.glb",
         "animation.vrma"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kept"]  # no video, no .part


def test_a_full_disk_while_keeping_says_the_video_was_written(tmp_path: Path, monkeypatch) -> None:
    import avatar.gesture.bvh as bvh
    from avatar.pipeline import say

    def full(path, *a, **k):
        raise OutputError(f"cannot write {path}: no space left on the device")

    monkeypatch.setattr(bvh, "write_bvh", full)
    with pytest.raises(OutputError, match="no space left on the device; the video was written: .*x.mp4"):
        say("Hello.", tmp_path / "x.mp4", keep=tmp_path / "kept", width=64, height=64, render_workers=1)
    assert (tmp_path / "x.mp4").stat().st_size > 1000


def test_say_checks_the_kept_files_too(tmp_path: Path) -> None:
    from avatar.pipeline import check_outputs

    (tmp_path / "kept").mkdir()
    os.mkfifo(tmp_path / "kept" / "face.csv")
    with pytest.raises(InputError, match="face.csv' is not a regular file"):
        check_outputs(tmp_path / "x.mp4", tmp_path / "kept")


def test_stream_audio_out_on_a_full_disk_fails_once_and_leaves_nothing(tmp_path: Path) -> None:
    import numpy as np

    from avatar.live.audio_out import WavWriter

    w = WavWriter(tmp_path / "s.wav", 16000)
    w.audio(0, np.zeros(160, np.float32))

    class Full:
        closed = False

        def write(self, data):
            raise OSError(errno.ENOSPC, "No space left on device")

        def close(self) -> None:
            self.closed = True

    real, w._file = w._file, Full()
    w.audio(160, np.zeros(160, np.float32))
    w.audio(320, np.zeros(160, np.float32))  # ignored: the writer has stopped
    real.close()
    with pytest.raises(OutputError, match="s.wav: no space left on the device"):
        w.close()
    assert list(tmp_path.iterdir()) == []


def test_a_closed_stdout_ends_quietly(tmp_path: Path) -> None:
    """`avatar emotion ... | head -1`: no traceback and no error line when the reader has gone away."""
    r, w = os.pipe()
    os.close(r)  # the reader is gone before the first write
    try:
        p = subprocess.run([AVATAR, "emotion", "Hello there."], cwd=tmp_path, stdout=w, stderr=subprocess.PIPE,
                           env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=120)
    finally:
        os.close(w)
    assert p.stderr.decode() == "" and p.returncode == 141, (p.returncode, p.stderr)


def test_tts_says_the_audio_was_written_when_the_timeline_cannot_be(tmp_path: Path, monkeypatch) -> None:
    import avatar.io as aio
    from avatar.cli import app
    from typer.testing import CliRunner

    real = aio.atomic_write_text

    def full(path, text):  # noqa: ANN001
        if str(path).endswith(".json"):
            raise OutputError(f"cannot write {path}: no space left on the device")
        return real(path, text)

    monkeypatch.setattr(aio, "atomic_write_text", full)
    import avatar.types as types

    monkeypatch.setattr(types, "atomic_write_text", full)
    monkeypatch.chdir(tmp_path)
    r = CliRunner().invoke(app, ["tts", "Hi.", "-o", "x.wav", "--timeline", "x.json", "--valence", "0"])
    assert r.exit_code == 1 and r.stderr.strip() == (
        "error: cannot write x.json: no space left on the device; the audio was written: x.wav"), r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.wav"]
