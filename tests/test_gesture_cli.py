"""`generate_gesture` and `avatar gesture` on a tiny model trained here for a few steps (synthetic speech)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from avatar.audio import save_wav  # noqa: E402
from avatar.errors import InputError, ModelError  # noqa: E402
from avatar.gesture import checks  # noqa: E402
from avatar.rig.hands import FINGER_BONES  # noqa: E402
from avatar.gesture.prosody import FEATURE_NAMES, prosody_features, stress_events  # noqa: E402
from avatar.gesture.signals import syllable_audio, syllable_times  # noqa: E402
from avatar.rig.skeleton import HUMANOID  # noqa: E402
from avatar.types import VAD, EmotionSegment, EmotionTrack, Phoneme, Timeline, Word  # noqa: E402

SR = 16000
TINY = ["--window", "20", "--overlap", "4", "--d-model", "32", "--layers", "1", "--heads", "2", "--ff", "64"]


def _timeline(times: np.ndarray, duration: float) -> Timeline:
    """Every third syllable (the pitch-accented ones) carries primary stress, as eSpeak NG marks it."""
    ph = [Phoneme(phoneme=("ˈa" if i % 3 == 0 else "a"), start=float(t), end=float(t) + 0.2, viseme="aa")
          for i, t in enumerate(times)]
    words = [Word(word="word", start=float(t), end=float(t) + 0.2) for t in times]
    return Timeline(sample_rate=SR, duration=duration, phonemes=ph, words=words)


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A corpus-style folder (wav + timeline + vad.json), a tiny model trained on it, and a test clip."""
    from avatar.gesture.train import main

    root = tmp_path_factory.mktemp("gesture")
    corpus = root / "corpus"
    corpus.mkdir()
    for i, dur in enumerate((1.6, 1.3)):
        times = syllable_times(i, dur)
        save_wav(corpus / f"c{i}.wav", syllable_audio(times, dur, seed=i), SR)
        _timeline(times, dur).to_json(corpus / f"c{i}.json")
        (corpus / f"c{i}.vad.json").write_text(json.dumps({"valence": 0.4, "arousal": 0.6, "dominance": 0.1}))
    model = root / "model"
    torch.set_num_threads(1)
    assert main(["--wav-dir", str(corpus), "--out", str(model), "--variants", "2", "--steps", "4", "--batch", "4",
                 *TINY]) == 0
    dur = 2.3  # longer than one 20-frame window: windows are stitched
    times = syllable_times(5, dur)
    audio = syllable_audio(times, dur, seed=5)
    wav = root / "speech.wav"
    save_wav(wav, audio, SR)
    tl = root / "speech.json"
    _timeline(times, dur).to_json(tl)
    return {"root": root, "model": model, "wav": wav, "timeline": tl, "audio": audio, "dur": dur, "times": times}


def test_training_reads_the_corpus_folder(data: dict) -> None:
    card = (data["model"] / "README.md").read_text()
    assert "4 teacher clips" in card and "2 audio files with a timeline, 2" in card
    cfg = json.loads((data["model"] / "config.json").read_text())
    assert cfg["audio_features"] == list(FEATURE_NAMES) and cfg["audio_features"][-1] == "stress"


def test_dataset_uses_speech_vad_and_timeline_dropout(data: dict) -> None:
    from avatar.gesture.model import GestureModelConfig
    from avatar.gesture.train import build_dataset

    cfg = GestureModelConfig(window=20, overlap=4)
    corpus = data["root"] / "corpus"
    stress = FEATURE_NAMES.index("stress")
    kept, info = build_dataset(cfg, corpus, variants=2, seed=1, timeline_dropout=0.0)
    assert info["timelines"] == 2 and info["speech_vads"] == 2 and kept.audio[..., stress].any()
    assert np.allclose(kept.vad[0], [0.4, 0.6, 0.1])  # the first variant speaks with the clip's own VAD
    assert not np.allclose(kept.vad[-1], [0.4, 0.6, 0.1])
    dropped, _ = build_dataset(cfg, corpus, variants=2, seed=1, timeline_dropout=1.0)
    assert not dropped.audio[..., stress].any()
    assert np.array_equal(np.delete(dropped.audio, stress, -1), np.delete(kept.audio, stress, -1))


def test_stress_channel_from_timeline(data: dict) -> None:
    tl = Timeline.from_json(data["timeline"])
    t, w = stress_events(tl)
    assert np.allclose(t, data["times"][::3]) and (w == 1.0).all()
    feat = prosody_features(data["audio"], SR, 30.0, timeline=tl)
    stress = feat.matrix()[:, FEATURE_NAMES.index("stress")]
    assert np.array_equal(np.flatnonzero(stress), np.round(data["times"][::3] * 30).astype(int))
    assert not feat.with_timeline(None).matrix()[:, -1].any()
    words_only = Timeline(sample_rate=SR, duration=1.0, words=[Word(word="hello", start=0.2, end=0.5),
                                                               Word(word="a", start=0.5, end=0.6)])
    assert stress_events(words_only)[0].tolist() == [0.2]  # no stress marks: content-word starts
    too_long = Timeline(sample_rate=SR, duration=data["dur"] + 2.0)
    with pytest.raises(InputError, match="another clip"):
        feat.with_timeline(too_long)


def test_generate_gesture_api(data: dict) -> None:
    from avatar.gesture.generate import generate_gesture, load_gesture_model

    model = load_gesture_model(data["model"])
    audio, tl = data["audio"], Timeline.from_json(data["timeline"])
    a = generate_gesture(audio, SR, VAD(0.5, 0.5, 0.0), seed=3, model=model, timeline=tl, steps=2)
    assert a.num_frames == round(data["dur"] * 30) and a.joints[:len(HUMANOID.joints)] == HUMANOID.joints
    assert set(FINGER_BONES) <= set(a.joints)  # the repertoire's hand shapes
    assert checks.nan_count(a) == 0 and checks.foot_sliding(a) < 1.0  # feet planted
    b = generate_gesture(audio, SR, VAD(0.5, 0.5, 0.0), seed=3, model=data["model"], timeline=tl, steps=2)
    assert np.array_equal(a.rotations, b.rotations) and np.array_equal(a.root_position, b.root_position)
    c = generate_gesture(audio, SR, VAD(0.5, 0.5, 0.0), seed=3, model=model, steps=2)  # no timeline
    d = generate_gesture(audio, SR, VAD(0.5, 0.5, 0.0), seed=4, model=model, timeline=tl, steps=2)
    assert np.abs(a.rotations - c.rotations).max() > 1e-4 and np.abs(a.rotations - d.rotations).max() > 1e-4
    track = EmotionTrack(segments=[EmotionSegment(start=0, end=1, vad=VAD(-0.5, -0.5, 0)),
                                   EmotionSegment(start=1, end=data["dur"], vad=VAD(0.8, 0.8, 0.3))])
    per_frame = np.tile([0.1, 0.2, 0.3], (10, 1))
    for vad in (track, per_frame, None):
        assert generate_gesture(audio, SR, vad, seed=1, model=model, steps=1, guidance=1.0).num_frames == a.num_frames
    with pytest.raises(InputError):
        generate_gesture(audio, SR, np.array([2.0, 0, 0]), model=model)
    with pytest.raises(InputError):
        generate_gesture(audio, SR, None, seed=-1, model=model)
    with pytest.raises(InputError):
        generate_gesture(audio, SR, None, model=model, guidance=float("nan"))
    with pytest.raises(ModelError, match="avatar.gesture.train"):
        generate_gesture(audio, SR, None, model=data["root"] / "nowhere")


def test_checkpoint_without_onnx_names_the_export_command(tmp_path: Path) -> None:
    from avatar.gesture.generate import load_gesture_model
    from avatar.gesture.model import GestureDenoiser, GestureModelConfig

    GestureDenoiser(GestureModelConfig(d_model=32, layers=1, heads=2, ff=64, window=20, overlap=4)).save_pretrained(
        tmp_path, onnx=False)  # as train.py's --save-every checkpoints are saved
    with pytest.raises(ModelError, match="avatar.export"):
        load_gesture_model(tmp_path)


def test_old_feature_set_is_refused(data: dict, tmp_path: Path) -> None:
    from avatar.gesture.generate import generate_gesture
    from avatar.gesture.model import GestureDenoiser, GestureModelConfig

    old = GestureDenoiser(GestureModelConfig(d_model=32, layers=1, heads=2, ff=64, window=20, overlap=4,
                                             audio_features=list(FEATURE_NAMES[:6])))
    with pytest.raises(ModelError, match="retrain"):
        generate_gesture(data["audio"], SR, None, model=old)


def run(avatar_bin: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([avatar_bin, "gesture", *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})


def test_cli_bvh_and_glb(avatar_bin: str, data: dict, tmp_path: Path) -> None:
    """Two runs with the same seed (BVH, then glTF) load back with the audio's length and the same motion."""
    import pygltflib

    from avatar.gesture.bvh import load_bvh
    from avatar.rig.rotations import quat_normalize

    common = ["--audio", str(data["wav"]), "--model", str(data["model"]), "--steps", "2", "--seed", "7",
              "--valence", "0.6", "--arousal", "0.5", "--timeline", str(data["timeline"])]
    # The two runs go side by side: each spends most of its time importing torch and diffusers.
    procs = [subprocess.Popen([avatar_bin, "gesture", *common, "-o", str(tmp_path / name)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
             for name in ("a.bvh", "b.glb")]
    outs = [p.communicate(timeout=120) for p in procs]
    for p, (_, err) in zip(procs, outs):
        assert p.returncode == 0, err
    summary = json.loads(outs[0][0])
    assert summary["format"] == "bvh" and summary["frames"] == round(data["dur"] * 30)
    motion = load_bvh(tmp_path / "a.bvh")
    assert abs(motion.duration - data["dur"]) < 0.1 and checks.nan_count(motion) == 0
    assert json.loads(outs[1][0])["format"] == "glb"
    gltf = pygltflib.GLTF2().load(str(tmp_path / "b.glb"))
    assert len(gltf.animations) == 1 and {n.name for n in gltf.nodes} >= set(HUMANOID.joints)
    anim = gltf.animations[0]
    times = gltf.accessors[anim.samplers[0].input]
    assert abs(times.max[0] + 1 / 30 - data["dur"]) < 0.1
    # Same seed, same motion: the glTF's left-elbow rotations equal the BVH's (text rounding aside).
    blob = gltf.binary_blob()
    node = next(i for i, n in enumerate(gltf.nodes) if n.name == "leftLowerArm")
    ch = next(c for c in anim.channels if c.target.node == node and c.target.path == "rotation")
    acc = gltf.accessors[anim.samplers[ch.sampler].output]
    view = gltf.bufferViews[acc.bufferView]
    q = np.frombuffer(blob, np.float32, acc.count * 4, view.byteOffset + (acc.byteOffset or 0)).reshape(-1, 4)
    ref = quat_normalize(motion.rotations[:, HUMANOID.index("leftLowerArm")])
    assert len(q) == len(ref) and np.abs(np.abs(np.sum(q * ref, -1)) - 1).max() < 1e-4
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.bvh", "b.glb"]  # no temp files left


@pytest.mark.parametrize("case, message", [
    ("not_audio", "not readable audio"), ("empty", "empty"), ("suffix", ".bvh or .glb"), ("vad", "valence"),
    ("timeline", "t.json"),
])
def test_cli_bad_input_exit_2(avatar_bin: str, data: dict, tmp_path: Path, case: str, message: str) -> None:
    src = tmp_path / "in.wav"
    if case == "not_audio":
        src.write_bytes(b"this is not a sound file at all" * 20)
    elif case == "empty":
        src.write_bytes(b"")
    else:
        src = data["wav"]
    out = tmp_path / ("out.fbx" if case == "suffix" else "out.bvh")
    args = ["--audio", str(src), "--model", str(data["model"]), "-o", str(out)]
    if case == "vad":
        args += ["--valence", "nan"]
    if case == "timeline":
        bad = tmp_path / "t.json"
        bad.write_text('{"sample_rate": 16000, "duration": "long"}')
        args += ["--timeline", str(bad)]
    res = run(avatar_bin, *args)
    assert res.returncode == 2, (res.returncode, res.stderr)
    assert res.stderr.startswith("error:") and message in res.stderr and "Traceback" not in res.stderr
    assert not out.exists()


def test_cli_missing_model_exit_1(avatar_bin: str, data: dict, tmp_path: Path) -> None:
    out = tmp_path / "x.bvh"
    res = run(avatar_bin, "--audio", str(data["wav"]), "--model", str(tmp_path / "no-model"), "-o", str(out))
    assert res.returncode == 1, res.stderr
    assert "no gesture model" in res.stderr and "python -m avatar.gesture.train" in res.stderr
    assert "Traceback" not in res.stderr and not out.exists()
