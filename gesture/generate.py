"""Speech audio (+ VAD, + timeline) -> BodyMotion with the trained gesture model: the call the pipeline makes.

    from avatar.gesture.generate import generate_gesture, load_gesture_model
    motion = generate_gesture(audio, sr, VAD(0.5, 0.6, 0.2), seed=3, model=load_gesture_model())

Prosody features (with the timeline's stressed vowels when one is given) condition the diffusion denoiser,
which samples the clip window by window (avatar.gesture.model.generate). The gesture repertoire
(avatar.gesture.repertoire: word-cued gestures, beats in holds, rest poses in pauses, hand shapes) is laid on
the sample, since the denoiser never sees words; then, unless the model was trained on the body-language
teacher (config `body_language`), emotional posture and idle life (avatar.gesture.body_language); the legs
are re-solved so the feet stay planted. The motion has the audio's length, rounded to frames.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from avatar.errors import InputError, ModelError
from avatar.types import BodyMotion, Timeline, check_seed

from avatar.rig.kinematics import plant_feet, rotations_in_skeleton_order
from avatar.rig.skeleton import HUMANOID

from .body_language import body_language, scale_by_arousal, smooth_quat
from .prosody import FEATURE_NAMES, ProsodyFeatures, prosody_features
from .repertoire import apply_repertoire
from .teacher import VadLike, vad_per_frame

if TYPE_CHECKING:
    from .model import GestureDenoiser
    from .sampling import GestureDenoiserNet

log = logging.getLogger(__name__)

#: How to make the weights, quoted in the error when they are missing.
TRAIN_COMMAND = (".venv/bin/python -m avatar.tts.corpus --out data/corpus && "
                 ".venv/bin/python -m avatar.gesture.train --wav-dir data/corpus --out weights/gesture")
#: Classifier-free guidance on VAD: 1 is the plain conditional model, more exaggerates the emotion.
DEFAULT_GUIDANCE = 1.5
DEFAULT_STEPS = 10
#: Moving-average length (frames) put on the samples of weights trained before the body-language teacher.
SMOOTH_FRAMES = 3


def default_model_dir() -> Path:
    """The gesture model folder: the registry's `model_dir("gesture")` ($AVATAR_MODEL_GESTURE, else the
    shipped weights)."""
    from avatar.weights import model_dir

    return model_dir("gesture")


def __getattr__(name: str) -> Path:
    if name == "DEFAULT_MODEL_DIR":  # older callers: the registry's folder, read when asked
        return default_model_dir()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def load_gesture_model(folder: str | os.PathLike[str] | None = None) -> GestureDenoiserNet:
    """Load the trained denoiser for inference (model.onnx in onnxruntime, no torch; ModelError naming the
    training command when it is missing)."""
    path = Path(folder) if folder is not None else default_model_dir()
    if (path / "model.safetensors").is_file() and (path / "config.json").is_file() \
            and not (path / "model.onnx").is_file():
        # a training checkpoint (--save-every) is saved without the ONNX graph that inference runs
        raise ModelError(f"{path} holds a training checkpoint without model.onnx; export it with "
                         f"`.venv/bin/python -m avatar.export {path}`")
    if not (path / "model.onnx").is_file() or not (path / "config.json").is_file():
        raise ModelError(f"no gesture model at {path} (needs config.json and model.onnx); train one with "
                         f"`{TRAIN_COMMAND}` (see docs/gesture.md), or pass --model DIR")
    from .sampling import GestureDenoiserNet

    return GestureDenoiserNet.from_pretrained(path)


def generate_gesture(
    audio: np.ndarray,
    sr: int,
    vad: VadLike = None,
    seed: int = 0,
    model: GestureDenoiserNet | GestureDenoiser | str | os.PathLike[str] | None = None,
    timeline: Timeline | None = None,
    guidance: float = DEFAULT_GUIDANCE,
    steps: int = DEFAULT_STEPS,
    scheduler: str = "ddim",
) -> BodyMotion:
    """Body motion for mono speech `audio` at `sr` Hz: VAD (VAD, EmotionTrack, [T, 3] or None), seed, model."""
    seed = check_seed(seed)
    if isinstance(sr, bool) or not isinstance(sr, (int, np.integer)) or sr <= 0:
        raise InputError(f"sample rate must be a positive integer, got {sr!r}")
    if timeline is not None and not isinstance(timeline, Timeline):
        raise InputError(f"timeline must be a Timeline, got {type(timeline).__name__}")
    from .sampling import as_net

    net = load_gesture_model(model) if model is None or isinstance(model, (str, os.PathLike)) else as_net(model)
    if list(net.config.audio_features) != list(FEATURE_NAMES):
        raise ModelError(f"the gesture model was trained on features {net.config.audio_features}, this code makes "
                         f"{list(FEATURE_NAMES)}; retrain it with `{TRAIN_COMMAND}`")
    fps = net.config.fps
    feat = prosody_features(np.asarray(audio), int(sr), fps, timeline=timeline)
    vad_f = vad_per_frame(vad, feat.num_frames, fps)  # checks the VAD before any sampling
    log.info("gesture: %.2f s of audio, %d frames, timeline %s, guidance %.2f, seed %d", feat.duration,
             feat.num_frames, "yes" if timeline is not None else "no", guidance, seed)
    return motion_from_features(net, feat, vad_f, seed=int(seed), guidance=guidance, steps=steps,
                                scheduler=scheduler, timeline=timeline)


def motion_from_features(net: GestureDenoiserNet, feat: ProsodyFeatures, vad_f: np.ndarray, seed: int = 0,
                         guidance: float = DEFAULT_GUIDANCE, steps: int = DEFAULT_STEPS,
                         scheduler: str = "ddim", timeline: Timeline | None = None,
                         repertoire: bool = True, smooth: int = SMOOTH_FRAMES) -> BodyMotion:
    """Sampled motion for prosody features and per-frame VAD [T, 3], its gesture joints scaled by arousal
    (`scale_by_arousal`, every model); the gesture repertoire (word-cued gestures, rest poses in pauses) on top
    unless `repertoire` is False, and the body-language layer when the model did not learn it (older weights);
    feet planted. `smooth` frames of moving average go on such older weights' samples (1: none)."""
    from .sampling import generate

    motion = generate(net, feat, vad_f, seed=seed, steps=steps, guidance_scale=guidance, scheduler=scheduler,
                      plant=False)
    rot = rotations_in_skeleton_order(motion).astype(np.float64)
    if not net.config.body_language:
        # Weights trained before the body-language teacher sample about twice as jerky as it (jerk p95 390
        # against 167 m/s^3 on held-out speech at arousal +0.8): a 3-frame (0.1 s) moving average takes most of
        # the jitter out, not the beats.
        rot = np.stack([smooth_quat(rot[:, j], smooth) for j in range(rot.shape[1])], axis=1)
    # Every model's own gestures are scaled by arousal, the same way: the weights alone move only 1.3x (older)
    # to 1.5x (body-language teacher) faster at high arousal than at low, their teacher 2.5x. Before the
    # repertoire, which scales its own and must not be enlarged again (that pushed a hand on the chest into it).
    rot = scale_by_arousal(rot, (vad_f[:, 1] + 1.0) / 2.0, motion.fps, low=0.45, span=1.0)
    motion = BodyMotion(fps=motion.fps, joints=HUMANOID.joints, rotations=rot.astype(np.float32),
                        root_position=motion.root_position)
    if repertoire:  # the denoiser never sees words: what depends on them is laid on after sampling
        motion = apply_repertoire(motion, vad_f, feat.speech, timeline, feat.accents, seed=seed,
                                  onsets=feat.onsets)
    if net.config.body_language:  # the model learned posture and idle life from its teacher
        return plant_feet(motion)
    # They also learned the old teacher's slump and lift (sad head pitch about +15 deg, happy -11 deg): the full
    # layer on top doubled it and dropped a sad head out of the portrait frame, so only a quarter is added.
    return body_language(motion, vad_f, seed=seed, slump_gain=0.25)  # plants the feet too
