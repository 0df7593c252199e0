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

import numpy as np

from avatar.errors import InputError
from avatar.face.rig import VRM0_NAMES, VRM_EXPRESSIONS
from avatar.rig.skeleton import HUMANOID, UNITY_BONES
from avatar.types import ARKIT_BLENDSHAPES

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


def bundle_for(frame, opts: VMCOptions = VMCOptions()) -> bytes:  # noqa: ANN001 - a live.frames.LiveFrame
    """The OSC bundle (bytes) of one live frame: OK, T, Root, every Bone, Blend values, Apply.

    Encoded here with struct and cached message heads (OSC 1.0: big-endian int32/float32 arguments, strings
    NUL-padded to 4 bytes, bundle elements prefixed by their size) because python-osc's builder takes ~10 ms
    for the ~100 messages of a frame, most of a 60 fps frame budget; the tests parse it back with python-osc.
    """
    msgs = [
        _message("/VMC/Ext/OK", "i", None, (1,), ">i"),
        _message("/VMC/Ext/T", "f", None, (float(frame.time),), ">f"),
        _message("/VMC/Ext/Root/Pos", "sfffffff", "root", (0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0), ">7f"),
    ]
    pos = to_unity_position(frame.local_positions())
    rot = to_unity_rotation(frame.local_rotations())
    pr = np.concatenate([pos, rot], axis=1).tolist()
    for name, row in zip(BONE_NAMES, pr):
        msgs.append(_message("/VMC/Ext/Bone/Pos", "sfffffff", name, tuple(row), ">7f"))
    vrm_names, ark_names = blend_names(opts)
    for name, v in zip(vrm_names, frame.vrm.tolist()):
        msgs.append(_message("/VMC/Ext/Blend/Val", "sf", name, (v,), ">f"))
    if opts.arkit:
        for name, v in zip(ark_names, frame.arkit.tolist()):
            msgs.append(_message("/VMC/Ext/Blend/Val", "sf", name, (v,), ">f"))
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
        data = bundle_for(frame, self.options)
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
