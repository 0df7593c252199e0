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
