"""The embedded default backend: eSpeak NG (through espeakng-loader and ctypes) plus WORLD emotion reshaping.

Per sentence: VAD -> ProsodyParams (avatar.tts.prosody) -> the engine's own rate, pitch, range and volume
parameters, calibrated on the engine (see `engine_settings`); what those cannot reach (contour shape, final
boundary, spectral tilt, breathiness, F0 level or range beyond the engine's limits) is applied by WORLD
resynthesis (avatar.tts.world), which keeps every sample where it was. The timeline comes from the engine's
own phoneme and word events (sample-exact).
"""

from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass

import numpy as np

from avatar.errors import InputError
from avatar.tts.base import VADInput, synthesize_sentences
from avatar.tts.espeak_lib import ENGINE_LOCK, RATE_MAX, RATE_MIN, RawEvent, VoiceInfo, engine
from avatar.tts.prosody import ProsodyParams, prosody_for
from avatar.tts.visemes import viseme_for
from avatar.tts.world import WorldEdit, WorldSettings, express
from avatar.types import VAD, Phoneme, Speech, Timeline, Word

log = logging.getLogger(__name__)

DEFAULT_VOICE = "en-us"
#: The engine volume for neutral speech: 70 of its 100 leaves headroom for +4.6 dB of emotional loudness
#: before the int16 engine output would clip (its peak at 100 is about -2 dBFS).
BASE_VOLUME = 70
_EDGE_PUNCT = " \t\n.,;:!?\"'()[]{}<>«»“”‘’„…–—-"
# An identifier ("gmw/en-GB-x-rp"), a language ("en-us") or a display name ("English (America)"), then an
# optional "+variant"; never "..", so a name cannot reach files outside the engine's voices folder.
_VOICE_NAME = re.compile(r"^[A-Za-z0-9_.\-() ]{1,48}(/[A-Za-z0-9_.\-() ]{1,48})?(\+[A-Za-z0-9_.\- ]{1,32})?$")

# Engine calibration, measured on en-us with a 17-word sentence (median F0 by DIO; range as 10th..90th
# percentile): the pitch parameter moves the F0 level by about 0.186 semitones per step (54 Hz at 0, 89 Hz
# at 50, 158 Hz at 100), and the range parameter gives 0.4, 4.0 and 6.8 semitones at 0, 50 and 100.
_PITCH_STEPS_PER_OCTAVE = 64.5
_RANGE_ST = (0.4, 4.0, 6.8)
_RANGE_PARAM = (0.0, 50.0, 100.0)


@dataclass(frozen=True)
class EngineSettings:
    """Engine parameters for one sentence, and what is left for WORLD."""

    rate: int
    pitch: int
    range: int
    volume: int
    world: WorldEdit


#: WORLD for eSpeak NG's voices (world.express): DIO on 10 ms frames and the fast aperiodicity (the engine must
#: stay under a real-time factor of 0.05 on one core). Unlike joe, WORLD's noise stays in unvoiced frames and small
#: edits are resynthesised: pocketsphinx's WER on 46 Harvard sentences was 70.0 / 74.8 % as is, 77.7 / 79.6 % with the
#: engine's unvoiced frames kept and 83.8 / 77.4 % with edits under 1 semitone skipped (docs/tts.md).
WORLD = WorldSettings(frame_period_ms=10.0, aperiodicity="fast", f0_method="dio", keep_unvoiced=False, min_st=0.0)

#: eSpeak NG's rate for neutral speech. Its own default (175) measured about 224 words a minute on our sentences,
#: brisk for a character talking to the user; 150 gives about 190, and emotion moves it by 0.7x..1.35x.
SPEAKING_RATE = 150


def engine_settings(p: ProsodyParams, base_rate: int = SPEAKING_RATE) -> EngineSettings:
    """Map prosody targets onto eSpeak NG's rate/pitch/range/volume; residuals go to WORLD."""
    rate = int(round(min(RATE_MAX, max(RATE_MIN, base_rate * p.rate))))
    pitch_f = 50.0 + _PITCH_STEPS_PER_OCTAVE * math.log2(p.f0_scale)
    pitch = int(round(min(100.0, max(0.0, pitch_f))))
    f0_residual = 2.0 ** ((pitch_f - pitch) / _PITCH_STEPS_PER_OCTAVE)  # beyond 0..100 only
    range_p = float(np.interp(p.range_st, _RANGE_ST, _RANGE_PARAM))
    reached = float(np.interp(range_p, _RANGE_PARAM, _RANGE_ST))
    range_residual = p.range_st / reached if p.range_st > _RANGE_ST[-1] else 1.0
    volume = int(round(min(200.0, max(0.0, BASE_VOLUME * p.volume))))
    world = WorldEdit.from_prosody(p, f0_factor=f0_residual if abs(f0_residual - 1) > 0.01 else 1.0,
                                   range_factor=range_residual)
    return EngineSettings(rate, pitch, int(round(range_p)), volume, world)


def sanitize(text: str) -> str:
    """Text for the engine: same length (so event positions map back), with no markup it could act on.

    We never pass espeakSSML or espeakPHONEMES, so '<tags>' and '[[phonemes]]' are read as text already;
    square brackets also become parentheses so no '[[' ever reaches the engine. Control characters are gone
    (avatar.emotion.sentences.normalize) because the engine reads some as embedded commands.
    """
    return text.replace("[", "(").replace("]", ")")


def events_to_timeline(events: list[RawEvent], text: str, n_samples: int, sr: int) -> Timeline:
    """Build the phoneme and word timeline from the engine's events (sample positions, 1-based text spans)."""
    evs = sorted(events, key=lambda e: e.sample)  # stable: same-sample events keep the engine's order
    marks = [e for e in evs if e.kind in ("phoneme", "end")]
    phonemes: list[Phoneme] = []
    owner: list[int] = []  # index of the word event each phoneme belongs to (-1 for pauses)
    word_events = [e for e in evs if e.kind == "word"]
    word_starts = [e.sample for e in word_events]
    for i, e in enumerate(marks):
        if e.kind != "phoneme":
            continue
        # Ends where the next mark starts; a mark at the same sample makes this one empty (skipped).
        end = min(marks[i + 1].sample if i + 1 < len(marks) else n_samples, n_samples)
        start = min(e.sample, n_samples)
        if end <= start:
            continue
        name = e.phoneme.strip()
        if not name:
            if phonemes and phonemes[-1].phoneme == "_" and abs(phonemes[-1].end - start / sr) < 1e-9:
                phonemes[-1] = phonemes[-1].model_copy(update={"end": end / sr})
            else:
                phonemes.append(Phoneme(phoneme="_", viseme="sil", start=start / sr, end=end / sr))
                owner.append(-1)
            continue
        phonemes.append(Phoneme(phoneme=name, viseme=viseme_for(name), start=start / sr, end=end / sr))
        owner.append(int(np.searchsorted(word_starts, e.sample, side="right")) - 1)
    # Words: each word event's text span, timed by the phonemes said under it. Events for one piece of text
    # (a number or emoji read as several words) merge into one word.
    words: list[Word] = []
    spans: list[tuple[int, int, float, float]] = []
    for wi, we in enumerate(word_events):
        own = [p for p, o in zip(phonemes, owner) if o == wi]
        if not own:
            continue
        a, b = own[0].start, own[-1].end
        pos, length = we.text_position - 1, we.length
        # Merge into the previous word when this event starts inside it (numbers: "1,250" gives four
        # overlapping events) or covers only spaces (the rest of an emoji's name).
        if spans and (pos < spans[-1][0] + spans[-1][1] or not text[pos:pos + length].strip()):
            p0, l0, a0, _ = spans[-1]
            spans[-1] = (p0, max(l0, pos + length - p0), a0, b)
            continue
        spans.append((pos, length, a, b))
    for k, (pos, length, a, b) in enumerate(spans):
        stop = pos + max(0, length)
        nxt = spans[k + 1][0] if k + 1 < len(spans) else len(text)
        if any(ch.isalnum() for ch in text[stop:nxt]):
            stop = nxt  # the engine said these letters under this word event ("I am" gives one event)
        word = text[max(0, pos):stop].strip().strip(_EDGE_PUNCT)
        if word:
            words.append(Word(word=word, start=a, end=b))
    return Timeline(sample_rate=sr, duration=n_samples / sr, phonemes=phonemes, words=words)


class EspeakBackend:
    """eSpeak NG speech with emotional prosody; every eSpeak NG voice, language and variant is selectable."""

    name = "espeak"

    def __init__(self, world: WorldSettings = WORLD) -> None:
        """Open the engine (process-wide, initialised once); `world`: WORLD's settings for its voices."""
        self.engine = engine()
        self.sample_rate = self.engine.sample_rate
        self.world = world

    def voices(self) -> list[VoiceInfo]:
        """Every voice (language) and variant, with names, languages and gender."""
        return self.engine.voices()

    def list_voices(self) -> list[str]:
        """Voice identifiers `voice` accepts (append '+variant' to any, e.g. 'en-us+f3')."""
        return [v.identifier for v in self.voices() if not v.variant]

    def check_voice(self, voice: str | None) -> str:
        """Validate a voice name's form and select it; InputError when unknown."""
        name = DEFAULT_VOICE if voice is None else str(voice).strip()
        if not _VOICE_NAME.match(name) or ".." in name:
            raise InputError(f"invalid espeak voice name {name!r}: use a language or voice such as 'en-us', 'de', "
                             "'gmw/en-GB-x-rp' or 'en-us+f3' (see --list-voices)")
        if "+" in name:
            variant = name.split("+", 1)[1]
            known = {v.identifier.lower() for v in self.voices() if v.variant}
            if variant.lower() not in known:
                raise InputError(f"unknown espeak variant {variant!r}; variants: {', '.join(sorted(known)[:20])}, ...")
        self.engine.set_voice(name)
        return name

    def synthesize(self, text: str, vad: VADInput = None, voice: str | None = None, seed: int = 0) -> Speech:
        """Speak `text` (sentence by sentence, each with its VAD); deterministic, so `seed` is unused."""
        name = self.check_voice(voice)

        def one(sentence: str, v: VAD) -> tuple[np.ndarray, Timeline]:
            return self.synthesize_sentence(sentence, v, name)

        return synthesize_sentences(text, vad, self.sample_rate, one)

    def synthesize_sentence(self, sentence: str, vad: VAD, voice: str = DEFAULT_VOICE) -> tuple[np.ndarray, Timeline]:
        """One sentence: engine synthesis with the mapped parameters, then WORLD reshaping; audio + timeline."""
        clean = sanitize(sentence)
        prosody = prosody_for(vad)
        s = engine_settings(prosody)
        with ENGINE_LOCK:  # voice and synthesis together: another thread may use another voice
            self.engine.set_voice(voice)
            raw, events = self.engine.synth(clean, s.rate, s.pitch, s.range, s.volume)
        audio = raw.astype(np.float32) / 32768.0
        audio = express(audio, self.sample_rate, s.world, self.world)
        peak = float(np.max(np.abs(audio))) if audio.size else 0.0
        if peak > 0.99:  # resynthesis can overshoot the engine's peaks a little; never clip
            audio *= 0.99 / peak
        timeline = events_to_timeline(events, clean, audio.size, self.sample_rate)
        log.debug("sentence %r: %s -> %s", sentence[:40], prosody.as_dict(), s)
        return audio, timeline
