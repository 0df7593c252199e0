"""The demo's logic without a server: input checks, the emotion plan and readout, avatar uploads, dialogue joins."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Callable

import numpy as np
import pytest

from avatar.app_dialogue import GAP_S, join_performances
from avatar.app_readout import plan_emotions, readout_html, va_plot_svg
from avatar.app_ui import (EMOTION_AUTO, EMOTION_CUSTOM, MAX_LINES, check_avatar_upload, check_seed, compose_voice,
                           parse_lines, prune_runs, resolve_emotion)
from avatar.errors import InputError
from avatar.types import (FACE_CHANNELS, VAD, BodyMotion, EmotionSegment, EmotionTrack, FaceMotion, Phoneme,
                          SentenceEmotion, Speech, Timeline)


def _fake_analyze(text: str) -> list[SentenceEmotion]:
    """Stands in for the emotion model: 'great' reads happy, 'awful' reads sad, else neutral (one sentence)."""
    vad = VAD(0.8, 0.5, 0.3) if "great" in text else VAD(-0.7, -0.3, -0.3) if "awful" in text else VAD()
    return [SentenceEmotion(text=text, vad=vad, label="x", confidence=0.5, start_char=0, end_char=len(text))]


def test_parse_lines_and_limits() -> None:
    assert parse_lines("  Hello there.\n\n  How are you?  \n") == ["Hello there.", "How are you?"]
    for bad in ("", "   \n\t ", None, "x" * 601, "\n".join(["hi"] * (MAX_LINES + 1))):
        with pytest.raises(InputError):
            parse_lines(bad)


def test_resolve_emotion_and_seed() -> None:
    assert resolve_emotion(EMOTION_AUTO, 0.9, 0.9, 0.9) is None  # sliders are ignored unless "custom"
    assert resolve_emotion("happy", 0, 0, 0).valence > 0.5
    assert resolve_emotion(EMOTION_CUSTOM, -0.5, 0.25, 0.0) == VAD(-0.5, 0.25, 0.0)
    for bad in (("nope", 0, 0, 0), (EMOTION_CUSTOM, 2.0, 0, 0), (EMOTION_CUSTOM, math.nan, 0, 0)):
        with pytest.raises(InputError):
            resolve_emotion(*bad)
    assert check_seed(None) == 0 and check_seed(7.0) == 7
    for bad in (-1, 1.5, 2**31, "x"):
        with pytest.raises(InputError):
            check_seed(bad)
    assert compose_voice("gmw/en-US", "f3") == "gmw/en-US+f3" and compose_voice("gmw/en-US", "none") == "gmw/en-US"


def test_plan_single_line_dialogue_and_override() -> None:
    (one,) = plan_emotions(["This is great"], analyze=_fake_analyze)
    assert one.source == "text" and one.label == "happy" and one.vad == VAD(0.8, 0.5, 0.3)
    lines = ["This is great", "This is awful", "This is awful"]
    plan = plan_emotions(lines, analyze=_fake_analyze)
    assert [p.source for p in plan] == ["dialogue"] * 3
    v = [p.vad.valence for p in plan]
    # the mood carries over: the first sad line does not reach the sad reading at once, the second gets closer
    assert v[0] > 0.3 and -0.7 < v[1] < v[0] and v[2] < v[1]
    forced = plan_emotions(lines, override=VAD(0.0, 0.9, 0.0), analyze=_fake_analyze)
    assert all(p.vad == VAD(0.0, 0.9, 0.0) and p.source == "override" for p in forced)


def test_readout_escapes_text_and_plots_points() -> None:
    hostile = '<img src=x onerror="alert(1)"> great'
    plan = plan_emotions([hostile, "awful <script>x()</script>"], analyze=_fake_analyze)
    out = readout_html(plan)
    assert "<img" not in out and "&lt;img" in out and "<script" not in out
    assert out.count('r="6"') == 2  # two line points in the plot
    assert "valence" in out and "dominance" in out
    svg = va_plot_svg([(VAD(1.0, 1.0, 0.0), "happy")])
    assert svg.startswith("<svg") and svg.endswith("</svg>")
    assert "Type a line" in readout_html([])


def test_avatar_upload_checks(root: Path, tmp_path: Path) -> None:
    pygltflib = pytest.importorskip("pygltflib")
    glb = root / "weights" / "avatars" / "default.glb"
    assert check_avatar_upload(None, 50) is None
    assert check_avatar_upload(glb, 50).vrm_version == "1.0"
    (tmp_path / "a.txt").write_text("hello")
    (tmp_path / "text.vrm").write_bytes(b"not an avatar at all\n" * 10)
    (tmp_path / "big.glb").write_bytes(glb.read_bytes()[: 2 * 2**20])
    g = pygltflib.GLTF2().load_binary(str(glb))  # a plain glTF renamed .vrm: no VRM extension
    g.extensions = {}
    g.extensionsUsed = [e for e in (g.extensionsUsed or []) if not e.startswith("VRM")]
    (tmp_path / "plain.vrm").write_bytes(b"".join(g.save_to_bytes()))
    cases = {"a.txt": ".glb or .vrm", "text.vrm": "not binary glTF", "big.glb": "limited to 1 MB",
             "plain.vrm": "not a VRM"}
    for name, why in cases.items():
        with pytest.raises(InputError, match=why):
            check_avatar_upload(tmp_path / name, 1 if name == "big.glb" else 50)


def _perf(text: str, seconds: float, level: float, seed: int = 0):
    from avatar.pipeline import Performance

    sr, fps = 16000, 30.0
    n = int(round(seconds * fps))
    audio = np.full(int(seconds * sr), 0.1 * level, dtype=np.float32)
    timeline = Timeline(sample_rate=sr, duration=seconds,
                        phonemes=[Phoneme(phoneme="a", start=0.1, end=seconds - 0.05, viseme="aa")])
    vad = VAD(level, 0.0, 0.0)
    sent = SentenceEmotion(text=text, vad=vad, label="x", confidence=1.0, start_char=0, end_char=len(text))
    face = FaceMotion(fps=fps, frames=np.full((n, len(FACE_CHANNELS)), level, dtype=np.float32))
    angle = level * 0.5  # rotate one joint about x by a level-dependent angle
    rot = np.tile(np.array([0.0, 0.0, 0.0, 1.0], dtype=np.float32), (n, 2, 1))
    rot[:, 1] = [math.sin(angle / 2), 0.0, 0.0, math.cos(angle / 2)]
    body = BodyMotion(fps=fps, joints=("hips", "head"), rotations=rot, root_position=np.zeros((n, 3)))
    return Performance(text=text, sentences=[sent], emotion=EmotionTrack(segments=[
        EmotionSegment(start=0.0, end=seconds, vad=vad)]), speech=Speech(audio, sr, timeline, ((0.0, seconds),)),
        face=face, body=body, seed=seed)


def test_join_performances_keeps_sync_and_eases_between_lines() -> None:
    a, b = _perf("one", 1.01, 0.2), _perf("two", 0.5, 0.8)
    j = join_performances([a, b])
    gap = int(round(GAP_S * 30))
    n_a = math.ceil(1.01 * 30)  # whole frames holding all of line one's audio
    assert j.face.num_frames == j.body.num_frames == n_a + gap + b.face.num_frames
    assert int(round(j.duration * 30)) == j.face.num_frames  # the renderer's frame count matches the motion
    assert j.text == "one\ntwo" and len(j.sentences) == len(j.emotion.segments) == 2
    start_b = (n_a + gap) / 30
    assert j.speech.timeline.phonemes[1].start == pytest.approx(start_b + 0.1, abs=1e-4)
    assert j.speech.sentence_spans[1][0] == pytest.approx(start_b, abs=1e-4)
    assert j.emotion.segments[0].end == pytest.approx(start_b, abs=1e-4)  # mood holds through the pause
    assert np.allclose(j.speech.audio[int(1.01 * 16000) + 10: int(start_b * 16000) - 10], 0.0)  # a silent pause
    lvl = j.face.frames[:, 0]
    assert np.all(np.diff(lvl[n_a - 1: n_a + gap + 1]) > 0)  # eased, monotone, no jump
    assert np.max(np.abs(np.diff(lvl))) < 0.6 / gap * 1.6
    ang = 2 * np.arcsin(np.clip(j.body.rotations[:, 1, 0], -1, 1))
    assert np.all(np.diff(ang[n_a - 1: n_a + gap + 1]) > 0)
    assert join_performances([a]) is a
    with pytest.raises(InputError):
        join_performances([])


def test_dialogue_progress_moves_through_each_line_s_stages_in_order(monkeypatch: pytest.MonkeyPatch) -> None:
    """perform_plan's overall progress never goes back, each stage starts where the one before it ended, ends at 1."""
    import avatar.app_dialogue as dialogue
    import avatar.pipeline as pipeline

    def fake_perform(text: str, *, progress: Callable[[str, float], None], **_: object) -> str:
        for stage in pipeline.STAGES:
            if stage != "render":  # perform() stops before the render stage
                for f in (0.0, 0.5, 1.0):
                    progress(stage, f)
        return text

    seen: list[tuple[str, float]] = []
    monkeypatch.setattr(pipeline, "perform", fake_perform)
    monkeypatch.setattr(dialogue, "join_performances", lambda perfs: perfs)
    plan = plan_emotions(["This is great", "This is awful"], analyze=_fake_analyze)
    assert dialogue.perform_plan(plan, progress=lambda s, f: seen.append((s, f))) == [p.text for p in plan]
    values = [f for _, f in seen]
    assert len(seen) == 2 * 4 * 3 and values[0] == 0.0 and values[-1] == pytest.approx(1.0)
    assert all(b >= a for a, b in zip(values, values[1:]))
    # a stage's end is the next stage's start (line 1's face ends where line 2's emotion starts)
    assert all(values[i] == pytest.approx(values[i + 1]) for i in range(2, len(values) - 1, 3))


def test_prune_runs(tmp_path: Path) -> None:
    import os
    import time

    old, new = tmp_path / "old", tmp_path / "new"
    old.mkdir()
    new.mkdir()
    (old / "x.mp4").write_bytes(b"x")
    past = time.time() - 7200
    os.utime(old, (past, past))
    assert prune_runs(tmp_path, 3600) == 1 and not old.exists() and new.exists()


def test_errors_become_messages_not_tracebacks() -> None:
    gr = pytest.importorskip("gradio")
    from avatar.app_ui import user_errors
    from avatar.errors import ModelError

    with pytest.raises(gr.Error) as info, user_errors():
        raise InputError("bad <file>.vrm")
    assert info.value.title == "Input refused" and info.value.message == "bad \u2039file\u203a.vrm"
    with pytest.raises(gr.Error) as info, user_errors():
        raise ModelError("no trained face model in weights/face")
    assert "no trained face model" in info.value.message
    with pytest.raises(gr.Error) as info, user_errors():
        raise ZeroDivisionError("secret internals")
    assert "secret" not in info.value.message and "server log" in info.value.message
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_recording_upload_checks_and_readout(tmp_path: Path) -> None:
    """An uploaded recording: missing, oversized, unreadable, too long or too short are refused clearly; the
    readout shows its words' emotion, the override, or neutral."""
    from avatar.app_ui import check_recording_upload, recording_plan
    from avatar.audio import save_wav

    assert check_recording_upload(None, 50, 120) is None and check_recording_upload("", 50, 120) is None
    with pytest.raises(InputError, match="missing"):
        check_recording_upload(tmp_path / "gone.wav", 50, 120)
    save_wav(tmp_path / "ok.wav", np.zeros(16000, np.float32), 16000)
    speech = check_recording_upload(tmp_path / "ok.wav", 50, 120)
    assert speech.duration == pytest.approx(1.0) and speech.timeline is None
    with pytest.raises(InputError, match="1.0 s is longer than the 0.5 s limit"):
        check_recording_upload(tmp_path / "ok.wav", 50, 0.5)
    save_wav(tmp_path / "blip.wav", np.zeros(800, np.float32), 16000)
    with pytest.raises(InputError, match="too short"):
        check_recording_upload(tmp_path / "blip.wav", 50, 120)
    (tmp_path / "big.wav").write_bytes(b"\0" * (2 * 2**20))
    with pytest.raises(InputError, match="limited to 1 MB"):
        check_recording_upload(tmp_path / "big.wav", 1, 120)
    (tmp_path / "bad.wav").write_bytes(b"RIFF nope" * 10)
    with pytest.raises(InputError, match="not readable audio"):
        check_recording_upload(tmp_path / "bad.wav", 50, 120)
    (plain,) = recording_plan([], None)
    assert plain.label == "neutral" and plain.source == "neutral"
    (set_,) = recording_plan([], VAD(-0.6, -0.3, -0.3))
    assert set_.source == "override" and set_.label == "sad"
    (read,) = recording_plan(["Hello there.", "I am so happy to see you!"], VAD(0.7, 0.5, 0.3))
    assert read.text == "Hello there. I am so happy to see you!" and read.label == "happy"
    from avatar.app_readout import readout_html

    assert "a recording without its words" in readout_html([plain])


def test_recording_upload_over_the_demo_limit_is_refused_from_its_header(tmp_path: Path) -> None:
    """A 1 MB FLAC of two hours of silence is refused before it is decoded (was: 3.1 GB in the app; issue 20)."""
    import tracemalloc

    import soundfile as sf

    from avatar.app_ui import check_recording_upload

    with sf.SoundFile(tmp_path / "long.flac", "w", 8000, 1, subtype="PCM_16", format="FLAC") as f:
        for _ in range(120):
            f.write(np.zeros(8000 * 60, np.int16))
    tracemalloc.start()
    try:
        with pytest.raises(InputError, match="longer than the 2-minute limit"):
            check_recording_upload(tmp_path / "long.flac", 50, 120)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 16 * 2**20  # imports aside, nothing is held (decoded, it was 230 MB)


def test_error_messages_are_plain_text_without_server_paths(tmp_path: Path) -> None:
    """API clients read the message as written (no `&#x27;` entities) and never the server's folders."""
    gr = pytest.importorskip("gradio")
    from avatar.app_ui import REPO_ROOT, AppConfig, AvatarApp, public_message, user_errors

    app = AvatarApp(AppConfig(root=tmp_path / "app"))
    upload = app.config.cache_dir / "3f2a9c" / "my avatar.vrm"
    with pytest.raises(gr.Error) as info, user_errors(app._hidden()):
        raise InputError(f"unknown emotion label 'elated' & more; {upload} is not binary glTF")
    assert info.value.message == "unknown emotion label 'elated' & more; my avatar.vrm is not binary glTF"
    assert public_message(f"no model in {REPO_ROOT / 'weights' / 'face'}") == "no model in weights/face"
    with pytest.raises(gr.Error) as info:
        app.say("Hello.", emotion="elated")
    assert "'elated'" in info.value.message and "&#x27;" not in info.value.message


def test_readout_shows_the_model_categories_and_intensity() -> None:
    def analyze(text: str) -> list[SentenceEmotion]:
        return [SentenceEmotion(text=text, vad=VAD(0.3, 0.4, 0.0), label="sad", confidence=0.6,
                                categories={"neutral": 0.2, "sad": 0.6, "angry": 0.2}, intensity=0.5,
                                start_char=0, end_char=len(text))]

    (one,) = plan_emotions(["My dog never came home."], analyze=analyze)
    assert one.label == "sad" and one.vad.valence < 0  # the category's label, the VAD made to agree with it
    assert one.categories["sad"] == pytest.approx(0.6) and one.intensity == pytest.approx(0.5)
    page = readout_html([one])
    assert "sad 60%" in page and "intensity <b>0.50</b>" in page


def test_say_request_is_checked_once_with_the_page_s_messages() -> None:
    from pydantic import ValidationError

    from avatar.app_ui import SayRequest

    r = SayRequest(text="Hello there.\n\nHi!", seed=7.0, emotion="happy", voice="gmw/en-US", variant="f3")
    assert r.lines == ("Hello there.", "Hi!") and r.seed == 7 and r.override.valence > 0.5
    assert r.voice_name == "gmw/en-US+f3" and SayRequest(text="", recording=True).lines == ()
    for bad, words in (({"text": ""}, "type a line"), ({"text": "hi", "seed": -1}, "seed"),
                       ({"text": "hi", "lines": ("x",)}, "derived"), ({"text": "hi", "zoom": 1}, "zoom")):
        with pytest.raises(InputError, match=words) as err:
            SayRequest(**bad)
        assert not str(err.value).startswith("invalid SayRequest")
    with pytest.raises(ValidationError, match="frozen"):
        r.seed = 3
