"""Where lines render: in this process, in local worker processes, or on a Ray cluster.

Each executor is a generator: give it the render callable and the jobs, and it yields one LineResult per job
as each finishes (in any order). Workers load their models once (`setup_worker`) and run one BLAS thread
each: the workers are the parallelism, and several multi-threaded workers on the same cores only fight.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
import threading
import time
from collections import deque
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import Any, Callable, Iterator

from avatar.errors import InputError

from .plan import LineJob
from .worker import LineResult, exit_now, render_line, setup_worker

log = logging.getLogger(__name__)

EXECUTORS = ("local", "ray")


def _failed(job: LineJob, message: str) -> LineResult:
    return LineResult(index=job.index, id=job.id, ok=False, error=message)


def run_serial(render: Callable[..., Any], jobs: list[LineJob]) -> Iterator[LineResult]:
    """Render the jobs one after another in this process."""
    if not jobs:
        return
    setup_worker(render)
    for job in jobs:
        yield render_line(render, job)


# One render callable per worker process, set by the pool's initializer.
_POOL_RENDER: Callable[..., Any] | None = None
_POOL_SETUP_ERROR: str | None = None


def _exit_with_parent(parent: int) -> None:
    """Exit this worker when the batch process is gone (a SIGKILLed driver would leave workers idling)."""
    while os.getppid() == parent:
        time.sleep(1.0)
    exit_now(1)


def _pool_init(render: Callable[..., Any]) -> None:
    global _POOL_RENDER, _POOL_SETUP_ERROR
    threading.Thread(target=_exit_with_parent, args=(os.getppid(),), daemon=True).start()
    # Mesa's llvmpipe rasterises on every core by default; with N workers that is N x cores threads.
    os.environ.setdefault("LP_NUM_THREADS", "1")
    _POOL_RENDER = render
    try:
        setup_worker(render)
    except Exception as exc:  # noqa: BLE001 - report it with each line instead of breaking the pool with no message
        _POOL_SETUP_ERROR = f"worker set-up failed: {type(exc).__name__}: {exc}"


def _pool_job(job: LineJob) -> LineResult:
    if _POOL_SETUP_ERROR is not None or _POOL_RENDER is None:
        return _failed(job, _POOL_SETUP_ERROR or "worker not set up")
    return render_line(_POOL_RENDER, job)


def run_processes(render: Callable[..., Any], jobs: list[LineJob], workers: int) -> Iterator[LineResult]:
    """Render in `workers` spawned processes (spawn: no forked torch or OpenGL state), as they finish."""
    if not jobs:
        return
    pool = ProcessPoolExecutor(max_workers=min(workers, len(jobs)), mp_context=mp.get_context("spawn"),
                               initializer=_pool_init, initargs=(render,))
    try:
        # Keep only a few jobs queued per worker, so an interrupted run has little in flight to throw away.
        pending = deque(jobs)
        running: dict[Future, LineJob] = {}
        while pending or running:
            while pending and len(running) < 2 * workers:
                job = pending.popleft()
                running[pool.submit(_pool_job, job)] = job
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for fut in done:
                job = running.pop(fut)
                try:
                    yield fut.result()
                except Exception as exc:  # noqa: BLE001 - a worker died (killed, out of memory, crashed in native code)
                    yield _failed(job, f"worker process died: {type(exc).__name__}: {exc}")
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


class RayLineWorker:
    """A Ray actor body: loads the models once, then renders lines (see run_ray)."""

    def __init__(self, render: Callable[..., Any]) -> None:
        """Set up this worker (one BLAS thread, models loaded)."""
        self._render = render
        os.environ.setdefault("LP_NUM_THREADS", "1")  # one rasteriser thread per actor, as for local workers
        setup_worker(render)

    def run(self, job: LineJob) -> LineResult:
        """Render one job (never raises for a failed line)."""
        return render_line(self._render, job)


def _import_ray():  # noqa: ANN202 - the ray module
    try:
        import ray
    except ImportError:
        raise InputError("--executor ray needs Ray: pip install 'avatar-engine[ray]'") from None
    return ray


def run_ray(render: Callable[..., Any], jobs: list[LineJob], workers: int | None = None,
            address: str | None = None) -> Iterator[LineResult]:
    """Render on Ray: one actor per worker (1 CPU each); results come back to this process as bytes.

    Connects to `address` (a running cluster, e.g. "ray://head:10001" or "auto"), else uses the Ray already
    initialised in this process, else starts a local one with `workers` CPUs.
    """
    if not jobs:
        return
    ray = _import_ray()
    started = False
    if not ray.is_initialized():
        kwargs: dict[str, Any] = {"include_dashboard": False, "logging_level": logging.WARNING}
        if address:
            kwargs["address"] = address
        elif workers:
            kwargs["num_cpus"] = workers
        ray.init(**kwargs)
        started = True
    actors: list[Any] = []
    try:
        n = workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
        remote_cls = ray.remote(num_cpus=1)(RayLineWorker)
        actors = [remote_cls.remote(render) for _ in range(min(n, len(jobs)))]
        idle = list(actors)
        pending = deque(jobs)
        running: dict[Any, tuple[LineJob, Any]] = {}
        last_death = ""
        while pending or running:
            while idle and pending:
                actor = idle.pop()
                job = pending.popleft()
                running[actor.run.remote(job)] = (job, actor)
            if not running:  # every actor died: the rest cannot run
                for job in pending:
                    yield _failed(job, f"no Ray worker left: {last_death}")
                return
            done, _ = ray.wait(list(running), num_returns=1)
            for ref in done:
                job, actor = running.pop(ref)
                try:
                    result = ray.get(ref)
                    idle.append(actor)
                except ray.exceptions.RayActorError as exc:  # the actor (or its node) is gone: drop it
                    last_death = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
                    result = _failed(job, f"Ray worker died: {last_death}")
                except Exception as exc:  # noqa: BLE001 - a task-level Ray error: the actor is still usable
                    idle.append(actor)
                    result = _failed(job, f"Ray task failed: {type(exc).__name__}: {exc}")
                yield result
    finally:
        for actor in actors:
            try:
                ray.kill(actor)
            except Exception:  # noqa: BLE001 - already dead
                pass
        if started:
            ray.shutdown()


def execute(render: Callable[..., Any], jobs: list[LineJob], *, executor: str = "local", workers: int | None = None,
            ray_address: str | None = None) -> Iterator[LineResult]:
    """Pick the executor: local with 1 worker runs in this process, local with N spawns N processes."""
    if executor == "local":
        if ray_address:
            raise InputError("--ray-address needs --executor ray")
        return run_serial(render, jobs) if not workers or workers <= 1 else run_processes(render, jobs, workers)
    if executor == "ray":
        return run_ray(render, jobs, workers=workers, address=ray_address)
    raise InputError(f"unknown executor {executor!r}; use one of {', '.join(EXECUTORS)}")
