"""Text at the boundary (avatar.text): one rule for invalid UTF-8 and lone surrogates in every front end."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from avatar.errors import InputError
from avatar.text import check_unicode, decode_utf8

REPO = Path(__file__).resolve().parents[1]
BAD = b"caf\xe9 au lait"  # Latin-1, not UTF-8


def _cli(*args: str | bytes, stdin: bytes = b"") -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-m", "avatar.cli", *args], input=stdin, capture_output=True,
                          timeout=120, cwd=REPO, env=env)


def _one_error(proc: subprocess.CompletedProcess, *words: str) -> str:
    err = proc.stderr.decode("utf-8", "replace")
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert proc.returncode == 2, err
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err and all(w in lines[0] for w in words), err
    return lines[0]


def test_check_unicode_and_decode_utf8() -> None:
    assert check_unicode("héllo 👨\u200d👩\u200d👧") == "héllo 👨\u200d👩\u200d👧"
    with pytest.raises(InputError, match=r"byte 0xe9 at character 4"):
        check_unicode(BAD.decode("utf-8", "surrogateescape"))  # what argv holds for a non-UTF-8 argument
    with pytest.raises(InputError, match=r"lone surrogate U\+D800"):
        check_unicode("a\ud800b")
    with pytest.raises(InputError, match="must be a string"):
        check_unicode(b"bytes")  # type: ignore[arg-type]
    assert decode_utf8("\ufeffhi".encode("utf-8")) == "hi"  # a BOM is not content
    with pytest.raises(InputError, match=r"not valid UTF-8 \(byte 0xe9 at offset 3\)"):
        decode_utf8(BAD, "x.txt")


def test_the_text_checks_refuse_invalid_unicode_and_keep_joiners() -> None:
    from avatar.app_ui import parse_lines
    from avatar.emotion.sentences import check_text, split_sentences
    from avatar.live.stream import parse_control
    from avatar.tts.base import check_tts_text

    for bad in ("a\ud800b", "ok \udce9"):
        for check in (check_text, split_sentences, check_tts_text, parse_lines):
            with pytest.raises(InputError, match="not valid UTF-8/Unicode"):
                check(bad)
    with pytest.raises(InputError, match="not valid UTF-8/Unicode"):
        parse_control('{"type": "say", "text": "hi \\ud83d"}')  # JSON's escape for a lone surrogate
    with pytest.raises(InputError, match="the audio path is not valid UTF-8/Unicode"):
        parse_control('{"type": "audio", "path": "take\\udcff.wav"}')
    # Zero-width joiners are spelling (Persian, Indic) and emoji sequences: they are kept.
    for text in ("👩\u200d🚀 launches.", "می\u200cخواهم.", "क्\u200dष."):
        assert split_sentences(text)[0].text == text


def test_cli_refuses_invalid_utf8_arguments_with_one_error_line(tmp_path: Path) -> None:
    _one_error(_cli("emotion", BAD), "not valid UTF-8", "byte 0xe9")
    _one_error(_cli("tts", BAD, "-o", str(tmp_path / "x.wav")), "not valid UTF-8")
    _one_error(_cli("say", BAD, "-o", str(tmp_path / "x.mp4"), "--render-workers", "1"), "not valid UTF-8")
    # Every argument, not only text: a file name or a voice that is not UTF-8 is refused before any work (an
    # output name used to fail with a traceback after the audio was made, when the summary was printed).
    line = _one_error(_cli("tts", "Hi.", "-o", str(tmp_path).encode() + b"/x\xff.wav"), "argument 4", "byte 0xff")
    assert '\\xff.wav"' in line
    _one_error(_cli("tts", "Hi.", "-o", str(tmp_path / "x.wav"), "--voice", b"en\xff"), "argument 6")
    assert not list(tmp_path.iterdir())


def test_say_and_emotion_refuse_an_invalid_utf8_file_the_same_way(tmp_path: Path) -> None:
    src = tmp_path / "lines.txt"
    src.write_bytes(BAD + b"\n")
    out = tmp_path / "out.mp4"
    a = _one_error(_cli("say", "-i", str(src), "-o", str(out), "--render-workers", "1"), "byte 0xe9 at offset 3")
    b = _one_error(_cli("emotion", "-i", str(src)), "byte 0xe9 at offset 3")
    assert a == b and not out.exists()
    _one_error(_cli("emotion", "-i", "-", stdin=BAD), "stdin is not valid UTF-8")
    _one_error(_cli("say", "-i", "-", "-o", str(out), "--render-workers", "1", stdin=BAD), "stdin is not valid UTF-8")


def test_stream_stdin_refuses_each_bad_line_and_goes_on() -> None:
    from avatar.live.cli import MAX_STDIN_LINE, feed_lines
    from avatar.live.stream import LiveStream, StreamConfig

    stream = LiveStream(StreamConfig())  # not started: say() only checks and queues
    lines = [b"Hello there.", BAD, json.dumps({"type": "say", "text": "x\ud800"}).encode(),
             b"x" * (MAX_STDIN_LINE + 10), "Still here, ça va.".encode()]
    err = io.StringIO()
    feed_lines(stream, io.BytesIO(b"\n".join(lines) + b"\n"), err)
    errors = err.getvalue().splitlines()
    assert len(errors) == 3 and all(e.startswith("error: ") for e in errors), errors
    assert "stdin line 2 is not valid UTF-8" in errors[0] and "not valid UTF-8/Unicode" in errors[1]
    assert "stdin line 4 is over" in errors[2]
    queued = [stream._requests.get_nowait().text for _ in range(stream._requests.qsize())]
    assert queued == ["Hello there.", "Still here, ça va."]


def test_batch_lines_with_lone_surrogates_fail_alone_and_can_be_reported() -> None:
    """JSON escapes can spell lone surrogates; such a line fails on its own (it crashed writing the manifest)."""
    from dataclasses import asdict

    from avatar.batch.script import check_lines, parse_script

    rows = [{"id": "a1", "character": "Bob\ud800", "text": "Hi there."}, {"id": "a2\udcff", "character": "Ann",
            "text": "Hello."}, {"id": "a3", "character": "Ann", "text": "Fine.", "emotion": {"joy\ud800": 1}},
            {"id": "a4", "character": "Ann", "text": "Still fine."}]
    script = parse_script("\n".join(json.dumps(r) for r in rows), "jsonl", "s.jsonl")
    good, bad = check_lines(script)
    assert [line.id for _, line in good] == ["a4"]
    assert [f.error for f in bad] == [
        "line 1: character is not valid UTF-8/Unicode (lone surrogate U+D800 at character 4)",
        "line 2: id is not valid UTF-8/Unicode (byte 0xff at character 3)",
        "line 3: the key 'joy\\\\ud800' is not valid UTF-8/Unicode (lone surrogate U+D800 at character 4)"]
    for f in bad:
        json.dumps(asdict(f), ensure_ascii=False).encode("utf-8")  # what the manifest writes: no surrogates left
    with pytest.raises(InputError, match=r"s.yaml: voice is not valid UTF-8/Unicode"):
        parse_script('characters:\n  Ann: {voice: "en\\ud800"}\nlines: [{id: a, character: Ann, text: Hi}]',
                     "yaml", "s.yaml")
