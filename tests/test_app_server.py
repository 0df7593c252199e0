"""The demo served for real: a headless Chromium drives the page, gradio_client calls the /say endpoint.

The app runs in a thread of the test process on a free port and is closed afterwards. The browser is Debian's
chromium (/usr/bin/chromium, `apt-get install chromium`), driven by Playwright's Python API; no browser is
downloaded. Without chromium the browser test fails under CI=true and is skipped elsewhere.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
LABELS = {"neutral", "happy", "sad", "angry", "fearful", "disgusted", "surprised"}
RENDER_TIMEOUT_S = 300  # a one-second line on a busy 2-core machine (models are loaded by the fixture)
PAGE_TIMEOUT_MS = 120_000  # page loads and quick events, generous for a loaded machine


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    """The app on localhost: (url, the app's folder)."""
    from avatar.app_ui import AppConfig, launch, warm_up

    root = tmp_path_factory.mktemp("app")
    demo = launch(AppConfig(root=root), port=_free_port(), block=False)
    try:
        warm_up()  # waits for the models the launch started loading, so the tests time only their own work
        yield demo.local_url, root
    finally:
        demo.close()
        demo.avatar_app.close_pool()


def _check_mp4(path: Path) -> float:
    """Seconds of video in an MP4 with H.264 video and AAC audio of about the same length."""
    import av

    with av.open(str(path)) as box:
        v = box.streams.video[0]
        a = box.streams.audio[0]
        assert v.codec_context.name == "h264" and a.codec_context.name == "aac"
        assert (v.codec_context.width, v.codec_context.height) == (512, 512)
        frames = sum(1 for _ in box.decode(video=0))
    seconds = frames / 30.0
    assert seconds > 0.3
    return seconds


def _plain_vrm(folder: Path) -> Path:
    """The default avatar without its VRM extension, named .vrm: a glTF that only pretends to be a VRM."""
    import pygltflib

    g = pygltflib.GLTF2().load_binary(str(Path(__file__).resolve().parents[1] / "weights/avatars/default.glb"))
    g.extensions = {}
    g.extensionsUsed = [e for e in (g.extensionsUsed or []) if not e.startswith("VRM")]
    out = folder / "pretend.vrm"
    out.write_bytes(b"".join(g.save_to_bytes()))
    return out


def test_say_endpoint_through_gradio_client(server: tuple[str, Path], tmp_path: Path) -> None:
    import httpx
    from gradio_client import Client, handle_file
    from gradio_client.exceptions import AppError

    url, root = server
    # generous HTTP timeouts: on a loaded 2-core machine even fetching the result can take longer than httpx's 5 s
    client = Client(url, verbose=False, download_files=str(tmp_path),
                    httpx_kwargs={"timeout": httpx.Timeout(300.0, connect=60.0)})
    api = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    assert list(api) == ["/say"]  # the UI's helper events are private
    params = {p["parameter_name"]: p["parameter_has_default"] for p in api["/say"]["parameters"]}
    assert params.pop("text") is False and all(params.values())  # text in; every setting optional
    assert len(api["/say"]["returns"]) == 1  # video out

    video = Path(client.predict("Hello there.", emotion="happy", seed=3, api_name="/say"))
    assert video.suffix == ".mp4" and _check_mp4(video) < 5
    assert any(root.glob("runs/*/animation/animation.glb"))  # outputs stay under the app's own folder

    # A recording instead of the voice: the text may be empty then; the video lasts as long as the recording.
    from avatar.audio import save_wav
    from avatar.tts import get_backend
    from avatar.types import VAD

    take = get_backend("espeak").synthesize("Hello there, traveller.", VAD(0.3, 0.2, 0.0), "en-us+f3")
    wav = tmp_path / "take.wav"
    save_wav(wav, take.audio, take.sample_rate)
    video = Path(client.predict("", emotion="happy", recorded=handle_file(wav), api_name="/say"))
    assert abs(_check_mp4(video) - take.duration) <= 1 / 30 + 0.05
    (tmp_path / "noise.wav").write_bytes(b"RIFF not really a wave file" * 10)
    with pytest.raises(AppError, match="not readable audio"):
        client.predict("Hello.", recorded=handle_file(tmp_path / "noise.wav"), api_name="/say")

    with pytest.raises(AppError, match="type a line"):
        client.predict("   ", api_name="/say")
    with pytest.raises(AppError, match="unknown emotion label"):
        client.predict("Hello.", emotion="elated", api_name="/say")
    fake = tmp_path / "avatar.vrm"
    fake.write_bytes(b"not an avatar\n" * 20)
    with pytest.raises(AppError, match="not binary glTF"):
        client.predict("Hello.", avatar=handle_file(fake), api_name="/say")

    # The server hands out only its own files: not the checkout, not arbitrary paths.
    for path in (Path(__file__).resolve(), Path(__file__).resolve().parents[1] / "README.md", Path("/etc/hostname")):
        r = httpx.get(f"{url}gradio_api/file={path}", timeout=60)
        assert r.status_code == 403, (path, r.status_code)


def test_page_renders_a_playable_video_in_a_browser(server: tuple[str, Path], tmp_path: Path) -> None:
    if not CHROMIUM.exists():
        msg = f"{CHROMIUM} is missing: install Debian's browser with `apt-get install chromium`"
        if os.environ.get("CI") == "true":
            pytest.fail(msg)
        pytest.skip(msg)
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import sync_playwright

    url, _ = server
    with sync_playwright() as p:
        ctx = p.chromium.launch_persistent_context(str(tmp_path / "profile"), executable_path=str(CHROMIUM),
                                                   headless=True, args=CHROMIUM_ARGS,
                                                   viewport={"width": 1280, "height": 1000})
        try:
            page = ctx.new_page()
            page.set_default_timeout(PAGE_TIMEOUT_MS)
            page.goto(url)
            text = page.locator("#text textarea")
            # Refused input comes back as a message, not a traceback.
            text.fill("   ")
            page.locator("#perform").click()
            toast = page.get_by_text("type a line of text first")
            toast.wait_for()
            assert page.get_by_text("Traceback").count() == 0

            # An upload is checked at once: a plain glTF named .vrm is refused with a message and dropped.
            page.locator("#avatar-upload input[type=file]").set_input_files(str(_plain_vrm(tmp_path)))
            page.get_by_text("not a VRM").first.wait_for()
            page.wait_for_function("() => document.querySelector('#avatar-info').textContent.includes('refused')")

            text.fill("Hello there.")
            page.locator("#perform").click()
            page.wait_for_selector("#readout .emo-label")
            assert page.locator("#readout .emo-label").inner_text().strip() in LABELS
            assert page.locator("#readout svg.va-plot circle").count() >= 7  # label prototypes + the line
            try:
                page.wait_for_function(
                    "() => { const v = document.querySelector('#video video');"
                    " return !!v && !!v.src && v.readyState >= 1 && v.duration > 0; }",
                    timeout=RENDER_TIMEOUT_S * 1000)
            except PlaywrightTimeout:
                page.screenshot(path=str(tmp_path / "timeout.png"), full_page=True)
                raise AssertionError(f"no playable video after {RENDER_TIMEOUT_S} s; page says: "
                                     f"{page.locator('body').inner_text()[:600]!r}") from None
            duration = page.evaluate("document.querySelector('#video video').duration")
            assert 0.3 < duration < 5
            page.wait_for_selector("#files a[download='animation.glb']", state="attached")
            links = dict(page.eval_on_selector_all(
                "#files a[download]", "els => els.map(e => [e.getAttribute('download'), e.href])"))
            assert {"animation.zip", "speech.wav", "face.json", "face.csv", "body.bvh", "animation.glb"} <= set(links)
            glb = page.request.get(links["animation.glb"])
            assert glb.ok and glb.body()[:4] == b"glTF"  # the download link serves the animated avatar
            assert page.locator("#speech audio").count() >= 1
            shot = Path(os.environ.get("AVATAR_APP_SCREENSHOT") or tmp_path / "app.png")
            page.screenshot(path=str(shot), full_page=True)
        finally:
            ctx.close()


def test_the_upload_endpoint_keeps_only_avatars_and_recordings(server: tuple[str, Path]) -> None:
    import httpx

    url, root = server
    before = sorted(p for p in (root / "cache").rglob("*") if p.is_file())
    r = httpx.post(f"{url}gradio_api/upload", files={"files": ("tool.exe", b"MZ" + b"\0" * 4096)}, timeout=60)
    assert r.status_code == 415 and ".vrm" in r.text
    assert sorted(p for p in (root / "cache").rglob("*") if p.is_file()) == before
