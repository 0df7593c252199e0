"""Train the face denoiser on teacher motion for our own speech corpus and/or on Live Link Face captures.

    avatar train face --data DIR [--livelink-dir DIR] --out weights/face \\
        [--steps 20000] [--batch 32] [--lr 3e-4] [--seed 0] [--threads 2] [--copies 2] \\
        [--mixed-precision no|fp16|bf16] [--grad-accum N] [--cpu]
    (the same as .venv/bin/python -m avatar.face.train ...)

Data:
- `--data`: a corpus folder of `<id>.wav` + `<id>.json` (Timeline) + `<id>.vad.json` (avatar.tts.corpus
  writes it). Targets are the teacher's face (face.teacher) for the clip's exact timeline and VAD, computed
  from the clean audio; the model's input features are computed AFTER augmenting the audio (random gain,
  spectral tilt, noise at 20-40 dB SNR, resampling through 8/16/22.05 kHz), `--copies` times per clip with
  different augmentations and teacher seeds, so the model does not learn one synthesizer's signal.
- `--livelink-dir`: `<stem>.csv` (Live Link Face) + `<stem>.wav` takes, with `<stem>.vad.json` when known
  (else neutral); real recordings are used as they are (no augmentation).
Motion is normalised per channel (face.data.motion_stats, stored in the config); the denoiser trains with
face.model.diffusion_loss (VAD dropout for classifier-free guidance is inside it), AdamW with linear warm-up
and cosine decay. The model card written beside the weights records data, licence, command and final loss.
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
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from avatar.errors import InputError
from avatar.types import VAD, Speech, Timeline

if TYPE_CHECKING:
    from avatar.face.model import FaceDenoiser

log = logging.getLogger(__name__)

#: Rates the augmentation may pass the audio through (telephone, wideband, the engine's own).
AUGMENT_RATES = (8000, 16000, 22050)


@dataclass
class Windows:
    """Training windows: normalised-to-be motion [N, W, D], audio features [N, W, F], mean VAD [N, 3]."""

    motion: np.ndarray
    features: np.ndarray
    vad: np.ndarray

    def __len__(self) -> int:
        return int(self.motion.shape[0])


def augment_audio(audio: np.ndarray, sr: int, rng: np.random.Generator) -> np.ndarray:
    """Random gain, spectral tilt, noise at 20-40 dB SNR and a trip through 8/16/22.05 kHz; same length out."""
    from scipy.signal import lfilter

    from avatar.audio import resample

    x = np.asarray(audio, dtype=np.float64)
    n = x.size
    # Tilt: a first-order pre/de-emphasis with a random coefficient changes the spectral slope by a few dB
    # per octave without touching pitch, like a different microphone or voice quality.
    k = rng.uniform(-0.5, 0.5)
    x = lfilter([1.0, -k], [1.0], x) if k >= 0 else lfilter([1.0], [1.0, k], x) * (1 + k)
    mid = int(rng.choice(AUGMENT_RATES))
    if mid != sr:
        x = resample(resample(x.astype(np.float32), sr, mid), mid, sr).astype(np.float64)
    x = x[:n] if x.size >= n else np.pad(x, (0, n - x.size))
    power = float(np.mean(x * x)) + 1e-12
    snr_db = rng.uniform(20.0, 40.0)
    x = x + rng.standard_normal(n) * math.sqrt(power / 10 ** (snr_db / 10))
    x *= 10 ** (rng.uniform(-12.0, 6.0) / 20)
    peak = float(np.max(np.abs(x))) if n else 0.0
    if peak > 1.0:  # a recording would have been levelled, not clipped
        x /= peak
    return x.astype(np.float32)


def _read_vad(path: Path) -> VAD:
    if not path.is_file():
        return VAD.neutral()
    try:
        return VAD(**json.loads(path.read_text(encoding="utf-8")))
    except (ValueError, TypeError) as exc:
        raise InputError(f"{path.name}: not a VAD object ({exc})") from None


def corpus_examples(data_dir: Path, fps: float, copies: int, seed: int, progress: bool = True) -> tuple[list, dict]:
    """Teacher examples (face.data.Example) for every clip with a timeline in data_dir, features from augmented audio."""
    from tqdm import tqdm

    from avatar.audio import load_audio
    from avatar.face.data import Example, teacher_example
    from avatar.face.features import compute_features
    from avatar.tts.corpus import NEURAL_VOICE, read_manifest

    wavs = sorted(p for p in data_dir.glob("*.wav") if p.with_suffix(".json").is_file())
    info = {"clips": 0, "seconds": 0.0, "skipped": 0}
    manifest = read_manifest(data_dir / "manifest.jsonl")
    out: list[Example] = []
    for ci, wav in enumerate(tqdm(wavs, desc="teacher clips", unit="clip", disable=not progress or not wavs)):
        try:
            audio, sr = load_audio(wav)
            timeline = Timeline.from_json(wav.with_suffix(".json"))
            vad = _read_vad(wav.parent / f"{wav.stem}.vad.json")
        except InputError as exc:
            log.warning("skipped %s: %s", wav.name, exc)
            info["skipped"] += 1
            continue
        # The timeline's length is the speech's: trust the audio where they differ by rounding.
        timeline = timeline.model_copy(update={"duration": audio.size / sr})
        speech = Speech(audio=audio, sample_rate=sr, timeline=timeline)
        for c in range(copies):
            rng = np.random.default_rng([seed, ci, c])
            ex = teacher_example(speech, vad, fps=fps, seed=int(rng.integers(2**31 - 1)))
            feats = compute_features(augment_audio(audio, sr, rng), sr, fps=fps, num_frames=ex.num_frames)
            out.append(Example(features=feats.by_frame(), motion=ex.motion, vad=ex.vad, fps=fps))
        info["clips"] += 1
        info["seconds"] += audio.size / sr
        info["neural"] = info.get("neural", 0) + int(manifest.get(wav.stem, {}).get("voice") == NEURAL_VOICE)
    return out, info


def livelink_examples(folder: Path, fps: float) -> tuple[list, dict]:
    """Examples from Live Link Face `<stem>.csv` + `<stem>.wav` (+ `<stem>.vad.json`) takes."""
    from avatar.face.data import livelink_example

    info = {"takes": 0, "seconds": 0.0}
    out = []
    for csv in sorted(folder.glob("*.csv")):
        wav = csv.with_suffix(".wav")
        if not wav.is_file():
            log.warning("%s has no %s beside it; skipped", csv.name, wav.name)
            continue
        ex = livelink_example(csv, wav, _read_vad(folder / f"{csv.stem}.vad.json"), fps=fps)
        out.append(ex)
        info["takes"] += 1
        info["seconds"] += ex.num_frames / fps
    return out, info


def make_windows(examples: list, window: int, hop: int, mean: np.ndarray, std: np.ndarray) -> Windows:
    """Cut examples into windows (face.data.windows) and normalise the motion with (mean, std)."""
    from avatar.face.data import windows

    m, f, v = [], [], []
    for ex in examples:
        for feats, motion, vad in windows(ex, window, hop):
            f.append(feats)
            m.append((motion - mean) / std)
            v.append(vad)
    return Windows(np.stack(m).astype(np.float32), np.stack(f).astype(np.float32), np.stack(v).astype(np.float32))


def train(data: Windows, model: FaceDenoiser, steps: int, batch: int = 32, lr: float = 3e-4, seed: int = 0,
          progress: bool = True, checkpoint: Callable[[int, list[float]], None] | None = None,
          save_every: int = 0, acc: Any = None) -> list[float]:
    """Fit the denoiser on the windows (AdamW, warm-up then cosine); returns the loss per step.

    With `checkpoint` and `save_every`, checkpoint(step, losses) is called every `save_every` steps, so a run
    stopped early still leaves usable weights. `acc`: an avatar.training.accelerator (device, mixed precision,
    gradient accumulation: a step is then that many batches); None: the defaults, on the CPU or the GPU found.
    """
    import torch
    from tqdm import tqdm

    from avatar.face.model import diffusion_loss
    from avatar.training import accelerator, accumulated_step, finish

    acc = acc if acc is not None else accelerator()
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    motion, feats, vad = (torch.from_numpy(a).to(acc.device) for a in (data.motion, data.features, data.vad))
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    warm = max(1, min(500, steps // 10))

    def lr_at(s: int) -> float:  # linear warm-up, then cosine decay to 0
        return min(1.0, (s + 1) / warm) * 0.5 * (1 + math.cos(math.pi * min(1.0, s / max(1, steps))))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_at)  # counts optimizer steps (each `acc`'s batches)
    net, opt = acc.prepare(model, opt)

    def batch_loss() -> torch.Tensor:
        idx = torch.randint(0, len(data), (min(batch, len(data)),), generator=gen).to(acc.device)
        return diffusion_loss(net, motion[idx], feats[idx], vad[idx], generator=gen)

    model.train()
    losses: list[float] = []
    bar = tqdm(range(steps), desc="training", unit="step", mininterval=2.0, disable=not progress)
    for step in bar:
        losses.append(accumulated_step(acc, net, opt, sched, batch_loss))
        if not math.isfinite(losses[-1]):
            raise RuntimeError(f"training diverged at step {step} (loss {losses[-1]})")
        if step % 500 == 0 or step == steps - 1:
            log.info("step %d loss %.4f lr %.2e", step, losses[-1], sched.get_last_lr()[0])
        if checkpoint is not None and save_every > 0 and (step + 1) % save_every == 0 and step + 1 < steps:
            model.eval()
            checkpoint(step + 1, losses)
            model.train()
    finish(acc, net)
    model.eval()
    return losses


def model_card(model: FaceDenoiser, info: dict, command: str, losses: list[float], seconds: float) -> str:
    """The README.md written beside trained weights."""
    from avatar.tts.corpus import NEURAL_VOICE

    c = model.config
    tail = float(np.mean(losses[-100:])) if losses else float("nan")
    n = model.num_parameters()
    neural = f", {info['neural']} clips by the Piper voice {NEURAL_VOICE}" if info.get("neural") else ""
    init = (f"\n- Fine-tuned from `{info['init']}` (its card, replaced by this one, gave that model's data and "
            "command; the motion normalisation is this data's)") if info.get("init") else ""
    return f"""# Face motion denoiser (avatar-engine)

1-D conv diffusion denoiser (avatar.face.model) over {c.window}-frame windows ({c.window / c.fps:.1f} s at {c.fps:g} fps)
of the {c.motion_dim} FaceMotion channels (52 ARKit blendshapes, head yaw/pitch/roll, eye gaze), conditioned on
audio features (80 log-mel + energy + voicing + F0, two feature frames per animation frame) and VAD with
classifier-free guidance (VAD dropout {c.cfg_dropout:g}); sampled with DDIM (our NumPy port, no torch at run time) or
DPM-Solver++ (diffusers). With a
phoneme timeline the lips are refined from it (avatar.face.generate). See docs/face.md.

- Parameters: {n:,} ({n * 4 / 1e6:.2f} MB as float32); hidden {c.hidden}, {c.blocks} blocks, kernel {c.kernel}
- Training data: {info["clips"]} clips ({info["seconds"] / 60:.1f} min) of our own speech corpus
  (avatar.tts.corpus: EmoBank sentences, random VAD, eSpeak NG's English voices and variants{neural}), x{info["copies"]}
  augmentations each (gain, spectral tilt, noise 20-40 dB SNR, resampling via 8/16/22.05 kHz); targets from the
  rule-based teacher (avatar.face.teacher) on the exact phoneme timelines. Live Link Face takes:
  {info["takes"]} ({info["livelink_seconds"] / 60:.1f} min). {info["windows"]} windows in all.
- Training: {len(losses)} steps, batch {info["batch"]}, lr {info["lr"]:g} (AdamW, warm-up + cosine), seed
  {info["seed"]}, {seconds / 60:.1f} min; final loss (mean of the last 100 steps) {tail:.4f}
- Command: `{command}`{init}
- Licence: Apache-2.0 (code and weights). The corpus text is from EmoBank (CC-BY-SA 4.0); no text is stored
  in the weights. Captured Live Link data keeps its own licence.
- Limits: the targets are a rule-based teacher, so the model learns that teacher's face, not a real person's.
"""


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    p = argparse.ArgumentParser(prog="python -m avatar.face.train", description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, help="corpus folder (avatar.tts.corpus)")
    p.add_argument("--livelink-dir", type=Path, help="Live Link Face CSV + WAV takes")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--steps", type=int, default=20000)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--lr", type=float, default=3e-4)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    p.add_argument("--copies", type=int, default=2, help="augmented copies of each corpus clip")
    p.add_argument("--hidden", type=int, default=128)
    p.add_argument("--blocks", type=int, default=4)
    p.add_argument("--window", type=int, default=120)
    p.add_argument("--overlap", type=int, default=30)
    p.add_argument("--prediction", choices=("epsilon", "sample", "v_prediction"), default="sample",
                   help="what the denoiser predicts: the noise, the clean motion (x0) or the velocity")
    p.add_argument("--save-every", type=int, default=0, help="also save the weights every N steps (0: only at the end)")
    p.add_argument("--init", type=Path, help="fine-tune this trained face model folder (its architecture is kept; "
                                             "the motion normalisation is this data's) instead of starting afresh")
    from avatar.training import accelerator_from_args, add_train_args

    add_train_args(p)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.data is None and args.livelink_dir is None:
        p.error("give --data and/or --livelink-dir")
    for d in (args.data, args.livelink_dir):
        if d is not None and not d.is_dir():
            p.error(f"not a folder: {d}")
    if not 1 <= args.steps <= 10_000_000 or args.batch < 1 or not 0 < args.overlap < args.window or args.copies < 1:
        p.error("need steps >= 1, batch >= 1, copies >= 1 and 0 < overlap < window")
    try:
        acc = accelerator_from_args(args)
    except ValueError as exc:
        p.error(str(exc))
    if not (math.isfinite(args.lr) and 0 < args.lr < 1):
        p.error("--lr must be in (0, 1)")

    import torch

    from avatar.errors import ModelError
    from avatar.face.data import motion_stats
    from avatar.face.model import FaceDenoiser, FaceDiffusionConfig

    if args.threads > 0:
        torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    try:
        init = FaceDenoiser.from_pretrained(args.init) if args.init is not None else None
        config = init.config if init is not None else FaceDiffusionConfig(
            hidden=args.hidden, blocks=args.blocks, window=args.window, overlap=args.overlap,
            prediction_type=args.prediction)
        examples, info = corpus_examples(args.data, config.fps, args.copies, args.seed) if args.data else ([], {
            "clips": 0, "seconds": 0.0, "skipped": 0})
        ll, ll_info = livelink_examples(args.livelink_dir, config.fps) if args.livelink_dir else ([], {"takes": 0, "seconds": 0.0})
        examples += ll
        if not examples:
            raise InputError("no training data: --data needs <id>.wav + <id>.json pairs, --livelink-dir <stem>.csv + .wav")
        # This data's normalisation, also when fine-tuning: a new teacher can move a channel several times as
        # much as the old one did (the first steps adapt the weights to the new scale).
        mean, std = motion_stats(examples)
        config.motion_mean, config.motion_std = mean.tolist(), std.tolist()
        data = make_windows(examples, config.window, config.window - config.overlap, mean, std)
        info.update(copies=args.copies, takes=ll_info["takes"], livelink_seconds=ll_info["seconds"], windows=len(data),
                    batch=args.batch, lr=args.lr, seed=args.seed, init=args.init)
        log.info("%d windows from %d clips and %d takes", len(data), info["clips"], info["takes"])
        model = init if init is not None else FaceDenoiser(config)
        command = ".venv/bin/python -m avatar.face.train " + " ".join(
            shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv))

        def checkpoint(step: int, so_far: list[float]) -> None:
            card = model_card(model, info, command, so_far, time.perf_counter() - t0)
            model.save_pretrained(args.out, card=card + f"\n**Checkpoint at step {step} of {args.steps}.**\n",
                                  onnx=False)  # the final save exports model.onnx
            log.info("checkpoint: saved %s at step %d", args.out, step)

        losses = train(data, model, args.steps, args.batch, args.lr, args.seed, checkpoint=checkpoint,
                       save_every=args.save_every, acc=acc)
    except (InputError, ModelError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2 if isinstance(exc, InputError) else 1
    model.save_pretrained(args.out, card=model_card(model, info, command, losses, time.perf_counter() - t0))
    log.info("saved %s (final loss %.4f, %d parameters)", args.out, float(np.mean(losses[-100:])),
             model.num_parameters())
    return 0


if __name__ == "__main__":
    sys.exit(main())
