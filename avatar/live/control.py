"""Control messages of a live stream (docs/live.md): say / audio / emotion / stop, as pydantic models.

    parse_control('{"type": "say", "text": "Hi", "valence": 0.5}')  # {"type": "say", "text": "Hi", "vad": VAD(...)}

One model per message type; each refuses unknown fields, so a typo is an error rather than ignored. Every failure
is an InputError with one line that names the field.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import ConfigDict, Field, field_validator, model_validator

from avatar.errors import InputError
from avatar.types import VAD, Strict

#: Largest control message accepted, in bytes of UTF-8.
MAX_CONTROL_BYTES = 64 * 1024

_Unit = Field(default=None, ge=-1.0, le=1.0, allow_inf_nan=False)


class _Message(Strict):
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    def command(self) -> dict[str, Any]:
        """The message as the stream consumes it: {"type": ..., and the type's own fields}."""
        return {"type": self.type}  # type: ignore[attr-defined]


class _WithEmotion(_Message):
    valence: float | None = _Unit
    arousal: float | None = _Unit
    dominance: float | None = _Unit

    def vad(self) -> VAD | None:
        """The VAD of the given axes (the others 0), or None when none is given."""
        given = {k: v for k in ("valence", "arousal", "dominance") if (v := getattr(self, k)) is not None}
        return VAD(**given) if given else None


class SayMessage(_WithEmotion):
    """Say a line of text (optionally with an emotion for it)."""

    type: Literal["say"]
    text: str

    @field_validator("text")
    @classmethod
    def _text(cls, v: str) -> str:
        if not v.strip():
            raise InputError("'say' needs a non-empty \"text\" string")
        from avatar.tts.base import check_tts_text

        check_tts_text(v)  # length and sayability checks before it is queued
        return v

    def command(self) -> dict[str, Any]:
        """{"type": "say", "text", "vad"}."""
        return {"type": "say", "text": self.text, "vad": self.vad()}


class AudioMessage(_WithEmotion):
    """Perform a recording (a sound file's path; only where the stream allows files)."""

    type: Literal["audio"]
    path: str

    @field_validator("path")
    @classmethod
    def _path(cls, v: str) -> str:
        if not v.strip() or "\x00" in v:
            raise InputError("'audio' needs a \"path\" string naming a sound file")
        from avatar.text import check_unicode

        check_unicode(v, "the audio path")
        return v

    def command(self) -> dict[str, Any]:
        """{"type": "audio", "path", "vad"}."""
        return {"type": "audio", "path": self.path, "vad": self.vad()}


class EmotionMessage(_WithEmotion):
    """Change the mood, easing over `transition` seconds (None: the stream's default)."""

    type: Literal["emotion"]
    transition: float | None = Field(default=None, ge=0.0, le=10.0, allow_inf_nan=False)

    @model_validator(mode="after")
    def _some_axis(self) -> "EmotionMessage":
        if self.vad() is None:
            raise InputError("'emotion' needs at least one of valence, arousal, dominance")
        return self

    def command(self) -> dict[str, Any]:
        """{"type": "emotion", "vad", "transition"}."""
        return {"type": "emotion", "vad": self.vad(), "transition": self.transition}


class StopMessage(_Message):
    """Stop what is being said and drop the queued lines."""

    type: Literal["stop"]


MESSAGES: dict[str, type[_Message]] = {"say": SayMessage, "audio": AudioMessage, "emotion": EmotionMessage,
                                       "stop": StopMessage}
ControlMessage = SayMessage | AudioMessage | EmotionMessage | StopMessage


def read_control(msg: object) -> ControlMessage:
    """A control message (JSON text or an already parsed object) as its model; InputError with a clear reason."""
    if isinstance(msg, (bytes, bytearray)):
        raise InputError("control messages are JSON text, not binary")
    if isinstance(msg, str):
        if len(msg.encode("utf-8", "replace")) > MAX_CONTROL_BYTES:
            raise InputError(f"control message larger than {MAX_CONTROL_BYTES} bytes")
        try:
            msg = json.loads(msg)
        except ValueError as exc:
            raise InputError(f"control message is not valid JSON: {exc}") from None
    if not isinstance(msg, dict):
        raise InputError("a control message must be a JSON object with a \"type\"")
    kind = msg.get("type")
    model = MESSAGES.get(kind) if isinstance(kind, str) else None
    if model is None:
        raise InputError(f"unknown control type {kind!r}; use one of: {', '.join(MESSAGES)}")
    extra = sorted(str(k) for k in set(msg) - set(model.model_fields))
    if extra:  # said here, in our words, rather than as pydantic's "extra inputs are not permitted"
        raise InputError(f"unexpected field(s) in {kind!r}: {', '.join(extra)}")
    return model.model_validate(msg)  # type: ignore[return-value]


def parse_control(msg: object) -> dict[str, Any]:
    """Validate a control message and return it as the stream consumes it (`ControlMessage.command()`)."""
    return read_control(msg).command()

