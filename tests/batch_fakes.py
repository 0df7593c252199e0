"""Fast stand-ins for the pipeline, injected into avatar.batch's runner by the tests/test_batch_*.py tests.

A module of its own (not a test file) so that spawned worker processes and Ray workers can import it.
"""

from __future__ import annotations

import json
import os
from fractions import Fraction
from pathlib import Path

import numpy as np

from avatar.batch.plan import LineJob
from avatar.batch.worker import Rendered
from avatar.errors import InputError
from avatar.types import VAD

FPS = 30


def fake_analyze(text: str) -> VAD:
    """A deterministic 'emotion model': '!' reads as excited, 'sad' as sad, else mildly positive."""
    if "sad" in text.lower():
        return VAD(-0.6, -0.3, -0.3)
    if "!" in text:
        return VAD(0.6, 0.7, 0.3)
    return VAD(0.2, 0.0, 0.0)


def write_tiny_mp4(path: Path, seconds: float, shade: int, size: int = 64, rate: int = 16000) -> None:
    """A real H.264 + AAC clip (a flat colour and a tone) made with PyAV."""
    import av

    n = max(1, int(round(seconds * FPS)))
    with av.open(str(path), "w", format="mp4") as c:
        vs = c.add_stream("libx264", rate=FPS)
        vs.width = vs.height = size
        vs.pix_fmt = "yuv420p"
        a = c.add_stream("aac", rate=rate)
        a.layout = "mono"
        for i in range(n):
            img = np.full((size, size, 3), (shade + i) % 256, np.uint8)
            fr = av.VideoFrame.from_ndarray(img, format="rgb24")
            fr.pts = i
            fr.time_base = Fraction(1, FPS)
            for p in vs.encode(fr):
                c.mux(p)
        for p in vs.encode():
            c.mux(p)
        t = np.arange(int(n / FPS * rate)) / rate
        tone = (0.2 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
        for s in range(0, len(tone), 1024):
            fr = av.AudioFrame.from_ndarray(tone[None, s:s + 1024].copy(), format="fltp", layout="mono")
            fr.sample_rate = rate
            fr.pts = s
            for p in a.encode(fr):
                c.mux(p)
        for p in a.encode():
            c.mux(p)


class FakeRender:
    """Writes small files derived from the job (so outputs are deterministic); 'FAIL' in a text raises."""

    def __init__(self, clip: bool = False, log_dir: str | None = None) -> None:
        self.clip = clip
        self.log_dir = log_dir  # each call appends the line id here (to count renders across processes)
        self.setups = 0

    def setup(self) -> None:
        self.setups += 1

    def fingerprint(self) -> dict:
        return {"fake": 1}

    def __call__(self, job: LineJob, workdir: Path) -> Rendered:
        if self.log_dir:
            with open(Path(self.log_dir) / f"{os.getpid()}.log", "a") as fh:
                fh.write(job.id + "\n")
        if "FAIL" in job.text:
            raise InputError(f"cannot speak {job.text!r}")
        facts = {"id": job.id, "text": job.text, "vad": job.vad, "seed": job.seed, "voice": job.voice,
                 "w": job.settings.width}
        (workdir / "speech.wav").write_bytes(json.dumps(facts, sort_keys=True).encode() * 3)
        (workdir / "face.json").write_text(json.dumps({"fps": FPS, "seed": job.seed}))
        files = {"speech.wav": workdir / "speech.wav", "face.json": workdir / "face.json"}
        if self.clip:
            write_tiny_mp4(workdir / "clip.mp4", 0.2 + 0.1 * (job.index % 3), shade=40 * job.index)
            files["clip.mp4"] = workdir / "clip.mp4"
        return Rendered(files=files, timings={"fake": 0.001}, info={"duration": 1.0})


def fake_render_fn(job: LineJob, workdir: Path) -> dict[str, Path]:
    """The plain-function form of a render callable."""
    (workdir / "out.txt").write_text(f"{job.id} {job.seed} {job.vad}")
    return {"out.txt": workdir / "out.txt"}
