"""animation.vrma (VRMC_vrm_animation) and animation.glb as VRM players see them (issue 25): the .vrma carries the
normalised humanoid rotations and expression weights three-vrm retargets, animation.glb no longer declares VRM (so
three-vrm's per-frame vrm.update() does not reset its raw nodes and morph weights). The playback checks run
bench/tools/vrm_playback.mjs (three + @pixiv/three-vrm in Node) and skip where node or its modules are absent
(`bash bench/tools/setup.sh`; ./dev test runs it where node and npm exist)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from avatar.types import FACE_CHANNELS, BodyMotion, FaceMotion

pygltflib = pytest.importorskip("pygltflib")

ROOT = Path(__file__).resolve().parents[1]
TOOLS = ROOT / "bench" / "tools"
DEFAULT = ROOT / "weights" / "avatars" / "default.glb"
N = 30


def have_node_tools(*packages: str) -> bool:
    """Whether node and the named npm packages (in bench/tools/node_modules) are installed."""
    return shutil.which("node") is not None and all(
        (TOOLS / "node_modules" / p / "package.json").is_file() for p in packages)


needs_three_vrm = pytest.mark.skipif(
    not have_node_tools("three", "@pixiv/three-vrm", "@pixiv/three-vrm-animation"),
    reason="needs node + three/@pixiv/three-vrm: bash bench/tools/setup.sh")
needs_validator = pytest.mark.skipif(not have_node_tools("gltf-validator"),
                                     reason="needs node + gltf-validator: bash bench/tools/setup.sh")


def performance() -> tuple[FaceMotion, BodyMotion]:
    """One second: the jaw opens to .7 and the left elbow bends 69 degrees, then both return."""
    from avatar.rig.skeleton import HUMANOID

    s = np.sin(np.pi * np.linspace(0, 1, N))
    frames = np.zeros((N, len(FACE_CHANNELS)), np.float32)
    frames[:, FACE_CHANNELS.index("jawOpen")] = 0.7 * s
    frames[:, FACE_CHANNELS.index("leftEyeYaw")] = frames[:, FACE_CHANNELS.index("rightEyeYaw")] = 0.2 * s
    rot = np.zeros((N, len(HUMANOID.joints), 4), np.float32)
    rot[..., 3] = 1
    j = HUMANOID.index("leftLowerArm")
    rot[:, j, 1], rot[:, j, 3] = -np.sin(0.6 * s), np.cos(0.6 * s)  # elbow flexion: about -Y on the left
    root = np.tile(HUMANOID.rest_positions[0], (N, 1)).astype(np.float32)
    root[:, 1] -= 0.02 * s
    return FaceMotion(fps=30.0, frames=frames), BodyMotion(fps=30.0, joints=HUMANOID.joints, rotations=rot,
                                                           root_position=root)


def _accessor(g, index: int) -> np.ndarray:  # noqa: ANN001
    acc = g.accessors[index]
    view = g.bufferViews[acc.bufferView]
    width = {"SCALAR": 1, "VEC3": 3, "VEC4": 4}[acc.type]
    a = np.frombuffer(g.binary_blob(), np.float32, acc.count * width, (view.byteOffset or 0) + (acc.byteOffset or 0))
    return a.reshape(acc.count, width)


def _channels(g) -> dict[tuple[int, str], np.ndarray]:  # noqa: ANN001
    anim = g.animations[0]
    return {(c.target.node, c.target.path): _accessor(g, anim.samplers[c.sampler].output) for c in anim.channels}


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """animation.glb and animation.vrma of the performance on the default avatar."""
    from avatar.render.animation import write_animated_avatar
    from avatar.render.avatar_file import load_avatar
    from avatar.render.vrm_animation import write_vrma

    out = tmp_path_factory.mktemp("vrma")
    face, body = performance()
    write_animated_avatar(load_avatar(DEFAULT), face, body, out / "animation.glb")
    write_vrma(face, body, out / "animation.vrma")
    return out


def test_vrma_holds_normalised_humanoid_rotations_and_expression_weights(exported: Path) -> None:
    from avatar.face.rig import to_vrm
    from avatar.rig.skeleton import HUMANOID

    g = pygltflib.GLTF2().load_binary(str(exported / "animation.vrma"))
    ext = g.extensions["VRMC_vrm_animation"]
    assert ext["specVersion"] == "1.0" and "VRMC_vrm_animation" in g.extensionsUsed
    bones = {b: v["node"] for b, v in ext["humanoid"]["humanBones"].items()}
    assert set(bones) == set(HUMANOID.joints)
    assert all(g.nodes[n].rotation in (None, [0, 0, 0, 1]) for n in bones.values())  # T-pose, identity rests
    ch = _channels(g)
    face, body = performance()
    elbow = ch[(bones["leftLowerArm"], "rotation")]
    assert np.allclose(elbow, body.rotations[:, HUMANOID.index("leftLowerArm")], atol=1e-6)
    assert np.allclose(ch[(bones["hips"], "translation")], body.root_position, atol=1e-6)
    presets = {e: v["node"] for e, v in ext["expressions"]["preset"].items()}
    want = to_vrm(face)
    aa = ch[(presets["aa"], "translation")]
    assert np.allclose(aa[:, 0], want["aa"], atol=1e-5) and aa[:, 0].max() > 0.3 and not aa[:, 1:].any()
    look = ch[(ext["lookAt"]["node"], "rotation")]
    assert np.isclose(2 * np.arcsin(look[N // 2, 1]), 0.2, atol=1e-3)  # gaze yaw, about +Y
    assert not g.meshes


def test_animation_glb_does_not_declare_vrm(exported: Path) -> None:
    g = pygltflib.GLTF2().load_binary(str(exported / "animation.glb"))
    source = pygltflib.GLTF2().load_binary(str(DEFAULT))
    assert "VRMC_vrm" in (source.extensions or {})
    assert "VRMC_vrm" not in (g.extensions or {}) and "VRMC_vrm" not in (g.extensionsUsed or [])
    assert any(c.target.path == "weights" for c in g.animations[0].channels)


def _playback(*args: str) -> list[dict]:
    r = subprocess.run(["node", str(TOOLS / "vrm_playback.mjs"), *args], capture_output=True, text=True, timeout=120)
    assert r.returncode in (0, 1), r.stdout + r.stderr
    return [json.loads(line) for line in r.stdout.splitlines() if line.startswith("{")]


@needs_three_vrm
def test_three_vrm_plays_the_vrma_without_resetting_jaw_or_elbow(exported: Path) -> None:
    avatar, vrma, glb = _playback("--vrm", str(DEFAULT), "--vrma", str(exported / "animation.vrma"),
                                  "--glb", str(exported / "animation.glb"))
    assert avatar["vrm"] and avatar["version"] == "1"
    assert vrma["ok"], vrma
    assert vrma["jaw_aa_after_update_max"] > 0.3 and vrma["jaw_morph_max"] > 0.2
    assert vrma["left_lower_arm_raw_max_deg"] > 60 and vrma["worst_bone_error_deg"] < 1.0
    assert glb["ok"] and not glb["declares_vrm"], glb
    assert glb["morph_track_max"] > 0.69 and glb["worst_weight_error"] < 1e-3


@needs_three_vrm
def test_three_vrm_plays_both_files_on_a_vrm0_avatar(exported: Path, tmp_path: Path) -> None:
    """A VRoid-style VRM 0.x file (facing -Z, no upper chest; tests/gltf_builders.vrm0_avatar): three-vrm applies
    the .vrma through its 0.x conversion, and the file's own animation.glb keeps its weights and rotations."""
    import gltf_builders as gb  # tests/gltf_builders.py

    from avatar.render.animation import write_animated_avatar
    from avatar.render.avatar_file import load_avatar

    vrm0 = gb.vrm0_avatar(tmp_path / "vroid.vrm")
    face, body = performance()
    glb = write_animated_avatar(load_avatar(vrm0), face, body, tmp_path / "animation.glb")
    avatar, vrma, played = _playback("--vrm", str(vrm0), "--vrma", str(exported / "animation.vrma"), "--glb", str(glb))
    assert avatar["vrm"] and avatar["version"] == "0"
    assert vrma["ok"] and vrma["jaw_aa_after_update_max"] > 0.3 and vrma["left_lower_arm_raw_max_deg"] > 60, vrma
    assert played["ok"] and not played["declares_vrm"] and played["morph_track_max"] > 0.69, played


@needs_three_vrm
def test_the_playback_check_sees_a_vrm_declaring_glb_being_reset(exported: Path, tmp_path: Path) -> None:
    g = pygltflib.GLTF2().load_binary(str(exported / "animation.glb"))
    source = pygltflib.GLTF2().load_binary(str(DEFAULT))
    g.extensions = {**(g.extensions or {}), "VRMC_vrm": source.extensions["VRMC_vrm"]}  # as the old export did
    g.extensionsUsed = [*(g.extensionsUsed or []), "VRMC_vrm"]
    g.save_binary(str(tmp_path / "old.glb"))
    (glb,) = _playback("--glb", str(tmp_path / "old.glb"))
    assert glb["declares_vrm"] and not glb["ok"]
    assert glb["worst_weight_error"] > 0.6 and glb["worst_bone_error_deg"] > 60  # jaw .7 -> 0, elbow -> rest


@needs_validator
def test_khronos_validator_finds_no_errors_in_vrma_and_glb(exported: Path) -> None:
    files = [str(exported / "animation.vrma"), str(exported / "animation.glb")]
    r = subprocess.run(["node", str(TOOLS / "validate_gltf.mjs"), *files], capture_output=True, text=True,
                       timeout=120)
    reports = [json.loads(line) for line in r.stdout.splitlines()]
    assert r.returncode == 0 and [x["errors"] for x in reports] == [0, 0], r.stdout + r.stderr
