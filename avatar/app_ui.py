"""The Gradio demo (`python app.py`): type a line, see its emotion, get the video, the audio and the animation data.

`build_demo(config)` makes the gr.Blocks; `launch(config, port=...)` serves it on localhost. The render is the
API endpoint `/say` (text in, video out; voice, avatar, emotion and seed are optional inputs), so scripts can
call it with gradio_client. Everything the app writes lives under one folder (`AppConfig.root`): Gradio's
upload/cache folder, which is the only folder it serves, and the per-request run folders. See docs/app.md.
"""

from __future__ import annotations

import html
import logging
import os
import re
import shutil
import tempfile
import threading
import time
import uuid
import zipfile
from collections import OrderedDict
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

from pydantic import ConfigDict, field_validator, model_validator

from avatar.app_readout import READOUT_CSS, LineEmotion, plan_emotions, readout_html
from avatar.errors import AvatarError, InputError
from avatar.types import VAD, Strict

if TYPE_CHECKING:
    from avatar.types import Speech

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[1]
EMOTION_AUTO = "from the text"
EMOTION_CUSTOM = "custom (sliders)"
VOICE_DEFAULT = "joe"
VARIANT_NONE = "none"
#: The demo renders on the CPU: keep the input to a few short lines.
MAX_CHARS = 600
MAX_LINES = 6
EXAMPLES = (
    "I can't believe we actually won the championship!",
    "I'm sorry. I really thought this would work out.",
    "Get out of my room, right now!",
    "Hi! Did you see the news?\nYes... I'm still shaking.\nWell, at least everyone is safe now.",
)


@dataclass(frozen=True)
class AppConfig:
    """Settings of one app instance; `root` holds everything it writes (default: a fresh temp folder)."""

    root: Path = field(default_factory=lambda: Path(os.environ.get("AVATAR_APP_DIR") or
                                                    tempfile.mkdtemp(prefix="avatar-app-")))
    width: int = 512
    height: int = 512
    framing: str = "portrait"
    concurrency: int = 1  # renders at the same time; the rest wait in Gradio's queue
    max_queue: int = 16
    max_upload_mb: int = 50
    max_cache_mb: int = 1024  # uploads are refused while Gradio's cache (uploads and served outputs) holds more
    keep_runs_s: float = 3600.0  # run folders older than this are removed on the next request
    render_workers: int | None = None  # None: spawned render workers, one per core (2-4), kept warm; 1: none
    max_recording_s: float = 120.0  # longest uploaded recording performed (the video takes about as long to make)

    @property
    def cache_dir(self) -> Path:
        """Gradio's upload and served-file folder (GRADIO_TEMP_DIR)."""
        return self.root / "cache"

    @property
    def runs_dir(self) -> Path:
        """Per-request output folders."""
        return self.root / "runs"


# ---------------------------------------------------------------------------------------------------
# Pure helpers (no Gradio): input parsing and checks
# ---------------------------------------------------------------------------------------------------

def parse_lines(text: str | None) -> list[str]:
    """The non-empty lines of the input, checked: InputError when empty, too long or too many lines."""
    from avatar.emotion.sentences import check_text

    if text is None or not str(text).strip():
        raise InputError("type a line of text first")
    text = check_text(str(text))
    if len(text) > MAX_CHARS:
        raise InputError(f"the text is {len(text)} characters; the demo takes at most {MAX_CHARS}")
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if len(lines) > MAX_LINES:
        raise InputError(f"{len(lines)} lines; the demo renders at most {MAX_LINES} lines of dialogue")
    return lines


def resolve_emotion(preset: str | None, valence: float | None, arousal: float | None,
                    dominance: float | None) -> VAD | None:
    """The emotion override: None for 'from the text', a label's VAD, or the sliders' VAD (checked)."""
    from avatar.emotion.labels import vad_for_label

    preset = (preset or EMOTION_AUTO).strip()
    if preset == EMOTION_AUTO:
        return None
    if preset == EMOTION_CUSTOM:
        vals = [0.0 if x is None else x for x in (valence, arousal, dominance)]
        try:
            return VAD(*(float(x) for x in vals))
        except (TypeError, ValueError) as exc:
            raise InputError(f"valence, arousal and dominance must be numbers in [-1, 1]: {exc}") from None
    return vad_for_label(preset)


def check_seed(seed: float | int | None) -> int:
    """The seed as an int in [0, 2**31) (avatar.types.check_seed; None is 0); InputError otherwise."""
    from avatar.types import check_seed as check

    if seed is None:
        return 0
    if isinstance(seed, str):
        try:
            seed = float(seed)
        except ValueError:
            raise InputError(f"seed must be a whole number, got {seed!r}") from None
    return check(seed)


def compose_voice(voice: str | None, variant: str | None) -> str | None:
    """Voice name with an optional eSpeak '+variant' (the backend checks that both exist; the neural voice takes
    no variant, so one chosen with it speaks eSpeak NG's US English in that variant)."""
    v = (voice or "").strip() or None
    var = (variant or "").strip()
    if v is None or not var or var == VARIANT_NONE:
        return v
    from avatar.tts.piper import VOICE_ALIASES

    if v.lower() in VOICE_ALIASES:
        v = "gmw/en-US"
    return f"{v}+{var}"


def _uploaded(path: str | os.PathLike[str] | None, what: str, max_mb: int) -> Path | None:
    """An uploaded file's path (None when nothing was uploaded), after checking it is there and not too big."""
    if path is None or str(path) == "":
        return None
    p = Path(path)
    if not p.is_file():
        raise InputError(f"the uploaded {what} file is missing; upload it again")
    size = p.stat().st_size
    if size > max_mb * 1024 * 1024:
        raise InputError(f"{p.name} is {size / 2**20:.1f} MB; uploaded {what} files are limited to {max_mb} MB")
    return p


def check_recording_upload(path: str | os.PathLike[str] | None, max_mb: int, max_s: float) -> Speech | None:
    """Load an uploaded (or microphone) recording as avatar.types.Speech, None when there is none: size, format
    and length checked."""
    from avatar.pipeline import recording

    p = _uploaded(path, "recording", max_mb)
    if p is None:
        return None
    # InputError for what is not readable audio or longer than max_s, which is checked from the file's header (and
    # while decoding where it does not say) before the audio fills memory.
    speech = recording(p, max_seconds=max_s)
    if speech.duration < 0.2:
        raise InputError("the recording is too short to perform (under 0.2 s)")
    return speech


def recording_plan(lines: list[str], override: VAD | None) -> list:
    """The readout's plan for a recording: its words' emotion when typed (one line), else the override or neutral."""
    from avatar.emotion import label_for

    if lines:
        return plan_emotions([" ".join(lines)], override)
    vad = override if override is not None else VAD.neutral()
    label, conf = label_for(vad)
    return [LineEmotion(text="(the recording)", vad=vad, label=label, confidence=conf,
                        source="override" if override is not None else "neutral")]


def check_avatar_upload(path: str | os.PathLike[str] | None, max_mb: int):  # noqa: ANN201 - Avatar | None
    """Load an uploaded avatar (None for the default): size and type checked, and a .vrm must be a VRM."""
    from avatar.render.avatar_file import load_avatar

    p = _uploaded(path, "avatar", max_mb)
    if p is None:
        return None
    if p.suffix.lower() not in (".glb", ".vrm"):
        raise InputError(f"upload a .glb or .vrm avatar, not {p.name!r}")
    avatar = load_avatar(p)
    if p.suffix.lower() == ".vrm" and avatar.vrm_version is None:
        raise InputError(f"{p.name} is a plain glTF file, not a VRM (it has no VRM or VRMC_vrm extension); "
                         "rename it to .glb or export it as VRM")
    return avatar


def describe_avatar(avatar) -> str:  # noqa: ANN001 - Avatar | None
    """One line for the UI about the avatar in use and what of it can move."""
    if avatar is None:
        return "Using the default avatar."
    kind = f"VRM {avatar.vrm_version}" if avatar.vrm_version else "glTF"
    face = {"arkit": "ARKit face shapes", "vrm": "VRM expressions", "none": "no face shapes (face stays still)"}
    text = f"**{html.escape(avatar.path.name)}** ({kind}): {face[avatar.face_mode]}"
    if avatar.missing_bones:
        text += f"; {len(avatar.missing_bones)} humanoid bones missing ({', '.join(avatar.missing_bones[:4])}…)"
    return text + "."


def voice_choices() -> list[tuple[str, str]]:
    """(label, voice id): the neural voice first (when installed), then every eSpeak NG voice, US English first."""
    from avatar.tts import get_backend

    infos = [v for v in get_backend().voices() if not v.variant]
    infos.sort(key=lambda v: (v.identifier != VOICE_DEFAULT, v.identifier != "gmw/en-US", v.name.lower()))
    return [(f"{v.name} ({v.identifier})", v.identifier) for v in infos]


def variant_choices() -> list[str]:
    """eSpeak NG voice variants (timbres such as f3 or m2) that can be added to any voice."""
    from avatar.tts import get_backend

    names = sorted({v.identifier for v in get_backend("espeak").voices() if v.variant}, key=str.lower)
    return [VARIANT_NONE, *names]


def prune_runs(runs_dir: Path, older_than_s: float) -> int:
    """Remove run folders older than `older_than_s`; returns how many went."""
    if not runs_dir.is_dir():
        return 0
    cutoff = time.time() - older_than_s
    gone = 0
    for d in runs_dir.iterdir():
        try:
            if d.is_dir() and not d.is_symlink() and d.stat().st_mtime < cutoff:
                shutil.rmtree(d, ignore_errors=True)
                gone += 1
        except OSError:  # another request removed it first
            continue
    return gone


def zip_files(files: dict[str, Path], out: Path) -> Path:
    """Zip the animation files (flat, their own names) atomically into `out`."""
    from avatar.io import atomic_path

    with atomic_path(out) as tmp, zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for path in files.values():
            zf.write(path, arcname=Path(path).name)
    return out


# ---------------------------------------------------------------------------------------------------
# The app: handlers and layout
# ---------------------------------------------------------------------------------------------------

def public_message(text: str, hide: tuple[Path, ...] = ()) -> str:
    """An error message as API clients and the page may read it: plain text (no HTML entities: gradio_client
    shows them as is, and the page sanitises what it renders), with `<` and `>` as ‹ › so that no text reads as
    markup, and no server paths: a file under one of `hide` (the app's folder) shows as its name, one in the
    checkout as its path there."""
    for root in hide:
        text = re.sub(re.escape(str(root)) + r"/(?:[^\s'\"]*/)?", "", text)
    text = text.replace(str(REPO_ROOT) + os.sep, "")
    return text.replace("<", "\u2039").replace(">", "\u203a")


@contextmanager
def user_errors(hide: tuple[Path, ...] = ()) -> Iterator[None]:
    """Show refused input and engine errors as messages (gr.Error, see public_message), never as tracebacks."""
    import gradio as gr

    try:
        yield
    except gr.Error:
        raise
    except InputError as exc:
        raise gr.Error(public_message(str(exc), hide), title="Input refused", print_exception=False) from None
    except AvatarError as exc:  # missing model, failed stage: the user cannot fix it, but should read why
        log.error("engine error: %s", exc)
        raise gr.Error(public_message(str(exc), hide), title="The engine could not do this",
                       print_exception=False) from None
    except Exception:  # a bug: log the traceback for the operator, show a short message to the user
        log.exception("request failed")
        raise gr.Error("Something went wrong while rendering; the server log has the details.",
                       print_exception=False) from None


class SayRequest(Strict):
    """What the page sends to `say`, checked once where it comes in: the lines (parse_lines), the emotion override
    (resolve_emotion), the seed (check_seed) and the voice (compose_voice). InputError with one line otherwise."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    text: str | None = None
    recording: bool = False  # a recording is performed: the text (its words) may then be empty
    voice: str | None = VOICE_DEFAULT
    variant: str | None = VARIANT_NONE
    emotion: str | None = EMOTION_AUTO
    valence: float | None = 0.0
    arousal: float | None = 0.0
    dominance: float | None = 0.0
    seed: int = 0
    lines: tuple[str, ...] = ()  # derived: the checked lines of `text`
    override: VAD | None = None  # derived: the emotion the page asks for, None to read it from the text
    voice_name: str | None = None  # derived: voice with its variant

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except InputError as exc:  # the page shows the reason itself, not the model's name
            raise InputError(str(exc).removeprefix(f"invalid {type(self).__name__}: ")) from None

    @field_validator("seed", mode="before")
    @classmethod
    def _seed(cls, v: object) -> int:
        return check_seed(v)  # type: ignore[arg-type]

    @model_validator(mode="before")
    @classmethod
    def _derive(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        for k in ("lines", "override", "voice_name"):
            if k in data:
                raise InputError(f"{k} is derived from the request, not given")
        text, recording = data.get("text"), bool(data.get("recording", False))
        lines = parse_lines(text) if not recording or (text and str(text).strip()) else []
        override = resolve_emotion(data.get("emotion", EMOTION_AUTO), data.get("valence", 0.0),
                                   data.get("arousal", 0.0), data.get("dominance", 0.0))
        voice = compose_voice(data.get("voice", VOICE_DEFAULT), data.get("variant", VARIANT_NONE))
        return {**data, "lines": tuple(lines), "override": override, "voice_name": voice}


class AvatarApp:
    """The demo's handlers, bound to one AppConfig; `build()` lays them out as a gr.Blocks."""

    def __init__(self, config: AppConfig | None = None) -> None:
        """Prepare the app's folders (nothing heavy loads until the first request)."""
        self.config = config or AppConfig()
        self.config.runs_dir.mkdir(parents=True, exist_ok=True)
        self.config.cache_dir.mkdir(parents=True, exist_ok=True)
        self._avatars: OrderedDict[tuple[str, int, float], Any] = OrderedDict()
        self._lock = threading.Lock()
        self._pool: Any = None  # avatar.render.pool.RenderPool for the last avatar used, kept between requests
        self._pool_key: tuple | None = None
        self._pool_lock = threading.Lock()  # held while a video renders in the pool

    def render_pool(self, avatar: Any = None) -> Any:
        """Lock and return the warm render pool for this avatar (started on first use), or None: workers off or
        not possible here, or the pool busy with another video. The caller renders, then calls release_pool().

        Why spawned workers: the server's threads rule out forking, and in a warm process the bench line took
        2.61 s with one renderer in the process against 1.87 s with a warm pool of two (bench/pipeline_bench.py)."""
        from avatar.render.pool import RenderPool, spawn_available, worker_count

        workers = self.config.render_workers or worker_count()
        if workers < 2 or not spawn_available() or not self._pool_lock.acquire(blocking=False):
            return None
        key = (str(avatar.path) if avatar is not None else None, self.config.width, self.config.height,
               self.config.framing)
        try:
            if self._pool is None or self._pool_key != key:
                self.close_pool(locked=True)
                self._pool = RenderPool(avatar, width=self.config.width, height=self.config.height,
                                        framing=self.config.framing, workers=workers, start="spawn")
                self._pool_key = key
            self._pool.check()
            return self._pool
        except AvatarError as exc:
            log.warning("rendering in this process: the render workers cannot start (%s)", exc)
            self.close_pool(locked=True)
            self._pool_lock.release()
            return None

    def release_pool(self, failed: bool = False) -> None:
        """Unlock the pool after a video; `failed` stops it (the next video starts a new one)."""
        if failed:
            self.close_pool(locked=True)
        self._pool_lock.release()

    def close_pool(self, locked: bool = False) -> None:
        """Stop the render workers (the app's shutdown; or a new avatar, with the lock held: locked=True)."""
        if not locked:
            self._pool_lock.acquire()
        try:
            if self._pool is not None:
                self._pool.close()
            self._pool, self._pool_key = None, None
        finally:
            if not locked:
                self._pool_lock.release()

    # -- handlers -------------------------------------------------------------------------------------

    def _avatar(self, path: str | None):  # noqa: ANN202 - Avatar | None
        """The uploaded avatar, loaded once per file (a few recent ones are kept)."""
        if not path:
            return None
        p = Path(path)
        st = p.stat() if p.is_file() else None
        key = (str(p), st.st_size if st else -1, st.st_mtime if st else -1.0)
        with self._lock:
            if key in self._avatars:
                self._avatars.move_to_end(key)
                return self._avatars[key]
        avatar = check_avatar_upload(p, self.config.max_upload_mb)
        with self._lock:
            self._avatars[key] = avatar
            while len(self._avatars) > 4:
                self._avatars.popitem(last=False)
        return avatar

    def _hidden(self) -> tuple[Path, ...]:
        """Folders whose paths error messages must not show (the app's own: uploads, cache, runs)."""
        root = self.config.root
        return (root.resolve(), root) if root.resolve() != root else (root,)

    def on_upload(self, path: str | None) -> tuple[Any, str]:
        """Check an avatar as soon as it is uploaded: keep it and describe it, or drop it with a warning."""
        import gradio as gr

        try:
            return gr.update(), describe_avatar(self._avatar(path))
        except InputError as exc:
            msg = public_message(str(exc), self._hidden())
            gr.Warning(msg, title="Avatar refused")
            return gr.update(value=None), describe_avatar(None) + " The upload was refused: " + html.escape(msg)
        except Exception:
            log.exception("avatar check failed")
            gr.Warning("This avatar could not be read.", title="Avatar refused")
            return gr.update(value=None), describe_avatar(None)

    def on_preset(self, preset: str) -> tuple[Any, Any, Any]:
        """Move the sliders to a preset's VAD (nothing changes for 'from the text' or 'custom')."""
        import gradio as gr

        from avatar.emotion.labels import LABEL_VAD

        if preset in LABEL_VAD:
            v = LABEL_VAD[preset]
            return gr.update(value=v.valence), gr.update(value=v.arousal), gr.update(value=v.dominance)
        return gr.update(), gr.update(), gr.update()

    def preview(self, text: str, emotion: str, valence: float, arousal: float, dominance: float,
                recorded: str | None = None) -> str:
        """The emotion readout for the input, shown before the (slower) render starts."""
        with user_errors(self._hidden()):
            override = resolve_emotion(emotion, valence, arousal, dominance)
            if recorded:  # the text is optional with a recording: it is the recording's words
                return readout_html(recording_plan(parse_lines(text) if text and text.strip() else [], override))
            return readout_html(plan_emotions(parse_lines(text), override))

    def say(self, text: str, voice: str | None = VOICE_DEFAULT, variant: str | None = VARIANT_NONE,
            avatar: str | None = None, emotion: str | None = EMOTION_AUTO, valence: float = 0.0,
            arousal: float = 0.0, dominance: float = 0.0, seed: float = 0,
            progress: Any = None, recorded: str | None = None) -> tuple[str, dict]:
        """Text to the rendered MP4 (returned) plus what the page shows next (audio, files, readout).

        recorded: a recording (file path) to perform instead of speaking the text; the text is then optional
        (the recording's words: its emotion and sentences) and the voice is not used."""
        from avatar.app_dialogue import perform_plan
        from avatar.pipeline import export_animation, perform

        progress = progress if progress is not None else (lambda *a, **k: None)
        t0 = time.perf_counter()
        with user_errors(self._hidden()):
            speech = check_recording_upload(recorded, self.config.max_upload_mb, self.config.max_recording_s)
            req = SayRequest(text=text, recording=speech is not None, voice=voice, variant=variant, emotion=emotion,
                             valence=valence, arousal=arousal, dominance=dominance, seed=seed)
            lines, override, seed_i, voice_name = list(req.lines), req.override, req.seed, req.voice_name
            av = self._avatar(avatar)
            progress(0.0, desc="reading the emotion")
            plan = plan_emotions(lines, override) if speech is None else recording_plan(lines, override)
            prune_runs(self.config.runs_dir, self.config.keep_runs_s)
            run = self.config.runs_dir / uuid.uuid4().hex
            run.mkdir(parents=True)

            def perf_progress(stage: str, fraction: float) -> None:
                progress(0.55 * min(1.0, fraction), desc=stage)

            def render_progress(stage: str, fraction: float) -> None:
                progress(0.55 + 0.37 * min(1.0, fraction), desc="rendering the video")

            t_perf = time.perf_counter()
            if speech is None:
                perf = perform_plan(plan, voice=voice_name, seed=seed_i, progress=perf_progress)
            else:
                perf = perform(" ".join(lines) or None, speech=speech, vad=override, seed=seed_i,
                               progress=perf_progress)
            t_render = time.perf_counter()
            video = self._render(perf, run / "avatar.mp4", av, render_progress)
            t_export = time.perf_counter()
            progress(0.93, desc="writing the animation data")
            files = export_animation(perf, run / "animation", avatar=av)
            zipped = zip_files(files, run / "animation.zip")
            done = time.perf_counter()
        timings = {"perform": t_render - t_perf, "render": t_export - t_render, "export": done - t_export,
                   "total": done - t0}
        log.info("said %d line(s), %.1f s of speech, in %.1f s", len(lines), perf.duration, timings["total"])
        state = {"audio": str(files["speech"]), "files": [str(zipped), *(str(p) for p in files.values())],
                 "readout": readout_html(plan), "duration": perf.duration, "timings": timings}
        return str(video), state

    def _render(self, perf: Any, out: Path, av: Any, progress: Any) -> Path:
        """The video: in the warm render pool when it is free, else (or when its workers fail) in this process."""
        from avatar.pipeline import render_video

        size = dict(width=self.config.width, height=self.config.height, framing=self.config.framing)
        pool = self.render_pool(av)
        if pool is not None:
            failed = True  # any error stops this pool: the next video starts a new one
            try:
                video = render_video(perf, out, avatar=av, progress=progress, pool=pool, **size)
                failed = False
                return video
            except AvatarError as exc:  # a worker died or could not start: this video is made here instead.
                # InputError too: the workers read the avatar's file again, which may be gone by now (an old
                # upload) while the Avatar loaded here still renders; real bad input fails again below.
                log.warning("render workers failed (%s): rendering in this process", exc)
            finally:
                self.release_pool(failed=failed)
        return render_video(perf, out, avatar=av, progress=progress, **size)

    def start_pool(self) -> None:
        """Start the render workers for the default avatar now (launch does, after the models load)."""
        if self.render_pool(None) is not None:
            self.release_pool()

    @staticmethod
    def details(state: dict | None) -> tuple[Any, Any, str, str]:
        """What the page shows after the video: the speech audio, the downloads, the readout and the timings."""
        import gradio as gr

        if not state:
            return gr.update(), gr.update(), gr.update(), ""
        t = state["timings"]
        info = (f"{state['duration']:.1f} s of speech, made in {t['total']:.1f} s "
                f"(speech + motion {t['perform']:.1f} s, video {t['render']:.1f} s, files {t['export']:.1f} s).")
        return state["audio"], state["files"], state["readout"], info

    # -- layout ---------------------------------------------------------------------------------------

    def build(self):  # noqa: ANN201 - gr.Blocks
        """The page: inputs on the left, the video and its emotion on the right."""
        os.environ["GRADIO_TEMP_DIR"] = str(self.config.cache_dir)  # read by Gradio when components are made
        import gradio as gr

        from avatar.emotion.labels import LABEL_VAD

        emotion_choices = [EMOTION_AUTO, *LABEL_VAD, EMOTION_CUSTOM]
        with gr.Blocks(title="Expressive avatar", analytics_enabled=False,
                       delete_cache=(1800, int(self.config.keep_runs_s))) as demo:
            gr.Markdown("## Expressive avatar\nType a line (or a few lines of dialogue): the avatar reads its "
                        "emotion, speaks it and moves with it. Rendering runs on the CPU and takes a little while.",
                        elem_id="intro")
            with gr.Row(equal_height=False):
                with gr.Column(scale=5, min_width=340):
                    text = gr.Textbox(label="Text", lines=3, max_lines=8, max_length=MAX_CHARS, elem_id="text",
                                      placeholder="I can't believe we actually won!  (one line per dialogue line)")
                    go = gr.Button("Perform", variant="primary", elem_id="perform")
                    gr.Examples(examples=[[e] for e in EXAMPLES], inputs=[text], label="Examples")
                    with gr.Accordion("Voice and avatar", open=True):
                        with gr.Row():
                            voice = gr.Dropdown(voice_choices(), value=VOICE_DEFAULT, label="Voice",
                                                allow_custom_value=True, scale=3)
                            variant = gr.Dropdown(variant_choices(), value=VARIANT_NONE, label="Variant", scale=2)
                        avatar = gr.File(label=f"Avatar (.glb or .vrm, up to {self.config.max_upload_mb} MB; "
                                         "empty = default)", file_types=[".glb", ".vrm"], type="filepath",
                                         elem_id="avatar-upload")
                        avatar_info = gr.Markdown(describe_avatar(None), elem_id="avatar-info")
                        recorded = gr.Audio(label="Or perform a recording instead of the voice (the text is then "
                                            f"optional: its words; up to {self.config.max_recording_s:.0f} s)",
                                            sources=["upload", "microphone"], type="filepath",
                                            elem_id="recording")
                    with gr.Accordion("Emotion and seed", open=True):
                        # custom values allowed so API callers may also pass aliases ("joy", "calm");
                        # resolve_emotion refuses unknown names with the list of known ones
                        emotion = gr.Dropdown(emotion_choices, value=EMOTION_AUTO, label="Emotion",
                                              info="from the text, a preset, or the sliders below",
                                              allow_custom_value=True)
                        with gr.Group():
                            valence, arousal, dominance = (
                                gr.Slider(-1, 1, value=0.0, step=0.05, label=name, buttons=[])
                                for name in ("Valence", "Arousal", "Dominance"))
                        seed = gr.Number(value=0, precision=0, minimum=0, maximum=2**31 - 1, label="Seed")
                with gr.Column(scale=6, min_width=360):
                    video = gr.Video(label="Avatar", height=420, autoplay=True, interactive=False,
                                     elem_id="video")
                    readout = gr.HTML(readout_html([]), elem_id="readout", padding=True, container=True)
                    timing = gr.Markdown("", elem_id="timing")
                    audio = gr.Audio(label="Speech", type="filepath", interactive=False, elem_id="speech")
                    files = gr.File(label="Animation data: all in one zip, or speech, timeline, emotion, face "
                                    "JSON + Live Link CSV, body BVH, animated .glb", file_count="multiple",
                                    interactive=False, height=230, elem_id="files")
            state = gr.State()

            avatar.upload(self.on_upload, inputs=[avatar], outputs=[avatar, avatar_info], api_visibility="private",
                          show_progress="minimal")
            avatar.clear(lambda: describe_avatar(None), outputs=[avatar_info], api_visibility="private")
            emotion.change(self.on_preset, inputs=[emotion], outputs=[valence, arousal, dominance],
                           api_visibility="private", show_progress="hidden")
            for s in (valence, arousal, dominance):  # moving a slider by hand means a custom emotion
                s.release(lambda: EMOTION_CUSTOM, outputs=[emotion], api_visibility="private",
                          show_progress="hidden")

            say_inputs = [text, voice, variant, avatar, emotion, valence, arousal, dominance, seed, recorded]

            # Defaults make every input but the text optional for API callers (a None default is how Gradio
            # marks the avatar file optional).
            def say(text: str, voice: str = VOICE_DEFAULT, variant: str = VARIANT_NONE, avatar: str | None = None,
                    emotion: str = EMOTION_AUTO, valence: float = 0.0, arousal: float = 0.0, dominance: float = 0.0,
                    seed: float = 0, recorded: str | None = None,
                    progress: gr.Progress = gr.Progress()) -> tuple[str, dict]:  # noqa: B008 - Gradio fills it in through this default
                """Render TEXT (or perform a recording) as a video of the avatar saying it; returns the MP4."""
                return self.say(text, voice, variant, avatar, emotion, valence, arousal, dominance, seed,
                                progress=progress, recorded=recorded)

            (go.click(self.preview, inputs=[text, emotion, valence, arousal, dominance, recorded], outputs=[readout],
                      api_visibility="private", show_progress="minimal", concurrency_limit=4)
               .success(say, inputs=say_inputs, outputs=[video, state], api_name="say",
                        concurrency_limit=self.config.concurrency, concurrency_id="render")
               .success(self.details, inputs=[state], outputs=[audio, files, readout, timing],
                        api_visibility="private", show_progress="hidden"))
        demo.queue(default_concurrency_limit=self.config.concurrency, max_size=self.config.max_queue)
        return demo


def warm_up() -> None:
    """Load the models now (launch runs this in a background thread, so the first visitor waits less)."""
    try:
        from avatar.emotion import default_analyzer

        default_analyzer()
        from avatar.pipeline import models

        models().face()
        models().gesture()
    except Exception as exc:  # noqa: BLE001 - a missing model is reported again, clearly, on the first request
        log.warning("warm-up: %s", exc)


def theme():  # noqa: ANN201 - gr.themes.Base
    """Gradio's default look with system fonts: a local demo fetches nothing from font CDNs."""
    import gradio as gr

    return gr.themes.Default(font=["ui-sans-serif", "system-ui", "sans-serif"],
                             font_mono=["ui-monospace", "monospace"])


def launch(config: AppConfig | None = None, *, host: str = "127.0.0.1", port: int | None = None,
           block: bool = True) -> Any:  # the running gradio Blocks when not blocking
    """Serve the demo on host:port (localhost by default); with block=False return the running Blocks."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    app = AvatarApp(config)
    demo = app.build()
    root = app.config.root.resolve()
    # Gradio serves only its upload/cache folder (our outputs are copied there); also refuse the checkout and
    # the home folder outright, unless the app's own folder sits inside one of them.
    blocked = [str(p) for p in (REPO_ROOT, Path.home()) if not root.is_relative_to(p.resolve())]
    from starlette.middleware import Middleware

    from avatar.app_uploads import UploadGuard

    guard = Middleware(UploadGuard, folder=app.config.cache_dir, max_bytes=app.config.max_cache_mb * 2**20,
                       max_age_s=app.config.keep_runs_s)  # only avatar and recording types, a bounded cache
    demo.launch(server_name=host, server_port=port, allowed_paths=[], blocked_paths=blocked,
                app_kwargs={"middleware": [guard]}, max_file_size=f"{app.config.max_upload_mb}mb", show_error=False, ssr_mode=False, mcp_server=False,
                footer_links=["api"], prevent_thread_lock=True, quiet=not block, theme=theme(),
                css=READOUT_CSS + _LAYOUT_CSS)
    # Only now: model loading competes for the CPU with the server's own start-up check of its URL.
    def warm() -> None:
        warm_up()
        app.start_pool()

    threading.Thread(target=warm, name="avatar-app-warm-up", daemon=True).start()
    demo.avatar_app = app  # for whoever stops the server: app.close_pool() ends the render workers
    if block:
        try:
            demo.block_thread()
        finally:
            app.close_pool()
    return demo


_LAYOUT_CSS = """
#intro h2 { margin-bottom: 0; }
#timing, #timing p { color: var(--body-text-color-subdued, #888); font-size: 12px; margin: 0; }
"""
