"""The model registry (avatar.weights) and the one ONNX runtime (avatar.runtime)."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
import threading
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest

from avatar.errors import InputError, ModelError
from avatar.weights import ModelConfig, cached, clear_cache, env_var, model_dir, resolve, weights_root


def _affine_onnx(path: Path, w: np.ndarray, b: np.ndarray) -> Path:
    """A one-node graph y = x @ w + b (x [batch, in]) written with onnx's helpers."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["xw"]), helper.make_node("Add", ["xw", "b"], ["y"])],
        "affine",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", w.shape[0]])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", w.shape[1]])],
        initializer=[numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path


@pytest.fixture()
def affine(tmp_path):
    rng = np.random.default_rng(0)
    w = rng.normal(size=(4, 3)).astype(np.float32)
    b = rng.normal(size=3).astype(np.float32)
    return _affine_onnx(tmp_path / "affine" / "model.onnx", w, b), w, b


# ----------------------------------------------------------------------------------------------------- registry

def test_shipped_models_resolve_to_the_checkout_weights(root, monkeypatch):
    for name in ("face", "gesture", "lipsync", "emotion"):
        monkeypatch.delenv(env_var(name), raising=False)
        assert model_dir(name) == root / "weights" / name
        assert (model_dir(name) / "config.json").is_file()
    assert weights_root() == root / "weights"


def test_env_override_is_per_model_and_read_at_call_time(tmp_path, monkeypatch):
    monkeypatch.setenv("AVATAR_MODEL_GESTURE", str(tmp_path))
    assert env_var("gesture") == "AVATAR_MODEL_GESTURE"
    assert model_dir("gesture") == tmp_path
    assert model_dir("face") != tmp_path
    assert resolve("gesture", "/x/y") == Path("/x/y")  # an explicit folder beats the environment
    monkeypatch.setenv("AVATAR_MODEL_GESTURE", "  ")  # blank means unset
    assert model_dir("gesture").name == "gesture"
    with pytest.raises(ModelError):
        model_dir("../face")


def test_every_loader_honours_the_override(tmp_path, monkeypatch):
    """`say`, `avatar face|gesture` and live all load through these: an empty override folder fails loudly,
    naming it, instead of silently using the shipped weights."""
    from avatar.emotion import EmotionAnalyzer
    from avatar.face.generate import load_face_model
    from avatar.face.viseme_net import load_viseme_net
    from avatar.gesture.generate import load_gesture_model
    from avatar.pipeline import models

    for name, load in (("face", load_face_model), ("gesture", load_gesture_model), ("lipsync", load_viseme_net),
                       ("emotion", EmotionAnalyzer)):
        empty = tmp_path / name
        empty.mkdir()
        monkeypatch.setenv(env_var(name), str(empty))
        with pytest.raises(ModelError, match=str(empty)):
            load()
    with pytest.raises(ModelError, match=str(tmp_path / "face")):
        models().face()


def test_a_subprocess_say_path_honours_the_override(tmp_path):
    """The environment reaches a new process's default folders (what `avatar say` reads)."""
    code = ("from avatar.pipeline import DEFAULT_AVATAR; from avatar.weights import model_dir; "
            "print(model_dir('gesture')); print(DEFAULT_AVATAR)")
    env = {"AVATAR_MODEL_GESTURE": str(tmp_path / "g"), "AVATAR_MODEL_AVATARS": str(tmp_path / "a"),
           "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == [str(tmp_path / "g"), str(tmp_path / "a" / "default.glb")]


class _Cfg(ModelConfig):
    class_name: ClassVar[str] = "TinyNet"
    format_version: ClassVar[int] = 2
    hidden: int = 8
    names: tuple[str, ...] = ("a", "b")


def test_config_round_trip_carries_class_and_version(tmp_path):
    cfg = _Cfg(hidden=16)
    cfg.save(tmp_path)
    raw = json.loads((tmp_path / "config.json").read_text())
    assert raw["_class_name"] == "TinyNet" and raw["_format_version"] == 2 and raw["hidden"] == 16
    assert _Cfg.load(tmp_path) == cfg
    assert _Cfg.from_dict({"hidden": 4}).hidden == 4  # a folder written before versions existed


@pytest.mark.parametrize("raw, match", [
    ({"hidden": 8, "hiden": 9}, "hiden"),
    ({"_class_name": "OtherNet"}, "OtherNet"),
    ({"_format_version": 3}, "format version 3"),
    ({"_format_version": True}, "format version"),
    ({"hidden": "eight"}, "hidden"),
])
def test_config_refuses_unknown_keys_other_classes_and_newer_formats(raw, match):
    with pytest.raises(ModelError, match=match):
        _Cfg.from_dict(raw, source="x/config.json")


def test_config_load_errors_name_the_file(tmp_path):
    with pytest.raises(ModelError, match="config.json"):
        _Cfg.load(tmp_path)
    (tmp_path / "config.json").write_text("{nope")
    with pytest.raises(ModelError, match="not valid JSON"):
        _Cfg.load(tmp_path)


def test_cache_loads_each_folder_once_across_threads(tmp_path):
    clear_cache()
    calls = []

    def load(p: Path) -> str:
        calls.append(p)
        return f"model at {p.name}"

    out = []
    threads = [threading.Thread(target=lambda: out.append(cached("tiny", tmp_path / "." / "", load)))
               for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert calls == [tmp_path.resolve()] and set(out) == {f"model at {tmp_path.name}"}
    assert cached("other", tmp_path, load) and len(calls) == 2  # another kind: its own entry
    clear_cache()


# ----------------------------------------------------------------------------------------------------- runtime

def test_session_runs_one_thread_without_spinning(affine):
    from avatar.runtime import OnnxModel

    path, w, b = affine
    m = OnnxModel(path.parent)  # a folder means its model.onnx
    so = m.session.get_session_options()
    assert so.intra_op_num_threads == 1 and so.inter_op_num_threads == 1
    assert so.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    assert m.session.get_providers() == ["CPUExecutionProvider"]
    x = np.random.default_rng(1).normal(size=(5, 4))  # float64 in: cast to the graph's float32
    y = m(x=x)
    assert y.dtype == np.float32 and y.shape == (5, 3)
    np.testing.assert_allclose(y, x.astype(np.float32) @ w + b, rtol=1e-5, atol=1e-6)
    assert list(m.run({"x": x})) == ["y"]


def test_threads_from_environment(affine, monkeypatch):
    from avatar.runtime import OnnxModel, default_threads

    monkeypatch.setenv("AVATAR_ONNX_THREADS", "2")
    assert default_threads() == 2
    assert OnnxModel(affine[0]).session.get_session_options().intra_op_num_threads == 2
    monkeypatch.setenv("AVATAR_ONNX_THREADS", "zero")
    with pytest.raises(InputError, match="AVATAR_ONNX_THREADS"):
        default_threads()


def test_bad_inputs_and_files_are_clear_errors(affine, tmp_path):
    from avatar.runtime import OnnxModel

    m = OnnxModel(affine[0])
    with pytest.raises(InputError, match="missing"):
        m(z=np.zeros((1, 4)))
    with pytest.raises(InputError, match="model.onnx"):
        m(x=np.zeros((1, 5)))  # wrong width: onnxruntime's error, as InputError
    with pytest.raises(ModelError, match="only ONNX"):
        OnnxModel(tmp_path / "model.safetensors")
    with pytest.raises(ModelError, match="no ONNX graph"):
        OnnxModel(tmp_path / "nothing")
    (tmp_path / "junk.onnx").write_bytes(b"not a protobuf at all")
    with pytest.raises(ModelError, match="cannot load"):
        OnnxModel(tmp_path / "junk.onnx")


def test_load_onnx_opens_each_graph_once_and_pickles_by_path(affine):
    from avatar.runtime import load_onnx

    clear_cache()
    a = load_onnx(affine[0].parent)
    assert load_onnx(affine[0]) is a
    assert load_onnx(affine[0], threads=2) is not a
    b = pickle.loads(pickle.dumps(a))
    x = np.ones((2, 4), np.float32)
    np.testing.assert_array_equal(a(x=x), b(x=x))
    clear_cache()


# ------------------------------------------------------------------------------------------ saved optimisations


def test_optimised_graph_is_saved_once_and_gives_the_same_outputs(affine, tmp_path, monkeypatch):
    import avatar.runtime as rt

    path, w, b = affine
    cache = tmp_path / "cache"
    opened: list[str] = []
    real = rt._session
    monkeypatch.setattr(rt, "_session", lambda graph, options: (opened.append(graph), real(graph, options))[1])
    x = np.random.default_rng(1).normal(size=(5, 4)).astype(np.float32)
    plain = rt.OnnxModel(path)(x=x)
    first = rt.OnnxModel(path, optimized_cache=cache)
    saved = rt.optimized_graph_path(path, cache)
    assert saved.is_file() and opened[-1] == str(path)  # optimised from the source, written beside
    second = rt.OnnxModel(path, optimized_cache=cache)
    assert opened[-1] == str(saved)  # read back: no second optimisation
    assert np.array_equal(first(x=x), plain) and np.array_equal(second(x=x), plain)
    assert [p.name for p in cache.iterdir()] == [saved.name]  # no temporary file left behind
    again = pickle.loads(pickle.dumps(second))  # a worker process gets the same saved graph, not a new optimisation
    assert opened[-1] == str(saved) and again.optimized_cache == cache and np.array_equal(again(x=x), plain)
    stale = cache / f"{path.stem}-optimized-0000000000000000.onnx"  # made under another onnxruntime or CPU
    stale.write_bytes(saved.read_bytes())
    saved.unlink()
    rt.OnnxModel(path, optimized_cache=cache)
    assert sorted(p.name for p in cache.iterdir()) == [saved.name]  # saved again, the stale one gone


def test_a_broken_saved_graph_is_made_again_and_no_cache_falls_back(affine, tmp_path):
    import avatar.runtime as rt

    path, w, b = affine
    x = np.ones((2, 4), np.float32)
    cache = tmp_path / "cache"
    saved = rt.optimized_graph_path(path, cache)
    cache.mkdir()
    saved.write_bytes(b"not a graph")
    assert np.allclose(rt.OnnxModel(path, optimized_cache=cache)(x=x), x @ w + b, atol=1e-5)
    assert saved.stat().st_size > 100  # replaced by a real graph
    blocked = tmp_path / "a-file"
    blocked.write_text("x")  # a cache "folder" that is a file: nothing can be saved, the session still opens
    assert np.allclose(rt.OnnxModel(path, optimized_cache=blocked)(x=x), x @ w + b, atol=1e-5)
