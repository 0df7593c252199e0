"""Run a batch: validate, plan (emotions in script order), render in parallel, commit, write the manifest.

`run_batch(script, outdir, render=...)` takes the per-line render step as a callable, so the same runner
drives the real pipeline (avatar.batch.render.PipelineRenderer) and the fast fakes of the tests.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

from avatar.errors import InputError, OutputError
from avatar.io import check_output_dir, check_output_path, describe_os_error
from avatar.types import VAD, SentenceEmotion

from .executors import EXECUTORS, execute
from .manifest import (FAILED, OK, commit_line, completed_record, failure_record, line_dir, pending_record,
                       write_manifest)
from .plan import VideoSettings, plan_jobs
from .script import Script, check_lines, load_script

log = logging.getLogger(__name__)

#: Rewrite the manifest at most this often while lines complete (and always at the end).
MANIFEST_EVERY_S = 2.0


@dataclass
class BatchResult:
    """What a batch did: every line's record (script order), counts, and where the outputs are."""

    records: list[dict[str, Any]]
    rendered: int
    skipped: int
    failed: int
    manifest: Path
    scene: Path | None
    seconds: float

    @property
    def exit_code(self) -> int:
        """0 when every line is done, 1 when some failed."""
        return 1 if self.failed else 0

    def summary(self) -> dict[str, Any]:
        """A JSON-ready summary (what the CLI prints)."""
        ok = sum(1 for r in self.records if r["status"] == OK)
        return {"lines": len(self.records), "ok": ok, "rendered": self.rendered, "skipped": self.skipped,
                "failed": self.failed, "manifest": str(self.manifest),
                "scene": str(self.scene) if self.scene else None, "seconds": round(self.seconds, 2),
                "lines_per_minute": round(60.0 * self.rendered / self.seconds, 2) if self.seconds > 0 else None}


@contextlib.contextmanager
def _outdir_lock(outdir: Path) -> Iterator[None]:
    """Refuse a second batch writing into the same OUTDIR at the same time (POSIX advisory lock)."""
    try:
        import fcntl
    except ImportError:  # Windows: no advisory lock; running two batches into one folder is on the user
        yield
        return
    with open(outdir / ".batch.lock", "a") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise InputError(f"another batch is writing into {outdir}; wait for it or use another -o") from None
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _default_analyze(text: str) -> SentenceEmotion:
    """The line's reading by the shipped model (its VAD is the stimulus; label, categories, intensity go into the
    manifest)."""
    from avatar.emotion import default_analyzer  # loaded only when a line has no emotion override

    return default_analyzer().analyze_lines([text])[0]


def run_batch(script: Script | str | os.PathLike[str], outdir: str | os.PathLike[str], *,
              render: Callable[..., Any], seed: int = 0, settings: VideoSettings | None = None,
              workers: int | None = None, executor: str = "local", ray_address: str | None = None, resume: bool = False,
              scene: bool = False, analyze: Callable[[str], VAD | SentenceEmotion] | None = None,
              progress: bool = True) -> BatchResult:
    """Render every line of `script` into OUTDIR/<id>/ and write OUTDIR/manifest.jsonl (see docs/batch.md).

    `workers`: local processes (None = 1, in this process) or Ray actors (None = the cluster's CPUs).
    """
    t0 = time.perf_counter()
    if not isinstance(script, Script):
        script = load_script(script)
    if workers is not None and workers < 1:
        raise InputError(f"--workers must be at least 1, got {workers}")
    if executor not in EXECUTORS:
        raise InputError(f"unknown executor {executor!r}; use one of {', '.join(EXECUTORS)}")
    if ray_address and executor != "ray":
        raise InputError("--ray-address needs --executor ray")
    settings = settings or VideoSettings()
    out = check_output_dir(outdir, "-o")  # a file there, a folder we cannot write into: refused before any work
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create the output folder {out}: {describe_os_error(exc)}") from exc
    if scene:  # a folder or FIFO where the scene goes fails now, not after every line has rendered
        from .scene import SCENE, SCENE_MARKER

        for name in (SCENE, SCENE_MARKER):
            check_output_path(out / name, "--scene", force=True)  # the batch's own files: replaced as needed
    with _outdir_lock(out):
        good, failures = check_lines(script)
        fingerprint = getattr(render, "fingerprint", None)
        models = fingerprint() if callable(fingerprint) else {}
        jobs, late = plan_jobs(script, good, seed=seed, settings=settings, models=models,
                               analyze=analyze or _default_analyze)
        records: dict[int, dict[str, Any]] = {f.index: failure_record(f) for f in [*failures, *late]}
        todo = []
        for job in jobs:
            try:
                line_dir(out, job.id)  # a symlink out of OUTDIR where the line's folder should be fails that line
            except InputError as exc:
                records[job.index] = {**pending_record(job), "status": FAILED, "stage": "write",
                                      "error": f"cannot write the outputs: {exc}"}
                continue
            done = completed_record(out, job) if resume else None
            if done is not None:
                records[job.index] = done
            else:
                records[job.index] = pending_record(job)
                todo.append(job)
        skipped = sum(1 for job in jobs if records[job.index]["status"] == OK)
        for rec in records.values():
            if rec["status"] == FAILED:
                # The message names the line by number ('line 3: ...' or 'file line 4 ...'); the log adds its id.
                log.warning("id %s: %s", rec["id"] if rec.get("id") is not None else "?", rec["error"])
        manifest = write_manifest(out, list(records.values()))
        rendered = 0
        by_index = {job.index: job for job in todo}
        last_write = time.monotonic()
        try:
            from tqdm import tqdm

            # A bar only on a terminal: in a log file or a pipe its redraws are noise.
            with tqdm(total=len(todo), unit="line", desc="batch", dynamic_ncols=True,
                      disable=not progress or not todo or not sys.stderr.isatty()) as bar:
                for result in execute(render, todo, executor=executor, workers=workers, ray_address=ray_address):
                    job = by_index[result.index]
                    try:
                        rec = commit_line(out, job, result)
                    except (OSError, InputError) as exc:  # disk full, a file or an outside link as the folder
                        rec = {**pending_record(job), "status": FAILED, "stage": "write",
                               "error": f"cannot write the outputs: {exc}"}
                    records[result.index] = rec
                    rendered += rec["status"] == OK
                    if rec["status"] == FAILED:
                        log.warning("id %s failed: %s", rec["id"], rec["error"])
                        bar.set_postfix_str(f"failed: {rec['id']}")
                    bar.update(1)
                    if time.monotonic() - last_write >= MANIFEST_EVERY_S:
                        write_manifest(out, list(records.values()))
                        last_write = time.monotonic()
        finally:
            # Also on Ctrl-C: the manifest then says which lines are done and which are still pending.
            write_manifest(out, list(records.values()))
        ordered = [records[i] for i in sorted(records)]
        scene_path = None
        if scene:
            from .scene import build_scene

            scene_path = build_scene(out, ordered)
    failed = sum(1 for r in ordered if r["status"] == FAILED)
    return BatchResult(records=ordered, rendered=rendered, skipped=skipped, failed=failed, manifest=manifest,
                       scene=scene_path, seconds=time.perf_counter() - t0)
