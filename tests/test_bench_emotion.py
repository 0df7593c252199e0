"""The emotion benchmark runs end to end (it broke once when the model's tokenizer changed and no test saw it)."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_emotion_bench_prints_its_figures(tmp_path) -> None:
    data = tmp_path / "eb.csv"
    rows = [("happy", 4.2), ("sad", 1.9), ("calm", 3.1), ("furious", 1.6), ("glad", 3.9), ("gloomy", 2.2)]
    with open(data, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["id", "split", "V", "A", "D", "text"])
        for i, (word, v) in enumerate(rows):
            w.writerow([f"d{i}", "dev", v, 3.0 + (i % 3) * 0.3, 3.0 - (i % 2) * 0.2, f"I feel so {word} today."])
    r = subprocess.run([sys.executable, str(ROOT / "bench" / "emotion_bench.py"), "--data", str(data)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    for line in ("Dialogue test split", "category accuracy", "macro-F1", "valence sign", "confusion (rows gold",
                 "ECE", "VAD head    Pearson r: valence", "VADER       Pearson r", "Intensity triples:",
                 "throughput batched", "latency one short sentence", "rerun: .venv/bin/python bench/emotion_bench.py"):
        assert line in r.stdout
