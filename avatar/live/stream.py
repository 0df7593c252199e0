"""The live engine: lines of text (or recorded speech) in; frames (VMC, WebSocket) and audio out on one clock.

Threads (none of them waits on a receiver):
- producer: per line, emotion per sentence (avatar.emotion, unless the line gives its VAD), then per
  sentence: speech (avatar.tts), procedural face + body (the teachers, a few ms), placed on the schedule at
  once, so the first frame of a line goes out as soon as its first sentence is spoken by the TTS;
  a line of audio (`say_audio`, a recording or another TTS) is cut into chunks at quiet moments instead,
  each read by the viseme network (avatar.face.viseme_net) for an estimated timeline the teachers follow;
- upgrader: the diffusion models (generate_face with the timeline, generate_gesture) for each placed
  sentence; their motion replaces the procedural one, crossfaded if the sentence already started;
- frame loop: FrameClock at `fps`; composes idle + clips (avatar.live.motion), hands the frame and the
  frame's audio samples to every sink (VMC sender, WebSocket hub, WAV writer, local player);
- idle: makes idle blocks ahead (motion.IdleSource).

Sinks have two methods, `frame(LiveFrame)` and `audio(first_sample, float32 samples)`, and must not block.
"""

from __future__ import annotations

import logging
import math
import queue
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

from avatar.errors import InputError, ModelError
from avatar.live.clock import FrameClock, lower_thread_priority
from avatar.live.control import parse_control
from avatar.live.motion import MOTION_FPS, Clip, IdleSource, Mood, Schedule, compose
from avatar.types import VAD, EmotionSegment, EmotionTrack

if TYPE_CHECKING:
    from avatar.live.frames import LiveFrame
    from avatar.types import Timeline

log = logging.getLogger(__name__)

MAX_PENDING_LINES = 64
#: Longest audio line we accept (seconds): a minute of speech is a long line; ten is a mistake.
MAX_AUDIO_LINE_SECONDS = 600.0
#: Audio lines are said in chunks of at most this many seconds (the first shorter, so it starts sooner).
AUDIO_FIRST_CHUNK, AUDIO_CHUNK = 2.0, 6.0


class Sink(Protocol):
    """Where frames and audio go."""

    def frame(self, frame: LiveFrame) -> None:
        """Take one frame (must not block)."""

    def audio(self, first_sample: int, samples: np.ndarray) -> None:
        """Take the samples [first_sample, first_sample + len) of the stream's audio (must not block)."""


@dataclass
class StreamConfig:
    """How the live stream runs."""

    fps: float = 60.0
    seed: int = 0
    voice: str | None = None
    backend: str = "piper"  # avatar.tts.base.DEFAULT_BACKEND: the neural voice, eSpeak NG for other voices
    motion: str = "auto"  # "model", "procedural", or "auto" (the models when their weights exist)
    face_model: Path | None = None
    gesture_model: Path | None = None
    model_steps: int | None = None  # denoising steps of the diffusion models (None: their defaults, 10)
    vad: VAD | None = None  # VAD for lines that give none; None reads it from the text
    transition: float = 0.8  # seconds the emotion takes to ease between lines
    lead: float = 0.02  # seconds between a clip being ready and its start (at least one frame + 5 ms)

    def __post_init__(self) -> None:
        from avatar.types import check_seed

        self.seed = check_seed(self.seed)
        if self.model_steps is not None and not 1 <= int(self.model_steps) <= 100:
            raise InputError(f"model steps must be in 1..100, got {self.model_steps!r}")
        if self.motion not in ("auto", "model", "procedural"):
            raise InputError(f"motion must be auto, model or procedural, got {self.motion!r}")
        if not math.isfinite(float(self.fps)) or not 1 <= float(self.fps) <= 240:
            raise InputError(f"fps must be in [1, 240], got {self.fps!r}")


@dataclass
class LineRequest:
    """One line to say."""

    line: int
    text: str
    vad: VAD | None
    epoch: int
    wall: float  # monotonic time it was asked for
    audio: np.ndarray | None = None  # an audio line: float32 mono samples at `audio_rate` (text is a label)
    audio_rate: int = 0


@dataclass
class Stats:
    """Counters and timings the benchmark and the CLI report."""

    frames: int = 0
    skipped: int = 0
    late_max: float = 0.0
    late_frames: list[tuple[float, float]] = field(default_factory=list)  # (stream time, s late) when > 1 frame
    first_frame_latency: dict[int, float] = field(default_factory=dict)  # line -> s from say() to its first frame
    first_audio_duration: dict[int, float] = field(default_factory=dict)  # line -> first chunk's audio (s)
    first_start: dict[int, float] = field(default_factory=dict)  # line -> stream time its first chunk starts
    emotion_seconds: list[float] = field(default_factory=list)  # per sentence (text emotion model)
    tts_seconds: list[float] = field(default_factory=list)
    procedural_seconds: list[float] = field(default_factory=list)
    model_seconds: list[float] = field(default_factory=list)
    model_late: int = 0  # model motion that arrived after its chunk had started (crossfaded in)
    model_skipped: int = 0  # chunks over (or stopped) before the upgrader reached them: procedural only
    errors: list[str] = field(default_factory=list)


#: A first sentence with at least this many words is split at its first clause boundary (see below).
SPLIT_MIN_WORDS = 10


def first_clause_split(sentence: str, min_words: int = 3) -> list[str]:
    """A long sentence split after its first clause (',', ';', ':', a dash), punctuation kept; else [sentence].

    Speech for the first chunk of a line is on the critical path of the first frame: TTS time grows with the
    text, so a long first sentence is said as two chunks. The boundary keeps its punctuation, so eSpeak gives
    the first part the continuation intonation and short pause of a clause, as in the whole sentence.
    """
    import re

    words = sentence.split()
    if len(words) < SPLIT_MIN_WORDS:
        return [sentence]
    for m in re.finditer(r"[,;:]\s|\s[-\u2013\u2014]\s", sentence):
        head, tail = sentence[:m.end()].strip(), sentence[m.end():].strip()
        if len(head.split()) >= min_words and len(tail.split()) >= min_words:
            return [head, tail]
    return [sentence]


def audio_chunks(n: int, sample_rate: int, first: float = AUDIO_FIRST_CHUNK, rest: float = AUDIO_CHUNK,
                 audio: np.ndarray | None = None) -> list[tuple[int, int]]:
    """Sample ranges [a, b) that cut n samples of speech into chunks of at most `first` s, then `rest` s.

    The analogue of first_clause_split for audio: a short first chunk starts sooner. Each cut falls on the
    quietest 20 ms of the last third of its window (a pause between words), when `audio` is given.
    """
    hop = max(1, int(sample_rate * 0.02))
    out, a = [], 0
    while a < n:
        limit = int((first if not out else rest) * sample_rate)
        if n - a <= limit:
            out.append((a, n))
            break
        lo = a + limit * 2 // 3
        b = a + limit
        if audio is not None and b - lo >= hop:
            seg = np.asarray(audio[lo:b], dtype=np.float32)
            m = (b - lo) // hop
            energy = (seg[:m * hop].reshape(m, hop) ** 2).sum(axis=1)
            b = lo + int(np.argmin(energy)) * hop + hop // 2
        out.append((a, b))
        a = b
    return out


class LiveStream:
    """Text in, frames and audio out in real time; see the module docstring for the threads."""

    def __init__(self, config: StreamConfig | None = None, sinks: list[Sink] | None = None) -> None:
        """Set up (nothing runs until start())."""
        self.config = config or StreamConfig()
        self.sinks: list[Sink] = list(sinks or [])
        self.stats = Stats()
        self.mood = Mood()
        self.idle = IdleSource(self.mood, seed=self.config.seed)
        self.schedule = Schedule()
        self._requests: queue.Queue[LineRequest | None] = queue.Queue(maxsize=MAX_PENDING_LINES)
        self._upgrades: queue.Queue[tuple | None] = queue.Queue()
        self._closing = threading.Event()
        self._started = threading.Event()
        self._epoch = 0
        self._next_line = 0
        self._pending = 0  # lines asked for and not yet placed
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self.clock: FrameClock | None = None
        self.backend = None
        self.sample_rate = 0
        self.face_net = None
        self.gesture_net = None
        self.lip_net = None  # the viseme network: estimated timelines for audio lines (None: weights missing)
        self.analyzer = None

    # ---------------------------------------------------------------- setup

    def load(self) -> None:
        """Load the TTS backend, the emotion analyzer and (per config.motion) the motion models; warm them up."""
        from avatar.tts import get_backend

        cfg = self.config
        self.backend = get_backend(cfg.backend)
        if cfg.voice is not None and hasattr(self.backend, "check_voice"):
            self.backend.check_voice(cfg.voice)
        warm = self.backend.synthesize("Hello.", VAD.neutral(), cfg.voice)  # first call loads the voice
        self.sample_rate = int(warm.sample_rate)
        if cfg.vad is None:
            from avatar.emotion import default_analyzer

            self.analyzer = default_analyzer()
            self.analyzer.analyze("Hello.")
        self._load_models()
        from avatar.face.viseme_net import load_viseme_net

        try:  # a few ms: loaded up front so that the first audio line is not slower than the others
            self.lip_net = load_viseme_net()
        except ModelError as exc:
            log.warning("live: %s; audio lines will move the mouth only with the motion models", exc)
        from avatar.face.teacher import teacher_motion as face_teacher
        from avatar.gesture.teacher import teacher_motion as body_teacher

        face_teacher(warm.timeline, VAD.neutral(), fps=MOTION_FPS)  # first calls import and warm scipy
        body_teacher(warm.audio, VAD.neutral(), sr=self.sample_rate, fps=MOTION_FPS, timeline=warm.timeline)
        if self.models:  # the first call imports torch/diffusers and builds the schedulers: not on line one
            from avatar.face.generate import generate_face
            from avatar.gesture.generate import generate_gesture

            t0 = time.perf_counter()
            generate_face(warm.audio, self.sample_rate, VAD.neutral(), timeline=warm.timeline, model=self.face_net)
            generate_gesture(warm.audio, self.sample_rate, VAD.neutral(), model=self.gesture_net,
                             timeline=warm.timeline)
            log.info("live: models warmed up in %.2f s", time.perf_counter() - t0)
        self.idle.block(0)

    def _load_models(self) -> None:
        from avatar.face.generate import load_face_model
        from avatar.gesture.generate import load_gesture_model
        from avatar.weights import resolve

        cfg = self.config
        if cfg.motion == "procedural":
            return
        face_dir = resolve("face", cfg.face_model)
        gest_dir = resolve("gesture", cfg.gesture_model)
        try:
            self.face_net = load_face_model(face_dir)
            self.gesture_net = load_gesture_model(gest_dir)
        except ModelError as exc:
            if cfg.motion == "model":
                raise
            self.face_net = self.gesture_net = None
            log.warning("live: %s; streaming procedural motion only (--motion procedural silences this)", exc)
            return
        log.info("live: motion models from %s and %s", face_dir, gest_dir)

    def start(self) -> None:
        """Load (if not yet), then start the producer, upgrader and frame threads; returns once frames flow."""
        if self.backend is None:
            self.load()
        for name, target in (("live-producer", self._produce), ("live-upgrader", self._upgrade),
                             ("live-frames", self._frames)):
            th = threading.Thread(target=target, name=name, daemon=True)
            th.start()
            self._threads.append(th)
        if not self._started.wait(30.0):
            raise ModelError("the live frame loop did not start")

    @property
    def models(self) -> bool:
        """True when the diffusion models drive the motion (else procedural only)."""
        return self.face_net is not None and self.gesture_net is not None

    # ---------------------------------------------------------------- control

    def say(self, text: str, vad: VAD | None = None) -> int:
        """Queue a line (InputError when empty, too long or the queue is full); returns its line number."""
        from avatar.tts.base import check_tts_text

        if not isinstance(text, str) or not text.strip():
            raise InputError("nothing to say: the line is empty")
        check_tts_text(text)
        return self._queue(text=text, vad=vad)

    def _queue(self, **fields: object) -> int:
        with self._lock:
            line = self._next_line
            self._next_line += 1
            req = LineRequest(line=line, epoch=self._epoch, wall=time.monotonic(), **fields)  # type: ignore[arg-type]
            self._pending += 1
        try:
            self._requests.put_nowait(req)
        except queue.Full:
            with self._lock:
                self._pending -= 1
            raise InputError(f"too many lines waiting ({MAX_PENDING_LINES}); wait or send a stop") from None
        return line

    def say_audio(self, audio: np.ndarray, sample_rate: int, vad: VAD | None = None, label: str = "audio") -> int:
        """Queue recorded speech as a line (float mono samples; InputError when empty, broken, over
        MAX_AUDIO_LINE_SECONDS or the queue is full); its VAD is `vad`, else config.vad, else the current mood."""
        from avatar.audio import to_mono

        a = np.asarray(audio)
        if a.dtype.kind != "f":
            raise InputError(f"audio must be float samples in [-1, 1], got dtype {a.dtype}")
        if isinstance(sample_rate, bool) or not isinstance(sample_rate, (int, np.integer)) \
                or not 8000 <= int(sample_rate) <= 192000:
            raise InputError(f"sample rate must be an integer in [8000, 192000], got {sample_rate!r}")
        a = np.ascontiguousarray(to_mono(a), dtype=np.float32)
        if a.size == 0:
            raise InputError("nothing to say: the audio is empty")
        if not np.isfinite(a).all():
            raise InputError("the audio has NaN or infinite samples")
        if a.size > MAX_AUDIO_LINE_SECONDS * int(sample_rate):
            raise InputError(f"the audio lasts {a.size / int(sample_rate):.0f} s; a line takes at most "
                             f"{MAX_AUDIO_LINE_SECONDS:.0f} s")
        return self._queue(text=f"<{label}, {a.size / int(sample_rate):.1f} s>", vad=vad,
                           audio=np.clip(a, -1.0, 1.0), audio_rate=int(sample_rate))

    def set_emotion(self, vad: VAD, transition: float | None = None) -> None:
        """Ease the mood (idle expression and posture, and lines without their own VAD) towards `vad` now."""
        tr = self.config.transition if transition is None else float(transition)
        self.mood.set(vad, self.now(), tr)

    def stop_speech(self) -> int:
        """Stop what is being said (fade out) and drop every queued line; returns how many clips were cut."""
        with self._lock:
            self._epoch += 1
        dropped = 0
        while True:
            try:
                item = self._requests.get_nowait()
            except queue.Empty:
                break
            if item is not None:
                dropped += 1
        with self._lock:
            self._pending -= dropped
        return self.schedule.cut(self.now() + 1.0 / self.config.fps) + dropped

    def handle_control(self, msg: object, files: bool = False) -> dict:
        """Apply a control message (str JSON or dict); returns the acknowledgement; InputError when malformed.

        files: whether an 'audio' message may read a file on this machine (stdin: yes; the WebSocket, which
        others may reach, no)."""
        c = parse_control(msg)
        if c["type"] == "say":
            line = self.say(c["text"], c["vad"])
            return {"type": "ok", "request": "say", "line": line}
        if c["type"] == "audio":
            if not files:
                raise InputError("'audio' reads a file on this machine: it is accepted on stdin, not over the "
                                 "WebSocket")
            from avatar.audio import load_audio

            # InputError for a missing or broken file, or one over a line's length (from its header, before decoding)
            samples, sr = load_audio(c["path"], max_seconds=MAX_AUDIO_LINE_SECONDS)
            line = self.say_audio(samples, sr, c["vad"], label=Path(c["path"]).name)
            return {"type": "ok", "request": "audio", "line": line}
        if c["type"] == "emotion":
            base = self.mood.target()
            vad = c["vad"]
            self.set_emotion(vad if vad is not None else base, c["transition"])
            return {"type": "ok", "request": "emotion"}
        n = self.stop_speech()
        return {"type": "ok", "request": "stop", "stopped": n}

    def now(self) -> float:
        """Current stream time (s); 0 before the clock starts."""
        return self.clock.stream_time() if self.clock is not None else 0.0

    def drained(self) -> bool:
        """True when no line is waiting and nothing is being said."""
        with self._lock:
            pending = self._pending
        return pending == 0 and not self.schedule.busy(self.now())

    def wait_drained(self, timeout: float | None = None) -> bool:
        """Block until drained() (True) or the timeout (False)."""
        end = None if timeout is None else time.monotonic() + timeout
        while not self.drained():
            if self._closing.is_set() or (end is not None and time.monotonic() > end):
                return self.drained()
            time.sleep(0.02)
        return True

    def close(self) -> None:
        """Stop every thread (the frame loop ends after its current frame)."""
        self._closing.set()
        try:
            self._requests.put_nowait(None)  # wakes the producer; when the queue is full it sees _closing
        except queue.Full:
            pass
        self._upgrades.put(None)
        for th in self._threads:
            th.join(timeout=5.0)
        self.idle.close()

    # ---------------------------------------------------------------- threads

    def _line_chunks(self, req: LineRequest):  # noqa: ANN202 - a generator of (text, VAD)
        """The line's speech chunks with their VAD, each computed just before it is needed (lazily)."""
        from avatar.emotion.sentences import split_sentences

        for i, sentence in enumerate(s.text for s in split_sentences(req.text)):
            if req.vad is not None:
                vad = req.vad
            elif self.config.vad is not None or self.analyzer is None:
                vad = self.config.vad or self.mood.target()
            else:
                t = time.perf_counter()
                vad = self.analyzer.vad_batch([sentence])[0]
                self.stats.emotion_seconds.append(time.perf_counter() - t)
            for chunk in (first_clause_split(sentence) if i == 0 else [sentence]):
                yield chunk, vad

    def _produce(self) -> None:
        while not self._closing.is_set():
            req = self._requests.get()
            if req is None:
                break
            try:
                self._produce_line(req)
            except Exception as exc:  # noqa: BLE001 - a bad line must not end the stream
                log.error("live: line %d failed: %s", req.line, exc)
                self.stats.errors.append(f"line {req.line}: {exc}")
            finally:
                with self._lock:
                    self._pending -= 1

    def _speech_chunks(self, req: LineRequest):  # noqa: ANN202 - a generator, see _produce_line
        """A text line's chunks, each synthesised just before it is placed."""
        for text, vad in self._line_chunks(req):
            if req.epoch != self._epoch or self._closing.is_set():
                return  # stopped while waiting
            t0 = time.perf_counter()
            speech = self.backend.synthesize(text, vad, self.config.voice, seed=self.config.seed)
            audio = speech.audio
            if speech.sample_rate != self.sample_rate:
                from avatar.audio import resample

                audio = resample(audio, speech.sample_rate, self.sample_rate)
            yield text, vad, audio, speech.timeline, True, time.perf_counter() - t0

    def _audio_chunks(self, req: LineRequest):  # noqa: ANN202 - a generator, see _produce_line
        """An audio line's chunks, cut at pauses, each with the timeline the viseme network reads from it."""
        from avatar.types import Timeline

        sr = self.sample_rate
        audio = req.audio
        if req.audio_rate != sr:
            from avatar.audio import resample

            audio = resample(audio, req.audio_rate, sr)
        vad = req.vad if req.vad is not None else (self.config.vad if self.config.vad is not None
                                                    else self.mood.target())
        for a, b in audio_chunks(audio.size, sr, audio=audio):
            if req.epoch != self._epoch or self._closing.is_set():
                return
            t0 = time.perf_counter()
            seg = audio[a:b]
            if self.lip_net is not None:
                from avatar.face.viseme_net import timeline_from_audio

                timeline = timeline_from_audio(self.lip_net, seg, sr)
            else:  # no viseme network: the procedural mouth stays closed (the motion models still move it)
                timeline = Timeline(sample_rate=sr, duration=seg.size / sr)
            yield req.text, vad, seg, timeline, False, time.perf_counter() - t0

    def _produce_line(self, req: LineRequest) -> None:
        # Each chunk: (text, VAD, audio at the stream rate, timeline, whether the timeline is the speech's own
        # (our TTS) or estimated from the audio, seconds it took to make).
        chunks = self._audio_chunks(req) if req.audio is not None else self._speech_chunks(req)
        for k, chunk in enumerate(chunks):
            if req.epoch != self._epoch or self._closing.is_set():
                return
            self._place_chunk(req, k, *chunk)

    def _place_chunk(self, req: LineRequest, k: int, text: str, vad: VAD, audio: np.ndarray, timeline: Timeline | None,
                     spoken: bool, made_s: float) -> None:
        from avatar.face.teacher import teacher_motion as face_teacher
        from avatar.gesture.teacher import teacher_motion as body_teacher

        t1 = time.perf_counter()
        dur = audio.size / self.sample_rate
        # The emotion eases from the mood the previous line left to this chunk's over `transition` s.
        prev = self.mood.target()
        half = min(self.config.transition / 2, dur / 2)
        track = EmotionTrack(segments=[EmotionSegment(start=0.0, end=half, vad=prev),
                                       EmotionSegment(start=half, end=max(dur, half), vad=vad)],
                             transition=self.config.transition)
        seed = (self.config.seed + 7919 * req.line + 104729 * k) % (2**31)
        face = face_teacher(timeline, track, duration=dur, fps=MOTION_FPS, seed=seed)
        clip = Clip(line=req.line, sentence=k, text=text, start=0.0, audio=audio, sample_rate=self.sample_rate,
                    vad=vad, timeline=timeline, face=face, epoch=req.epoch, say_wall=req.wall)
        t2 = time.perf_counter()
        if req.epoch != self._epoch:
            return
        # Placed before its body is made: the clip starts one body-teacher run sooner, and the body fades
        # in from the idle (the sentence's first ~0.1 s is the voice's own onset silence anyway).
        # At least one frame ahead: the current frame's audio chunk already reaches one frame past now.
        start = self.schedule.place(clip, self.now() + max(self.config.lead, 1.0 / self.config.fps + 0.005))
        self.mood.set(vad, start + half, self.config.transition)
        # An estimated timeline has no stresses or word boundaries: the body finds its beats in the audio.
        known = timeline if spoken else None
        body = body_teacher(audio, track, sr=self.sample_rate, fps=MOTION_FPS, seed=seed, timeline=known)
        clip.set_body(body, self.now() + 1.0 / self.config.fps)
        t3 = time.perf_counter()
        if spoken:
            self.stats.tts_seconds.append(made_s)
            self.stats.procedural_seconds.append(t3 - t1)
        else:  # reading the visemes is part of making the procedural motion here
            self.stats.procedural_seconds.append(made_s + t3 - t1)
        if k == 0:
            self.stats.first_audio_duration[req.line] = dur
            self.stats.first_start[req.line] = start
        log.info("live: line %d chunk %d placed at %.2f s (%.2f s of speech; %s %.0f ms, face %.0f ms, "
                 "body %.0f ms)", req.line, k, start, dur, "tts" if spoken else "visemes", 1e3 * made_s,
                 1e3 * (t2 - t1), 1e3 * (t3 - t2))
        if self.models:
            self._upgrades.put((clip, track, known, seed))

    def _upgrade(self) -> None:
        from avatar.face.generate import generate_face
        from avatar.gesture.generate import generate_gesture

        lower_thread_priority(10)  # the models are a nice-to-have: the frame loop and the TTS come first

        while not self._closing.is_set():
            item = self._upgrades.get()
            if item is None:
                break
            clip, track, timeline, seed = item
            if clip.epoch != self._epoch or clip.end <= self.now():
                self.stats.model_skipped += 1
                continue  # stopped, or already over: nothing to improve
            try:
                t0 = time.perf_counter()
                steps = {} if self.config.model_steps is None else {"steps": int(self.config.model_steps)}
                face = generate_face(clip.audio, clip.sample_rate, track, timeline=timeline, seed=seed,
                                     model=self.face_net, **steps)
                body = generate_gesture(clip.audio, clip.sample_rate, track, seed=seed, model=self.gesture_net,
                                        timeline=timeline, **steps)
                self.stats.model_seconds.append(time.perf_counter() - t0)
                at = self.now() + 1.0 / self.config.fps
                if at > clip.start:
                    self.stats.model_late += 1
                clip.install(face, body, at)
            except Exception as exc:  # noqa: BLE001 - the procedural motion keeps playing
                log.error("live: model motion for line %d failed: %s", clip.line, exc)
                self.stats.errors.append(f"model line {clip.line}: {exc}")

    def _frames(self) -> None:
        cfg = self.config
        sr = self.sample_rate
        self.clock = clock = FrameClock(cfg.fps)
        a = 0  # next audio sample to hand out
        while not self._closing.is_set():
            tick = clock.wait()
            frame, clips = compose(tick.index, tick.time, self.idle, self.schedule, self.mood)
            # Audio runs from where the last chunk ended to the end of this frame: when the clock skipped
            # frames, their audio still goes out (one longer chunk), so the audio never has holes.
            b = int(round((tick.index + 1) * sr / cfg.fps))
            pcm = np.zeros(b - a, dtype=np.float32)
            for c in self.schedule.window(a / sr, b / sr):
                part = c.audio_slice(a, b)
                if part is not None:
                    off, seg = part
                    pcm[off:off + seg.size] += seg
            for sink in self.sinks:
                try:
                    sink.audio(a, pcm)
                    sink.frame(frame)
                except Exception as exc:  # noqa: BLE001 - one broken sink must not stop the others
                    log.error("live: sink %s failed: %s", type(sink).__name__, exc)
            a = b
            now = time.monotonic()
            for c in clips:
                if c.first_frame_wall is None:
                    c.first_frame_wall = now
                    if c.sentence == 0 and c.line not in self.stats.first_frame_latency:
                        self.stats.first_frame_latency[c.line] = now - c.say_wall
            self.stats.frames += 1
            self.stats.skipped = clock.skipped
            self.stats.late_max = max(self.stats.late_max, tick.late)
            if tick.late > 1.0 / cfg.fps and len(self.stats.late_frames) < 10000:
                self.stats.late_frames.append((tick.time, tick.late))
            if tick.index % int(cfg.fps * 5) == 0:
                self.schedule.prune(tick.time)
            self._started.set()

