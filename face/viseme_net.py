"""Reading visemes from audio without torch: the viseme network's config, its inference wrapper and the decoding.

`face.lipsync.VisemeNet` (torch) is what training builds, saves and exports to model.onnx; inference
(`generate_face` from audio alone, `avatar face --audio` without a timeline) runs that graph in onnxruntime
(`VisemeNetOnnx`), as the face and gesture denoisers do. tests/test_face_lipsync.py checks it against torch.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from avatar.errors import InputError, ModelError
from avatar.runtime import OnnxNet
from avatar.types import VISEMES, Phoneme, Timeline
from avatar.weights import ModelConfig



def __getattr__(name: str) -> Path:
    if name == "DEFAULT_MODEL_DIR":  # older callers: the registry's folder, read when asked ($AVATAR_MODEL_LIPSYNC)
        from avatar.weights import model_dir

        return model_dir("lipsync")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class LipSyncConfig(ModelConfig):
    """What `from_pretrained` needs to rebuild the viseme network (config.json)."""

    class_name: ClassVar[str] = "VisemeNet"
    format_version: ClassVar[int] = 1

    audio_dim: int = 2 * 83
    hidden: int = 128
    layers: int = 6
    kernel: int = 5
    fps: float = 30.0
    classes: tuple[str, ...] = VISEMES


def check_config(config: LipSyncConfig) -> None:
    """ModelError unless the model's classes are ours (avatar.types.VISEMES, in that order)."""
    if tuple(config.classes) != VISEMES:
        raise ModelError("this lip sync model's viseme classes differ from avatar.types.VISEMES")


def layer_dilation(layer: int) -> int:
    """Dilation of conv layer `layer`: 1, 2, 4, 8, then again (about 2 s of context with six layers)."""
    return 2 ** (layer % 4)


def check_model_dir(folder: str | os.PathLike[str]) -> Path:
    """The folder if it holds model.onnx, else ModelError naming the training command."""
    p = Path(folder)
    if not (p / "model.onnx").is_file():
        raise ModelError(f"no lip sync model in {p}: train it with `python -m avatar.face.lipsync --data data/corpus "
                         f"--out {p}`")
    return p


class VisemeNetOnnx(OnnxNet):
    """The viseme network at inference: `net(audio [B, T, audio_dim])` -> logits [B, T, 15], run from model.onnx
    (`from_pretrained`) or from the torch `face.lipsync.VisemeNet` (`from_module`)."""

    config_class = LipSyncConfig
    model_name = "lip sync"
    onnx_inputs = ("audio",)

    def check(self) -> None:
        """ModelError unless the classes are ours."""
        check_config(self.config)

    def feature_dims(self) -> dict[str, int]:
        """The feature axis the config sizes."""
        return {"audio": self.config.audio_dim}


def load_viseme_net(folder: str | os.PathLike[str] | None = None) -> VisemeNetOnnx:
    """Load the viseme network for inference (model.onnx in onnxruntime) from `folder` (default: the registry's
    `model_dir("lipsync")`); ModelError naming the training command if missing."""
    from avatar.weights import resolve

    return VisemeNetOnnx.from_pretrained(check_model_dir(resolve("lipsync", folder)))


def as_net(net: Any) -> VisemeNetOnnx:
    """The network to run: a VisemeNetOnnx as it is, a torch `VisemeNet` wrapped."""
    return VisemeNetOnnx.of(net)


def viseme_posteriors(net: Any, features: np.ndarray) -> np.ndarray:
    """Per-frame viseme probabilities [T, 15] (float32) from audio features [T, F]; net: a VisemeNetOnnx (or the
    torch VisemeNet)."""
    c = net.config
    feats = np.asarray(features, dtype=np.float32)
    if feats.ndim != 2 or feats.shape[1] != c.audio_dim:
        raise InputError(f"audio features must be [T, {c.audio_dim}], got shape {feats.shape}")
    logits = np.asarray(as_net(net)(feats[None])[0], dtype=np.float64)
    e = np.exp(logits - logits.max(axis=-1, keepdims=True))  # softmax (scipy's import costs `say` 0.45 s)
    return (e / e.sum(axis=-1, keepdims=True)).astype(np.float32)


#: Where a p/b/m run's edges go (`estimate_timeline`): where P(PP) crosses this share of the run's peak,
#: interpolated between frame centres. Chosen with `bench/lipsync_decoding.py` on fresh clips of the training split
#: and on a slice of the mixed training corpus (0.6-0.8 score alike), never on the held-out sets; None puts the edges
#: on the run's frame boundaries (the decoding before).
PP_EDGE_LEVEL = 0.7


def _pp_span(pp: np.ndarray, start: int, end: int, level: float, fps: float) -> tuple[float, float]:
    """Sub-frame (start, end) seconds of a p/b/m run of frames [start, end): where P(PP) crosses `level` x the
    run's peak, linearly between frame centres ((k + 0.5) / fps, where the labels were taken)."""
    n, lv = len(pp), level * float(pp[start:end].max())
    a, b = 0.0, n / fps
    if start > 0:
        rise = (lv - pp[start - 1]) / max(float(pp[start] - pp[start - 1]), 1e-9)
        a = (start - 0.5 + float(np.clip(rise, 0.0, 1.0))) / fps
    if end < n:
        fall = (pp[end - 1] - lv) / max(float(pp[end - 1] - pp[end]), 1e-9)
        b = (end - 0.5 + float(np.clip(fall, 0.0, 1.0))) / fps
    return a, b


def estimate_timeline(net: Any, features: np.ndarray, duration: float, sample_rate: int = 16000,
                      min_frames: int = 1, probs: np.ndarray | None = None,
                      pp_level: float | None = PP_EDGE_LEVEL) -> Timeline:
    """An estimated phoneme timeline (one 'phoneme' per run of frames of one viseme) from audio features [T, F].

    probs: the posteriors when the caller already has them (viseme_posteriors), to skip the network.
    pp_level: p/b/m runs get sub-frame edges where P(PP) crosses this share of the run's peak (PP_EDGE_LEVEL);
    None: every run on its frame boundaries.
    """
    c = net.config
    if probs is None:
        probs = viseme_posteriors(net, features)
    # Plain per-frame argmax: a 3-frame moving average of the posteriors removed flickers but also most one- and
    # two-frame bilabial closures (a one-off probe on held-out clips 60-99, not kept in bench/: p/b/m sealed
    # 58 % smoothed vs 69 % not, openness r 0.521 vs 0.518), and the coarticulation model smooths the mouth anyway.
    label = probs.argmax(axis=1)
    pp_index = VISEMES.index("PP")
    n = len(label)
    phonemes: list[Phoneme] = []
    start, touches = 0, -1  # touches: the frame where the last phoneme's run ended
    for i in range(1, n + 1):
        if i == n or label[i] != label[start]:
            v = VISEMES[int(label[start])]
            if v != "sil" and i - start >= min_frames:
                a, b = start / c.fps, i / c.fps
                # The labels are each frame's centre, the face is shown at frame starts: a run's frame
                # boundaries seal the display frames half a frame early, missing closures that straddle a
                # boundary. Sub-frame edges from the posterior seal the display frames inside the closure.
                if v == "PP" and pp_level is not None:
                    a, b = _pp_span(np.asarray(probs[:, pp_index], dtype=np.float64), start, i, pp_level, c.fps)
                b = min(duration, b)
                # A p/b/m run's edge is its neighbour's too where the runs touch (no gap, no overlap in the
                # exported timeline); where they do not touch, the closure wins any overlap.
                if phonemes and (touches == start or phonemes[-1].end > a):
                    if v == "PP":
                        prev = phonemes.pop()
                        if a > prev.start:
                            phonemes.append(prev.model_copy(update={"end": a}))
                    else:
                        a = phonemes[-1].end
                if b > a:
                    phonemes.append(Phoneme(start=a, end=b, phoneme=v, viseme=v))
                    touches = i
            start = i
    return Timeline(sample_rate=int(sample_rate), duration=float(duration), phonemes=phonemes)


#: Phonemes closer than this (s) belong to one stretch of speech in `timeline_from_audio`'s words.
SPEECH_GAP = 0.25


def timeline_from_audio(net: Any, audio: np.ndarray, sample_rate: int) -> Timeline:
    """An estimated Timeline of speech audio alone: the viseme network's runs as phonemes, and each stretch of
    speech (phonemes less than SPEECH_GAP apart) as one "word" labelled '…', for whatever asks when someone speaks."""
    from avatar.face.features import compute_features, frames_for
    from avatar.types import Word

    a = np.asarray(audio, dtype=np.float32)
    duration = a.size / float(sample_rate)
    feats = compute_features(a, int(sample_rate), fps=net.config.fps,
                             num_frames=frames_for(duration, net.config.fps)).by_frame()
    tl = estimate_timeline(net, feats, duration, int(sample_rate))
    words: list[Word] = []
    for p in tl.phonemes:
        if words and p.start - words[-1].end < SPEECH_GAP:
            words[-1] = Word(start=words[-1].start, end=p.end, word="…")
        else:
            words.append(Word(start=p.start, end=p.end, word="…"))
    return Timeline(sample_rate=tl.sample_rate, duration=tl.duration, phonemes=tl.phonemes, words=words)
