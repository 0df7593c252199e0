"""`avatar batch` end to end through the real pipeline and the shipped weights (short lines, 256x256).

One module-scoped run of the CLI (one worker, --scene) renders a five-line script with one bad line; the tests
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
    # A snapshot of the shipped weights: retraining them in place while this runs must not look like a change.
    models = []
    for name in ("face", "gesture"):
        dst = root / "weights" / name
        shutil.copytree(ROOT / "weights" / name, dst)
        models += [f"--{name}-model", str(dst)]
    out = root / "out"
    res = _run_cli(avatar_bin, script, out, *models)
    return {"root": root, "script": script, "out": out, "res": res, "models": models}


def _frames(path: Path) -> tuple[int, int, int, float]:
    import av

    with av.open(str(path)) as c:
        v, a = c.streams.video[0], c.streams.audio[0]
        assert v.codec_context.name == "h264" and a.codec_context.name == "aac"
        n = sum(1 for _ in c.decode(video=0))
        return n, v.width, v.height, float(a.duration * a.time_base)


def test_four_good_lines_render_and_the_bad_one_is_recorded(batch):
    res, out = batch["res"], batch["out"]
    assert res.returncode == 1, res.stderr
    summary = json.loads(res.stdout.strip().splitlines()[-1])
    assert summary["ok"] == 4 and summary["failed"] == 1 and summary["rendered"] == 4
    assert "1 of 5 line(s) failed" in res.stderr
    recs = [json.loads(ln) for ln in (out / "manifest.jsonl").read_text().splitlines()]
    assert [r["id"] for r in recs] == ["g1", "k1", "x1", "g2", "k2"]
    bad = recs[2]
    assert bad["status"] == "failed" and "unknown character 'stranger'" in bad["error"]
    from avatar.audio import load_audio
    from avatar.types import Timeline

    total_frames = 0
    for r in (x for x in recs if x["status"] == "ok"):
        folder = out / r["id"]
        names = {"speech.wav", "timeline.json", "face.json", "face.csv", "body.bvh", "clip.mp4", "done.json"}
        assert names <= {p.name for p in folder.iterdir()}
        audio, sr = load_audio(folder / "speech.wav")
        assert abs(len(audio) / sr - r["duration"]) < 0.01
        Timeline.from_json(folder / "timeline.json")
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
    assert summary["rendered"] == 0 and summary["skipped"] == 4
    assert _mtimes(batch["out"]) == before
