"""The `avatar` command line (typer). Each stage adds its own commands from `<stage>/cli.py`.

Exit codes: 0 success, 1 the work failed (a stage error, some batch lines failed, an output that could not be
written), 2 bad input or usage (outputs included: checked before the work), 130 Ctrl-C, 143 SIGTERM, 141 (quietly)
when the reader of stdout went away (`| head`).
Heavy libraries (torch, the models) load inside the commands, so `--help` stays fast.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Callable, List, Optional

import typer

from avatar.errors import AvatarError, InputError, Terminated

app = typer.Typer(
    name="avatar",
    help="Expressive avatar engine: text in; speech, face and body motion, and video out.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

if TYPE_CHECKING:
    from avatar.types import VAD

log = logging.getLogger("avatar")

EXIT_OK, EXIT_FAILED, EXIT_INPUT = 0, 1, 2
EXIT_TERMINATED = 128 + 15  # SIGTERM, as a shell reports a process it ended
#: Text files larger than this are refused before reading (the analyzer works in memory).
MAX_INPUT_BYTES = 64 * 2**20


@app.callback()
def _root(verbose: bool = typer.Option(False, "--verbose", "-v", help="Log progress details.")) -> None:
    """Expressive avatar engine: text in; speech, face and body motion, and video out."""
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")


def fail(message: str, code: int = EXIT_INPUT) -> "typer.Exit":
    """Print a one-line error to stderr and return the Exit to raise."""
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def guarded(fn: Callable[[], None]) -> None:
    """Run a command body, turning engine errors into clear messages and exit codes (no tracebacks)."""
    try:
        fn()
    except InputError as exc:
        raise fail(str(exc), EXIT_INPUT) from None
    except AvatarError as exc:
        raise fail(str(exc), EXIT_FAILED) from None
    except FileNotFoundError as exc:
        raise fail(f"file not found: {exc.filename or exc}", EXIT_INPUT) from None
    except BrokenPipeError:  # `avatar emotion ... | head -1`: the reader has what it wanted; end as a C tool would
        import os

        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # so that the exit's flush of stdout does not complain again
        raise typer.Exit(128 + 13) from None
    except OSError as exc:  # one that no stage turned into an AvatarError: still one line, not a traceback
        from avatar.io import describe_os_error

        where = f"{exc.filename}: " if exc.filename else ""
        raise fail(f"{where}{describe_os_error(exc)}", EXIT_FAILED) from None
    except KeyboardInterrupt:
        raise fail("interrupted", 130) from None
    except Terminated:
        raise fail("terminated", EXIT_TERMINATED) from None


def vad_options(valence: Optional[float], arousal: Optional[float], dominance: Optional[float]) -> VAD | None:
    """A VAD from --valence/--arousal/--dominance, or None when none was given (then the text decides)."""
    from avatar.types import VAD

    if valence is None and arousal is None and dominance is None:
        return None
    return VAD(valence or 0.0, arousal or 0.0, dominance or 0.0)


def read_text_input(path: Path, limit: int | None = None) -> str:
    """The text of a file, or of stdin for '-': at most `limit` bytes (MAX_INPUT_BYTES; an endless pipe is refused
    once past it, never read whole), strict UTF-8 (avatar.text), else InputError."""
    from avatar.text import decode_utf8

    limit = MAX_INPUT_BYTES if limit is None else limit
    if str(path) == "-":
        stream = getattr(sys.stdin, "buffer", None)
        raw = stream.read(limit + 1) if stream is not None else b""
        name = "stdin"
    else:
        if path.is_dir():
            raise InputError(f"{path} is a folder, not a text file")
        if not path.is_file():
            raise InputError(f"input file not found: {path}")
        with open(path, "rb") as f:
            raw = f.read(limit + 1)  # read no more than the limit, whatever the file's size
        name = str(path)
    if len(raw) > limit:
        raise InputError(f"{name} is larger than {limit // 2**20} MiB; split it first")
    return decode_utf8(raw, name)


@app.command("emotion")
def emotion_cmd(
    texts: Optional[List[str]] = typer.Argument(None, help="Lines of text (each is one input line)."),
    input: Optional[Path] = typer.Option(None, "--input", "-i", help="Read lines from this file ('-' for stdin)."),
    sentences: bool = typer.Option(False, "--sentences", help="One record per sentence instead of per line."),
    batch_size: int = typer.Option(64, min=1, max=1024, help="Sentences per model batch."),
) -> None:
    """One JSON line per input line: text, valence, arousal, dominance, label, confidence, intensity, categories."""

    def run() -> None:
        lines: list[str] = list(texts or [])
        if input is not None:
            lines += read_text_input(input).splitlines()
            lines = [ln for ln in lines if ln.strip()]  # blank lines in a file are layout, not input
        elif not lines:
            if sys.stdin is None or sys.stdin.isatty():
                raise InputError("give TEXT arguments, --input FILE, or pipe text on stdin")
            lines = [ln for ln in read_text_input(Path("-")).splitlines() if ln.strip()]
        if not lines:
            raise InputError("no text to analyse")
        from avatar.emotion import default_analyzer
        from avatar.emotion.sentences import check_text

        for ln in lines:
            check_text(ln)
        analyzer = default_analyzer()
        if sentences:
            records = [r.to_record() for ln in lines for r in analyzer.analyze(ln, batch_size=batch_size)]
        else:
            records = [r.to_record() for r in analyzer.analyze_lines(lines, batch_size=batch_size)]
        out = sys.stdout
        for rec in records:
            out.write(json.dumps(rec, ensure_ascii=False) + "\n")
        out.flush()

    guarded(run)


# Stage commands live beside their stage; a stage not yet present simply adds no command.
_STAGE_CLIS = ("avatar.tts.cli", "avatar.face.cli", "avatar.gesture.cli", "avatar.pipeline_cli",
               "avatar.batch.cli", "avatar.live.cli", "avatar.train_cli")


def _register_stages() -> None:
    for name in _STAGE_CLIS:
        if importlib.util.find_spec(name.rsplit(".", 1)[0]) is None or importlib.util.find_spec(name) is None:
            continue
        importlib.import_module(name).register(app)


_register_stages()


def _on_sigterm(signum: int, frame: object) -> None:
    """SIGTERM in the CLI's process: raise Terminated, so that `finally` blocks remove temp files and stop workers;
    in a forked child (a render worker) the default action, so that the child ends as it did before."""
    import os
    import signal

    if os.getpid() != _MAIN_PID:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGTERM)
        return
    raise Terminated()


_MAIN_PID = -1


def main() -> None:
    """Console-script entry point."""
    import os
    import signal

    global _MAIN_PID
    _MAIN_PID = os.getpid()
    signal.signal(signal.SIGTERM, _on_sigterm)
    check_arguments(sys.argv[1:])
    app()


def check_arguments(args: List[str]) -> None:
    """Refuse the command line before any work when an argument (text, a file name, a voice) is not valid UTF-8:
    Python hands such bytes over as lone surrogates, which would fail later, in the middle of the work."""
    from avatar.text import check_unicode

    for i, arg in enumerate(args, 1):
        bad = next((k for k, ch in enumerate(arg) if 0xD800 <= ord(ch) <= 0xDFFF), None)
        if bad is None:
            continue
        start = max(0, bad - 30)  # the argument around its first bad byte, undecodable bytes as \xNN
        piece = arg[start:bad + 30]
        try:
            shown = piece.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
        except UnicodeEncodeError:
            shown = piece.encode("utf-8", "backslashreplace").decode("ascii")
        shown = ("…" if start else "") + shown + ("…" if bad + 30 < len(arg) else "")
        try:
            check_unicode(arg, f'argument {i} "{shown}"')
        except InputError as exc:
            raise SystemExit(_one_line(str(exc))) from None


def _one_line(message: str) -> int:
    typer.echo(f"error: {message}", err=True)
    return EXIT_INPUT


if __name__ == "__main__":
    main()
