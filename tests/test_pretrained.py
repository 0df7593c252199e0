"""avatar.pretrained: hostile model folders are refused from config.json and the safetensors header, before anything is built."""

from __future__ import annotations

import json
import struct

import pytest

from avatar.errors import ModelError


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
    # VmHWM is this process's own peak: ru_maxrss would also carry the parent's peak across a vfork + exec.
    code = ("import re\n"
            "from avatar.errors import ModelError\n"
            "from avatar.face.model import FaceDenoiser\n"
            "try:\n"
            f"    FaceDenoiser.from_pretrained({str(folder)!r})\n"
            "except ModelError as exc:\n"
            "    print('refused:', exc)\n"
            "print(re.search(r'VmHWM:\\s+(\\d+) kB', open('/proc/self/status').read()).group(1))\n")
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
