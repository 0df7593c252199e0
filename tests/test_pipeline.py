"""The pipeline on the shipped models: text -> emotion -> speech -> face + body -> MP4 and animation data."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from avatar.errors import InputError
from avatar.types import VAD

ROOT = Path(__file__).resolve().parents[1]
AVATAR = str(Path(sys.executable).parent / "avatar")
TEXT = "Hello there. I am so happy to see you!"


@pytest.fixture(scope="module")
def perf():
    from avatar.pipeline import perform

    return perform(TEXT, seed=3)


def test_performance_lines_up(perf):
    d = perf.duration
    assert d > 1.0
    assert perf.face.num_frames == int(round(d * perf.face.fps))
    assert abs(perf.body.duration - d) <= 0.1
    assert len(perf.sentences) == 2
    segs = perf.emotion.segments
    assert segs[0].start == 0.0 and segs[-1].end == pytest.approx(d, abs=1e-6)
    assert segs[0].end == pytest.approx(segs[1].start)
    assert perf.speech.timeline is not None and perf.speech.timeline.duration == pytest.approx(d, abs=1e-6)
    # the happy sentence reads more positive than the greeting, and the motion follows its own text
    assert perf.sentences[1].vad.valence > perf.sentences[0].vad.valence


def test_same_seed_same_performance(perf):
    from avatar.pipeline import perform

    again = perform(TEXT, seed=3)
    np.testing.assert_array_equal(again.speech.audio, perf.speech.audio)
    np.testing.assert_array_equal(again.face.frames, perf.face.frames)
    np.testing.assert_array_equal(again.body.rotations, perf.body.rotations)


def test_face_and_body_guidance_are_separate(perf):
    """Each diffusion model has its own guidance: changing one leaves the other's motion as it was."""
    from avatar.pipeline import perform

    face_only = perform(TEXT, seed=3, face_guidance=0.5)
    assert not np.array_equal(face_only.face.frames, perf.face.frames)
    np.testing.assert_array_equal(face_only.body.rotations, perf.body.rotations)
    body_only = perform(TEXT, seed=3, body_guidance=3.0)
    # The face follows the body only where the body's posture turns the head: head pose, gaze, and the eyeLook
    # shapes and upper lids that go with the gaze.
    from avatar.types import FACE_CHANNELS

    own = [i for i, c in enumerate(FACE_CHANNELS) if not c.startswith(("eyeLook", "eyeBlink", "head"))
           and not c.endswith(("EyeYaw", "EyePitch"))]
    np.testing.assert_array_equal(body_only.face.frames[:, own], perf.face.frames[:, own])
    assert not np.array_equal(body_only.body.rotations, perf.body.rotations)
    with pytest.raises(InputError):
        perform("Hi.", face_guidance=float("nan"))


def test_vad_override_sets_every_sentence():
    from avatar.emotion import label_for
    from avatar.pipeline import read_emotion

    v = VAD(-0.6, -0.4, -0.3)
    got = read_emotion("One. Two!", v)
    assert [s.vad for s in got] == [v, v]
    assert got[0].label == label_for(v)[0]


@pytest.mark.parametrize("text", ["", "   \n\t ", "x" * 30_000])
def test_bad_text_is_refused_before_any_work(text):
    from avatar.pipeline import perform

    with pytest.raises(InputError):
        perform(text)


def test_bad_seed_and_vad_are_refused():
    from avatar.pipeline import perform

    with pytest.raises(InputError):
        perform("Hi.", seed=-1)
    with pytest.raises(InputError):
        perform("Hi.", vad=(0.1, 0.2, 0.3))  # a tuple is not a VAD: say so rather than guess


def test_prefetch_loads_the_later_stages_models_in_a_thread(tmp_path):
    # A fresh process (this one has every model loaded): the gesture and face models, and the neural voice only
    # when it is the one that will speak; a model that cannot load is left to its stage, which reports it.
    code = f"""
import threading
import avatar.tts.piper as piper
import avatar.weights as weights
from avatar.errors import ModelError
from avatar.pipeline import models, prefetch

t = prefetch(voice="en-us")
assert t.daemon and t.name == "avatar-prefetch"
t.join(120)
assert {{"gesture", "face"}} <= {{kind for kind, _ in weights._CACHE}}, weights._CACHE
assert "joe" not in piper._VOICE_CACHE  # an eSpeak NG voice: the neural one is not loaded
prefetch().join(120)
assert piper._VOICE_CACHE["joe"] is not None and models().speech().engine_for(None) == "piper"
prefetch(face_model={str(tmp_path / "none")!r}, speak=False).join(120)  # no exception escapes the thread
try:
    models().face({str(tmp_path / "none")!r})
except ModelError as exc:
    print("stage:", exc)
assert threading.active_count() == 1
"""
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "stage: no trained face model" in r.stdout and "Traceback" not in r.stderr, (r.stdout, r.stderr[-2000:])


def test_face_samples_beside_the_body_with_the_same_result(perf, monkeypatch):
    # perform hands generate_face the body's head turn as a function, called after the face has sampled in its
    # thread; the face is the one made in turn from the finished body.
    import threading

    import avatar.gesture.generate as gesture_generate
    from avatar.face.generate import generate_face
    from avatar.pipeline import models, perform
    from avatar.rig.kinematics import head_direction, resample_motion

    fps = float(models().face().config.fps)
    head = head_direction(resample_motion(perf.body, fps) if abs(perf.body.fps - fps) > 1e-9 else perf.body)
    s = perf.speech
    turn = generate_face(s.audio, s.sample_rate, perf.emotion, timeline=s.timeline, seed=perf.seed,
                         model=models().face(), body_head=head)
    assert np.array_equal(turn.frames, perf.face.frames)
    called = []
    lazy = generate_face(s.audio, s.sample_rate, perf.emotion, timeline=s.timeline, seed=perf.seed,
                         model=models().face(), body_head=lambda: called.append(1) or head)
    assert called == [1] and np.array_equal(lazy.frames, perf.face.frames)

    def broken(*args, **kwargs):
        raise RuntimeError("no body today")

    monkeypatch.setattr(gesture_generate, "generate_gesture", broken)
    with pytest.raises(RuntimeError, match="no body today"):
        perform(TEXT, seed=3)
    assert not [t for t in threading.enumerate() if t.name == "avatar-face"]


def test_an_error_after_the_body_ends_the_face_thread_first(perf):
    # A render worker's failure surfaces at a progress tick; it must not leave the face sampling in its thread.
    import threading

    from avatar.pipeline import perform

    seen = []

    def progress(stage: str, fraction: float) -> None:
        if (stage, fraction) == ("body", 1.0):
            seen.append([t for t in threading.enumerate() if t.name == "avatar-face"])
            raise RuntimeError("a worker died")

    with pytest.raises(RuntimeError, match="a worker died"):
        perform(TEXT, seed=3, sentences=perf.sentences, speech=perf.speech, progress=progress)
    assert seen and not [t for t in threading.enumerate() if t.name == "avatar-face"]


def test_export_animation_writes_every_file(perf, tmp_path):
    import pygltflib

    from avatar.face.livelink import read_livelink_csv
    from avatar.gesture.bvh import load_bvh
    from avatar.pipeline import export_animation
    from avatar.types import FaceMotion, Timeline

    files = export_animation(perf, tmp_path / "keep")
    assert set(files) == {"speech", "timeline", "emotion", "face", "face_csv", "body", "glb", "vrma"}
    assert all(p.is_file() and p.parent == tmp_path / "keep" for p in files.values())
    assert Timeline.from_json(files["timeline"]).duration == pytest.approx(perf.duration, abs=1e-6)
    assert FaceMotion.from_json(files["face"]).num_frames == perf.face.num_frames
    assert read_livelink_csv(files["face_csv"]).num_frames == perf.face.num_frames
    assert abs(load_bvh(files["body"]).duration - perf.body.duration) < 0.05
    g = pygltflib.GLTF2().load_binary(str(files["glb"]))
    assert {c.target.path for c in g.animations[-1].channels} >= {"rotation", "weights"}
    vrma = pygltflib.GLTF2().load_binary(str(files["vrma"]))
    assert vrma.extensions["VRMC_vrm_animation"]["humanoid"]["humanBones"]["hips"] == {"node": 0}
    assert vrma.accessors[vrma.animations[0].samplers[0].input].count == perf.body.num_frames
    emo = json.loads(files["emotion"].read_text())
    assert [s["text"] for s in emo["sentences"]] == [s.text for s in perf.sentences]


def test_render_video_is_h264_aac_30fps_and_in_sync(perf, tmp_path):
    from avatar.pipeline import render_video
    from avatar.render.video import probe_mp4

    seen = []
    out = render_video(perf, tmp_path / "a.mp4", width=128, height=128, subtitles=True, vad_indicator=True,
                       progress=lambda s, f: seen.append((s, f)))
    info = probe_mp4(out)
    v, a = info["video"], info["audio"]
    assert v["codec"] == "h264" and v["pix_fmt"] == "yuv420p" and a["codec"] == "aac"
    assert v["fps"] == pytest.approx(30.0) and (v["width"], v["height"]) == (128, 128)
    assert abs(v["duration"] - a["duration"]) <= 1 / 30 + 0.05
    assert abs(v["duration"] - perf.duration) <= 1 / 30 + 0.05
    assert seen and seen[-1] == ("render", 1.0)
    assert [p.name for p in tmp_path.iterdir()] == ["a.mp4"]  # no temporary left behind


def test_render_video_refuses_bad_settings(perf, tmp_path):
    from avatar.pipeline import render_video

    for kw in ({"width": 101}, {"height": 10}, {"framing": "sideways"}):
        with pytest.raises(InputError):
            render_video(perf, tmp_path / "a.mp4", **kw)
    with pytest.raises(InputError):
        render_video(perf, tmp_path / "a.avi")
    assert not list(tmp_path.iterdir())


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([AVATAR, *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=300)


def test_cli_say_makes_a_video_and_keeps_the_data(tmp_path):
    r = _run("say", "Good morning!", "-o", "hi.mp4", "--size", "128", "--keep", "hi", "--seed", "1", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    rec = json.loads(r.stdout.strip().splitlines()[-1])
    assert rec["video"] == "hi.mp4" and (tmp_path / "hi.mp4").stat().st_size > 1000
    assert {Path(p).name for p in rec["files"].values()} == {
        "speech.wav", "timeline.json", "emotion.json", "face.json", "face.csv", "body.bvh", "animation.glb",
        "animation.vrma"}
    assert rec["sentences"][0]["label"]
    assert set(rec["timings"]) >= {"speech", "face", "body", "render"}


@pytest.mark.parametrize("args", [
    ["say", "-o", "x.mp4"],                                   # no text
    ["say", "Hi.", "-o", "x.avi"],                            # not an mp4
    ["say", "Hi.", "-o", "x.mp4", "--valence", "nan"],        # NaN emotion
    ["say", "Hi.", "-o", "x.mp4", "--valence", "3"],          # out of range
    ["say", "Hi.", "-o", "x.mp4", "--size", "99"],            # odd size
    ["say", "Hi.", "-o", "x.mp4", "--avatar", "nope.glb"],    # missing avatar
    ["say", "   ", "-o", "x.mp4"],                            # nothing to say
])
def test_cli_say_bad_input_exits_2_with_a_message(tmp_path, args):
    r = _run(*args, cwd=tmp_path)
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert r.stderr.strip().startswith("error:") and "Traceback" not in r.stderr
    assert not (tmp_path / "x.mp4").exists()


@pytest.mark.parametrize("content", [
    b"glTF\x02\x00\x00\x00garbage",  # a bad header: refused before anything else starts
    # A sound header over a JSON chunk that is not JSON: found by whoever parses it (with render workers, they do).
    b"glTF\x02\x00\x00\x00\x1c\x00\x00\x00\x08\x00\x00\x00JSONnot json",
])
def test_cli_say_broken_avatar_file(tmp_path, content):
    (tmp_path / "broken.glb").write_bytes(content)
    r = _run("say", "Hi.", "-o", "x.mp4", "--avatar", "broken.glb", cwd=tmp_path)
    assert r.returncode == 2 and "broken.glb" in r.stderr, r.stderr
    assert r.stderr.strip().startswith("error:") and "Traceback" not in r.stderr
    assert not (tmp_path / "x.mp4").exists()


@pytest.fixture(scope="module")
def recorded(perf, tmp_path_factory):
    """A recording stands in for a user's voice line: the module's own speech, saved as WAV (no timeline)."""
    from avatar.audio import save_wav

    path = tmp_path_factory.mktemp("rec") / "line 1.wav"
    save_wav(path, perf.speech.audio, perf.speech.sample_rate)
    return path


def test_a_recording_is_performed_from_its_audio(perf, recorded):
    """No TTS: the motion is read from the audio alone (lips from the viseme network), the emotion from its
    text when given (spread over the audio by sentence length), else from `vad`, else neutral."""
    from avatar.face.visemes import IDX
    from avatar.pipeline import perform, recording

    rec = recording(recorded)
    assert rec.timeline is None and rec.duration == pytest.approx(perf.duration, abs=1e-3)
    p = perform(TEXT, speech=rec, seed=3)
    assert p.speech.timeline is None and p.duration == pytest.approx(perf.duration, abs=1e-3)
    assert p.face.num_frames == perf.face.num_frames and abs(p.body.duration - p.duration) <= 0.1
    assert [s.text for s in p.sentences] == [s.text for s in perf.sentences]
    segs = p.emotion.segments
    assert segs[0].start == 0.0 and segs[-1].end == pytest.approx(p.duration)
    share = (segs[0].end - segs[0].start) / p.duration  # "Hello there." is a third of the text's characters
    assert share == pytest.approx(len(perf.sentences[0].text) / sum(len(s.text) for s in perf.sentences))
    jaw = p.face.frames[:, IDX["jawOpen"]]
    assert jaw.max() > 0.2 and np.corrcoef(jaw, perf.face.frames[:, IDX["jawOpen"]])[0, 1] > 0.5
    plain = perform(None, speech=rec, vad=VAD(-0.6, 0.4, 0.0), seed=3)
    assert len(plain.sentences) == 1 and plain.sentences[0].text == "" and plain.text == ""
    assert plain.sentences[0].vad == VAD(-0.6, 0.4, 0.0) and plain.sentences[0].label != "neutral"
    assert perform(None, speech=rec, seed=3).sentences[0].label == "neutral"
    with pytest.raises(InputError, match="voice"):
        perform(TEXT, speech=rec, voice="en-us")
    with pytest.raises(InputError, match="Speech"):
        perform(TEXT, speech=str(recorded))
    with pytest.raises(InputError, match="nothing to say"):
        perform(None)


def test_cli_say_performs_a_recording(tmp_path, recorded):
    import shutil

    shutil.copy(recorded, tmp_path / "take.wav")
    r = _run("say", "--audio", "take.wav", "-o", "rec.mp4", "--size", "128", "--valence", "0.5", "--keep", "k",
             cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["sentences"][0]["label"] == "happy"
    from avatar.types import Timeline

    tl = Timeline.from_json(tmp_path / "k" / "timeline.json")  # estimated from the audio by the viseme network
    assert tl.duration == pytest.approx(out["duration"], abs=1e-3) and tl.phonemes and tl.words
    from avatar.render.video import probe_mp4

    info = probe_mp4(tmp_path / "rec.mp4")
    assert abs(info["audio"]["duration"] - out["duration"]) <= 1 / 30 + 0.05
    for args, needle in ((["--audio", "take.wav", "--voice", "en-us"], "voice"),
                         (["--audio", "missing.wav"], "not found"), (["--audio", "take.wav", "--subtitles"], "text")):
        bad = _run("say", *args, "-o", "x.mp4", cwd=tmp_path)
        assert bad.returncode == 2 and needle in bad.stderr and "Traceback" not in bad.stderr, bad.stderr
    assert not (tmp_path / "x.mp4").exists()
