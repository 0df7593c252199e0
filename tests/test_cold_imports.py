"""A new `avatar say` process imports no scipy and no pkg_resources on the way (they cost it 1-3 s).

Each check runs in a fresh interpreter, since this test process has imported everything already. The numpy
stand-ins that make this possible are compared with scipy in tests/test_scipy_equivalents.py.
"""

from __future__ import annotations

import subprocess
import sys

# Modules whose import is on the path of `avatar say`.
SAY_MODULES = ("avatar.cli", "avatar.pipeline_cli", "avatar.audio", "avatar.tts", "avatar.tts.espeak",
               "avatar.tts.world", "avatar.render.renderer", "avatar.render.avatar_file", "avatar.render.mesh",
               "avatar.render.video", "avatar.gesture.prosody", "avatar.gesture.gltf", "avatar.rig.kinematics",
               "avatar.rig.rotations", "avatar.face.features")
HEAVY = ("scipy", "pyworld", "pkg_resources")

_CHECK = """
import sys
heavy = [m for m in {heavy!r} if m in sys.modules]
assert not heavy, "imported: " + ", ".join(heavy)
"""


def _run(code: str) -> None:
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]


def test_say_modules_import_without_scipy_or_pyworld() -> None:
    _run("import " + ", ".join(SAY_MODULES) + "\n" + _CHECK.format(heavy=HEAVY))


def test_speech_features_and_poses_run_without_scipy() -> None:
    # What `avatar say` does with them: speak (WORLD reshaping), face features, gesture prosody, the skeleton's
    # rotations and the mesh normals. pyworld is needed to speak, but without pkg_resources.
    code = """
import numpy as np
from avatar.audio import resample
from avatar.face.features import compute_features
from avatar.gesture.prosody import prosody_features
from avatar.rig.rotations import matrix_to_quat, quat_apply, quat_mul, quat_to_matrix
from avatar.render.mesh import vertex_normals
from avatar.tts import get_backend
from avatar.types import VAD

speech = get_backend("espeak").synthesize("Well, I am really glad that you came!", VAD(0.6, 0.5, 0.2))
assert "pyworld" in sys.modules  # the WORLD edit ran
compute_features(speech.audio, speech.sample_rate)
prosody_features(speech.audio, speech.sample_rate, timeline=speech.timeline)
resample(speech.audio, speech.sample_rate, 48000)
q = np.random.default_rng(0).normal(size=(10, 4))
matrix_to_quat(quat_to_matrix(quat_mul(q, q)))
quat_apply(q, np.ones(3))
vertex_normals(np.random.default_rng(1).normal(size=(10, 3)), np.array([[0, 1, 2], [2, 3, 4]]))
"""
    _run("import sys\n" + code + _CHECK.format(heavy=("scipy", "pkg_resources")))


def test_emoji_table_is_loaded_only_for_text_outside_ascii() -> None:
    # Importing `emoji` parses its whole table (0.07 s of each new process); plain ASCII cannot hold an emoji.
    code = """
import sys
from avatar.emotion.regressor import prepare_text
assert prepare_text("I am  so happy :) ") == "I am so happy :)"
assert "emoji" not in sys.modules
assert prepare_text("I am so happy \\U0001F600") == "I am so happy grinning face"
assert "emoji" in sys.modules
"""
    _run(code)


def test_audio_only_lip_sync_runs_without_torch() -> None:
    # `avatar face --audio x.wav` with no timeline reads the visemes with weights/lipsync: a NumPy forward pass.
    code = """
import sys
import numpy as np
from avatar.face.generate import lip_model
from avatar.face.viseme_net import estimate_timeline
net = lip_model(None)
assert net is not None, "weights/lipsync is missing"
feats = np.random.default_rng(0).normal(size=(60, net.config.audio_dim)).astype(np.float32)
tl = estimate_timeline(net, feats, duration=2.0)
assert tl.duration == 2.0
assert "torch" not in sys.modules, "imported torch"
"""
    _run(code)
