"""`avatar face`: speech audio (+ optional timeline and VAD) to face motion (FaceMotion JSON or Live Link CSV)."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Optional

import typer

log = logging.getLogger(__name__)

_FORMATS = {".json": "json", ".csv": "csv"}


def register(app: typer.Typer) -> None:
    """Add the `face` command to the avatar CLI."""

    @app.command("face")
    def face_cmd(
        audio: Path = typer.Option(..., "--audio", help="Speech audio (WAV, FLAC, MP3, ...)."),
        output: Path = typer.Option(..., "--output", "-o", help="Output .json (FaceMotion) or .csv (Live Link Face)."),
        timeline: Optional[Path] = typer.Option(None, "--timeline", help="Timeline JSON of this audio (avatar tts "
                                                "--timeline): the lips then follow its phonemes exactly."),
        valence: Optional[float] = typer.Option(None, "--valence", help="Valence in [-1, 1] (default 0)."),
        arousal: Optional[float] = typer.Option(None, "--arousal", help="Arousal in [-1, 1] (default 0)."),
        dominance: Optional[float] = typer.Option(None, "--dominance", help="Dominance in [-1, 1] (default 0)."),
        seed: int = typer.Option(0, "--seed", help="Seed, 0-2147483647: the same audio, emotion and seed give the same motion."),
        guidance: float = typer.Option(2.0, "--guidance", help="Emotion strength (classifier-free guidance, 0-20)."),
        steps: int = typer.Option(10, "--steps", help="Diffusion sampling steps."),
        model: Optional[Path] = typer.Option(None, "--model", help="Trained face model folder (default: the repo's "
                                             "weights/face)."),
        fmt: Optional[str] = typer.Option(None, "--format", help="json or csv (default: from the -o suffix)."),
        force: bool = typer.Option(False, "--force", help="Replace a read-only output file."),
    ) -> None:
        """Animate a face from speech: ARKit-52 blendshapes, head pose and gaze per frame (30 fps)."""
        from avatar.cli import guarded, vad_options

        def run() -> None:
            from avatar.errors import InputError
            from avatar.types import check_seed

            check_seed(seed)
            kind = fmt.lower() if fmt else _FORMATS.get(output.suffix.lower())
            if kind not in ("json", "csv"):
                raise InputError(f"cannot tell the output format of {str(output)!r}: use a .json or .csv name or "
                                 "--format json|csv")
            from avatar.io import check_output_path

            check_output_path(output, "-o", force=force)
            vad = vad_options(valence, arousal, dominance)  # None: neutral (there is no text to read it from)
            from avatar.audio import load_audio

            samples, sr = load_audio(audio)  # bad audio fails before any model loads
            tl = None
            if timeline is not None:
                from avatar.types import Timeline

                if not timeline.is_file():
                    raise InputError(f"timeline file not found: {timeline}")
                tl = Timeline.from_json(timeline, audio_duration=samples.size / sr)  # bounded by the audio's length
            from avatar.face.generate import generate_face, load_face_model

            net = load_face_model(model)
            face = generate_face(samples, sr, vad=vad, timeline=tl, seed=seed, model=net,
                                 guidance=guidance, steps=steps)
            if kind == "json":
                face.to_json(output)
            else:
                from avatar.face.livelink import write_livelink_csv

                write_livelink_csv(face, output)
            typer.echo(json.dumps({"output": str(output), "format": kind, "fps": face.fps, "frames": face.num_frames,
                                   "duration": round(face.duration, 3), "lip_refined": tl is not None}))

        guarded(run)
