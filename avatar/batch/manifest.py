"""Per-line records, done markers and the manifest: what makes a batch safe to kill and resume.

OUTDIR/<id>/done.json is written last, after every output of the line is in place (each written
atomically). It holds the hash of the line's resolved input, the size and SHA-256 of each output, and the
line's manifest record. A line is complete only when its marker exists, its hash matches the new input and
every file still matches; anything else re-renders. OUTDIR/manifest.jsonl is always rebuilt whole from
these records and replaced atomically, never appended to, so a killed run leaves either the old manifest
or a complete new one.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Any

from avatar.io import atomic_write_bytes, atomic_write_text, safe_join

from .plan import BATCH_FORMAT, LineJob, file_sha256
from .script import LineFailure
from .worker import LineResult

log = logging.getLogger(__name__)

DONE = "done.json"
MANIFEST = "manifest.jsonl"

OK, FAILED, PENDING = "ok", "failed", "pending"


def line_dir(outdir: Path, line_id: str) -> Path:
    """The line's output folder (the id was checked by safe_name; safe_join checks again)."""
    return safe_join(outdir, line_id)


def _base(job: LineJob) -> dict[str, Any]:
    return {
        "index": job.index, "id": job.id, "character": job.character, "text": job.text,
        "vad": job.vad_record(),
        "stimulus": dict(zip(("valence", "arousal", "dominance"), job.stimulus)),
        **({"reading": job.reading} if job.reading is not None else {}),
        "seed": job.seed, "input_hash": job.input_hash,
    }


def failure_record(f: LineFailure) -> dict[str, Any]:
    """The record of a line refused before rendering."""
    return {"index": f.index, "id": f.id, "character": f.character, "text": f.text, "status": FAILED,
            "stage": f.stage, "error": f.error}


def pending_record(job: LineJob) -> dict[str, Any]:
    """The record of a line not rendered yet (seen only in the manifest of an interrupted run)."""
    return {**_base(job), "status": PENDING}


def commit_line(outdir: Path, job: LineJob, result: LineResult) -> dict[str, Any]:
    """Write a rendered line's files and then its done marker; returns its manifest record."""
    folder = line_dir(outdir, job.id)
    marker = folder / DONE
    old = _read_marker(marker)
    # The marker goes first: from here until the new one is written the line counts as not done.
    marker.unlink(missing_ok=True)
    if not result.ok:
        return {**_base(job), "status": FAILED, "stage": "render", "error": result.error,
                "timings": result.timings, "worker": result.worker}
    files: dict[str, dict[str, Any]] = {}
    for name in sorted(result.files):
        if name == DONE:
            continue  # the marker's name is ours
        data = result.files[name]
        atomic_write_bytes(folder / name, data)
        files[name] = {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    # Files an earlier render of this line made and this one did not would be stale: remove them.
    for name in set((old or {}).get("files", {})) - set(files):
        if isinstance(name, str) and "/" not in name and name not in ("", ".", ".."):
            (folder / name).unlink(missing_ok=True)
    record = {**_base(job), "status": OK, "error": None,
              "files": {name: f"{job.id}/{name}" for name in files},
              **{k: v for k, v in result.info.items() if k not in ("status", "files", "error")},
              "timings": result.timings, "worker": result.worker}
    marker_doc = {"format": BATCH_FORMAT, "input_hash": job.input_hash, "files": files, "record": record}
    atomic_write_text(marker, json.dumps(marker_doc, ensure_ascii=False, indent=1))
    return record


def _read_marker(marker: Path) -> dict[str, Any] | None:
    try:
        doc = json.loads(marker.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) else None


def completed_record(outdir: Path, job: LineJob, verify_hashes: bool = True) -> dict[str, Any] | None:
    """The stored record when the line is complete for this exact input, else None (it must render)."""
    folder = line_dir(outdir, job.id)
    doc = _read_marker(folder / DONE)
    if doc is None or doc.get("format") != BATCH_FORMAT or doc.get("input_hash") != job.input_hash:
        return None
    files = doc.get("files")
    record = doc.get("record")
    if not isinstance(files, dict) or not files or not isinstance(record, dict):
        return None
    for name, meta in files.items():
        path = folder / name
        try:
            if not path.is_file() or path.stat().st_size != meta["bytes"]:
                return None
            if verify_hashes and file_sha256(path) != meta["sha256"]:
                return None
        except (OSError, KeyError, TypeError):
            return None
    return record


def manifest_bytes(records: list[dict[str, Any]]) -> bytes:
    """The manifest: one JSON record per line, in script order."""
    lines = [json.dumps(r, ensure_ascii=False) for r in sorted(records, key=lambda r: r["index"])]
    return ("\n".join(lines) + "\n").encode("utf-8") if lines else b""


def write_manifest(outdir: Path, records: list[dict[str, Any]]) -> Path:
    """Replace OUTDIR/manifest.jsonl atomically; an identical manifest is left untouched (same mtime)."""
    path = outdir / MANIFEST
    data = manifest_bytes(records)
    try:
        if path.is_file() and path.stat().st_size == len(data) and path.read_bytes() == data:
            return path
    except OSError:
        pass
    return atomic_write_bytes(path, data)


def read_manifest(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Read a manifest back (one dict per line)."""
    return [json.loads(ln) for ln in Path(path).read_text(encoding="utf-8").splitlines() if ln.strip()]
