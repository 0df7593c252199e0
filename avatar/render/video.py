"""MP4 composition with PyAV: rendered frames + speech -> H.264 (yuv420p, libx264) + AAC, written atomically.

    from avatar.render.video import write_mp4, probe_mp4
    write_mp4("out.mp4", frames, n_frames, speech.audio, speech.sample_rate, fps=30,
              subtitles=[(0.0, 1.2, "Hello!")], vad=vad_rows)      # vad_rows: [n_frames, 3]
    probe_mp4("out.mp4")  # {"video": {"codec": "h264", "fps": 30.0, "duration": ...}, "audio": {...}}

The video's length is `n_frames / fps`; the audio is padded with silence or trimmed to exactly that many
samples, so both streams end together (within one frame plus the AAC encoder's priming). The file is written
to a temporary name in the same folder and renamed when complete, so a failure leaves no partial output.
"""

from __future__ import annotations

import logging
import math
import os
import sys
from collections.abc import Callable, Iterable, Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from avatar.errors import InputError
from avatar.io import atomic_path

from .overlay import Subtitle, draw_subtitle, draw_vad, subtitle_at

log = logging.getLogger(__name__)

#: Sample rates AAC (MPEG-4 audio) defines; others are resampled to 48 kHz.
AAC_RATES = (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000, 64000, 88200, 96000)
#: x264 settings: CRF 20 is visually clean for flat-shaded renders; "veryfast" keeps encoding a small share
#: of the time (rendering dominates) at a size within ~10 % of "medium" for this kind of content.
X264_OPTIONS = {"crf": "20", "preset": "veryfast"}
MAX_FRAMES = 30 * 60 * 60  # one hour at 30 fps


def _check_args(out: Path, n_frames: int, audio: np.ndarray, sample_rate: int, fps: float,
                subtitles: list[Subtitle] | None, vad: np.ndarray | None) -> tuple[np.ndarray, np.ndarray | None]:
    if out.suffix.lower() != ".mp4":
        raise InputError(f"video output must end in .mp4, got {out.name!r}")
    if isinstance(n_frames, bool) or not isinstance(n_frames, (int, np.integer)) or not 1 <= n_frames <= MAX_FRAMES:
        raise InputError(f"n_frames must be an integer in [1, {MAX_FRAMES}], got {n_frames!r}")
    if not isinstance(fps, (int, float)) or not math.isfinite(fps) or not 1 <= fps <= 120:
        raise InputError(f"fps must be in [1, 120], got {fps!r}")
    a = np.asarray(audio)
    if a.ndim != 1 or not np.issubdtype(a.dtype, np.floating):
        raise InputError(f"audio must be float mono (1-D), got {a.dtype} {a.shape}")
    if a.size and not np.isfinite(a).all():
        raise InputError("audio contains NaN or infinite samples")
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, (int, np.integer)) or \
            not 4000 <= sample_rate <= 192000:
        raise InputError(f"sample_rate must be an integer in [4000, 192000], got {sample_rate!r}")
    for s in subtitles or []:
        if len(s) != 3 or not all(isinstance(x, (int, float)) and math.isfinite(x) for x in s[:2]) \
                or s[1] < s[0] or not isinstance(s[2], str):
            raise InputError(f"a subtitle must be (start, end, text) with finite start <= end, got {s!r}")
    v = None
    if vad is not None:
        v = np.asarray(vad, dtype=np.float64)
        if v.shape != (n_frames, 3) or not np.isfinite(v).all():
            raise InputError(f"vad must be a finite [n_frames={n_frames}, 3] array, got shape {v.shape}")
    return a.astype(np.float32, copy=False), v


def fit_audio(audio: np.ndarray, sample_rate: int, n_frames: int, fps: float) -> np.ndarray:
    """The audio padded with silence or trimmed to n_frames / fps seconds (warns when speech is cut)."""
    n = int(round(n_frames / fps * sample_rate))
    if len(audio) > n:
        if len(audio) - n > sample_rate / fps:
            log.warning("audio is %.2f s longer than the %d video frames; it is trimmed",
                        (len(audio) - n) / sample_rate, n_frames)
        return audio[:n]
    return np.pad(audio, (0, n - len(audio)))


def _even(frame: np.ndarray) -> np.ndarray:
    """yuv420p needs even sizes: repeat the last row/column when a size is odd."""
    h, w = frame.shape[:2]
    if h % 2 or w % 2:
        frame = np.pad(frame, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")
    return frame


def write_mp4(out: str | os.PathLike[str], frames: Iterable[np.ndarray], n_frames: int, audio: np.ndarray,
              sample_rate: int, fps: float = 30.0, subtitles: list[Subtitle] | None = None,
              vad: np.ndarray | None = None, progress: Callable[[float], None] | None = None,
              encoder_threads: int = 0) -> Path:
    """Encode n_frames RGB frames (uint8 [H, W, 3]) and mono float audio into an MP4, atomically.

    encoder_threads: x264's threads (0: its default, about 1.5 per core). Pass 1 when other processes keep
    the cores busy (forked render workers): one thread costs 20 % less CPU a frame (4.8 against 6.2 ms at
    512x512 on the 2-core machine), and the frames arrive no faster than one thread encodes them."""
    import av

    path = Path(out)
    audio, vad_rows = _check_args(path, n_frames, audio, sample_rate, fps, subtitles, vad)
    if isinstance(encoder_threads, bool) or not isinstance(encoder_threads, int) or not 0 <= encoder_threads <= 64:
        raise InputError(f"encoder_threads must be an integer in [0, 64], got {encoder_threads!r}")
    if sample_rate not in AAC_RATES:
        from avatar.audio import resample

        audio, sample_rate = resample(audio, sample_rate, 48000), 48000
    audio = np.clip(fit_audio(audio, sample_rate, n_frames, fps), -1.0, 1.0).astype(np.float32)
    rate = Fraction(fps).limit_denominator(1001)
    it = iter(frames)
    bar = None
    if sys.stderr.isatty():  # imported only to show it: tqdm.auto costs ~50-90 ms of a new process
        from tqdm.auto import tqdm

        bar = tqdm(total=n_frames, desc="video", unit="frame", leave=False)
    try:
        with atomic_path(path) as tmp:
            with av.open(str(tmp), mode="w", format="mp4", options={"movflags": "+faststart"}) as box:
                _encode(box, it, n_frames, audio, sample_rate, rate, subtitles or [], vad_rows, progress, bar,
                        {**X264_OPTIONS, "threads": str(encoder_threads)})
    finally:
        if bar is not None:
            bar.close()
        close = getattr(it, "close", None)
        if close is not None:  # stop a rendering generator (and free its GL context) if we left it early
            close()
    return path


def _encode(box: Any, it: Iterator[np.ndarray], n_frames: int, audio: np.ndarray, sr: int, rate: Fraction,
            subtitles: list[Subtitle], vad: np.ndarray | None, progress: Callable[[float], None] | None,
            bar: Any, x264: dict[str, str]) -> None:
    import av

    vs = None
    a_stream = box.add_stream("aac", rate=sr)
    a_stream.layout = "mono"
    a_stream.bit_rate = 96_000
    a_stream.time_base = Fraction(1, sr)
    sent, last, ended = 0, None, False
    chunk = 1024
    for i in range(n_frames):
        frame = next(it, None) if not ended else None
        if frame is None:
            if last is None:
                raise InputError("no frames to encode")
            if not ended:  # a frame short is rounding between the motion's and the audio's lengths
                ended = True
                (log.warning if n_frames - i > 1 else log.debug)(
                    "the frame source ended at frame %d of %d; holding the last frame", i, n_frames)
            frame = last
        frame = np.asarray(frame)
        if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
            raise InputError(f"frames must be uint8 [H, W, 3], got {frame.dtype} {frame.shape}")
        last = frame
        if vs is None:
            h, w = _even(frame).shape[:2]
            vs = box.add_stream("libx264", rate=rate, options=x264)
            vs.width, vs.height, vs.pix_fmt = w, h, "yuv420p"
            vs.time_base = 1 / rate
            size = (h, w)
        elif _even(frame).shape[:2] != size:
            raise InputError(f"frame {i} is {frame.shape[1]}x{frame.shape[0]}, the video {size[1]}x{size[0]}")
        t = float(i / rate)
        if subtitles or vad is not None:
            frame = frame.copy()
            if subtitles:
                draw_subtitle(frame, subtitle_at(subtitles, t))
            if vad is not None:
                draw_vad(frame, vad[i])
        vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(_even(frame)), format="rgb24")
        vf.pts = i
        for pkt in vs.encode(vf):
            box.mux(pkt)
        # Interleave: audio up to the end of this frame.
        upto = min(len(audio), int(round(float((i + 1) / rate) * sr)))
        while sent < upto:
            n = min(chunk, upto - sent)
            af = av.AudioFrame.from_ndarray(audio[None, sent:sent + n], format="fltp", layout="mono")
            af.sample_rate, af.pts, af.time_base = sr, sent, Fraction(1, sr)
            for pkt in a_stream.encode(af):
                box.mux(pkt)
            sent += n
        if bar is not None:
            bar.update(1)
        if progress is not None:
            progress((i + 1) / n_frames)
    for stream in (vs, a_stream):
        for pkt in stream.encode(None):
            box.mux(pkt)


def probe_mp4(path: str | os.PathLike[str]) -> dict:
    """Codecs, sizes, frame rate and stream durations (seconds) of a video file."""
    import av

    p = Path(path)
    if not p.is_file():
        raise InputError(f"no such video: {p}")
    try:
        with av.open(str(p)) as box:
            out: dict = {"format": box.format.name, "duration": (box.duration or 0) / 1e6}
            for s in box.streams:
                dur = float(s.duration * s.time_base) if s.duration is not None and s.time_base else None
                info = {"codec": s.codec_context.name, "duration": dur}
                if s.type == "video":
                    info.update(width=s.codec_context.width, height=s.codec_context.height,
                                pix_fmt=s.codec_context.pix_fmt, frames=int(s.frames),
                                fps=float(s.average_rate) if s.average_rate else None)
                    out.setdefault("video", info)
                elif s.type == "audio":
                    info.update(sample_rate=s.codec_context.sample_rate, channels=s.codec_context.channels)
                    out.setdefault("audio", info)
    except av.error.FFmpegError as exc:
        raise InputError(f"{p.name} is not a readable video: {exc}") from None
    return out
