"""The face stage: speech (audio and/or a phoneme timeline) and VAD in, ARKit-52 + head pose + gaze out.

Modules: rig (ARKit <-> VRM expressions), visemes (coarticulated mouth shapes), expression (FACS from VAD),
idle (blinks, gaze, head motion), features (log-mel, energy, F0 aligned to frames), teacher (all of them
combined: the rule-based face that makes training targets), livelink (Live Link Face CSV in and out),
data (training pairs), model (the diffusion denoiser; import it explicitly, it loads torch and
diffusers), train (the training script), generate (audio -> FaceMotion with the trained model and lip
refinement; `generate_face` loads torch only when called) and cli (`avatar face`). See docs/face.md.
"""

from avatar.face.expression import action_units, expression_curves, expression_weights
from avatar.face.features import AudioFeatures, FeatureConfig, compute_features, features_from_file
from avatar.face.generate import generate_face, load_face_model
from avatar.face.idle import IdleMotion, IdleParams, idle_motion
from avatar.face.livelink import parse_livelink_csv, read_livelink_csv, to_livelink_csv, write_livelink_csv
from avatar.face.rig import VRM_EXPRESSIONS, to_vrm
from avatar.face.teacher import teacher_motion
from avatar.face.visemes import VISEME_TARGETS, mouth_curves

__all__ = [
    "AudioFeatures", "FeatureConfig", "IdleMotion", "IdleParams", "VISEME_TARGETS", "VRM_EXPRESSIONS",
    "action_units", "compute_features", "expression_curves", "expression_weights", "features_from_file",
    "generate_face", "load_face_model",
    "idle_motion", "mouth_curves", "parse_livelink_csv", "read_livelink_csv", "teacher_motion", "to_livelink_csv",
    "to_vrm", "write_livelink_csv",
]
