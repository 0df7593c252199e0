"""The WebSocket stream: hello, JSON frames and PCM16 audio to a websockets client; control and error frames."""

from __future__ import annotations

import asyncio
import json
import time

import numpy as np
import pytest

from avatar.live.wsserver import ClientQueue, audio_message, parse_audio_message
from avatar.types import VAD


def test_audio_message_round_trip() -> None:
    x = np.sin(np.linspace(0, 20, 367)).astype(np.float32) * 0.5
    first, y = parse_audio_message(audio_message(123456789, x))
    assert first == 123456789 and np.allclose(x, y, atol=1 / 32767)


def test_client_queue_drops_oldest_and_flags_a_slow_client() -> None:
    now = [0.0]
    q = ClientQueue(4, now=lambda: now[0])
    for i in range(4):
        q.offer(i)
    assert not q.too_slow(2.0)
    q.offer(4)
    assert list(q.items) == [1, 2, 3, 4] and q.dropped == 1
    now[0] = 1.0
    q.offer(5)
    assert not q.too_slow(2.0)
    now[0] = 3.5
    q.offer(6)
    assert q.too_slow(2.0)  # full for 3.5 s: disconnect
    q.items.clear()
    q.offer(7)
    assert not q.too_slow(2.0)  # caught up


@pytest.fixture(scope="module")
def live():
    from avatar.live.cli import hello_message
    from avatar.live.stream import LiveStream, StreamConfig
    from avatar.live.wsserver import WebSocketHub

    stream = LiveStream(StreamConfig(fps=30, motion="procedural", vad=VAD(0.2, 0.3, 0.0)))
    stream.load()
    hub = WebSocketHub("127.0.0.1", 0, on_control=stream.handle_control, hello=hello_message(stream),
                       queue_size=64, slow_after=1.0)
    port = hub.start()
    stream.sinks.append(hub)
    stream.start()
    yield stream, hub, port
    stream.close()
    hub.close()


async def _session(port: int) -> dict:
    from websockets.asyncio.client import connect

    out: dict = {"frames": [], "audio": [], "replies": []}
    async with connect(f"ws://127.0.0.1:{port}") as ws:
        out["hello"] = json.loads(await ws.recv())
        await ws.send("{not json")
        await ws.send(json.dumps({"type": "say", "text": "Hi", "valence": 7}))
        await ws.send(json.dumps({"type": "dance"}))
        await ws.send(json.dumps({"type": "say", "text": "Hello from the browser."}))
        end = time.monotonic() + 15
        while time.monotonic() < end:
            msg = await asyncio.wait_for(ws.recv(), 5)
            if isinstance(msg, bytes):
                out["audio"].append(parse_audio_message(msg))
                continue
            m = json.loads(msg)
            if m["type"] == "frame":
                out["frames"].append(m)
                if len(out["replies"]) >= 4 and any(f["speaking"] for f in out["frames"]) and not m["speaking"] \
                        and m["line"] is None:
                    break  # spoke and went back to idle
            else:
                out["replies"].append(m)
    return out


def test_websocket_frames_audio_and_control(live) -> None:
    stream, hub, port = live
    out = asyncio.run(_session(port))
    hello = out["hello"]
    assert hello["type"] == "hello" and hello["fps"] == 30 and len(hello["arkit_names"]) == 52
    assert hello["audio"]["sample_rate"] == stream.sample_rate
    errors = [r for r in out["replies"] if r["type"] == "error"]
    assert len(errors) == 3
    assert "JSON" in errors[0]["message"] and "valence" in errors[1]["message"] and "dance" in errors[2]["message"]
    oks = [r for r in out["replies"] if r["type"] == "ok"]
    assert oks and oks[0]["request"] == "say"
    frames = out["frames"]
    assert len(frames) > 20
    f = frames[-1]
    assert set(f["bones"]) == set(hello["bones"]) and len(f["arkit"]) == 52 and set(f["vrm"]) == set(hello["vrm_names"])
    assert all(0.0 <= v <= 1.0 for fr in frames for v in fr["arkit"])
    speaking = [fr for fr in frames if fr["speaking"]]
    assert speaking and max(fr["vrm"]["aa"] + fr["vrm"]["oh"] + fr["vrm"]["ee"] for fr in speaking) > 0.2
    idx = [fr["i"] for fr in frames]
    assert idx == sorted(idx)
    # Audio: contiguous chunks, silence before the line, speech during it.
    firsts = [a for a, _ in out["audio"]]
    if hub.dropped == 0:  # nothing dropped for a slow client: the chunks tile the session without gaps
        assert all(b == a + len(s) for (a, s), b in zip(out["audio"], firsts[1:]))
    assert all(b > a for a, b in zip(firsts, firsts[1:])), hub.dropped
    peak = max(float(np.abs(s).max()) for _, s in out["audio"])
    assert peak > 0.05


def test_a_client_that_never_reads_does_not_hold_back_others(live) -> None:
    stream, hub, port = live

    async def run() -> int:
        from websockets.asyncio.client import connect

        slow = await connect(f"ws://127.0.0.1:{port}", max_queue=1, close_timeout=0.2)  # never reads
        count = 0
        async with connect(f"ws://127.0.0.1:{port}") as fast:
            end = time.monotonic() + 2.0
            while time.monotonic() < end:
                await asyncio.wait_for(fast.recv(), 2)
                count += 1
        await slow.close()
        return count

    frames_before = stream.stats.frames
    count = asyncio.run(run())
    assert count > 2.0 * 30 * 0.8  # the reading client got its frames (and audio) at the frame rate
    assert stream.stats.frames - frames_before >= 2.0 * 30 * 0.8


def test_hub_disconnects_a_client_whose_queue_stays_full() -> None:
    from avatar.live.wsserver import WebSocketHub

    class FakeWS:
        closed_with = None

        async def close(self, code: int, reason: str) -> None:
            self.closed_with = (code, reason)

    async def run() -> tuple[FakeWS, FakeWS, WebSocketHub]:
        hub = WebSocketHub(queue_size=4, slow_after=0.05)
        slow, ok = FakeWS(), FakeWS()
        hub.clients = {slow: ClientQueue(4), ok: ClientQueue(4)}
        for i in range(5):
            hub._fanout(f"m{i}")  # both queues overflow once
        hub.clients[ok].items.clear()  # this one is read
        await asyncio.sleep(0.1)
        hub._fanout("late")
        await asyncio.sleep(0.01)
        return slow, ok, hub

    slow, ok, hub = asyncio.run(run())
    assert slow.closed_with == (1013, "client too slow") and slow not in hub.clients
    assert ok.closed_with is None and ok in hub.clients and hub.disconnected_slow == 1


def _bare_hub(**kw):
    from avatar.live.stream import parse_control
    from avatar.live.wsserver import WebSocketHub

    def control(msg: str) -> dict:
        return {"type": "ok", "request": parse_control(msg)["type"]}

    hub = WebSocketHub("127.0.0.1", 0, on_control=control, **kw)
    return hub, hub.start()


def test_an_oversized_control_message_gets_an_error_reply_and_the_connection_stays_open() -> None:
    from websockets.exceptions import ConnectionClosed

    from avatar.live.wsserver import MAX_MESSAGE_BYTES

    hub, port = _bare_hub()

    async def run() -> tuple[list[dict], int | None]:
        from websockets.asyncio.client import connect

        async with connect(f"ws://127.0.0.1:{port}", max_size=None) as ws:
            assert json.loads(await ws.recv())["type"] == "hello"
            await ws.send(json.dumps({"type": "say", "text": "x" * 100_000}))  # 100 KB: over the 64 KiB limit
            await ws.send(json.dumps({"type": "stop"}))
            replies = [json.loads(await asyncio.wait_for(ws.recv(), 5)) for _ in range(2)]
        async with connect(f"ws://127.0.0.1:{port}", max_size=None) as ws:  # past what the server reads at all
            await ws.recv()
            await ws.send("x" * (MAX_MESSAGE_BYTES + 1))
            try:
                await asyncio.wait_for(ws.recv(), 5)
            except ConnectionClosed as exc:
                return replies, exc.rcvd.code if exc.rcvd else None
        return replies, None

    try:
        replies, code = asyncio.run(run())
    finally:
        hub.close()
    assert replies[0]["type"] == "error" and "larger than 65536 bytes" in replies[0]["message"]
    assert replies[1] == {"type": "ok", "request": "stop"}  # same connection, still served
    assert code == 1009  # over 1 MiB: "message too big", as docs/live.md says


def test_a_client_that_stops_reading_is_dropped_within_seconds() -> None:
    """A raw client that completes the handshake and never reads again: dropped in about 2-4 s, not the 20-45 s the
    kernel's autotuned send buffers and websockets' keepalive took before."""
    import base64
    import os
    import socket
    import threading

    class Frame:
        def __init__(self, i: int) -> None:
            self.i = i

        def to_json(self) -> dict:
            return {"type": "frame", "i": self.i, "arkit": [0.123456] * 52, "pad": "x" * 2500}

    hub, port = _bare_hub(slow_after=2.0)
    stop = threading.Event()

    def feed() -> None:  # the frame loop: 60 frames and 60 audio chunks a second
        i = 0
        while not stop.is_set():
            hub.frame(Frame(i))
            hub.audio(i * 735, np.zeros(735, np.float32))
            i += 1
            time.sleep(1 / 60)

    threading.Thread(target=feed, daemon=True).start()
    sock = socket.create_connection(("127.0.0.1", port))
    try:
        key = base64.b64encode(os.urandom(16)).decode()
        sock.sendall((f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                      f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
        head = b""
        while b"\r\n\r\n" not in head:
            head += sock.recv(1)
        assert head.startswith(b"HTTP/1.1 101")
        t0 = time.monotonic()
        while hub.disconnected_slow == 0 and time.monotonic() - t0 < 10.0:
            time.sleep(0.05)
        took = time.monotonic() - t0
    finally:
        stop.set()
        sock.close()
        hub.close()
    assert hub.disconnected_slow == 1 and took < 8.0, took
