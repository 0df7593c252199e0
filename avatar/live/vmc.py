"""VMC protocol sender: one live frame -> one OSC bundle over UDP, as a VMC "Performer" sends to a "Marionette".

Followed: the VMC Protocol specification v2.x (https://protocol.vmc.info/english.html), the messages a
Performer sends to a Marionette (default port 39539), per frame and in this order:

    /VMC/Ext/OK        (int 1)                                   a model is loaded
    /VMC/Ext/T         (float stream time, s)
    /VMC/Ext/Root/Pos  ("root", p.x p.y p.z, q.x q.y q.z q.w)    identity: the avatar stands at the origin
    /VMC/Ext/Bone/Pos  (name, p.x p.y p.z, q.x q.y q.z q.w)      every humanoid bone, local position + rotation
    /VMC/Ext/Blend/Val (name, value)                             VRM presets, then the 52 ARKit shapes
    /VMC/Ext/Blend/Apply                                         once, after the frame's values

Bone names are Unity HumanBodyBones (Hips, Spine, Chest, UpperChest, Neck, Head, LeftShoulder, LeftUpperArm,
..., LeftEye, RightEye), mapped from our VRM humanoid names by avatar.rig.skeleton.UNITY_BONES.

Coordinates: our motion is glTF/VRM 1.0 (right-handed, Y up, the avatar faces +Z, its left is +X); Unity is
left-handed, Y up, and a VRM avatar there faces +Z too. UniVRM converts VRM 1.0 by mirroring X, so we do the
same: a position (x, y, z) becomes (-x, y, z) and a rotation quaternion (x, y, z, w) becomes (x, -y, -z, w)
(mirroring reverses the rotation sense, so the axis' y and z flip with it). Rotations are local, relative to
the T-pose with identity rest rotations (VRM normalised bones), which is what VMC receivers apply; positions
are the bone's offset from its parent in our default skeleton (hips: the root position).

Each frame goes out as one OSC bundle (timetag "immediately") so its messages stay together; sending is a
non-blocking UDP sendto, and errors (no receiver: ICMP port unreachable, no route) are counted, never raised.
"""

from __future__ import annotations

import logging
import socket
import struct
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np

from avatar.errors import InputError
from avatar.face.rig import VRM0_NAMES, VRM_EXPRESSIONS
from avatar.rig.skeleton import HUMANOID, UNITY_BONES
from avatar.types import ARKIT_BLENDSHAPES

if TYPE_CHECKING:
    from avatar.live.frames import LiveFrame

log = logging.getLogger(__name__)

DEFAULT_PORT = 39539
#: VRM 0.x BlendShapePreset names as VMC receivers (VSeeFace, EVMC4U, VirtualMotionCapture) key them.
VRM0_PRESET_NAMES: dict[str, str] = {
    "a": "A", "i": "I", "u": "U", "e": "E", "o": "O", "joy": "Joy", "angry": "Angry", "sorrow": "Sorrow",
    "fun": "Fun", "surprised": "Surprised", "blink": "Blink", "blink_l": "Blink_L", "blink_r": "Blink_R",
    "lookup": "LookUp", "lookdown": "LookDown", "lookleft": "LookLeft", "lookright": "LookRight",
}
#: Eye joints (VRM leftEye/rightEye) relative to the head joint, metres, glTF axes (the default avatar's).
EYE_OFFSETS: dict[str, tuple[float, float, float]] = {"leftEye": (0.032, 0.06, 0.075),
                                                       "rightEye": (-0.032, 0.06, 0.075)}


def parse_hostport(text: str, default_port: int = DEFAULT_PORT, names: bool = False) -> tuple[str, int]:
    """'HOST:PORT', 'HOST' or ':PORT' -> (host, port); InputError when malformed. HOST is a numeric address or
    `localhost` unless `names` (`--vmc-resolve`): a typo must not become a DNS query for a name on the network."""
    s = str(text).strip()
    if not s:
        raise InputError("empty --vmc target; use HOST:PORT, e.g. 127.0.0.1:39539")
    host, sep, port_s = s.rpartition(":") if ":" in s else (s, "", "")
    if not sep:
        host, port = s, default_port
    else:
        try:
            port = int(port_s)
        except ValueError:
            raise InputError(f"bad port in {text!r}; use HOST:PORT") from None
    host = host.strip("[]") or "127.0.0.1"
    if not 1 <= port <= 65535:
        raise InputError(f"port must be in 1..65535, got {port}")
    if not names and host.lower() != "localhost":
        import ipaddress

        try:
            ipaddress.ip_address(host)
        except ValueError:
            raise InputError(f"--vmc {text!r}: {host!r} is not a numeric address (e.g. 127.0.0.1, ::1) or "
                             "localhost; add --vmc-resolve to look a host name up") from None
    return host, port


def to_unity_position(p: np.ndarray) -> np.ndarray:
    """glTF (right-handed, +Z forward) position(s) [..., 3] -> Unity (left-handed) by mirroring X."""
    out = np.array(p, dtype=np.float64, copy=True)
    out[..., 0] *= -1.0
    return out


def to_unity_rotation(q: np.ndarray) -> np.ndarray:
    """glTF quaternion(s) (x, y, z, w) [..., 4] -> Unity's under the X mirror: (x, -y, -z, w)."""
    out = np.array(q, dtype=np.float64, copy=True)
    out[..., 1] *= -1.0
    out[..., 2] *= -1.0
    return out


@dataclass(frozen=True)
class VMCOptions:
    """What the sender puts in each frame."""

    blend_names: str = "vrm0"   # "vrm0" (A, Joy, Blink_L ...) or "vrm1" (aa, happy, blinkLeft ...)
    arkit: bool = True          # also send the 52 ARKit shapes ("perfect sync" receivers)
    arkit_case: str = "apple"   # "apple" (eyeBlinkLeft) or "upper" (EyeBlinkLeft, VRM 0.x clip style)

    def __post_init__(self) -> None:
        if self.blend_names not in ("vrm0", "vrm1"):
            raise InputError(f"blend names must be vrm0 or vrm1, got {self.blend_names!r}")
        if self.arkit_case not in ("apple", "upper"):
            raise InputError(f"ARKit name case must be apple or upper, got {self.arkit_case!r}")


@lru_cache(maxsize=16)
def blend_names(opts: VMCOptions) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(VRM expression names in VRM_EXPRESSIONS order, ARKit names) as they go on the wire."""
    if opts.blend_names == "vrm1":
        vrm = tuple(VRM_EXPRESSIONS)
    else:
        vrm = tuple(VRM0_PRESET_NAMES[VRM0_NAMES[n]] for n in VRM_EXPRESSIONS)
    ark = ARKIT_BLENDSHAPES if opts.arkit_case == "apple" else tuple(n[0].upper() + n[1:] for n in ARKIT_BLENDSHAPES)
    return vrm, ark


#: Unity HumanBodyBones names in send order: the skeleton's joints, then the eyes.
BONE_NAMES: tuple[str, ...] = tuple(UNITY_BONES[n] for n in HUMANOID.joints) + ("LeftEye", "RightEye")


def _osc_string(s: str) -> bytes:
    b = s.encode("utf-8") + b"\0"
    return b + b"\0" * (-len(b) % 4)


@lru_cache(maxsize=4096)
def _prefix(address: str, tags: str, name: str | None = None) -> bytes:
    """The constant head of a message: address, type tags and (when given) the leading string argument."""
    return _osc_string(address) + _osc_string("," + tags) + (b"" if name is None else _osc_string(name))


def _message(address: str, tags: str, name: str | None, values: tuple[float, ...] | tuple[int, ...],
             fmt: str) -> bytes:
    return _prefix(address, tags, name) + struct.pack(fmt, *values)


_BUNDLE_HEAD = _osc_string("#bundle") + struct.pack(">Q", 1)  # timetag 1: "immediately" (OSC 1.0)


@dataclass(frozen=True)
class AvatarProfile:
    """What the receiver's avatar (the user's file) maps, so the stream speaks its names (`avatar_profile`).

    Bones: only the humanoid bones and eyes the avatar has (rows of BONE_NAMES); a bone it lacks passes its
    rotation on to its mapped children (a normalised child's local rotation is then the missing parent's times
    its own), and positions are the avatar's own rest offsets, so a receiver that applies bone positions keeps
    its proportions. Blend shapes: the VRM presets it defines, under the names of its VRM version, the ARKit
    shapes as it spells them (VRM 0.x blend shape groups, VRM 1.0 custom expressions, else morph target names),
    and a plain glTF's stand-in shapes (`mouthOpen`, `viseme_aa` ...) under their own names, valued as the
    renderer drives them.
    """

    name: str
    rows: tuple[int, ...]  # rows of BONE_NAMES sent, in order
    fold: tuple[tuple[int, tuple[int, ...]], ...]  # (row, the missing ancestors' rows, root first)
    offsets: np.ndarray  # [J + 2, 3] rest offset from the mapped parent, our axes (glTF, facing +Z), metres
    hips_rest: np.ndarray  # [3] the avatar's hips rest position, our axes
    hip_scale: float  # the avatar's hip height / ours: scales the root displacement
    vrm_names: tuple[tuple[int, str], ...]  # (index into VRM_EXPRESSIONS, wire name)
    arkit_names: tuple[tuple[int, str], ...]  # (index into ARKIT_BLENDSHAPES, wire name)
    #: A plain glTF's stand-in shapes (avatar.render.face_binding: mouthOpen, viseme_aa ...): (channel, wire name).
    stand_ins: tuple[tuple[str, str], ...] = ()

    def rotations(self, local: np.ndarray) -> np.ndarray:
        """Local rotations [J + 2, 4] with each missing bone's rotation folded into its mapped children."""
        from avatar.live.frames import quat_mul

        if not self.fold:
            return local
        out = np.array(local, dtype=np.float64, copy=True)
        for row, chain in self.fold:
            q = local[chain[0]]
            for r in chain[1:]:
                q = quat_mul(q, local[r])
            out[row] = quat_mul(q, local[row])
        return out

    def positions(self, root: np.ndarray) -> np.ndarray:
        """Local positions [J + 2, 3]: the avatar's offsets, the hips moved by our root displacement, scaled."""
        out = np.array(self.offsets, dtype=np.float64, copy=True)
        out[0] = self.hips_rest + (np.asarray(root, dtype=np.float64) - HUMANOID.rest_positions[0]) * self.hip_scale
        return out


def avatar_profile(avatar, opts: VMCOptions = VMCOptions()) -> AvatarProfile:  # noqa: ANN001 - a render Avatar
    """The VMC names and offsets of a loaded avatar (avatar.render.avatar_file.Avatar); `opts` names the presets
    of a plain glTF (no VRM extension) and says whether ARKit shapes are sent at all."""
    from avatar.render.face_binding import arkit_name
    from avatar.render.pose import build_rig

    if "hips" not in avatar.bones:
        raise InputError(f"{avatar.path.name}: no hips bone, so no humanoid for VMC (see docs/render.md)")
    rig = build_rig(avatar)
    flip = np.diag([-1.0, 1.0, -1.0]) if avatar.faces_minus_z else np.eye(3)
    world = rig.rest_world[:, :3, 3] @ flip.T  # rest world positions in our axes
    J = len(HUMANOID.joints)
    node = {j: avatar.bones[b] for j, b in enumerate(HUMANOID.joints) if b in avatar.bones}
    offsets = np.zeros((J + 2, 3))
    rows: list[int] = []
    fold: list[tuple[int, tuple[int, ...]]] = []
    for j in range(J):
        if j not in node:
            continue
        rows.append(j)
        chain, p = [], HUMANOID.parents[j]
        while p >= 0 and p not in node:
            chain.append(p)
            p = HUMANOID.parents[p]
        if chain:
            fold.append((j, tuple(reversed(chain))))
        offsets[j] = world[node[j]] - (world[node[p]] if p >= 0 else 0.0)
    head = avatar.bones.get("head")
    for k, eye in enumerate(("leftEye", "rightEye")):
        if eye in avatar.eyes and head is not None:
            rows.append(J + k)
            offsets[J + k] = world[avatar.eyes[eye]] - world[head]
    hips = avatar.bones["hips"]
    vrm_idx = {n: i for i, n in enumerate(VRM_EXPRESSIONS)}
    ark_idx = {n: i for i, n in enumerate(ARKIT_BLENDSHAPES)}
    vrm: dict[int, str] = {}
    ark: dict[int, str] = {}
    stand_ins: list[tuple[str, str]] = []
    ext = avatar.gltf.extensions or {}
    if "VRMC_vrm" in ext:
        expr = ext["VRMC_vrm"].get("expressions", {}) or {}
        vrm = {vrm_idx[n]: n for n in (expr.get("preset") or {}) if n in vrm_idx}
        custom = list(expr.get("custom") or {})
    elif "VRM" in ext:
        from_vrm0 = {v: k for k, v in VRM0_NAMES.items()}
        groups = (ext["VRM"].get("blendShapeMaster", {}) or {}).get("blendShapeGroups", []) or []
        for grp in groups:
            preset = str(grp.get("presetName", "")).lower()
            if preset in from_vrm0 and from_vrm0[preset] in vrm_idx:
                vrm[vrm_idx[from_vrm0[preset]]] = VRM0_PRESET_NAMES[preset]
        custom = [str(g.get("name", "")) for g in groups if str(g.get("presetName", "")).lower() in ("", "unknown")]
    else:
        names, _ = blend_names(opts)
        vrm = dict(enumerate(names))
        custom = list(avatar.target_names)
        from avatar.render.avatar_file import morph_target_names

        wire = set(names)
        for channel, binds in sorted(avatar.fallback.items()):
            for mesh, target, _ in binds[:1]:
                tn = morph_target_names(avatar.gltf.meshes[mesh])
                if target < len(tn) and tn[target] not in wire:
                    stand_ins.append((channel, tn[target]))
                    wire.add(tn[target])
    for name in custom:  # the avatar's own spelling of each ARKit shape (first one wins)
        a = arkit_name(name)
        if a is not None and ark_idx[a] not in ark:
            ark[ark_idx[a]] = name
    return AvatarProfile(
        name=avatar.path.name, rows=tuple(rows), fold=tuple(fold), offsets=offsets, hips_rest=world[hips],
        hip_scale=rig.hip_scale, vrm_names=tuple(sorted(vrm.items())),
        arkit_names=tuple(sorted(ark.items())) if opts.arkit else (), stand_ins=tuple(stand_ins))


def bundle_for(frame: LiveFrame, opts: VMCOptions = VMCOptions(), profile: AvatarProfile | None = None) -> bytes:
    """The OSC bundle (bytes) of one live frame (a live.frames.LiveFrame): OK, T, Root, every Bone, Blend values,
    Apply; with a `profile`, the bones, offsets and blend shape names of that avatar.

    Encoded here with struct and cached message heads (OSC 1.0: big-endian int32/float32 arguments, strings
    NUL-padded to 4 bytes, bundle elements prefixed by their size) because python-osc's builder takes ~10 ms
    for the ~100 messages of a frame, most of a 60 fps frame budget; the tests parse it back with python-osc.
    """
    msgs = [
        _message("/VMC/Ext/OK", "i", None, (1,), ">i"),
        _message("/VMC/Ext/T", "f", None, (float(frame.time),), ">f"),
        _message("/VMC/Ext/Root/Pos", "sfffffff", "root", (0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0), ">7f"),
    ]
    local = frame.local_rotations()
    if profile is None:
        rows: "range | tuple[int, ...]" = range(len(BONE_NAMES))
        pos, rot = frame.local_positions(), local
    else:
        rows, pos, rot = profile.rows, profile.positions(frame.root), profile.rotations(local)
    pr = np.concatenate([to_unity_position(pos), to_unity_rotation(rot)], axis=1).tolist()
    for r in rows:
        msgs.append(_message("/VMC/Ext/Bone/Pos", "sfffffff", BONE_NAMES[r], tuple(pr[r]), ">7f"))
    vrm_names, ark_names = blend_names(opts)
    if profile is None:
        vrm_pairs = list(enumerate(vrm_names))
        ark_pairs = list(enumerate(ark_names)) if opts.arkit else []
    else:
        vrm_pairs, ark_pairs = list(profile.vrm_names), list(profile.arkit_names)
    vrm_values, ark_values = frame.vrm.tolist(), frame.arkit.tolist()
    for i, name in vrm_pairs:
        msgs.append(_message("/VMC/Ext/Blend/Val", "sf", name, (vrm_values[i],), ">f"))
    for i, name in ark_pairs:
        msgs.append(_message("/VMC/Ext/Blend/Val", "sf", name, (ark_values[i],), ">f"))
    if profile is not None and profile.stand_ins:
        from avatar.render.face_binding import fallback_weights

        w = fallback_weights(frame.arkit, frozenset(c for c, _ in profile.stand_ins))
        for channel, name in profile.stand_ins:
            msgs.append(_message("/VMC/Ext/Blend/Val", "sf", name, (float(w.get(channel, 0.0)),), ">f"))
    msgs.append(_prefix("/VMC/Ext/Blend/Apply", ""))
    return _BUNDLE_HEAD + b"".join(struct.pack(">i", len(m)) + m for m in msgs)


@dataclass
class VMCSender:
    """Sends frames as OSC bundles over UDP, fire-and-forget: a missing or slow receiver never blocks."""

    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    options: VMCOptions = field(default_factory=VMCOptions)
    sent: int = 0
    errors: int = 0
    resolve: bool = False  # look host names up (DNS); else only numeric addresses and localhost
    profile: AvatarProfile | None = None  # the receiver's avatar: its bones, offsets and blend shape names

    def __post_init__(self) -> None:
        host = "127.0.0.1" if self.host.lower() == "localhost" else self.host
        flags = 0 if self.resolve else socket.AI_NUMERICHOST  # never a DNS query unless asked for
        try:
            infos = socket.getaddrinfo(host, self.port, type=socket.SOCK_DGRAM, flags=flags)
        except socket.gaierror as exc:
            raise InputError(f"cannot resolve VMC host {self.host!r}: {exc}") from None
        family, _, _, _, addr = infos[0]
        self._addr = addr
        self._sock = socket.socket(family, socket.SOCK_DGRAM)
        self._sock.setblocking(False)  # a full send buffer drops the frame instead of waiting

    def send(self, frame) -> bool:  # noqa: ANN001 - a live.frames.LiveFrame
        """Send one frame; False (and counted) when the OS refused it."""
        data = bundle_for(frame, self.options, self.profile)
        try:
            self._sock.sendto(data, self._addr)
        except OSError as exc:  # ECONNREFUSED after an ICMP unreachable, EAGAIN, ENETUNREACH ...
            self.errors += 1
            if self.errors in (1, 100, 10000):
                log.info("VMC send to %s:%d failed (%s); %d so far, still sending", self.host, self.port, exc,
                         self.errors)
            return False
        self.sent += 1
        return True

    def frame(self, frame) -> None:  # noqa: ANN001 - the stream's sink interface
        """Send one frame (sink interface)."""
        self.send(frame)

    def audio(self, first_sample: int, samples: np.ndarray) -> None:
        """VMC carries no audio."""

    def close(self) -> None:
        """Close the socket."""
        self._sock.close()
