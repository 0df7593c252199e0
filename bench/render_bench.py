"""Benchmark the renderer and the MP4 writer on real motion, against a rest-pose baseline in the same run.

    .venv/bin/python bench/render_bench.py [--frames 90] [--no-720p] [--snapshots DIR]

Motion: an eSpeak sentence spoken "happy", its FaceMotion from avatar.face.teacher and its BodyMotion from
avatar.gesture.teacher (no trained weights needed), on the default avatar. For portrait and full framing at
512x512 (and portrait at 1280x720) it prints:
- rendering fps (1 / median frame time) of the animated performance, and of the baseline measured in the
  same process, interleaved frame by frame: the rest pose with no morph targets (no per-frame morphing, no
  normal recomputation, unchanged joint matrices), as a ratio, and of the same animation with FXAA and with
  no anti-aliasing (second baseline);
- time per stage per frame (pose = node matrices, morph = morph targets + normals + upload, draw = GL raster
  incl. MSAA resolve, read = read-back and flip);
- the MP4 writer (overlays + libx264 veryfast + AAC) per frame, and the end-to-end fps of
  render_frames -> write_mp4 with subtitles and the VAD indicator.
- portrait FXAA frames with NumPy's BLAS on one thread while rendering (the renderer's default) against BLAS
  as the process has it (OpenBLAS: all cores), in alternating blocks of frames, for the motion's face and for a
  face with every blendshape active: with large morph products OpenBLAS's spare thread spins on a core llvmpipe
  needs. Run without OMP_NUM_THREADS / OPENBLAS_NUM_THREADS for this row to mean anything.
llvmpipe uses LP_NUM_THREADS threads (default: all cores); the machine's load average is printed since the
cores may be shared.
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TEXT = "Hello there! It is really lovely to see you again, and I have some wonderful news to share."


def performance(seconds_max: float):
    """(speech, FaceMotion, BodyMotion, VAD) for TEXT spoken happy, trimmed to seconds_max."""
    from avatar.emotion.labels import LABEL_VAD
    from avatar.face.teacher import teacher_motion as face_teacher
    from avatar.gesture.teacher import teacher_motion as body_teacher
    from avatar.tts import get_backend

    vad = LABEL_VAD["happy"]
    speech = get_backend("espeak").synthesize(TEXT, vad)
    face = face_teacher(speech.timeline, vad, duration=speech.duration, seed=0)
    body = body_teacher(speech.audio, vad, duration=speech.duration, sr=speech.sample_rate,
                        timeline=speech.timeline, seed=0)
    return speech, face, body, vad


def measure(renderers: dict, face, body, n: int) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Per-frame wall and CPU seconds [n] for each renderer (CPU: this process's threads, llvmpipe's
    included), interleaved frame by frame so that load from other processes on a shared machine falls on
    every case alike. "rest" renders the rest pose with no morph targets; the others the motion's frames."""
    from avatar.render.motion import resample_body, resample_face

    rows = resample_face(face, n, 30.0)
    rot, root = resample_body(body, n, 30.0)
    for name, r in renderers.items():  # warm-up (shader JIT), then clear the stage timers
        r.render(None, None) if name == "rest" else r.render(rows[0], (body.joints, rot[0], root[0]))
        for k in r.timings:
            r.timings[k] = 0.0
    out = {name: np.zeros(n) for name in renderers}
    cpu = {name: np.zeros(n) for name in renderers}
    for i in range(n):
        for name, r in renderers.items():
            t, c = time.perf_counter(), time.process_time()
            if name == "rest":
                r.render(None, None)
            else:
                r.render(rows[i], (body.joints, rot[i], root[i]))
            out[name][i] = time.perf_counter() - t
            cpu[name][i] = time.process_time() - c
    return out, cpu


def blas_ab(face, body, n: int, dense: bool = False, blocks: int = 6,
            block: int = 15) -> dict[str, float]:
    """Median ms per portrait FXAA frame with the renderer's BLAS limit (1 thread) and without it (None),
    alternating blocks of `block` frames; the first 3 frames of each block are dropped (threads settle).
    dense: every blendshape active (random weights up to 0.3) instead of the motion's face, so the morph
    products are large enough for OpenBLAS to use all its threads."""
    from avatar.render.motion import resample_body, resample_face
    from avatar.render.renderer import Renderer

    rows = resample_face(face, n, 30.0)
    if dense:
        rows = rows.copy()
        rows[:, :52] = np.random.default_rng(0).uniform(0.0, 0.3, (n, 52))
    rot, root = resample_body(body, n, 30.0)
    times: dict[str, list[float]] = {"one BLAS thread": [], "BLAS unrestricted": []}
    with Renderer(None, 512, 512, antialias="fxaa") as r:
        for b in range(blocks):
            name = "one BLAS thread" if b % 2 == 0 else "BLAS unrestricted"
            r.blas_threads = 1 if b % 2 == 0 else None
            for j in range(block):
                i = (b * block + j) % n
                t = time.perf_counter()
                r.render(rows[i], (body.joints, rot[i], root[i]))
                if j >= 3:
                    times[name].append(time.perf_counter() - t)
    return {k: 1000 * float(np.median(v)) for k, v in times.items()}


def main() -> None:
    """Print the figures."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=90, help="frames per measurement (default 90 = 3 s)")
    ap.add_argument("--no-720p", action="store_true", help="skip the 1280x720 case")
    ap.add_argument("--snapshots", default=None, help="also write emotion stills (PNG) into this folder")
    args = ap.parse_args()
    from avatar.render.frames import render_frames
    from avatar.render.motion import frame_count
    from avatar.render.renderer import Renderer
    from avatar.render.video import write_mp4

    speech, face, body, vad = performance(10.0)
    n = min(args.frames, frame_count(face, body, 30))
    print(f"motion: {face.duration:.2f} s eSpeak 'happy' (face + gesture teachers); {n} frames per case")
    print(f"cpu cores: {os.cpu_count()}, LP_NUM_THREADS={os.environ.get('LP_NUM_THREADS', 'default')}, "
          f"load average {os.getloadavg()[0]:.2f} (shared machine: other jobs slow every case alike)")
    cases = [("portrait", 512, 512), ("full", 512, 512)] + ([] if args.no_720p else [("portrait", 1280, 720)])
    for framing, w, h in cases:
        rs = {"rest": Renderer(None, w, h, framing=framing, antialias="msaa"),
              "msaa": Renderer(None, w, h, framing=framing, antialias="msaa"),
              "fxaa": Renderer(None, w, h, framing=framing, antialias="fxaa"),
              "none": Renderer(None, w, h, framing=framing, antialias="none")}
        try:
            t, cpu = measure(rs, face, body, n)
            stages = {k: 1000 * v / n for k, v in rs["msaa"].timings.items()}
        finally:
            for r in rs.values():
                r.close()
        fps = {k: 1.0 / np.median(v) for k, v in t.items()}  # medians: robust to load spikes
        print(f"{framing:8s} {w}x{h}: animated (4x MSAA) {fps['msaa']:5.1f} fps | rest-pose baseline "
              f"{fps['rest']:5.1f} fps (animated takes {fps['rest'] / fps['msaa']:.2f}x the baseline's time)")
        print(f"           same animation with FXAA {fps['fxaa']:5.1f} fps, no anti-aliasing {fps['none']:5.1f} fps "
              f"(4x MSAA takes {fps['none'] / fps['msaa']:.2f}x, FXAA {fps['none'] / fps['fxaa']:.2f}x the time "
              f"of none)")
        print("           per frame ms (4x MSAA, means): " + ", ".join(f"{k} {v:.1f}" for k, v in stages.items()))
        c = {k: 1000 * float(np.median(v)) for k, v in cpu.items()}
        print(f"           CPU ms per frame (all threads, load-independent): 4x MSAA {c['msaa']:.0f}, FXAA "
              f"{c['fxaa']:.0f}, none {c['none']:.0f}, rest baseline {c['rest']:.0f} -> on 2 idle cores at best "
              f"{2000 / c['msaa']:.0f} / {2000 / c['fxaa']:.0f} / {2000 / c['none']:.0f} fps")
    env = os.environ.get("OPENBLAS_NUM_THREADS", os.environ.get("OMP_NUM_THREADS", "unset"))
    for dense in (False, True):
        ab = blas_ab(face, body, n, dense=dense)
        print(f"portrait 512x512 FXAA, {'every blendshape active' if dense else 'the motion'}, ms per frame: "
              f"{', '.join(f'{k} {v:.1f}' for k, v in ab.items())} (unrestricted takes "
              f"{ab['BLAS unrestricted'] / ab['one BLAS thread']:.2f}x; OPENBLAS_NUM_THREADS/OMP_NUM_THREADS {env})")
    # Encoding alone (the first frames of the performance, x264 on its default threads and on one, alternating),
    # then end to end (first n frames of the performance).
    frames = render_frames(None, face, body, 30, 512, 512, antialias="fxaa")
    rows = list(itertools.islice(frames, min(n, 60)))
    frames.close()  # its renderer and GL context go now
    sr = speech.sample_rate
    with tempfile.TemporaryDirectory() as tmp:
        m = len(rows)
        enc_runs: dict[int, list[tuple[float, float]]] = {0: [], 1: []}
        for _ in range(3):
            for threads in enc_runs:
                t, c = time.perf_counter(), time.process_time()
                write_mp4(Path(tmp) / "enc.mp4", rows, m, speech.audio[: int(m / 30 * sr)], sr,
                          encoder_threads=threads)
                enc_runs[threads].append((time.perf_counter() - t, time.process_time() - c))
        (enc, enc_cpu), (enc1, enc1_cpu) = (sorted(v)[1] for v in enc_runs.values())
        subs = [(0.0, face.duration, TEXT)]
        t, c = time.perf_counter(), time.process_time()
        out = write_mp4(Path(tmp) / "say.mp4", render_frames(None, face, body, 30, 512, 512), n,
                        speech.audio[: int(n / 30 * sr)], sr, subtitles=subs, vad=np.tile(vad.as_array(), (n, 1)))
        e2e, e2e_cpu = time.perf_counter() - t, time.process_time() - c
        size = out.stat().st_size
    print(f"mp4 writer (libx264 veryfast crf 20 + AAC), 512x512, {m} frames of the motion: x264's default threads "
          f"{1000 * enc / m:.1f} ms per frame wall, {1000 * enc_cpu / m:.1f} ms CPU; one thread "
          f"(encoder_threads=1, beside render workers) {1000 * enc1 / m:.1f} ms wall, {1000 * enc1_cpu / m:.1f} ms CPU")
    print(f"end to end render_frames -> write_mp4 (portrait 512, FXAA (the default), subtitles + VAD, incl. GL set-up): "
          f"{n} frames in {e2e:.1f} s = {n / e2e:.1f} fps wall, {1000 * e2e_cpu / n:.0f} CPU ms per frame, "
          f"{size / 1e3:.0f} kB")
    if args.snapshots:
        from avatar.render.snapshot import snapshots

        for p in snapshots(args.snapshots):
            print("wrote", p)
    print("rerun: .venv/bin/python bench/render_bench.py" + (f" --frames {args.frames}"
                                                                                 if args.frames != 90 else ""))


if __name__ == "__main__":
    main()
