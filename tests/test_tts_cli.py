"""`avatar tts` end to end (subprocess of the installed console script), exit codes and atomic output."""

from __future__ import annotations

import json
import subprocess

import numpy as np
import pytest
import soundfile as sf

from avatar.types import Timeline


def run(avatar_bin, *args):
    return subprocess.run([avatar_bin, "tts", *args], capture_output=True, text=True, timeout=120)


def test_tts_writes_wav_and_timeline(avatar_bin, tmp_path):
    out, tl = tmp_path / "hi.wav", tmp_path / "hi.json"
    res = run(avatar_bin, "Hello there! How are you today?", "-o", str(out), "--arousal", "0.6", "--valence", "0.5",
              "--voice", "en-us+f3", "--timeline", str(tl))
    assert res.returncode == 0, res.stderr
    summary = json.loads(res.stdout)
    audio, sr = sf.read(str(out), dtype="float32")
    assert sr == 22050 and summary["sample_rate"] == sr and audio.size / sr == pytest.approx(summary["duration"], abs=1e-3)
    timeline = Timeline.from_json(tl)
    assert timeline.duration == pytest.approx(audio.size / sr, abs=1e-3)
    assert [w.word for w in timeline.words][:2] == ["Hello", "there"]
    assert summary["phonemes"] == len(timeline.phonemes) > 10
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hi.json", "hi.wav"]  # no temp files left


def test_tts_without_vad_flags_reads_the_text(avatar_bin, tmp_path):
    out = tmp_path / "t.wav"
    res = run(avatar_bin, "I love this. I hate that.", "-o", str(out))
    assert res.returncode == 0, res.stderr
    assert sf.info(str(out)).frames > 0


def test_list_voices(avatar_bin):
    res = run(avatar_bin, "--list-voices")
    assert res.returncode == 0
    lines = res.stdout.splitlines()
    assert len(lines) > 100 and any(ln.startswith("gmw/en-US\t") for ln in lines) and "f3" in lines[-1]


@pytest.mark.parametrize("args, message", [
    (["", "-o", "x.wav"], "empty"),
    (["hi", "-o", "x.wav", "--valence", "nan"], "valence"),
    (["hi", "-o", "x.wav", "--arousal", "3"], "arousal"),
    (["hi", "-o", "x.wav", "--voice", "no-such-voice"], "unknown espeak voice"),
    (["hi", "-o", "x.wav", "--backend", "festival"], "unknown tts backend"),
    (["hi", "-o", "x.mp3"], ".wav"),
    (["hi"], "-o OUT.wav"),
    (["word " * 10_000, "-o", "x.wav"], "split it"),
])
def test_bad_input_exit_2_and_no_file(avatar_bin, tmp_path, args, message):
    args = [str(tmp_path / a) if a.startswith("x.") else a for a in args]
    res = run(avatar_bin, *args)
    assert res.returncode == 2, (res.returncode, res.stderr)
    assert res.stderr.startswith("error:") and message in res.stderr and "Traceback" not in res.stderr
    assert list(tmp_path.iterdir()) == []


def test_failed_synthesis_leaves_no_partial_file(tmp_path, monkeypatch):
    """A failure in the middle of a long text keeps the old file intact and leaves no temp files."""
    from typer.testing import CliRunner

    from avatar.cli import app
    from avatar.errors import ModelError
    from avatar.tts.piper import PiperBackend

    out = tmp_path / "keep.wav"
    sf.write(str(out), np.zeros(100, np.float32), 22050)
    before = out.read_bytes()
    calls = {"n": 0}
    real = PiperBackend._model_sentence  # the default backend's model step, once per sentence

    def flaky(self, *a, **k):
        calls["n"] += 1
        if calls["n"] == 3:
            raise ModelError("engine failed on sentence 3")
        return real(self, *a, **k)

    monkeypatch.setattr(PiperBackend, "_model_sentence", flaky)
    res = CliRunner().invoke(app, ["tts", "One. Two. Three. Four.", "-o", str(out), "--arousal", "0.2"])
    assert res.exit_code == 1 and "sentence 3" in res.output
    assert out.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["keep.wav"]
