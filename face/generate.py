"""Audio (+ optional timeline and VAD) -> FaceMotion with the trained denoiser: what `avatar face` and the pipeline call.

The diffusion model samples the face from the audio and VAD; then the expression layer (`express`) composes the
final face around its head motion, as the teacher composes its own (face.teacher.compose_face): the mouth from
the phoneme timeline when it is known (our own TTS; DREAM-Talk's lip refinement step, Zhang et al. 2023) or,
from audio alone, from the viseme network of `face/lipsync.py` (weights/lipsync, run in onnxruntime by
`face/viseme_net.py`: the soft mix of each frame's likely visemes, lips sealed on the p/b/m of the timeline it
estimates), under the FACS expression with its onset, apex and decay, with blinks, saccades, emotional gaze
and nods from the idle model. The denoiser smooths blinks away and seals fewer p/b/m than the lip models, so
only its head motion is kept (docs/face.md, weights/face/README.md).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import numpy as np

from avatar.errors import InputError, ModelError
from avatar.types import ARKIT_BLENDSHAPES, VAD, EmotionTrack, FaceMotion, Timeline, check_seed

if TYPE_CHECKING:
    from avatar.face.features import AudioFeatures
    from avatar.face.lipsync import VisemeNet
    from avatar.face.model import FaceDenoiser
    from avatar.face.sampling import FaceDenoiserNet
    from avatar.face.viseme_net import VisemeNetOnnx

log = logging.getLogger(__name__)

#: How to make it (shown when it is missing).
TRAIN_COMMAND = (".venv/bin/python -m avatar.tts.corpus --out data/corpus --clips 2000 && "
                 ".venv/bin/python -m avatar.face.train --data data/corpus --out weights/face")


def check_model_dir(folder: str | os.PathLike[str]) -> Path:
    """The model folder if it holds config.json and model.onnx, else ModelError with the training command."""
    p = Path(folder)
    if not (p / "config.json").is_file() or not (p / "model.onnx").is_file():
        raise ModelError(f"no trained face model in {p} (needs config.json and model.onnx); train one with: "
                         f"{TRAIN_COMMAND}")
    return p


def __getattr__(name: str) -> Path:
    if name == "DEFAULT_MODEL_DIR":  # older callers: the registry's folder, read when asked ($AVATAR_MODEL_FACE)
        from avatar.weights import model_dir

        return model_dir("face")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def load_face_model(folder: str | os.PathLike[str] | None = None) -> "FaceDenoiserNet":
    """Load the face denoiser for inference (model.onnx in onnxruntime, no torch) from a model folder (default:
    the registry's `model_dir("face")`; ModelError naming the training command when missing)."""
    from avatar.weights import resolve

    folder = check_model_dir(resolve("face", folder))
    from avatar.face.sampling import FaceDenoiserNet

    return FaceDenoiserNet.from_pretrained(folder)


def _timeline_mouth(caller: str, face: FaceMotion, timeline: Timeline,
                    mouth: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """The unsealed mouth shapes [frames, 52] (the timeline's visemes unless given) and the p/b/m closure."""
    from avatar.face.visemes import closure_weights, mouth_curves

    if not isinstance(timeline, Timeline):
        raise InputError(f"{caller} needs a Timeline, got {type(timeline).__name__}")
    n, nb = face.num_frames, len(ARKIT_BLENDSHAPES)
    if mouth is None:
        mouth = mouth_curves(timeline, face.fps, n, closure=False)
    mouth = np.asarray(mouth, dtype=np.float64)
    if mouth.shape != (n, nb):
        raise InputError(f"mouth shapes must be [{n}, {nb}], got {mouth.shape}")
    return mouth, closure_weights(timeline, face.fps, n)


def refine_lips(face: FaceMotion, timeline: Timeline, vad_rows: np.ndarray | None = None,
                mouth: np.ndarray | None = None) -> FaceMotion:
    """Rebuild the mouth from the timeline's visemes under the face's own expression; p/b/m frames sealed.

    mouth: the unsealed mouth shapes [frames, 52] when they come from elsewhere (the viseme network's
    posteriors); the timeline then only says where the lips seal.
    """
    from avatar.face.expression import combine, expression_curves
    from avatar.face.visemes import VISEME_TARGETS, enforce_closure

    n, fps = face.num_frames, face.fps
    nb = len(ARKIT_BLENDSHAPES)
    mouth, closure = _timeline_mouth("refine_lips", face, timeline, mouth)
    rows = np.zeros((n, 3)) if vad_rows is None else np.asarray(vad_rows, dtype=np.float64)
    mouth *= np.clip(1.0 + 0.2 * rows[:, 1], 0.7, 1.3)[:, None]  # as the teacher: aroused speech is bigger
    # The model's values on articulation channels mix its own guess of the speech with the emotion; keep
    # only the emotion's share there (the FACS table for this VAD) and the model's face everywhere else.
    articulation = np.nonzero(np.abs(VISEME_TARGETS).max(axis=0) > 0)[0]
    expr = face.frames[:, :nb].astype(np.float64)
    expr[:, articulation] = expression_curves(rows)[:, articulation]
    bs = enforce_closure(combine(mouth, expr, closure), closure)
    frames = face.frames.copy()
    frames[:, :nb] = np.clip(bs, 0.0, 1.0)
    return FaceMotion(fps=fps, frames=frames, names=face.names)


def generate_face(audio: np.ndarray, sample_rate: int, vad: VAD | EmotionTrack | np.ndarray | None = None,
                  timeline: Timeline | None = None, seed: int = 0,
                  model: "FaceDenoiserNet | FaceDenoiser | str | os.PathLike[str] | None" = None, guidance: float = 2.0,
                  steps: int = 10,
                  lips: "VisemeNetOnnx | VisemeNet | str | os.PathLike[str] | bool | None" = None,
                  body_head: np.ndarray | Callable[[], np.ndarray | None] | None = None) -> FaceMotion:
    """Face motion for speech audio: the diffusion model, then lip refinement from the timeline, or from the
    audio when there is none.

    vad None means neutral; model is a loaded denoiser (FaceDenoiserNet or torch) or a model folder (default weights/face); lips is
    the viseme network for audio-only lip refinement (a VisemeNetOnnx, its torch VisemeNet, or a folder; None:
    weights/lipsync when present;
    False: none, the diffusion model's own mouth). body_head [T, 2]: the head's yaw and pitch that the body's
    posture gives it (`avatar.rig.kinematics.head_direction`), countered by the eyes so the gaze stays on the
    partner; or a function that returns it, called once the diffusion model has sampled (`avatar.pipeline.perform`
    makes the body meanwhile). The result has round(duration * fps) frames; the same inputs and seed give the
    same output.
    """
    from avatar.audio import to_mono
    from avatar.face.expression import vad_frames
    from avatar.face.features import compute_features, frames_for
    from avatar.face.sampling import as_net, sample_motion

    seed = check_seed(seed)
    a = np.asarray(audio)
    if a.dtype.kind != "f":
        raise InputError(f"audio must be float samples in [-1, 1], got dtype {a.dtype}")
    a = to_mono(a)
    if a.size == 0:
        raise InputError("the audio is empty")
    if model is None or isinstance(model, (str, os.PathLike)):
        net = load_face_model(model)
    else:
        net = as_net(model)
    fps = net.config.fps
    duration = a.size / float(sample_rate)
    n = frames_for(duration, fps)
    if timeline is not None and abs(timeline.duration - duration) > 1.0 / fps + 0.05:
        raise InputError(f"the timeline lasts {timeline.duration:.2f} s but the audio {duration:.2f} s: not the same speech?")
    feats = compute_features(a, int(sample_rate), fps=fps, num_frames=n)
    rows = vad_frames(VAD.neutral() if vad is None else vad, n, fps)
    face = sample_motion(net, feats.by_frame(), rows, steps=steps, guidance=guidance, seed=seed)
    if callable(body_head):
        body_head = body_head()
    if timeline is not None:
        return express(face, VAD.neutral() if vad is None else vad, seed, timeline=timeline, features=feats,
                       body_head=body_head)
    lip_net = lip_model(lips)
    if lip_net is None:
        return face
    from avatar.face.viseme_net import estimate_timeline, viseme_posteriors
    from avatar.face.visemes import posterior_mouth_curves

    probs = viseme_posteriors(lip_net, feats.by_frame())
    estimate = estimate_timeline(lip_net, feats.by_frame(), duration, int(sample_rate), probs=probs)
    return express(face, VAD.neutral() if vad is None else vad, seed, timeline=estimate, features=feats,
                   mouth=posterior_mouth_curves(probs, fps, n), estimated=True, body_head=body_head)


def express(face: FaceMotion, vad: VAD | EmotionTrack | np.ndarray, seed: int, timeline: Timeline,
            features: "AudioFeatures | None" = None, mouth: np.ndarray | None = None,
            estimated: bool = False, body_head: np.ndarray | None = None) -> FaceMotion:
    """The expression layer after sampling: the final face from the sampled head motion, the timeline's mouth
    and the emotion.

    The denoiser smooths sharp events away (blinks, saccades) and its mouth seals fewer p/b/m than the lip
    models, so only its head motion is kept; the blendshapes and gaze are composed as the teacher does (face.teacher.
    compose_face): coarticulated visemes (or `mouth`, the viseme network's soft mouth) under the FACS
    expression with onset, apex and decay per sentence, lips sealed on every p/b/m, blinks, saccades and
    emotional gaze from the idle model, nods on stressed vowels (and energy peaks), and the emotion's posture
    on top of the sampled head. `estimated`: the timeline was read from the audio (no stress marks; speech
    activity from the audio features). body_head [T, 2]: the head's yaw and pitch from the body's posture, which
    the eyes counter (compose_face).
    """
    from avatar.face.teacher import compose_face, speech_activity, stress_emphasis, timeline_span

    n, fps = face.num_frames, face.fps
    mouth, closure = _timeline_mouth("express", face, timeline, mouth)
    if estimated and features is not None:
        activity = features.activity()
        emphasis = features.emphasis()
        span = None
    else:
        activity = speech_activity(timeline, fps, n)
        emphasis = stress_emphasis(timeline, fps, n)  # (not the audio's energy peaks: they need scipy)
        span = timeline_span(timeline)
    names = list(face.names)
    head = np.stack([face.frames[:, names.index(c)] for c in ("headYaw", "headPitch", "headRoll")], axis=1)
    head = head - head.mean(axis=0)  # its motion, not its posture: the posture is the emotion's (head_bias)
    out = compose_face(mouth, closure, vad, fps, seed=seed, activity=activity, emphasis=emphasis,
                       head=head.astype(np.float64), speech=span, body_head=body_head)
    return FaceMotion(fps=fps, frames=out.frames, names=out.names)


def lip_model(lips: "VisemeNetOnnx | VisemeNet | str | os.PathLike[str] | bool | None" = None) -> "VisemeNetOnnx | None":
    """The viseme network to read lips from audio with (loaded once per folder): None/True weights/lipsync (None:
    a warning and None when it is missing; True: ModelError), a folder, a network as it is, False none."""
    if lips is False:
        return None
    from avatar.face.viseme_net import VisemeNetOnnx, as_net, load_viseme_net
    from avatar.weights import cached, model_dir

    if isinstance(lips, VisemeNetOnnx) or hasattr(lips, "state_dict"):
        return as_net(lips)
    if lips is None or lips is True:
        LIPS_DIR = model_dir("lipsync")
        if not (LIPS_DIR / "model.onnx").is_file():
            if lips is True:
                return load_viseme_net(LIPS_DIR)  # raises, naming the training command
            log.warning("no lip sync model in %s: the mouth is the diffusion model's own", LIPS_DIR)
            return None
        return cached("lipsync", LIPS_DIR, load_viseme_net)
    return cached("lipsync", Path(lips), load_viseme_net)
