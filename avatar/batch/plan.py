"""Turn validated lines into render jobs: each line's emotion (dialogue dynamics), seed and input hash.

Everything that depends on the order of the script happens here, once, sequentially and before any
rendering: a character's mood carries from one of its lines to the next (avatar.emotion.dynamics.Dialogue),
so line 7's emotion depends on lines 1-6. Workers then get self-contained jobs and may finish in any order
while the outputs stay the same.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Literal

from pydantic import ConfigDict, Field, field_validator

from avatar.emotion.dynamics import Dialogue
from avatar.errors import InputError
from avatar.types import VAD, Strict

from .script import Line, LineFailure, Script

log = logging.getLogger(__name__)

#: Bump when the meaning of a job's inputs or outputs changes: every line then re-renders on --resume.
BATCH_FORMAT = 1
#: Resolved VADs are rounded to this many decimals, so float noise (another CPU, another BLAS) does not
#: change a line's input hash; 1e-4 is far below anything visible or audible.
VAD_DECIMALS = 4


class VideoSettings(Strict):
    """How every clip of a batch is rendered (part of each line's input hash): the video's size and framing (checked
    again by avatar.pipeline.video_settings, the renderer's RenderSettings) and what is drawn over it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    width: int = Field(default=512, ge=64, le=2160)  # the pipeline's range
    height: int = Field(default=512, ge=64, le=2160)
    framing: Literal["portrait", "full"] = "portrait"
    subtitles: bool = False
    vad_indicator: bool = False

    @field_validator("width", "height")
    @classmethod
    def _even(cls, v: int) -> int:
        if v % 2:
            raise InputError(f"video sizes must be even (H.264 yuv420p), got {v}")
        return v


@dataclass(frozen=True)
class LineJob:
    """Everything a worker needs to render one line; plain data, so it pickles to processes and Ray."""

    index: int
    id: str
    character: str
    text: str
    vad: tuple[float, float, float]  # the emotion to perform the line with (after the dynamics)
    stimulus: tuple[float, float, float]  # what the line's text (or its override) read as
    voice: str | None
    avatar: str | None  # absolute path of the character's avatar file; None = the default avatar
    seed: int
    settings: VideoSettings
    input_hash: str
    audio: str | None = None  # absolute path of the line's recording, performed instead of the TTS
    #: How the model read the line's text (label, confidence, intensity, category probabilities); None when the
    #: line had an emotion override or the analyzer gave a bare VAD.
    reading: dict[str, Any] | None = None

    def vad_record(self) -> dict[str, float]:
        """The performed VAD as a JSON mapping."""
        return dict(zip(("valence", "arousal", "dominance"), self.vad))


def line_seed(seed: int, line_id: str) -> int:
    """A per-line seed from the global seed and the line id (stable across runs, machines, orderings)."""
    digest = hashlib.sha256(f"{int(seed)}\x00{line_id}".encode("utf-8")).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


def file_sha256(path: str | Path, chunk: int = 2**20) -> str:
    """SHA-256 of a file's bytes, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def input_hash(payload: dict[str, Any]) -> str:
    """SHA-256 of a canonical JSON form of a line's resolved inputs."""
    text = json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _rounded(vad: VAD) -> tuple[float, float, float]:
    return tuple(round(float(x), VAD_DECIMALS) + 0.0 for x in (vad.valence, vad.arousal, vad.dominance))  # type: ignore[return-value]


def plan_jobs(script: Script, lines: list[tuple[int, Line]], *, seed: int, settings: VideoSettings,
              models: dict[str, Any], analyze: Callable[[str], Any]) -> tuple[list[LineJob], list[LineFailure]]:
    """Resolve each good line's emotion in script order and build its job; `models` names model versions.

    `analyze(text)` gives a VAD, or a SentenceEmotion whose label, confidence, intensity and categories then go
    into the manifest as the line's `reading`."""
    chars = script.characters or {}
    dialogue = Dialogue(analyze=lambda text: VAD.neutral(),  # never used: the stimulus is always passed in
                        personalities={n: c.personality for n, c in chars.items()},
                        base_emotion={n: c.base_emotion for n, c in chars.items() if c.base_emotion is not None})
    avatar_hashes: dict[Path, str] = {}
    jobs: list[LineJob] = []
    failures: list[LineFailure] = []
    for index, line in lines:
        ch = chars.get(line.character)
        try:
            found = line.emotion if line.emotion is not None else analyze(line.text)
        except InputError as exc:  # text the analyzer refuses fails this line only
            failures.append(LineFailure(index=index, id=line.id, error=str(exc), character=line.character,
                                        text=line.text))
            continue
        reading = None
        stimulus = found
        if not isinstance(found, VAD):  # a SentenceEmotion: the model's full reading of the text
            stimulus = found.vad
            rec = found.to_record()
            reading = {k: rec[k] for k in ("label", "confidence", "intensity", "categories") if k in rec}
        vad = VAD.clipped(*_rounded(dialogue.say(line.character, line.text, override=stimulus)))
        avatar = script.avatar_path(ch) if ch is not None else None
        if avatar is not None and avatar not in avatar_hashes:
            avatar_hashes[avatar] = file_sha256(avatar)
        audio = script.audio_path(line)
        per_line_seed = line_seed(seed, line.id)
        character = {
            "name": line.character,
            "voice": ch.voice if ch else None,
            # The avatar's content, not its path: moving the file does not re-render, editing it does.
            "avatar_sha256": avatar_hashes[avatar] if avatar is not None else None,
            "personality": (ch.personality if ch else None) and ch.personality.model_dump(mode="json"),
            "base_emotion": ch.base_emotion.model_dump(mode="json") if ch and ch.base_emotion else None,
        }
        payload = {
            "format": BATCH_FORMAT, "id": line.id, "text": line.text, "character": character,
            "vad": list(_rounded(vad)), "stimulus": list(_rounded(stimulus)), "seed": per_line_seed,
            "settings": settings.model_dump(mode="json"), "models": models,
        }
        if audio is not None:  # only then: lines without a recording keep the hashes of earlier batches
            payload["audio_sha256"] = file_sha256(audio)  # the recording's content, as for the avatar
        jobs.append(LineJob(
            index=index, id=line.id, character=line.character, text=line.text, vad=_rounded(vad),
            stimulus=_rounded(stimulus), voice=ch.voice if ch else None,
            avatar=str(avatar) if avatar is not None else None, seed=per_line_seed, settings=settings,
            input_hash=input_hash(payload), audio=str(audio) if audio is not None else None, reading=reading,
        ))
    return jobs, failures


def job_summary(job: LineJob) -> dict[str, Any]:
    """The job as a JSON-ready mapping (for logs and the done marker)."""
    d = asdict(job)
    d["settings"] = job.settings.model_dump(mode="json")
    return d
