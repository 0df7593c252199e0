"""Audio sinks of the live stream: a WAV file of the whole session, and local playback when a device exists.

The WAV has the stream's audio from frame 0, silences included, so sample i is stream time i / sample_rate
(line up a screen recording or the VMC capture with it). It is written to a temporary file beside the target
and renamed when the stream ends (avatar.io.atomic_path), so a crash never leaves half a file in its place.
Playback uses the optional `sounddevice` package (PortAudio); without it or without an output device the
stream goes on silently after one log line.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from avatar.errors import InputError, OutputError

if TYPE_CHECKING:
    from avatar.live.frames import LiveFrame

log = logging.getLogger(__name__)


class WavWriter:
    """Sink that appends the stream's audio to a 16-bit WAV, renamed into place on close()."""

    def __init__(self, path: str | Path, sample_rate: int, force: bool = False) -> None:
        """Open a temporary file beside `path` (checked as avatar.io.check_output_path does; `force`: replace a
        read-only file)."""
        import soundfile as sf

        from avatar.io import atomic_path, check_output_path

        target = Path(path)
        if target.suffix.lower() != ".wav":
            raise InputError(f"--audio-out must name a .wav file, got {target.name!r}")
        check_output_path(target, "--audio-out", force=force)
        self.path = target
        self._stack = contextlib.ExitStack()
        tmp = self._stack.enter_context(atomic_path(target))
        self._file = self._stack.enter_context(sf.SoundFile(tmp, "w", samplerate=int(sample_rate), channels=1,
                                                            subtype="PCM_16", format="WAV"))
        self._tmp = tmp
        self._lock = threading.Lock()
        self.samples = 0
        self.error: OutputError | None = None  # set when a write failed (a full disk): the file is then dropped

    def frame(self, frame: LiveFrame) -> None:
        """Frames are not written."""

    def audio(self, first_sample: int, samples: np.ndarray) -> None:
        """Append the samples (the frame loop hands them over in order, without gaps)."""
        with self._lock:
            if self._file.closed or self.error is not None:
                return
            try:
                self._file.write(np.clip(samples, -1.0, 1.0))
            except Exception as exc:  # noqa: BLE001 - said once, here; the stream goes on and close() reports it
                from avatar.io import write_error

                self.error = write_error(self.path, exc, self._tmp) or OutputError(
                    f"cannot write {self.path}: {exc}")
                log.error("live: --audio-out stopped: %s", self.error)
                return
            self.samples += samples.size

    def close(self) -> Path:
        """Finish the file and move it into place; raises OutputError (and keeps no partial file) if writing
        failed."""
        with self._lock:
            if self.error is None:
                self._stack.close()
            else:
                with contextlib.suppress(Exception):
                    self._file.close()
                # The atomic write sees the failure: it removes the temporary file and leaves the target alone.
                if not self._stack.__exit__(OutputError, self.error, None):
                    raise self.error
        return self.path


class LocalPlayer:
    """Sink that plays the audio on the default output device (sounddevice), fed from its own thread."""

    def __init__(self, sample_rate: int, max_chunks: int = 120) -> None:
        """Open the device; raises RuntimeError when there is no sounddevice or no output device."""
        try:
            import sounddevice as sd  # optional: PortAudio bindings
        except ImportError:
            raise RuntimeError("the optional 'sounddevice' package is not installed") from None
        try:
            self._stream = sd.OutputStream(samplerate=int(sample_rate), channels=1, dtype="float32")
            self._stream.start()
        except Exception as exc:  # noqa: BLE001 - PortAudio: no device, device busy ...
            raise RuntimeError(f"no audio output device ({exc})") from None
        self._queue: queue.Queue[np.ndarray | None] = queue.Queue(maxsize=max_chunks)
        self.dropped = 0
        self._thread = threading.Thread(target=self._run, name="live-audio", daemon=True)
        self._thread.start()

    @classmethod
    def open(cls, sample_rate: int) -> "LocalPlayer | None":
        """A player, or None with a log line when playback is impossible here."""
        try:
            return cls(sample_rate)
        except RuntimeError as exc:
            log.warning("live: no local audio playback: %s", exc)
            return None

    def frame(self, frame: LiveFrame) -> None:
        """Frames are not played."""

    def audio(self, first_sample: int, samples: np.ndarray) -> None:
        """Queue the samples; when the device falls behind, drop them rather than block the frame loop."""
        try:
            self._queue.put_nowait(samples.astype(np.float32)[:, None])
        except queue.Full:
            self.dropped += 1

    def _run(self) -> None:
        while True:
            chunk = self._queue.get()
            if chunk is None:
                break
            try:
                self._stream.write(chunk)
            except Exception as exc:  # noqa: BLE001 - PortAudio errors come in several types; logged, playback stops
                log.error("live: audio playback failed: %s", exc)
                break

    def close(self) -> None:
        """Stop playback."""
        with contextlib.suppress(queue.Full):
            self._queue.put_nowait(None)
        self._thread.join(timeout=2.0)
        with contextlib.suppress(Exception):
            self._stream.stop()
            self._stream.close()
