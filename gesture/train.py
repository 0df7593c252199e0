"""Train the gesture denoiser on teacher motion for our own speech and/or on BVH + WAV pairs (BEAT, Trinity).

    .venv/bin/python -m avatar.gesture.train --wav-dir DIR [--bvh-dir DIR] --out weights/gesture \\
        [--variants 4] [--steps 20000] [--batch 64] [--lr 2e-4] [--seed 0]

Data:
- `--wav-dir`: every .wav/.flac there; each is paired with `--variants` teacher motions, each with its own
  seed. The intended source is our eSpeak NG speech corpus, `python -m avatar.tts.corpus --out DIR`, which
  writes exactly this folder: `<id>.wav`, its timeline `<id>.json` and the VAD it was spoken with
  `<id>.vad.json` (`avatar tts -o X.wav --timeline X.json` output works too). A timeline beside the audio feeds
  the teacher's beats and the model's `stress` channel (blanked in `--timeline-dropout` of the variants, so the
  model also works from audio alone). The first variant takes the speech's own VAD from `<id>.vad.json` when
  present (voice and gesture agree); the others take random VAD points, so VAD conditioning is learned apart
  from the voice.
- `--bvh-dir`: `<stem>.bvh` + `<stem>.wav` pairs of captured motion, retargeted onto our skeleton (load_bvh)
  and resampled to 30 fps; their VAD comes from `<stem>.vad.json` ({"valence", "arousal", "dominance"}) when
  present, else neutral.
Clips are cut into windows of `window` frames (stride window - overlap); the model card written beside the
weights records the data, the exact command and the final loss.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import shlex
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from avatar.audio import load_audio
from avatar.errors import InputError
from avatar.types import VAD, Timeline

from .bvh import load_bvh
from avatar.rig.kinematics import resample_motion
from .model import GestureDenoiser, GestureModelConfig, diffusion_loss, make_scheduler, motion_to_array
from .prosody import prosody_features
from .teacher import teacher_motion, vad_per_frame

log = logging.getLogger(__name__)
AUDIO_EXT = (".wav", ".flac")


@dataclass
class Windows:
    """Training windows: motion x [N, W, D], audio features [N, W, F], per-frame VAD [N, W, 3]."""

    x: np.ndarray
    audio: np.ndarray
    vad: np.ndarray

    def __len__(self) -> int:
        return int(self.x.shape[0])


def clip_windows(x: np.ndarray, audio: np.ndarray, vad: np.ndarray, window: int, stride: int) -> Windows:
    """Cut one clip's per-frame arrays into windows; a clip shorter than a window is padded (last pose, silence)."""
    T = min(len(x), len(audio), len(vad))
    x, audio, vad = x[:T], audio[:T], vad[:T]
    if T < window:
        pad = window - T
        x = np.concatenate([x, np.repeat(x[-1:], pad, 0)])
        audio = np.concatenate([audio, np.zeros((pad, audio.shape[1]), audio.dtype)])
        vad = np.concatenate([vad, np.repeat(vad[-1:], pad, 0)])
        T = window
    starts = list(range(0, T - window + 1, stride))
    if starts[-1] != T - window:
        starts.append(T - window)  # the tail, so no frames are dropped
    return Windows(np.stack([x[s:s + window] for s in starts]), np.stack([audio[s:s + window] for s in starts]),
                   np.stack([vad[s:s + window] for s in starts]))


def _concat(parts: list[Windows]) -> Windows:
    return Windows(*(np.concatenate([getattr(p, k) for p in parts]).astype(np.float32) for k in ("x", "audio", "vad")))


def read_vad_json(path: Path) -> VAD:
    """A `<stem>.vad.json` file ({"valence", "arousal", "dominance"}) as a VAD; InputError naming the file."""
    try:
        return VAD(**json.loads(path.read_text(encoding="utf-8")))
    except (ValueError, TypeError, UnicodeDecodeError) as exc:
        raise InputError(f"{path.name}: not a VAD object ({exc})") from None


def build_dataset(config: GestureModelConfig, wav_dir: Path | None = None, bvh_dir: Path | None = None,
                  variants: int = 4, seed: int = 0, timeline_dropout: float = 0.3) -> tuple[Windows, dict]:
    """Windows from teacher motion on the WAVs in wav_dir and from the BVH + WAV pairs in bvh_dir."""
    from tqdm import tqdm

    rng = np.random.default_rng(seed)
    parts: list[Windows] = []
    info = {"teacher_clips": 0, "teacher_seconds": 0.0, "bvh_clips": 0, "bvh_seconds": 0.0, "timelines": 0,
            "speech_vads": 0}
    stride = config.window - config.overlap
    wavs = sorted(p for p in wav_dir.iterdir() if p.suffix.lower() in AUDIO_EXT) if wav_dir else []
    for wav in tqdm(wavs, desc="teacher clips", disable=not wavs):
        audio, sr = load_audio(wav)
        tl_path, vad_path = wav.with_suffix(".json"), wav.with_suffix(".vad.json")
        try:
            timeline = Timeline.from_json(tl_path) if tl_path.is_file() else None
            feat = prosody_features(audio, sr, config.fps, timeline=timeline)
        except InputError as exc:
            raise InputError(f"{wav.name} / {tl_path.name}: {exc}") from None
        speech_vad = read_vad_json(vad_path) if vad_path.is_file() else None
        with_stress, without = feat.matrix(), feat.with_timeline(None).matrix()
        info["timelines"] += timeline is not None
        info["speech_vads"] += speech_vad is not None
        for k in range(variants):
            vad = speech_vad if k == 0 and speech_vad is not None else VAD(*rng.uniform(-1, 1, 3).round(3))
            m = teacher_motion(feat, vad, seed=int(rng.integers(0, 2**31 - 1)), timeline=timeline)
            # The motion keeps the timeline's beats either way; blanking the channel teaches the model to
            # find them from the audio when no timeline is given.
            cond = without if rng.random() < timeline_dropout else with_stress
            parts.append(clip_windows(motion_to_array(m, root_scale=config.root_scale), cond,
                                      vad_per_frame(vad, m.num_frames, config.fps), config.window, stride))
            info["teacher_clips"] += 1
            info["teacher_seconds"] += m.duration
    bvhs = sorted(bvh_dir.glob("*.bvh")) if bvh_dir else []
    for bvh in tqdm(bvhs, desc="BVH clips", disable=not bvhs):
        wav = next((bvh.with_suffix(e) for e in AUDIO_EXT if bvh.with_suffix(e).is_file()), None)
        if wav is None:
            log.warning("%s has no audio beside it; skipped", bvh.name)
            continue
        m = resample_motion(load_bvh(bvh), config.fps)
        audio, sr = load_audio(wav)
        feat = prosody_features(audio, sr, config.fps, duration=m.duration)
        vad_path = bvh.with_suffix(".vad.json")
        vad = read_vad_json(vad_path) if vad_path.is_file() else VAD.neutral()
        parts.append(clip_windows(motion_to_array(m, root_scale=config.root_scale), feat.matrix(),
                                  vad_per_frame(vad, m.num_frames, config.fps), config.window, stride))
        info["bvh_clips"] += 1
        info["bvh_seconds"] += m.duration
    if not parts:
        raise InputError("no training data: give --wav-dir with audio and/or --bvh-dir with BVH + WAV pairs")
    data = _concat(parts)
    info["windows"] = len(data)
    return data, info


def train(data: Windows, config: GestureModelConfig, steps: int, batch: int = 64, lr: float = 2e-4,
          seed: int = 0, checkpoint: Callable[[GestureDenoiser, int, list[float]], None] | None = None,
          save_every: int = 0, acc: Any = None) -> tuple[GestureDenoiser, list[float]]:
    """Fit a denoiser on the windows; returns the model (eval mode) and the loss per step.

    With `checkpoint` and `save_every`, checkpoint(model, step, losses) runs every `save_every` steps. `acc`: an
    avatar.training.accelerator (device, mixed precision, gradient accumulation: a step is then that many
    batches); None: the defaults.
    """
    from tqdm import tqdm

    from avatar.training import accelerator, accumulated_step, finish

    acc = acc if acc is not None else accelerator()

    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    model = GestureDenoiser(config)
    x = torch.from_numpy(data.x)
    mean = x.reshape(-1, x.shape[-1]).mean(0)
    std = x.reshape(-1, x.shape[-1]).std(0).clamp_min(0.05)  # constant channels (e.g. toes) must not blow up
    model.pose_mean.copy_(mean)
    model.pose_std.copy_(std)
    x = x.to(acc.device)
    audio, vad = torch.from_numpy(data.audio).to(acc.device), torch.from_numpy(data.vad).to(acc.device)
    sched = make_scheduler(config)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    warm = max(1, min(500, steps // 10))
    def lr_at(s: int) -> float:  # linear warm-up, then cosine decay
        return min(1.0, (s + 1) / warm) * 0.5 * (1 + math.cos(math.pi * min(1.0, s / max(1, steps))))

    sch = torch.optim.lr_scheduler.LambdaLR(opt, lr_at)  # counts optimizer steps (each `acc`'s batches)
    net, opt = acc.prepare(model, opt)

    def batch_loss() -> torch.Tensor:
        idx = torch.randint(0, len(data), (min(batch, len(data)),), generator=gen).to(acc.device)
        return diffusion_loss(net, sched, x[idx], audio[idx], vad[idx], generator=gen)

    model.train()
    losses: list[float] = []
    for step in tqdm(range(steps), desc="training", mininterval=5.0):
        losses.append(accumulated_step(acc, net, opt, sch, batch_loss))
        if not math.isfinite(losses[-1]):
            raise RuntimeError(f"training diverged at step {step} (loss {losses[-1]})")
        if checkpoint is not None and save_every > 0 and (step + 1) % save_every == 0 and step + 1 < steps:
            model.eval()
            checkpoint(model, step + 1, losses)
            model.train()
    finish(acc, net)
    model.eval()
    return model, losses


def model_card(model: GestureDenoiser, info: dict, command: str, losses: list[float], seconds: float) -> str:
    """The README.md written beside trained weights."""
    c = model.config
    tail = float(np.mean(losses[-100:])) if losses else float("nan")
    return f"""# Gesture denoiser (avatar-engine)

Transformer denoiser over {c.window}-frame windows ({c.window / c.fps:.1f} s at {c.fps:g} fps) of 6-D joint rotations
for {len(c.joints)} VRM humanoid bones plus the hips displacement, conditioned on prosody
({", ".join(c.audio_features)}) and per-frame VAD with classifier-free guidance (VAD dropout {c.cfg_dropout}).
Sampled with DDIM (our NumPy port: inference loads these weights without torch) or DPM-Solver++ (diffusers);
see docs/gesture.md.

- Parameters: {model.num_parameters():,} ({model.num_parameters() * 4 / 1e6:.2f} MB as float32); layers {c.layers},
  width {c.d_model}, heads {c.heads}, feed-forward {c.ff}
- Training data: {info["teacher_clips"]} teacher clips ({info["teacher_seconds"]:.0f} s: the procedural teacher of
  avatar.gesture.teacher on our own speech; {info["timelines"]} audio files with a timeline, {info["speech_vads"]}
  with the VAD they were spoken with, the other variants at random VAD) and {info["bvh_clips"]} captured BVH clips
  ({info["bvh_seconds"]:.0f} s); {info["windows"]} windows.
- Training: {len(losses)} steps, {seconds / 60:.1f} min; final loss (mean of the last 100 steps) {tail:.4f}
- Command: `{command}`
- Licence: Apache-2.0 (code and weights); captured data keeps its own licence.
- Metrics: `.venv/bin/python bench/gesture_bench.py --model <this folder>`
"""


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    p = argparse.ArgumentParser(prog="python -m avatar.gesture.train", description=__doc__.split("\n\n")[0])
    p.add_argument("--wav-dir", type=Path)
    p.add_argument("--bvh-dir", type=Path)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--variants", type=int, default=4, help="teacher motions per audio clip")
    p.add_argument("--steps", type=int, default=20000)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--lr", type=float, default=2e-4)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--timeline-dropout", type=float, default=0.3,
                   help="fraction of teacher variants trained without the timeline's stress channel")
    p.add_argument("--window", type=int, default=60)
    p.add_argument("--overlap", type=int, default=10)
    p.add_argument("--d-model", type=int, default=128)
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--ff", type=int, default=256)
    p.add_argument("--save-every", type=int, default=0, help="also save the weights every N steps (0: only at the end)")
    from avatar.training import accelerator_from_args, add_train_args

    add_train_args(p)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if not 1 <= args.steps <= 10_000_000 or args.batch < 1 or not 0 < args.overlap < args.window:
        p.error("need steps >= 1, batch >= 1 and 0 < overlap < window")
    try:
        acc = accelerator_from_args(args)
    except ValueError as exc:
        p.error(str(exc))
    if not 0.0 <= args.timeline_dropout <= 1.0:
        p.error("--timeline-dropout must be in [0, 1]")
    for d in (args.wav_dir, args.bvh_dir):
        if d is not None and not d.is_dir():
            p.error(f"not a folder: {d}")
    config = GestureModelConfig(window=args.window, overlap=args.overlap, d_model=args.d_model, layers=args.layers,
                                heads=args.heads, ff=args.ff,
                                # teacher clips carry the body-language layer; captured BVH clips do not
                                body_language=args.bvh_dir is None)
    t0 = time.perf_counter()
    data, info = build_dataset(config, args.wav_dir, args.bvh_dir, args.variants, args.seed, args.timeline_dropout)
    log.info("%d windows (%s)", len(data), info)
    command = ".venv/bin/python -m avatar.gesture.train " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:]))

    def checkpoint(model: GestureDenoiser, step: int, so_far: list[float]) -> None:
        card = model_card(model, info, command, so_far, time.perf_counter() - t0)
        model.save_pretrained(args.out, card=card + f"\n**Checkpoint at step {step} of {args.steps}.**\n",
                              onnx=False)  # the final save exports model.onnx
        log.info("checkpoint: saved %s at step %d", args.out, step)

    model, losses = train(data, config, args.steps, args.batch, args.lr, args.seed, checkpoint=checkpoint,
                          save_every=args.save_every, acc=acc)
    model.save_pretrained(args.out, card=model_card(model, info, command, losses, time.perf_counter() - t0))
    log.info("saved %s (final loss %.4f)", args.out, float(np.mean(losses[-100:])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
