from pathlib import Path

import pytest

from avatar.errors import InputError
from avatar.io import atomic_path, atomic_write_text, safe_join, safe_name


def test_atomic_write_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "out.txt"
    atomic_write_text(target, "first")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("partial")
            raise RuntimeError("boom")
    assert target.read_text() == "first"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


@pytest.mark.parametrize("name", ["../x", "/etc/passwd", "a/b", "", ".", "..", ".hidden", "a\x00b", "x" * 200])
def test_safe_name_refuses_hostile_names(name):
    with pytest.raises(InputError):
        safe_name(name)


def test_safe_join_keeps_inside(tmp_path):
    assert safe_join(tmp_path, "a", "b.txt") == (tmp_path / "a" / "b.txt").resolve()
    with pytest.raises(InputError):
        safe_join(tmp_path, "..", "escape")
    with pytest.raises(InputError):
        safe_join(tmp_path, "/etc/passwd")


def test_atomic_output_has_ordinary_permissions(tmp_path):
    import os

    p = atomic_write_text(tmp_path / "shared.txt", "x")
    mask = os.umask(0)
    os.umask(mask)
    assert (p.stat().st_mode & 0o777) == (0o666 & ~mask)


# ------------------------------------------------------------------------------------------------------------
# Output paths checked before the work, and write failures (issue 20, items 3, 4 and 15)
# ------------------------------------------------------------------------------------------------------------

import errno  # noqa: E402
import os  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

from avatar.errors import OutputError  # noqa: E402
from avatar.io import check_output_dir, check_output_path, remove_stale_parts  # noqa: E402


def test_special_files_are_never_replaced(tmp_path):
    """A FIFO or device node named as the output is refused, by the check and by the atomic write itself."""
    fifo = tmp_path / "pipe.mp4"
    os.mkfifo(fifo)
    for target in (fifo, Path("/dev/null")):
        with pytest.raises(InputError, match="not a regular file"):
            check_output_path(target, "-o", force=True)  # --force does not make a device replaceable
        with pytest.raises(InputError, match="not a regular file"):
            atomic_write_text(target, "x")
    assert fifo.is_fifo() and Path("/dev/null").is_char_device()
    with pytest.raises(InputError, match="is a folder"):
        check_output_path(tmp_path, "-o")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pipe.mp4"]


def test_a_read_only_file_is_replaced_only_with_force(tmp_path):
    ro = tmp_path / "take.wav"
    ro.write_text("old")
    ro.chmod(0o444)
    with pytest.raises(InputError, match="read-only; pass --force"):
        check_output_path(ro, "-o")
    assert check_output_path(ro, "-o", force=True) == ro
    atomic_write_text(ro, "new")
    assert ro.read_text() == "new"


def test_names_up_to_the_limit_write_and_longer_ones_are_refused(tmp_path):
    """A 250-byte name is legal: its temporary file must be too (it was '.' + name + random + '.part')."""
    name = "a" * 246 + ".mp4"
    atomic_write_text(tmp_path / name, "x")
    assert (tmp_path / name).read_text() == "x" and len(list(tmp_path.iterdir())) == 1
    with pytest.raises(InputError, match="limit is 255"):
        check_output_path(tmp_path / ("b" * 256 + ".mp4"), "-o")
    with pytest.raises(InputError, match="longer than 255"):
        check_output_dir(tmp_path / ("c" * 256) / "sub", "--keep")


def test_output_folder_checks(tmp_path, monkeypatch):
    afile = tmp_path / "afile"
    afile.write_text("x")
    with pytest.raises(InputError, match="is a file, not a folder"):
        check_output_dir(afile, "--keep")
    with pytest.raises(InputError, match="is a file, not a folder"):
        check_output_dir(afile / "sub" / "deeper", "-o")
    with pytest.raises(InputError, match="part of the path is a file"):
        check_output_path(afile / "x.mp4", "-o")
    assert check_output_dir(tmp_path / "new" / "deeper", "-o") == tmp_path / "new" / "deeper"
    assert not (tmp_path / "new").exists()  # checking creates nothing
    # Unwritable: access(2) says no (a read-only file system or permissions; root passes permissions, so the
    # permission case is real only for other users: see the next test).
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: False if Path(p) == tmp_path else real_access(p, mode))
    with pytest.raises(InputError, match=r"-o '.*x.mp4': cannot write into '.*': permission denied"):
        check_output_path(tmp_path / "x.mp4", "-o")
    with pytest.raises(InputError, match=r"--keep '.*new': cannot write into '.*': permission denied"):
        check_output_dir(tmp_path / "new", "--keep")
    with pytest.raises(InputError, match=r"-o '.*': cannot write there: permission denied"):
        check_output_dir(tmp_path, "-o")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into a 0555 folder")
def test_a_folder_without_write_permission_is_refused(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        with pytest.raises(InputError, match="permission denied"):
            check_output_path(ro / "x.mp4", "-o")
    finally:
        ro.chmod(0o755)


def test_a_full_disk_is_an_output_error_and_leaves_the_old_file(tmp_path, monkeypatch):
    target = tmp_path / "out.json"
    atomic_write_text(target, "old")
    with pytest.raises(OutputError, match="cannot write .*out.json: no space left on the device"):
        with atomic_path(target) as tmp:
            tmp.write_text("partial")
            raise OSError(errno.ENOSPC, "No space left on device")
    # A writer that hides the errno (libsndfile: "System error.") on a full file system: still an OutputError.
    import avatar.io as aio

    monkeypatch.setattr(aio, "_disk_full", lambda path: True)
    with pytest.raises(OutputError, match="no space left"):
        with atomic_path(target):
            raise RuntimeError("System error.")
    monkeypatch.setattr(aio, "_disk_full", lambda path: False)
    with pytest.raises(RuntimeError):  # a bug stays a bug
        with atomic_path(target):
            raise RuntimeError("boom")
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["out.json"]


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_stale_temp_files_of_the_target_are_removed_by_the_next_write(tmp_path):
    target = tmp_path / "clip.mp4"
    dead = tmp_path / f".clip.mp4.{_dead_pid()}.abcd1234.mp4.part"
    alive = tmp_path / f".clip.mp4.{os.getppid()}.abcd1234.mp4.part"  # a writer still at work: left alone
    old = tmp_path / ".clip.mp4.zzzz9999.mp4.part"  # the old name (no pid), untouched for two days
    other = tmp_path / f".other.mp4.{_dead_pid()}.abcd1234.mp4.part"  # another target's: not ours to judge
    for p in (dead, alive, old, other):
        p.write_text("partial")
    os.utime(old, (time.time() - 2 * 86400,) * 2)
    atomic_write_text(target, "x")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([target.name, alive.name, other.name])
    assert remove_stale_parts(tmp_path / "other.mp4") == 1


def test_a_killed_writer_leaves_a_temp_file_that_the_next_write_removes(tmp_path):
    """kill -9 cannot be handled: the write that comes next cleans up."""
    target = tmp_path / "speech.wav"
    code = ("import sys, time; from avatar.io import atomic_path\n"
            "with atomic_path(sys.argv[1]) as tmp:\n"
            "    tmp.write_bytes(b'partial'); print('writing', flush=True); time.sleep(60)\n")
    p = subprocess.Popen([sys.executable, "-c", code, str(target)], stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "writing"
    p.kill()
    p.wait()
    left = [q.name for q in tmp_path.iterdir()]
    assert len(left) == 1 and left[0].startswith(".speech.wav.") and left[0].endswith(".part")
    atomic_write_text(target, "done")
    assert [q.name for q in tmp_path.iterdir()] == ["speech.wav"]


def test_sigterm_in_the_cli_removes_the_temp_file(tmp_path):
    """SIGTERM raises in the CLI's main thread, so the atomic write's cleanup runs (exit 143, one error line)."""
    target = tmp_path / "out.txt"
    code = ("import sys, time, typer\n"
            "from avatar import cli\n"
            "target = sys.argv[1]\n"
            "from avatar.io import atomic_path\n"
            "@cli.app.command('slow-write-test')\n"
            "def slow() -> None:\n"
            "    def run() -> None:\n"
            "        with atomic_path(target) as tmp:\n"
            "            tmp.write_bytes(b'partial'); print('writing', flush=True); time.sleep(60)\n"
            "    cli.guarded(run)\n"
            "sys.argv[1:] = ['slow-write-test']\n"
            "cli.main()\n")
    p = subprocess.Popen([sys.executable, "-c", code, str(target)], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "writing"
    assert len(list(tmp_path.iterdir())) == 1
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=30)
    assert p.returncode == 143 and err.strip() == "error: terminated", err
    assert list(tmp_path.iterdir()) == []
