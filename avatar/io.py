"""Safe file output: atomic writes and paths that cannot escape their output folder."""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from pathlib import Path
from typing import Iterator

from avatar.errors import InputError

_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def _read_umask() -> int:
    mask = os.umask(0)  # the only portable way to read it is to set it and put it back: do it once, at import
    os.umask(mask)
    return mask


_UMASK = _read_umask()


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str], suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success it is renamed onto `path`, on error removed."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    # Same folder, so the final os.replace is a rename on one file system (atomic on POSIX and Windows).
    fd, tmp = tempfile.mkstemp(
        prefix=f".{target.name}.", suffix=suffix if suffix is not None else target.suffix + ".part",
        dir=target.parent,
    )
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        # mkstemp creates 0600; give the output the permissions a plain open() would (0666 less the umask).
        os.chmod(tmp_path, 0o666 & ~_UMASK)
        os.replace(tmp_path, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        raise


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
