"""avatar.pretrained.map_safetensors: the same tensors as safetensors' own reader, no copy, and bad files refused."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

from avatar.errors import ModelError
from avatar.pretrained import map_safetensors


def _tensors() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {"w": rng.standard_normal((3, 5)).astype(np.float32), "h": rng.standard_normal(7).astype(np.float16),
            "ids": np.arange(4, dtype=np.int64).reshape(1, 4), "flags": np.array([True, False]),
            "scalar": np.array(2.5, dtype=np.float64), "empty": np.zeros((0, 3), dtype=np.float32)}


def test_map_matches_safetensors_and_is_read_only(tmp_path):
    path = tmp_path / "m.safetensors"
    save_file(_tensors(), str(path), metadata={"format": "np"})
    ours, theirs = map_safetensors(path), load_file(str(path))
    assert set(ours) == set(theirs)
    for k, v in theirs.items():
        assert ours[k].dtype == v.dtype and ours[k].shape == v.shape
        np.testing.assert_array_equal(ours[k], v)
    assert not ours["w"].flags.writeable  # a view of the file: writing into it must fail, not corrupt it
    with pytest.raises(ValueError):
        ours["w"][0, 0] = 1.0


def test_map_reads_the_file_where_it_cannot_be_mapped(tmp_path, monkeypatch):
    import mmap

    path = tmp_path / "m.safetensors"
    save_file(_tensors(), str(path))

    def refuse(*args, **kwargs):
        raise OSError("mmap not supported here")

    monkeypatch.setattr(mmap, "mmap", refuse)
    ours, theirs = map_safetensors(path), load_file(str(path))
    for k, v in theirs.items():
        np.testing.assert_array_equal(ours[k], v)
    assert not ours["w"].flags.writeable


def _raw(tmp_path, header: object, data: bytes = b"", size: int | None = None):
    h = json.dumps(header).encode()
    path = tmp_path / "bad.safetensors"
    path.write_bytes(struct.pack("<Q", len(h) if size is None else size) + h + data)
    return path


@pytest.mark.parametrize("header, data, size", [
    ({"x": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}, b"\0" * 4, None),   # data cut short
    ({"x": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}, b"\0" * 8, None),   # shape against bytes
    ({"x": {"dtype": "BF16", "shape": [2], "data_offsets": [0, 4]}}, b"\0" * 4, None),  # no NumPy dtype
    ({"x": {"dtype": "F32", "shape": [-2], "data_offsets": [0, 8]}}, b"\0" * 8, None),  # negative size
    ({"x": {"dtype": "F32", "shape": [2], "data_offsets": [8, 0]}}, b"\0" * 8, None),   # offsets reversed
    ({"x": {"dtype": "F32", "shape": [2]}}, b"\0" * 8, None),                           # no offsets
    ([1, 2], b"", None),                                                                # not an object
    ({}, b"", 10**9),                                                                   # header past the end
])
def test_map_refuses_broken_files(tmp_path, header, data, size):
    with pytest.raises(ModelError):
        map_safetensors(_raw(tmp_path, header, data, size))


def test_map_refuses_short_and_missing_files(tmp_path):
    short = tmp_path / "short.safetensors"
    short.write_bytes(b"\1\2")
    with pytest.raises(ModelError, match="too short"):
        map_safetensors(short)
    with pytest.raises(ModelError):
        map_safetensors(tmp_path / "missing.safetensors")
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(struct.pack("<Q", 4) + b"\xff\xfe{]")
    with pytest.raises(ModelError, match="header"):
        map_safetensors(garbage)
