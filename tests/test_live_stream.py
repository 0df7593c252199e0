"""The live engine: control messages, emotion easing, stop, the model upgrade path, WAV output, the CLI."""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from avatar.errors import InputError
from avatar.live.motion import Mood
from avatar.live.stream import LiveStream, StreamConfig, parse_control
from avatar.types import VAD

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("msg,needle", [
    ("{oops", "JSON"), ("[1, 2]", "JSON object"), ('{"type": "dance"}', "dance"),
    ('{"type": "say"}', "text"), ('{"type": "say", "text": "   "}', "text"),
    ('{"type": "say", "text": "hi", "valence": 2}', "valence"),
    ('{"type": "say", "text": "hi", "valence": "high"}', "valence"),
    ('{"type": "say", "text": "hi", "arousal": NaN}', "arousal"),
    ('{"type": "say", "text": "hi", "rm": "-rf"}', "unexpected"),
    ('{"type": "emotion"}', "at least one"), ('{"type": "emotion", "valence": 0.5, "transition": -1}', "transition"),
    (b"\x00\x01", "binary"), ('{"type": "say", "text": "' + "a" * 70000 + '"}', "larger"),
    ('{"type": "audio"}', "path"), ('{"type": "audio", "path": ""}', "path"), ('{"type": "audio", "path": 3}', "path"),
    ('{"type": "audio", "path": "a.wav", "text": "hi"}', "unexpected"),
    ('{"type": "audio", "path": "a.wav", "valence": 1.5}', "valence"),
])
def test_malformed_control_messages_are_refused_clearly(msg, needle: str) -> None:
    with pytest.raises(InputError, match=needle):
        parse_control(msg)


def test_valid_control_messages() -> None:
    assert parse_control('{"type": "say", "text": "Hi there", "valence": 0.5}') == {
        "type": "say", "text": "Hi there", "vad": VAD(0.5, 0.0, 0.0)}
    assert parse_control({"type": "say", "text": "Hi"})["vad"] is None
    assert parse_control({"type": "emotion", "arousal": -0.3, "transition": 2})["transition"] == 2
    assert parse_control({"type": "stop"}) == {"type": "stop"}
    assert parse_control({"type": "audio", "path": "take 1.wav", "arousal": 0.5}) == {
        "type": "audio", "path": "take 1.wav", "vad": VAD(0.0, 0.5, 0.0)}


def test_mood_eases_instead_of_jumping() -> None:
    m = Mood()
    m.set(VAD(0.8, 0.4, 0.0), at=1.0, transition=1.0)
    v = np.array([m.value(t)[0] for t in np.arange(0.0, 3.0, 1 / 60)])
    assert v[0] == 0.0 and v[-1] == pytest.approx(0.8)
    assert np.abs(np.diff(v)).max() < 0.03  # ~1.5 x the mean step of a 1 s smoothstep at 60 fps
    m.set(VAD(-0.5, 0.0, 0.0), at=2.0, transition=0.5)  # a new target mid-way continues from where it is
    assert m.value(2.0)[0] == pytest.approx(0.8) and m.value(2.6)[0] == pytest.approx(-0.5)


def test_stop_cuts_speech_and_queue(tmp_path: Path) -> None:
    from avatar.live.audio_out import WavWriter

    # eSpeak NG: the check is on the cut and the queue; drained() also waits for a chunk being synthesised, which
    # takes the neural voice 0.3-3 s on a busy two-core machine (it cannot be interrupted mid-run).
    stream = LiveStream(StreamConfig(fps=30, motion="procedural", vad=VAD(0.0, 0.2, 0.0), backend="espeak"))
    stream.load()
    wav = tmp_path / "out.wav"
    writer = WavWriter(wav, stream.sample_rate)
    stream.sinks.append(writer)
    stream.start()
    stream.say("This sentence is going to be interrupted well before it ends.")
    stream.say("And this queued line is never said.")
    deadline = time.monotonic() + 10
    while not stream.schedule.active(stream.now()) and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.3)
    reply = stream.handle_control('{"type": "stop"}')
    t_stop = stream.now()
    assert reply["type"] == "ok" and reply["stopped"] >= 1
    assert stream.wait_drained(2.0)  # fades out within a fraction of a second
    time.sleep(0.3)
    stream.close()
    assert not wav.exists()  # written atomically: only on close
    writer.close()
    import soundfile as sf

    audio, sr = sf.read(wav)
    n_frames = stream.stats.frames + stream.stats.skipped  # skipped frames still carry their audio
    assert sr == stream.sample_rate and audio.size == pytest.approx(n_frames * sr / 30, abs=sr / 30 + 1)
    i_stop = int((t_stop + 0.2) * sr)
    assert np.abs(audio[:i_stop]).max() > 0.05 and np.abs(audio[i_stop:]).max() < 1e-3
    assert 1 not in stream.stats.first_frame_latency  # the queued line never started


def test_emotion_message_changes_the_idle_face() -> None:
    stream = LiveStream(StreamConfig(fps=30, motion="procedural", vad=VAD(0.0, 0.0, 0.0)))
    got = []

    class Keep:
        def frame(self, f) -> None:
            got.append((f.time, f.vrm.copy(), f.vad.copy()))

        def audio(self, first: int, samples: np.ndarray) -> None:
            pass

    stream.sinks.append(Keep())
    stream.start()
    time.sleep(0.3)
    t0 = stream.now()
    stream.handle_control({"type": "emotion", "valence": 0.9, "arousal": 0.5, "transition": 0.5})
    time.sleep(1.0)
    stream.close()
    from avatar.face.rig import VRM_EXPRESSIONS

    happy = VRM_EXPRESSIONS.index("happy")
    before = [g for g in got if g[0] < t0]
    after = [g for g in got if g[0] > t0 + 0.6]
    assert before and after
    assert max(g[1][happy] for g in before) < 0.05 and min(g[1][happy] for g in after) > 0.2
    assert after[-1][2][0] == pytest.approx(0.9, abs=1e-6)
    vals = np.array([g[1][happy] for g in got])
    assert np.abs(np.diff(vals)).max() < 0.2  # eased over frames, not one jump


@pytest.fixture(scope="module")
def tiny_models() -> tuple[Path, Path]:
    """The shipped face and gesture models (small: the model path's wiring, fast enough)."""
    from avatar.weights import model_dir

    return model_dir("face"), model_dir("gesture")


def test_model_motion_replaces_the_procedural_one_chunk_by_chunk(tiny_models) -> None:
    face_dir, gesture_dir = tiny_models
    stream = LiveStream(StreamConfig(fps=30, motion="model", face_model=face_dir, gesture_model=gesture_dir,
                                     model_steps=4, vad=VAD(0.3, 0.3, 0.0)))
    placed, placed_at, synth_at = [], [], []
    place = stream.schedule.place
    stream.schedule.place = lambda clip, earliest: (placed.append(clip), placed_at.append(time.monotonic()),
                                                    place(clip, earliest))[2]
    stream.load()
    synth = stream.backend.synthesize
    stream.backend.synthesize = lambda *a, **k: (synth_at.append(time.monotonic()), synth(*a, **k))[1]
    stream.start()
    assert stream.models
    stream.say("First of all, this clause starts the whole line very quickly. And a second one.")
    deadline = time.monotonic() + 20
    while len(stream.stats.model_seconds) + stream.stats.model_skipped < 3 and not stream.stats.errors \
            and time.monotonic() < deadline:
        time.sleep(0.05)
    assert stream.wait_drained(30)
    clips = placed
    stream.close()
    s = stream.stats
    assert s.errors == []
    # Incremental: the first clause is its own chunk, placed on the schedule before the next chunk's synthesis
    # began (not after the whole line was spoken; call order, so a fast machine cannot make this flaky).
    assert [c.sentence for c in clips] == [0, 1, 2] and clips[0].text == "First of all,"
    assert len(synth_at) == 3 and placed_at[0] < synth_at[1] < placed_at[1] < synth_at[2] < placed_at[2]
    assert 0 in s.first_frame_latency
    for a, b in zip(clips, clips[1:]):
        assert b.start >= a.start + a.duration - 1e-9  # back to back, never overlapping
    # Every chunk got the model's motion, unless it was over before the model could run (a starved machine).
    assert len(s.model_seconds) + s.model_skipped == 3 and len(s.model_seconds) >= 1
    upgraded = [c for c in clips if c.model is not None]
    assert len(upgraded) == len(s.model_seconds)
    c = upgraded[-1]
    face, (rot, root), at = c.model
    assert face.num_frames == pytest.approx(c.duration * 30, abs=1) and rot.shape[1:] == (22, 4)
    from avatar.live.frames import sample_track

    t = max(at + 0.31, c.start + c.duration / 2)  # after the crossfade: the frame follows the model's face
    if t < c.start + c.duration:
        assert np.allclose(c.sample(t)[0], sample_track(face.frames, face.fps, t - c.start))


def test_model_mode_without_weights_names_the_training_command(tmp_path: Path) -> None:
    from avatar.errors import ModelError

    stream = LiveStream(StreamConfig(motion="model", face_model=tmp_path / "nothing", vad=VAD()))
    with pytest.raises(ModelError, match="train"):
        stream.load()


def test_cli_stream_reads_stdin_prints_ready_and_writes_audio(tmp_path: Path) -> None:
    from pythonosc.dispatcher import Dispatcher
    from pythonosc.osc_server import ThreadingOSCUDPServer
    import threading

    addrs: list[str] = []
    d = Dispatcher()
    d.set_default_handler(lambda addr, *a: addrs.append(addr))
    srv = ThreadingOSCUDPServer(("127.0.0.1", 0), d)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    wav = tmp_path / "session.wav"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "avatar.cli", "stream", "--vmc", f"127.0.0.1:{srv.server_address[1]}", "--fps", "30",
           "--no-play", "--audio-out", str(wav), "--motion", "procedural", "--valence", "0.4"]
    from avatar.audio import save_wav

    clip = tmp_path / "take 1.wav"  # recorded speech, said as a line (an 'audio' control line)
    save_wav(clip, _speech().audio, _speech().sample_rate)
    lines = ["Hello there.", "", '{"type": "bogus"}', json.dumps({"type": "audio", "path": str(clip)}),
             json.dumps({"type": "audio", "path": str(tmp_path / "missing.wav")})]
    proc = subprocess.run(cmd, input="\n".join(lines) + "\n", capture_output=True, text=True,
                          timeout=60, cwd=REPO, env=env)
    srv.shutdown()
    srv.server_close()
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[0] == "ready"
    assert "error: unknown control type 'bogus'" in proc.stderr
    assert "error: audio file not found" in proc.stderr and "missing.wav" in proc.stderr
    assert "/VMC/Ext/Blend/Apply" in addrs and "/VMC/Ext/Bone/Pos" in addrs
    import soundfile as sf

    audio, sr = sf.read(wav)
    assert audio.size > 0.5 * sr + _speech().duration * sr and np.abs(audio).max() > 0.05


def test_cli_stream_refuses_a_bad_target() -> None:
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-m", "avatar.cli", "stream", "--vmc", "host:notaport", "--no-play"],
                          input="", capture_output=True, text=True, timeout=60, cwd=REPO, env=env)
    assert proc.returncode == 2 and "error: bad port" in proc.stderr


def test_idle_is_continuous_across_blocks_and_seeded() -> None:
    from avatar.live.motion import BLOCK, IdleSource

    idle = IdleSource(Mood(), seed=3)
    ts = np.arange(BLOCK - 0.5, BLOCK + 1.5, 1 / 60)  # across the crossfade into block 1
    faces, rots = zip(*[(f, r) for f, r, _ in (idle.sample(t) for t in ts)])
    faces, rots = np.array(faces), np.array(rots)
    step = np.abs(np.diff(faces[:, 52:], axis=0)).max()  # head and gaze angles (rad) per frame
    assert step < 0.05  # saccades move the eyes fast, but nothing jumps
    dots = np.abs((rots[1:] * rots[:-1]).sum(-1))
    assert np.degrees(2 * np.arccos(np.clip(dots, -1, 1))).max() < 2.0  # no joint turns 2 degrees in a frame
    again = IdleSource(Mood(), seed=3)
    assert np.allclose(again.sample(BLOCK + 0.3)[0], idle.sample(BLOCK + 0.3)[0])
    other = IdleSource(Mood(), seed=4)
    assert not np.allclose(other.sample(BLOCK + 0.3)[0], idle.sample(BLOCK + 0.3)[0])
    for src in (idle, again, other):
        src.close()


def test_first_clause_split() -> None:
    from avatar.live.stream import first_clause_split

    assert first_clause_split("I am so happy to see you again, it has been far too long.") == [
        "I am so happy to see you again,", "it has been far too long."]
    assert first_clause_split("Hello there, friend.") == ["Hello there, friend."]  # short: one chunk
    assert first_clause_split("Yes, I think that this is a very good idea for all of us.") == [
        "Yes, I think that this is a very good idea for all of us."]  # a one-word head is not a clause



def test_no_sound_device_means_no_player_and_a_log_line(caplog: pytest.LogCaptureFixture) -> None:
    import importlib.util

    from avatar.live.audio_out import LocalPlayer

    if importlib.util.find_spec("sounddevice") is not None:
        pytest.skip("sounddevice is installed here; playback may really open a device")
    with caplog.at_level("WARNING"):
        assert LocalPlayer.open(22050) is None
    assert "no local audio playback" in caplog.text and "sounddevice" in caplog.text


def test_sentences_of_a_line_hand_over_without_dipping_into_the_idle() -> None:
    from avatar.live.motion import Clip, Schedule, compose
    from avatar.live.motion import IdleSource
    from avatar.types import FACE_CHANNELS, FaceMotion, Timeline

    def clip(value: float, line: int = 0) -> Clip:
        frames = np.zeros((30, len(FACE_CHANNELS)), dtype=np.float32)
        frames[:, FACE_CHANNELS.index("jawOpen")] = value
        return Clip(line=line, sentence=0, text="x", start=0.0, audio=np.zeros(22050, np.float32),
                    sample_rate=22050, vad=VAD(), timeline=Timeline(sample_rate=22050, duration=1.0),
                    face=FaceMotion(fps=30, frames=frames))

    mood = Mood()
    idle = IdleSource(mood, seed=0)
    sched = Schedule()
    a, b = clip(0.5), clip(0.5)
    sched.place(a, 0.1)
    sched.place(b, 0.2)  # known long before a ends: back to back
    jaw = FACE_CHANNELS.index("jawOpen")
    vals = [compose(i, t, idle, sched, mood)[0].face[jaw] for i, t in enumerate(np.arange(0.9, 1.4, 1 / 60))]
    assert a.followed and min(vals) > 0.49  # no dip at the boundary (t = 1.1)
    c = clip(0.5, line=1)
    sched.place(c, 0.3)  # another line: it fades out to the idle and in again
    vals = [compose(i, t, idle, sched, mood)[0].face[jaw] for i, t in enumerate(np.arange(1.9, 2.4, 1 / 60))]
    assert not b.followed and min(vals) < 0.1
    idle.close()


@functools.lru_cache(maxsize=1)
def _speech():
    """A recorded line stands in for a user's recording: our own speech, 4 s, with pauses between words."""
    from avatar.tts import get_backend

    return get_backend("espeak").synthesize(
        "Well, I did not expect to see you here today, but I am really glad that you came.", VAD(0.3, 0.3, 0.0))


def test_audio_chunks_cut_long_speech_at_its_pauses() -> None:
    from avatar.live.stream import audio_chunks

    sr = 1000
    assert audio_chunks(1500, sr) == [(0, 1500)]  # shorter than the first chunk: one piece
    cuts = audio_chunks(20_000, sr)
    assert cuts[0] == (0, 2000) and all(b - a <= 6000 for a, b in cuts[1:])
    assert [a for a, _ in cuts[1:]] == [b for _, b in cuts[:-1]] and cuts[-1][1] == 20_000  # gapless, complete
    loud = np.random.default_rng(0).uniform(-0.5, 0.5, 20_000).astype(np.float32)
    loud[1600:1650] = 0.0  # a pause in the last third of the first window
    loud[6100:6200] = 0.0  # and in the second's
    cuts = audio_chunks(loud.size, sr, audio=loud)
    assert 1600 <= cuts[0][1] <= 1650 and 6100 <= cuts[1][1] <= 6200


def test_say_audio_refuses_bad_audio() -> None:
    from avatar.live.stream import MAX_AUDIO_LINE_SECONDS

    stream = LiveStream(StreamConfig(fps=30, motion="procedural"))
    for audio, sr, needle in [(np.zeros(0, np.float32), 16000, "empty"), (np.ones(100, np.int16), 16000, "float"),
                              (np.full(100, np.nan, np.float32), 16000, "NaN"), (np.zeros(100, np.float32), 0, "rate"),
                              (np.zeros(100, np.float32), True, "rate"),
                              (np.zeros(int(MAX_AUDIO_LINE_SECONDS * 8000) + 1, np.float32), 8000, "at most")]:
        with pytest.raises(InputError, match=needle):
            stream.say_audio(audio, sr)
    assert stream._requests.empty()  # nothing was queued


def test_timeline_from_audio_marks_when_someone_speaks() -> None:
    from avatar.face.viseme_net import load_viseme_net, timeline_from_audio

    net = load_viseme_net()
    sp = _speech()
    tl = timeline_from_audio(net, sp.audio, sp.sample_rate)
    assert tl.duration == pytest.approx(sp.duration) and len(tl.phonemes) > 10
    assert 1 <= len(tl.words) < len(tl.phonemes)
    truth = [(w.start, w.end) for w in sp.timeline.words]
    said = sum(w.end - w.start for w in tl.words)
    assert said > 0.6 * sum(b - a for a, b in truth)  # the stretches of speech cover most of the words
    silent = timeline_from_audio(net, np.zeros(sp.sample_rate, np.float32), sp.sample_rate)
    assert not silent.words


def test_audio_lines_are_said_with_a_moving_mouth(tmp_path: Path) -> None:
    """Recorded speech goes out as it came in (the stream's audio), chunked, with the mouth reading it; an
    'audio' control message reads files only where files=True (stdin), not from the WebSocket."""
    from avatar.audio import save_wav
    from avatar.face.rig import VRM_EXPRESSIONS

    sp = _speech()
    stream = LiveStream(StreamConfig(fps=30, motion="procedural", vad=VAD(0.0, 0.2, 0.0)))
    got, pcm = [], {}

    class Keep:
        def frame(self, f) -> None:
            got.append((f.time, f.vrm.copy()))

        def audio(self, first: int, samples: np.ndarray) -> None:
            pcm[first] = samples.copy()

    stream.sinks.append(Keep())
    stream.start()
    path = tmp_path / "line.wav"
    save_wav(path, sp.audio, sp.sample_rate)
    with pytest.raises(InputError, match="WebSocket"):
        stream.handle_control({"type": "audio", "path": str(path)})
    with pytest.raises(InputError, match="not found"):
        stream.handle_control({"type": "audio", "path": str(tmp_path / "nope.wav")}, files=True)
    (tmp_path / "broken.wav").write_bytes(b"RIFF\x00\x00not a wave")
    with pytest.raises(InputError):
        stream.handle_control({"type": "audio", "path": str(tmp_path / "broken.wav")}, files=True)
    reply = stream.handle_control({"type": "audio", "path": str(path)}, files=True)
    assert reply == {"type": "ok", "request": "audio", "line": 0}
    assert stream.wait_drained(20.0)
    stream.close()
    assert not stream.stats.errors
    start = stream.stats.first_start[0]
    assert stream.stats.first_audio_duration[0] <= 2.0 + 1e-6  # the first chunk is short, so it starts soon
    out = np.concatenate([pcm[k] for k in sorted(pcm)])
    i0 = int(round(start * stream.sample_rate))
    saved = np.clip(sp.audio, -1, 1)
    if sp.sample_rate != stream.sample_rate:  # the stream's rate is its TTS voice's: the same here
        pytest.skip("the stream runs at another rate than the recording")
    np.testing.assert_allclose(out[i0:i0 + saved.size], saved, atol=1e-4)  # gapless across the chunks
    aa = VRM_EXPRESSIONS.index("aa")
    during = np.array([v[aa] for t, v in got if start + 0.3 < t < start + sp.duration - 0.3])
    before = np.array([v[aa] for t, v in got if t < start])
    assert during.max() > 0.3 and (during > 0.05).mean() > 0.3 and (before.size == 0 or before.max() < 0.05)


def test_an_audio_line_over_the_line_limit_is_refused_from_its_header(tmp_path: Path) -> None:
    """A 20-minute FLAC (a few hundred kB) sent as an 'audio' line is refused from its header, before decoding:
    it used to be decoded whole (an hour of it: gigabytes) and then refused (issue 20 item 1)."""
    import tracemalloc

    import soundfile as sf

    from avatar.live.stream import MAX_AUDIO_LINE_SECONDS

    with sf.SoundFile(tmp_path / "long.flac", "w", 8000, 1, subtype="PCM_16", format="FLAC") as f:
        for _ in range(20):
            f.write(np.zeros(8000 * 60, np.int16))
    stream = LiveStream(StreamConfig(fps=30, motion="procedural"))
    tracemalloc.start()
    try:
        with pytest.raises(InputError, match=f"longer than the {MAX_AUDIO_LINE_SECONDS / 60:.0f}-minute limit"):
            stream.handle_control({"type": "audio", "path": str(tmp_path / "long.flac")}, files=True)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 * 2**20, peak  # decoded it would be 38 MB
    assert stream._requests.empty()


def test_control_messages_are_pydantic_models_that_refuse_unknown_fields() -> None:
    from pydantic import ValidationError

    from avatar.live.control import MESSAGES, AudioMessage, EmotionMessage, SayMessage, StopMessage, read_control

    assert isinstance(read_control({"type": "say", "text": "Hi"}), SayMessage)
    assert isinstance(read_control('{"type": "audio", "path": "a.wav"}'), AudioMessage)
    assert read_control({"type": "emotion", "valence": 1}).vad() == VAD(1.0, 0.0, 0.0)
    assert isinstance(read_control({"type": "stop"}), StopMessage) and set(MESSAGES) == {"say", "audio", "emotion",
                                                                                           "stop"}
    with pytest.raises(InputError, match="dominance"):
        EmotionMessage(type="emotion", dominance=True)  # a bool is not a number, even to the model directly
    with pytest.raises(ValidationError, match="frozen"):
        read_control({"type": "say", "text": "Hi"}).text = "changed"
