"""Safe file output: atomic writes, output paths checked before the work, paths that cannot escape their folder.

Every file the engine writes goes through `atomic_path`: a hidden temporary file beside the target
(`.NAME.<pid>.<random><suffix>`), renamed onto the target when complete and removed on any error. The pid in
the name lets a later write of the same target remove what a killed process (SIGKILL, power loss) left behind.
Commands call `check_output_path` / `check_output_dir` on every output before any slow work, so a typo, an
unwritable folder or a file that must not be replaced costs nothing; an OSError while writing (a full disk)
becomes an `OutputError` naming the file.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import logging
import os
import re
import stat
import tempfile
import time
from pathlib import Path
from typing import Iterator

from avatar.errors import AvatarError, InputError, OutputError

log = logging.getLogger(__name__)

_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
#: Longest file name in bytes (NAME_MAX on Linux, macOS and Windows file systems).
NAME_MAX = 255
#: A temporary file of a target whose writer is gone (or untouched this long) is removed by the next write.
STALE_PART_S = 24 * 3600
_TMP_STEM_MAX = 120  # room left in a NAME_MAX name for the dot, the pid, mkstemp's 8 characters and the suffix


def _read_umask() -> int:
    mask = os.umask(0)  # the only portable way to read it is to set it and put it back: do it once, at import
    os.umask(mask)
    return mask


_UMASK = _read_umask()


def describe_os_error(exc: OSError) -> str:
    """A one-line reason for an OSError, e.g. 'No space left on device' (no errno numbers, no traceback)."""
    if exc.errno == errno.ENOSPC:
        return "no space left on the device"
    if exc.errno == errno.EDQUOT:
        return "disk quota exceeded"
    if exc.errno == errno.EROFS:
        return "the file system is read-only"
    if exc.errno in (errno.EACCES, errno.EPERM):
        return "permission denied"
    if exc.errno == errno.ENAMETOOLONG:
        return "the file name is too long"
    return exc.strerror or str(exc) or type(exc).__name__


def _tmp_stem(name: str) -> str:
    """The part of a target's name its temporary files start with: the name, or (too long) a prefix + hash."""
    if len(name.encode("utf-8", "surrogateescape")) <= _TMP_STEM_MAX:
        return name
    digest = hashlib.sha256(name.encode("utf-8", "surrogateescape")).hexdigest()[:10]
    return name.encode("utf-8", "surrogateescape")[:_TMP_STEM_MAX - 11].decode("utf-8", "ignore") + "~" + digest


def _tmp_suffix(target: Path, suffix: str | None) -> str:
    """The temporary file's suffix: as asked, else the target's suffix + '.part' (only '.part' for odd suffixes)."""
    if suffix is not None:
        return suffix
    return target.suffix + ".part" if len(target.suffix) <= 16 else ".part"


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists on this machine (in this pid namespace)."""
    return _pid_alive(pid)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: it exists, owned by someone else
        return True
    return True


def remove_stale_parts(target: str | os.PathLike[str], suffix: str | None = None, max_age_s: float = STALE_PART_S) -> int:
    """Remove temporary files that an earlier, killed write of `target` left beside it; returns how many.

    A temp file is stale when the process named in it is gone, or it has not been written to for `max_age_s`
    (an old name without a pid, or a pid now reused by another process)."""
    target = Path(target)
    suffix = _tmp_suffix(target, suffix)
    pattern = re.compile(re.escape("." + _tmp_stem(target.name) + ".") + r"(?:(\d+)\.)?[a-z0-9_]{8}"
                         + re.escape(suffix) + "$")
    removed = 0
    try:
        entries = list(os.scandir(target.parent))
    except OSError:
        return 0
    now = time.time()
    for entry in entries:
        m = pattern.match(entry.name)
        if m is None:
            continue
        try:
            st = entry.stat(follow_symlinks=False)
            if not stat.S_ISREG(st.st_mode):
                continue
            pid = int(m.group(1)) if m.group(1) else None
            if (pid is not None and pid != os.getpid() and not _pid_alive(pid)) or now - st.st_mtime > max_age_s:
                os.unlink(entry.path)
                removed += 1
                log.info("removed %s, left by an interrupted write", entry.path)
        except OSError:
            continue
    return removed


def _refuse_special(target: Path, what: str) -> None:
    """Refuse a target that exists and is not a regular file (a folder, device node, FIFO or socket)."""
    try:
        st = os.stat(target)
    except FileNotFoundError:
        return
    except NotADirectoryError:
        raise InputError(f"{what} {str(target)!r}: a part of the path is a file, not a folder") from None
    except OSError as exc:
        raise InputError(f"{what} {str(target)!r}: {describe_os_error(exc)}") from None
    if stat.S_ISDIR(st.st_mode):
        raise InputError(f"{what} {str(target)!r} is a folder")
    if not stat.S_ISREG(st.st_mode):
        raise InputError(f"{what} {str(target)!r} is not a regular file (a device, FIFO or socket); "
                         "refusing to replace it")


def check_output_dir(folder: str | os.PathLike[str], what: str = "the output folder", *,
                     file: Path | None = None) -> Path:
    """Check that `folder` is, or can be created as, a folder this process can write into; returns it.

    Nothing is created. Raises InputError naming `what` (e.g. '--keep') when the folder or a parent is a file,
    a name is too long, or the folder (or the nearest existing parent) is not writable (permissions, a
    read-only file system). `file`: the file to be written there, named in the message instead of the folder."""
    folder = Path(folder) if str(folder) else Path(".")
    named = str(file) if file is not None else str(folder)
    for part in folder.parts:
        if len(part.encode("utf-8", "surrogateescape")) > NAME_MAX:
            raise InputError(f"{what}: the name {part[:40]!r}... is longer than {NAME_MAX} bytes")
    existing = folder
    while True:
        try:
            st = os.stat(existing)
            break
        except FileNotFoundError:
            if existing.parent == existing:
                raise InputError(f"{what} {str(folder)!r}: no such folder") from None
            existing = existing.parent
        except NotADirectoryError:
            existing = existing.parent  # a file where a folder should be: found below
        except OSError as exc:
            raise InputError(f"{what} {str(folder)!r}: {describe_os_error(exc)}") from None
    if not stat.S_ISDIR(st.st_mode):
        if existing == folder:
            raise InputError(f"{what} {str(folder)!r} is a file, not a folder")
        raise InputError(f"{what} {str(folder)!r}: {str(existing)!r} is a file, not a folder")
    # access(2) checks permissions, ACLs and read-only file systems (EROFS, also for root) without writing.
    if not os.access(existing, os.W_OK | os.X_OK):
        reason = "the file system is read-only" if _read_only_fs(existing) else "permission denied"
        where = "there" if existing == folder and file is None else f"into {str(existing)!r}"
        raise InputError(f"{what} {named!r}: cannot write {where}: {reason}")
    return folder


def _disk_full(path: Path) -> bool:
    """Whether the file system holding `path` has (almost) no space left for this user."""
    try:
        st = os.statvfs(path)
    except (OSError, AttributeError):
        return False
    return st.f_bavail * st.f_frsize < 64 * 1024


def _read_only_fs(path: Path) -> bool:
    try:
        return bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except (OSError, AttributeError):
        return False


def check_output_path(path: str | os.PathLike[str], what: str = "-o", *, force: bool = False) -> Path:
    """Check, before any work, that a file can be written at `path`; returns it.

    Refused (InputError): a folder, device node, FIFO or socket at `path` (never replaced); a read-only file
    (no write permission, or no 'w' bit at all) unless `force`; a name longer than NAME_MAX; a folder that
    cannot be written into or created."""
    path = Path(path)
    if path.name in ("", ".", ".."):
        raise InputError(f"{what} {str(path)!r} does not name a file")
    if len(path.name.encode("utf-8", "surrogateescape")) > NAME_MAX:
        raise InputError(f"{what}: the file name is {len(path.name.encode('utf-8', 'surrogateescape'))} bytes "
                         f"long; the limit is {NAME_MAX}")
    _refuse_special(path, what)
    if path.exists() and not force and (not os.access(path, os.W_OK) or not os.stat(path).st_mode & 0o222):
        raise InputError(f"{what} {str(path)!r} is read-only; pass --force to replace it")
    check_output_dir(path.parent, what, file=path)
    return path


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str], suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success it is renamed onto `path`, on error removed.

    A folder, device node, FIFO or socket at `path` is refused (InputError), never replaced. An OSError while
    writing (disk full, permission, folder gone) is raised as OutputError naming `path`."""
    target = Path(path)
    suffix = _tmp_suffix(target, suffix)
    _refuse_special(target, "the output")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_parts(target, suffix)
        # Same folder, so the final os.replace is a rename on one file system (atomic on POSIX and Windows).
        fd, tmp = tempfile.mkstemp(prefix=f".{_tmp_stem(target.name)}.{os.getpid()}.", suffix=suffix,
                                   dir=target.parent)
    except OSError as exc:
        raise OutputError(f"cannot write {target}: {describe_os_error(exc)}") from exc
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        # mkstemp creates 0600; give the output the permissions a plain open() would (0666 less the umask).
        os.chmod(tmp_path, 0o666 & ~_UMASK)
        os.replace(tmp_path, target)
    except BaseException as exc:
        error = write_error(target, exc, tmp_path)  # before the partial file goes: removing it frees the space
        with contextlib.suppress(OSError):
            tmp_path.unlink()
        if error is not None:
            raise error from exc
        raise


def write_error(target: Path, exc: BaseException, written: Path | None = None) -> OutputError | None:
    """The OutputError for an exception raised while writing `target`, or None when it is not a write failure.

    An OSError is one; so is any other error from a writer that hides the errno (libsndfile says "System
    error.") when the file system holding `written` (the partial file, still there) is full."""
    if isinstance(exc, AvatarError) or not isinstance(exc, Exception):
        return None
    if isinstance(exc, OSError):
        return OutputError(f"cannot write {target}: {describe_os_error(exc)}")
    if _disk_full(written if written is not None else target.parent):
        return OutputError(f"cannot write {target}: no space left on the device")
    return None


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write bytes to `path` atomically and return the path."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write UTF-8 text to `path` atomically and return the path."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def safe_name(name: str) -> str:
    """Return `name` if it is a plain file/folder name (letters, digits, . _ -), else raise InputError."""
    if not isinstance(name, str) or not _SAFE_NAME.match(name) or name in {".", ".."} or ".." in name:
        raise InputError(
            f"unsafe name {name!r}: use 1-128 letters, digits, '.', '_' or '-', starting with a letter or digit"
        )
    return name


def safe_join(root: str | os.PathLike[str], *parts: str) -> Path:
    """Join `parts` under `root`, refusing any result that resolves outside `root`."""
    base = Path(root).resolve()
    candidate = base.joinpath(*parts).resolve()
    if candidate != base and base not in candidate.parents:
        raise InputError(f"path {'/'.join(parts)!r} would escape the output folder {str(base)!r}")
    return candidate
