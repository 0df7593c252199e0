"""`avatar gesture`: speech audio (+ timeline, + VAD) to body motion as BVH or binary glTF."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Optional

import typer

log = logging.getLogger(__name__)

#: Output formats by file suffix.
FORMATS = {".bvh": "bvh", ".glb": "glb"}


def register(app: typer.Typer) -> None:
    """Add the `gesture` command to the avatar CLI."""

    @app.command("gesture")
    def gesture_cmd(
        audio: Optional[Path] = typer.Option(None, "--audio", "-a", help="Speech audio (WAV, FLAC, MP3, ...)."),
        output: Optional[Path] = typer.Option(None, "--output", "-o", help="Output .bvh or .glb file."),
        timeline: Optional[Path] = typer.Option(
            None, "--timeline", help="The speech's timeline JSON (avatar tts --timeline): beats on stressed vowels."),
        valence: Optional[float] = typer.Option(None, "--valence", help="Valence in [-1, 1] (default 0)."),
        arousal: Optional[float] = typer.Option(None, "--arousal", help="Arousal in [-1, 1] (default 0)."),
        dominance: Optional[float] = typer.Option(None, "--dominance", help="Dominance in [-1, 1] (default 0)."),
        seed: int = typer.Option(0, "--seed", help="Seed, 0-2147483647: the same inputs and seed give the same motion."),
        guidance: float = typer.Option(
            1.5, "--guidance", help="Emotion strength (classifier-free guidance on VAD, 0..10; 1 = plain model)."),
        steps: int = typer.Option(10, "--steps", min=1, max=200, help="Diffusion sampling steps."),
        model: Optional[Path] = typer.Option(
            None, "--model", help="Model folder (default $AVATAR_MODEL_GESTURE, else the shipped weights/gesture)."),
        force: bool = typer.Option(False, "--force", help="Replace a read-only output file."),
    ) -> None:
        """Generate body motion for speech audio and write it as BVH (.bvh) or binary glTF (.glb).

        Without --valence/--arousal/--dominance the emotion is neutral.
        """
        from avatar.cli import guarded, vad_options

        def run() -> None:
            from avatar.errors import InputError
            from avatar.types import check_seed

            check_seed(seed)
            if audio is None:
                raise InputError("give the speech audio with --audio IN.wav")
            if output is None:
                raise InputError("give the output file with -o OUT.bvh or -o OUT.glb")
            fmt = FORMATS.get(output.suffix.lower())
            if fmt is None:
                raise InputError(f"-o must name a .bvh or .glb file, got {str(output)!r}")
            from avatar.io import check_output_path

            check_output_path(output, "-o", force=force)
            vad = vad_options(valence, arousal, dominance)
            from avatar.audio import load_audio
            from avatar.types import Timeline

            if timeline is not None and not timeline.is_file():
                raise InputError(f"timeline file not found: {timeline}")
            samples, sr = load_audio(audio)  # bad audio fails before the model loads
            tl = None
            if timeline is not None:
                try:
                    tl = Timeline.from_json(timeline, audio_duration=samples.size / sr)  # bounded by the audio
                except InputError as exc:
                    raise InputError(f"--timeline {timeline.name}: {exc}") from None
            from avatar.gesture.generate import generate_gesture, load_gesture_model

            net = load_gesture_model(model)
            motion = generate_gesture(samples, sr, vad, seed=seed, model=net, timeline=tl, guidance=guidance,
                                      steps=steps)
            if fmt == "bvh":
                from avatar.gesture.bvh import write_bvh

                write_bvh(output, motion)
            else:
                from avatar.gesture.gltf import write_gltf

                write_gltf(output, motion)
            typer.echo(json.dumps({"output": str(output), "format": fmt, "fps": motion.fps,
                                   "frames": motion.num_frames, "duration": round(motion.duration, 3),
                                   "audio_duration": round(samples.size / sr, 3)}, ensure_ascii=False))

        guarded(run)
