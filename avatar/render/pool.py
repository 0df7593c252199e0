"""Render a video's frames in forked worker processes, each with its own llvmpipe context.

    with RenderPool(avatar, settings=RenderSettings(width=512, height=512)) as pool:
        ...  # the workers open their GL contexts and compile shaders while the caller makes the motion
        for rgb in pool.frames(face_rows, joints, (rotations, roots)): ...

Why processes: on a CPU, Mesa's llvmpipe does the vertex work and every draw call in the calling thread, and
moderngl holds the GIL through them, so a second renderer in a thread runs no faster (measured). Two processes,
each on one llvmpipe thread, keep both cores of a small machine busy, with the encoder in the parent; see
bench/pipeline_bench.py. Worker k renders frames k, k + W, k + 2W, ... into its own ring of shared-memory slots;
the parent hands them out in order. A RenderPool is an avatar.render.frames.FrameSource. The caller forks one process, worker 0, which reads and lays out the avatar
(or inherits an Avatar) and then forks the other workers, so that this is done once, off the caller's critical
path; each worker then opens its own GL context. Worker 0 reaps the others, and every worker ends with the process
that forked it (PR_SET_PDEATHSIG). `fork_available()` says when forking is safe (Linux, the calling thread is the
only Python thread, and this process has not opened a GL context, which a forked child could not share).
"""

from __future__ import annotations

import logging
import mmap
import os
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from avatar.errors import AvatarError, InputError

from .avatars import avatar_source
from .context import gl_context_opened
from .settings import DEFAULT_ANTIALIAS, RenderSettings

if TYPE_CHECKING:
    from multiprocessing.connection import Connection

log = logging.getLogger(__name__)

#: Shared memory for all workers' rings, in bytes; each worker gets as many slots as fit, from 3 to 16.
#: Deep rings matter: with 3 slots a worker that got ahead waited 0.07-0.2 s per video for the encoder to take
#: its frames while the other lagged (an idle core), with 16 slots 0.01-0.03 s (`avatar say`, bench line).
RING_BYTES = 48 * 2**20
MIN_SLOTS, MAX_SLOTS = 3, 16
#: Workers' niceness: their set-up overlaps the parent's emotion and speech stages, which then keep their speed
#: (`avatar say` on the bench line, three alternating runs each: render started at 1.6-1.8 s with 10 against
#: 1.8-2.0 s with 0, and the video was done 0.35 s sooner on average).
NICE = 10
_POLL = 0.05  # seconds between checks that a worker is still alive while waiting for it


def default_workers() -> int:
    """Render processes to use here: one per usable core from 2 to 4 where forking is safe, else 1 (in-process).

    Past four the parent's encoder (x264, about 7 ms a 512x512 frame) is the bottleneck."""
    return worker_count() if fork_available() else 1


def worker_count() -> int:
    """One render process per usable core, from 2 to 4 (whether or not they can be forked here)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    return max(2, min(4, cores))


def ring_slots(width: int, height: int, workers: int) -> int:
    """Slots per worker for frames of this size: as many as RING_BYTES holds, from MIN_SLOTS to MAX_SLOTS."""
    return max(MIN_SLOTS, min(MAX_SLOTS, RING_BYTES // max(1, width * height * 3 * workers)))


def fork_available() -> bool:
    """Whether forked render workers are safe here: Linux, one Python thread, no GL context opened yet."""
    return (sys.platform.startswith("linux") and hasattr(os, "fork") and (os.cpu_count() or 1) >= 2
            and threading.active_count() == 1 and not gl_context_opened())


def spawn_available() -> bool:
    """Whether spawned render workers can run here: a POSIX system with two cores or more (worker 0 forks the rest
    from its own fresh, single-threaded process, so the caller may have threads or a GL context)."""
    return hasattr(os, "fork") and (os.cpu_count() or 1) >= 2


def _shared_frames(size: int) -> tuple[int, mmap.mmap]:
    """A file descriptor of `size` bytes of shared memory and this process's mapping of it (memfd on Linux, an
    unlinked temporary file elsewhere): a forked child inherits the descriptor, a spawned one is handed it."""
    if hasattr(os, "memfd_create"):
        fd = os.memfd_create("avatar-render-frames")
    else:
        import tempfile

        with tempfile.TemporaryFile() as fh:
            fd = os.dup(fh.fileno())
    try:
        os.ftruncate(fd, size)
        return fd, mmap.mmap(fd, size)
    except BaseException:
        os.close(fd)
        raise


class _Fd:
    """A file descriptor passed to a worker: as is when forked; duplicated into it when spawned, the way
    multiprocessing passes its pipes (reduction.DupFd)."""

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def __reduce__(self) -> tuple:
        from multiprocessing.reduction import DupFd

        return _rebuild_fd, (DupFd(self.fd),)


def _rebuild_fd(dup: Any) -> _Fd:
    return _Fd(dup.detach())


def _die_with(parent: int) -> None:
    """End this process when the thread that started it ends (Linux's PR_SET_PDEATHSIG): only for a process
    started by its parent's main thread, whose end is the parent's."""
    import ctypes
    import signal

    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL), 0, 0, 0)  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # no prctl: the slot and pipe checks below still stop us
        pass
    if os.getppid() != parent:  # it ended before the request took effect
        os._exit(0)


def _workers(conns: list, frees: list, frames_fd: _Fd, shape: tuple[int, ...], avatar: Any,
             settings: RenderSettings, nice: int, parent: int, by_main_thread: bool) -> None:
    """Worker 0: read and lay out the avatar once, fork the other workers from here, then serve as worker 0.

    Why one fork from the caller and the rest from here: reading the avatar and laying it out (meshes, rig,
    framing, normal deltas) is about 0.3 s of CPU, done once instead of once per worker, on the core the caller
    leaves idle; each worker then only opens its GL context. Worker 0 reaps the others."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle; it stops the workers
    os.environ["LP_NUM_THREADS"] = "1"  # one llvmpipe thread per worker: the workers are the parallelism
    if nice:
        os.nice(nice)  # the parent's stages (speech, motion, encoding) come first; workers take the spare core
    if by_main_thread:  # else the pipes alone tell: a spawned worker holds none of the parent's ends
        _die_with(parent)
    t0 = time.perf_counter()
    shm = mmap.mmap(frames_fd.fd, int(np.prod(shape)))
    os.close(frames_fd.fd)  # the mapping keeps the memory; the workers forked below inherit the mapping
    from .renderer import Renderer

    try:
        renderer = Renderer(avatar, settings=settings, gl=False)  # an Avatar (inherited), or a path read here
    except Exception as exc:  # noqa: BLE001 - reported to the parent, which raises it
        for conn in conns:
            conn.send(("failed", (type(exc).__name__, str(exc))))
        return
    me, children = os.getpid(), []
    for k in range(1, len(conns)):
        pid = os.fork()
        if pid == 0:  # worker k: only its own pipe stays open, so that its exit closes that pipe for the parent
            try:
                for j, conn in enumerate(conns):
                    if j != k:
                        conn.close()
                _die_with(me)
                _serve(k, conns[k], frees[k], shm, shape, renderer, t0, me)
            finally:
                os._exit(0)  # never return into worker 0's frames (multiprocessing's exit code is not ours)
        children.append(pid)
        conns[k].close()

    def stop(signum: int, frame: object) -> None:  # terminate(): the workers forked here go too, reaped
        for pid in children:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        _reap(children)
        os._exit(128 + signum)

    signal.signal(signal.SIGTERM, stop)
    try:
        _serve(0, conns[0], frees[0], shm, shape, renderer, t0, parent)
    finally:
        _reap(children)  # a normal stop: each got None from the parent and ends by itself


def _reap(pids: list[int]) -> None:
    for pid in pids:
        try:
            os.waitpid(pid, 0)
        except ChildProcessError:
            pass


def _serve(k: int, conn: Connection, free: Any, shm: mmap.mmap, shape: tuple[int, ...], renderer: Any,
           t0: float, parent: int) -> None:
    """A worker: open the renderer's GL context, then render frames k, k + W, ... of each job handed to it."""
    workers = shape[0]
    slots = np.frombuffer(shm, dtype=np.uint8).reshape(shape)[k]
    try:
        renderer.open()
        renderer.render(None, None)  # compile the shader variants now, while the parent is busy elsewhere
    except Exception as exc:  # noqa: BLE001 - reported to the parent, which raises it
        conn.send(("failed", (type(exc).__name__, str(exc))))
        return
    conn.send(("ready", (time.perf_counter() - t0, os.getpid())))
    try:
        while True:
            job = conn.recv()
            if job is None:
                return
            face_rows, joints, rot, root, n = job
            for i in range(k, n, workers):
                while not free.acquire(timeout=0.5):  # wait until the parent has taken this slot's last frame
                    if os.getppid() != parent:
                        return  # the parent died without stopping us
                body = (joints, rot[i], root[i]) if rot is not None else None
                img = renderer.render(face_rows[i] if face_rows is not None else None, body)
                slots[(i // workers) % len(slots)] = img
                conn.send(("frame", i))
    except (EOFError, BrokenPipeError, KeyboardInterrupt):
        return  # the parent is gone or stopping us
    except Exception as exc:  # noqa: BLE001 - reported to the parent, which raises it
        try:
            conn.send(("error", f"{type(exc).__name__}: {exc}"))
        except (OSError, ValueError):
            pass
    finally:
        renderer.close()


class RenderPool:
    """Forked render workers for one avatar and RenderSettings (a FrameSource); use as a context manager or call
    close()."""

    _procs: list = []  # so that close() works on a pool whose __init__ failed early
    _failure: Exception | None = None  # what stopped a worker's set-up, raised again by check() and frames()

    def __init__(self, avatar: Any, *, width: int = 512, height: int = 512, framing: str = "portrait",
                 antialias: str = DEFAULT_ANTIALIAS, samples: int = 4, workers: int = 2, slots: int | None = None,
                 nice: int = NICE, start: str = "fork", settings: RenderSettings | None = None) -> None:
        """Start `workers` processes that open their renderers at once (`settings`, when given, replaces width,
        height, framing, antialias and samples).

        avatar: an Avatar, or a .glb/.gltf/.vrm path or None (the default avatar): then only the file's header is
        checked here and worker 0 reads the file, on a core this process leaves idle; `check()` or `frames()`
        raises what it found wrong with it (InputError).
        start: "fork" (worker 0 is forked from here: in milliseconds, but only from a single-threaded process
        with no GL context, `fork_available()`) or "spawn" (worker 0 is a fresh Python process, about a second
        to start, for a process with threads such as the app's server; an Avatar is then read again from its
        file there)."""
        import multiprocessing as mp

        if isinstance(workers, bool) or not isinstance(workers, int) or not 1 <= workers <= 16:
            raise InputError(f"workers must be an integer in [1, 16], got {workers!r}")
        if settings is None:
            settings = RenderSettings.make(width=width, height=height, framing=framing, antialias=antialias,
                                           samples=samples)
        if start not in ("fork", "spawn"):
            raise InputError(f"start must be 'fork' or 'spawn', got {start!r}")
        if start == "fork" and not fork_available():
            raise AvatarError("forked render workers need Linux, a single Python thread and no GL context yet")
        if start == "spawn" and not spawn_available():
            raise AvatarError("spawned render workers need a POSIX system (fork) with two cores or more")
        self.settings = settings
        self.width, self.height, self.workers = settings.width, settings.height, workers
        self.framing, self.antialias = settings.framing, settings.antialias
        self._slots = max(1, int(slots)) if slots is not None else ring_slots(self.width, self.height, workers)
        self._shape = (workers, self._slots, self.height, self.width, 3)
        ctx = mp.get_context(start)
        # A path is not read here but in worker 0, before it forks the others: importing the glTF reader and
        # parsing the default avatar took 0.13-0.15 s of `avatar say`'s critical path.
        av = avatar_source(avatar)
        if start == "spawn" and not isinstance(av, Path):
            av = avatar_source(av.path)  # a fresh process is handed the file, not the parsed Avatar
        fd, self._shm = _shared_frames(int(np.prod(self._shape)))
        self._view = np.frombuffer(self._shm, dtype=np.uint8).reshape(self._shape)
        self._conns, self._free, self._procs = [], [], []
        self.pids: list[int | None] = [None] * workers  # each worker's process id, once it is ready
        self._ready = [False] * workers
        self._busy = False
        children = []
        try:
            for _ in range(workers):
                parent, child = ctx.Pipe()
                self._conns.append(parent)
                children.append(child)
                self._free.append(ctx.Semaphore(self._slots))
            # One process forked from here (worker 0); it forks the others once it has laid out the avatar.
            p = ctx.Process(target=_workers, name="avatar-render", daemon=True,
                            args=(children, self._free, _Fd(fd), self._shape, av, settings, int(nice), os.getpid(),
                                  threading.current_thread() is threading.main_thread()))
            p.start()
            self._procs.append(p)
            log.debug("started the first of %d render workers (%s)", workers, start)
        except BaseException:
            self._stop(force=True)
            raise
        finally:
            os.close(fd)  # worker 0 has its own now (inherited or passed); the mapping here keeps the memory
            for child in children:  # the workers' ends live in the workers only: a worker's exit ends its pipe
                child.close()

    def _recv(self, k: int) -> tuple[str, Any]:
        """The next message from worker k; AvatarError when it died or reported an error."""
        conn, proc = self._conns[k], self._procs[0]  # the others end with worker 0, and end their pipes
        while not conn.poll(_POLL):
            if not proc.is_alive():
                raise AvatarError(f"render worker 0 exited (code {proc.exitcode}) without finishing")
        try:
            kind, value = conn.recv()
        except EOFError:
            raise AvatarError(f"render worker {k} closed its connection") from None
        if kind == "error":
            raise AvatarError(f"render worker {k}: {value}")
        if kind == "failed":  # the worker could not set up: our own errors keep their message and class
            name, msg = value
            if name == "InputError":
                self._failure = InputError(msg)  # e.g. an avatar file that does not parse
            else:
                self._failure = AvatarError(msg if name == "AvatarError" else
                                            f"render worker {k} could not start: {name}: {msg}")
            raise self._failure
        return kind, value

    def check(self) -> None:
        """Raise now what a worker met while setting up (a broken avatar file, no EGL); never waits."""
        if self._failure is not None:
            raise type(self._failure)(str(self._failure))
        for k, conn in enumerate(self._conns):
            if not self._ready[k] and (conn.poll(0) or not self._procs[0].is_alive()):
                self._set_ready(k, self._recv(k)[1])

    def _set_ready(self, k: int, value: tuple[float, int]) -> None:
        setup, self.pids[k] = value
        self._ready[k] = True
        log.debug("render worker %d set up in %.2f s", k, setup)

    def frames(self, face_rows: np.ndarray | None, joints: tuple[str, ...],
               pose: tuple[np.ndarray, np.ndarray] | None, n: int) -> Iterator[np.ndarray]:
        """RGB frames 0..n-1 in order (uint8 [H, W, 3], each a copy the caller may keep)."""
        if self._procs == []:
            raise AvatarError("the render pool is closed")
        if self._busy:
            raise AvatarError("the render pool is already rendering a video")
        rot, root = pose if pose is not None else (None, None)
        self.check()  # a worker that failed to set up: its error, not "worker exited"
        self._busy = True
        handed = 0
        try:
            t0 = time.perf_counter()
            for k in range(self.workers):
                if not self._ready[k]:
                    self._set_ready(k, self._recv(k)[1])  # "ready", or what stopped its renderer
            log.debug("waited %.2f s for the render workers to be ready", time.perf_counter() - t0)
            for k, conn in enumerate(self._conns):
                try:
                    conn.send((face_rows, tuple(joints), rot, root, int(n)))
                except OSError:  # its end is closed: the worker died since the last video
                    raise AvatarError(f"render worker {k} is gone") from None
            for i in range(n):
                k = i % self.workers
                kind, j = self._recv(k)
                if kind != "frame" or j != i:
                    raise AvatarError(f"render worker {k} sent {kind} {j} where frame {i} was due")
                img = self._view[k, (i // self.workers) % self._slots].copy()
                self._free[k].release()
                handed = i + 1
                yield img
        except GeneratorExit:  # the consumer closed us: after the last frame that is the normal end
            if handed < n:
                self._stop(force=True)  # a worker may be mid-job, blocked on a slot: stop them all
            raise
        except BaseException:
            self._stop(force=True)
            raise
        finally:
            self._busy = False

    def close(self) -> None:
        """Stop the workers and free the shared frames (idempotent)."""
        self._stop(force=self._busy)

    def _stop(self, force: bool) -> None:
        if not force:
            for conn in getattr(self, "_conns", []):
                try:
                    conn.send(None)  # between jobs a worker waits for its next message: this ends it
                except (OSError, ValueError):
                    pass
        deadline = time.monotonic() + 2.0
        for p in self._procs:
            if force and p.is_alive():
                p.terminate()
            p.join(max(0.1, deadline - time.monotonic()))
            if p.is_alive():
                p.kill()
                p.join(1.0)
        for conn in getattr(self, "_conns", []):
            conn.close()
        self._conns, self._free, self._procs = [], [], []

    def __enter__(self) -> "RenderPool":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # noqa: BLE001 - interpreter shutdown
            pass
