"""Exporting a trained torch model to the `model.onnx` that inference runs (training side: torch, onnx, onnxscript).

`save_pretrained` calls `export_onnx` for every model class that declares its graph (`onnx_example`,
`onnx_inputs`, `onnx_outputs`, `onnx_dynamic`); `python -m avatar.export --class FaceDenoiser weights/face`
re-exports a saved folder (what the shipped `model.onnx` files were made with). torch's
dynamo exporter (opset 18) is used: the TorchScript one baked the batch and window sizes of
`nn.MultiheadAttention` into the gesture graph. Each export is checked against the torch module on its
example inputs (and on a second, different frame count) before it is written.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from avatar.errors import ModelError
from avatar.io import atomic_path

log = logging.getLogger(__name__)

#: ONNX opset of every exported graph (the lowest torch's dynamo exporter writes).
OPSET = 18
#: Largest |onnxruntime - torch| accepted at export, relative to the output's largest magnitude (float32 kernels
#: differ in summation order; the shipped models agree to about 1e-6 of it).
EXPORT_RTOL = 1e-4


def _quiet_export(module: Any, args: tuple, names: list[str], outputs: list[str],
                  dynamic: dict[str, dict[int, str]]) -> Any:
    import torch

    dims: dict[str, Any] = {}
    shapes = []
    for name in names:
        axes = dynamic.get(name, {})
        shapes.append({i: dims.setdefault(d, torch.export.Dim(d)) for i, d in axes.items()} or None)
    logging.getLogger("torch.onnx").setLevel(logging.ERROR)
    with warnings.catch_warnings(), contextlib.redirect_stdout(sys.stderr):
        warnings.simplefilter("ignore")
        return torch.onnx.export(module, args, input_names=names, output_names=outputs, dynamic_shapes=tuple(shapes),
                                 opset_version=OPSET, dynamo=True, optimize=True, verbose=False)


def export_onnx(module: Any, folder: str | os.PathLike[str], metadata: dict[str, str] | None = None) -> Path:
    """Write `folder`/model.onnx for a torch module that declares its graph; checked against torch first.

    The module gives `onnx_inputs` / `onnx_outputs` (names), `onnx_dynamic` (input name -> {axis: dim name})
    and `onnx_example(frames)` (example inputs as a tuple of tensors). The graph's metadata carries the model's
    `_class_name` and `_format_version` and `metadata`.
    """
    import onnx
    import torch

    from avatar.runtime import OnnxModel

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    was_training = module.training
    module.eval()
    try:
        names, outputs = list(module.onnx_inputs), list(module.onnx_outputs)
        example = module.onnx_example(frames=32)
        program = _quiet_export(module, example, names, outputs, module.onnx_dynamic)
        proto = program.model_proto
        cfg = module.config
        meta = {"_class_name": type(cfg).class_name, "_format_version": str(type(cfg).format_version),
                **(metadata or {})}
        onnx.helper.set_model_props(proto, meta)
        onnx.checker.check_model(proto)
        with tempfile.TemporaryDirectory() as tmp:
            probe = Path(tmp) / "model.onnx"
            onnx.save(proto, str(probe))
            session = OnnxModel(probe)
            for args in (example, module.onnx_example(frames=45)):
                with torch.no_grad():
                    want = module(*args)
                got = session(**{n: a.numpy() for n, a in zip(names, args)})
                want = want.numpy()
                err = float(np.abs(got - want).max())
                scale = max(1.0, float(np.abs(want).max()))
                if not err <= EXPORT_RTOL * scale:
                    raise ModelError(f"the ONNX export of {type(module).__name__} differs from torch by {err:.3g}")
        with atomic_path(folder / "model.onnx") as tmp_path:
            onnx.save(proto, str(tmp_path))
    finally:
        module.train(was_training)
    size = (folder / "model.onnx").stat().st_size
    log.info("exported %s to %s (%.1f MB, max |onnx - torch| %.2g, %.1f s)", type(module).__name__,
             folder / "model.onnx", size / 1e6, err, time.perf_counter() - t0)
    return folder / "model.onnx"
