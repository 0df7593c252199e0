"""Training through accelerate (avatar.training) and `avatar train ...`: with the defaults each loop is the plain torch
loop bit for bit; gradient accumulation and bf16 autocast run on the CPU; the typer command trains a tiny model."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("accelerate")

ROOT = Path(__file__).resolve().parents[1]


def _plain_step(acc, model, opt, sched, batch_loss, clip=1.0) -> float:  # noqa: ANN001
    """The loop every trainer had before accelerate: zero, backward, clip, step, schedule."""
    loss = batch_loss()
    opt.zero_grad()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
    opt.step()
    sched.step()
    return float(loss.item())


def _face(acc=None):  # noqa: ANN001, ANN202
    from avatar.face.model import FaceDenoiser, FaceDiffusionConfig
    from avatar.face.train import Windows, train

    cfg = FaceDiffusionConfig(hidden=16, blocks=1, window=16, overlap=4)
    rng = np.random.default_rng(0)
    data = Windows(rng.normal(size=(6, 16, cfg.motion_dim)).astype(np.float32),
                   rng.normal(size=(6, 16, cfg.audio_dim)).astype(np.float32), np.zeros((6, 3), np.float32))
    torch.manual_seed(1)
    model = FaceDenoiser(cfg)
    losses = train(data, model, steps=6, batch=2, progress=False, acc=acc)
    return losses, [p.detach().clone() for p in model.parameters()]


def _gesture(acc=None):  # noqa: ANN001, ANN202
    from avatar.gesture.model import GestureModelConfig
    from avatar.gesture.train import Windows, train

    cfg = GestureModelConfig(window=12, overlap=4, d_model=16, layers=1, heads=2, ff=32)
    rng = np.random.default_rng(0)
    n = 5
    data = Windows(rng.normal(size=(n, 12, cfg.pose_dim)).astype(np.float32),
                   rng.normal(size=(n, 12, len(cfg.audio_features))).astype(np.float32),
                   rng.uniform(-1, 1, size=(n, 12, 3)).astype(np.float32))
    model, losses = train(data, cfg, steps=4, batch=2, acc=acc)
    return losses, [p.detach().clone() for p in model.parameters()]


def _lipsync(acc=None):  # noqa: ANN001, ANN202
    from avatar.face.lipsync import LipSyncConfig, train

    rng = np.random.default_rng(0)
    cfg = LipSyncConfig(hidden=8, layers=1)
    labels = [rng.integers(0, 3, 80) for _ in range(3)]
    feats = [rng.normal(0, 1, (80, cfg.audio_dim)).astype(np.float32) for _ in labels]
    net, losses = train(feats, labels, cfg, steps=5, batch=2, window=32, acc=acc)
    return losses, [p.detach().clone() for p in net.parameters()]


@pytest.mark.parametrize("run", [_face, _gesture, _lipsync], ids=["face", "gesture", "lipsync"])
def test_default_accelerate_loop_is_the_plain_torch_loop(run, monkeypatch) -> None:  # noqa: ANN001
    import avatar.training as training

    losses, params = run()
    monkeypatch.setattr(training, "accumulated_step", _plain_step)
    plain_losses, plain_params = run()
    assert losses == plain_losses and all(torch.equal(a, b) for a, b in zip(params, plain_params))


def test_gradient_accumulation_and_bf16_on_the_cpu() -> None:
    from avatar.training import accelerator

    base, _ = _face()
    acc = accelerator(grad_accum=3)
    two, params = _face(acc)
    assert len(two) == 6 and acc.step == 6 * 3  # six optimizer steps of three batches each
    assert two != base and all(np.isfinite(two)) and all(torch.isfinite(p).all() for p in params)
    # One precision per process (accelerate's state is process-wide): bf16 autocast in a fresh one.
    code = ("import sys, numpy as np; sys.path.insert(0, 'tests'); import test_training as t; "
            "from avatar.training import accelerator; l, _ = t._face(accelerator(mixed_precision='bf16')); "
            "print(repr(l))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert r.returncode == 0, r.stderr[-2000:]
    bf16 = eval(r.stdout.strip().splitlines()[-1])  # noqa: S307 - a list of floats we printed
    assert len(bf16) == 6 and all(np.isfinite(bf16)) and bf16 != base  # autocast changed the arithmetic only
    with pytest.raises(ValueError, match="gradient accumulation"):
        accelerator(grad_accum=0)
    with pytest.raises(ValueError, match="mixed precision"):
        accelerator(mixed_precision="fp8")


def test_avatar_train_face_trains_a_tiny_model(tmp_path: Path) -> None:
    from avatar.tts.corpus import build_corpus

    corpus = tmp_path / "corpus"
    build_corpus(corpus, clips=2, seed=5, progress=False)
    out = tmp_path / "face"
    avatar = [sys.executable, "-m", "avatar.cli"]
    helped = subprocess.run([*avatar, "train", "face", "--help"], capture_output=True, text=True, timeout=120)
    assert helped.returncode == 0 and "--grad-accum" in helped.stdout and "--mixed-precision" in helped.stdout
    r = subprocess.run([*avatar, "train", "face", "--data", str(corpus), "--out", str(out), "--steps", "4",
                        "--batch", "2", "--hidden", "16", "--blocks", "1", "--window", "16", "--overlap", "4",
                        "--copies", "1", "--threads", "1", "--grad-accum", "2", "--mixed-precision", "bf16"],
                       capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert r.returncode == 0, r.stderr[-2000:]
    card = (out / "README.md").read_text()
    assert "4 steps" in card and "--grad-accum 2" in card and (out / "model.onnx").is_file()
    bad = subprocess.run([*avatar, "train", "face", "--out", str(out), "--data", str(corpus), "--grad-accum", "0"],
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "gradient accumulation" in bad.stderr


def test_avatar_train_emotion_accumulates_in_bf16(tmp_path: Path) -> None:
    """The emotion trainer through the same command, with accumulation and bf16 autocast of its encoder."""
    sys.path.insert(0, str(ROOT / "tests"))
    from test_emotion_teacher import _emobank

    data, out = tmp_path / "eb.csv", tmp_path / "emotion"
    _emobank(data)
    r = subprocess.run([sys.executable, "-m", "avatar.cli", "train", "emotion", "--data", str(data), "--out", str(out),
                        "--epochs", "1", "--threads", "1", "--rank", "2", "--grad-accum", "2",
                        "--mixed-precision", "bf16"], capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert r.returncode == 0, r.stderr[-2000:]
    from avatar.emotion.model import EmotionModel

    assert EmotionModel.from_pretrained(out).predict_ratings(["a calm day"]).shape == (1, 3)
