"""`avatar stream`: live driving from stdin lines (and WebSocket control messages) to VMC and WebSocket."""

from __future__ import annotations

import logging
import sys
import threading
import time
from pathlib import Path
from typing import BinaryIO, Optional, TextIO

import typer

log = logging.getLogger(__name__)


def register(app: typer.Typer) -> None:
    """Add the `stream` command to the avatar CLI."""

    @app.command("stream")
    def stream_cmd(
        vmc: Optional[str] = typer.Option(None, "--vmc", metavar="HOST:PORT",
                                          help="Send VMC protocol (OSC/UDP) to this receiver "
                                               "(default 127.0.0.1:39539 when --ws is not given)."),
        vmc_resolve: bool = typer.Option(False, "--vmc-resolve",
                                         help="Let --vmc name a host to look up (DNS); else only a numeric "
                                              "address or localhost."),
        ws: Optional[int] = typer.Option(None, "--ws", min=0, max=65535, metavar="PORT",
                                         help="Serve the WebSocket stream on this port (0: any free port)."),
        ws_host: str = typer.Option("127.0.0.1", "--ws-host", help="Interface the WebSocket server binds."),
        fps: float = typer.Option(60.0, "--fps", min=1, max=240, help="Frames per second sent."),
        audio_out: Optional[Path] = typer.Option(None, "--audio-out", metavar="FILE.wav",
                                                 help="Also write the session's audio (silences included)."),
        no_play: bool = typer.Option(False, "--no-play", help="Do not play the audio locally."),
        voice: Optional[str] = typer.Option(None, "--voice", help="TTS voice (see `avatar tts --list-voices`)."),
        valence: Optional[float] = typer.Option(None, "--valence", help="Fixed VAD for stdin lines (else from text)."),
        arousal: Optional[float] = typer.Option(None, "--arousal"),
        dominance: Optional[float] = typer.Option(None, "--dominance"),
        motion: str = typer.Option("auto", "--motion", help="auto | model | procedural (see docs/live.md)."),
        face_model: Optional[Path] = typer.Option(None, "--face-model",
                                                  help="Face model folder (default weights/face)."),
        gesture_model: Optional[Path] = typer.Option(None, "--gesture-model",
                                                     help="Gesture model folder (default weights/gesture)."),
        model_steps: Optional[int] = typer.Option(None, "--model-steps", min=1, max=100,
                                                  help="Denoising steps of the motion models (fewer: faster)."),
        blend_names: str = typer.Option("vrm0", "--blend-names",
                                        help="VMC expression names: vrm0 (A, Joy) or vrm1 (aa, happy)."),
        no_arkit: bool = typer.Option(False, "--no-arkit", help="Do not send the 52 ARKit shapes over VMC."),
        avatar_file: Optional[Path] = typer.Option(None, "--avatar", metavar="FILE",
                                                   help="The receiver's avatar (.vrm/.glb/.gltf): VMC sends its "
                                                        "bones, offsets and blend shape names (docs/live.md)."),
        arkit_case: str = typer.Option("apple", "--arkit-case", help="apple (eyeBlinkLeft) or upper (EyeBlinkLeft)."),
        seed: int = typer.Option(0, "--seed", help="Seed of the idle and the motion, 0-2147483647."),
        force: bool = typer.Option(False, "--force", help="Let --audio-out replace a read-only file."),
    ) -> None:
        """Drive an avatar live: one line of text per stdin line, or a JSON control line (say, audio FILE, emotion,
        stop); prints `ready` once frames are going out."""
        from avatar.cli import guarded, vad_options

        def run() -> None:
            from avatar.live.stream import LiveStream, StreamConfig
            from avatar.live.vmc import VMCOptions, VMCSender, parse_hostport

            # The frame loop shares the GIL with generation; a 1 ms switch interval (default 5 ms) lets it in
            # sooner when a producer thread runs Python code. This process does nothing else, so it is safe.
            sys.setswitchinterval(0.001)
            if audio_out is not None:  # before the models load: a typo'd or unwritable path costs nothing
                from avatar.errors import InputError
                from avatar.io import check_output_path

                if audio_out.suffix.lower() != ".wav":
                    raise InputError(f"--audio-out must name a .wav file, got {audio_out.name!r}")
                check_output_path(audio_out, "--audio-out", force=force)
            cfg = StreamConfig(fps=fps, seed=seed, voice=voice, motion=motion, face_model=face_model,
                               gesture_model=gesture_model, model_steps=model_steps,
                               vad=vad_options(valence, arousal, dominance))
            opts = VMCOptions(blend_names=blend_names, arkit=not no_arkit, arkit_case=arkit_case)
            target = vmc if vmc is not None else (None if ws is not None else "127.0.0.1:39539")
            profile = None
            if avatar_file is not None and target is None:
                log.warning("live: --avatar names the VMC receiver's avatar; without --vmc it is not used")
            if avatar_file is not None and target is not None:  # before the models load: a bad file costs nothing
                from avatar.live.vmc import avatar_profile
                from avatar.render.avatar_file import load_avatar

                profile = avatar_profile(load_avatar(avatar_file), opts)
                log.info("live: VMC for %s: %d bones, %d VRM presets, %d ARKit shapes", profile.name,
                         len(profile.rows), len(profile.vrm_names), len(profile.arkit_names))
            stream = LiveStream(cfg)
            closers = []
            try:
                if target is not None:
                    host, port = parse_hostport(target, names=vmc_resolve)
                    sender = VMCSender(host, port, opts, resolve=vmc_resolve, profile=profile)
                    stream.sinks.append(sender)
                    closers.append(sender.close)
                stream.load()
                if audio_out is not None:
                    from avatar.live.audio_out import WavWriter

                    writer = WavWriter(audio_out, stream.sample_rate, force=force)
                    stream.sinks.append(writer)
                    closers.append(writer.close)
                if not no_play:
                    from avatar.live.audio_out import LocalPlayer

                    player = LocalPlayer.open(stream.sample_rate)
                    if player is not None:
                        stream.sinks.append(player)
                        closers.append(player.close)
                if ws is not None:
                    from avatar.live.wsserver import WebSocketHub

                    hub = WebSocketHub(ws_host, ws, on_control=stream.handle_control,
                                       hello=hello_message(stream))
                    bound = hub.start()
                    stream.sinks.append(hub)
                    closers.append(hub.close)
                    log.warning("live: WebSocket stream on ws://%s:%d", ws_host, bound)
                stream.start()
                sys.stdout.write("ready\n")
                sys.stdout.flush()
                _read_stdin(stream)
            finally:
                stream.close()
                failed: BaseException | None = None
                for close in reversed(closers):  # every sink closes, even when one fails (a full disk)
                    try:
                        close()
                    except Exception as exc:  # noqa: BLE001 - kept and raised after every sink has closed
                        failed = failed or exc
                s = stream.stats
                log.info("live: %d frames, %d skipped, max lateness %.1f ms", s.frames, s.skipped, 1e3 * s.late_max)
                if failed is not None:
                    raise failed

        guarded(run)


def hello_message(stream) -> dict:  # noqa: ANN001 - a LiveStream
    """The WebSocket hello: rates, channel names and formats (docs/live.md)."""
    from avatar.face.rig import VRM_EXPRESSIONS
    from avatar.rig.skeleton import HUMANOID
    from avatar.types import ARKIT_BLENDSHAPES

    return {"fps": stream.config.fps, "arkit_names": list(ARKIT_BLENDSHAPES), "vrm_names": list(VRM_EXPRESSIONS),
            "bones": list(HUMANOID.joints), "axes": "glTF: right-handed, Y up, avatar faces +Z",
            "audio": {"sample_rate": stream.sample_rate, "channels": 1, "format": "pcm_s16le",
                      "header": "4s magic 'PCM1' + uint64 LE first sample index"},
            "motion": "model" if stream.models else "procedural"}


#: A stdin line longer than this (bytes) is refused: a line of text is at most 20,000 characters.
MAX_STDIN_LINE = 128 * 1024


def feed_lines(stream, source: BinaryIO, err: TextIO) -> None:  # noqa: ANN001 - a LiveStream
    """Say (or apply, for JSON control lines) each line of the byte stream `source` until EOF; a bad line (not
    UTF-8, not valid Unicode, malformed, too long) prints one `error:` line to `err` and the next is read."""
    from avatar.errors import InputError
    from avatar.text import decode_utf8

    n = 0
    while True:
        raw = source.readline(MAX_STDIN_LINE + 1)
        if not raw:
            return
        n += 1
        try:
            if len(raw) > MAX_STDIN_LINE and not raw.endswith(b"\n"):
                while raw and not raw.endswith(b"\n"):  # skip the rest of the line without holding it
                    raw = source.readline(MAX_STDIN_LINE)
                raise InputError(f"stdin line {n} is over {MAX_STDIN_LINE // 1024} KiB")
            line = decode_utf8(raw, f"stdin line {n}").strip()
            if not line:
                continue
            if line.startswith("{"):
                stream.handle_control(line, files=True)  # the local user may name sound files
            else:
                stream.say(line)
        except InputError as exc:
            err.write(f"error: {exc}\n")
            err.flush()


def _read_stdin(stream) -> None:  # noqa: ANN001 - a LiveStream
    """Lines from stdin until EOF (then wait for the queue to drain), Ctrl-C or SIGTERM; JSON lines are control
    messages."""
    from avatar.errors import Terminated

    eof = threading.Event()

    def reader() -> None:
        feed_lines(stream, sys.stdin.buffer, sys.stderr)  # bytes: each line is decoded (and refused) on its own
        eof.set()

    threading.Thread(target=reader, name="live-stdin", daemon=True).start()
    try:
        while not eof.wait(0.1):  # short waits keep Ctrl-C responsive
            pass
        while not stream.wait_drained(0.1):
            pass
        time.sleep(0.3)  # let the last fade-out frames go out
    except (KeyboardInterrupt, Terminated):  # Ctrl-C or SIGTERM: end the session cleanly (the WAV is kept)
        log.warning("live: interrupted")
