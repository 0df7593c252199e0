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
    with pytest.raises(ValueError):  # noqa: PT011
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


# --- hostile model folders (issue 20 item 20): refused from config.json and the safetensors header ---------------


def _hostile_folder(tmp_path, model: str, **changes):
    """A copy of a shipped model folder with its config.json edited."""
    import shutil
    from pathlib import Path

    src = Path(__file__).resolve().parents[1] / "weights" / model
    dst = tmp_path / model
    shutil.copytree(src, dst)
    cfg = json.loads((dst / "config.json").read_text())
    cfg.update(changes)
    (dst / "config.json").write_text(json.dumps(cfg))
    return dst


def _traced(fn):
    import time
    import tracemalloc

    tracemalloc.start()
    t0, err = time.perf_counter(), None
    try:
        fn()
    except Exception as exc:  # noqa: BLE001 - returned to the test
        err = exc
    took, peak = time.perf_counter() - t0, tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return err, peak, took


@pytest.mark.parametrize("model,changes", [
    ("face", {"blocks": 200_000}),      # sized a 2-million-entry shape table (1e9: minutes and GBs) before
    ("face", {"hidden": 10**9}),
    ("gesture", {"layers": 200_000}),
    ("face", {"fps": 1e6}),             # a million frames a second of audio
    ("gesture", {"window": float("nan")}),
], ids=["face-blocks", "face-hidden", "gesture-layers", "face-fps", "gesture-nan"])
def test_hostile_config_is_refused_before_anything_is_built(tmp_path, model, changes):
    from avatar.face.generate import load_face_model
    from avatar.gesture.generate import load_gesture_model

    folder = _hostile_folder(tmp_path, model, **changes)
    load = load_face_model if model == "face" else load_gesture_model
    err, peak, took = _traced(lambda: load(folder))
    assert isinstance(err, ModelError) and "out of range" in str(err), err
    assert peak < 8 * 2**20 and took < 2.0, (peak, took)


def test_weights_are_checked_against_the_header_before_they_are_read(tmp_path):
    """A model.safetensors whose header does not fit the config is refused from the header: its 256 MB of data
    (a sparse file here) are never read (the training side; inference reads model.onnx, checked below)."""
    from avatar.face.model import FaceDenoiser
    from avatar.pretrained import safetensors_header

    def load_face_model(folder):
        return FaceDenoiser.from_pretrained(folder)

    folder = _hostile_folder(tmp_path, "face")
    header = json.dumps({"null_vad": {"dtype": "F32", "shape": [2**26], "data_offsets": [0, 2**28]}}).encode()
    with open(folder / "model.safetensors", "wb") as fh:
        fh.write(struct.pack("<Q", len(header)) + header)
        fh.truncate(8 + len(header) + 2**28)
    assert safetensors_header(folder / "model.safetensors") == {"null_vad": ("F32", (2**26,))}
    err, peak, _ = _traced(lambda: load_face_model(folder))
    assert isinstance(err, ModelError) and "does not fit its config.json" in str(err), err
    assert peak < 8 * 2**20, peak


def test_torch_models_are_laid_out_on_the_meta_device_first(tmp_path):
    """PretrainedMixin.from_pretrained checks the config's shapes (a module on torch's meta device: no memory)
    against the header before it builds the module: hidden=4096 would have allocated about 3 GB."""
    import subprocess
    import sys

    folder = _hostile_folder(tmp_path, "face", hidden=4096)
    code = ("import resource, sys\n"
            "from avatar.errors import ModelError\n"
            "from avatar.face.model import FaceDenoiser\n"
            "try:\n"
            f"    FaceDenoiser.from_pretrained({str(folder)!r})\n"
            "except ModelError as exc:\n"
            "    print('refused:', exc)\n"
            "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    out = r.stdout.strip().splitlines()
    assert r.returncode == 0 and out[0].startswith("refused:") and "does not fit" in out[0], (r.stdout, r.stderr)
    assert int(out[-1]) < 1_000_000, f"{int(out[-1]) / 1e3:.0f} MB peak"  # kB; torch itself is ~300 MB


def test_a_graph_that_does_not_fit_its_config_is_refused(tmp_path):
    """Inference runs model.onnx: a config.json sized for another graph is refused when loaded, not when run."""
    from avatar.face.generate import load_face_model
    from avatar.face.viseme_net import load_viseme_net

    with pytest.raises(ModelError, match="does not fit its config.json: input 'audio'"):
        load_face_model(_hostile_folder(tmp_path, "face", audio_dim=80))
    with pytest.raises(ModelError, match="does not fit its config.json"):
        load_viseme_net(_hostile_folder(tmp_path, "lipsync", audio_dim=80))
