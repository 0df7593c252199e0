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
