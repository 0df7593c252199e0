"""WebSocket stream for browser clients: JSON frames, binary PCM16 audio, JSON control messages in.

Runs an asyncio loop (websockets' asyncio server) in its own thread. The frame loop hands each frame and
audio chunk over with `call_soon_threadsafe`, never waiting. Every client has a bounded queue: when it is
full the oldest message is dropped, and a client whose queue stays full, or whose send has not completed, for
`slow_after` seconds is disconnected (close code 1013, "try again later"), so one slow browser never holds back
the others or the engine. The socket's send buffer is kept small (SEND_BUFFER): with the kernel's default
autotuning (up to 4 MB) a client that stopped reading went on "accepting" 30-45 s of frames before it was noticed.
Wire format: docs/live.md.
"""

from __future__ import annotations

import asyncio
import json
import logging
import struct
import threading
import time
from collections import deque
from typing import Any, Callable

import numpy as np

from avatar.errors import InputError

log = logging.getLogger(__name__)

#: Binary audio message: magic, first sample index (uint64, little-endian), then int16 little-endian samples.
AUDIO_MAGIC = b"PCM1"
AUDIO_HEADER = struct.Struct("<4sQ")
#: Largest message the server reads. A control message over avatar.live.control.MAX_CONTROL_BYTES (64 KiB) gets an
#: error reply and the connection stays open; one over this is not read at all: the connection closes with 1009.
MAX_MESSAGE_BYTES = 1024 * 1024
#: Kernel send buffer and websockets' write buffer per client (bytes): about 0.2-0.5 s of the stream, so that a
#: client that stops reading shows as a send that does not complete, within `slow_after` seconds.
SEND_BUFFER = 64 * 1024


def audio_message(first_sample: int, samples: np.ndarray) -> bytes:
    """One binary audio message: header + PCM16 mono samples."""
    pcm = (np.clip(samples, -1.0, 1.0) * 32767.0).round().astype("<i2")
    return AUDIO_HEADER.pack(AUDIO_MAGIC, int(first_sample)) + pcm.tobytes()


def parse_audio_message(data: bytes) -> tuple[int, np.ndarray]:
    """(first sample index, float32 samples) of a binary audio message (the inverse of audio_message)."""
    magic, first = AUDIO_HEADER.unpack_from(data)
    if magic != AUDIO_MAGIC:
        raise ValueError("not an audio message")
    return first, np.frombuffer(data[AUDIO_HEADER.size:], dtype="<i2").astype(np.float32) / 32767.0


class ClientQueue:
    """A bounded outgoing queue that drops the oldest message when full and tracks how long it has been full."""

    def __init__(self, maxsize: int, now: Callable[[], float] = time.monotonic) -> None:
        """Empty queue holding at most `maxsize` messages."""
        self.items: deque = deque()
        self.maxsize = int(maxsize)
        self.dropped = 0
        self.full_since: float | None = None
        self.sending_since: float | None = None  # when the send in progress began (None: none in progress)
        self._now = now
        self.event = asyncio.Event()

    def offer(self, msg: str | bytes) -> None:
        """Add a message; drops the oldest when full."""
        if len(self.items) >= self.maxsize:
            self.items.popleft()
            self.dropped += 1
            if self.full_since is None:
                self.full_since = self._now()
        elif len(self.items) < self.maxsize // 2:
            self.full_since = None  # the client caught up
        self.items.append(msg)
        self.event.set()

    def too_slow(self, limit: float) -> bool:
        """True when the queue has stayed full, or one send has waited on the client, for more than `limit` s."""
        now = self._now()
        return any(since is not None and now - since > limit for since in (self.full_since, self.sending_since))

    async def send(self, ws) -> None:  # noqa: ANN001 - a websockets connection
        """Send the oldest queued message to `ws`, timing the send (too_slow watches it)."""
        msg = self.items.popleft()
        self.sending_since = self._now()
        try:
            await ws.send(msg)
        finally:
            self.sending_since = None


def _small_send_buffer(ws) -> None:  # noqa: ANN001 - a websockets connection
    """Cap the kernel's send buffer for this client (see SEND_BUFFER); a transport without a socket is left alone."""
    import socket

    sock = ws.transport.get_extra_info("socket") if getattr(ws, "transport", None) is not None else None
    if sock is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER)
        except OSError as exc:  # not fatal: the client is still dropped, only later
            log.debug("live: cannot set SO_SNDBUF: %s", exc)


class WebSocketHub:
    """Sink that serves the stream on ws://host:port; `on_control` handles incoming JSON control messages."""

    def __init__(self, host: str = "127.0.0.1", port: int = 8765,
                 on_control: Callable[[str], dict] | None = None, hello: dict | None = None,
                 queue_size: int = 240, slow_after: float = 2.0) -> None:
        """Configure (start() binds the port; port 0 picks a free one, see .port)."""
        self.host = host
        self.port = int(port)
        self.on_control = on_control
        self.hello = dict(hello or {})
        self.queue_size = int(queue_size)
        self.slow_after = float(slow_after)
        self.clients: dict[object, ClientQueue] = {}
        self.disconnected_slow = 0
        self.dropped = 0  # messages dropped from full client queues, all clients together
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._stop: asyncio.Future | None = None
        self._error: BaseException | None = None

    # ------------------------------------------------------------ thread side (frame loop)

    def frame(self, frame) -> None:  # noqa: ANN001 - a live.frames.LiveFrame
        """Broadcast one frame as JSON."""
        if self.clients:
            self._broadcast(json.dumps(frame.to_json(), separators=(",", ":")))

    def audio(self, first_sample: int, samples: np.ndarray) -> None:
        """Broadcast one audio chunk as a binary message."""
        if self.clients:
            self._broadcast(audio_message(first_sample, samples))

    def _broadcast(self, msg: str | bytes) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(self._fanout, msg)
            except RuntimeError:  # the loop closed meanwhile
                pass

    # ------------------------------------------------------------ loop side

    def _fanout(self, msg: str | bytes) -> None:
        for ws, q in list(self.clients.items()):
            before = q.dropped
            q.offer(msg)
            self.dropped += q.dropped - before
            if q.too_slow(self.slow_after):
                self.disconnected_slow += 1
                log.info("live: disconnecting a slow WebSocket client (%d messages dropped)", q.dropped)
                del self.clients[ws]
                asyncio.ensure_future(ws.close(1013, "client too slow"))
                q.event.set()

    async def _writer(self, ws: Any, q: ClientQueue) -> None:  # ws: a websockets connection
        while ws in self.clients:
            if not q.items:
                q.event.clear()
                await q.event.wait()
                continue
            await q.send(ws)

    async def _handler(self, ws: Any) -> None:
        q = ClientQueue(self.queue_size)
        _small_send_buffer(ws)
        q.offer(json.dumps({"type": "hello", **self.hello}))
        self.clients[ws] = q
        writer = asyncio.ensure_future(self._writer(ws, q))
        try:
            async for message in ws:
                reply = self._control(message)
                q.offer(json.dumps(reply))
        except Exception as exc:  # noqa: BLE001 - connection closed or broken: just forget the client
            log.debug("live: WebSocket client gone: %s", exc)
        finally:
            self.clients.pop(ws, None)
            q.event.set()
            writer.cancel()

    def _control(self, message: str | bytes) -> dict:
        if self.on_control is None:
            return {"type": "error", "message": "this stream takes no control messages"}
        try:
            return self.on_control(message)
        except InputError as exc:
            return {"type": "error", "message": str(exc)}
        except Exception as exc:  # noqa: BLE001 - never let a message kill the connection handler
            log.error("live: control message failed: %s", exc)
            return {"type": "error", "message": f"internal error: {exc}"}

    async def _serve(self) -> None:
        from websockets.asyncio.server import serve

        self._stop = asyncio.get_running_loop().create_future()
        async with serve(self._handler, self.host, self.port, max_size=MAX_MESSAGE_BYTES, max_queue=8,
                         write_limit=SEND_BUFFER) as server:
            self.port = server.sockets[0].getsockname()[1] if server.sockets else self.port
            self._ready.set()
            await self._stop

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._serve())
        except BaseException as exc:  # noqa: BLE001 - e.g. the port is taken: reported by start()
            self._error = exc
            self._ready.set()
        finally:
            self._loop = None
            loop.close()

    def start(self) -> int:
        """Bind and serve in a background thread; returns the port (InputError when it cannot bind)."""
        self._thread = threading.Thread(target=self._run, name="live-ws", daemon=True)
        self._thread.start()
        self._ready.wait(10.0)
        if self._error is not None:
            raise InputError(f"cannot serve WebSocket on {self.host}:{self.port}: {self._error}")
        return self.port

    def close(self) -> None:
        """Close every connection and stop the server."""
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None:
            def with_result() -> None:
                if not stop.done():
                    stop.set_result(None)

            try:
                loop.call_soon_threadsafe(with_result)
            except RuntimeError:
                pass
        if self._thread is not None:
            self._thread.join(timeout=5.0)
