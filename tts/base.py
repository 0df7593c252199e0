"""The speech backend protocol, the backend registry, and the sentence loop every backend shares.

A backend turns text + emotion + voice into `Speech` (float32 mono audio, its sample rate, and a Timeline of
phonemes with visemes and words). Long text is split at sentence boundaries
(avatar.emotion.sentences.split_sentences); each sentence is synthesised with its own VAD and the timelines
are joined with Timeline.concat using the real audio lengths, so the joined timeline is exact.
"""

from __future__ import annotations

import importlib
import logging
import math
import sys
from concurrent.futures import Future
from typing import Callable, Iterable, NamedTuple, Protocol, Sequence, Union, runtime_checkable

import numpy as np

from avatar.emotion.sentences import Sentence, split_sentences
from avatar.errors import InputError
from avatar.types import VAD, EmotionTrack, Phoneme, Speech, Timeline

log = logging.getLogger(__name__)

#: Text longer than this is refused by every backend (about 20 minutes of speech); split longer scripts
#: into several calls (`avatar batch`). It keeps one call's memory and time bounded.
MAX_TTS_CHARS = 20_000

#: What `vad` may be: one VAD for everything, one per sentence, an EmotionTrack over time, or None (neutral).
VADInput = Union[VAD, Sequence[VAD], EmotionTrack, None]

class PendingAudio(NamedTuple):
    """A sentence's audio still being finished in another thread (its length is known already)."""

    future: "Future[np.ndarray]"
    size: int


#: A backend's per-sentence synthesis: (sentence text, its VAD) -> (float32 audio, or audio still being finished,
#: and the timeline of that audio).
SentenceSynth = Callable[[str, VAD], "tuple[np.ndarray | PendingAudio, Timeline]"]


@runtime_checkable
class Backend(Protocol):
    """What every speech backend offers."""

    name: str

    def synthesize(self, text: str, vad: VADInput = None, voice: str | None = None, seed: int = 0) -> Speech:
        """Speak `text` with emotion `vad` in `voice`; same inputs and seed give the same audio."""
        ...

    def list_voices(self) -> list[str]:
        """Names `voice` accepts."""
        ...


_REGISTRY: dict[str, str] = {
    "piper": "avatar.tts.piper:PiperBackend",
    "espeak": "avatar.tts.espeak:EspeakBackend",
    "coqui": "avatar.tts.coqui:CoquiBackend",
}


def backend_names() -> list[str]:
    """Registered backend names."""
    return sorted(_REGISTRY)


#: The backend `avatar say`/`tts`, the app, batch and live use unless told otherwise: the neural English voice
#: (Piper), which hands other voices, and everything when its voice package is missing, to eSpeak NG.
DEFAULT_BACKEND = "piper"


def get_backend(name: str = DEFAULT_BACKEND, **options: object) -> Backend:
    """Instantiate a backend by name ('piper', 'espeak' or 'coqui'); options go to its constructor."""
    if name not in _REGISTRY:
        raise InputError(f"unknown tts backend {name!r}; choose from: {', '.join(backend_names())}")
    module, cls = _REGISTRY[name].split(":")
    return getattr(importlib.import_module(module), cls)(**options)


def check_tts_text(text: str) -> list[Sentence]:
    """Validate text for speech and split it into sentences (InputError when empty or too long)."""
    if not isinstance(text, str):
        raise InputError(f"text must be a string, got {type(text).__name__}")
    if len(text) > MAX_TTS_CHARS:
        raise InputError(f"text is {len(text):,} characters; speech is limited to {MAX_TTS_CHARS:,} per call "
                         "(about 20 minutes): split it into several calls")
    return split_sentences(text)


def vad_picker(vad: VADInput, n_sentences: int) -> Callable[[int, float], VAD]:
    """A function (sentence index, start time in s) -> that sentence's VAD, for every accepted `vad` form."""
    if vad is None:
        neutral = VAD.neutral()
        return lambda i, t: neutral
    if isinstance(vad, VAD):
        return lambda i, t: vad
    if isinstance(vad, EmotionTrack):
        return lambda i, t: vad.at(t)
    if isinstance(vad, np.ndarray) and vad.ndim == 2:
        vad = [VAD.from_array(row) for row in vad]  # one row per sentence
    if isinstance(vad, (list, tuple)) and vad and all(isinstance(x, (int, float, np.number)) for x in vad):
        one = VAD.from_array(vad)  # three numbers: one VAD for everything
        return lambda i, t: one
    if isinstance(vad, (list, tuple)):
        if len(vad) != n_sentences:
            raise InputError(f"got {len(vad)} VAD values for {n_sentences} sentences; give one per sentence, "
                             "one for all, or an EmotionTrack")
        vads = [v if isinstance(v, VAD) else VAD.from_array(v) for v in vad]
        return lambda i, t: vads[i]
    if isinstance(vad, (np.ndarray,)) or _is_triplet(vad):
        one = VAD.from_array(vad)  # type: ignore[arg-type]
        return lambda i, t: one
    raise InputError(f"vad must be a VAD, a list of VADs, an EmotionTrack or None, got {type(vad).__name__}")


def _is_triplet(x: object) -> bool:
    return isinstance(x, Iterable) and not isinstance(x, (str, bytes))


def synthesize_sentences(text: str, vad: VADInput, sample_rate: int, synth: SentenceSynth,
                         gap_seconds: float | Callable[[Sentence, VAD], float] = 0.0, lead_in_seconds: float = 0.0,
                         tail_seconds: float = 0.0, fade_out_seconds: float = 0.0) -> Speech:
    """Split `text`, synthesise each sentence with its VAD, and join audio and timelines exactly.

    gap_seconds: silence between sentences, fixed or per sentence (a function of the sentence before the gap
    and its VAD); lead_in_seconds / tail_seconds: silence before the first and after the last sentence, and
    fade_out_seconds: a half-cosine fade from that long before the last sentence's end. Every added silence is
    a pause ('_', viseme sil) in the timeline, so the timeline covers the audio exactly. `synth` may return a
    `PendingAudio` (the sentence finished in another thread while the next one is made); it is waited for at the end."""
    sentences = check_tts_text(text)
    pick = vad_picker(vad, len(sentences))
    audios: list[np.ndarray | PendingAudio] = []
    timelines: list[Timeline] = []

    def silence(seconds: float) -> None:
        n = int(round(seconds * sample_rate))
        if n > 0:
            audios.append(np.zeros(n, dtype=np.float32))
            timelines.append(_pause_timeline(n, sample_rate))

    silence(lead_in_seconds)
    spans: list[tuple[float, float]] = []
    t = lead_in_seconds
    items: Iterable[Sentence] = sentences
    if len(sentences) >= 8 and sys.stderr.isatty():
        # imported here: tqdm.auto (it imports asyncio) costs ~60 ms of cold start, and short texts show no bar
        from tqdm.auto import tqdm

        items = tqdm(sentences, desc="speech", unit="sentence")
    last = -1
    for i, s in enumerate(items):
        v = pick(i, t)
        audio, tl = synth(s.text, v)
        if not isinstance(audio, PendingAudio):
            audio = np.asarray(audio, dtype=np.float32)
        last = len(audios)
        audios.append(audio)
        timelines.append(tl)
        if i < len(sentences) - 1:
            silence(gap_seconds(s, v) if callable(gap_seconds) else gap_seconds)
        else:
            silence(tail_seconds)
        # Spans tile the audio (each sentence owns the silence after it; the first also the lead-in).
        end = sum(a.size for a in audios) / sample_rate
        spans.append((spans[-1][1] if spans else 0.0, end))
        t = end
    sizes = [a.size for a in audios]
    audios = [np.asarray(a.future.result(), dtype=np.float32) if isinstance(a, PendingAudio) else a for a in audios]
    if [a.size for a in audios] != sizes:
        raise AssertionError("a finished sentence changed its length")  # the finishing steps keep every sample
    if last >= 0 and fade_out_seconds > 0 and audios[last].size:
        audios[last] = fade_out(audios[last], min(audios[last].size, int(round(fade_out_seconds * sample_rate))))
    audio = np.concatenate(audios) if audios else np.zeros(0, dtype=np.float32)
    if audio.size == 0 or not np.any(audio):
        raise InputError("the text has nothing the voice can say (no letters or digits it can read)")
    durations = [a.size / sample_rate for a in audios]
    timeline = Timeline.concat(timelines, durations=durations)
    if not math.isclose(timeline.duration, audio.size / sample_rate, abs_tol=1e-6):
        raise AssertionError("timeline and audio lengths disagree")  # Timeline.concat keeps them equal
    return Speech(audio=audio, sample_rate=sample_rate, timeline=timeline, sentence_spans=tuple(spans))


def _pause_timeline(n_samples: int, sample_rate: int) -> Timeline:
    """A timeline of one pause ('_', sil) over `n_samples` of silence."""
    d = n_samples / sample_rate
    return Timeline(sample_rate=sample_rate, duration=d, phonemes=[Phoneme(phoneme="_", viseme="sil", start=0.0, end=d)])


def fade_out(audio: np.ndarray, n: int) -> np.ndarray:
    """`audio` with its last `n` samples faded to silence by a half cosine (so speech never stops on a click)."""
    out = np.array(audio, dtype=np.float32)
    if n > 0:
        out[-n:] *= (0.5 + 0.5 * np.cos(np.linspace(0.0, np.pi, n))).astype(np.float32)
    return out
