"""Export a trained emotion model folder to one ONNX graph (encoder with the adapter merged, pooling, both heads).

    .venv/bin/python -m avatar.emotion.export --model weights/emotion [--weights int8|fp16|fp32]

Writes `model.onnx` (inputs `input_ids`, `attention_mask` [B, T] int64; outputs `vad_z` [B, 3] z-scored EmoBank
ratings, `logits` [B, C] category logits before temperature, `intensity` [B] in 0..1) and `tokenizer.json` beside
the folder's config, so inference needs onnxruntime and `tokenizers` only (no torch, no encoder package).
Weights: "fp32" as trained (about 90 MB: over the 50 MB we allow a file); "fp16" stores each weight in half
precision with a Cast in front that onnxruntime folds away when the session loads, so it computes in float32
(about 45 MB); "int8" quantises the linear layers per channel (onnxruntime dynamic quantisation) and stores the
embeddings as fp16 (about 30 MB, faster, a little less exact). Training-time only: imports torch.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import tempfile
from pathlib import Path

import numpy as np

log = logging.getLogger("avatar.emotion.export")


def export_onnx(model_dir: Path, out: Path) -> None:
    """Trace the merged model to float32 ONNX at `out` (dynamic batch and length)."""
    import torch

    from avatar.emotion.model import EmotionModel

    model = EmotionModel.from_pretrained(model_dir).eval()
    # SDPA's mask handling is traced with Python branches on the dummy batch's shapes; eager attention is plain ops.
    model.encoder.set_attn_implementation("eager")
    if model.cat_head is None:
        raise SystemExit(f"{model_dir} has no categorical head: train with --dialogue first")

    class Graph(torch.nn.Module):
        def __init__(self, m: EmotionModel) -> None:
            super().__init__()
            self.m = m

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> tuple[torch.Tensor, ...]:
            z, logits, inten = self.m.heads(self.m.pooled(input_ids, attention_mask))
            return z, logits, torch.sigmoid(inten)

    ids = torch.tensor([[101, 2000, 2001, 2002, 102], [101, 2003, 102, 0, 0]])
    mask = (ids != 0).long()
    torch.onnx.export(Graph(model), (ids, mask), str(out), input_names=["input_ids", "attention_mask"],
                      output_names=["vad_z", "logits", "intensity"],
                      dynamic_axes={"input_ids": {0: "batch", 1: "tokens"}, "attention_mask": {0: "batch", 1: "tokens"},
                                    "vad_z": {0: "batch"}, "logits": {0: "batch"}, "intensity": {0: "batch"}},
                      opset_version=17, dynamo=False)
    # Parity with torch (a fresh load, its default SDPA attention) on a padded batch of real sentences: a trace of
    # SDPA's mask handling read 0.26 off here; the eager trace reads 1e-7. (Switching a loaded model back from
    # eager to SDPA did not restore its own numbers in transformers 5, hence the fresh load.)
    import onnxruntime as ort

    model = EmotionModel.from_pretrained(model_dir).eval()

    texts = ["Help! Somebody help me!", "I set two plates at supper out of habit.", "Okay."]
    tok = model.tokenizer(texts, padding=True, return_tensors="pt")
    with torch.inference_mode():
        want = model.heads(model.pooled(tok["input_ids"], tok["attention_mask"]))
    got = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"]).run(
        None, {"input_ids": tok["input_ids"].numpy(), "attention_mask": tok["attention_mask"].numpy()})
    want = [want[0], want[1], torch.sigmoid(want[2])]
    err = max(float(np.abs(w.numpy() - g).max()) for w, g in zip(want, got))
    if err > 1e-3:
        raise SystemExit(f"ONNX export differs from torch by {err:.2e}")
    log.info("exported %s (max difference from torch %.1e)", out, err)


def store_half(src: Path, dst: Path, min_size: int = 4096, names: set[str] | None = None) -> None:
    """Store float32 initializers (all large ones, or only `names`) as float16, each followed by a Cast to float32."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    m = onnx.load(str(src))
    g = m.graph
    keep, casts = [], []
    for init in g.initializer:
        arr = numpy_helper.to_array(init)
        wanted = (init.name in names) if names is not None else arr.size >= min_size
        if init.data_type == TensorProto.FLOAT and wanted:
            keep.append(numpy_helper.from_array(arr.astype(np.float16), init.name + "__fp16"))
            casts.append(helper.make_node("Cast", [init.name + "__fp16"], [init.name], to=TensorProto.FLOAT,
                                          name=init.name + "__cast"))
        else:
            keep.append(init)
    del g.initializer[:]
    g.initializer.extend(keep)
    nodes = casts + list(g.node)
    del g.node[:]
    g.node.extend(nodes)
    onnx.save(m, str(dst))


def quantise_int8(src: Path, dst: Path) -> None:
    """Per-channel int8 weights for the linear layers; the embedding tables stored as float16."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with tempfile.TemporaryDirectory() as tmp:
        q = Path(tmp) / "q.onnx"
        quantize_dynamic(str(src), str(q), weight_type=QuantType.QInt8, per_channel=True, op_types_to_quantize=["MatMul"])
        m = onnx.load(str(q))
        gathered = {n.input[0] for n in m.graph.node if n.op_type == "Gather"}
        floats = {i.name for i in m.graph.initializer if i.data_type == onnx.TensorProto.FLOAT}
        store_half(q, dst, names=gathered & floats)


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", type=Path, default=Path("weights/emotion"))
    p.add_argument("--weights", choices=("fp32", "fp16", "int8"), default="fp16")
    p.add_argument("--out", type=Path, default=None, help="the ONNX file (default MODEL/model.onnx)")
    p.add_argument("--emobank", type=Path, default=Path("../shared/data/emobank/emobank_train_dev.csv"),
                   help="EmoBank CSV whose dev split the exported graph is measured on (test is never read)")
    p.add_argument("--no-eval", action="store_true", help="skip measuring the graph and regenerating the card")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    from avatar.emotion.model import encoder_dir
    from avatar.io import atomic_path

    out = args.out or args.model / "model.onnx"
    with tempfile.TemporaryDirectory() as tmp:
        f32 = Path(tmp) / "f32.onnx"
        export_onnx(args.model, f32)
        with atomic_path(out) as target:
            if args.weights == "fp32":
                shutil.copyfile(f32, target)
            elif args.weights == "fp16":
                store_half(f32, Path(target))
            else:
                quantise_int8(f32, Path(target))
    shutil.copyfile(encoder_dir() / "tokenizer.json", args.model / "tokenizer.json")
    log.info("wrote %s (%s weights, %.1f MB) and tokenizer.json", out, args.weights, out.stat().st_size / 1e6)
    if not args.no_eval and args.out is None:
        record_metrics(args.model, args.emobank, args.weights)


def record_metrics(folder: Path, emobank: Path, weights: str) -> dict:
    """Measure the exported graph as users run it; write the figures into config.json and regenerate the card."""
    import dataclasses
    import json

    from avatar.emotion import EmotionAnalyzer
    from avatar.emotion.card import model_card
    from avatar.emotion.evaluate import summary
    from avatar.emotion.regressor import load_config
    from avatar.io import atomic_write_text

    figures = {"weights": weights, **summary(EmotionAnalyzer(folder), emobank)}
    cfg = load_config(folder)
    cfg.metrics["exported"] = figures
    atomic_write_text(folder / "config.json", json.dumps(dataclasses.asdict(cfg), indent=2))
    atomic_write_text(folder / "README.md", model_card(cfg))
    log.info("measured the exported graph: %s", json.dumps(figures))
    return figures


if __name__ == "__main__":
    main()
