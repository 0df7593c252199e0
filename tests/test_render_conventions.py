"""Users' own avatars (issue 25): faces and skeletons as Ready Player Me, Mixamo, Blender and few-shape files
name them, built from the default avatar by tests/gltf_builders.py, each checked by rendering it."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from avatar.types import ARKIT_BLENDSHAPES, FACE_CHANNELS, BodyMotion, FaceMotion

pygltflib = pytest.importorskip("pygltflib")
pytest.importorskip("moderngl")

import gltf_builders as gb  # noqa: E402 - tests/gltf_builders.py
from gl_support import needs_gl  # noqa: E402 - tests/gl_support.py

W, H = 160, 160
FEW = {"jawOpen": "mouthOpen", "mouthSmileLeft": "mouthSmile", "browDownLeft": "Angry", "eyeBlinkLeft": "Blink",
       "browInnerUp": "Surprised"}


def _row(**channels: float) -> np.ndarray:
    row = np.zeros(len(FACE_CHANNELS))
    for k, v in channels.items():
        row[FACE_CHANNELS.index(k)] = v
    return row


def _arkit(**shapes: float) -> np.ndarray:
    a = np.zeros(len(ARKIT_BLENDSHAPES))
    for k, v in shapes.items():
        a[ARKIT_BLENDSHAPES.index(k)] = v
    return a


def mouth_change(path: Path, jaw: float = 0.7) -> int:
    """Pixels around the projected mouth that change between a closed and an open jaw (portrait framing)."""
    from avatar.render.renderer import Renderer

    with Renderer(path, W, H, framing="portrait") as r:
        box = _mouth_box(r)
        rest, opened = r.render(_row()), r.render(_row(jawOpen=jaw))
    diff = np.abs(rest.astype(int) - opened.astype(int)).max(axis=2) > 12
    return int(diff[box].sum())


def _mouth_box(r) -> tuple[slice, slice]:  # noqa: ANN001
    """A box of a fifth of the frame around the mouth: below the eye nodes, at the head's centre line."""
    av = r.avatar

    world = _rest_world(av)
    eyes = [world[n][:3, 3] for n in av.eyes.values()]
    head = world[av.bones["head"]][:3, 3]
    mouth = np.mean(eyes, axis=0) + np.array([0.0, -0.07, 0.04]) if eyes else head + np.array([0, 0.0, 0.1])
    clip = r.camera.view_proj(r.width / r.height) @ np.append(mouth, 1.0)
    x, y = (clip[0] / clip[3] + 1) / 2 * r.width, (1 - clip[1] / clip[3]) / 2 * r.height
    h = r.height // 10
    return slice(max(0, int(y) - h), int(y) + h), slice(max(0, int(x) - h), int(x) + h)


def _rest_world(av) -> list[np.ndarray]:  # noqa: ANN001
    from avatar.gltf.nodes import node_local

    world: list[np.ndarray] = [np.eye(4)] * len(av.nodes)
    done: set[int] = set()

    def of(i: int) -> np.ndarray:
        if i not in done:
            p = av.nodes[i].parent
            world[i] = node_local(av.gltf.nodes[i]) if p < 0 else of(p) @ node_local(av.gltf.nodes[i])
            done.add(i)
        return world[i]

    for i in range(len(av.nodes)):
        of(i)
    return world


# ------------------------------------------------------------------------------------------------- face


@pytest.mark.parametrize("raw,want", [("ARKit_jawOpen", "jawOpen"), ("blendShape1.JawOpen", "jawOpen"),
                                      ("A25_Jaw_Open", "jawOpen"), ("Face:mouth_smile_L", "mouthSmileLeft"),
                                      ("head.EyeBlink_R", "eyeBlinkRight"), ("viseme_aa", None), ("Angry", None)])
def test_arkit_names_with_prefixes(raw: str, want: str | None) -> None:
    from avatar.render.face_binding import arkit_name

    assert arkit_name(raw) == want


@pytest.mark.parametrize("raw,want", [("mouthOpen", "mouthOpen"), ("blendShape1.mouthSmile", "mouthSmile"),
                                      ("Angry", "angry"), ("Surprised", "surprised"), ("Sad", "sad"),
                                      ("Blink_L", "blinkLeft"), ("Fcl_MTH_A", "aa"), ("viseme_PP", "viseme_PP"),
                                      ("viseme_aa", "viseme_aa"), ("viseme_I", "viseme_ih"),
                                      ("viseme_sil", "viseme_sil"), ("Wolf3D_foo", None)])
def test_fallback_channel_names(raw: str, want: str | None) -> None:
    from avatar.render.face_binding import fallback_channel

    assert fallback_channel(raw) == want


def test_multimesh_arkit_head_binds_every_mesh(tmp_path: Path) -> None:
    from avatar.render.avatar_file import load_avatar

    av = load_avatar(gb.multimesh_arkit_head(tmp_path / "rpm.glb"))
    names = {m: av.gltf.meshes[m].name for m, _, _ in av.arkit["jawOpen"]}
    assert set(names.values()) == {"EyeLeft", "EyeRight", "Teeth", "face"}
    assert all(len(av.arkit[s]) == 4 for s in ARKIT_BLENDSHAPES)
    w = av.morph_weights(_arkit(jawOpen=0.7))
    assert sorted(round(v, 3) for (m, t), v in w.items() if v > 0) == [0.7] * 4
    assert not av.missing_shapes and not av.undriven_targets


@needs_gl
def test_multimesh_arkit_head_opens_its_mouth_in_the_video(tmp_path: Path) -> None:
    assert mouth_change(gb.multimesh_arkit_head(tmp_path / "rpm.glb")) > 40


def test_multimesh_animation_glb_has_a_weights_channel_per_driven_mesh(tmp_path: Path) -> None:
    from avatar.rig.skeleton import HUMANOID
    from avatar.render.animation import write_animated_avatar
    from avatar.render.avatar_file import load_avatar

    av = load_avatar(gb.multimesh_arkit_head(tmp_path / "rpm.glb"))
    n = 6
    frames = np.zeros((n, len(FACE_CHANNELS)), np.float32)
    frames[:, FACE_CHANNELS.index("jawOpen")] = 0.7
    rot = np.zeros((n, len(HUMANOID.joints), 4), np.float32)
    rot[..., 3] = 1
    body = BodyMotion(fps=30.0, joints=HUMANOID.joints, rotations=rot, root_position=np.zeros((n, 3), np.float32))
    out = write_animated_avatar(av, FaceMotion(fps=30.0, frames=frames), body, tmp_path / "anim.glb")
    g = pygltflib.GLTF2().load_binary(str(out))
    anim = g.animations[-1]
    blob = g.binary_blob()
    driven = {}
    for c in anim.channels:
        if c.target.path != "weights":
            continue
        mesh = g.meshes[g.nodes[c.target.node].mesh]
        acc = g.accessors[anim.samplers[c.sampler].output]
        view = g.bufferViews[acc.bufferView]
        w = np.frombuffer(blob, np.float32, acc.count, (view.byteOffset or 0) + (acc.byteOffset or 0))
        driven[mesh.name] = w.reshape(n, -1)[:, ARKIT_BLENDSHAPES.index("jawOpen")]
    assert set(driven) == {"EyeLeft", "EyeRight", "Teeth", "face"}
    assert all(np.allclose(v, 0.7, atol=1e-5) for v in driven.values())


def test_few_shape_face_is_driven_through_stand_ins(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from avatar.render.avatar_file import load_avatar

    with caplog.at_level(logging.WARNING):
        av = load_avatar(gb.few_shape_face(tmp_path / "few.glb", {**FEW, "cheekPuff": "Wobble"}))
    assert av.face_mode == "fallback" and not av.arkit
    assert set(av.fallback) == {"mouthOpen", "mouthSmile", "angry", "blink", "surprised"}
    t = {n: i for i, n in enumerate(av.target_names)}
    w = av.morph_weights(_arkit(jawOpen=0.6, mouthSmileLeft=0.8, mouthSmileRight=0.8))
    face = next(i for i, m in enumerate(av.gltf.meshes) if m.name == "face")
    assert w[(face, t["mouthOpen"])] == pytest.approx(0.6) and w[(face, t["mouthSmile"])] == pytest.approx(0.8)
    w = av.morph_weights(_arkit(eyeBlinkLeft=1.0, eyeBlinkRight=1.0))
    assert w[(face, t["Blink"])] == pytest.approx(1.0)
    assert av.undriven_targets == ("Wobble",)
    msgs = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(msgs) == 1 and "Wobble" in msgs[0] and "mouthOpen" in msgs[0]


@needs_gl
def test_few_shape_face_opens_its_mouth_in_the_video(tmp_path: Path) -> None:
    assert mouth_change(gb.few_shape_face(tmp_path / "few.glb", FEW)) > 40


def test_viseme_only_face_is_driven_from_our_visemes(tmp_path: Path) -> None:
    from avatar.face.visemes import VISEME_TARGETS
    from avatar.render.avatar_file import load_avatar
    from avatar.types import VISEMES

    oculus = {"aa": "aa", "PP": "PP", "oh": "O", "ou": "U", "ih": "I", "FF": "FF"}
    shapes = {"jawOpen": "viseme_aa", "mouthClose": "viseme_PP", "mouthFunnel": "viseme_O",
              "mouthPucker": "viseme_U", "mouthStretchLeft": "viseme_I", "mouthRollLower": "viseme_FF"}
    av = load_avatar(gb.few_shape_face(tmp_path / "vis.glb", shapes))
    assert av.face_mode == "fallback" and set(av.fallback) == {f"viseme_{v}" for v in
                                                               ("aa", "PP", "oh", "ou", "ih", "FF")}
    t = {n: i for i, n in enumerate(av.target_names)}
    face = next(i for i, m in enumerate(av.gltf.meshes) if m.name == "face")
    for ours, theirs in oculus.items():
        w = av.morph_weights(VISEME_TARGETS[VISEMES.index(ours)])
        best = max(shapes.values(), key=lambda n: w.get((face, t[n]), 0.0))
        assert best == f"viseme_{theirs}", (ours, w)
    assert not any(av.morph_weights(np.zeros(52)).values())


def test_a_face_with_arkit_shapes_keeps_its_visemes_at_rest(tmp_path: Path) -> None:
    """Ready Player Me's two sets are alternatives: with ARKit mouth shapes the visemes would double the motion."""
    from avatar.render.avatar_file import load_avatar

    av = load_avatar(gb.few_shape_face(tmp_path / "both.glb", {"jawOpen": "jawOpen", "mouthClose": "viseme_aa"}))
    assert av.face_mode == "arkit" and not av.fallback and av.undriven_targets == ("viseme_aa",)


# ------------------------------------------------------------------------------------------------- skeleton

def _side_table(centre: tuple[str, ...], limb: tuple[str, ...], left: str, right: str) -> dict[str, str]:
    """Bone names of one convention: centre bones (hips, spine, chest, upperChest, neck, head) and limb bones
    (shoulder, upper arm, lower arm, hand, upper leg, lower leg, foot, toes) with `left` / `right` put in for '{}'."""
    ours = ("Shoulder", "UpperArm", "LowerArm", "Hand", "UpperLeg", "LowerLeg", "Foot", "Toes")
    out = dict(zip(("hips", "spine", "chest", "upperChest", "neck", "head"), centre))
    for side, s in (("left", left), ("right", right)):
        out.update({side + b: n.format(s) for b, n in zip(ours, limb)})
    return out


CONVENTIONS = {
    "unity": _side_table(("Hips", "Spine", "Chest", "UpperChest", "Neck", "Head"),
                         ("{}Shoulder", "{}UpperArm", "{}LowerArm", "{}Hand", "{}UpperLeg", "{}LowerLeg", "{}Foot",
                          "{}Toes"), "Left", "Right"),
    "mixamo": gb.MIXAMO_NAMES,
    "mixamorig": {k: "mixamorig:" + v for k, v in gb.MIXAMO_NAMES.items()},
    "suffix LR": _side_table(("Hips", "Spine", "Chest", "UpperChest", "Neck", "Head"),
                             ("Shoulder{}", "UpperArm{}", "LowerArm{}", "Hand{}", "UpperLeg{}", "LowerLeg{}",
                              "Foot{}", "Toes{}"), "L", "R"),
    "blender": gb.BLENDER_NAMES,
    "L_ prefix": _side_table(("Pelvis", "Spine", "Spine1", "Spine2", "Neck", "Head"),
                             ("{}_Clavicle", "{}_UpperArm", "{}_Forearm", "{}_Hand", "{}_Thigh", "{}_Calf", "{}_Foot",
                              "{}_Toe"), "L", "R"),
    "unreal _l": _side_table(("pelvis", "spine_01", "spine_02", "spine_03", "neck_01", "head"),
                             ("clavicle_{}", "upperarm_{}", "lowerarm_{}", "hand_{}", "thigh_{}", "calf_{}", "foot_{}",
                              "ball_{}"), "l", "r"),
    "cc/iclone": _side_table(("CC_Base_Hip", "CC_Base_Waist", "CC_Base_Spine01", "CC_Base_Spine02",
                              "CC_Base_NeckTwist01", "CC_Base_Head"),
                             ("CC_Base_{}_Clavicle", "CC_Base_{}_Upperarm", "CC_Base_{}_Forearm", "CC_Base_{}_Hand",
                              "CC_Base_{}_Thigh", "CC_Base_{}_Calf", "CC_Base_{}_Foot", "CC_Base_{}_ToeBase"),
                             "L", "R"),
    "rigify": _side_table(("DEF-spine", "DEF-spine.001", "DEF-spine.002", "DEF-spine.003", "DEF-spine.004",
                           "DEF-spine.006"),
                          ("DEF-shoulder.{}", "DEF-upper_arm.{}", "DEF-forearm.{}", "DEF-hand.{}", "DEF-thigh.{}",
                           "DEF-shin.{}", "DEF-foot.{}", "DEF-toe.{}"), "L", "R"),
    "vroid": _side_table(("J_Bip_C_Hips", "J_Bip_C_Spine", "J_Bip_C_Chest", "J_Bip_C_UpperChest", "J_Bip_C_Neck",
                          "J_Bip_C_Head"),
                         ("J_Bip_{}_Shoulder", "J_Bip_{}_UpperArm", "J_Bip_{}_LowerArm", "J_Bip_{}_Hand",
                          "J_Bip_{}_UpperLeg", "J_Bip_{}_LowerLeg", "J_Bip_{}_Foot", "J_Bip_{}_ToeBase"), "L", "R"),
}


def _named_skeleton(names: dict[str, str], extra_root: str | None = None,
                    twigs: bool = True) -> pygltflib.GLTF2:
    """Nodes only: our HUMANOID hierarchy under the given names (a 'root' above the hips if asked, and finger and
    twist bones the way real rigs have them, which must not be mistaken for limbs)."""
    from avatar.rig.skeleton import HUMANOID

    nodes = [pygltflib.Node(name=names[j], children=[]) for j in HUMANOID.joints]
    for j, p in enumerate(HUMANOID.parents):
        if p >= 0:
            nodes[p].children.append(j)
    if twigs:
        for side in ("left", "right"):
            hand = HUMANOID.index(side + "Hand")
            for extra in ("Index1", "Thumb1"):
                nodes.append(pygltflib.Node(name=names[side + "Hand"] + extra))
                nodes[hand].children.append(len(nodes) - 1)
    if extra_root:
        nodes.append(pygltflib.Node(name=extra_root, children=[0]))
    return pygltflib.GLTF2(nodes=nodes)


@pytest.mark.parametrize("convention", sorted(CONVENTIONS))
def test_every_humanoid_bone_is_mapped_by_name(convention: str) -> None:
    from avatar.gesture.gltf import humanoid_nodes
    from avatar.rig.skeleton import HUMANOID

    names = {k: v for k, v in CONVENTIONS[convention].items() if k in HUMANOID.joints}
    g = _named_skeleton(names, extra_root="root" if convention == "unreal _l" else None)
    got = humanoid_nodes(g)
    want = {bone: HUMANOID.index(bone) for bone in HUMANOID.joints}
    assert {b: g.nodes[n].name for b, n in got.items()} == {b: g.nodes[n].name for b, n in want.items()}


@pytest.mark.parametrize("raw,want", [("LowerArmR", ("right", "lowerarm")), ("UpperLegL", ("left", "upperleg")),
                                      ("forearm.L", ("left", "forearm")), ("shin_R", ("right", "shin")),
                                      ("J_Bip_L_LowerArm", ("left", "lowerarm")), ("Armature|LeftArm", ("left", "arm"))])
def test_bone_name_sides_and_parts(raw: str, want: tuple[str, str]) -> None:
    from avatar.gesture.bvh import _canonical

    assert _canonical(raw) == want


def _raise_left_arm() -> tuple[tuple[str, ...], np.ndarray, np.ndarray]:
    from avatar.rig.rotations import quat_from_axis_angle
    from avatar.rig.skeleton import HUMANOID

    rot = np.zeros((len(HUMANOID.joints), 4))
    rot[:, 3] = 1
    rot[HUMANOID.index("leftUpperArm")] = quat_from_axis_angle(np.array([0.0, 0.0, 1.0]), np.array(-70.0))
    rot[HUMANOID.index("leftLowerArm")] = quat_from_axis_angle(np.array([0.0, 1.0, 0.0]), np.array(60.0))
    return HUMANOID.joints, rot, HUMANOID.rest_positions[0]


def arm_change(path: Path) -> int:
    """Pixels that change when the left arm comes down (full framing)."""
    from avatar.render.renderer import Renderer

    with Renderer(path, W, H, framing="full") as r:
        rest, posed = r.render(_row()), r.render(_row(), _raise_left_arm())
    return int((np.abs(rest.astype(int) - posed.astype(int)).max(axis=2) > 12).sum())


@pytest.mark.parametrize("names,prefix", [(gb.MIXAMO_NAMES, ""), (gb.BLENDER_NAMES, "")], ids=["mixamo", "blender"])
def test_third_party_rig_maps_all_bones_without_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture,
                                                        names: dict[str, str], prefix: str) -> None:
    from avatar.rig.skeleton import HUMANOID
    from avatar.render.avatar_file import load_avatar

    with caplog.at_level(logging.WARNING):
        av = load_avatar(gb.renamed_rig(tmp_path / "rig.glb", names, prefix))
    assert set(av.bones) == set(HUMANOID.joints) and set(av.eyes) == {"leftEye", "rightEye"}
    assert {b: av.nodes[n].name for b, n in av.bones.items()} == {b: names[b] for b in HUMANOID.joints}
    assert not av.missing_bones and not [r for r in caplog.records if r.levelno >= logging.WARNING]


@needs_gl
@pytest.mark.parametrize("names", [gb.MIXAMO_NAMES, gb.BLENDER_NAMES], ids=["mixamo", "blender"])
def test_third_party_rig_moves_its_arm_in_the_video(tmp_path: Path, names: dict[str, str]) -> None:
    assert arm_change(gb.renamed_rig(tmp_path / "rig.glb", names)) > 150


@pytest.mark.parametrize("names", [gb.MIXAMO_NAMES, gb.BLENDER_NAMES], ids=["mixamo", "blender"])
def test_third_party_rig_animation_glb_animates_its_arms(tmp_path: Path, names: dict[str, str]) -> None:
    from avatar.rig.skeleton import HUMANOID
    from avatar.render.animation import write_animated_avatar
    from avatar.render.avatar_file import load_avatar

    av = load_avatar(gb.renamed_rig(tmp_path / "rig.glb", names))
    joints, rot, root = _raise_left_arm()
    n = 4
    body = BodyMotion(fps=30.0, joints=joints, rotations=np.tile(rot, (n, 1, 1)).astype(np.float32),
                      root_position=np.tile(root, (n, 1)).astype(np.float32))
    face = FaceMotion(fps=30.0, frames=np.zeros((n, len(FACE_CHANNELS)), np.float32))
    g = pygltflib.GLTF2().load_binary(str(write_animated_avatar(av, face, body, tmp_path / "anim.glb")))
    rotated = {g.nodes[c.target.node].name for c in g.animations[-1].channels if c.target.path == "rotation"}
    assert {names[b] for b in HUMANOID.joints} <= rotated


# ------------------------------------------------------------------------------------------------- A-pose rest

def _hands(path: Path) -> dict[str, np.ndarray]:
    """World positions of both forearms and hands under _raise_left_arm (left arm down, right arm in T-pose)."""
    from avatar.render.avatar_file import load_avatar
    from avatar.render.pose import build_rig, node_matrices

    av = load_avatar(path)
    world = node_matrices(build_rig(av), _raise_left_arm(), None)
    return {b: world[av.bones[b]][:3, 3] for b in ("leftLowerArm", "leftHand", "rightLowerArm", "rightHand")}


def test_a_pose_rig_poses_its_arms_as_the_t_pose_rig(tmp_path: Path) -> None:
    """A Blender-named rig modelled in an A-pose (arms 40 degrees down) gestures as the same rig in a T-pose: the
    rest difference is not added to the motion (the right arm, in T-pose in the motion, is raised to it)."""
    a = _hands(gb.a_pose_rig(tmp_path / "a.glb"))
    t = _hands(gb.renamed_rig(tmp_path / "t.glb", gb.BLENDER_NAMES))
    for bone in a:
        assert np.linalg.norm(a[bone] - t[bone]) < 0.005, (bone, a[bone], t[bone])


@needs_gl
def test_a_pose_rig_renders_like_the_t_pose_rig(tmp_path: Path) -> None:
    from avatar.render.renderer import Renderer

    frames = []
    for path in (gb.a_pose_rig(tmp_path / "a.glb"), gb.renamed_rig(tmp_path / "t.glb", gb.BLENDER_NAMES)):
        with Renderer(path, W, H, framing="full") as r:
            frames.append(r.render(_row(), _raise_left_arm()))
    differ = int((np.abs(frames[0].astype(int) - frames[1].astype(int)).max(axis=2) > 12).sum())
    assert differ < 150, differ  # skinning re-bound to the A-pose differs a little; the old arms, ~1000 px
    assert arm_change(tmp_path / "a.glb") > 150


def test_a_pose_rig_animation_glb_poses_its_arms_as_the_t_pose_rig(tmp_path: Path) -> None:
    from avatar.gltf.nodes import node_local
    from avatar.rig.rotations import quat_to_matrix
    from avatar.render.animation import write_animated_avatar
    from avatar.render.avatar_file import load_avatar

    joints, rot, root = _raise_left_arm()
    n = 2
    body = BodyMotion(fps=30.0, joints=joints, rotations=np.tile(rot, (n, 1, 1)).astype(np.float32),
                      root_position=np.tile(root, (n, 1)).astype(np.float32))
    face = FaceMotion(fps=30.0, frames=np.zeros((n, len(FACE_CHANNELS)), np.float32))
    hands = []
    for path in (gb.a_pose_rig(tmp_path / "a.glb"), gb.renamed_rig(tmp_path / "t.glb", gb.BLENDER_NAMES)):
        av = load_avatar(path)
        g = pygltflib.GLTF2().load_binary(str(write_animated_avatar(av, face, body, tmp_path / "anim.glb")))
        local = [node_local(nd) for nd in g.nodes]
        anim, blob = g.animations[-1], g.binary_blob()
        for c in anim.channels:  # frame 0 of every rotation channel
            if c.target.path == "rotation":
                acc = g.accessors[anim.samplers[c.sampler].output]
                view = g.bufferViews[acc.bufferView]
                q = np.frombuffer(blob, np.float32, 4, (view.byteOffset or 0) + (acc.byteOffset or 0))
                local[c.target.node][:3, :3] = quat_to_matrix(q.astype(np.float64)) @ np.diag(
                    np.linalg.norm(local[c.target.node][:3, :3], axis=0))
        parent = {c: i for i, nd in enumerate(g.nodes) for c in nd.children or []}

        def world(i: int) -> np.ndarray:
            return local[i] if i not in parent else world(parent[i]) @ local[i]  # noqa: B023

        hands.append({b: world(av.bones[b])[:3, 3] for b in ("leftHand", "rightHand")})
    for bone in hands[0]:
        assert np.linalg.norm(hands[0][bone] - hands[1][bone]) < 0.005, (bone, hands)


@needs_gl
def test_vroid_vrm0_avatar_moves_mouth_and_arm_in_the_video(tmp_path: Path) -> None:
    """A VRoid-style VRM 0.x file (facing -Z, no upper chest, face driven only through its blend shape groups)."""
    from avatar.render.avatar_file import load_avatar

    path = gb.vrm0_avatar(tmp_path / "vroid.vrm")
    av = load_avatar(path)
    assert av.vrm_version == "0.x" and av.faces_minus_z and av.face_mode == "arkit" and len(av.arkit) == 52
    assert mouth_change(path) > 40 and arm_change(path) > 150


# ------------------------------------------------------------------------------------------------- extensions

def _two_colour_card(path: Path, fmt: str, **doc) -> Path:  # noqa: ANN003
    """The textured card with a red-over-blue image in `fmt` (PNG or WEBP, lossless)."""
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.array([[[255, 0, 0]] * 2, [[0, 0, 255]] * 2], np.uint8)).save(buf, fmt, lossless=True)
    uv = np.array([[0, 1], [1, 1], [1, 0], [0, 0]], np.float32)
    mime = "image/" + fmt.lower()
    fields = dict(
        materials=[pygltflib.Material(doubleSided=True, pbrMetallicRoughness=pygltflib.PbrMetallicRoughness(
            baseColorTexture=pygltflib.TextureInfo(index=0)))],
        textures=[pygltflib.Texture(source=0, sampler=0)], samplers=[pygltflib.Sampler()],
        images=[pygltflib.Image(bufferView=5, mimeType=mime)])
    fields.update(doc)
    return gb.textured_card(path, png=buf.getvalue(), uv=uv, top_drop=0.5, **fields)


needs_gltf_transform = pytest.mark.skipif(not gb.have_gltf_transform(),
                                          reason="needs node + @gltf-transform/cli: bash bench/tools/setup.sh")


@pytest.fixture(scope="module")
def transformed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The multi-mesh ARKit avatar and its copies by gltf-transform's CLI: meshopt, quantize, webp."""
    folder = tmp_path_factory.mktemp("gltf-transform")
    src = gb.multimesh_arkit_head(folder / "plain.glb")
    return {"plain": src, **{c: gb.gltf_transform_copy(src, folder / f"{c}.glb", c)
                             for c in gb.GLTF_TRANSFORM_COMMANDS}}


@needs_gltf_transform
@pytest.mark.parametrize("command", list(gb.GLTF_TRANSFORM_COMMANDS))
def test_gltf_transform_copies_load_with_every_shape_and_bone(transformed: dict[str, Path], command: str) -> None:
    from avatar.render.avatar_file import load_avatar

    g = pygltflib.GLTF2().load(str(transformed[command]))
    assert gb.GLTF_TRANSFORM_COMMANDS[command] in (g.extensionsRequired or [])  # the tool did what it says
    plain, av = load_avatar(transformed["plain"]), load_avatar(transformed[command])
    assert av.face_mode == "arkit" and len(av.target_names) == len(plain.target_names) == 104
    assert not av.undriven_targets and not av.missing_bones and len(av.eyes) == 2


@needs_gl
@needs_gltf_transform
@pytest.mark.parametrize("command", list(gb.GLTF_TRANSFORM_COMMANDS))
def test_gltf_transform_copies_render_like_the_original(transformed: dict[str, Path], command: str) -> None:
    """Mouth and arm move, and the copy's frame matches the original's (a dropped WebP texture renders white; a
    mis-decoded mesh moves pixels everywhere)."""
    from avatar.render.renderer import Renderer

    frames = []
    for key in ("plain", command):
        with Renderer(transformed[key], W, H, framing="full") as r:
            frames.append(r.render(_row(jawOpen=0.5), _raise_left_arm()).astype(int))
    differ = int((np.abs(frames[0] - frames[1]).max(axis=2) > 24).sum())
    assert differ < W * H // 200, differ  # quantization moves a few edge pixels; WebP is lossy
    assert mouth_change(transformed[command]) > 40 and arm_change(transformed[command]) > 150


@needs_gl
def test_webp_texture_is_decoded(tmp_path: Path) -> None:
    from avatar.render.renderer import Renderer

    path = _two_colour_card(tmp_path / "webp.glb", "WEBP",
                            textures=[pygltflib.Texture(sampler=0, extensions={"EXT_texture_webp": {"source": 0}})],
                            extensionsUsed=["EXT_texture_webp"], extensionsRequired=["EXT_texture_webp"])
    with Renderer(path, 64, 64, framing="full") as r:
        img = r.render(_row()).astype(int)
    red, blue = (img[..., 0] - img[..., 2]) > 80, (img[..., 2] - img[..., 0]) > 80
    assert red.sum() > 50 and blue.sum() > 50 and np.nonzero(red)[0].mean() < np.nonzero(blue)[0].mean()


@pytest.mark.parametrize("ext,message", [
    ("KHR_draco_mesh_compression", "compressed with KHR_draco_mesh_compression"),
    ("EXT_made_up_extension", "does not support: EXT_made_up_extension"),
])
def test_unknown_required_extensions_are_refused_by_name(tmp_path: Path, ext: str, message: str) -> None:
    from avatar.errors import InputError
    from avatar.render.avatar_file import load_avatar

    path = _two_colour_card(tmp_path / "x.glb", "PNG", extensionsUsed=[ext], extensionsRequired=[ext])
    with pytest.raises(InputError, match=message):
        load_avatar(path)


def test_corrupt_meshopt_data_is_refused_clearly(tmp_path: Path) -> None:
    """gltfpack's layout with data that does not decode: named, not "buffer 1 holds 0 bytes"."""
    pytest.importorskip("meshopt")
    from avatar.errors import InputError
    from avatar.render.avatar_file import load_avatar

    g = pygltflib.GLTF2().load_binary(str(_two_colour_card(tmp_path / "x.glb", "PNG")))
    g.buffers.append(pygltflib.Buffer(byteLength=48, extensions={"EXT_meshopt_compression": {"fallback": True}}))
    g.bufferViews[0].extensions = {"EXT_meshopt_compression": {"buffer": 0, "byteLength": 20, "byteStride": 12,
                                                               "count": 4, "mode": "ATTRIBUTES"}}
    g.bufferViews[0].buffer = 1
    g.extensionsUsed = ["EXT_meshopt_compression"]
    (tmp_path / "fb.glb").write_bytes(b"".join(g.save_to_bytes()))
    with pytest.raises(InputError, match="EXT_meshopt_compression bufferView does not decode"):
        load_avatar(tmp_path / "fb.glb")


@needs_gl
def test_quantized_positions_load_and_render(tmp_path: Path) -> None:
    """KHR_mesh_quantization: int16 positions scaled by the node, as gltfpack writes them."""
    from avatar.render.renderer import Renderer

    g = pygltflib.GLTF2().load_binary(str(_two_colour_card(tmp_path / "f.glb", "PNG")))
    blob = bytearray(g.binary_blob())
    q = np.round(gb.CARD * 1000).astype(np.int16)
    q = np.concatenate([q, np.zeros((4, 1), np.int16)], axis=1)  # int16 VEC3 padded to 4-byte rows
    blob += b"\0" * (-len(blob) % 4)
    g.bufferViews.append(pygltflib.BufferView(buffer=0, byteOffset=len(blob), byteLength=q.nbytes, byteStride=8))
    blob += q.tobytes()
    g.accessors[0] = pygltflib.Accessor(bufferView=len(g.bufferViews) - 1, componentType=5122, count=4,
                                        type="VEC3", min=[-500, 0, 0], max=[500, 1000, 0])
    g.nodes[0].scale = [0.001, 0.001, 0.001]
    g.extensionsUsed = g.extensionsRequired = ["KHR_mesh_quantization"]
    g.buffers[0].byteLength = len(blob)
    g.set_binary_blob(bytes(blob))
    (tmp_path / "q.glb").write_bytes(b"".join(g.save_to_bytes()))
    with Renderer(tmp_path / "q.glb", 64, 64, framing="full") as r, \
            Renderer(tmp_path / "f.glb", 64, 64, framing="full") as ref:
        a, b = r.render(_row()).astype(int), ref.render(_row()).astype(int)
    assert ((a[..., 0] - a[..., 2]) > 80).sum() > 50
    assert np.abs(a - b).max() <= 8  # the same card as the float one


@needs_gl
@pytest.mark.parametrize("transform,top,bottom", [
    ({"offset": [0, 0.5], "scale": [1, 0.5]}, "blue", "blue"),  # the image's lower half only
    ({"offset": [1, 1], "rotation": np.pi}, "blue", "red"),  # turned half way: upside down
    ({"offset": [0, 1], "rotation": np.pi / 2, "scale": [0.5, 0.5]}, "blue", "blue"),  # the spec's example
])
def test_texture_transform_is_applied(tmp_path: Path, transform: dict, top: str, bottom: str) -> None:
    from avatar.render.renderer import Renderer

    info = pygltflib.TextureInfo(index=0, extensions={"KHR_texture_transform": transform})
    path = _two_colour_card(tmp_path / "tt.glb", "PNG", materials=[pygltflib.Material(
        doubleSided=True, pbrMetallicRoughness=pygltflib.PbrMetallicRoughness(baseColorTexture=info))],
        extensionsUsed=["KHR_texture_transform"], extensionsRequired=["KHR_texture_transform"])
    with Renderer(path, 64, 64, framing="full") as r:
        img = r.render(_row()).astype(int)
    card = np.nonzero(np.abs(img[..., 0] - img[..., 2]) > 80)
    rows = np.unique(card[0])
    for y, want in ((rows[len(rows) // 5], top), (rows[-len(rows) // 5], bottom)):
        px = img[y, card[1][card[0] == y]]
        got = "red" if (px[:, 0] - px[:, 2]).mean() > 0 else "blue"
        assert got == want, (transform, y, got)


@needs_gl
@pytest.mark.parametrize("where", ["texture info", "texture transform"])
def test_second_uv_set_is_read_where_the_material_says(tmp_path: Path, where: str) -> None:
    """TEXCOORD_0 points every corner at the image's blue half, TEXCOORD_1 maps it red over blue; the material
    names set 1 (its texture info's texCoord, or KHR_texture_transform's texCoord override)."""
    from avatar.render.renderer import Renderer

    if where == "texture info":
        info = pygltflib.TextureInfo(index=0, texCoord=1)
    else:
        info = pygltflib.TextureInfo(index=0, extensions={"KHR_texture_transform": {"texCoord": 1}})
    path = _two_colour_card(tmp_path / "uv.glb", "PNG", materials=[pygltflib.Material(
        doubleSided=True, pbrMetallicRoughness=pygltflib.PbrMetallicRoughness(baseColorTexture=info))],
        extensionsUsed=["KHR_texture_transform"])
    g = pygltflib.GLTF2().load_binary(str(path))
    blob = bytearray(g.binary_blob())
    prim = g.meshes[0].primitives[0]
    prim.attributes.TEXCOORD_1 = prim.attributes.TEXCOORD_0
    prim.attributes.TEXCOORD_0 = gb._add(g, blob, np.tile(np.float32([0.5, 0.75]), (4, 1)), 5126, "VEC2")
    gb._write(g, blob, path)
    with Renderer(path, 64, 64, framing="full") as r:
        img = r.render(_row()).astype(int)
    card = np.nonzero(np.abs(img[..., 0] - img[..., 2]) > 80)
    rows = np.unique(card[0])
    top = img[rows[len(rows) // 5], card[1][card[0] == rows[len(rows) // 5]]]
    assert (top[:, 0] - top[:, 2]).mean() > 0  # red: set 1's mapping, not set 0's all-blue one


def _meshopt_card(src: Path, out: Path) -> Path:
    """The card in gltfpack's layout: its vertex and index views EXT_meshopt_compression-encoded (meshoptimizer's
    encoder) into buffer 0, the views themselves on an empty fallback buffer 1."""
    meshopt = pytest.importorskip("meshopt")
    g = pygltflib.GLTF2().load_binary(str(src))
    plain = g.binary_blob()
    packed = bytearray()
    fallback = 0
    for acc_index, mode in ((0, "ATTRIBUTES"), (1, "ATTRIBUTES"), (2, "TRIANGLES")):
        v = g.bufferViews[g.accessors[acc_index].bufferView]
        data = plain[v.byteOffset:v.byteOffset + v.byteLength]
        stride = {0: 12, 1: 8, 2: 2}[acc_index]
        rows = np.frombuffer(data, np.uint8).reshape(-1, stride)
        if mode == "TRIANGLES":
            enc = meshopt.encode_gltf_buffer(np.frombuffer(data, np.uint16), mode)
        else:
            enc = meshopt.encode_gltf_buffer(rows, mode)
        packed += b"\0" * (-len(packed) % 4)
        ext = {"buffer": 0, "byteOffset": len(packed), "byteLength": len(enc), "byteStride": stride,
               "count": len(rows), "mode": mode}
        packed += enc
        v.buffer, v.byteOffset, v.extensions = 1, fallback, {"EXT_meshopt_compression": ext}
        fallback += len(data) + (-len(data) % 4)
    others = [v for v in g.bufferViews if v.buffer == 0]
    for v in others:  # the views left uncompressed (sparse target, image) move behind the packed data
        packed += b"\0" * (-len(packed) % 4)
        data = plain[v.byteOffset:v.byteOffset + v.byteLength]
        v.byteOffset = len(packed)
        packed += data
    packed += b"\0" * (-len(packed) % 4)
    g.buffers = [pygltflib.Buffer(byteLength=len(packed)),
                 pygltflib.Buffer(byteLength=fallback, extensions={"EXT_meshopt_compression": {"fallback": True}})]
    g.extensionsUsed = g.extensionsRequired = ["EXT_meshopt_compression"]
    out.write_bytes(_glb(g.to_json(), bytes(packed)))  # pygltflib's writer would merge the two buffers
    return out


def _glb(doc: str, blob: bytes) -> bytes:
    """A binary glTF of a JSON document and its binary chunk."""
    import struct

    js = doc.encode() + b" " * (-len(doc.encode()) % 4)
    blob = blob + b"\0" * (-len(blob) % 4)
    body = struct.pack("<II", len(js), 0x4E4F534A) + js + struct.pack("<II", len(blob), 0x004E4942) + blob
    return struct.pack("<4sII", b"glTF", 2, 12 + len(body)) + body


@needs_gl
def test_meshopt_compressed_avatar_is_decoded_and_renders_the_same(tmp_path: Path) -> None:
    from avatar.render.renderer import Renderer

    plain = _two_colour_card(tmp_path / "plain.glb", "PNG")
    packed = _meshopt_card(plain, tmp_path / "packed.glb")
    with Renderer(packed, 64, 64, framing="full") as r, Renderer(plain, 64, 64, framing="full") as ref:
        assert r.avatar.arkit == {"jawOpen": [(0, 0, 1.0)]}
        for row in (_row(), _row(jawOpen=1.0)):
            a, b = r.render(row), ref.render(row)
            assert np.array_equal(a, b)
    assert ((a[..., 0].astype(int) - a[..., 2]) > 80).sum() > 30
