"""The app's upload guard (avatar.app_uploads): only the types the app reads, a bounded cache, over real Gradio."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

pytest.importorskip("gradio")


@pytest.fixture()
def served(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A small Gradio app (the app's upload route and components) behind the guard: (url, cache folder)."""
    import gradio as gr
    from starlette.middleware import Middleware

    from avatar.app_uploads import UploadGuard

    cache = tmp_path / "cache"
    cache.mkdir()
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(cache))
    with gr.Blocks(analytics_enabled=False) as demo:
        gr.File(file_types=[".glb", ".vrm"], type="filepath")
    guard = Middleware(UploadGuard, folder=cache, max_bytes=3 * 2**20, max_age_s=3600)
    demo.launch(prevent_thread_lock=True, quiet=True, app_kwargs={"middleware": [guard]}, max_file_size="5mb",
                ssr_mode=False)
    try:
        yield demo.local_url, cache
    finally:
        demo.close()


def _files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file()]


def _upload(url: str, name: str, size: int):
    import httpx

    return httpx.post(f"{url}gradio_api/upload", files={"files": (name, b"\0" * size)}, timeout=60)


def test_uploads_of_other_types_are_refused_and_not_kept(served: tuple[str, Path]) -> None:
    url, cache = served
    before = set(_files(cache))
    for name in ("setup.exe", "notes", "avatar.glb.sh"):
        r = _upload(url, name, 1000)
        assert r.status_code == 415 and "takes only .aac" in r.text, (name, r.status_code, r.text)
    assert set(_files(cache)) == before  # nothing stored
    r = _upload(url, "take.WAV", 1000)
    assert r.status_code == 200
    kept = Path(r.json()[0])
    assert kept.is_file() and kept.resolve().is_relative_to(cache.resolve())


def test_the_cache_is_capped_and_expired_files_make_room(served: tuple[str, Path]) -> None:
    url, cache = served
    assert _upload(url, "a.glb", 2 * 2**20).status_code == 200
    r = _upload(url, "b.glb", 2 * 2**20)  # 4 MB would be over the 3 MB cap
    assert r.status_code == 507 and "upload space is full" in r.text
    assert sum(p.stat().st_size for p in _files(cache)) <= 3 * 2**20
    old = time.time() - 7200
    for p in _files(cache):
        os.utime(p, (old, old))  # past the cache's keep time: pruned to make room
    assert _upload(url, "c.vrm", 2 * 2**20).status_code == 200
