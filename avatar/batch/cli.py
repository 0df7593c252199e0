"""`avatar batch SCRIPT -o OUTDIR`: render a dialogue script, one folder per line, plus a manifest."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Optional

import typer

log = logging.getLogger(__name__)


def register(app: typer.Typer) -> None:
    """Add the `batch` command to the avatar CLI."""

    @app.command("batch")
    def batch_cmd(
        script: Path = typer.Argument(..., help="Script: YAML/JSON (characters + lines), JSONL or CSV of lines."),
        output: Optional[Path] = typer.Option(None, "--output", "-o", help="Output folder (one sub-folder per line)."),
        workers: Optional[int] = typer.Option(
            None, "--workers", "-w", min=1, max=256,
            help="Parallel workers: local processes (default 1, in this process) or Ray actors (default: all CPUs)."),
        executor: str = typer.Option("local", "--executor", help="local (processes on this machine) or ray."),
        ray_address: Optional[str] = typer.Option(
            None, "--ray-address", help="Ray cluster to join (e.g. auto, or ray://HEAD:10001); default: a local Ray."),
        resume: bool = typer.Option(False, "--resume", help="Skip lines whose outputs are complete for the same input."),
        seed: int = typer.Option(0, "--seed", help="Global seed, 0-2147483647 (each line derives its own)."),
        scene: bool = typer.Option(False, "--scene", help="Also write OUTDIR/scene.mp4: the clips in script order."),
        characters: Optional[Path] = typer.Option(
            None, "--characters", help="YAML/JSON file with `characters:` (for JSONL and CSV scripts)."),
        width: int = typer.Option(512, "--width", help="Clip width in pixels (even)."),
        height: int = typer.Option(512, "--height", help="Clip height in pixels (even)."),
        framing: str = typer.Option("portrait", "--framing", help="portrait (head and shoulders) or full (whole body)."),
        subtitles: bool = typer.Option(False, "--subtitles", help="Burn the line's text into the clip."),
        vad_indicator: bool = typer.Option(False, "--vad-indicator", help="Draw the emotion (VAD) bars in the clip."),
        progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar on stderr."),
        face_model: Optional[Path] = typer.Option(None, "--face-model", help="Face model folder (default weights/face)."),
        gesture_model: Optional[Path] = typer.Option(
            None, "--gesture-model", help="Gesture model folder (default weights/gesture)."),
        trust_script: bool = typer.Option(
            False, "--trust-script", help="Let the script name avatar and audio files outside its own folder "
            "(refused by default, so an untrusted script cannot copy other files into OUTDIR)."),
    ) -> None:
        """Render every line of a dialogue SCRIPT into OUTDIR/<id>/ (speech, face, body, clip) + manifest.jsonl.

        Exit code 0 when every line rendered, 1 when some failed (see the manifest), 2 when the script itself
        is malformed.
        """
        from avatar.cli import EXIT_FAILED, guarded

        code = 0

        def run() -> None:
            nonlocal code
            from avatar.errors import InputError
            from avatar.types import check_seed

            from .plan import VideoSettings
            from .render import PipelineRenderer
            from .runner import run_batch
            from .script import load_script

            check_seed(seed)
            if output is None:
                raise InputError("give the output folder with -o OUTDIR")
            if executor not in ("local", "ray"):
                raise InputError(f"--executor must be local or ray, got {executor!r}")
            settings = VideoSettings(width=width, height=height, framing=framing, subtitles=subtitles,
                                      vad_indicator=vad_indicator)
            from avatar.io import check_output_dir

            check_output_dir(output, "-o")  # an unwritable OUTDIR: before the script and the models are read
            parsed = load_script(script, characters=characters, trusted=trust_script)  # malformed: stops here
            result = run_batch(parsed, output, render=PipelineRenderer(
                                   face_model=str(face_model.resolve()) if face_model else None,
                                   gesture_model=str(gesture_model.resolve()) if gesture_model else None),
                               seed=seed, settings=settings,
                               workers=workers, executor=executor, ray_address=ray_address, resume=resume,
                               scene=scene, progress=progress)
            typer.echo(json.dumps(result.summary(), ensure_ascii=False))
            if result.failed:
                typer.echo(f"error: {result.failed} of {len(result.records)} line(s) failed; "
                           f"see {result.manifest}", err=True)
                code = EXIT_FAILED

        guarded(run)
        if code:
            raise typer.Exit(code)
