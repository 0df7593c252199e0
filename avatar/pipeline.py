"""The pipeline: text -> emotion -> speech + timeline -> face + body motion -> video and animation data.

    >>> from avatar.pipeline import say
    >>> result = say("Hello there! I'm so glad you came.", "hello.mp4", keep="hello_files")

`perform` does the work that needs no avatar (emotion, speech, face, body) and returns a `Performance`; given a
recording (`speech=recording(path)`) instead of our TTS, the avatar lip-syncs and gestures to it;
`render_video` turns a performance into an MP4 with an avatar; `export_animation` writes the animation data
(speech.wav, timeline.json, face.json/.csv, body.bvh, an animated .glb). `say` is the three in a row.
Models load once per process (`models()`), so a batch or a server pays for loading only once.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from avatar.errors import InputError, OutputError
from avatar.types import VAD, BodyMotion, EmotionSegment, EmotionTrack, FaceMotion, SentenceEmotion, Speech

if TYPE_CHECKING:
    from avatar.face.sampling import FaceDenoiserNet
    from avatar.tts.base import Backend
    from avatar.gesture.sampling import GestureDenoiserNet
    from avatar.render.frames import FrameSource
    from avatar.render.settings import RenderSettings

log = logging.getLogger(__name__)

#: progress(stage, fraction) with stage one of STAGES and fraction in [0, 1].
Progress = Callable[[str, float], None]
STAGES = ("emotion", "speech", "body", "face", "render")
VIDEO_FPS = 30.0


def __getattr__(name: str) -> Path:
    if name == "DEFAULT_AVATAR":  # the registry's default avatar, read when asked ($AVATAR_MODEL_AVATARS)
        from avatar.weights import default_avatar

        return default_avatar()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
DEFAULT_ANTIALIAS = "fxaa"  # = avatar.render.settings.DEFAULT_ANTIALIAS (not imported: say's CLI imports this early)
RENDER_AHEAD = 4  # frames rendered in a worker thread while the encoder works (about 5 % off a video's time)


@dataclass
class Performance:
    """Everything one line of text becomes before rendering: its emotion, speech and motion."""

    text: str
    sentences: list[SentenceEmotion]
    emotion: EmotionTrack
    speech: Speech
    face: FaceMotion
    body: BodyMotion
    seed: int = 0
    voice: str | None = None

    @property
    def duration(self) -> float:
        """Length of the speech in seconds."""
        return self.speech.duration


@dataclass
class SayResult:
    """What `say` made: the video, the performance behind it, the kept files and per-stage seconds."""

    video: Path
    performance: Performance
    files: dict[str, Path] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)


class _Models:
    """The face and gesture models and the speech backend, loaded on first use and shared by every call in this
    process."""

    _speech: "Backend | None" = None
    _speech_lock = threading.Lock()

    def speech(self) -> Backend:
        """The default speech backend (avatar.tts.get_backend()), made once: its neural voice loads on first use."""
        with self._speech_lock:
            if self._speech is None:
                from avatar.tts import get_backend

                type(self)._speech = get_backend()
            return self._speech

    def face(self, folder: str | os.PathLike[str] | None = None) -> FaceDenoiserNet:
        """The face model from `folder` (default: the registry's model_dir("face"))."""
        from avatar.face.generate import load_face_model
        from avatar.weights import cached, resolve

        return cached("face", resolve("face", folder), load_face_model)

    def gesture(self, folder: str | os.PathLike[str] | None = None) -> GestureDenoiserNet:
        """The gesture model from `folder` (default: the registry's model_dir("gesture"))."""
        from avatar.gesture.generate import load_gesture_model
        from avatar.weights import cached, resolve

        return cached("gesture", resolve("gesture", folder), load_gesture_model)


_MODELS = _Models()


def models() -> _Models:
    """The process-wide model cache."""
    return _MODELS


def prefetch(*, voice: str | None = None, speak: bool = True, face_model: str | os.PathLike[str] | None = None,
             gesture_model: str | os.PathLike[str] | None = None, avatar: object = None,
             read_avatar: bool = False) -> threading.Thread:
    """Load in a daemon thread what `perform` needs after the emotion stage: the neural voice (when `speak` and it
    speaks `voice`), the gesture model and the face model, then (`read_avatar`) `avatar` as `export_animation` reads
    it (avatar.render.avatars caches it; where render workers read the file, `say` itself never did); returns the
    started thread.

    Loading them is about 1.1 core-seconds (the voice's 63 MB graph 0.9), nearly all in onnxruntime's session set-up,
    which releases the GIL: `say` runs it beside the start-up and emotion stage, on the core they leave idle. Start
    it only after any render workers are forked (a second thread makes forking unsafe). A load that fails here is
    left to the stage that needs the model, which loads it again and reports the error there."""

    def work() -> None:
        loads: list[tuple[str, Callable[[], object]]] = []
        if speak:
            # engine_for loads the neural voice when it speaks `voice` (avatar.tts.piper); other backends have none.
            loads.append(("voice", lambda: getattr(models().speech(), "engine_for", lambda v: None)(voice)))
        loads += [("gesture model", lambda: models().gesture(gesture_model)),
                  ("face model", lambda: models().face(face_model))]
        if read_avatar:
            loads.append(("avatar", lambda: resolve_avatar(avatar)))
        for what, load in loads:
            t0 = time.perf_counter()
            try:
                load()
            except Exception as exc:  # noqa: BLE001 - the stage that needs it loads it again and raises there
                log.debug("prefetch: the %s did not load (%s); its stage will try again", what, exc)
            else:
                log.debug("prefetch: the %s loaded in %.2f s", what, time.perf_counter() - t0)

    thread = threading.Thread(target=work, name="avatar-prefetch", daemon=True)
    thread.start()
    return thread


class _Job:
    """`fn()` in a thread started now; `result()` joins it and returns its value or raises its exception."""

    def __init__(self, fn: Callable[[], object]) -> None:
        self._out: list = []
        self._err: list[BaseException] = []

        def run() -> None:
            try:
                self._out.append(fn())
            except BaseException as exc:  # noqa: BLE001 - handed to the caller of result()
                self._err.append(exc)

        self._thread = threading.Thread(target=run, name="avatar-face", daemon=True)
        self._thread.start()

    def join(self) -> None:
        """Wait for the thread to end."""
        self._thread.join()

    def result(self) -> Any:
        """fn's value, once it has returned (its exception, raised here, if it raised)."""
        self._thread.join()
        if self._err:
            raise self._err[0]
        return self._out[0]


def _tick(progress: Progress | None, stage: str, fraction: float) -> None:
    if progress is not None:
        progress(stage, float(fraction))


def _check_seed(seed: int) -> int:
    from avatar.types import check_seed

    return check_seed(seed)


def read_emotion(text: str, vad: VAD | None = None) -> list[SentenceEmotion]:
    """Per-sentence emotion of `text`: read by the emotion model, or `vad` for every sentence when given."""
    from avatar.emotion import analyze, label_for
    from avatar.tts.base import check_tts_text

    sentences = check_tts_text(text)  # the same split the speech uses, so sentence i is spoken as sentence i
    if vad is None:
        found = analyze(text)
        if len(found) != len(sentences):  # both use split_sentences; a mismatch is a bug, not bad input
            raise AssertionError(f"emotion found {len(found)} sentences, speech {len(sentences)}")
        return found
    label, conf = label_for(vad)
    return [SentenceEmotion(text=s.text, vad=vad, label=label, confidence=conf, start_char=s.start,
                            end_char=s.end) for s in sentences]


def emotion_track(sentences: list[SentenceEmotion], speech: Speech) -> EmotionTrack:
    """The sentences' VADs placed on the speech's time axis (one segment per spoken sentence)."""
    spans = speech.sentence_spans or ((0.0, speech.duration),)
    if len(spans) != len(sentences):
        # A backend that does not report sentences: spread them evenly (still ordered, still covering).
        edges = np.linspace(0.0, speech.duration, len(sentences) + 1)
        spans = tuple(zip(edges[:-1], edges[1:]))
    segs = [EmotionSegment(start=a, end=max(b, a), vad=s.vad) for (a, b), s in zip(spans, sentences)]
    return EmotionTrack(segments=segs)


def recording(path: str | os.PathLike[str], max_seconds: float | None = None) -> Speech:
    """A recorded line (WAV, FLAC, OGG or anything FFmpeg reads) as Speech with no timeline, for `perform`/`say`;
    longer than `max_seconds` (default and at most avatar.audio.MAX_AUDIO_SECONDS) is refused before decoding."""
    from avatar.audio import load_audio

    audio, sr = load_audio(path, max_seconds=max_seconds)  # InputError for a missing, empty, broken or over-long file
    return Speech(audio=audio, sample_rate=sr)


def _recorded_sentences(text: str | None, vad: VAD | None, speech: Speech) -> tuple[list[SentenceEmotion], Speech]:
    """The emotion of a recording: its text's sentences (read, or `vad`), spread over the audio by their length
    in characters; with no text one span, `vad` or neutral."""
    from avatar.emotion import label_for

    if text is None or not text.strip():
        v = vad if vad is not None else VAD.neutral()
        label, conf = label_for(v)
        sentences = [SentenceEmotion(text="", vad=v, label=label, confidence=conf)]
        log.info("emotion: %s (a recording without its text%s)", label, "" if vad is not None else ": neutral")
    else:
        sentences = read_emotion(text, vad)
    weights = np.array([max(1, len(s.text)) for s in sentences], dtype=np.float64)
    edges = np.concatenate([[0.0], np.cumsum(weights) / weights.sum()]) * speech.duration
    spans = tuple((float(a), float(b)) for a, b in zip(edges[:-1], edges[1:]))
    return sentences, Speech(audio=speech.audio, sample_rate=speech.sample_rate, timeline=speech.timeline,
                             sentence_spans=spans)


def _check_perform(text: str | None, speech: Speech | None, vad: VAD | None, voice: str | None, seed: int) -> int:
    """The seed, after checking perform's arguments (InputError)."""
    seed = _check_seed(seed)
    if vad is not None and not isinstance(vad, VAD):
        raise InputError(f"vad must be a VAD or None, got {type(vad).__name__}")
    if speech is not None and not isinstance(speech, Speech):
        raise InputError(f"speech must be a Speech (avatar.pipeline.recording) or None, got {type(speech).__name__}")
    if speech is not None and voice is not None:
        raise InputError("a voice applies to our speech synthesis, not to a recording")
    if speech is None and text is None:
        raise InputError("nothing to say: give the text, or a recording")
    return seed


def perceive(text: str | None, *, speech: Speech | None = None, vad: VAD | None = None,
             progress: Progress | None = None) -> tuple[list[SentenceEmotion], Speech | None]:
    """The emotion stage: per-sentence emotion of `text` (or `vad` for each); for a recording, the sentences spread
    over its audio and the recording with those spans (else `speech` as given: None)."""
    _tick(progress, "emotion", 0.0)
    if speech is not None:
        sentences, speech = _recorded_sentences(text, vad, speech)
    else:
        sentences = read_emotion(text or "", vad)
    _tick(progress, "emotion", 1.0)
    log.info("emotion: %s", "; ".join(f"{s.label} {s.vad.valence:+.2f}/{s.vad.arousal:+.2f}/{s.vad.dominance:+.2f}"
                                      for s in sentences))
    return sentences, speech


def perform(text: str | None, *, speech: Speech | None = None, vad: VAD | None = None, voice: str | None = None,
            seed: int = 0, face_model: str | os.PathLike[str] | None = None,
            gesture_model: str | os.PathLike[str] | None = None, face_guidance: float | None = None,
            body_guidance: float | None = None, progress: Progress | None = None,
            sentences: list[SentenceEmotion] | None = None) -> Performance:
    """Text to a performance: per-sentence emotion, emotional speech with its timeline, face and body motion.

    sentences: the emotion stage's result (`perceive`), when the caller ran it already (then `speech` is the
    recording it returned, or None).
    speech: a recording to perform instead of synthesising `text` (see `recording`); `text`, optional then, is
    what it says (emotion per sentence, subtitles), and the lips and beats are read from the audio alone.
    face_guidance / body_guidance set each diffusion model's classifier-free guidance on VAD (None: the
    model's default; more exaggerates the emotion). They are separate because the two models are."""
    from avatar.face.generate import generate_face
    from avatar.gesture.generate import generate_gesture
    from avatar.rig.kinematics import head_direction, resample_motion

    seed = _check_perform(text, speech, vad, voice, seed)
    if sentences is None:
        sentences, speech = perceive(text, speech=speech, vad=vad, progress=progress)
    _tick(progress, "speech", 0.0)
    if speech is None:
        speech = models().speech().synthesize(text, [s.vad for s in sentences], voice, seed=seed)
    _tick(progress, "speech", 1.0)
    track = emotion_track(sentences, speech)
    # The body's posture turns the head (a sad slump bows it), and the face's eyes counter that turn to keep
    # looking at the partner (face.teacher.compose_face): the face needs the body only after its diffusion model
    # has sampled, so it samples in a thread while the body is made here (each model is one onnxruntime session
    # on one thread, which releases the GIL; both use their own seeded generators: the same result as in turn).
    body_net = models().gesture(gesture_model)
    face_net = models().face(face_model)
    fps = float(face_net.config.fps)
    made: list[BodyMotion] = []
    body_ready = threading.Event()

    def body_head() -> np.ndarray | None:
        body_ready.wait()
        if not made:  # the body failed: its error is raised by the main thread
            raise InputError("no body motion to turn the head with")
        body = made[0]
        return head_direction(body if abs(body.fps - fps) < 1e-9 else resample_motion(body, fps))

    face_args = {} if face_guidance is None else {"guidance": face_guidance}
    face_job = _Job(lambda: generate_face(speech.audio, speech.sample_rate, track, timeline=speech.timeline,
                                          seed=seed, model=face_net, body_head=body_head, **face_args))
    try:
        _tick(progress, "body", 0.0)
        made.append(generate_gesture(speech.audio, speech.sample_rate, track, seed=seed, model=body_net,
                                     timeline=speech.timeline,
                                     **({} if body_guidance is None else {"guidance": body_guidance})))
        body_ready.set()
        _tick(progress, "body", 1.0)
        _tick(progress, "face", 0.0)
        body, face = made[0], face_job.result()
    finally:
        # Whatever goes up (the body's error, a render worker's failure reported at a tick, Ctrl-C), the face
        # thread ends first: a daemon thread still inside onnxruntime at interpreter exit can crash the exit.
        body_ready.set()  # without a body, body_head raises and the thread ends there
        face_job.join()
    _tick(progress, "face", 1.0)
    return Performance(text=text or "", sentences=sentences, emotion=track, speech=speech, face=face, body=body,
                       seed=seed, voice=voice)


def _subtitles(perf: Performance) -> list[tuple[float, float, str]]:
    return [(seg.start, seg.end, s.text) for seg, s in zip(perf.emotion.segments, perf.sentences)]


def resolve_avatar(avatar: "str | os.PathLike[str] | object | None"):  # noqa: ANN201 - an Avatar
    """An Avatar: the default one, a loaded Avatar as is, or one loaded from a .glb/.vrm/.gltf path."""
    from avatar.render.renderer import resolve_avatar as resolve

    return resolve(avatar)


def check_video_settings(out: str | os.PathLike[str], width: int, height: int, framing: str,
                         antialias: str = DEFAULT_ANTIALIAS) -> Path:
    """The output path, after checking it is an .mp4 and the size and framing are ones we render (video_settings)."""
    video_settings(width, height, framing, antialias)
    return _video_path(out)


def _video_path(out: str | os.PathLike[str]) -> Path:
    out = Path(out)
    if out.suffix.lower() != ".mp4":
        raise InputError(f"the video must be an .mp4 file, got {out.name!r}")
    if out.is_dir():
        raise InputError(f"{str(out)!r} is a folder")
    return out


def video_settings(width: int, height: int, framing: str, antialias: str = DEFAULT_ANTIALIAS) -> "RenderSettings":
    """The RenderSettings of a video: avatar.render.settings' checks, and an even size in [64, 2160] (H.264 with
    yuv420p needs even sizes)."""
    from avatar.render.settings import RenderSettings

    settings = RenderSettings.make(width=width, height=height, framing=framing, antialias=antialias)
    for name, v in (("width", width), ("height", height)):
        if not 64 <= int(v) <= 2160 or int(v) % 2:
            raise InputError(f"{name} must be an even number of pixels in [64, 2160], got {v!r}")
    return settings


def frame_source(avatar: object, settings: "RenderSettings", workers: int, *,
                 required: bool = False) -> "FrameSource":
    """Where a video's frames are made: `workers` render processes (avatar.render.pool.RenderPool, started now) when
    more than one, else this process (avatar.render.frames.LocalFrames, reading RENDER_AHEAD frames ahead in a
    thread). When the pool cannot start (e.g. a thread started meanwhile) the frames are made here with a warning,
    unless `required` (the caller asked for workers): then the AvatarError is raised."""
    from avatar.errors import AvatarError
    from avatar.render.frames import LocalFrames

    if workers > 1:
        from avatar.render.pool import RenderPool

        try:
            return RenderPool(avatar, settings=settings, workers=workers)
        except AvatarError as exc:
            if required:
                raise
            log.warning("rendering in this process: %s", exc)
    return LocalFrames(avatar, settings, ahead=RENDER_AHEAD)


def render_video(perf: Performance, out: str | os.PathLike[str], *, avatar: object = None, width: int = 512,
                 height: int = 512, framing: str = "portrait", subtitles: bool = False,
                 vad_indicator: bool = False, antialias: str = DEFAULT_ANTIALIAS,
                 progress: Progress | None = None, pool: "FrameSource | None" = None) -> Path:
    """Render the performance with an avatar to an MP4 (H.264 + AAC, 30 fps), written atomically.

    `pool` (an avatar.render.frames.FrameSource for this avatar and settings, e.g. a RenderPool) makes the frames;
    None: this process."""
    from avatar.render.frames import LocalFrames, render_frames
    from avatar.render.video import write_mp4

    settings = video_settings(width, height, framing, antialias)
    out = _video_path(out)
    source = pool if pool is not None else LocalFrames(avatar, settings, ahead=RENDER_AHEAD)
    n = int(round(perf.duration * VIDEO_FPS))
    if n < 1:
        raise InputError("the speech is too short to make a video")

    frames = render_frames(None, perf.face, perf.body, fps=VIDEO_FPS, settings=settings, pool=source)
    vad_rows = perf.emotion.sample(VIDEO_FPS, n / VIDEO_FPS)[:n] if vad_indicator else None
    _tick(progress, "render", 0.0)
    path = write_mp4(out, frames, n, perf.speech.audio, perf.speech.sample_rate, fps=VIDEO_FPS,
                     subtitles=_subtitles(perf) if subtitles else None, vad=vad_rows,
                     progress=lambda f: _tick(progress, "render", min(f, 0.999)),
                     encoder_threads=1 if not isinstance(source, LocalFrames) else 0)
    _tick(progress, "render", 1.0)
    return path


#: What `export_animation` (say --keep) writes, by key.
KEEP_FILES = {"speech": "speech.wav", "timeline": "timeline.json", "emotion": "emotion.json", "face": "face.json",
              "face_csv": "face.csv", "body": "body.bvh", "glb": "animation.glb", "vrma": "animation.vrma"}


def check_outputs(out: str | os.PathLike[str], keep: str | os.PathLike[str] | None = None, *, force: bool = False,
                  out_flag: str = "the video", keep_flag: str = "the keep folder") -> None:
    """Check before any work that `say` can write the video and (with `keep`) every animation file: the folders are
    writable, nothing there is a folder, device or FIFO, nothing is read-only unless `force` (avatar.io)."""
    from avatar.io import check_output_dir, check_output_path

    check_output_path(out, out_flag, force=force)
    if keep is not None:
        root = check_output_dir(keep, keep_flag)
        for name in KEEP_FILES.values():
            check_output_path(root / name, f"{keep_flag} file", force=force)


def export_animation(perf: Performance, folder: str | os.PathLike[str], *, avatar: object = None) -> dict[str, Path]:
    """Write the animation data into `folder`: speech.wav, timeline.json, emotion.json, face.json, face.csv,
    body.bvh, animation.glb (the avatar with its face and body animation, plain glTF) and animation.vrma (the same
    performance as VRM Animation, for VRM players); every file atomic. For a recording
    the timeline is the one the viseme network estimates from the audio."""
    import json

    from avatar.audio import save_wav
    from avatar.face.livelink import write_livelink_csv
    from avatar.gesture.bvh import write_bvh
    from avatar.io import atomic_write_text, safe_join
    from avatar.render.animation import write_animated_avatar
    from avatar.render.vrm_animation import write_vrma

    root = Path(folder)
    try:
        root.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise InputError(f"{str(root)!r} is a file, not a folder") from None
    except OSError as exc:
        from avatar.errors import OutputError
        from avatar.io import describe_os_error

        raise OutputError(f"cannot create the folder {root}: {describe_os_error(exc)}") from exc
    files = {k: safe_join(root, name) for k, name in KEEP_FILES.items()}
    save_wav(files["speech"], perf.speech.audio, perf.speech.sample_rate)
    timeline = perf.speech.timeline if perf.speech.timeline is not None else _estimated_timeline(perf.speech)
    if timeline is not None:
        atomic_write_text(files["timeline"], timeline.to_json())
    else:
        files.pop("timeline")
    emotion = {"text": perf.text, "seed": perf.seed, "voice": perf.voice,
               "sentences": [{**s.to_record(), "start": seg.start, "end": seg.end}
                             for s, seg in zip(perf.sentences, perf.emotion.segments)]}
    atomic_write_text(files["emotion"], json.dumps(emotion, ensure_ascii=False, indent=1))
    perf.face.to_json(files["face"])
    write_livelink_csv(perf.face, files["face_csv"])
    write_bvh(files["body"], perf.body)
    write_animated_avatar(resolve_avatar(avatar), perf.face, perf.body, files["glb"])
    write_vrma(perf.face, perf.body, files["vrma"])
    return files


def _estimated_timeline(speech: Speech):  # noqa: ANN202 - a Timeline or None
    """For a recording: the timeline the viseme network reads from the audio (viseme runs as phonemes, stretches of
    speech as words), what a game engine's viseme lip sync takes; None without weights/lipsync."""
    from avatar.face.generate import lip_model
    from avatar.face.viseme_net import timeline_from_audio

    net = lip_model()  # the network generate_face loaded for this recording's lips (cached), or None with a warning
    if net is None:
        log.warning("no timeline.json for this recording: the viseme network (weights/lipsync) is missing")
        return None
    return timeline_from_audio(net, speech.audio, speech.sample_rate)


def say(text: str | None, out: str | os.PathLike[str], *, keep: str | os.PathLike[str] | None = None,
        avatar: object = None, vad: VAD | None = None, voice: str | None = None, seed: int = 0, width: int = 512,
        height: int = 512, framing: str = "portrait", subtitles: bool = False, vad_indicator: bool = False,
        antialias: str = DEFAULT_ANTIALIAS, progress: Progress | None = None,
        render_workers: int | None = None, pool: "FrameSource | None" = None, speech: Speech | None = None,
        force: bool = False) -> SayResult:
    """Text to an MP4 of the avatar saying it (and, with `keep`, the animation data beside it).

    speech: a recording (`recording(path)`) the avatar performs instead of our synthesis of `text` (see perform).

    render_workers: processes that render the frames (None: avatar.render.pool.default_workers(), 2-4 where
    forking is safe, else 1 = in this process). The workers start when the speech stage
    does and set up their renderers while the speech and motion are made (not during the emotion stage, whose
    model load uses both cores). Or pass a ready `pool` (an avatar.render.frames.FrameSource such as
    avatar.render.pool.RenderPool, for this avatar and settings; the caller closes it): the CLI starts one before
    its slow imports, on the core they leave idle.

    force: replace a read-only video or kept file (avatar.io.check_output_path); a folder, device or FIFO is never
    replaced. When writing fails (OutputError: a full disk), what was finished is kept: a failed video still gets
    the animation data into `keep`, a failed `keep` leaves the written video; the error says which."""
    settings = video_settings(width, height, framing, antialias)  # before any work, so a typo costs nothing
    out = _video_path(out)
    check_outputs(out, keep, force=force)  # an unwritable folder or a file that must not be replaced: before too
    if subtitles and (text is None or not text.strip()):
        raise InputError("subtitles need the text: give the words of the recording too")
    _check_perform(text, speech, vad, voice, seed)
    # A broken avatar file fails before the slow part too: read here, or, with a pool, by its workers (the pool has
    # checked the file's header; `timed` below raises what the workers found at the next stage).
    av = resolve_avatar(avatar) if pool is None else avatar
    workers = _render_workers(render_workers) if pool is None else 1
    source = pool  # the FrameSource: given, or chosen after the emotion stage
    timings: dict[str, float] = {}
    last = [time.perf_counter(), None]

    def timed(stage: str, fraction: float) -> None:
        now = time.perf_counter()
        if fraction == 0.0:
            if source is not None:
                source.check()  # a worker that could not read the avatar stops the job now, not after the motion
            last[:] = [now, stage]
        elif fraction >= 1.0 and last[1] == stage:
            timings[stage] = timings.get(stage, 0.0) + now - last[0]
        _tick(progress, stage, fraction)

    # With render workers on the other cores, NumPy's BLAS stays on one thread here. A second OpenBLAS thread
    # spins after each of the emotion model's small products, on the core a worker is setting up or rendering on:
    # for the bench line it cost 0.55-0.9 s of CPU and 0.2 s of wall time (five alternating runs each).
    from avatar.npnn import blas_limit

    # The voice, gesture and face models load in a thread beside the emotion stage (`prefetch`); where render
    # workers are still to be forked, only once they are (a second thread makes forking unsafe).
    warm = {"voice": voice, "speak": speech is None, "avatar": av, "read_avatar": keep is not None}
    loader = prefetch(**warm) if source is not None or workers == 1 else None
    try:
        log.debug("say: starting the stages")
        with blas_limit(1 if pool is not None or workers > 1 else None):
            sentences, heard = perceive(text, speech=speech, vad=vad, progress=timed)
            if source is None:
                # The render workers start after the emotion stage, whose model load uses both cores, and set up
                # their renderers while the speech and motion are made.
                source = frame_source(av, settings, workers, required=render_workers is not None)
            if loader is None:
                loader = prefetch(**warm)
            perf = perform(text, speech=heard, vad=vad, voice=voice, seed=seed, progress=timed, sentences=sentences)
            try:
                video = render_video(perf, out, avatar=av, width=width, height=height, framing=framing,
                                     subtitles=subtitles, vad_indicator=vad_indicator, antialias=antialias,
                                     progress=timed, pool=source)
            except OutputError as exc:
                raise OutputError(f"{exc}; {_keep_after_failed_video(perf, keep, av)}") from exc
    finally:
        if source is not None and source is not pool:  # a pool the caller gave stays open: it is theirs to close
            source.close()
        if loader is not None:  # never leave it inside onnxruntime while the process exits (after an error)
            loader.join()
    files: dict[str, Path] = {}
    if keep is not None:
        t0 = time.perf_counter()
        try:
            files = export_animation(perf, keep, avatar=av)
        except OutputError as exc:
            raise OutputError(f"{exc}; the video was written: {video}") from exc
        timings["export"] = time.perf_counter() - t0
    return SayResult(video=video, performance=perf, files=files, timings=timings)


def _keep_after_failed_video(perf: Performance, keep: str | os.PathLike[str] | None, avatar: object) -> str:
    """After the video could not be written: save the animation data into `keep` (when asked for) so the emotion,
    speech and motion work is not lost; returns what happened, for the error message."""
    if keep is None:
        return "nothing was written"
    try:
        export_animation(perf, keep, avatar=avatar)
    except (OutputError, InputError) as exc:
        return f"the animation data could not be kept either ({exc})"
    return f"the animation data was written to {keep}"


def _render_workers(workers: int | None) -> int:
    """Render processes for `say`: as asked, or (None) avatar.render.pool.default_workers()."""
    from avatar.render.pool import default_workers

    if workers is None:
        return default_workers()
    if isinstance(workers, bool) or not isinstance(workers, int) or not 1 <= workers <= 16:
        raise InputError(f"render_workers must be an integer in [1, 16], got {workers!r}")
    return workers
