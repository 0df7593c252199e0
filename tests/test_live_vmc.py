"""VMC protocol output: bundles received by a python-osc server on loopback, conversions, a missing receiver."""

from __future__ import annotations

import socket
import threading
import time

import numpy as np
import pytest

from avatar.errors import InputError
from avatar.rig.skeleton import HUMANOID
from avatar.live.frames import LiveFrame
from avatar.live.vmc import BONE_NAMES, VMCOptions, VMCSender, bundle_for, parse_hostport, to_unity_rotation
from avatar.types import FACE_CHANNELS, VAD

# Unity's HumanBodyBones enum names (the humanoid subset VMC receivers accept).
UNITY_HUMAN_BODY_BONES = {
    "Hips", "LeftUpperLeg", "RightUpperLeg", "LeftLowerLeg", "RightLowerLeg", "LeftFoot", "RightFoot", "Spine",
    "Chest", "UpperChest", "Neck", "Head", "LeftShoulder", "RightShoulder", "LeftUpperArm", "RightUpperArm",
    "LeftLowerArm", "RightLowerArm", "LeftHand", "RightHand", "LeftToes", "RightToes", "LeftEye", "RightEye", "Jaw",
}


class Receiver:
    """A python-osc ThreadingOSCUDPServer on 127.0.0.1 (free port) recording each packet.

    The threading server handles datagrams on several threads, so packets are recorded whole (atomically) to
    keep each frame's bundle together, and parsed with python-osc afterwards (parsing ~100 messages per
    packet while receiving would slow the receiver enough to overflow its socket on a busy machine).
    """

    def __init__(self) -> None:
        from pythonosc.dispatcher import Dispatcher
        from pythonosc.osc_server import ThreadingOSCUDPServer

        rx = self
        self.packets: list[tuple[float, bytes]] = []
        self.lock = threading.Lock()

        class PacketDispatcher(Dispatcher):
            def call_handlers_for_packet(self, data, client_address):
                t = time.monotonic()
                with rx.lock:
                    rx.packets.append((t, bytes(data)))
                return []

        self.server = ThreadingOSCUDPServer(("127.0.0.1", 0), PacketDispatcher())
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def frames(self) -> list[list[tuple[float, str, tuple]]]:
        """Messages per received packet (one bundle = one frame): [(arrival time, address, args)]."""
        from pythonosc.osc_packet import OscPacket

        with self.lock:
            packets = list(self.packets)
        return [[(t, m.message.address, tuple(m.message.params)) for m in OscPacket(data).messages]
                for t, data in packets]

    @property
    def got(self) -> list[tuple[float, str, tuple]]:
        return [m for fr in self.frames() for m in fr]


def _rot_matrix(q: np.ndarray) -> np.ndarray:
    x, y, z, w = q
    return np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
                     [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
                     [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])


def test_unity_rotation_is_the_x_mirror_of_the_gltf_one() -> None:
    rng = np.random.default_rng(0)
    m = np.diag([-1.0, 1.0, 1.0])
    for q in rng.normal(size=(20, 4)):
        q /= np.linalg.norm(q)
        assert np.allclose(_rot_matrix(to_unity_rotation(q)), m @ _rot_matrix(q) @ m, atol=1e-9)
    # A head turned to the avatar's own left (+yaw about +Y in glTF) turns it to its left in Unity too:
    # its forward +Z goes to -X there (Unity's left, the avatar facing +Z).
    yaw = np.array([0.0, np.sin(0.25), 0.0, np.cos(0.25)])
    fwd = _rot_matrix(to_unity_rotation(yaw)) @ np.array([0.0, 0.0, 1.0])
    assert fwd[0] < -0.4


@pytest.mark.parametrize("text,expected", [("127.0.0.1:39539", ("127.0.0.1", 39539)),
                                           ("localhost", ("localhost", 39539)), (":40000", ("127.0.0.1", 40000))])
def test_parse_hostport(text: str, expected: tuple[str, int]) -> None:
    assert parse_hostport(text) == expected


@pytest.mark.parametrize("bad", ["", "host:port", "host:0", "host:70000"])
def test_parse_hostport_refuses_bad_targets(bad: str) -> None:
    with pytest.raises(InputError):
        parse_hostport(bad)


def _frame(yaw: float = 0.0) -> LiveFrame:
    face = np.zeros(len(FACE_CHANNELS))
    face[FACE_CHANNELS.index("jawOpen")] = 0.6
    face[FACE_CHANNELS.index("headYaw")] = yaw
    rot = np.zeros((len(HUMANOID.joints), 4))
    rot[:, 3] = 1.0
    return LiveFrame(index=3, time=0.05, face=face, rotations=rot, root=np.array([0.1, 0.95, 0.0]))


def test_bundle_contents_and_order() -> None:
    from pythonosc.osc_bundle import OscBundle

    bundle = OscBundle(bundle_for(_frame(yaw=0.3), VMCOptions()))
    msgs = [m for m in bundle]
    addrs = [m.address for m in msgs]
    assert addrs[0] == "/VMC/Ext/OK" and addrs[1] == "/VMC/Ext/T" and addrs[2] == "/VMC/Ext/Root/Pos"
    assert addrs[-1] == "/VMC/Ext/Blend/Apply" and addrs.count("/VMC/Ext/Blend/Apply") == 1
    bones = {m.params[0]: m.params[1:] for m in msgs if m.address == "/VMC/Ext/Bone/Pos"}
    assert set(bones) == set(BONE_NAMES) and set(bones) <= UNITY_HUMAN_BODY_BONES
    assert np.allclose(bones["Hips"][:3], [-0.1, 0.95, 0.0], atol=1e-6)  # X mirrored
    assert np.allclose(bones["LeftUpperArm"][:3], [-0.15, 0.0, 0.0], atol=1e-6)  # the avatar's left is Unity -X
    # The face's head yaw lands on the Head bone, mirrored: (0, -sin, 0, cos).
    assert np.allclose(bones["Head"][3:], [0.0, -np.sin(0.15), 0.0, np.cos(0.15)], atol=1e-5)
    vals = {m.params[0]: m.params[1] for m in msgs if m.address == "/VMC/Ext/Blend/Val"}
    assert vals["jawOpen"] == pytest.approx(0.6) and vals["A"] > 0.3  # ARKit + VRM 0.x preset names
    vrm1 = {m.params[0] for m in OscBundle(bundle_for(_frame(), VMCOptions(blend_names="vrm1", arkit=False)))
            if m.address == "/VMC/Ext/Blend/Val"}
    assert "aa" in vrm1 and "happy" in vrm1 and "jawOpen" not in vrm1


@pytest.fixture(scope="module")
def streamed():
    """A procedural live stream at 60 fps to a loopback receiver: 0.6 s idle, then one line spoken."""
    from avatar.live.stream import LiveStream, StreamConfig

    rx = Receiver()
    stream = LiveStream(StreamConfig(fps=60, motion="procedural", vad=VAD(0.6, 0.4, 0.1)),
                        [VMCSender("127.0.0.1", rx.port)])
    stream.start()
    time.sleep(0.6)
    said = time.monotonic()
    stream.say("Hello there, nice to meet you.")
    assert stream.wait_drained(30)
    time.sleep(0.2)
    stream.close()
    rx.close()
    return {"rx": rx, "said": said, "stats": stream.stats}


def test_stream_sends_whole_frames_with_apply(streamed) -> None:
    frames = streamed["rx"].frames()
    # Loopback UDP loses nothing unless this machine is starved (then the receiver's buffer overflows).
    assert len(frames) > 30 and len(frames) <= streamed["stats"].frames
    for fr in frames[:: max(1, len(frames) // 50)]:
        addrs = [m[1] for m in fr]
        assert addrs.count("/VMC/Ext/Blend/Apply") == 1 and addrs.count("/VMC/Ext/T") == 1
        bones = [m[2][0] for m in fr if m[1] == "/VMC/Ext/Bone/Pos"]
        assert set(bones) == set(BONE_NAMES)
        for m in fr:
            if m[1] == "/VMC/Ext/Bone/Pos":
                q = np.array(m[2][4:8])
                assert np.isfinite(m[2][1:]).all() and abs(np.linalg.norm(q) - 1) < 1e-3
            if m[1] == "/VMC/Ext/Blend/Val":
                assert 0.0 <= m[2][1] <= 1.0
    times = np.array(sorted(next(m[2][0] for m in fr if m[1] == "/VMC/Ext/T") for fr in frames))
    assert np.all(np.diff(times) > 0)  # one packet per frame, each frame once
    k = times * 60
    assert np.allclose(k, np.round(k), atol=1e-3)  # frame k is stamped k / fps: the clock's grid, exactly


def test_the_line_opens_the_mouth_after_it_is_sent(streamed) -> None:
    rx, said = streamed["rx"], streamed["said"]
    before = [m for m in rx.got if m[0] < said and m[1] == "/VMC/Ext/Blend/Val" and m[2][0] in "AIUEO"]
    assert before and max(m[2][1] for m in before) < 0.05  # idle: the mouth is shut
    vowels = [m for m in rx.got if m[0] >= said and m[1] == "/VMC/Ext/Blend/Val" and m[2][0] in "AIUEO"
              and m[2][1] > 0.1]
    assert vowels, "no vowel shape arrived"
    assert vowels[0][0] - said < 10.0  # generous (shared CI machines); bench/live_bench.py measures latency
    joy = [m[2][1] for m in rx.got if m[0] >= said and m[1] == "/VMC/Ext/Blend/Val" and m[2][0] == "Joy"]
    assert max(joy) > 0.05  # the positive valence shows


def test_missing_receiver_never_blocks() -> None:
    from avatar.live.stream import LiveStream, StreamConfig

    # A closed UDP port: nothing reads it, and ICMP "port unreachable" answers must not stall the sender.
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    probe.bind(("127.0.0.1", 0))
    dead_port = probe.getsockname()[1]
    probe.close()
    sender = VMCSender("127.0.0.1", dead_port)
    durations = []
    send = sender.send

    def timed(frame) -> bool:
        t = time.perf_counter()
        ok = send(frame)
        durations.append(time.perf_counter() - t)
        return ok

    sender.send = timed
    stream = LiveStream(StreamConfig(fps=60, motion="procedural", vad=VAD(0.0, 0.0, 0.0)), [sender])
    stream.start()
    start = time.monotonic()
    stream.say("Nobody is listening.")
    assert stream.wait_drained(60)
    elapsed = time.monotonic() - start
    frames = stream.stats.frames
    stream.close()
    assert stream.stats.errors == []
    assert abs(sender.sent + sender.errors - frames) <= 1 and len(durations) > 30
    # Each send is a non-blocking sendto: about a millisecond, never a wait for the (absent) receiver (the
    # median, as a starved machine may preempt the thread inside a few of them).
    assert np.median(durations) < 0.02 and elapsed < 30


def test_vmc_targets_are_numeric_or_localhost_unless_resolving_is_asked_for(monkeypatch) -> None:
    import socket

    asked: list[str] = []
    real = socket.getaddrinfo

    def spy(host, *a, **kw):
        if not kw.get("flags", 0) & socket.AI_NUMERICHOST:
            asked.append(host)  # a lookup that may go to DNS
        return real(host, *a, **kw)

    monkeypatch.setattr(socket, "getaddrinfo", spy)
    for bad in ("foo", "foo:39539", "my-pc.local:1234"):
        with pytest.raises(InputError, match="--vmc-resolve"):
            parse_hostport(bad)
    assert parse_hostport("[::1]:39540") == ("::1", 39540)
    assert parse_hostport("foo:39539", names=True) == ("foo", 39539)
    for host in ("127.0.0.1", "localhost", "::1"):
        VMCSender(host, 39539).close()
    with pytest.raises(InputError, match="cannot resolve"):
        VMCSender("foo", 39539)  # not numeric: refused without a lookup
    assert asked == []


def test_cli_stream_refuses_a_host_name_without_looking_it_up() -> None:
    import os
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "avatar.cli", "stream", "--vmc", "foo", "--no-play"], input="",
                          capture_output=True, text=True, timeout=60, env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert proc.returncode == 2 and proc.stderr.startswith("error: --vmc 'foo': 'foo' is not a numeric address")
    assert len(proc.stderr.strip().splitlines()) == 1


# ------------------------------------------------------------------------------- the receiver's own avatar

def _avatar_bundle(path, frame: LiveFrame) -> dict:  # noqa: ANN001
    """The VMC bundle of `frame` for the avatar file at `path`: {bones: name -> 7 values, blend: name -> value}."""
    from pythonosc.osc_bundle import OscBundle

    from avatar.live.vmc import avatar_profile
    from avatar.render.avatar_file import load_avatar

    profile = avatar_profile(load_avatar(path))
    msgs = list(OscBundle(bundle_for(frame, VMCOptions(), profile)))
    return {"bones": {m.params[0]: np.array(m.params[1:]) for m in msgs if m.address == "/VMC/Ext/Bone/Pos"},
            "blend": {m.params[0]: m.params[1] for m in msgs if m.address == "/VMC/Ext/Blend/Val"},
            "order": [m.params[0] for m in msgs if m.address == "/VMC/Ext/Bone/Pos"]}


def test_vrm0_avatar_gets_its_own_bones_offsets_and_blend_shape_names(tmp_path) -> None:  # noqa: ANN001
    """A VRoid-style VRM 0.x file (facing -Z, no upperChest, perfect-sync groups `JawOpen` ...): VMC sends the
    bones it has, the upper chest's rotation folded into neck and shoulders, its own bone offsets, its VRM 0.x
    preset names and its spelling of the ARKit shapes."""
    import gltf_builders as gb

    frame = _frame()
    q = np.array([0.0, 0.0, np.sin(0.2), np.cos(0.2)])  # the upper chest leans 23 degrees
    frame.rotations[HUMANOID.index("upperChest")] = q
    got = _avatar_bundle(gb.vrm0_avatar(tmp_path / "vroid.vrm"), frame)
    bones, blend = got["bones"], got["blend"]
    assert "UpperChest" not in bones and set(bones) == set(BONE_NAMES) - {"UpperChest"}
    assert got["order"][:3] == ["Hips", "Spine", "Chest"]
    unity_q = to_unity_rotation(q)
    for child in ("Neck", "LeftShoulder", "RightShoulder"):
        assert np.allclose(bones[child][3:], unity_q, atol=1e-6), child
    # Its own offsets (our default skeleton has 0.15 m; the avatar 0.131 m), in Unity axes; the neck is offset
    # from the chest (two levels up, the upper chest missing).
    assert np.allclose(bones["LeftUpperArm"][:3], [-0.1309, -0.0152, -0.0001], atol=2e-4)
    assert bones["Neck"][1] > 0.3
    # The frame's root is 10 cm to the left (+X) of our rest: scaled to the avatar's hips (x 0.8755), X mirrored.
    assert np.allclose(bones["Hips"][:3], [-0.1 * 0.8755, 0.8317, 0.0234], atol=2e-3)
    assert blend["JawOpen"] == pytest.approx(0.6) and "jawOpen" not in blend
    assert sum(k[0].isupper() for k in blend) == len(blend) == 13 + 52
    assert blend["A"] > 0.3 and "Blink_L" in blend and "LookUp" not in blend  # only the presets it defines


def test_vrm1_and_plain_gltf_avatars_get_their_names(tmp_path) -> None:  # noqa: ANN001
    """The default avatar (VRM 1.0: presets only, no ARKit expressions): VRM 1.0 preset names, no ARKit shapes
    (a VRM receiver keys expressions, and it has none named so); the same avatar as a plain glTF with Mixamo
    bone names: every bone, the ARKit shapes under its morph target names."""
    import gltf_builders as gb

    vrm1 = _avatar_bundle(gb.DEFAULT_GLB, _frame())
    assert set(vrm1["bones"]) == set(BONE_NAMES)
    assert {"aa", "happy", "blinkLeft", "lookUp"} <= set(vrm1["blend"]) and "A" not in vrm1["blend"]
    assert "jawOpen" not in vrm1["blend"] and vrm1["blend"]["aa"] > 0.3
    plain = _avatar_bundle(gb.renamed_rig(tmp_path / "rpm.glb", gb.MIXAMO_NAMES), _frame())
    assert set(plain["bones"]) == set(BONE_NAMES)
    assert plain["blend"]["jawOpen"] == pytest.approx(0.6) and "A" in plain["blend"]


def test_cli_stream_refuses_an_unreadable_avatar(tmp_path) -> None:  # noqa: ANN001
    import subprocess
    import sys

    import os

    (tmp_path / "x.vrm").write_bytes(b"not a model" * 10)
    r = subprocess.run([sys.executable, "-m", "avatar.cli", "stream", "--avatar", str(tmp_path / "x.vrm"),
                        "--no-play"], input="", capture_output=True, text=True, timeout=60,
                       env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert r.returncode == 2 and r.stderr.startswith("error:") and "x.vrm" in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_few_shape_glb_gets_its_stand_in_shapes_under_their_names(tmp_path) -> None:  # noqa: ANN001
    """A Ready Player Me-style few-shape face (`mouthOpen`, `mouthSmile`, `Angry` ...) and an Oculus viseme face:
    the stand-ins are sent under the file's names, valued as the renderer drives them (mouthOpen <- jawOpen)."""
    import gltf_builders as gb

    few = _avatar_bundle(gb.few_shape_face(tmp_path / "few.glb", {"jawOpen": "mouthOpen", "mouthSmileLeft":
                                                                   "mouthSmile", "browDownLeft": "Angry"}), _frame())
    assert few["blend"]["mouthOpen"] == pytest.approx(0.6) and "mouthSmile" in few["blend"]
    assert list(few["blend"]).count("Angry") == 1  # the preset's name and value already
    vis = _avatar_bundle(gb.few_shape_face(tmp_path / "vis.glb", {"jawOpen": "viseme_aa", "mouthClose": "viseme_PP"}),
                         _frame())
    assert vis["blend"]["viseme_aa"] > 0.2 and "viseme_PP" in vis["blend"]
