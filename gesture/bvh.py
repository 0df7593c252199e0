"""BVH (Biovision Hierarchy) writing and reading, with retargeting of foreign skeletons onto ours.

Written files: HIERARCHY with our VRM bone names, OFFSETs in centimetres (the unit of BEAT, Trinity/GENEA,
Mixamo and CMU exports, so those tools' scale settings apply unchanged), a 6-channel root
(Xposition Yposition Zposition Zrotation Xrotation Yrotation) and 3 rotation channels per joint in the same
intrinsic Z-X-Y order (R = Rz Rx Ry), End Sites for head, hands and toes. Root position channels are the
absolute hips position (as Blender's importer reads them); the root OFFSET is the rest hips position.

Reading accepts any channel order per joint, 3 or 6 channels per joint (translations below the root are
ignored), centimetres or metres (detected from the figure's height), and maps common bone names (BEAT, CMU,
Mixamo, Trinity/GENEA, Unity, VRM) onto VRM names. Rotations are retargeted through world space: each of our
bones takes the world rotation of its source bone times the rest-pose correction that turns our rest bone
direction onto the source's, so an A-posed or differently proportioned source still drives our T-posed
skeleton; source joints with no counterpart (extra spine links, twist bones) fold into their children.

Why hand-written: the PyPI BVH packages either only parse (bvh), pull in extra math stacks (bvhio needs
PyGLM and its own transform library) or are young single-author projects; the format is small, and we need
the retargeting step, which none of them does.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from avatar.errors import InputError
from avatar.io import atomic_write_text
from avatar.types import BodyMotion

from avatar.rig.kinematics import _rotation_between, rotations_in_skeleton_order
from avatar.rig.rotations import (
    euler_to_quat, identity_quat, quat_angle, quat_apply, quat_from_axis_angle, quat_inv, quat_mul, quat_normalize,
    quat_to_euler,
)
from avatar.rig.skeleton import HUMANOID, Skeleton

log = logging.getLogger(__name__)

#: Largest BVH we read (bytes): BEAT's longest takes are ~60 MB.
MAX_BVH_BYTES = 256 * 1024 * 1024
_AXES = {"Xrotation": "X", "Yrotation": "Y", "Zrotation": "Z"}
_POS = ("Xposition", "Yposition", "Zposition")


@dataclass
class BvhData:
    """A parsed BVH file: joints (in file order), parents, offsets, channels, frames [N, C], frame time."""

    names: list[str]
    parents: list[int]
    offsets: np.ndarray  # [J, 3] in the file's unit
    channels: list[list[str]]
    frames: np.ndarray  # [N, total channels]
    frame_time: float
    end_sites: dict[int, np.ndarray] = field(default_factory=dict)

    @property
    def fps(self) -> float:
        """Frames per second."""
        return 1.0 / self.frame_time

    def channel_index(self) -> list[int]:
        """Column of each joint's first channel in `frames`."""
        out, k = [], 0
        for ch in self.channels:
            out.append(k)
            k += len(ch)
        return out


# --------------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------------


def bvh_text(motion: BodyMotion, skeleton: Skeleton = HUMANOID, order: str = "ZXY", scale: float = 100.0) -> str:
    """The BVH text of a BodyMotion (`scale` converts metres to the file unit: 100 gives centimetres)."""
    order = order.upper()
    if sorted(order) != ["X", "Y", "Z"]:
        raise InputError(f"BVH rotation order must be a permutation of XYZ, got {order!r}")
    rot_ch = " ".join(f"{a}rotation" for a in order)
    lines = ["HIERARCHY"]
    children = {i: [k for k, p in enumerate(skeleton.parents) if p == i] for i in range(len(skeleton.joints))}

    def emit(j: int, depth: int) -> None:
        ind = "\t" * depth
        name = skeleton.joints[j]
        off = skeleton.offsets[j] * scale
        lines.append(f"{ind}{'ROOT' if depth == 0 else 'JOINT'} {name}")
        lines.append(f"{ind}{{")
        lines.append(f"{ind}\tOFFSET {off[0]:.6f} {off[1]:.6f} {off[2]:.6f}")
        if depth == 0:
            lines.append(f"{ind}\tCHANNELS 6 Xposition Yposition Zposition {rot_ch}")
        else:
            lines.append(f"{ind}\tCHANNELS 3 {rot_ch}")
        for c in children[j]:
            emit(c, depth + 1)
        if not children[j]:
            end = np.asarray(skeleton.end_sites.get(name, (0.0, 0.05, 0.0))) * scale
            lines.extend([f"{ind}\tEnd Site", f"{ind}\t{{",
                          f"{ind}\t\tOFFSET {end[0]:.6f} {end[1]:.6f} {end[2]:.6f}", f"{ind}\t}}"])
        lines.append(f"{ind}}}")

    emit(0, 0)
    rot = rotations_in_skeleton_order(motion, skeleton)
    eul = quat_to_euler(rot, order)  # [T, J, 3] in channel order
    root = motion.root_position.astype(np.float64) * scale
    data = np.concatenate([root, eul.reshape(eul.shape[0], -1)], axis=1)
    lines += ["MOTION", f"Frames: {motion.num_frames}", f"Frame Time: {1.0 / motion.fps:.8f}"]
    lines += [" ".join(f"{v:.5f}" for v in row) for row in data]
    return "\n".join(lines) + "\n"


def write_bvh(path: str | os.PathLike[str], motion: BodyMotion, skeleton: Skeleton = HUMANOID, order: str = "ZXY",
              scale: float = 100.0) -> Path:
    """Write a BodyMotion as BVH (centimetres by default), atomically."""
    return atomic_write_text(path, bvh_text(motion, skeleton, order, scale))


# --------------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------------


class _Tokens:
    def __init__(self, text: str, src: str) -> None:
        self.src = src
        self.toks: list[tuple[str, int]] = []
        for ln, line in enumerate(text.splitlines(), 1):
            for t in line.replace("{", " { ").replace("}", " } ").split():
                self.toks.append((t, ln))
        self.i = 0

    def fail(self, msg: str) -> InputError:
        ln = self.toks[min(self.i, len(self.toks) - 1)][1] if self.toks else 0
        return InputError(f"{self.src}: malformed BVH at line {ln}: {msg}")

    def next(self, what: str) -> str:
        if self.i >= len(self.toks):
            raise self.fail(f"file ends where {what} was expected")
        t = self.toks[self.i][0]
        self.i += 1
        return t

    def expect(self, word: str) -> None:
        t = self.next(repr(word))
        if t != word:
            self.i -= 1
            raise self.fail(f"expected {word!r}, found {t!r}")

    def number(self, what: str) -> float:
        t = self.next(what)
        try:
            v = float(t)
        except ValueError:
            self.i -= 1
            raise self.fail(f"expected a number for {what}, found {t!r}") from None
        if not np.isfinite(v):
            raise self.fail(f"{what} is not finite")
        return v


def parse_bvh(text: str, source: str = "<bvh>") -> BvhData:
    """Parse BVH text; malformed input raises InputError naming the line."""
    # Only the header is tokenised; the (possibly huge) motion block is parsed by numpy.
    m = re.search(r"^[ \t]*Frame[ \t]+Time:[ \t]*\S+[ \t]*\r?$", text, re.M)
    header, body = (text[: m.end()], text[m.end():]) if m else (text, "")
    tk = _Tokens(header, source)
    tk.expect("HIERARCHY")
    names: list[str] = []
    parents: list[int] = []
    offsets: list[list[float]] = []
    channels: list[list[str]] = []
    end_sites: dict[int, np.ndarray] = {}

    def joint(parent: int) -> None:
        name = tk.next("a joint name")
        if name in ("{", "}"):
            raise tk.fail("a joint has no name")
        if name in names:
            raise tk.fail(f"joint {name!r} appears twice")
        idx = len(names)
        names.append(name)
        parents.append(parent)
        tk.expect("{")
        tk.expect("OFFSET")
        offsets.append([tk.number("OFFSET") for _ in range(3)])
        tk.expect("CHANNELS")
        n = tk.number("the channel count")
        if n not in (0, 3, 6) and not (1 <= n <= 9 and n == int(n)):
            raise tk.fail(f"bad channel count {n:g}")
        chans = [tk.next("a channel name") for _ in range(int(n))]
        for c in chans:
            if c not in _AXES and c not in _POS:
                raise tk.fail(f"unknown channel {c!r}")
        rots = [c for c in chans if c in _AXES]
        if len(rots) not in (0, 3) or len(set(rots)) != len(rots):
            raise tk.fail(f"joint {name!r} needs three distinct rotation channels, has {rots}")
        channels.append(chans)
        while True:
            t = tk.next("JOINT, End Site or '}'")
            if t == "}":
                return
            if t == "JOINT":
                joint(idx)
            elif t == "End":
                tk.expect("Site")
                tk.expect("{")
                tk.expect("OFFSET")
                end_sites[idx] = np.array([tk.number("End Site OFFSET") for _ in range(3)])
                tk.expect("}")
            else:
                tk.i -= 1
                raise tk.fail(f"unexpected {t!r} inside joint {name!r}")

    tk.expect("ROOT")
    joint(-1)
    if len(names) > 1000:
        raise tk.fail("more than 1000 joints")
    tk.expect("MOTION")
    tk.expect("Frames:")
    n_frames = tk.number("the frame count")
    if n_frames != int(n_frames) or n_frames < 1:
        raise tk.fail(f"the frame count must be a positive integer, got {n_frames:g}")
    tk.expect("Frame")
    tk.expect("Time:")
    ft = tk.number("the frame time")
    if not 1e-4 <= ft <= 1.0:
        raise tk.fail(f"frame time {ft:g} s is out of range (1e-4..1)")
    n_ch = sum(len(c) for c in channels)
    if tk.i < len(tk.toks):
        raise tk.fail(f"unexpected {tk.toks[tk.i][0]!r} after the frame time")
    frames = _parse_frames(body, source)
    if frames.size != int(n_frames) * n_ch:
        raise InputError(f"{source}: malformed BVH: expected {int(n_frames)} frames x {n_ch} channels = "
                         f"{int(n_frames) * n_ch} numbers after the header, found {frames.size}")
    frames = frames.reshape(int(n_frames), n_ch)
    if not np.isfinite(frames).all():
        raise InputError(f"{source}: malformed BVH: motion values contain NaN or infinity")
    return BvhData(names, parents, np.array(offsets, dtype=np.float64), channels, frames, ft, end_sites)


def _parse_frames(body: str, source: str) -> np.ndarray:
    """All numbers of the MOTION block (one frame a line, or wrapped) as a flat float64 array."""
    import io
    import warnings

    if not body.strip():
        return np.zeros(0)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            return np.loadtxt(io.StringIO(body), dtype=np.float64, ndmin=2).reshape(-1)
    except ValueError:
        pass  # ragged lines (frames wrapped by the writer) or a bad token: try number by number
    vals = []
    for tok in body.split():
        try:
            vals.append(float(tok))
        except ValueError:
            raise InputError(f"{source}: malformed BVH: non-numeric motion value {tok[:40]!r}") from None
    return np.array(vals, dtype=np.float64)


def read_bvh(path: str | os.PathLike[str]) -> BvhData:
    """Read and parse a BVH file (InputError when missing, too large or malformed)."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"BVH file not found: {p}")
    if p.stat().st_size > MAX_BVH_BYTES:
        raise InputError(f"{p.name}: larger than {MAX_BVH_BYTES >> 20} MB")
    try:
        text = p.read_text(encoding="utf-8", errors="strict")
    except UnicodeDecodeError:
        raise InputError(f"{p.name}: not a text BVH file") from None
    return parse_bvh(text, p.name)


def local_transforms(data: BvhData) -> tuple[np.ndarray, np.ndarray]:
    """Per-joint local rotations [N, J, 4] and translations [N, J, 3] (file unit) of parsed BVH.

    A joint's translation is its OFFSET unless it has position channels: the root's are its absolute position
    (as Blender reads them; when the OFFSET is non-zero and the channel height stays below half of it, they
    are taken as relative to the OFFSET), any other joint's replace its OFFSET.
    """
    n = data.frames.shape[0]
    rot = identity_quat(n, len(data.names))
    trans = np.repeat(data.offsets[None].astype(np.float64), n, axis=0)
    for j, (ch, c0) in enumerate(zip(data.channels, data.channel_index())):
        rcols = [c0 + k for k, c in enumerate(ch) if c in _AXES]
        if rcols:
            order = "".join(_AXES[ch[c - c0]] for c in rcols)
            rot[:, j] = euler_to_quat(data.frames[:, rcols], order)
        pcols = [(c0 + k, _POS.index(c)) for k, c in enumerate(ch) if c in _POS]
        if pcols:
            t = np.zeros((n, 3)) if j == 0 else trans[:, j].copy()
            for col, axis in pcols:
                t[:, axis] = data.frames[:, col]
            off = data.offsets[j]
            if j == 0 and np.linalg.norm(off) > 1e-6 and abs(t[:, 1].mean()) < 0.5 * abs(off[1]):
                t = t + off  # root channels relative to the OFFSET (they hover near 0)
            trans[:, j] = t
    return rot, trans


def _fk_with_translations(rot: np.ndarray, trans: np.ndarray, parents: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """World positions and rotations from per-frame local rotations and translations."""
    pos = np.zeros(trans.shape)
    glob = np.zeros(rot.shape)
    for k, p in enumerate(parents):
        if p < 0:
            glob[:, k], pos[:, k] = rot[:, k], trans[:, k]
        else:
            glob[:, k] = quat_mul(glob[:, p], rot[:, k])
            pos[:, k] = pos[:, p] + quat_apply(glob[:, p], trans[:, k])
    return pos, glob


# Name normalisation: strip rig prefixes, then recognise side and body part.
_PREFIX = re.compile(r"^(mixamorig\d*[:_]|bip0*1[ _]?|b_|j_bip_(?:c_)?|def[-_]|cc_base_|character\d*[:_])", re.I)
_NAMESPACE = re.compile(r"^.*[:|]")  # "Armature|", "Character1:", "rig:": anything up to the last ':' or '|'
_PARTS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Shoulder", ("shoulder", "clavicle", "collar")),
    ("UpperArm", ("upperarm", "uparm", "arm", "humerus")),
    ("LowerArm", ("lowerarm", "forearm", "elbow")),
    ("Hand", ("hand", "wrist")),
    ("UpperLeg", ("upperleg", "upleg", "thigh", "femur")),
    ("LowerLeg", ("lowerleg", "leg", "shin", "calf", "knee")),
    ("Foot", ("foot", "ankle")),
    ("Toes", ("toebase", "toes", "toe", "forefoot", "ball")),
)
_KNOWN_PARTS = frozenset(p for _, keys in _PARTS for p in keys)


_CENTRE = {"hips": "hips", "hip": "hips", "pelvis": "hips", "root": "hips", "head": "head", "neck": "neck",
           "neck0": "neck", "neck01": "neck", "neck1": "neck", "necktwist01": "neck"}
_CENTRE_RANK = {"root": 1}  # a "root" above the pelvis (Unreal, many exporters) loses to a hips/pelvis bone
#: Rigify's deform spine (DEF-spine, DEF-spine.001 ... .006): hips, spine, chest, upper chest, neck, -, head.
_RIGIFY_SPINE = {"spine": "hips", "spine001": "spine", "spine002": "chest", "spine003": "upperChest",
                 "spine004": "neck", "spine006": "head"}


def _canonical(name: str) -> tuple[str | None, str]:
    """(side 'left'/'right'/None, part) of a source bone name, e.g. 'mixamorig:LeftForeArm' -> ('left', 'forearm'),
    'LowerArmL' -> ('left', 'lowerarm'), 'shin_R' -> ('right', 'shin'), 'CC_Base_L_Upperarm' -> ('left', 'upperarm')."""
    s = _PREFIX.sub("", _NAMESPACE.sub("", _PREFIX.sub("", name.strip())))
    s = re.sub(r"[\s_.:\-]+", "", s.lower())
    if s in _CENTRE:
        return None, s
    parses = []
    for pre, sd in (("left", "left"), ("right", "right"), ("l", "left"), ("r", "right")):
        if s.startswith(pre) and len(s) > len(pre):
            parses.append((sd, s[len(pre):]))
    for suf, sd in (("left", "left"), ("right", "right"), ("l", "left"), ("r", "right")):
        if s.endswith(suf) and len(s) > len(suf) + 2:
            parses.append((sd, s[: -len(suf)]))
    for sd, part in parses:  # the reading that names a known part: 'lowerarml' is lowerarm + L, not L + owerarml
        if part in _KNOWN_PARTS:
            return sd, part
    return parses[0] if parses else (None, s)


def map_bone_names(names: list[str], parents: list[int], skeleton: Skeleton = HUMANOID) -> dict[str, int]:
    """Map our joint names onto source joint indices by name (limbs, head, hips) and by chain (spine)."""
    found: dict[str, tuple[int, int]] = {}  # ours -> (priority, source index); 0 is the best match
    canon = [_canonical(n) for n in names]
    rigify = {part for side, part in canon if side is None} >= {"spine", "spine004", "spine006"}
    for i, (side, part) in enumerate(canon):
        if side is None:
            key = _RIGIFY_SPINE.get(part) if rigify else _CENTRE.get(part)
            rank = 0 if rigify else _CENTRE_RANK.get(part, 0)
            if key and (key not in found or found[key][0] > rank):
                found[key] = (rank, i)
            continue
        for ours, keys in _PARTS:
            if part in keys:
                prio = keys.index(part)
                name = side + ours
                if name not in found or found[name][0] > prio:
                    found[name] = (prio, i)
                break
    out = {k: v[1] for k, v in found.items() if k in skeleton.joints}
    if rigify:
        return out
    # The spine: the source links strictly between the hips and the neck (or the shoulders) on one chain,
    # spread over spine / chest / upperChest; extra links fold into their children.
    top = out.get("neck", out.get("leftShoulder"))
    if "hips" in out and top is not None:
        chain = []
        k = parents[top]
        while k >= 0 and k != out["hips"]:
            chain.append(k)
            k = parents[k]
        chain = chain[::-1] if k == out["hips"] else []
        picks: dict[str, int] = {}
        if len(chain) == 1:
            picks = {"spine": chain[0]}
        elif len(chain) == 2:
            picks = {"spine": chain[0], "chest": chain[1]}
        elif len(chain) >= 3:
            picks = {"spine": chain[0], "chest": chain[(len(chain) - 1) // 2], "upperChest": chain[-1]}
        out.update({k: v for k, v in picks.items() if k in skeleton.joints})
    return out


def _figure_points(rest: np.ndarray, ends: list[np.ndarray]) -> np.ndarray:
    return np.concatenate([rest, np.array(ends, dtype=np.float64).reshape(-1, 3)])


def _main_child(skeleton: Skeleton, j: int) -> int | None:
    kids = [k for k, p in enumerate(skeleton.parents) if p == j]
    name = skeleton.joints[j]
    prefer = {"hips": "spine", "upperChest": "neck", "chest": "upperChest", "spine": "chest"}.get(name)
    for k in kids:
        if skeleton.joints[k] == prefer:
            return k
    return kids[0] if len(kids) == 1 else None


def facing_correction(rest: np.ndarray, mapping: dict[str, int]) -> np.ndarray:
    """Quaternion turning a source rig about Y so it faces +Z, judged from its left-right axis at rest.

    The character's left (left minus right upper leg, else upper arm) crossed with up is its forward.
    """
    for a, b in (("leftUpperLeg", "rightUpperLeg"), ("leftUpperArm", "rightUpperArm")):
        if a in mapping and b in mapping:
            left = rest[mapping[a]] - rest[mapping[b]]
            fwd = np.cross(left, [0.0, 1.0, 0.0])
            fwd[1] = 0.0
            if np.linalg.norm(fwd) > 1e-6:
                yaw = np.arctan2(fwd[0], fwd[2])  # angle of forward from +Z towards +X
                return quat_from_axis_angle(np.array([0.0, 1.0, 0.0]), np.array(-yaw), degrees=False)
    return identity_quat()


def bvh_to_motion(data: BvhData, skeleton: Skeleton = HUMANOID, scale: float | None = None) -> BodyMotion:
    """Retarget parsed BVH onto our skeleton as a BodyMotion (metres; scale=None detects cm or m)."""
    mapping = map_bone_names(data.names, data.parents, skeleton)
    needed = ("hips", "leftUpperArm", "rightUpperArm", "leftLowerArm", "rightLowerArm")
    missing = [n for n in needed if n not in mapping]
    if missing:
        raise InputError(f"BVH skeleton has no recognisable {', '.join(missing)} "
                         f"(joints: {', '.join(data.names[:12])}...)")
    src_skel = Skeleton(tuple(data.names), tuple(data.parents), data.offsets)
    src_rest = src_skel.rest_positions
    # The figure: the hips and everything below them (not a reference node above, which may sit on the floor).
    body = {mapping["hips"]}
    for j, p in enumerate(data.parents):
        if p in body:
            body.add(j)
    idx = sorted(body)
    allpos = _figure_points(src_rest[idx], [src_rest[j] + e for j, e in data.end_sites.items() if j in body])
    if scale is None:
        height = float(allpos[:, 1].max() - allpos[:, 1].min())
        scale = 0.01 if height > 3.0 else 1.0  # a human is 1-2 m tall: anything above 3 is centimetres
    rot, trans = local_transforms(data)
    if not any(c in _POS for ch in data.channels[: mapping["hips"] + 1] for c in ch):
        log.warning("BVH hips have no position channels: the hips stay at their rest position")
    src_pos, g_src = _fk_with_translations(rot, trans, data.parents)
    root = src_pos[:, mapping["hips"]]
    # Rigs that face -Z or +X are turned to face +Z: rest directions, world rotations and root all turn.
    q_face = facing_correction(src_rest, mapping)
    turn = float(quat_angle(q_face)) > 1e-3
    if turn:
        log.info("BVH rig faces %.0f degrees away from +Z: turned", float(quat_angle(q_face)))
        src_rest = quat_apply(q_face, src_rest)
        qf = np.broadcast_to(q_face, g_src.shape)
        g_src = quat_mul(quat_mul(qf, g_src), quat_inv(qf))
        root = quat_apply(q_face, root)

    # World rotation of each of our joints; unmapped joints follow their parent (local identity).
    J = len(skeleton.joints)
    n = rot.shape[0]
    g_ours = identity_quat(n, J)
    ours_rest = skeleton.rest_positions
    for j, name in enumerate(skeleton.joints):
        s = mapping.get(name)
        p = skeleton.parents[j]
        if s is None:
            g_ours[:, j] = g_ours[:, p] if p >= 0 else identity_quat(n)
            continue
        corr = identity_quat()
        c = _main_child(skeleton, j)
        d_ours = None
        if c is not None:
            d_ours = ours_rest[c] - ours_rest[j]
        elif name in skeleton.end_sites:
            d_ours = np.asarray(skeleton.end_sites[name], dtype=np.float64)
        d_src = None
        if c is not None and skeleton.joints[c] in mapping:
            d_src = src_rest[mapping[skeleton.joints[c]]] - src_rest[s]
        elif s in data.end_sites:
            d_src = quat_apply(q_face, data.end_sites[s])
        else:
            kids = [k for k, pp in enumerate(data.parents) if pp == s]
            if len(kids) == 1:
                d_src = quat_apply(q_face, data.offsets[kids[0]])
        if name != "hips" and d_ours is not None and d_src is not None and np.linalg.norm(d_src) > 1e-9:
            corr = _rotation_between(d_ours[None], np.asarray(d_src, dtype=np.float64)[None])[0]
        g_ours[:, j] = quat_mul(g_src[:, s], corr)
    local = identity_quat(n, J)
    for j, p in enumerate(skeleton.parents):
        local[:, j] = g_ours[:, j] if p < 0 else quat_mul(quat_inv(g_ours[:, p]), g_ours[:, j])
    # Root position in metres, scaled from the source's hip height to ours so the feet stay on the floor.
    src_hip_h = (src_rest[mapping["hips"], 1] - allpos[:, 1].min()) * scale
    ours_ends = [ours_rest[skeleton.index(n)] + np.asarray(e) for n, e in skeleton.end_sites.items()]
    ours_all = _figure_points(ours_rest, ours_ends)
    ours_hip_h = ours_rest[0, 1] - ours_all[:, 1].min()
    k = ours_hip_h / src_hip_h if src_hip_h > 1e-6 else 1.0
    root_m = root * scale * k
    return BodyMotion(fps=data.fps, joints=skeleton.joints, rotations=quat_normalize(local).astype(np.float32),
                      root_position=root_m.astype(np.float32))


def load_bvh(path: str | os.PathLike[str], skeleton: Skeleton = HUMANOID, scale: float | None = None) -> BodyMotion:
    """Read a BVH file and retarget it onto our skeleton."""
    return bvh_to_motion(read_bvh(path), skeleton, scale)
