"""`avatar batch` end to end through the real pipeline and the shipped weights (short lines, 256x256).

One module-scoped run of the CLI (one worker, --scene) renders a six-line script with one bad line and one
recorded line (a voice actor's WAV instead of the TTS); the tests
then check its outputs and a --resume that must change nothing. Every line gives its emotion, so the driver
does not load the text-emotion model (the analyzer path is covered with a fake in test_batch_script.py).
Worker processes, Ray and determinism across worker counts are covered with the fast fake render step in
test_batch_runner.py / test_batch_ray.py (the machine this runs on has 2 cores).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

SCRIPT = """
title: e2e
characters:
  keeper: {voice: en-us, personality: {neuroticism: 0.2, agreeableness: 0.3}}
  guest: {voice: en-us+m3, personality: {extraversion: 0.9}, base_emotion: happy}
lines:
  - {id: g1, character: guest, text: "Hello!", emotion: excited}
  - {id: k1, character: keeper, text: "No rooms.", emotion: angry}
  - {id: x1, character: stranger, text: "Who are you?"}
  - {id: g2, character: guest, text: "Oh no.", emotion: sad}
  - {id: k2, character: keeper, text: "Fine, one.", emotion: [0.2, -0.2, 0.0]}
  - {id: k3, character: keeper, text: "Welcome, traveller.", audio: vo/k3.wav, emotion: relaxed}
"""
SIZE = 256
ROOT = Path(__file__).resolve().parents[1]


def _run_cli(avatar_bin: str, script: Path, out: Path, *extra: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([avatar_bin, "batch", str(script), "-o", str(out), "--width", str(SIZE), "--height",
                           str(SIZE), "--scene", "--no-progress", *extra],
                          capture_output=True, text=True, env=env, timeout=900)


def _mtimes(folder: Path) -> dict[str, int]:
    return {p.relative_to(folder).as_posix(): p.stat().st_mtime_ns for p in folder.rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def batch(tmp_path_factory, avatar_bin):
    root = tmp_path_factory.mktemp("batch_e2e")
    script = root / "script.yaml"
    script.write_text(SCRIPT, encoding="utf-8")
    _record(root / "vo" / "k3.wav", "Welcome, traveller.")  # a voice actor's line, relative to the script
    # A snapshot of the shipped weights: retraining them in place while this runs must not look like a change.
    models = []
    for name in ("face", "gesture"):
        dst = root / "weights" / name
        shutil.copytree(ROOT / "weights" / name, dst)
        models += [f"--{name}-model", str(dst)]
    out = root / "out"
    res = _run_cli(avatar_bin, script, out, *models)
    return {"root": root, "script": script, "out": out, "res": res, "models": models}


def _record(path: Path, text: str, voice: str = "en-us+f3") -> None:
    """A recorded line stands in for a voice actor's: our own speech in another voice, as a WAV file."""
    from avatar.audio import save_wav
    from avatar.tts import get_backend

    sp = get_backend("espeak").synthesize(text, None, voice)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_wav(path, sp.audio, sp.sample_rate)


def _frames(path: Path) -> tuple[int, int, int, float]:
    import av

    with av.open(str(path)) as c:
        v, a = c.streams.video[0], c.streams.audio[0]
        assert v.codec_context.name == "h264" and a.codec_context.name == "aac"
        n = sum(1 for _ in c.decode(video=0))
        return n, v.width, v.height, float(a.duration * a.time_base)


def test_five_good_lines_render_and_the_bad_one_is_recorded(batch):
    res, out = batch["res"], batch["out"]
    assert res.returncode == 1, res.stderr
    summary = json.loads(res.stdout.strip().splitlines()[-1])
    assert summary["ok"] == 5 and summary["failed"] == 1 and summary["rendered"] == 5
    assert "1 of 6 line(s) failed" in res.stderr
    recs = [json.loads(ln) for ln in (out / "manifest.jsonl").read_text().splitlines()]
    assert [r["id"] for r in recs] == ["g1", "k1", "x1", "g2", "k2", "k3"]
    bad = recs[2]
    assert bad["status"] == "failed" and "unknown character 'stranger'" in bad["error"]
    from avatar.audio import load_audio
    from avatar.types import Timeline

    total_frames = 0
    for r in (x for x in recs if x["status"] == "ok"):
        folder = out / r["id"]
        names = {"speech.wav", "face.json", "face.csv", "body.bvh", "clip.mp4", "done.json"}
        assert names <= {p.name for p in folder.iterdir()}
        audio, sr = load_audio(folder / "speech.wav")
        assert abs(len(audio) / sr - r["duration"]) < 0.01
        tl = Timeline.from_json(folder / "timeline.json")  # for the recording: estimated from its audio
        if r["id"] == "k3":  # the recording is what is said, as it was recorded
            rec, rec_sr = load_audio(batch["root"] / "vo" / "k3.wav")
            assert abs(len(rec) / rec_sr - r["duration"]) < 0.01 and abs(tl.duration - r["duration"]) < 0.01
        face = json.loads((folder / "face.json").read_text())
        assert face["fps"] == 30 and "jawOpen" in face["names"] and np.isfinite(np.array(face["frames"])).all()
        assert "JawOpen" in (folder / "face.csv").read_text().splitlines()[0]  # Live Link spelling
        assert (folder / "body.bvh").read_text().startswith("HIERARCHY")
        n, w, h, audio_s = _frames(folder / "clip.mp4")
        assert (w, h) == (SIZE, SIZE) and abs(n / 30 - r["duration"]) < 0.1 and abs(audio_s - n / 30) < 0.1
        total_frames += n
        assert r["timings"]["render"] > 0 and r["worker"]
    n, w, h, _ = _frames(out / "scene.mp4")
    assert n == total_frames and (w, h) == (SIZE, SIZE)
    # The dialogue dynamics set each line's emotion: the guest turns from happy to sad.
    by_id = {r["id"]: r for r in recs}
    assert by_id["g1"]["vad"]["valence"] > 0 > by_id["g2"]["vad"]["valence"]


def test_resume_touches_nothing(batch, avatar_bin):
    before = _mtimes(batch["out"])
    res = _run_cli(avatar_bin, batch["script"], batch["out"], "--resume", *batch["models"])
    assert res.returncode == 1, res.stderr  # the bad line is still bad
    summary = json.loads(res.stdout.strip().splitlines()[-1])
    assert summary["rendered"] == 0 and summary["skipped"] == 5
    assert _mtimes(batch["out"]) == before


def test_resume_renders_a_line_again_when_its_recording_changes(batch, avatar_bin):
    _record(batch["root"] / "vo" / "k3.wav", "Welcome, weary traveller.")  # the actor recorded it again
    before = _mtimes(batch["out"])
    res = _run_cli(avatar_bin, batch["script"], batch["out"], "--resume", *batch["models"])
    assert res.returncode == 1, res.stderr
    summary = json.loads(res.stdout.strip().splitlines()[-1])
    assert summary["rendered"] == 1 and summary["skipped"] == 4
    after = _mtimes(batch["out"])
    changed = {k.split("/")[0] for k in after if after[k] != before.get(k)}
    assert "k3" in changed and not changed & {"g1", "k1", "g2", "k2"}
