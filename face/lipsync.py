"""Audio-only lip sync: a small network reads the viseme of every frame from the audio.

DREAM-Talk (Zhang et al. 2023) splits the talking face in two: EmoDiff (our `model.py`) makes expression, head
pose and the rough mouth by diffusion, and a lip refinement network makes the lips follow the speech. With a
phoneme timeline we refine from the timeline itself (`generate.refine_lips`); for audio alone this module is
the refinement network's front end: a dilated 1-D conv net over the same log-mel features predicts one of the
15 viseme classes per frame. The mouth is the same coarticulation model read softly: every frame pulls
towards each viseme in proportion to its probability (`visemes.posterior_mouth_curves`), and the runs of
argmax frames become an estimated timeline whose p/b/m seal the lips (`visemes.closure_weights`). The diffusion model on its own
only follows the mouth loosely (openness r about 0.46 on held-out speech, 15 % of p/b/m sealed), because
bilabial closures are short and the denoiser is trained for the whole face.

    python -m avatar.face.lipsync --data data/corpus --out weights/lipsync [--steps 3000]

Training pairs: corpus clips (`avatar.tts.corpus`), features of the augmented audio (`train.augment_audio`),
labels the viseme of the phoneme at each frame's centre (silence between phonemes), class-balanced cross
entropy (square-root inverse frequency). Inference runs the saved weights without torch
(`face.viseme_net`: `VisemeNetOnnx`, `viseme_posteriors`, `estimate_timeline`, re-exported here).
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import shlex
import sys
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from avatar.errors import InputError, ModelError
from avatar.pretrained import PretrainedMixin
from avatar.types import VISEMES, Timeline

from .viseme_net import (LipSyncConfig, VisemeNetOnnx, check_config, check_model_dir,  # noqa: F401 - re-exported
                         estimate_timeline, layer_dilation, load_viseme_net, viseme_posteriors)

log = logging.getLogger(__name__)


class VisemeNet(PretrainedMixin, nn.Module):
    """Per-frame viseme logits [B, T, 15] from audio features [B, T, audio_dim] (non-causal, ~2 s context)."""

    config_class = LipSyncConfig
    model_name = "lip sync"

    def __init__(self, config: LipSyncConfig | None = None) -> None:
        super().__init__()
        self.config = config or LipSyncConfig()
        c = self.config
        check_config(c)
        self.inp = nn.Sequential(nn.LayerNorm(c.audio_dim), nn.Linear(c.audio_dim, c.hidden))
        self.convs = nn.ModuleList(
            nn.Conv1d(c.hidden, c.hidden, c.kernel, padding=(c.kernel // 2) * layer_dilation(i),
                      dilation=layer_dilation(i))
            for i in range(c.layers))
        self.norms = nn.ModuleList(nn.GroupNorm(8, c.hidden) for _ in range(c.layers))
        self.out = nn.Linear(c.hidden, len(VISEMES))

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        """audio [B, T, audio_dim] -> logits [B, T, 15]."""
        h = self.inp(audio).transpose(1, 2)
        for conv, norm in zip(self.convs, self.norms):
            h = h + conv(torch.nn.functional.silu(norm(h)))
        return self.out(h.transpose(1, 2))

    #: The exported graph's inputs (face.viseme_net.VisemeNetOnnx feeds them).
    onnx_inputs = ("audio",)
    onnx_outputs = ("logits",)
    onnx_dynamic = {"audio": {0: "batch", 1: "frames"}}

    def onnx_example(self, frames: int = 32) -> tuple[torch.Tensor, ...]:
        """Example inputs for export: one clip of `frames` frames."""
        return (torch.randn(1, frames, self.config.audio_dim, generator=torch.Generator().manual_seed(frames)),)

    def default_card(self) -> str:
        """The card for weights with no training record."""
        return "# Viseme network (avatar.face.lipsync)\n\nUntrained weights: train with `python -m avatar.face.lipsync`.\n"


def load_lipsync(folder: str | os.PathLike[str] | None = None) -> VisemeNet:
    """Load the torch viseme network, to train on or compare with (inference: viseme_net.load_viseme_net)."""
    from avatar.weights import resolve

    p = resolve("lipsync", folder)
    if not (p / "model.safetensors").is_file():
        raise ModelError(f"no lip sync checkpoint in {p}: train it with `python -m avatar.face.lipsync --data "
                         f"data/corpus --out {p}`")
    return VisemeNet.from_pretrained(p).eval()


def frame_labels(timeline: Timeline, n: int, fps: float) -> np.ndarray:
    """The viseme class index at each frame's centre (0, 'sil', where no phoneme is)."""
    t = (np.arange(n) + 0.5) / fps
    out = np.zeros(n, dtype=np.int64)
    for p in timeline.phonemes:
        out[(t >= p.start) & (t < p.end)] = VISEMES.index(p.viseme)
    return out


#: Speed perturbation factors (Ko et al. 2015, "Audio augmentation for speech recognition"): resampling plays a
#: clip faster or slower, which moves pitch, formants and rate together, like a smaller or larger, faster or slower
#: speaker; the labels follow the same time warp.
SPEED_FACTORS = (0.9, 0.95, 1.05, 1.1)


def speed_perturb(audio: np.ndarray, factor: float) -> np.ndarray:
    """`audio` played `factor` times faster (pitch and formants up by the same factor), same sample rate."""
    from fractions import Fraction

    from avatar.audio import resample

    if factor == 1.0:
        return np.asarray(audio, dtype=np.float32)
    frac = Fraction(factor).limit_denominator(100)  # sr -> sr / factor: a small polyphase ratio
    return resample(np.asarray(audio, dtype=np.float32), frac.numerator, frac.denominator)


#: Vocal tract length perturbation (Jaitly & Hinton 2013, VTLP): each training window's formants are scaled by a
#: factor drawn log-uniformly in [1 / WARP_MAX, WARP_MAX], independently of pitch (speed perturbation moves both).
WARP_MAX = 1.15
#: Each training window's F0 feature is shifted by up to this many octaves either way (pitch without formants).
F0_SHIFT_OCTAVES = 0.5
#: Up to this many adjacent mel bands of a window are masked (SpecAugment's frequency mask, Park et al. 2019).
MEL_MASK_MAX = 8


def mel_warp_matrix(alpha: float, n_mels: int = 80, fmin: float = 20.0, fmax: float = 8000.0) -> np.ndarray:
    """[n_mels, n_mels] linear map of a log-mel frame to the same sound with formants scaled by `alpha`.

    Output band i reads the input at its centre frequency / alpha (linear interpolation between band centres,
    clamped at the ends): alpha > 1 moves spectral peaks up, as a shorter vocal tract does."""
    from avatar.face.features import _hz_to_mel, _mel_to_hz

    centres_mel = np.linspace(_hz_to_mel(fmin), _hz_to_mel(fmax), n_mels + 2)[1:-1]
    src = np.interp(_hz_to_mel(_mel_to_hz(centres_mel) / float(alpha)), centres_mel, np.arange(n_mels, dtype=np.float64))
    lo = np.floor(src).astype(np.int64)
    hi = np.minimum(lo + 1, n_mels - 1)
    frac = src - lo
    w = np.zeros((n_mels, n_mels), dtype=np.float32)
    rows = np.arange(n_mels)
    np.add.at(w, (rows, lo), 1.0 - frac)
    np.add.at(w, (rows, hi), frac)
    return w


def spec_augment(x: np.ndarray, rng: np.random.Generator, n_mels: int = 80) -> np.ndarray:
    """A window of per-frame features [T, per_frame * (n_mels + 3)] (`AudioFeatures.by_frame`) as another
    speaker would give it: formants warped (VTLP, `WARP_MAX`), voiced F0 shifted (`F0_SHIFT_OCTAVES`) and a
    random band of up to `MEL_MASK_MAX` mel bands set to each frame's mean level."""
    dim = n_mels + 3
    if x.ndim != 2 or x.shape[1] % dim:
        raise ValueError(f"features must be [T, k * {dim}], got {x.shape}")
    y = x.reshape(x.shape[0], -1, dim).copy()
    alpha = float(np.exp(rng.uniform(-np.log(WARP_MAX), np.log(WARP_MAX))))
    y[..., :n_mels] = y[..., :n_mels] @ mel_warp_matrix(alpha, n_mels).T
    lf0 = y[..., n_mels + 2]
    y[..., n_mels + 2] = np.where(lf0 != 0.0, lf0 + rng.uniform(-F0_SHIFT_OCTAVES, F0_SHIFT_OCTAVES), 0.0)
    width = int(rng.integers(0, MEL_MASK_MAX + 1))
    if width:
        start = int(rng.integers(0, n_mels - width + 1))
        y[..., start:start + width] = y[..., :n_mels].mean(axis=-1, keepdims=True)
    return y.reshape(x.shape).astype(np.float32)


def voice_variant(voice: str) -> str:
    """The eSpeak NG variant of a corpus voice name ("en-us+klatt2" -> "klatt2"; "en-us" or "joe" -> "")."""
    return voice.partition("+")[2]


def _clip_voices(folder: Path, ids: Sequence[str]) -> dict[str, str]:
    """Clip id -> voice name for `ids`, from a corpus folder's manifest.jsonl (`avatar.tts.corpus`); InputError
    when the manifest is missing or lacks a clip (its voice unknown, it could leak a dev voice into training)."""
    from avatar.tts.corpus import read_manifest

    records = read_manifest(folder / "manifest.jsonl")
    missing = [i for i in ids if i not in records]
    if missing:
        raise InputError(f"{folder}/manifest.jsonl has no record of {len(missing)} clip(s) (e.g. {missing[0]}): "
                         "cannot tell their voices; finish or resume the corpus run")
    return {i: str(records[i].get("voice", "")) for i in ids}


def _examples(data: Path | list[Path], copies: int, seed: int, fps: float,
              speed: bool = False, exclude: Sequence[str] = ()) -> tuple[np.ndarray, np.ndarray, dict]:
    """Features and frame labels of every clip in `data` (one corpus folder or several), `copies` augmented
    copies each (`speed`: every copy but the first is also speed-perturbed by one of SPEED_FACTORS).

    `exclude`: eSpeak NG variants (`voice_variant`) whose clips are left out, e.g. voices kept for a dev set."""
    from tqdm import tqdm

    from avatar.audio import load_audio
    from avatar.face.features import compute_features, frames_for
    from avatar.face.train import augment_audio

    folders = [data] if isinstance(data, Path) else list(data)
    wavs = [p for d in folders for p in sorted(d.glob("*.wav")) if p.with_suffix(".json").is_file()]
    if exclude:
        voices = {d: _clip_voices(d, [p.stem for p in wavs if p.parent == d]) for d in folders}
        found = {voice_variant(v) for vs in voices.values() for v in vs.values()}
        unknown = sorted(set(exclude) - found)
        if unknown:
            raise InputError(f"--exclude-variants: no clip of {', '.join(unknown)} in {', '.join(map(str, folders))}")
        left = [p for p in wavs if voice_variant(voices[p.parent][p.stem]) not in set(exclude)]
        log.info("left out %d clips of the variants %s", len(wavs) - len(left), ", ".join(exclude))
        wavs = left
    feats, labels, secs = [], [], 0.0
    for ci, wav in enumerate(tqdm(wavs, desc="lip sync clips", unit="clip", disable=not wavs)):
        try:
            audio, sr = load_audio(wav)
            tl = Timeline.from_json(wav.with_suffix(".json"))
        except InputError as exc:
            log.warning("skipped %s: %s", wav.name, exc)
            continue
        for c in range(copies):
            rng = np.random.default_rng([seed, ci, c])
            factor = float(rng.choice(SPEED_FACTORS)) if speed and c > 0 else 1.0
            x = speed_perturb(audio, factor)
            n = frames_for(x.size / sr, fps)
            # Frame i of the faster clip is at time (i + 0.5) / fps there, factor x that in the original.
            feats.append(compute_features(augment_audio(x, sr, rng), sr, fps=fps, num_frames=n).by_frame())
            labels.append(frame_labels(tl, n, fps / factor))
        secs += audio.size / sr
    if not feats:
        raise InputError(f"no <id>.wav + <id>.json clips in {', '.join(map(str, folders))}")
    return feats, labels, {"clips": len(wavs), "seconds": secs, "copies": copies, "speed": speed,
                           "excluded": list(exclude)}


def train(feats: list[np.ndarray], labels: list[np.ndarray], config: LipSyncConfig, steps: int, batch: int = 32,
          window: int = 150, lr: float = 1e-3, seed: int = 0, acc: Any = None,
          init: VisemeNet | None = None, openness_weight: float = 0.0,
          pp_weight: float = 1.0, spec_aug: bool = False) -> tuple[VisemeNet, list[float]]:
    """Fit the network on random windows of the clips (AdamW, cosine decay); returns it (eval) and the losses.

    `acc`: an avatar.training.accelerator (device, mixed precision, gradient accumulation); None: the defaults.
    `init`: a trained network to fine-tune (its own config is kept) instead of a new one.
    `openness_weight`: weight of the openness term (`openness_loss`) added to the cross entropy.
    `pp_weight`: p/b/m's class weight is multiplied by this (a missed closure shows more than a false one).
    `spec_aug`: every window goes through `spec_augment` (other formants, pitch; a masked band) each time it is drawn."""
    from tqdm import tqdm

    from avatar.training import accelerator, accumulated_step, finish

    acc = acc if acc is not None else accelerator()

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    net = init if init is not None else VisemeNet(config)
    counts = np.bincount(np.concatenate(labels), minlength=len(VISEMES)).astype(np.float64) + 1.0
    weight = torch.tensor((counts.sum() / counts) ** 0.5, dtype=torch.float32)
    weight = weight / weight.mean()
    weight[VISEMES.index("PP")] *= pp_weight
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / 100) * 0.5 * (1 + math.cos(math.pi * s / steps)))
    weight = weight.to(acc.device)
    openness = torch.tensor(VISEME_OPENNESS, dtype=torch.float32, device=acc.device)
    model, opt = acc.prepare(net, opt)

    def batch_loss() -> torch.Tensor:
        xs, ys = [], []
        for i in rng.integers(0, len(feats), batch):
            f, y = feats[i], labels[i]
            if len(f) <= window:  # pad short clips with silence-labelled copies of the last frame
                pad = window - len(f)
                f = np.concatenate([f, np.repeat(f[-1:], pad, axis=0)])
                y = np.concatenate([y, np.zeros(pad, dtype=np.int64)])
                s = 0
            else:
                s = int(rng.integers(0, len(f) - window + 1))
            xs.append(spec_augment(f[s:s + window], rng) if spec_aug else f[s:s + window])
            ys.append(y[s:s + window])
        logits = model(torch.from_numpy(np.stack(xs)).to(acc.device)).reshape(-1, len(VISEMES))
        y = torch.from_numpy(np.stack(ys)).reshape(-1).to(acc.device)
        loss = torch.nn.functional.cross_entropy(logits, y, weight=weight)
        if openness_weight > 0:
            loss = loss + openness_weight * openness_loss(logits, y, openness)
        return loss

    losses: list[float] = []
    net.train()
    for _ in tqdm(range(steps), desc="lip sync training", unit="step", mininterval=2.0):
        losses.append(accumulated_step(acc, model, opt, sched, batch_loss))
    finish(acc, model)
    return net.eval(), losses


def _viseme_openness() -> np.ndarray:
    """Each viseme's target lip opening (jawOpen - mouthClose of its ARKit target) [15]."""
    from avatar.face.visemes import IDX, VISEME_TARGETS

    return (VISEME_TARGETS[:, IDX["jawOpen"]] - VISEME_TARGETS[:, IDX["mouthClose"]]).astype(np.float32)


#: Target lip opening per viseme class (VISEMES order): what the face stage reads from the posteriors.
VISEME_OPENNESS: np.ndarray = _viseme_openness()


def openness_loss(logits: torch.Tensor, labels: torch.Tensor, openness: torch.Tensor) -> torch.Tensor:
    """Mean squared error of the posterior-expected lip opening [N] against the labelled viseme's opening.

    Cross entropy counts every confusion alike; this term makes a confusion cost what it costs the mouth
    (aa for E hardly, aa for PP much), since the face reads the mouth softly from the posteriors."""
    expected = torch.softmax(logits, dim=-1) @ openness
    return torch.mean((expected - openness[labels]) ** 2)


def frame_accuracy(net: VisemeNet, feats: list[np.ndarray], labels: list[np.ndarray]) -> tuple[float, float]:
    """(frame accuracy over all classes, recall of PP frames) on the given clips."""
    right = total = pp_right = pp_total = 0
    with torch.no_grad():
        for f, y in zip(feats, labels):
            pred = net(torch.from_numpy(f)[None])[0].argmax(-1).numpy()
            right += int((pred == y).sum())
            total += len(y)
            pp = y == VISEMES.index("PP")
            pp_right += int((pred[pp] == y[pp]).sum())
            pp_total += int(pp.sum())
    return right / max(total, 1), pp_right / max(pp_total, 1)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    p = argparse.ArgumentParser(prog="python -m avatar.face.lipsync", description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, required=True, nargs="+",
                   help="corpus folder(s) (avatar.tts.corpus); several are read as one")
    p.add_argument("--heldout", type=Path, help="held-out corpus folder, for the accuracy in the card")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--steps", type=int, default=3000)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--copies", type=int, default=1, help="augmented copies of each clip")
    p.add_argument("--speed", action="store_true",
                   help="speed-perturb every copy but the first (x0.9-1.1: pitch, formants and rate; SPEED_FACTORS)")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--init", type=Path, help="fine-tune this trained lip sync folder instead of starting afresh")
    p.add_argument("--pp-weight", type=float, default=1.0,
                   help="multiply the p/b/m class weight of the cross entropy by this")
    p.add_argument("--openness-weight", type=float, default=0.0,
                   help="add this x the squared error of the posterior-expected lip opening to the loss")
    p.add_argument("--spec-aug", action="store_true",
                   help="warp every training window's formants (x0.87-1.15), shift its F0 (+-0.5 octave) and mask "
                        "up to 8 mel bands (spec_augment)")
    p.add_argument("--exclude-variants", nargs="+", default=[], metavar="VARIANT",
                   help="leave out the clips of these eSpeak NG variants (read from each folder's manifest.jsonl), "
                        "e.g. the voices of a dev set")
    p.add_argument("--hidden", type=int, help="width of a network trained afresh (default 128)")
    p.add_argument("--layers", type=int, help="conv layers of a network trained afresh (default 6)")
    from avatar.training import accelerator_from_args, add_train_args

    add_train_args(p)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    for d in args.data:
        if not d.is_dir():
            p.error(f"not a folder: {d}")
    if args.init is not None and (args.hidden is not None or args.layers is not None):
        p.error("--hidden/--layers are for a network trained afresh; --init keeps its own")
    if (args.hidden is not None and not (8 <= args.hidden <= 1024 and args.hidden % 8 == 0)) or (args.layers is not None and not 1 <= args.layers <= 32):
        p.error("need --hidden a multiple of 8 in [8, 1024] and --layers in [1, 32]")
    if args.steps < 1 or args.batch < 1 or args.copies < 1:
        p.error("need steps, batch and copies >= 1")
    if not math.isfinite(args.openness_weight) or args.openness_weight < 0:
        p.error("--openness-weight must be >= 0")
    if not math.isfinite(args.pp_weight) or args.pp_weight <= 0:
        p.error("--pp-weight must be > 0")
    try:
        accel = accelerator_from_args(args)
    except ValueError as exc:
        p.error(str(exc))
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    try:
        init = load_lipsync(args.init) if args.init is not None else None
        size = {k: v for k, v in (("hidden", args.hidden), ("layers", args.layers)) if v is not None}
        config = init.config if init is not None else LipSyncConfig(**size)
        feats, labels, info = _examples(args.data, args.copies, args.seed, config.fps, speed=args.speed,
                                        exclude=args.exclude_variants)
    except (InputError, ModelError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    net, losses = train(feats, labels, config, args.steps, args.batch, lr=args.lr, seed=args.seed, acc=accel,
                        init=init, openness_weight=args.openness_weight, pp_weight=args.pp_weight,
                        spec_aug=args.spec_aug)
    acc = frame_accuracy(net, feats[:200], labels[:200])
    held = ""
    if args.heldout is not None and args.heldout.is_dir():
        hf, hl, _ = _examples(args.heldout, 1, args.seed + 1, config.fps)
        ha = frame_accuracy(net, hf, hl)
        held = f"- Held-out ({args.heldout}): frame accuracy {ha[0]:.3f}, PP recall {ha[1]:.3f}\n"
    command = ".venv/bin/python -m avatar.face.lipsync " + " ".join(
        shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv))
    card = (
        "# Viseme network (avatar.face.lipsync)\n\n"
        "Per-frame viseme classes (the 15 Oculus visemes) from log-mel audio features: the audio-only lip sync\n"
        "of the face stage (docs/face.md). Dilated 1-D convolutions, "
        f"{config.layers} layers of width {config.hidden}, {net.num_parameters():,} parameters.\n\n"
        f"- Training data: {info['clips']} clips ({info['seconds'] / 3600:.2f} h) of our own synthetic speech "
        "(`python -m avatar.tts.corpus`: eSpeak NG voices, and Piper's joe where the corpus was made with\n"
        "  `--neural-share`: its terms are in docs/tts.md; EmoBank sentences, CC-BY-SA 4.0), labels from the synthesiser's exact\n"
        f"  phoneme timing, {info['copies']} augmented cop{'y' if info['copies'] == 1 else 'ies'} per clip"
        + (" (all but the first speed-perturbed x0.9-1.1)" if info["speed"] else "")
        + (", every training window's formants warped x0.87-1.15, F0 shifted +-0.5 octave and up to 8 mel bands "
           "masked (`--spec-aug`)" if args.spec_aug else "") + ".\n"
        + (f"- Left out of training (a dev set's voices): the eSpeak NG variants {', '.join(info['excluded'])}.\n"
           if info["excluded"] else "")
        + (f"- Fine-tuned from `{args.init}` (its own card gives that model's data and command).\n"
           if args.init is not None else "") +
        f"- Training: {len(losses)} steps, batch {args.batch}, lr {args.lr}"
        + (f", openness term x{args.openness_weight}" if args.openness_weight > 0 else "")
        + (f", p/b/m class weight x{args.pp_weight}" if args.pp_weight != 1.0 else "")
        + f", {(time.perf_counter() - t0) / 60:.1f} min; "
        f"final loss {np.mean(losses[-100:]):.4f}\n"
        f"- Training clips (first 200): frame accuracy {acc[0]:.3f}, PP recall {acc[1]:.3f}\n{held}"
        f"- Command: `{command}`\n"
        "- Licence: Apache-2.0 (weights); the training text is EmoBank (CC-BY-SA 4.0).\n"
        "- Metrics of the whole face: `.venv/bin/python bench/face_model_bench.py --data data/heldout`\n")
    net.save_pretrained(args.out, card=card)
    log.info("saved %s (frame accuracy %.3f, PP recall %.3f)", args.out, *acc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
