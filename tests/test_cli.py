"""The `avatar` command line: help for every command, JSON lines out, clear errors and exit codes."""

import json
import subprocess
import sys

import pytest


def run(avatar_bin, *args, stdin=None):
    return subprocess.run([avatar_bin, *args], capture_output=True, text=True, input=stdin, timeout=300)


def test_help_for_every_command(avatar_bin):
    top = run(avatar_bin, "--help")
    assert top.returncode == 0 and "emotion" in top.stdout
    # Rows of rich's "Commands" panel only: a command name starts each row, wrapped help lines are indented.
    panel = top.stdout.split("─ Commands ─", 1)[1].split("╰", 1)[0]
    commands = [ln[2:].split()[0] for ln in panel.splitlines() if ln.startswith("│ ") and ln[2:3].strip()]
    assert "emotion" in commands
    for cmd in commands:
        res = run(avatar_bin, cmd, "--help")
        assert res.returncode == 0, (cmd, res.stderr)
        assert "Usage" in res.stdout


def test_emotion_json_lines(avatar_bin, tmp_path):
    res = run(avatar_bin, "emotion", "I love you!", "I am terrified of what comes next.")
    assert res.returncode == 0, res.stderr
    rows = [json.loads(x) for x in res.stdout.splitlines()]
    assert len(rows) == 2
    # The documented fields first and unchanged; the category head's reading after them.
    assert list(rows[0]) == ["text", "valence", "arousal", "dominance", "label", "confidence", "intensity",
                             "categories"]
    for row in rows:
        assert abs(sum(row["categories"].values()) - 1.0) < 1e-3
        assert row["label"] == max(row["categories"], key=row["categories"].get)
    assert rows[0]["valence"] > rows[1]["valence"]
    f = tmp_path / "lines.txt"
    f.write_text("First line. Still first.\n\nSecond line!\n", encoding="utf-8")
    res = run(avatar_bin, "emotion", "--input", str(f))
    assert res.returncode == 0 and len(res.stdout.splitlines()) == 2
    res = run(avatar_bin, "emotion", "--input", "-", stdin="one\ntwo\n")
    assert res.returncode == 0 and len(res.stdout.splitlines()) == 2


@pytest.mark.parametrize("args", [["emotion", "   "], ["emotion", "--input", "/nonexistent/file.txt"]])
def test_emotion_bad_input_exit_2(avatar_bin, args):
    res = run(avatar_bin, *args)
    assert res.returncode == 2
    assert res.stderr.startswith("error:") and "Traceback" not in res.stderr


def test_emotion_binary_file_is_refused(avatar_bin, tmp_path):
    f = tmp_path / "blob.bin"
    f.write_bytes(bytes(range(256)) * 4)
    res = run(avatar_bin, "emotion", "--input", str(f))
    assert res.returncode == 2 and "UTF-8" in res.stderr


def test_emotion_oversized_file_is_refused_before_reading(avatar_bin, tmp_path):
    from avatar.cli import MAX_INPUT_BYTES

    f = tmp_path / "huge.txt"
    with open(f, "wb") as fh:  # a sparse file: big on paper, cheap to make
        fh.truncate(MAX_INPUT_BYTES + 1)
    res = run(avatar_bin, "emotion", "--input", str(f))
    assert res.returncode == 2 and "larger than" in res.stderr


def test_say_progress_draws_on_a_terminal_only(monkeypatch) -> None:
    import io

    from avatar.pipeline_cli import _Progress

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr(sys, "stderr", io.StringIO())
    with _Progress() as quiet:
        quiet("speech", 0.5)
        quiet("speech", 1.0)
    assert quiet._bar is None and sys.stderr.getvalue() == ""
    term = Tty()
    monkeypatch.setattr(sys, "stderr", term)
    with _Progress() as bar:
        bar("speech", 0.0)
        bar("speech", 1.0)
        bar("render", 0.25)
    out = term.getvalue()
    assert "speech" in out and "100%" in out and "render" in out and "25%" in out


def test_emotion_stdin_is_capped_while_reading(monkeypatch, capsys) -> None:
    """`emotion -i -` reads at most the input limit (and a byte) from an endless pipe, then refuses with exit 2."""
    import io
    from pathlib import Path

    import typer

    import avatar.cli as cli

    limit = 1 << 16
    monkeypatch.setattr(cli, "MAX_INPUT_BYTES", limit)

    class Endless(io.RawIOBase):
        """A pipe that never ends; reading far past the limit fails the test instead of filling memory."""

        served = 0

        def readable(self) -> bool:
            return True

        def readinto(self, b) -> int:
            if self.served > 8 * limit:
                raise AssertionError("stdin was read far past the input limit")
            b[:] = b"la " * (len(b) // 3) + b"\n" * (len(b) % 3)
            self.served += len(b)
            return len(b)

    pipe = Endless()
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BufferedReader(pipe), encoding="utf-8"))
    with pytest.raises(typer.Exit) as exit_:
        cli.emotion_cmd(texts=None, input=Path("-"), sentences=False, batch_size=64)
    assert exit_.value.exit_code == 2 and "larger than" in capsys.readouterr().err
    assert pipe.served <= 2 * limit
