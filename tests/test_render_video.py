"""MP4 composition (avatar.render.video) and overlays (avatar.render.overlay)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from avatar.errors import InputError

av = pytest.importorskip("av")
pytest.importorskip("PIL")

FPS = 30


def _frames(n: int, w: int = 96, h: int = 64):
    for i in range(n):
        f = np.zeros((h, w, 3), np.uint8)
        f[..., 0] = np.linspace(0, 255, w, dtype=np.uint8)[None]
        f[..., 1] = (i * 8) % 256
        f[..., 2] = np.linspace(0, 255, h, dtype=np.uint8)[:, None]
        yield f


def _tone(seconds: float, sr: int) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    return (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)


def _decode(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as box:
        return [f.to_ndarray(format="rgb24") for f in box.decode(video=0)]


@pytest.mark.parametrize(("seconds", "sr"), [(0.71, 22050), (0.55, 16000), (0.6, 30000)])
def test_mp4_is_h264_aac_30fps_with_matching_durations(tmp_path: Path, seconds: float, sr: int) -> None:
    from avatar.render.video import probe_mp4, write_mp4

    n = 20  # 0.667 s of video: audio longer (trimmed), shorter (padded), or at an odd rate (resampled)
    out = write_mp4(tmp_path / "clip.mp4", _frames(n), n, _tone(seconds, sr), sr, fps=FPS)
    info = probe_mp4(out)
    v, a = info["video"], info["audio"]
    assert v["codec"] == "h264" and v["pix_fmt"] == "yuv420p" and v["fps"] == pytest.approx(30.0)
    assert a["codec"] == "aac" and a["channels"] == 1
    assert v["frames"] == n and (v["width"], v["height"]) == (96, 64)
    assert v["duration"] == pytest.approx(n / FPS, abs=1e-3)
    assert abs(v["duration"] - a["duration"]) <= 1 / FPS + 0.05
    assert [p.name for p in tmp_path.iterdir()] == ["clip.mp4"]  # no temporary file left behind


def test_failure_mid_write_leaves_no_file(tmp_path: Path) -> None:
    from avatar.render.video import write_mp4

    def broken():
        yield from _frames(5)
        raise RuntimeError("renderer crashed")

    with pytest.raises(RuntimeError, match="crashed"):
        write_mp4(tmp_path / "x.mp4", broken(), 20, _tone(0.7, 22050), 22050)
    assert list(tmp_path.iterdir()) == []


def test_one_encoder_thread_gives_the_same_frames(tmp_path: Path) -> None:
    from avatar.render.video import write_mp4

    n = 12  # x264 is deterministic for a given thread count; the decoded frames agree to within its rounding
    one = _decode(write_mp4(tmp_path / "one.mp4", _frames(n), n, _tone(0.4, 22050), 22050, encoder_threads=1))
    auto = _decode(write_mp4(tmp_path / "auto.mp4", _frames(n), n, _tone(0.4, 22050), 22050))
    assert len(one) == len(auto) == n
    assert max(np.abs(a.astype(int) - b.astype(int)).mean() for a, b in zip(one, auto)) < 1.0


def test_short_frame_source_is_held_and_odd_sizes_are_padded(tmp_path: Path) -> None:
    from avatar.render.video import probe_mp4, write_mp4

    out = write_mp4(tmp_path / "odd.mp4", _frames(4, 95, 63), 10, _tone(0.33, 22050), 22050)
    v = probe_mp4(out)["video"]
    assert v["frames"] == 10 and (v["width"], v["height"]) == (96, 64)


def test_bad_arguments_are_input_errors(tmp_path: Path) -> None:
    from avatar.render.video import write_mp4

    audio = _tone(0.3, 22050)
    cases = [
        dict(out=tmp_path / "a.avi"),
        dict(audio=np.full(100, np.nan, np.float32)),
        dict(audio=np.zeros((2, 100), np.float32)),
        dict(sample_rate=0),
        dict(n_frames=0),
        dict(vad=np.zeros((3, 3))),
        dict(subtitles=[(1.0, 0.5, "backwards")]),
        dict(frames=iter([np.zeros((8, 8), np.uint8)])),
        dict(frames=iter([])),
        dict(encoder_threads=-1),
        dict(encoder_threads=True),
    ]
    for bad in cases:
        args = dict(out=tmp_path / "a.mp4", frames=_frames(9), n_frames=9, audio=audio, sample_rate=22050)
        args.update(bad)
        with pytest.raises(InputError):
            write_mp4(**args)
    assert list(tmp_path.iterdir()) == []


def test_subtitles_and_vad_indicator_draw_where_expected() -> None:
    from avatar.render.overlay import draw_subtitle, draw_vad, subtitle_at

    base = np.full((256, 256, 3), 128, np.uint8)
    sub = base.copy()
    draw_subtitle(sub, "Hello there, how are you today? " * 4)
    changed = np.abs(sub.astype(int) - base).max(axis=2) > 20
    ys, xs = np.nonzero(changed)
    assert changed.sum() > 500 and ys.min() > 128  # a box in the lower half, at most three lines
    assert abs(xs.mean() - 128) < 20  # centred
    happy, sad = base.copy(), base.copy()
    draw_vad(happy, np.array([0.8, 0.5, 0.3]))
    draw_vad(sad, np.array([-0.6, -0.3, -0.3]))
    for img in (happy, sad):
        ys, xs = np.nonzero(np.abs(img.astype(int) - base).max(axis=2) > 20)
        assert xs.min() > 128 and ys.max() < 128  # top-right corner
    assert not np.array_equal(happy, sad)  # the dot and label follow the VAD
    subs = [(0.0, 1.0, "one"), (0.8, 2.0, "two")]
    assert subtitle_at(subs, 0.5) == "one" and subtitle_at(subs, 0.9) == "two" and subtitle_at(subs, 3) == ""


def test_overlays_reach_the_video(tmp_path: Path) -> None:
    from avatar.render.video import write_mp4

    n = 6
    plain = write_mp4(tmp_path / "plain.mp4", _frames(n, 128, 128), n, _tone(0.2, 22050), 22050)
    over = write_mp4(tmp_path / "over.mp4", _frames(n, 128, 128), n, _tone(0.2, 22050), 22050,
                     subtitles=[(0.0, 0.1, "Hi!")], vad=np.tile([0.7, 0.4, 0.2], (n, 1)))
    a, b = _decode(plain), _decode(over)
    d0 = np.abs(a[0].astype(int) - b[0]).max(axis=2) > 40
    d5 = np.abs(a[5].astype(int) - b[5]).max(axis=2) > 40
    assert d0[100:, 30:98].any() and d0[:40, 80:].any()  # subtitle at the bottom, VAD disc top right
    assert not d5[100:, 30:98].any() and d5[:40, 80:].any()  # the subtitle ended at 0.1 s, the VAD stays


def test_rendered_performance_to_mp4(tmp_path: Path) -> None:
    """render_frames -> write_mp4 on the default avatar with a little motion: the pipeline's path."""
    pytest.importorskip("moderngl")
    from avatar.render.frames import render_frames
    from avatar.render.motion import frame_count
    from avatar.render.video import probe_mp4, write_mp4
    from avatar.types import FACE_CHANNELS, FaceMotion

    frames = np.zeros((8, len(FACE_CHANNELS)), np.float32)
    frames[:, FACE_CHANNELS.index("jawOpen")] = np.linspace(0, 1, 8)
    face = FaceMotion(fps=30.0, frames=frames)
    n = frame_count(face, None, 30)
    try:
        out = write_mp4(tmp_path / "say.mp4", render_frames(None, face, None, width=64, height=64), n,
                        _tone(n / 30, 22050), 22050)
    except Exception as exc:
        if "EGL" in str(exc):
            pytest.skip(f"no headless OpenGL here: {exc}")
        raise
    info = probe_mp4(out)
    assert info["video"]["frames"] == n == 8
    imgs = _decode(out)
    assert np.abs(imgs[0].astype(int) - imgs[-1]).max() > 30  # the mouth opened
