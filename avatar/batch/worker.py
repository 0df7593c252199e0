"""What runs in a worker: render one line into a private temp folder and hand back its files as bytes.

The render step is a callable `render(job, workdir) -> Rendered | {file name: path}` (avatar.batch.render.
PipelineRenderer is the real one; tests inject fast ones). Workers never write into OUTDIR: the driver does
(avatar.batch.runner), so one process owns the output folder and its done markers whatever the executor,
and a Ray worker on another machine needs no shared storage.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import socket
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Protocol, Union

from avatar.errors import AvatarError
from avatar.io import safe_name

from .plan import LineJob

log = logging.getLogger(__name__)

#: Largest total output of one line that a worker sends back (a clip of a few minutes at 1080p fits).
MAX_LINE_BYTES = 1024 * 2**20
#: A line renders in TMPDIR/avatar-batch-<pid>-<id>-<random>/; the pid lets a later worker remove what a killed
#: one left there.
WORKDIR_PREFIX = "avatar-batch-"
_WORKDIR = re.compile(re.escape(WORKDIR_PREFIX) + r"(\d+)-")
_current_workdir: str | None = None  # the folder this process is rendering in (removed by exit_now)


def remove_stale_workdirs(root: str | None = None) -> int:
    """Remove line folders that killed workers left in the temp folder (their process is gone); returns how many."""
    from avatar.io import pid_alive

    root = root or tempfile.gettempdir()
    removed = 0
    try:
        entries = list(os.scandir(root))
    except OSError:
        return 0
    for entry in entries:
        m = _WORKDIR.match(entry.name)
        try:
            if m is None or not entry.is_dir(follow_symlinks=False) or pid_alive(int(m.group(1))):
                continue
        except OSError:
            continue
        shutil.rmtree(entry.path, ignore_errors=True)
        removed += 1
    if removed:
        log.info("removed %d line folder(s) that killed batch workers left in %s", removed, root)
    return removed


def exit_now(code: int = 1) -> None:
    """End this worker at once (the batch process is gone), removing the line folder it was rendering in."""
    if _current_workdir is not None:
        shutil.rmtree(_current_workdir, ignore_errors=True)
    os._exit(code)


@dataclass
class Rendered:
    """What a render callable made: output files by name, stage timings (s) and extra facts for the manifest."""

    files: dict[str, Path]
    timings: dict[str, float] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)


class RenderFn(Protocol):
    """A per-line render step; may also have `setup()` (once per worker) and `fingerprint()` (model versions)."""

    def __call__(self, job: LineJob, workdir: Path) -> Union[Rendered, dict[str, Path]]: ...


@dataclass
class LineResult:
    """One line's outcome as the driver receives it: files (bytes) on success, an error message otherwise."""

    index: int
    id: str
    ok: bool
    files: dict[str, bytes] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    worker: str = ""


def setup_worker(render: Callable[..., Any]) -> None:
    """Once per worker process: one BLAS / torch thread (workers are the parallelism), then load models."""
    os.environ["OMP_NUM_THREADS"] = "1"  # read by BLAS libraries and torch that load later in this process
    os.environ["OPENBLAS_NUM_THREADS"] = "1"
    os.environ["MKL_NUM_THREADS"] = "1"
    # The neural voice's session, its finishing pool and WORLD size themselves from this (default 2 each).
    os.environ.setdefault("AVATAR_TTS_THREADS", "1")
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)  # the ones already loaded (NumPy's BLAS runs the models)
    torch = sys.modules.get("torch")  # already loaded (e.g. by a user's code): set it directly
    if torch is not None:
        torch.set_num_threads(1)
    remove_stale_workdirs()  # on each machine that renders: what workers killed earlier left behind
    setup = getattr(render, "setup", None)
    if callable(setup):
        setup()


def render_line(render: Callable[..., Any], job: LineJob) -> LineResult:
    """Render one job; never raises for a failed line (the error is in the result)."""
    global _current_workdir
    who = f"{socket.gethostname()}:{os.getpid()}"
    t0 = time.perf_counter()
    try:
        with tempfile.TemporaryDirectory(prefix=f"{WORKDIR_PREFIX}{os.getpid()}-{job.id}-") as tmp:
            _current_workdir = tmp
            out = render(job, Path(tmp))
            rendered = out if isinstance(out, Rendered) else Rendered(files=dict(out))
            files: dict[str, bytes] = {}
            total = 0
            for name, path in rendered.files.items():
                safe_name(name)  # file names come from the render step; keep them plain
                data = Path(path).read_bytes()
                total += len(data)
                if total > MAX_LINE_BYTES:
                    raise AvatarError(f"the outputs are larger than {MAX_LINE_BYTES // 2**20} MiB")
                files[name] = data
        timings = {k: round(float(v), 4) for k, v in rendered.timings.items()}
        timings["total"] = round(time.perf_counter() - t0, 4)
        return LineResult(index=job.index, id=job.id, ok=True, files=files, timings=timings,
                          info=dict(rendered.info), worker=who)
    except AvatarError as exc:  # bad input or a model problem: a clear message, no traceback needed
        msg = f"{type(exc).__name__}: {exc}"
    except Exception as exc:  # noqa: BLE001 - a bug in a stage fails this line only; the log keeps the traceback
        log.error("line %s failed:\n%s", job.id, traceback.format_exc())
        msg = f"{type(exc).__name__}: {exc}"
    finally:
        _current_workdir = None
    return LineResult(index=job.index, id=job.id, ok=False, error=msg,
                      timings={"total": round(time.perf_counter() - t0, 4)}, worker=who)
