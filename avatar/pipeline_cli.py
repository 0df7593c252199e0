"""`avatar say`: text (or a recording) in, an MP4 of the avatar saying it out (and, with --keep, the animation data)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, List, Optional

import typer


if TYPE_CHECKING:
    from avatar.render.pool import RenderPool

def register(app: typer.Typer) -> None:
    """Add the `say` command to the avatar CLI."""

    @app.command("say")
    def say_cmd(
        text: Optional[List[str]] = typer.Argument(None, help="What to say (several words are joined)."),
        output: Path = typer.Option(..., "--output", "-o", help="Output video (.mp4, H.264 + AAC, 30 fps)."),
        input: Optional[Path] = typer.Option(None, "--input", "-i", help="Read the text from a file ('-': stdin)."),
        audio: Optional[Path] = typer.Option(None, "--audio", help="Perform this recording (WAV, FLAC, OGG, MP3, ...) "
                                             "instead of synthesising speech; TEXT, optional then, is its words "
                                             "(emotion per sentence, subtitles)."),
        avatar: Optional[Path] = typer.Option(
            None, "--avatar", help="A .glb/.vrm/.gltf avatar, or a shipped one: default-female (the default), "
                                   "default-male, toon."),
        valence: Optional[float] = typer.Option(None, "--valence", help="Valence in [-1, 1] (default: read from the text)."),
        arousal: Optional[float] = typer.Option(None, "--arousal", help="Arousal in [-1, 1] (default: read from the text)."),
        dominance: Optional[float] = typer.Option(None, "--dominance", help="Dominance in [-1, 1]."),
        voice: Optional[str] = typer.Option(None, "--voice", help="joe (neural, default) or an eSpeak NG voice, e.g. en-us or en-gb+f3 "
                                            "(avatar tts --list-voices)."),
        seed: int = typer.Option(0, "--seed", help="Seed, 0-2147483647: same text, settings and seed give the same video."),
        keep: Optional[Path] = typer.Option(None, "--keep", help="Also write speech.wav, timeline.json, face.json, "
                                            "face.csv, body.bvh, animation.glb and animation.vrma into this folder."),
        size: int = typer.Option(512, "--size", help="Video height and width in pixels (even, 64-2160)."),
        framing: str = typer.Option("portrait", "--framing", help="portrait (head and shoulders) or full (whole body)."),
        subtitles: bool = typer.Option(False, "--subtitles", help="Burn the sentence being spoken into the video."),
        vad_indicator: bool = typer.Option(False, "--vad-indicator", help="Draw a small valence/arousal indicator."),
        antialias: str = typer.Option("fxaa", "--antialias", help="fxaa (default), msaa (4x, smoother, ~1.5x the "
                                      "render time) or none."),
        render_workers: Optional[int] = typer.Option(None, "--render-workers", min=1, max=16,
                                                     help="Processes that render the frames (default: one per core, "
                                                     "2-4, on Linux; 1 renders in this process)."),
        force: bool = typer.Option(False, "--force", help="Replace read-only output files (a folder, device or "
                                   "FIFO is never replaced)."),
    ) -> None:
        """Make a video of the avatar saying TEXT (or performing a recording): emotion, speech, face, body, render, MP4."""
        from avatar.cli import guarded, read_text_input, vad_options

        def run() -> None:
            from avatar.errors import InputError
            from avatar.types import check_seed

            check_seed(seed)
            if text and input:
                raise InputError("give the text as arguments or with --input, not both")
            if not text and input is None and audio is None:
                raise InputError("give the text as arguments or with --input (or a recording with --audio)")
            line: str | None = None
            if input is not None:
                line = read_text_input(input)
            elif text:
                line = " ".join(text)
            if line is not None and (audio is None or line.strip()):  # a recording's words may be left blank
                from avatar.tts.base import check_tts_text

                check_tts_text(line)  # bad text (invalid UTF-8, empty, too long) fails before any slow work
            from avatar.pipeline import check_outputs

            # Every output before any work: a typo'd folder or a file we must not replace costs nothing.
            check_outputs(output, keep, force=force, out_flag="-o", keep_flag="--keep")
            if audio is not None and voice is not None:
                raise InputError("--voice chooses our synthetic voice; it does not apply to --audio")
            vad = vad_options(valence, arousal, dominance)
            speech = None
            if audio is not None:
                from avatar.pipeline import recording

                speech = recording(audio)  # a missing or broken file fails before the render workers start
            pool = _start_render_pool(avatar, size, framing, antialias, render_workers)
            try:
                from avatar.pipeline import say

                with _Progress() as progress:
                    result = say(line, output, keep=keep, avatar=avatar, vad=vad, voice=voice, seed=seed,
                                 width=size, height=size, framing=framing, subtitles=subtitles,
                                 vad_indicator=vad_indicator, antialias=antialias, progress=progress,
                                 render_workers=render_workers, pool=pool, speech=speech, force=force)
            finally:
                if pool is not None:
                    pool.close()
            perf = result.performance
            typer.echo(json.dumps({
                "video": str(result.video), "duration": round(perf.duration, 3),
                "sentences": [s.to_record() for s in perf.sentences],
                "files": {k: str(v) for k, v in result.files.items()},
                "timings": {k: round(v, 3) for k, v in result.timings.items()},
            }, ensure_ascii=False))

        guarded(run)


def _start_render_pool(avatar: Optional[Path], size: int, framing: str, antialias: str,
                       workers: Optional[int]) -> RenderPool | None:
    """Fork the render workers before the slow imports (speech, emotion), so that they set up their renderers on
    the core those imports leave idle; None when they would not be used (1 worker, or forking is not safe)."""
    from avatar.render.pool import RenderPool, default_workers

    workers = workers or default_workers()
    if workers == 1 or default_workers() == 1:  # asked for one, or forking is not safe here
        return None
    from avatar.pipeline import video_settings

    # Bad settings fail here, with the message `say` would give, and so does an avatar file that is missing or
    # not glTF; one that is broken deeper fails when the workers read it, at the start of the next stage.
    settings = video_settings(size, size, framing, antialias)
    return RenderPool(avatar, settings=settings, workers=workers)


class _Progress:
    """A rich progress bar on stderr, one task per pipeline stage (quiet when stderr is not a terminal)."""

    def __init__(self) -> None:
        self._bar = None
        self._tasks: dict[str, int] = {}
        if not sys.stderr.isatty():  # nothing to show: rich is not even imported (0.05 s of a new process)
            return
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        self._bar = Progress(TextColumn("{task.description:>8}"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
                             TimeElapsedColumn(), console=Console(stderr=True), transient=False, auto_refresh=False)
        # No auto-refresh thread: `say` forks its render workers only from a single-threaded process
        # (avatar.render.pool.fork_available), and every stage reports often enough to redraw the bar.

    def __enter__(self) -> "_Progress":
        if self._bar is not None:
            self._bar.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.__exit__(*exc)

    def __call__(self, stage: str, fraction: float) -> None:
        if self._bar is None:
            return
        if stage not in self._tasks:
            self._tasks[stage] = self._bar.add_task(stage, total=1.0)
        self._bar.update(self._tasks[stage], completed=min(max(fraction, 0.0), 1.0), refresh=True)
