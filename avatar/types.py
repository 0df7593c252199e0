"""Shared data types: what each stage carries to the next (see docs/design.md).

`VAD` and `Timeline` are pydantic models (they are small and travel as JSON); `Speech`, `FaceMotion`
and `BodyMotion` carry NumPy arrays and are validated dataclasses.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence, TypeVar

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from avatar.errors import InputError
from avatar.io import atomic_write_text

#: Seeds are whole numbers in [0, SEED_MAX] everywhere (CLI, batch, stream, app, Python API): 31 bits, what every
#: generator we seed (NumPy, torch, the per-line seeds of a batch) takes, and what a JSON client can send exactly.
SEED_MAX = 2**31 - 1


def check_seed(seed: object) -> int:
    """The seed as an int in [0, SEED_MAX]; InputError otherwise (the one seed rule of every front end)."""
    if isinstance(seed, (float, np.floating)) and math.isfinite(seed) and float(seed).is_integer():
        seed = int(seed)  # 3.0 from a JSON number or a UI field is the seed 3
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= int(seed) <= SEED_MAX:
        raise InputError(f"seed must be a whole number in [0, {SEED_MAX}], got {seed!r}")
    return int(seed)


def _clear(exc: ValidationError, model: str) -> InputError:
    parts = []
    for err in exc.errors():
        # A model's own __init__ runs inside pydantic's validation and has already said "invalid <model>: ".
        msg = str(err.get("msg", "")).removeprefix("Value error, ").removeprefix(f"invalid {model}: ")
        loc = ".".join(str(x) for x in err.get("loc", ()))
        parts.append(msg if not loc or loc in msg else f"{loc}: {msg}")
    return InputError(f"invalid {model}: " + "; ".join(parts))


_S = TypeVar("_S", bound="Strict")


class Strict(BaseModel):
    """A pydantic model whose validation failures are InputError with a one-line message."""

    def __init__(self, **data: object) -> None:
        try:
            super().__init__(**data)
        except ValidationError as exc:
            raise _clear(exc, type(self).__name__) from None

    @classmethod
    def model_validate(cls: type[_S], obj: object, *args: object, **kw: object) -> _S:  # type: ignore[override]
        """Validate a dict (e.g. parsed JSON), raising InputError on failure."""
        try:
            return super().model_validate(obj, *args, **kw)
        except ValidationError as exc:
            raise _clear(exc, cls.__name__) from None


# --------------------------------------------------------------------------------------------------
# Emotion
# --------------------------------------------------------------------------------------------------


def _check_unit(name: str, value: float) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be a number in [-1, 1], got {value!r}") from None
    if not math.isfinite(v):
        raise InputError(f"{name} must be a finite number in [-1, 1], got {value!r}")
    if v < -1.0 or v > 1.0:
        raise InputError(f"{name} must be in [-1, 1], got {v:g}")
    return v


class VAD(Strict):
    """Valence, arousal, dominance, each in [-1, 1]; 0 is neutral. NaN and out-of-range are refused."""

    model_config = ConfigDict(frozen=True)

    valence: float = 0.0
    arousal: float = 0.0
    dominance: float = 0.0

    @field_validator("valence", "arousal", "dominance", mode="before")
    @classmethod
    def _in_range(cls, v: object, info) -> float:  # noqa: ANN001 - pydantic's ValidationInfo
        return _check_unit(info.field_name, v)  # type: ignore[arg-type]

    def __init__(self, valence: float = 0.0, arousal: float = 0.0, dominance: float = 0.0, **kw: float) -> None:
        """Build from three numbers (positional or keyword)."""
        super().__init__(valence=valence, arousal=arousal, dominance=dominance, **kw)

    @classmethod
    def neutral(cls) -> "VAD":
        """The neutral point (0, 0, 0)."""
        return cls(0.0, 0.0, 0.0)

    @classmethod
    def clipped(cls, valence: float, arousal: float, dominance: float) -> "VAD":
        """Build from possibly out-of-range numbers by clipping to [-1, 1]; NaN is still refused."""
        vals = []
        for name, v in (("valence", valence), ("arousal", arousal), ("dominance", dominance)):
            f = float(v)
            if not math.isfinite(f):
                raise InputError(f"{name} must be finite, got {v!r}")
            vals.append(min(1.0, max(-1.0, f)))
        return cls(*vals)

    @classmethod
    def from_array(cls, a: Sequence[float] | np.ndarray) -> "VAD":
        """Build from a length-3 array (valence, arousal, dominance)."""
        try:
            arr = np.asarray(a, dtype=np.float64).reshape(-1)
        except (TypeError, ValueError, OverflowError):
            raise InputError(f"a VAD array needs 3 numbers, got {a!r}"[:200]) from None
        if arr.shape != (3,):
            raise InputError(f"a VAD array needs 3 values, got shape {arr.shape}")
        return cls(*arr.tolist())

    def as_array(self) -> np.ndarray:
        """Return a float32 array [valence, arousal, dominance]."""
        return np.array([self.valence, self.arousal, self.dominance], dtype=np.float32)

    def lerp(self, other: "VAD", t: float) -> "VAD":
        """Linear interpolation towards `other` (t=0 gives self, t=1 gives other)."""
        t = min(1.0, max(0.0, float(t)))
        return VAD.clipped(*(self.as_array() * (1 - t) + other.as_array() * t))

    def scaled(self, k: float) -> "VAD":
        """Scale the emotion's strength by k (negative k flips it), clipped to the valid range."""
        return VAD.clipped(*(self.as_array() * float(k)))

    def distance(self, other: "VAD") -> float:
        """Euclidean distance in VAD space."""
        return float(np.linalg.norm(self.as_array() - other.as_array()))


class SentenceEmotion(Strict):
    """The emotion read from one sentence: VAD, a categorical label and a confidence in [0, 1]."""

    model_config = ConfigDict(frozen=True)

    text: str
    vad: VAD
    label: str
    confidence: float = Field(ge=0.0, le=1.0)
    start_char: int = 0
    end_char: int = 0
    #: The category head's calibrated probabilities (category -> p, summing to 1), when a model read the text.
    categories: dict[str, float] | None = None
    #: How strongly the category is expressed, 0 (neutral) .. 1 (strong), when a model read the text.
    intensity: float | None = Field(default=None, ge=0.0, le=1.0)

    def to_record(self) -> dict:
        """The JSON-line record of the `avatar emotion` command (categories and intensity when read by a model)."""
        rec = {
            "text": self.text,
            "valence": round(self.vad.valence, 4),
            "arousal": round(self.vad.arousal, 4),
            "dominance": round(self.vad.dominance, 4),
            "label": self.label,
            "confidence": round(self.confidence, 4),
        }
        if self.intensity is not None:
            rec["intensity"] = round(self.intensity, 4)
        if self.categories is not None:
            rec["categories"] = {k: round(v, 4) for k, v in self.categories.items()}
        return rec


class EmotionSegment(Strict):
    """A span of time (seconds) with one target VAD."""

    model_config = ConfigDict(frozen=True)

    start: float = Field(ge=0.0)
    end: float = Field(ge=0.0)
    vad: VAD

    @model_validator(mode="after")
    def _ordered(self) -> "EmotionSegment":
        if not (math.isfinite(self.start) and math.isfinite(self.end)) or self.end < self.start:
            raise InputError(f"emotion segment needs finite start <= end, got {self.start}..{self.end}")
        return self


class EmotionTrack(Strict):
    """VAD over time: segments in order, eased into each other over `transition` seconds."""

    model_config = ConfigDict(frozen=True)

    segments: list[EmotionSegment]
    transition: float = Field(default=0.3, ge=0.0)

    @model_validator(mode="after")
    def _sorted(self) -> "EmotionTrack":
        if not self.segments:
            raise InputError("an EmotionTrack needs at least one segment")
        for a, b in zip(self.segments, self.segments[1:]):
            if b.start < a.start:
                raise InputError("EmotionTrack segments must be in time order")
        return self

    @classmethod
    def constant(cls, vad: VAD, duration: float) -> "EmotionTrack":
        """One VAD for the whole duration."""
        return cls(segments=[EmotionSegment(start=0.0, end=max(0.0, float(duration)), vad=vad)])

    @property
    def duration(self) -> float:
        """End time of the last segment."""
        return self.segments[-1].end

    def sample(self, fps: float, duration: float | None = None) -> np.ndarray:
        """VAD per frame as a float32 array [T, 3], eased between segments (smoothstep)."""
        dur = self.duration if duration is None else float(duration)
        n = max(1, int(round(dur * fps)))
        t = (np.arange(n, dtype=np.float64) + 0.5) / fps
        out = np.repeat(self.segments[0].vad.as_array()[None].astype(np.float64), n, axis=0)
        for seg in self.segments[1:]:
            # Each boundary blends from what came before to the new target, centred on the boundary.
            half = self.transition / 2
            if half <= 0:
                w = (t >= seg.start).astype(np.float64)
            else:
                x = np.clip((t - (seg.start - half)) / (2 * half), 0.0, 1.0)
                w = x * x * (3 - 2 * x)
            out = out * (1 - w[:, None]) + seg.vad.as_array()[None].astype(np.float64) * w[:, None]
        return out.astype(np.float32)

    def at(self, t: float) -> VAD:
        """The VAD at time t (seconds)."""
        arr = self.sample(fps=1000.0, duration=max(self.duration, t + 0.001))
        i = min(len(arr) - 1, max(0, int(t * 1000.0)))
        return VAD.clipped(*arr[i])


# --------------------------------------------------------------------------------------------------
# Speech and its timeline
# --------------------------------------------------------------------------------------------------


class _Span(Strict):
    model_config = ConfigDict(frozen=True)

    start: float
    end: float

    @model_validator(mode="after")
    def _ordered(self) -> "_Span":
        if not (math.isfinite(self.start) and math.isfinite(self.end)):
            raise InputError(f"timeline times must be finite, got {self.start}..{self.end}")
        if self.start < 0 or self.end < self.start:
            raise InputError(f"timeline span needs 0 <= start <= end, got {self.start}..{self.end}")
        return self


#: Viseme classes: the 15 of the Oculus/Meta OVR LipSync set (also used by VRChat and Ready Player Me
#: avatars), so a timeline's visemes drive existing rigs directly. Backends map their phonemes onto these
#: (avatar.tts.visemes); the face stage turns them into ARKit mouth shapes.
VISEMES: tuple[str, ...] = ("sil", "PP", "FF", "TH", "DD", "kk", "CH", "SS", "nn", "RR", "aa", "E", "ih", "oh", "ou")


class Phoneme(_Span):
    """One phoneme as the backend names it, with its viseme class (one of VISEMES)."""

    phoneme: str
    viseme: str = "sil"

    @field_validator("viseme")
    @classmethod
    def _known_viseme(cls, v: str) -> str:
        if v not in VISEMES:
            raise InputError(f"unknown viseme {v!r}; known: {' '.join(VISEMES)}")
        return v


class Word(_Span):
    """One word with its start and end (seconds)."""

    word: str


class Timeline(Strict):
    """When each phoneme and word is said; the clock every later stage follows."""

    model_config = ConfigDict(frozen=True)

    sample_rate: int = Field(gt=0)
    duration: float = Field(ge=0.0)
    phonemes: list[Phoneme] = Field(default_factory=list)
    words: list[Word] = Field(default_factory=list)

    @model_validator(mode="after")
    def _within(self) -> "Timeline":
        if not math.isfinite(self.duration):
            raise InputError("timeline duration must be finite")
        tol = 0.5  # a little slack: backends round event times to their own frames
        for span in (*self.phonemes, *self.words):
            if span.end > self.duration + tol:
                raise InputError(f"timeline event ends at {span.end:.3f}s, after the duration {self.duration:.3f}s")
        return self

    def shifted(self, dt: float, duration: float | None = None) -> "Timeline":
        """The same events moved by dt seconds (duration grows by dt unless given)."""
        return Timeline(
            sample_rate=self.sample_rate,
            duration=self.duration + dt if duration is None else duration,
            phonemes=[p.model_copy(update={"start": p.start + dt, "end": p.end + dt}) for p in self.phonemes],
            words=[w.model_copy(update={"start": w.start + dt, "end": w.end + dt}) for w in self.words],
        )

    @classmethod
    def concat(cls, parts: Sequence["Timeline"], durations: Sequence[float] | None = None) -> "Timeline":
        """Join timelines end to end; `durations` (the audio lengths) set each offset exactly."""
        if not parts:
            raise InputError("nothing to concatenate")
        offs = 0.0
        phonemes: list[Phoneme] = []
        words: list[Word] = []
        for i, tl in enumerate(parts):
            moved = tl.shifted(offs)
            phonemes.extend(moved.phonemes)
            words.extend(moved.words)
            offs += float(durations[i]) if durations is not None else tl.duration
        return cls(sample_rate=parts[0].sample_rate, duration=offs, phonemes=phonemes, words=words)

    def to_dict(self) -> dict:
        """The Timeline JSON object of docs/design.md."""
        return self.model_dump(mode="json")

    def to_json(self, path: str | os.PathLike[str] | None = None) -> str:
        """Serialise as JSON; write atomically to `path` when given."""
        text = json.dumps(self.to_dict(), ensure_ascii=False, indent=1)
        if path is not None:
            atomic_write_text(path, text)
        return text

    @classmethod
    def from_json(cls, source: str | os.PathLike[str], audio_duration: float | None = None) -> "Timeline":
        """Load from a JSON string or a file path, with a clear error on malformed input.

        Memory is bounded before anything is built (a parsed event costs about 100 times its JSON): a file over
        `timeline_byte_limit(audio_duration)` is refused unread, and parsing stops at
        `timeline_event_limit(audio_duration)` objects. With `audio_duration` (seconds of the audio the
        timeline belongs to) both limits scale with the audio; without it, with an hour.
        """
        from avatar.audio import MAX_AUDIO_SECONDS

        seconds = MAX_AUDIO_SECONDS if audio_duration is None else max(0.0, float(audio_duration))
        of_audio = "" if audio_duration is None else f" for {seconds:.1f} s of audio"
        hint = "" if audio_duration is None else "; is it this audio's timeline?"
        try:
            if _looks_like_path(source):
                p = Path(source)
                size, limit = p.stat().st_size, timeline_byte_limit(seconds)
                if size > limit:
                    raise InputError(f"{p.name} is {size / 2**20:.1f} MiB; a timeline{of_audio} is at most "
                                     f"{limit / 2**20:.1f} MiB{hint}")
                with open(p, "rb") as fh:
                    text = fh.read(limit + 1).decode("utf-8")  # bounded even if the file grew since
            else:
                text = str(source)
                if len(text) > timeline_byte_limit(seconds):
                    raise InputError(f"the timeline JSON is over {timeline_byte_limit(seconds) / 2**20:.1f} MiB"
                                     f"{of_audio}")
            most, count = timeline_event_limit(seconds), 0

            def counted(pairs: list) -> dict:
                nonlocal count
                count += 1
                if count > most:
                    raise InputError(f"the timeline has more than {most} events{of_audio} (speech has 10-20 "
                                     f"a second){hint}")
                return dict(pairs)

            return cls.model_validate(json.loads(text, object_pairs_hook=counted))
        except InputError:
            raise
        except Exception as exc:  # pydantic and json errors become one clear message
            raise InputError(f"not a valid timeline JSON: {exc}") from exc


#: Phonemes and words a second of audio may carry in a timeline read from a file: speech has 10-15 phonemes
#: and 2-4 words a second (our voice: 13 and 3), so 40 leaves room for fast speech and fine-grained aligners.
TIMELINE_EVENTS_PER_SECOND = 40
#: Bytes a second of audio may take in a timeline file (ours: 1.7 kB, pretty-printed), and at most.
TIMELINE_BYTES_PER_SECOND = 16 * 1024
MAX_TIMELINE_BYTES = 64 * 2**20


def timeline_event_limit(audio_seconds: float) -> int:
    """The most JSON objects (phonemes, words and the timeline itself) read for `audio_seconds` of audio."""
    return 100 + int(TIMELINE_EVENTS_PER_SECOND * audio_seconds)


def timeline_byte_limit(audio_seconds: float) -> int:
    """The largest timeline file read for `audio_seconds` of audio."""
    return min(MAX_TIMELINE_BYTES, 64 * 1024 + int(TIMELINE_BYTES_PER_SECOND * audio_seconds))


def _looks_like_path(source: str | os.PathLike[str]) -> bool:
    if isinstance(source, os.PathLike):
        return True
    s = str(source)
    return not s.lstrip().startswith("{") and len(s) < 4096


@dataclass
class Speech:
    """Synthesised or recorded speech: float32 mono audio, its sample rate, and its timeline."""

    audio: np.ndarray
    sample_rate: int
    timeline: Timeline | None = None
    #: (start, end) seconds of each sentence in the audio, when the backend spoke sentence by sentence.
    sentence_spans: tuple[tuple[float, float], ...] = ()

    def __post_init__(self) -> None:
        self.sentence_spans = tuple((float(a), float(b)) for a, b in self.sentence_spans)
        a = np.asarray(self.audio)
        if a.ndim != 1:
            raise InputError(f"speech audio must be mono (1-D), got shape {a.shape}")
        if not np.issubdtype(a.dtype, np.floating):
            raise InputError(f"speech audio must be float, got {a.dtype}")
        a = a.astype(np.float32, copy=False)
        if a.size and not np.isfinite(a).all():
            raise InputError("speech audio contains NaN or infinite samples")
        if int(self.sample_rate) <= 0:
            raise InputError(f"sample rate must be positive, got {self.sample_rate}")
        self.audio = a
        self.sample_rate = int(self.sample_rate)

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return len(self.audio) / self.sample_rate


# --------------------------------------------------------------------------------------------------
# Motion
# --------------------------------------------------------------------------------------------------

#: The 52 ARKit blendshapes in Apple's spelling and order.
ARKIT_BLENDSHAPES: tuple[str, ...] = (
    "eyeBlinkLeft", "eyeLookDownLeft", "eyeLookInLeft", "eyeLookOutLeft", "eyeLookUpLeft",
    "eyeSquintLeft", "eyeWideLeft", "eyeBlinkRight", "eyeLookDownRight", "eyeLookInRight",
    "eyeLookOutRight", "eyeLookUpRight", "eyeSquintRight", "eyeWideRight", "jawForward", "jawLeft",
    "jawRight", "jawOpen", "mouthClose", "mouthFunnel", "mouthPucker", "mouthLeft", "mouthRight",
    "mouthSmileLeft", "mouthSmileRight", "mouthFrownLeft", "mouthFrownRight", "mouthDimpleLeft",
    "mouthDimpleRight", "mouthStretchLeft", "mouthStretchRight", "mouthRollLower", "mouthRollUpper",
    "mouthShrugLower", "mouthShrugUpper", "mouthPressLeft", "mouthPressRight", "mouthLowerDownLeft",
    "mouthLowerDownRight", "mouthUpperUpLeft", "mouthUpperUpRight", "browDownLeft", "browDownRight",
    "browInnerUp", "browOuterUpLeft", "browOuterUpRight", "cheekPuff", "cheekSquintLeft",
    "cheekSquintRight", "noseSneerLeft", "noseSneerRight", "tongueOut",
)
#: Head rotation (radians), after the blendshapes.
HEAD_POSE: tuple[str, ...] = ("headYaw", "headPitch", "headRoll")
#: Eye gaze (radians), after the head pose; named as Live Link Face names them.
EYE_GAZE: tuple[str, ...] = ("leftEyeYaw", "leftEyePitch", "rightEyeYaw", "rightEyePitch")
#: Every FaceMotion channel in order.
FACE_CHANNELS: tuple[str, ...] = ARKIT_BLENDSHAPES + HEAD_POSE + EYE_GAZE

assert len(ARKIT_BLENDSHAPES) == 52


def _check_fps(fps: float) -> float:
    f = float(fps)
    if not math.isfinite(f) or f <= 0 or f > 1000:
        raise InputError(f"fps must be in (0, 1000], got {fps!r}")
    return f


@dataclass
class FaceMotion:
    """Per-frame face channels: 52 ARKit weights in [0, 1], head pose and eye gaze in radians."""

    fps: float
    frames: np.ndarray
    names: tuple[str, ...] = field(default=FACE_CHANNELS)

    def __post_init__(self) -> None:
        self.fps = _check_fps(self.fps)
        self.names = tuple(self.names)
        f = np.asarray(self.frames, dtype=np.float32)
        if f.ndim != 2 or f.shape[1] != len(self.names):
            raise InputError(f"face frames must be [T, {len(self.names)}], got {f.shape}")
        if not np.isfinite(f).all():
            raise InputError("face frames contain NaN or infinite values")
        self.frames = f

    @property
    def num_frames(self) -> int:
        """Number of frames."""
        return int(self.frames.shape[0])

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return self.num_frames / self.fps

    def channel(self, name: str) -> np.ndarray:
        """One channel's curve over time."""
        try:
            return self.frames[:, self.names.index(name)]
        except ValueError:
            raise KeyError(f"no face channel {name!r}") from None

    def to_dict(self) -> dict:
        """The FaceMotion JSON object of docs/design.md."""
        return {"fps": self.fps, "names": list(self.names), "frames": np.round(self.frames, 5).tolist()}

    def to_json(self, path: str | os.PathLike[str] | None = None) -> str:
        """Serialise as JSON; write atomically to `path` when given."""
        text = json.dumps(self.to_dict(), separators=(",", ":"))
        if path is not None:
            atomic_write_text(path, text)
        return text

    @classmethod
    def from_json(cls, source: str | os.PathLike[str]) -> "FaceMotion":
        """Load from a JSON string or file path."""
        try:
            text = Path(source).read_text(encoding="utf-8") if _looks_like_path(source) else str(source)
            d = json.loads(text)
            return cls(fps=d["fps"], frames=np.asarray(d["frames"], dtype=np.float32).reshape(-1, len(d["names"])),
                       names=tuple(d["names"]))
        except InputError:
            raise
        except Exception as exc:
            raise InputError(f"not a valid FaceMotion JSON: {exc}") from exc


@dataclass
class BodyMotion:
    """Per-frame humanoid pose: local joint rotations as unit quaternions (x, y, z, w) and root position (m).

    Joint names follow the VRM humanoid bones; rotations are relative to the skeleton's rest pose.
    """

    fps: float
    joints: tuple[str, ...]
    rotations: np.ndarray  # [T, J, 4] quaternion x, y, z, w
    root_position: np.ndarray  # [T, 3] metres, Y up, facing +Z

    def __post_init__(self) -> None:
        self.fps = _check_fps(self.fps)
        self.joints = tuple(self.joints)
        r = np.asarray(self.rotations, dtype=np.float32)
        p = np.asarray(self.root_position, dtype=np.float32)
        if r.ndim != 3 or r.shape[1] != len(self.joints) or r.shape[2] != 4:
            raise InputError(f"rotations must be [T, {len(self.joints)}, 4], got {r.shape}")
        if p.shape != (r.shape[0], 3):
            raise InputError(f"root_position must be [{r.shape[0]}, 3], got {p.shape}")
        if not (np.isfinite(r).all() and np.isfinite(p).all()):
            raise InputError("body motion contains NaN or infinite values")
        norms = np.linalg.norm(r, axis=-1, keepdims=True)
        if r.size and (norms < 1e-6).any():
            raise InputError("body motion has a zero-length quaternion")
        self.rotations = (r / np.maximum(norms, 1e-12)).astype(np.float32)
        self.root_position = p

    @property
    def num_frames(self) -> int:
        """Number of frames."""
        return int(self.rotations.shape[0])

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return self.num_frames / self.fps


def as_vad(value: VAD | Iterable[float] | None, default: VAD | None = None) -> VAD | None:
    """Coerce a VAD, a 3-sequence or None (giving `default`) into a VAD."""
    if value is None:
        return default
    if isinstance(value, VAD):
        return value
    return VAD.from_array(list(value))
