"""The torch-free inference path: our DDIM against diffusers', the shipped model.onnx graphs (run in onnxruntime)
against their torch modules, and a new process that makes face and body motion without importing torch.

Tolerance: a forward pass of the ONNX graph is within 1e-4 x max(1, max |torch output|) of torch's (float32
kernels sum in another order; measured about 1e-6); a whole sampled motion (10 DDIM steps) within 1e-3.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from avatar.diffusion import DDIM, make_sampler
from avatar.errors import InputError, ModelError

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("schedule", ["squaredcos_cap_v2", "linear"])
@pytest.mark.parametrize("prediction", ["sample", "epsilon", "v_prediction"])
@pytest.mark.parametrize("steps", [1, 7, 10, 50])
def test_ddim_matches_diffusers(schedule: str, prediction: str, steps: int) -> None:
    from diffusers import DDIMScheduler

    ref = DDIMScheduler(num_train_timesteps=1000, beta_schedule=schedule, prediction_type=prediction,
                        clip_sample=False, set_alpha_to_one=True)
    ref.set_timesteps(steps)
    ours = DDIM(steps, 1000, schedule, prediction)
    np.testing.assert_array_equal(ours.timesteps, ref.timesteps.numpy())
    rng = np.random.default_rng(steps)
    x = rng.standard_normal((1, 30, 4), dtype=np.float32)
    for t in ours.timesteps:
        out = rng.standard_normal((1, 30, 4), dtype=np.float32)
        want = ref.step(torch.from_numpy(out), int(t), torch.from_numpy(x)).prev_sample.numpy()
        np.testing.assert_allclose(ours.step(out, int(t), x), want, rtol=1e-4, atol=1e-4)
        x = want


def test_sampler_choices() -> None:
    assert isinstance(make_sampler("ddim", 10, 1000, "squaredcos_cap_v2", "sample"), DDIM)
    dpm = make_sampler("dpm", 5, 1000, "squaredcos_cap_v2", "sample")
    assert len(dpm.timesteps) == 5
    assert dpm.step(np.zeros((1, 3, 2), np.float32), int(dpm.timesteps[0]), np.ones((1, 3, 2), np.float32)).shape == (1, 3, 2)
    with pytest.raises(InputError, match="scheduler"):
        make_sampler("euler", 10, 1000, "squaredcos_cap_v2", "sample")
    with pytest.raises(InputError, match="steps"):
        DDIM(0)
    with pytest.raises(InputError, match="beta schedule"):
        DDIM(10, beta_schedule="scaled_linear")


def _close(got: np.ndarray, want: np.ndarray, rtol: float = 1e-4) -> None:
    err = float(np.abs(got - want).max())
    assert got.shape == want.shape and err <= rtol * max(1.0, float(np.abs(want).max())), err


@pytest.mark.parametrize("frames", [1, 37, 120, 300])
def test_shipped_face_graph_matches_torch(frames: int) -> None:
    from avatar.face.generate import load_face_model
    from avatar.face.model import FaceDenoiser

    net, ref = load_face_model(), FaceDenoiser.from_pretrained(ROOT / "weights" / "face")
    c = net.config
    rng = np.random.default_rng(frames)
    x = rng.standard_normal((2, frames, c.motion_dim), dtype=np.float32)
    a = rng.standard_normal((2, frames, c.audio_dim), dtype=np.float32)
    v = rng.uniform(-1, 1, (2, 3)).astype(np.float32)
    t, keep = np.array([0, 999]), np.array([True, False])
    with torch.no_grad():
        want = ref(*map(torch.from_numpy, (x, t, a, v)), keep_vad=torch.from_numpy(keep)).numpy()
    _close(net(x, t, a, v, keep), want)


@pytest.mark.parametrize("batch, frames", [(1, 60), (2, 60), (2, 17)])
def test_shipped_gesture_graph_matches_torch(batch: int, frames: int) -> None:
    from avatar.gesture.generate import load_gesture_model
    from avatar.gesture.model import GestureDenoiser

    net, ref = load_gesture_model(), GestureDenoiser.from_pretrained(ROOT / "weights" / "gesture")
    np.testing.assert_array_equal(net.pose_mean, ref.pose_mean.numpy())
    np.testing.assert_array_equal(net.pose_std, ref.pose_std.numpy())
    rng = np.random.default_rng(batch * frames)
    D = ref.config.pose_dim
    x, known = (rng.standard_normal((batch, frames, D), dtype=np.float32) for _ in range(2))
    audio = rng.standard_normal((batch, frames, len(ref.config.audio_features)), dtype=np.float32)
    vad = rng.uniform(-1, 1, (batch, frames, 3)).astype(np.float32)
    mask = (rng.random((batch, frames, 1)) < 0.5).astype(np.float32)
    t, drop = np.array([3, 640][:batch]), np.array([False, True][:batch])
    with torch.no_grad():
        want = ref(*map(torch.from_numpy, (x, t, audio, vad, known, mask)), torch.from_numpy(drop)).numpy()
    _close(net(x, t, audio, vad, known, mask, drop), want)


@pytest.mark.parametrize("frames", [5, 90, 400])
def test_shipped_lipsync_graph_matches_torch(frames: int) -> None:
    from avatar.face.lipsync import load_lipsync
    from avatar.face.viseme_net import load_viseme_net

    net, ref = load_viseme_net(), load_lipsync()
    x = np.random.default_rng(frames).standard_normal((1, frames, ref.config.audio_dim), dtype=np.float32)
    with torch.no_grad():
        want = ref(torch.from_numpy(x)).numpy()
    _close(net(x), want)


def test_sampled_motion_matches_the_torch_modules() -> None:
    """Whole samples (10 DDIM steps, guidance, windows) from the graphs and from torch agree within 1e-3."""
    from avatar.face.generate import load_face_model
    from avatar.face.model import FaceDenoiser
    from avatar.face.sampling import sample_motion
    from avatar.gesture.generate import load_gesture_model
    from avatar.gesture.model import GestureDenoiser
    from avatar.gesture.sampling import generate

    rng = np.random.default_rng(7)
    face, face_ref = load_face_model(), FaceDenoiser.from_pretrained(ROOT / "weights" / "face")
    f = rng.standard_normal((150, face.config.audio_dim), dtype=np.float32)
    a = sample_motion(face, f, np.array([0.5, 0.3, 0.1]), steps=10, guidance=2.0, seed=3).frames
    b = sample_motion(face_ref, f, np.array([0.5, 0.3, 0.1]), steps=10, guidance=2.0, seed=3).frames
    np.testing.assert_allclose(a, b, atol=1e-3)
    body, body_ref = load_gesture_model(), GestureDenoiser.from_pretrained(ROOT / "weights" / "gesture")
    g = rng.standard_normal((130, len(body.config.audio_features)), dtype=np.float32)
    a = generate(body, g, np.array([0.5, 0.3, 0.1]), steps=10, seed=3).rotations
    b = generate(body_ref, g, np.array([0.5, 0.3, 0.1]), steps=10, seed=3).rotations
    np.testing.assert_allclose(a, b, atol=1e-3)


def test_folders_that_do_not_fit_are_refused(tmp_path: Path) -> None:
    import shutil

    from avatar.face.sampling import FaceDenoiserNet, FaceDiffusionConfig
    from avatar.face.model import FaceDenoiser
    from avatar.gesture.sampling import GestureDenoiserNet

    face = tmp_path / "face"
    shutil.copytree(ROOT / "weights" / "face", face)
    assert FaceDenoiserNet.from_pretrained(face).config.blocks == 4
    with pytest.raises(ModelError, match="holds a FaceDenoiser, not a GestureDenoiser"):
        shutil.copy(ROOT / "weights" / "gesture" / "config.json", tmp_path / "config.json")
        shutil.copy(face / "model.onnx", tmp_path / "model.onnx")
        GestureDenoiserNet.from_pretrained(tmp_path)
    cfg = face / "config.json"
    cfg.write_text(cfg.read_text().replace('"blocks": 4', '"blocks": 4, "blokcs": 3'))
    with pytest.raises(ModelError, match="blokcs"):
        FaceDenoiserNet.from_pretrained(face)
    cfg.write_text(cfg.read_text().replace('"_class_name": "FaceDenoiser"', '"_class_name": "VisemeNet"'))
    with pytest.raises(ModelError, match="VisemeNet"):
        FaceDenoiserNet.from_pretrained(face)
    with pytest.raises(ModelError, match="gesture model"):
        from avatar.gesture.generate import load_gesture_model

        load_gesture_model(tmp_path / "nothing")
    with pytest.raises(InputError, match="not a gesture network: FaceDenoiser"):
        GestureDenoiserNet.of(FaceDenoiser(FaceDiffusionConfig(hidden=16, blocks=2)))


def test_shipped_models_sample_without_torch() -> None:
    """A new process makes face and body motion from audio with the shipped weights and never imports torch."""
    code = """
import sys
import numpy as np
from avatar.face.generate import generate_face
from avatar.gesture.generate import generate_gesture
from avatar.types import VAD
sr = 16000
t = np.arange(sr * 2) / sr
audio = (0.3 * np.sin(2 * np.pi * 180 * t) * (np.sin(2 * np.pi * 3 * t) > 0)).astype(np.float32)
face = generate_face(audio, sr, VAD(0.6, 0.4, 0.1), lips=False)
body = generate_gesture(audio, sr, VAD(0.6, 0.4, 0.1))
assert face.num_frames == 60 and body.num_frames == 60, (face.num_frames, body.num_frames)
assert np.isfinite(face.frames).all() and np.isfinite(body.rotations).all()
heavy = [m for m in ("torch", "diffusers", "transformers") if m in sys.modules]
print("HEAVY", heavy)
"""
    res = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "HEAVY []" in res.stdout, res.stdout


def test_say_runs_without_torch_scipy_or_diffusers(tmp_path: Path) -> None:
    """The whole default job, text to MP4 in a new process, imports none of the libraries that cost seconds."""
    code = f"""
import sys
from avatar.pipeline import say
say("Hello there, friend.", {str(tmp_path / 'hi.mp4')!r}, width=64, height=64)
print("HEAVY", [m for m in ("torch", "diffusers", "transformers", "scipy", "pkg_resources") if m in sys.modules])
"""
    res = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "HEAVY []" in res.stdout, res.stdout
    assert (tmp_path / "hi.mp4").stat().st_size > 1000
