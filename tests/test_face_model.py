"""The face denoiser on tiny random weights: shapes, seeded sampling, CFG, windows, save/load round trip."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from avatar.errors import InputError, ModelError
from avatar.face.model import (FaceDenoiser, FaceDiffusionConfig, _window_starts, diffusion_loss, sample_motion)
from avatar.types import FACE_CHANNELS, VAD, FaceMotion

torch.set_num_threads(1)


def tiny(seed: int = 0, **kw) -> FaceDenoiser:
    torch.manual_seed(seed)
    cfg = FaceDiffusionConfig(hidden=16, blocks=2, window=24, overlap=8, **kw)
    model = FaceDenoiser(cfg).eval()
    with torch.no_grad():  # the output layer starts at zero; give it weights so outputs depend on inputs
        model.out.weight.normal_(0, 0.1)
    return model


def feats(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, 166)).astype(np.float32)


def test_default_size_is_small() -> None:
    model = FaceDenoiser()
    assert model.num_parameters() * 4 < 5 * 1024 * 1024


def test_forward_shapes_and_loss() -> None:
    model = tiny()
    x = torch.randn(3, 24, len(FACE_CHANNELS))
    out = model(x, torch.tensor([0, 500, 999]), torch.randn(3, 24, 166), torch.zeros(3, 3),
                keep_vad=torch.tensor([True, False, True]))
    assert out.shape == x.shape
    loss = diffusion_loss(model, x, torch.randn(3, 24, 166), torch.zeros(3, 3), torch.Generator().manual_seed(0))
    assert loss.ndim == 0 and torch.isfinite(loss)
    loss.backward()
    assert model.vad_mlp[0].weight.grad is not None


def test_sampling_is_seeded_and_shaped() -> None:
    model = tiny()
    f = feats(50)
    a = sample_motion(model, f, VAD(0.5, 0.2, 0.0), steps=3, seed=1)
    b = sample_motion(model, f, VAD(0.5, 0.2, 0.0), steps=3, seed=1)
    c = sample_motion(model, f, VAD(0.5, 0.2, 0.0), steps=3, seed=2)
    assert isinstance(a, FaceMotion) and a.frames.shape == (50, len(FACE_CHANNELS))
    assert np.array_equal(a.frames, b.frames) and not np.array_equal(a.frames, c.frames)
    assert a.frames[:, :52].min() >= 0 and a.frames[:, :52].max() <= 1
    # Guidance changes the result; no VAD is the unconditional path.
    g0 = sample_motion(model, f, VAD(0.5, 0.2, 0.0), steps=3, seed=1, guidance=0.0)
    unc = sample_motion(model, f, None, steps=3, seed=1)
    assert np.allclose(g0.frames, unc.frames, atol=1e-5)
    assert not np.allclose(a.frames, g0.frames)
    dpm = sample_motion(model, f, VAD(0.5, 0.2, 0.0), steps=3, seed=1, scheduler="dpm")
    assert dpm.frames.shape == a.frames.shape


def test_windows_cover_everything() -> None:
    assert _window_starts(10, 24, 8) == [0]
    starts = _window_starts(100, 24, 8)
    assert starts[0] == 0 and starts[-1] == 76 and all(b - a <= 16 for a, b in zip(starts, starts[1:]))
    out = sample_motion(tiny(), feats(100), np.zeros((100, 3)), steps=2, seed=0)
    assert out.num_frames == 100 and np.isfinite(out.frames).all()


def test_save_load_round_trip(tmp_path) -> None:
    model = tiny(seed=3)
    folder = model.save_pretrained(tmp_path / "face", onnx=False)  # the export: tests/test_face_train.py
    assert {p.name for p in folder.iterdir()} == {"config.json", "model.safetensors", "README.md"}
    assert json.loads((folder / "config.json").read_text())["hidden"] == 16
    back = FaceDenoiser.from_pretrained(folder)
    f = feats(30)
    assert np.array_equal(sample_motion(model, f, VAD(0.2, 0.1, 0), steps=2, seed=5).frames,
                          sample_motion(back, f, VAD(0.2, 0.1, 0), steps=2, seed=5).frames)


def test_load_errors(tmp_path) -> None:
    with pytest.raises(ModelError):
        FaceDenoiser.from_pretrained(tmp_path / "nothing")
    folder = tiny().save_pretrained(tmp_path / "m", onnx=False)
    (folder / "model.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(ModelError):
        FaceDenoiser.from_pretrained(folder)
    folder2 = tiny().save_pretrained(tmp_path / "m2", onnx=False)
    cfg = json.loads((folder2 / "config.json").read_text())
    cfg["hidden"] = 32
    (folder2 / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ModelError):
        FaceDenoiser.from_pretrained(folder2)


def test_bad_sampling_input() -> None:
    model = tiny()
    with pytest.raises(InputError):
        sample_motion(model, feats(10)[:, :50])
    with pytest.raises(InputError):
        sample_motion(model, np.full((10, 166), np.nan, dtype=np.float32))
    with pytest.raises(InputError):
        sample_motion(model, feats(10), steps=0)
    with pytest.raises(InputError):
        sample_motion(model, feats(10), guidance=float("nan"))
    with pytest.raises(InputError):
        sample_motion(model, feats(10), scheduler="euler")


def test_save_without_the_exporter_keeps_the_checkpoint(tmp_path, monkeypatch, caplog) -> None:
    """Without onnx/onnxscript the training command still ends with its checkpoint saved, and says what to run."""
    import avatar.onnx_export as ox

    def missing(*args, **kwargs):
        raise ImportError("No module named 'onnxscript'")

    monkeypatch.setattr(ox, "export_onnx", missing)
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "model.onnx").write_bytes(b"stale")
    folder = tiny().save_pretrained(tmp_path / "m")
    assert (folder / "model.safetensors").is_file() and not (folder / "model.onnx").exists()
    assert "python -m avatar.export" in caplog.text
