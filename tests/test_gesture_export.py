"""BVH write/read (round trip, foreign rigs, malformed files) and glTF export (trimesh, pygltflib)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from avatar.errors import InputError
from avatar.gesture.bvh import bvh_text, load_bvh, map_bone_names, parse_bvh, read_bvh, write_bvh
from avatar.gesture.gltf import humanoid_nodes, write_animation_into, write_gltf
from avatar.rig.kinematics import forward_kinematics
from avatar.rig.rotations import euler_to_quat, quat_angle, quat_canonical, quat_inv, quat_mul
from avatar.rig.skeleton import HUMANOID
from avatar.types import BodyMotion


def _motion(t: int = 24, seed: int = 0) -> BodyMotion:
    rng = np.random.default_rng(seed)
    q = euler_to_quat(rng.uniform(-35, 35, (t, len(HUMANOID.joints), 3)), "XYZ")
    root = np.tile([0.0, 0.95, 0.0], (t, 1)) + rng.normal(0, 0.02, (t, 3))
    return BodyMotion(30, HUMANOID.joints, q, root)


def test_bvh_round_trip(tmp_path: Path) -> None:
    m = _motion()
    path = write_bvh(tmp_path / "a.bvh", m)
    text = path.read_text()
    assert text.startswith("HIERARCHY\nROOT hips") and "MOTION\nFrames: 24\n" in text
    assert "End Site" in text and "CHANNELS 6 Xposition Yposition Zposition Zrotation Xrotation Yrotation" in text
    data = read_bvh(path)
    assert data.offsets[0, 1] == pytest.approx(95.0)  # centimetres
    assert data.fps == pytest.approx(30.0)
    back = load_bvh(path)
    assert back.joints == HUMANOID.joints and back.num_frames == m.num_frames
    ang = quat_angle(quat_mul(quat_inv(m.rotations.astype(np.float64)), back.rotations.astype(np.float64)))
    assert ang.max() < 0.01  # degrees
    assert np.abs(back.root_position - m.root_position).max() < 1e-4
    assert np.abs(forward_kinematics(back) - forward_kinematics(m)).max() < 1e-4
    # Metres and another channel order also round-trip.
    data2 = parse_bvh(bvh_text(m, order="XYZ", scale=1.0))
    assert data2.channels[1] == ["Xrotation", "Yrotation", "Zrotation"]
    from avatar.gesture.bvh import bvh_to_motion

    back2 = bvh_to_motion(data2)
    assert np.abs(forward_kinematics(back2) - forward_kinematics(m)).max() < 1e-4


_FOREIGN = """HIERARCHY
ROOT mixamorig:Hips
{{
 OFFSET 0 0 0
 CHANNELS 6 Xposition Yposition Zposition Xrotation Yrotation Zrotation
 JOINT mixamorig:Spine {{ OFFSET 0 10 0 CHANNELS 3 Xrotation Yrotation Zrotation
  JOINT mixamorig:Spine1 {{ OFFSET 0 10 0 CHANNELS 3 Xrotation Yrotation Zrotation
   JOINT mixamorig:Spine2 {{ OFFSET 0 10 0 CHANNELS 3 Xrotation Yrotation Zrotation
    JOINT mixamorig:Spine3 {{ OFFSET 0 10 0 CHANNELS 3 Xrotation Yrotation Zrotation
     JOINT mixamorig:Neck {{ OFFSET 0 15 0 CHANNELS 3 Xrotation Yrotation Zrotation
      JOINT mixamorig:Head {{ OFFSET 0 12 0 CHANNELS 3 Xrotation Yrotation Zrotation End Site {{ OFFSET 0 12 0 }} }} }}
     JOINT mixamorig:LeftShoulder {{ OFFSET 4 12 0 CHANNELS 3 Xrotation Yrotation Zrotation
      JOINT mixamorig:LeftArm {{ OFFSET 14 0 0 CHANNELS 3 Xrotation Yrotation Zrotation
       JOINT mixamorig:LeftForeArm {{ OFFSET {ax} {ay} 0 CHANNELS 3 Xrotation Yrotation Zrotation
        JOINT mixamorig:LeftHand {{ OFFSET {bx} {by} 0 CHANNELS 3 Xrotation Yrotation Zrotation End Site {{ OFFSET 10 -10 0 }} }} }} }} }}
     JOINT mixamorig:RightShoulder {{ OFFSET -4 12 0 CHANNELS 3 Xrotation Yrotation Zrotation
      JOINT mixamorig:RightArm {{ OFFSET -14 0 0 CHANNELS 3 Xrotation Yrotation Zrotation
       JOINT mixamorig:RightForeArm {{ OFFSET -{ax} {ay} 0 CHANNELS 3 Xrotation Yrotation Zrotation
        JOINT mixamorig:RightHand {{ OFFSET -{bx} {by} 0 CHANNELS 3 Xrotation Yrotation Zrotation End Site {{ OFFSET -10 -10 0 }} }} }} }} }}
 }} }} }} }}
 JOINT mixamorig:LeftUpLeg {{ OFFSET 9 -5 0 CHANNELS 3 Xrotation Yrotation Zrotation
  JOINT mixamorig:LeftLeg {{ OFFSET 0 -44 0 CHANNELS 3 Xrotation Yrotation Zrotation
   JOINT mixamorig:LeftFoot {{ OFFSET 0 -42 0 CHANNELS 3 Xrotation Yrotation Zrotation
    JOINT mixamorig:LeftToeBase {{ OFFSET 0 -7 12 CHANNELS 3 Xrotation Yrotation Zrotation End Site {{ OFFSET 0 0 6 }} }} }} }} }}
 JOINT mixamorig:RightUpLeg {{ OFFSET -9 -5 0 CHANNELS 3 Xrotation Yrotation Zrotation
  JOINT mixamorig:RightLeg {{ OFFSET 0 -44 0 CHANNELS 3 Xrotation Yrotation Zrotation
   JOINT mixamorig:RightFoot {{ OFFSET 0 -42 0 CHANNELS 3 Xrotation Yrotation Zrotation
    JOINT mixamorig:RightToeBase {{ OFFSET 0 -7 12 CHANNELS 3 Xrotation Yrotation Zrotation End Site {{ OFFSET 0 0 6 }} }} }} }} }}
}}
MOTION
Frames: 2
Frame Time: 0.0333333
{frames}
"""


def test_bvh_foreign_a_pose_rig_is_retargeted() -> None:
    # A Mixamo-named rig in centimetres whose rest pose holds the arms 45 degrees down (A-pose), with four spine
    # links; all rotations zero, so it stands in its A-pose: our arms must point 45 degrees down, too.
    c = np.cos(np.pi / 4)
    text = _FOREIGN.format(ax=28 * c, ay=-28 * c, bx=25 * c, by=-25 * c,
                           frames="\n".join(" ".join(["0"] * (6 + 3 * 22)).replace("0 0 0", "0 100 0", 1)
                                            for _ in range(2)))
    data = parse_bvh(text)
    mp = map_bone_names(data.names, data.parents)
    assert data.names[mp["leftLowerArm"]] == "mixamorig:LeftForeArm"
    assert data.names[mp["leftUpperLeg"]] == "mixamorig:LeftUpLeg"
    assert data.names[mp["leftToes"]] == "mixamorig:LeftToeBase"
    assert data.names[mp["spine"]] == "mixamorig:Spine" and data.names[mp["upperChest"]] == "mixamorig:Spine3"
    from avatar.gesture.bvh import bvh_to_motion

    m = bvh_to_motion(data)
    pos = forward_kinematics(m)[0]
    arm = pos[HUMANOID.index("leftLowerArm")] - pos[HUMANOID.index("leftUpperArm")]
    arm /= np.linalg.norm(arm)
    assert np.allclose(arm, [c, -c, 0.0], atol=1e-3)
    rarm = pos[HUMANOID.index("rightLowerArm")] - pos[HUMANOID.index("rightUpperArm")]
    assert np.allclose(rarm / np.linalg.norm(rarm), [-c, -c, 0.0], atol=1e-3)
    # Root 100 cm over a hip height of 101 cm (hips to toe end) maps onto our hip height, in metres.
    assert 0.9 < m.root_position[0, 1] < 1.0
    assert pos[HUMANOID.index("head"), 1] > pos[HUMANOID.index("neck"), 1]


@pytest.mark.parametrize("text, needle", [
    ("", "HIERARCHY"),
    ("HIERARCHY\nROOT hips\n{\nOFFSET 0 0\nCHANNELS 3 Xrotation Yrotation Zrotation\n}\n", "expected a number"),
    ("HIERARCHY\nROOT hips\n{\nOFFSET 0 0 0\nCHANNELS 3 Xposition Yposition Wrotation\n}\n", "unknown channel"),
    ("HIERARCHY\nROOT hips\n{\nOFFSET 0 0 0\nCHANNELS 3 Xrotation Yrotation Zrotation\n}\nMOTION\nFrames: 2\n"
     "Frame Time: 0.033\n0 0 0\n", "expected 2 frames"),
    ("HIERARCHY\nROOT hips\n{\nOFFSET 0 0 0\nCHANNELS 3 Xrotation Yrotation Zrotation\n}\nMOTION\nFrames: 1\n"
     "Frame Time: 0\n0 0 0\n", "frame time"),
    ("HIERARCHY\nROOT hips\n{\nOFFSET 0 0 0\nCHANNELS 3 Xrotation Yrotation Zrotation\n}\nMOTION\nFrames: 1\n"
     "Frame Time: 0.03\n0 nan 0\n", "NaN"),
    ("HIERARCHY\nROOT hips\n{\nOFFSET 0 0 0\nCHANNELS 3 Xrotation Yrotation Zrotation\n}\nMOTION\nFrames: 1\n"
     "Frame Time: 0.03\n0 abc 0\n", "non-numeric"),
    ("HIERARCHY\nROOT hips\n{\nOFFSET 0 0 0\nCHANNELS 3 Xrotation Xrotation Zrotation\n}\n", "distinct"),
    ("HIERARCHY\nROOT hips\n{\nOFFSET 0 0 0\nCHANNELS 3 Xrotation Yrotation Zrotation\nJOINT a\n{\nOFFSET 0 1 0\n"
     "CHANNELS 3 Xrotation Yrotation Zrotation\n", "file ends"),
])
def test_malformed_bvh_is_a_clear_input_error(text: str, needle: str) -> None:
    with pytest.raises(InputError, match="malformed BVH") as exc:
        parse_bvh(text, "x.bvh")
    assert needle in str(exc.value)


def test_bvh_missing_file_and_unknown_rig(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not found"):
        read_bvh(tmp_path / "nope.bvh")
    (tmp_path / "bin.bvh").write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(InputError):
        read_bvh(tmp_path / "bin.bvh")
    text = ("HIERARCHY\nROOT thing\n{\nOFFSET 0 0 0\nCHANNELS 3 Xrotation Yrotation Zrotation\n"
            "End Site\n{\nOFFSET 0 1 0\n}\n}\nMOTION\nFrames: 1\nFrame Time: 0.03\n0 0 0\n")
    (tmp_path / "odd.bvh").write_text(text)
    with pytest.raises(InputError, match="no recognisable"):
        load_bvh(tmp_path / "odd.bvh")


def _anim_rotations(g, anim: int = 0) -> dict[int, np.ndarray]:
    out = {}
    blob = g.binary_blob()
    a = g.animations[anim]
    for ch in a.channels:
        if ch.target.path != "rotation":
            continue
        acc = g.accessors[a.samplers[ch.sampler].output]
        bv = g.bufferViews[acc.bufferView]
        raw = blob[bv.byteOffset:bv.byteOffset + bv.byteLength]
        out[ch.target.node] = np.frombuffer(raw, np.float32).reshape(-1, 4)
    return out


def test_gltf_loads_in_trimesh_and_pygltflib(tmp_path: Path) -> None:
    import pygltflib
    import trimesh

    m = _motion(12)
    path = write_gltf(tmp_path / "m.glb", m)
    scene = trimesh.load(path)
    assert len(scene.geometry) == 1
    mesh = next(iter(scene.geometry.values()))
    assert len(mesh.faces) == 12 * len(HUMANOID.joints)
    g = pygltflib.GLTF2().load_binary(str(path))
    assert [n.name for n in g.nodes[: len(HUMANOID.joints)]] == list(HUMANOID.joints)
    assert len(g.skins[0].joints) == len(HUMANOID.joints)
    anim = g.animations[0]
    assert all(s.interpolation == "LINEAR" for s in anim.samplers)
    times = g.accessors[anim.samplers[0].input]
    assert times.count == 12 and times.max[0] == pytest.approx(11 / 30, abs=1e-6)
    rots = _anim_rotations(g)
    for j in range(len(HUMANOID.joints)):
        assert np.allclose(quat_canonical(rots[j]), quat_canonical(m.rotations[:, j]), atol=1e-6)
    with pytest.raises(InputError):
        write_gltf(tmp_path / "m.gltf", m)


def test_animation_written_into_an_avatar_by_bone_name(tmp_path: Path) -> None:
    import pygltflib

    m = _motion(10, seed=3)
    avatar = write_gltf(tmp_path / "avatar.glb", _motion(2, seed=9))
    out = write_animation_into(avatar, m, tmp_path / "out.glb")
    g = pygltflib.GLTF2().load_binary(str(out))
    assert len(g.animations) == 2
    assert humanoid_nodes(g)["leftHand"] == HUMANOID.index("leftHand")
    rots = _anim_rotations(g, 1)
    # Our own mannequin rests in the same T-pose, so the written local rotations are ours.
    for j in range(len(HUMANOID.joints)):
        assert np.allclose(quat_canonical(rots[j]), quat_canonical(m.rotations[:, j]), atol=1e-5)
    # An avatar with other node names (Unity style) still matches.
    for n in g.nodes[: len(HUMANOID.joints)]:
        n.name = n.name[0].upper() + n.name[1:]
    assert humanoid_nodes(g)["rightLowerArm"] == HUMANOID.index("rightLowerArm")
    with pytest.raises(InputError, match="not found"):
        write_animation_into(tmp_path / "none.glb", m, tmp_path / "o.glb")
    (tmp_path / "bad.glb").write_bytes(b"not a glb")
    with pytest.raises(InputError):
        write_animation_into(tmp_path / "bad.glb", m, tmp_path / "o.glb")
    assert not (tmp_path / "o.glb").exists()


def _gltf_world_positions(g, anim: int, frame: int) -> np.ndarray:
    """World positions of all nodes at one frame of an animation (TRS composition, the glTF rule)."""
    from avatar.rig.rotations import quat_to_matrix

    blob = g.binary_blob()
    a = g.animations[anim]
    trs = {i: [np.array(n.translation or [0, 0, 0.0]), np.array(n.rotation or [0, 0, 0, 1.0])]
           for i, n in enumerate(g.nodes)}
    for ch in a.channels:
        acc = g.accessors[a.samplers[ch.sampler].output]
        bv = g.bufferViews[acc.bufferView]
        k = 4 if ch.target.path == "rotation" else 3
        v = np.frombuffer(blob[bv.byteOffset:bv.byteOffset + bv.byteLength], np.float32).reshape(-1, k)[frame]
        trs[ch.target.node][1 if k == 4 else 0] = v.astype(np.float64)
    parent = {c: i for i, n in enumerate(g.nodes) for c in (n.children or [])}
    world: dict[int, np.ndarray] = {}

    def w(i: int) -> np.ndarray:
        if i not in world:
            m = np.eye(4)
            m[:3, :3] = quat_to_matrix(trs[i][1])
            m[:3, 3] = trs[i][0]
            world[i] = (w(parent[i]) @ m) if i in parent else m
        return world[i]

    return np.array([w(i)[:3, 3] for i in range(len(g.nodes))])


def test_animation_into_a_minus_z_facing_avatar(tmp_path: Path) -> None:
    import pygltflib

    m = _motion(6, seed=5)
    g = pygltflib.GLTF2().load_binary(str(write_gltf(tmp_path / "a.glb", _motion(1))))
    g.nodes[0].rotation = [0.0, 1.0, 0.0, 0.0]  # the whole rig turned to face -Z, as VRM 0.x avatars are
    g.save_binary(str(tmp_path / "turned.glb"))
    out = pygltflib.GLTF2().load_binary(str(write_animation_into(tmp_path / "turned.glb", m, tmp_path / "o.glb")))
    ours = forward_kinematics(m)
    for frame in (0, 5):
        pos = _gltf_world_positions(out, 1, frame)[: len(HUMANOID.joints)]
        assert np.allclose(pos, ours[frame] * [-1.0, 1.0, -1.0], atol=1e-4)
    # And the +Z mannequin reproduces our positions exactly.
    plain = pygltflib.GLTF2().load_binary(str(write_animation_into(tmp_path / "a.glb", m, tmp_path / "p.glb")))
    assert np.allclose(_gltf_world_positions(plain, 1, 3)[: len(HUMANOID.joints)], ours[3], atol=1e-4)


def test_bvh_with_a_reference_root_above_the_hips() -> None:
    # Some exporters put a channel-less "Reference" node above the hips; the hips carry the translation.
    m = _motion(8, seed=2)
    text = bvh_text(m)
    text = text.replace("ROOT hips\n{", "ROOT Reference\n{\n\tOFFSET 0 0 0\n\tCHANNELS 0\n\tJOINT hips\n\t{", 1)
    text = text.replace("\nMOTION\n", "\n}\nMOTION\n", 1)
    from avatar.gesture.bvh import bvh_to_motion

    back = bvh_to_motion(parse_bvh(text))
    assert np.abs(back.root_position - m.root_position).max() < 1e-4
    assert np.abs(forward_kinematics(back) - forward_kinematics(m)).max() < 1e-4


def test_bvh_rig_facing_minus_z_is_turned() -> None:
    # Our motion re-expressed on the same rig turned 180 degrees about Y: after import it must be our motion.
    from avatar.gesture.bvh import bvh_to_motion
    from avatar.rig.rotations import quat_from_axis_angle, quat_to_euler

    m = _motion(6, seed=4)
    data = parse_bvh(bvh_text(m))
    y = quat_from_axis_angle(np.array([0.0, 1.0, 0.0]), np.array(180.0))
    data.offsets = data.offsets * [-1.0, 1.0, -1.0]
    data.end_sites = {k: v * [-1.0, 1.0, -1.0] for k, v in data.end_sites.items()}
    frames = data.frames.copy()
    frames[:, 0] *= -1
    frames[:, 2] *= -1
    for j in range(len(data.names)):
        c0 = 3 + 3 * j
        q = euler_to_quat(frames[:, c0:c0 + 3], "ZXY")
        yb = np.broadcast_to(y, q.shape)
        frames[:, c0:c0 + 3] = quat_to_euler(quat_mul(quat_mul(yb, q), quat_inv(yb)), "ZXY")
    data.frames = frames
    back = bvh_to_motion(data)
    assert np.abs(forward_kinematics(back) - forward_kinematics(m)).max() < 1e-4


@pytest.mark.parametrize("names, parents, expect", [
    (  # BEAT (Spine..Spine3, Neck1, ForeFoot + ToeBase)
        ["Hips", "Spine", "Spine1", "Spine2", "Spine3", "Neck", "Neck1", "Head", "RightShoulder", "RightArm",
         "RightForeArm", "RightHand", "LeftShoulder", "LeftArm", "LeftForeArm", "LeftHand", "LeftUpLeg", "LeftLeg",
         "LeftFoot", "LeftForeFoot", "LeftToeBase"],
        [-1, 0, 1, 2, 3, 4, 5, 6, 4, 8, 9, 10, 4, 12, 13, 14, 0, 16, 17, 18, 19],
        {"spine": "Spine", "chest": "Spine1", "upperChest": "Spine3", "neck": "Neck", "leftToes": "LeftToeBase",
         "rightLowerArm": "RightForeArm", "leftUpperArm": "LeftArm"}),
    (  # CMU (LowerBack, Spine, Spine1; hip joints between the hips and the thighs)
        ["Hips", "LHipJoint", "LeftUpLeg", "LeftLeg", "LeftFoot", "LowerBack", "Spine", "Spine1", "Neck", "Head",
         "LeftShoulder", "LeftArm", "LeftForeArm", "LeftHand", "RightShoulder", "RightArm", "RightForeArm", "RightHand"],
        [-1, 0, 1, 2, 3, 0, 5, 6, 7, 8, 7, 10, 11, 12, 7, 14, 15, 16],
        {"spine": "LowerBack", "chest": "Spine", "upperChest": "Spine1", "leftUpperLeg": "LeftUpLeg"}),
    (  # Trinity / GENEA (b_ prefix, l/r sides, twist and scapula links)
        ["b_root", "b_spine0", "b_spine1", "b_spine2", "b_spine3", "b_neck0", "b_head", "b_l_shoulder", "p_l_scap",
         "b_l_arm", "b_l_arm_twist", "b_l_forearm", "b_l_wrist_twist", "b_l_wrist", "b_r_shoulder", "b_r_arm",
         "b_r_forearm", "b_r_wrist", "b_l_upleg", "b_l_leg", "b_l_foot"],
        [-1, 0, 1, 2, 3, 4, 5, 4, 7, 8, 9, 10, 11, 12, 4, 14, 15, 16, 0, 18, 19],
        {"hips": "b_root", "leftUpperArm": "b_l_arm", "leftLowerArm": "b_l_forearm", "leftHand": "b_l_wrist",
         "upperChest": "b_spine3", "leftUpperLeg": "b_l_upleg", "rightHand": "b_r_wrist"}),
])
def test_bone_names_of_common_rigs(names: list[str], parents: list[int], expect: dict[str, str]) -> None:
    got = {k: names[v] for k, v in map_bone_names(names, parents).items()}
    for ours, theirs in expect.items():
        assert got.get(ours) == theirs, (ours, got.get(ours))
