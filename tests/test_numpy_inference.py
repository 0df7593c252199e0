"""The torch-free inference path: NumPy layers, our DDIM against diffusers', the denoisers' NumPy twins against
their torch modules, and a new process that makes face and body motion without importing torch."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from avatar import npnn
from avatar.diffusion import DDIM, make_sampler
from avatar.errors import InputError, ModelError

ROOT = Path(__file__).resolve().parents[1]


def test_gelu_matches_torch_for_any_shape() -> None:
    x = torch.linspace(-8, 8, 1200).reshape(2, 3, 200)
    got = npnn.gelu(x.numpy())
    assert got.shape == (2, 3, 200)
    assert np.abs(got - torch.nn.functional.gelu(x).numpy()).max() < 1e-6


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


def _randomised(module: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    with torch.no_grad():  # trained-looking weights: no zero output layer, no unit norms
        for p in module.parameters():
            p.normal_(0, 0.2)
    return module.eval()


def test_face_twin_matches_torch() -> None:
    from avatar.face.model import FaceDenoiser
    from avatar.face.sampling import FaceDenoiserNP, FaceDiffusionConfig, sample_motion

    model = _randomised(FaceDenoiser(FaceDiffusionConfig(hidden=32, blocks=5, window=24, overlap=8)))
    twin = FaceDenoiserNP.from_module(model)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 40, model.config.motion_dim), dtype=np.float32)
    a = rng.standard_normal((2, 40, model.config.audio_dim), dtype=np.float32)
    v = rng.uniform(-1, 1, (2, 3)).astype(np.float32)
    t, keep = np.array([0, 999]), np.array([True, False])
    with torch.no_grad():
        want = model(*map(torch.from_numpy, (x, t, a, v)), keep_vad=torch.from_numpy(keep)).numpy()
    np.testing.assert_allclose(twin(x, t, a, v, keep_vad=keep), want, rtol=1e-4, atol=2e-5)
    # sampling accepts the torch module too, and gives the twin's motion
    f = rng.standard_normal((50, model.config.audio_dim), dtype=np.float32)
    np.testing.assert_array_equal(sample_motion(model, f, v[0], steps=3, seed=4).frames,
                                  sample_motion(twin, f, v[0], steps=3, seed=4).frames)


def test_gesture_twin_matches_torch() -> None:
    from avatar.gesture.model import GestureDenoiser
    from avatar.gesture.sampling import GestureDenoiserNP, GestureModelConfig

    model = _randomised(GestureDenoiser(GestureModelConfig(d_model=32, layers=2, heads=4, ff=48, window=20, overlap=4)))
    twin = GestureDenoiserNP.from_module(model)
    rng = np.random.default_rng(1)
    D, W = model.config.pose_dim, 20
    x, known = (rng.standard_normal((2, W, D), dtype=np.float32) for _ in range(2))
    audio = rng.standard_normal((2, W, len(model.config.audio_features)), dtype=np.float32)
    vad = rng.uniform(-1, 1, (2, W, 3)).astype(np.float32)
    mask = (rng.random((2, W, 1)) < 0.5).astype(np.float32)
    t, drop = np.array([3, 640]), np.array([False, True])
    with torch.no_grad():
        want = model(*map(torch.from_numpy, (x, t, audio, vad, known, mask)), torch.from_numpy(drop)).numpy()
    np.testing.assert_allclose(twin(x, t, audio, vad, known, mask, drop), want, rtol=1e-4, atol=2e-5)


def test_twins_refuse_weights_that_do_not_fit(tmp_path: Path) -> None:
    from avatar.face.model import FaceDenoiser
    from avatar.face.sampling import FaceDenoiserNP, FaceDiffusionConfig
    from avatar.gesture.sampling import GestureDenoiserNP

    FaceDenoiser(FaceDiffusionConfig(hidden=16, blocks=2)).save_pretrained(tmp_path / "face")
    assert FaceDenoiserNP.from_pretrained(tmp_path / "face").config.blocks == 2
    cfg = (tmp_path / "face" / "config.json")
    cfg.write_text(cfg.read_text().replace('"blocks": 2', '"blocks": 3'))
    with pytest.raises(ModelError, match="does not fit its config.json: blocks.2"):
        FaceDenoiserNP.from_pretrained(tmp_path / "face")
    with pytest.raises(ModelError, match="gesture model folder"):
        GestureDenoiserNP.from_pretrained(tmp_path / "nothing")
    with pytest.raises(InputError, match="not a gesture denoiser: FaceDenoiser"):
        GestureDenoiserNP.of(FaceDenoiser(FaceDiffusionConfig(hidden=16, blocks=2)))


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
