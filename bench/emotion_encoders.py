"""Speed of candidate text encoders served with onnxruntime (fp32 and int8), for choosing the emotion encoder.

    .venv/bin/python bench/emotion_encoders.py --encoder PATH [--encoder PATH ...]

Exports each encoder (a transformers folder) to ONNX (mean pooling of the last layer), quantises it to int8
(onnxruntime dynamic quantisation), and prints one-short-sentence latency (median ms) and batched throughput
on 999 EmoBank-like sentences of 20 tokens (sentences/s) with onnxruntime on 2 threads.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np


def export(folder: str, out: Path) -> None:
    """Export the encoder's last hidden state to ONNX (input_ids, attention_mask -> [B, T, H])."""
    import torch
    from transformers import AutoModel

    model = AutoModel.from_pretrained(folder, local_files_only=True).eval()

    class Wrap(torch.nn.Module):
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, ids, mask):
            h = self.m(input_ids=ids, attention_mask=mask).last_hidden_state
            m = mask.unsqueeze(-1).to(h.dtype)
            return (h * m).sum(1) / m.sum(1).clamp(min=1.0)

    ids = torch.ones(2, 8, dtype=torch.long)
    torch.onnx.export(Wrap(model), (ids, torch.ones_like(ids)), str(out), input_names=["input_ids", "attention_mask"],
                      output_names=["pooled"], dynamic_axes={"input_ids": {0: "b", 1: "t"},
                                                             "attention_mask": {0: "b", 1: "t"}}, opset_version=17,
                      dynamo=False)


def timeit(path: Path, threads: int) -> tuple[float, float]:
    """(median ms for one 10-token sentence, sentences/s for 999 sentences of 22 tokens in batches of 64)."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    s = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    one = np.full((1, 10), 2000, dtype=np.int64)
    feed = {"input_ids": one, "attention_mask": np.ones_like(one)}
    for _ in range(5):
        s.run(None, feed)
    lat = []
    for _ in range(60):
        t0 = time.perf_counter()
        s.run(None, feed)
        lat.append((time.perf_counter() - t0) * 1000)
    b = np.full((64, 22), 2000, dtype=np.int64)
    feed = {"input_ids": b, "attention_mask": np.ones_like(b)}
    s.run(None, feed)
    t0 = time.perf_counter()
    n = 0
    while n < 999:
        s.run(None, feed)
        n += 64
    return statistics.median(lat), n / (time.perf_counter() - t0)


def main() -> None:
    """Export, quantise and time each encoder."""
    p = argparse.ArgumentParser()
    p.add_argument("--encoder", action="append", required=True)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with tempfile.TemporaryDirectory() as tmp:
        for i, enc in enumerate(args.encoder):
            f32 = Path(tmp) / f"e{i}.onnx"
            i8 = Path(tmp) / f"e{i}.int8.onnx"
            export(enc, f32)
            quantize_dynamic(str(f32), str(i8), weight_type=QuantType.QInt8)
            for kind, path in (("fp32", f32), ("int8", i8)):
                ms, sps = timeit(path, args.threads)
                print(f"{Path(enc).name:28s} {kind}: one short sentence {ms:6.1f} ms   batched {sps:6.0f} sentences/s",
                      flush=True)


if __name__ == "__main__":
    main()
