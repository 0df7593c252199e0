"""What the demo's upload endpoint keeps: only the file types the app uses, and a bounded total in its cache.

Gradio's `/gradio_api/upload` stores whatever it is sent (up to `max_file_size` each) for as long as its cache
keeps files, whether or not any component would take it. `UploadGuard` is ASGI middleware in front of that
route (Starlette middleware, since Gradio has no hook there): it refuses an upload up front when the cache is
already over its cap (after pruning expired files), and after Gradio stored the files it removes any whose
type the app does not read (an avatar, a recording) or that took the cache over its cap, answering 415 / 507
with a plain-text reason instead of the paths.
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from typing import Any, Awaitable, Callable

log = logging.getLogger(__name__)

#: What the app reads from an upload: avatars (.glb, .vrm) and recordings (the browser's microphone gives
#: .wav, .webm or .ogg; files are whatever FFmpeg reads that people record speech in).
AVATAR_SUFFIXES = frozenset({".glb", ".vrm"})
AUDIO_SUFFIXES = frozenset({".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".m4a", ".aac", ".webm"})
UPLOAD_SUFFIXES = AVATAR_SUFFIXES | AUDIO_SUFFIXES

Scope = dict[str, Any]
Message = dict[str, Any]
ASGIApp = Callable[[Scope, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]], Awaitable[None]]


def folder_bytes(folder: Path) -> int:
    """Total size of the regular files under `folder` (0 when it does not exist)."""
    total = 0
    for dirpath, _, names in os.walk(folder):
        for name in names:
            try:
                total += os.lstat(os.path.join(dirpath, name)).st_size
            except OSError:  # removed meanwhile
                continue
    return total


def prune_folder(folder: Path, max_age_s: float) -> int:
    """Remove files under `folder` older than `max_age_s` (and folders left empty); returns how many went."""
    cutoff = time.time() - max_age_s
    gone = 0
    for dirpath, _dirnames, names in os.walk(folder, topdown=False):
        for name in names:
            p = os.path.join(dirpath, name)
            try:
                if os.lstat(p).st_mtime < cutoff:
                    os.unlink(p)
                    gone += 1
            except OSError:
                continue
        if Path(dirpath) != folder:
            try:
                os.rmdir(dirpath)  # only when empty
            except OSError:
                pass
    return gone


def _remove(path: Path, folder: Path) -> None:
    """Delete an uploaded file and its folder when that is left empty (only inside `folder`)."""
    try:
        path = path.resolve()
        if not path.is_relative_to(folder):
            return
        path.unlink(missing_ok=True)
        if path.parent != folder:
            path.parent.rmdir()
    except OSError:
        pass


class UploadGuard:
    """ASGI middleware: Gradio's upload route keeps only `suffixes`, and its folder stays under `max_bytes`."""

    def __init__(self, app: ASGIApp, *, folder: Path, max_bytes: int, max_age_s: float,
                 suffixes: frozenset[str] = UPLOAD_SUFFIXES) -> None:
        """Wrap `app`; uploads land in `folder` (Gradio's cache), files older than `max_age_s` may be pruned."""
        self.app = app
        self.folder = Path(folder).resolve()
        self.max_bytes = int(max_bytes)
        self.max_age_s = float(max_age_s)
        self.suffixes = frozenset(s.lower() for s in suffixes)

    async def __call__(self, scope: Scope, receive: Callable[[], Awaitable[Message]],
                       send: Callable[[Message], Awaitable[None]]) -> None:
        """Pass everything through, but check uploads before and after Gradio stores them."""
        if scope.get("type") != "http" or scope.get("method") != "POST" or not scope.get("path", "").endswith(
                "/upload"):
            await self.app(scope, receive, send)
            return
        if not self._room(_content_length(scope)):
            await _reply(send, 507, f"the server's upload space is full ({self.max_bytes // 2**20} MB); "
                                    "try again later")
            return
        status, headers, body = await _buffered(self.app, scope, receive)
        if status == 200:
            try:
                paths = [Path(p) for p in json.loads(body)]
            except (ValueError, TypeError):
                paths = None
            if paths is not None:
                refused = sorted({p.suffix.lower() or p.name for p in paths if p.suffix.lower() not in self.suffixes})
                if refused or folder_bytes(self.folder) > self.max_bytes:
                    for p in paths:
                        _remove(p, self.folder)
                    if refused:
                        log.info("upload refused: file type %s", ", ".join(refused))
                        await _reply(send, 415, f"this app takes only {', '.join(sorted(self.suffixes))} "
                                                f"uploads, not {', '.join(refused)}")
                    else:
                        await _reply(send, 507, f"the server's upload space is full ({self.max_bytes // 2**20} "
                                                "MB); try again later")
                    return
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    def _room(self, incoming: int) -> bool:
        """Whether `incoming` more bytes fit under the cap (expired files are pruned first when they do not)."""
        if folder_bytes(self.folder) + incoming <= self.max_bytes:
            return True
        prune_folder(self.folder, self.max_age_s)
        return folder_bytes(self.folder) + incoming <= self.max_bytes


def _content_length(scope: Scope) -> int:
    for k, v in scope.get("headers", []):
        if k.lower() == b"content-length":
            try:
                return max(0, int(v))
            except ValueError:
                return 0
    return 0


async def _buffered(app: ASGIApp, scope: Scope, receive: Callable[[], Awaitable[Message]]) -> tuple[int, list, bytes]:
    """Run `app` and collect its whole response (an upload's is a short JSON list of paths)."""
    start: Message = {}
    chunks: list[bytes] = []

    async def collect(message: Message) -> None:
        if message["type"] == "http.response.start":
            start.update(message)
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(scope, receive, collect)
    return int(start.get("status", 500)), list(start.get("headers", [])), b"".join(chunks)


async def _reply(send: Callable[[Message], Awaitable[None]], status: int, text: str) -> None:
    body = text.encode("utf-8")
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"text/plain; charset=utf-8"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
