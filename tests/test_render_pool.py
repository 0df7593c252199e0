"""Forked render workers (avatar.render.pool): same frames as one renderer, errors, early stops, safety checks.

Each test runs its body in a new Python process: forking is only allowed from a process that has not opened a
GL context and has one Python thread, and the pytest process has done both by now.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytest.importorskip("moderngl")
ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="forked render workers are Linux-only")

_SETUP = """
import os
import numpy as np
from avatar.errors import AvatarError, InputError
from avatar.render.pool import RenderPool, fork_available
from avatar.render.avatars import resolve_avatar
from avatar.render.frames import FrameSource, render_frames
from avatar.types import FACE_CHANNELS, ARKIT_BLENDSHAPES, BodyMotion, FaceMotion

av = resolve_avatar(None)
n = 7


def gone(pids):  # every worker process has ended and been reaped (no zombie left either)
    assert len(pids) == 2 and all(pids), pids
    for pid in pids:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            continue
        return False
    return True
rng = np.random.default_rng(0)
frames = np.zeros((n, len(FACE_CHANNELS)), np.float32)
frames[:, :52] = rng.uniform(0, 0.6, (n, 52))
face = FaceMotion(frames=frames, fps=30.0)
from avatar.render.pose import build_rig
rig = build_rig(av)
joints = ("neck", "head", "leftUpperArm", "rightUpperArm")
ang = np.linspace(0, 0.3, n)[:, None] * np.ones((1, len(joints)))
rot = np.stack([np.sin(ang / 2), np.zeros_like(ang), np.zeros_like(ang), np.cos(ang / 2)], -1).astype(np.float32)
hips = np.tile(rig.rest_world[rig.hips][:3, 3], (n, 1)).astype(np.float32)  # root positions are absolute
body = BodyMotion(joints=joints, rotations=rot, root_position=hips, fps=30.0)
"""


def _run(body: str) -> str:
    code = textwrap.dedent(_SETUP) + textwrap.dedent(body)
    res = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    return res.stdout


def test_pool_frames_match_one_renderer() -> None:
    out = _run("""
        assert fork_available()
        with RenderPool(av, width=96, height=80, framing="portrait", antialias="fxaa", workers=2) as pool:
            got = list(render_frames(av, face, body, fps=30.0, width=96, height=80, framing="portrait",
                                     antialias="fxaa", pool=pool))
            again = list(render_frames(av, face, body, fps=30.0, width=96, height=80, framing="portrait",
                                       antialias="fxaa", pool=pool))  # a pool serves video after video
            procs, pids = list(pool._procs), list(pool.pids)
        assert not any(p.is_alive() for p in procs) and gone(pids), "close() leaves no worker behind"
        assert isinstance(pool, FrameSource) and pool.settings.antialias == "fxaa"
        assert os.getpid() not in pids and len(set(pids)) == 2
        # After the fork this process may open its own context: the reference, one renderer in-process.
        ref = list(render_frames(av, face, body, fps=30.0, width=96, height=80, framing="portrait", antialias="fxaa"))
        assert len(got) == len(ref) == n
        for a, b, c in zip(got, again, ref):
            assert a.shape == (80, 96, 3) and a.dtype == np.uint8
            assert np.array_equal(a, b)
            assert np.abs(a.astype(int) - c.astype(int)).max() <= 1
        assert len({a.tobytes() for a in got}) == n, "every frame differs: the motion reached the workers"
        assert not fork_available(), "a GL context is open now: forking is off"
        try:
            RenderPool(av, width=96, height=80, workers=2)
        except AvatarError as exc:
            print("refused:", exc)
        """)
    assert "refused:" in out and "GL context" in out


def test_pool_reports_worker_errors_and_stops_early() -> None:
    out = _run("""
        pool = RenderPool(av, width=64, height=64, framing="portrait", antialias="none", workers=2)
        bad = np.zeros((n, 5))  # a face row must have 59 or 52 channels: the worker's renderer refuses it
        try:
            list(pool.frames(bad, (), None, n))
        except AvatarError as exc:
            print("error:", exc)
        assert not any(p.is_alive() for p in pool._procs), "a failed job stops the workers"
        pool.close()

        pool = RenderPool(av, width=64, height=64, framing="portrait", antialias="none", workers=2)
        it = render_frames(av, face, body, fps=30.0, width=64, height=64, antialias="none", pool=pool)
        first = next(it)
        procs, pids = list(pool._procs), list(pool.pids)
        it.close()  # the consumer stops after one frame: the workers must not be left waiting on a slot
        assert not any(p.is_alive() for p in procs) and gone(pids)
        pool.close()
        pool.close()  # idempotent
        try:
            render_frames(av, face, body, fps=30.0, width=96, height=96, antialias="none",
                          pool=RenderPool(av, width=64, height=64, antialias="none", workers=2))
        except InputError as exc:
            print("mismatch:", exc)
        try:
            RenderPool(av, width=64, height=64, workers=0)
        except InputError as exc:
            print("workers:", exc)
        """)
    assert "error: render worker" in out and "59 channels" in out
    assert "mismatch: the render pool renders 64x64" in out
    assert "workers: workers must be an integer" in out


def test_say_renders_with_workers_like_without(tmp_path: Path) -> None:
    out = _run(f"""
        import av as pyav
        import avatar.pipeline as pipeline
        from avatar.npnn import blas_threads
        from avatar.pipeline import say

        seen = []  # BLAS threads while the stages run: one beside render workers, as set up otherwise
        perform = pipeline.perform
        pipeline.perform = lambda *a, **k: (seen.append(blas_threads()), perform(*a, **k))[1]
        before = blas_threads()

        def decoded(path):
            with pyav.open(path) as box:
                return [f.to_ndarray(format="rgb24") for f in box.decode(video=0)]

        a = say("Hello there.", {str(tmp_path / "a.mp4")!r}, width=96, height=96, render_workers=2)
        b = say("Hello there.", {str(tmp_path / "b.mp4")!r}, width=96, height=96, render_workers=1)
        fa, fb = decoded(a.video), decoded(b.video)
        assert len(fa) == len(fb) > 10
        # The frames are the same (test_pool_frames_match_one_renderer); the videos differ only by x264, which
        # encodes with one thread beside render workers and its default threads otherwise, and a textured
        # face shows that: a fraction of a grey level on average, a few pixels at edges by more.
        d = np.stack([np.abs(x.astype(int) - y.astype(int)) for x, y in zip(fa, fb)])
        print("mean diff", d.mean(), "worst frame", d.mean(axis=(1, 2, 3)).max())
        assert d.mean() < 0.5 and d.mean(axis=(1, 2, 3)).max() < 1.5, (d.mean(), d.mean(axis=(1, 2, 3)).max())
        assert seen == [1, before] and blas_threads() == before, (seen, before)
        try:
            say("Hello.", {str(tmp_path / "c.mp4")!r}, render_workers=0)
        except InputError as exc:
            print("refused:", exc)
        """)
    assert "refused: render_workers must be an integer" in out


def test_say_falls_back_to_one_process_when_the_workers_cannot_start(tmp_path: Path, monkeypatch, caplog) -> None:
    """Default workers that fail to start (e.g. a thread appeared) leave the video to this process; an explicit
    request for workers that cannot start is an error. The pool is started by `say` itself between the emotion
    and the speech stages, never from inside its progress callback."""
    import inspect
    import logging

    import avatar.render.pool as pool_mod
    from avatar.errors import AvatarError
    from avatar.pipeline import say

    events: list[tuple[str, float]] = []
    started_after: list[list[tuple[str, float]]] = []

    def refuse(*args: object, **kwargs: object) -> None:
        assert not any(f.function in ("timed", "_tick") for f in inspect.stack()), "pool started by a callback"
        started_after.append(list(events))
        raise AvatarError("forked render workers need Linux, a single Python thread and no GL context yet")

    monkeypatch.setattr(pool_mod, "default_workers", lambda: 2)
    monkeypatch.setattr(pool_mod.RenderPool, "__init__", refuse)
    with caplog.at_level(logging.WARNING, logger="avatar.pipeline"):
        result = say("Hi.", tmp_path / "a.mp4", width=64, height=64, progress=lambda *e: events.append(e))
    assert result.video.is_file() and "rendering in this process" in caplog.text
    assert started_after == [[("emotion", 0.0), ("emotion", 1.0)]]  # after the emotion stage, before the speech
    with pytest.raises(AvatarError, match="single Python thread"):
        say("Hi.", tmp_path / "b.mp4", width=64, height=64, render_workers=2)
    assert not (tmp_path / "b.mp4").exists()


def test_ring_depth_follows_frame_size() -> None:
    from avatar.render.pool import MAX_SLOTS, MIN_SLOTS, RING_BYTES, ring_slots

    assert ring_slots(512, 512, 2) == MAX_SLOTS  # the default video: a deep ring, so no worker waits on a slot
    assert ring_slots(1080, 1080, 2) == RING_BYTES // (1080 * 1080 * 3 * 2) == 7
    assert ring_slots(2160, 2160, 4) == MIN_SLOTS  # never shallower than three, whatever the size


def _broken_glb(path: Path) -> Path:
    """A .glb whose 12-byte header is sound and whose JSON chunk is not JSON: only a full read finds it broken."""
    chunk = b"not json"
    body = len(chunk).to_bytes(4, "little") + b"JSON" + chunk
    path.write_bytes(b"glTF" + (2).to_bytes(4, "little") + (12 + len(body)).to_bytes(4, "little") + body)
    return path


def test_pool_given_a_path_reads_the_avatar_in_its_workers(tmp_path: Path) -> None:
    """A path (or None) is read by each worker, not by the caller: the frames are those of a pool handed the
    Avatar, and a file broken past its header is reported by check() and frames() with the loader's message."""
    broken = _broken_glb(tmp_path / "broken.glb")
    code = textwrap.dedent(f"""
        import sys, time
        import numpy as np
        from avatar.errors import InputError
        from avatar.render.pool import RenderPool
        from avatar.types import FACE_CHANNELS

        rows = np.zeros((4, len(FACE_CHANNELS)))
        rows[:, 17] = np.linspace(0, 1, 4)  # jawOpen
        with RenderPool(None, width=64, height=64, antialias="none", workers=2) as pool:
            assert "pygltflib" not in sys.modules, "the caller parsed the avatar"
            by_path = list(pool.frames(rows, (), None, 4))
        from avatar.render.renderer import resolve_avatar
        with RenderPool(resolve_avatar(None), width=64, height=64, antialias="none", workers=2) as pool:
            by_avatar = list(pool.frames(rows, (), None, 4))
        assert all(np.array_equal(a, b) for a, b in zip(by_path, by_avatar))
        assert not np.array_equal(by_path[0], by_path[-1]), "the jaw moved"

        pool = RenderPool({str(broken)!r}, width=64, height=64, antialias="none", workers=2)
        deadline = time.monotonic() + 60
        try:
            while time.monotonic() < deadline:
                pool.check()
                time.sleep(0.05)
            print("check: no error")
        except InputError as exc:
            print("check:", exc)
        try:
            list(pool.frames(rows, (), None, 4))
        except InputError as exc:
            print("frames:", exc)
        pool.close()
        """)
    res = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "check: broken.glb is not a readable glTF 2.0 file" in res.stdout, res.stdout
    assert "frames:" in res.stdout and "broken.glb" in res.stdout.split("frames:")[1]


def test_workers_end_when_the_caller_dies_without_closing() -> None:
    """A caller killed mid-way (no close(), no atexit) leaves no render worker running."""
    import os
    import time

    res = subprocess.run([sys.executable, "-c", textwrap.dedent("""
        import os
        from avatar.render.pool import RenderPool
        pool = RenderPool(None, width=64, height=64, antialias="none", workers=2)
        pool.check()
        while not all(pool._ready):
            pool.check()
        print(*pool.pids, flush=True)
        os._exit(0)
        """)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    pids = [int(p) for p in res.stdout.split()]
    assert len(pids) == 2

    def running(pid: int) -> bool:
        try:
            with open(f"/proc/{pid}/stat") as fh:
                return fh.read().rsplit(")", 1)[1].split()[0] != "Z"  # a zombie has ended
        except FileNotFoundError:
            return False

    deadline = time.monotonic() + 10
    while any(running(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(running(p) for p in pids), [p for p in pids if running(p)]
    assert os.getpid() not in pids


def test_spawned_pool_renders_from_a_process_with_threads() -> None:
    """start="spawn" works where forking is refused (another thread runs, as in the app's server), gives the
    frames of a forked pool, and leaves no worker behind."""
    code = textwrap.dedent("""
        import os, threading, time
        import numpy as np
        from avatar.errors import AvatarError
        from avatar.render.pool import RenderPool, fork_available
        from avatar.render.renderer import Renderer, resolve_avatar
        from avatar.types import FACE_CHANNELS

        def main():
            rows = np.zeros((5, len(FACE_CHANNELS)))
            rows[:, 17] = np.linspace(0, 1, 5)  # jawOpen
            stop = threading.Event()
            t = threading.Thread(target=stop.wait, daemon=True)
            t.start()
            assert not fork_available()
            try:
                RenderPool(None, width=64, height=64, workers=2)
            except AvatarError as exc:
                print("fork refused:", exc)
            av = resolve_avatar(None)  # an Avatar: the spawned worker reads its file again
            with RenderPool(av, width=64, height=64, antialias="none", workers=2, start="spawn") as pool:
                got = list(pool.frames(rows, (), None, 5))
                again = list(pool.frames(rows, (), None, 5))
                pids = list(pool.pids)
            stop.set()
            with Renderer(av, 64, 64, antialias="none") as r:
                ref = [r.render(x) for x in rows]
            assert all(np.array_equal(a, b) for a, b in zip(got, again))
            print("max diff", max(np.abs(a.astype(int) - b.astype(int)).max() for a, b in zip(got, ref)))
            alive = []
            for pid in pids:
                try:
                    os.kill(pid, 0)
                    alive.append(pid)
                except ProcessLookupError:
                    pass
            print("alive", alive, "pids", len(set(pids)))

        if __name__ == "__main__":  # spawn imports the main module again: Python's rule for spawned processes
            main()
        """)
    res = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "fork refused:" in res.stdout
    diff = int(res.stdout.split("max diff ")[1].split()[0])
    assert diff <= 1, res.stdout
    assert "alive [] pids 2" in res.stdout, res.stdout


def test_pool_refuses_an_unknown_start_method() -> None:
    from avatar.errors import InputError
    from avatar.render.pool import RenderPool

    with pytest.raises(InputError, match="start must be 'fork' or 'spawn'"):
        RenderPool(None, width=64, height=64, start="thread")
