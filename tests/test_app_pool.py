"""The app's warm render pool (spawned workers, kept between requests): used when free, skipped when busy,
and a failed pool leaves the video to the app's own process and is replaced on the next request."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import pytest

pytest.importorskip("moderngl")
pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux") or (os.cpu_count() or 1) < 2,
                                reason="render workers need Linux and two cores")


def test_app_pool_is_reused_skipped_when_busy_and_replaced_after_a_failure(tmp_path: Path) -> None:
    from avatar.app_ui import AppConfig, AvatarApp
    from avatar.pipeline import perform
    from avatar.render.video import probe_mp4

    app = AvatarApp(AppConfig(root=tmp_path, width=96, height=96))
    try:
        pool = app.render_pool(None)
        assert pool is not None and pool.workers >= 2
        assert app.render_pool(None) is None, "busy with a video: the next request renders alone"
        app.release_pool()
        assert app.render_pool(None) is pool, "the same warm pool serves the next video"
        app.release_pool()

        perf = perform("Hello there.", seed=0)
        first = app._render(perf, tmp_path / "a.mp4", None, None)
        info = probe_mp4(first)
        assert info["video"]["codec"] == "h264" and info["video"]["width"] == 96
        assert app._pool is pool

        os.kill(pool._procs[0].pid, signal.SIGKILL)  # worker 0 dies (the others go with it)
        pool._procs[0].join(5)
        second = app._render(perf, tmp_path / "b.mp4", None, None)
        assert probe_mp4(second)["video"]["frames"] == info["video"]["frames"]
        assert app._pool is None, "the failed pool was stopped"
        assert app.render_pool(None) is not None, "and a new one starts for the next video"
        app.release_pool()
    finally:
        app.close_pool()
    assert app._pool is None
