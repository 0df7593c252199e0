"""The scene video: every finished line's clip, in script order, as one MP4 (PyAV).

The clips are decoded and re-encoded rather than stream-copied: re-encoding keeps the result a plain
H.264 + AAC file even when clips differ in size or encoder settings (different avatars, older runs), and
each clip's audio is padded or cut to its video length, so sound and picture stay in step across the joins
(AAC priming samples would otherwise add up to a drift of ~20 ms per clip).
"""

from __future__ import annotations

import json
import logging
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from avatar.errors import AvatarError
from avatar.io import atomic_path, atomic_write_text

from .manifest import OK
from .plan import file_sha256

log = logging.getLogger(__name__)

SCENE = "scene.mp4"
SCENE_MARKER = "scene.json"
_AAC_FRAME = 1024  # samples per AAC frame


def _clip_of(record: dict[str, Any]) -> str | None:
    files = record.get("files") or {}
    if "clip.mp4" in files:
        return files["clip.mp4"]
    mp4s = sorted(v for k, v in files.items() if k.endswith(".mp4"))
    return mp4s[0] if mp4s else None


def _decode_clip(path: Path, size: tuple[int, int] | None, rate: int) -> tuple[list[Any], np.ndarray, Fraction]:
    """Video frames (yuv420p, resized to `size`), mono float32 audio at `rate`, and the clip's frame rate."""
    import av

    with av.open(str(path)) as container:
        if not container.streams.video:
            raise AvatarError(f"{path} has no video stream")
        vstream = container.streams.video[0]
        fps = Fraction(vstream.average_rate or 30)
        frames = []
        for frame in container.decode(vstream):
            w, h = size if size is not None else (frame.width, frame.height)
            frames.append(frame.reformat(width=w, height=h, format="yuv420p"))
    chunks: list[np.ndarray] = []
    with av.open(str(path)) as container:
        if container.streams.audio:
            resampler = av.AudioResampler(format="fltp", layout="mono", rate=rate)
            for frame in container.decode(container.streams.audio[0]):
                for out in resampler.resample(frame):
                    chunks.append(out.to_ndarray().reshape(-1))
            for out in resampler.resample(None):  # flush
                chunks.append(out.to_ndarray().reshape(-1))
    audio = np.concatenate(chunks).astype(np.float32) if chunks else np.zeros(0, np.float32)
    return frames, audio, fps


def _audio_rate(path: Path) -> int:
    import av

    with av.open(str(path)) as container:
        return int(container.streams.audio[0].rate) if container.streams.audio else 48000


def write_scene(clips: list[Path], out: Path) -> Path:
    """Concatenate MP4 clips (video + audio) into `out`, written atomically."""
    import av

    if not clips:
        raise AvatarError("no finished clip to put in the scene")
    rate = _audio_rate(clips[0])
    size: tuple[int, int] | None = None
    with atomic_path(out) as tmp:
        with av.open(str(tmp), "w", format="mp4") as container:
            vstream = astream = None
            vpts = 0
            audio_parts: list[np.ndarray] = []
            for clip in clips:
                frames, audio, fps = _decode_clip(clip, size, rate)
                if vstream is None:
                    size = (frames[0].width, frames[0].height) if frames else (512, 512)
                    vstream = container.add_stream("libx264", rate=fps)
                    vstream.width, vstream.height = size
                    vstream.pix_fmt = "yuv420p"
                    astream = container.add_stream("aac", rate=rate)
                    astream.layout = "mono"
                for frame in frames:
                    frame.pts = vpts
                    frame.time_base = Fraction(1, 1) / fps
                    vpts += 1
                    for packet in vstream.encode(frame):
                        container.mux(packet)
                # Pad or cut each clip's sound to its picture length, so joins never drift.
                want = int(round(len(frames) / fps * rate))
                audio = audio[:want] if len(audio) >= want else np.pad(audio, (0, want - len(audio)))
                audio_parts.append(audio)
            for packet in vstream.encode():
                container.mux(packet)
            sound = np.concatenate(audio_parts) if audio_parts else np.zeros(0, np.float32)
            for start in range(0, len(sound), _AAC_FRAME):
                chunk = np.ascontiguousarray(sound[start:start + _AAC_FRAME][None, :], dtype=np.float32)
                frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="mono")
                frame.sample_rate = rate
                frame.pts = start
                frame.time_base = Fraction(1, rate)
                for packet in astream.encode(frame):
                    container.mux(packet)
            for packet in astream.encode():
                container.mux(packet)
    return out


def build_scene(outdir: Path, records: list[dict[str, Any]]) -> Path | None:
    """OUTDIR/scene.mp4 from the finished lines in script order; kept as is when its clips did not change."""
    clips = [outdir / c for r in records if r.get("status") == OK and (c := _clip_of(r))]
    clips = [c for c in clips if c.is_file()]
    if not clips:
        log.warning("no finished clip: no scene video written")
        return None
    skipped = sum(1 for r in records if r.get("status") != OK)
    if skipped:
        log.warning("the scene leaves out %d line(s) that did not render", skipped)
    out = outdir / SCENE
    marker = outdir / SCENE_MARKER
    inputs = [[c.relative_to(outdir).as_posix(), file_sha256(c)] for c in clips]
    try:
        old = json.loads(marker.read_text(encoding="utf-8"))
        if (old.get("inputs") == inputs and out.is_file() and out.stat().st_size == old.get("bytes")
                and file_sha256(out) == old.get("sha256")):
            return out  # same clips, same order: nothing to redo (keeps --resume from touching it)
    except (OSError, ValueError, AttributeError):
        pass
    marker.unlink(missing_ok=True)
    write_scene(clips, out)
    atomic_write_text(marker, json.dumps({"inputs": inputs, "bytes": out.stat().st_size,
                                          "sha256": file_sha256(out)}, indent=1))
    return out
