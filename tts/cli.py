"""`avatar tts`: text to an emotional WAV (and its phoneme/word timeline JSON)."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import typer

if TYPE_CHECKING:
    from avatar.types import VAD

log = logging.getLogger(__name__)


def register(app: typer.Typer) -> None:
    """Add the `tts` command to the avatar CLI."""

    @app.command("tts")
    def tts_cmd(
        text: Optional[str] = typer.Argument(None, help="What to say (several sentences are fine)."),
        output: Optional[Path] = typer.Option(None, "--output", "-o", help="Output WAV file."),
        valence: Optional[float] = typer.Option(None, "--valence", help="Valence in [-1, 1] (default: from the text)."),
        arousal: Optional[float] = typer.Option(None, "--arousal", help="Arousal in [-1, 1] (default: from the text)."),
        dominance: Optional[float] = typer.Option(None, "--dominance", help="Dominance in [-1, 1] (default: from the text)."),
        backend: str = typer.Option("piper", "--backend", help="piper (default: neural voice joe, eSpeak NG for other voices), espeak, or coqui (needs .venv-coqui)."),
        voice: Optional[str] = typer.Option(
            None, "--voice",
            help="joe (the neural voice, default) or an eSpeak NG voice or language, optionally with a variant (en-us, de, fr+f3); coqui: a model folder."),
        timeline: Optional[Path] = typer.Option(None, "--timeline", help="Also write the timeline JSON here."),
        list_voices: bool = typer.Option(False, "--list-voices", help="List the backend's voices and exit."),
        seed: int = typer.Option(0, "--seed", help="Seed, 0-2147483647, for the neural voices' sampling (piper, coqui); espeak is deterministic."),
        force: bool = typer.Option(False, "--force", help="Replace read-only output files."),
    ) -> None:
        """Speak TEXT with emotion into a WAV file (and a timeline JSON).

        Without --valence/--arousal/--dominance each sentence's emotion is read from the text.
        """
        from avatar.cli import guarded, vad_options

        def run() -> None:
            from avatar.errors import InputError
            from avatar.tts.base import get_backend
            from avatar.types import check_seed

            check_seed(seed)
            if list_voices:
                _print_voices(get_backend(backend))
                return
            if text is None:
                raise InputError("give the TEXT to speak (or --list-voices)")
            if output is None:
                raise InputError("give the output WAV file with -o OUT.wav")
            _check_output(output, ".wav", "-o", force)
            if timeline is not None:
                _check_output(timeline, ".json", "--timeline", force)
            vad = vad_options(valence, arousal, dominance)
            from avatar.tts.base import check_tts_text

            check_tts_text(text)  # bad text, voice or backend fail before the emotion model loads
            engine = get_backend(backend)
            if hasattr(engine, "check_voice"):
                engine.check_voice(voice)
            if vad is None:
                vad = _text_vads(text)
            speech = engine.synthesize(text, vad, voice, seed=seed)
            from avatar.audio import save_wav

            save_wav(output, speech.audio, speech.sample_rate)
            if timeline is not None and speech.timeline is not None:
                from avatar.errors import OutputError

                try:
                    speech.timeline.to_json(timeline)
                except OutputError as exc:  # say what was kept
                    raise OutputError(f"{exc}; the audio was written: {output}") from exc
            summary = {"audio": str(output), "sample_rate": speech.sample_rate, "duration": round(speech.duration, 3),
                       "phonemes": len(speech.timeline.phonemes) if speech.timeline else 0,
                       "words": len(speech.timeline.words) if speech.timeline else 0}
            if timeline is not None:
                summary["timeline"] = str(timeline)
            typer.echo(json.dumps(summary, ensure_ascii=False))

        guarded(run)


def _check_output(path: Path, suffix: str, flag: str, force: bool) -> None:
    from avatar.errors import InputError
    from avatar.io import check_output_path

    if path.suffix.lower() != suffix:
        raise InputError(f"{flag} must name a {suffix} file, got {str(path)!r}")
    check_output_path(path, flag, force=force)


def _text_vads(text: str) -> list[VAD] | None:
    """Per-sentence VADs read from the text, or neutral (with a warning) when no emotion model is installed."""
    from avatar.errors import ModelError

    try:
        from avatar.emotion import analyze

        return [s.vad for s in analyze(text)]
    except (ModelError, ImportError) as exc:  # no trained weights, or a venv without the emotion libraries
        log.warning("%s; speaking neutrally (pass --valence/--arousal/--dominance to set the emotion)", exc)
        return None


def _print_voices(backend) -> None:  # noqa: ANN001 - any Backend
    voices = getattr(backend, "voices", None)
    if voices is None:
        for name in backend.list_voices():
            typer.echo(name)
        return
    rows = voices()
    for v in rows:
        if v.variant:
            continue
        typer.echo(f"{v.identifier}\t{v.name}\t{','.join(v.languages)}\t{v.gender}")
    variants = sorted(v.identifier for v in rows if v.variant)
    typer.echo("# variants (append to any voice, e.g. en-us+" + (variants[0] if variants else "f3") + "): "
               + " ".join(variants))
