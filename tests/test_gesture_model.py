"""The gesture denoiser on tiny random weights: shapes, seeds, stitching, save/load, loss."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from avatar.errors import InputError, ModelError  # noqa: E402
from avatar.gesture import checks  # noqa: E402
from avatar.gesture.model import (  # noqa: E402
    GestureDenoiser, GestureModelConfig, array_to_motion, crossfade, diffusion_loss, generate, make_scheduler,
    motion_to_array,
)
from avatar.gesture.prosody import FEATURE_NAMES  # noqa: E402
from avatar.rig.skeleton import HUMANOID  # noqa: E402
from avatar.gesture.teacher import teacher_motion  # noqa: E402
from avatar.types import VAD  # noqa: E402

TINY = GestureModelConfig(d_model=32, layers=1, heads=2, ff=64, window=20, overlap=4)


@pytest.fixture(scope="module")
def tiny() -> GestureDenoiser:
    torch.manual_seed(0)
    return GestureDenoiser(TINY)


@pytest.fixture(scope="module")
def feats() -> np.ndarray:
    return np.random.default_rng(0).normal(size=(33, len(FEATURE_NAMES))).astype(np.float32)


def test_default_model_is_small() -> None:
    m = GestureDenoiser()
    assert m.num_parameters() * 4 < 5_000_000
    assert m.config.pose_dim == len(HUMANOID.joints) * 6 + 3


def test_forward_shapes(tiny: GestureDenoiser) -> None:
    B, W, D = 3, TINY.window, TINY.pose_dim
    out = tiny(torch.randn(B, W, D), torch.tensor([0, 10, 999]), torch.randn(B, W, len(FEATURE_NAMES)), torch.zeros(B, W, 3),
               torch.zeros(B, W, D), torch.zeros(B, W, 1), torch.tensor([False, True, False]))
    assert out.shape == (B, W, D) and torch.isfinite(out).all()


def test_generate_length_seed_and_sanity(tiny: GestureDenoiser, feats: np.ndarray) -> None:
    a = generate(tiny, feats, VAD(0.5, 0.5, 0.0), seed=1, steps=2)  # two windows: stitched
    assert a.num_frames == len(feats) and a.joints == HUMANOID.joints
    b = generate(tiny, feats, VAD(0.5, 0.5, 0.0), seed=1, steps=2)
    assert np.array_equal(a.rotations, b.rotations) and np.array_equal(a.root_position, b.root_position)
    c = generate(tiny, feats[:7], VAD(0.5, 0.5, 0.0), seed=2, steps=2, scheduler="dpm", guidance_scale=1.0)
    assert c.num_frames == 7  # shorter than one window
    assert np.abs(a.rotations[:7] - c.rotations).max() > 1e-3
    assert checks.nan_count(a) == 0 and checks.foot_sliding(a) < 1.0  # legs re-solved by IK
    with pytest.raises(InputError):
        generate(tiny, feats[:, :3], None)
    with pytest.raises(InputError):
        generate(tiny, feats, None, scheduler="euler")
    with pytest.raises(InputError):
        generate(tiny, feats, None, guidance_scale=float("nan"))


def test_save_and_load(tiny: GestureDenoiser, feats: np.ndarray, tmp_path: Path) -> None:
    folder = tiny.save_pretrained(tmp_path / "gesture", onnx=False)  # the export: test_training_script_smoke
    assert {p.name for p in folder.iterdir()} >= {"config.json", "model.safetensors", "README.md"}
    assert json.loads((folder / "config.json").read_text())["window"] == TINY.window
    back = GestureDenoiser.from_pretrained(folder)
    a = generate(tiny, feats[:12], None, seed=3, steps=2)
    b = generate(back, feats[:12], None, seed=3, steps=2)
    assert np.array_equal(a.rotations, b.rotations)
    with pytest.raises(ModelError):
        GestureDenoiser.from_pretrained(tmp_path / "missing")
    cfg = json.loads((folder / "config.json").read_text())
    cfg["d_model"] = 48
    (folder / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ModelError, match="does not fit"):
        GestureDenoiser.from_pretrained(folder)


def test_loss_trains_one_step(tiny: GestureDenoiser, feats: np.ndarray) -> None:
    m = teacher_motion(_prosody(), VAD(0.2, 0.4, 0.1), seed=0)
    x = torch.from_numpy(motion_to_array(m)[: TINY.window * 2].reshape(2, TINY.window, -1))
    audio = torch.randn(2, TINY.window, len(FEATURE_NAMES))
    vad = torch.zeros(2, TINY.window, 3)
    model = GestureDenoiser(TINY)
    model.train()
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    sched = make_scheduler(TINY)
    gen = torch.Generator().manual_seed(0)
    loss = diffusion_loss(model, sched, x, audio, vad, generator=gen)
    loss.backward()
    assert torch.isfinite(loss) and model.inp.weight.grad is not None and model.null_vad.grad is not None
    opt.step()


def _prosody():
    from avatar.gesture.prosody import prosody_features
    from avatar.gesture.signals import syllable_audio, syllable_times

    return prosody_features(syllable_audio(syllable_times(0, 3.0), 3.0), 16000)


def test_array_round_trip_and_crossfade() -> None:
    m = teacher_motion(_prosody(), VAD(0.0, 0.5, 0.0), seed=4)
    x = motion_to_array(m)
    back = array_to_motion(x, m.fps)
    body = m.rotations[:, : len(back.joints)]  # the model's array carries the body bones, not the finger bones
    assert np.abs(np.abs(np.sum(back.rotations * body, -1)) - 1).max() < 1e-5
    assert np.abs(back.root_position - m.root_position).max() < 1e-5
    a, b = np.zeros((10, 4)), np.ones((10, 4))
    mix = crossfade(a, b)
    assert (np.diff(mix[:, 0]) > 0).all() and mix[0, 0] < 0.05 and mix[-1, 0] > 0.95


def test_training_script_smoke(tmp_path: Path) -> None:
    """Two teacher clips and one BVH + WAV pair, a tiny model, three steps: saved, loadable, usable."""
    from avatar.audio import save_wav
    from avatar.gesture.bvh import write_bvh
    from avatar.gesture.signals import syllable_audio, syllable_times
    from avatar.gesture.train import clip_windows, main

    wavs, caps = tmp_path / "wav", tmp_path / "cap"
    wavs.mkdir()
    caps.mkdir()
    for i in range(2):
        save_wav(wavs / f"s{i}.wav", syllable_audio(syllable_times(i, 1.5), 1.5), 16000)
    audio = syllable_audio(syllable_times(7, 1.2), 1.2)
    save_wav(caps / "take.wav", audio, 16000)
    write_bvh(caps / "take.bvh", teacher_motion(_prosody(), VAD(0.5, 0.5, 0.0), seed=1))
    (caps / "take.vad.json").write_text('{"valence": 0.5, "arousal": 0.5, "dominance": 0.0}')
    out = tmp_path / "weights"
    assert main(["--wav-dir", str(wavs), "--bvh-dir", str(caps), "--out", str(out), "--variants", "2", "--steps", "3",
                 "--batch", "4", "--window", "20", "--overlap", "4", "--d-model", "32", "--layers", "1",
                 "--heads", "2", "--ff", "64", "--save-every", "2"]) == 0
    card = (out / "README.md").read_text()
    assert "Checkpoint" not in card  # the final save replaced the step-2 checkpoint
    assert "4 teacher clips" in card and "1 captured BVH clips" in card and "--steps 3" in card
    model = GestureDenoiser.from_pretrained(out)
    assert float(model.pose_std.min()) >= 0.05
    # The training command exported model.onnx, and inference from it is the torch module's (tolerance: the
    # export check's, avatar.export.EXPORT_RTOL, through two DDIM steps and the foot IK)
    from avatar.gesture.generate import load_gesture_model

    net = load_gesture_model(out)
    np.testing.assert_array_equal(net.pose_std, model.pose_std.numpy())
    f = np.random.default_rng(0).normal(size=(25, len(FEATURE_NAMES))).astype(np.float32)
    a = generate(model, f, VAD(0.2, 0.2, 0.2), steps=2, seed=1)
    b = generate(net, f, VAD(0.2, 0.2, 0.2), steps=2, seed=1)
    assert a.num_frames == b.num_frames == 25
    np.testing.assert_allclose(b.rotations, a.rotations, atol=1e-4)
    w = clip_windows(np.zeros((7, 5)), np.zeros((7, 2)), np.zeros((7, 3)), window=10, stride=6)
    assert w.x.shape == (1, 10, 5)
    w = clip_windows(np.arange(25.0)[:, None], np.zeros((25, 2)), np.zeros((25, 3)), window=10, stride=6)
    assert w.x.shape == (4, 10, 1) and w.x[-1, -1, 0] == 24.0  # the tail window keeps the last frame
    with pytest.raises(InputError):
        main(["--wav-dir", str(tmp_path / "wav"), "--out", str(out), "--variants", "0", "--steps", "1"])
