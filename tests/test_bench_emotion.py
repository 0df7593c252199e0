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
    # A slice of the dialogue test split (every category, both kinds of row) keeps the run short on a loaded machine.
    lines = tmp_path / "lines.csv"
    with open(ROOT / "datasets" / "dialogue" / "lines.csv", newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        seen: dict[tuple[str, str], int] = {}
        keep = []
        for row in reader:
            key = (row["category"], row["variant"] == "original")
            if row["split"] == "test" and seen.get(key, 0) < 4:
                seen[key] = seen.get(key, 0) + 1
                keep.append(row)
    with open(lines, "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=reader.fieldnames)
        w.writeheader()
        w.writerows(keep)
    r = subprocess.run([sys.executable, str(ROOT / "bench" / "emotion_bench.py"), "--data", str(data),
                        "--dialogue", str(lines), "--baseline", str(ROOT / "weights" / "emotion")],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    for line in ("Dialogue test split", "category accuracy", "hand-written (28)", "macro-F1", "valence sign", "confusion (rows gold",
                 "ECE", "VAD head    Pearson r: valence", "VADER       Pearson r", "Intensity triples:",
                 "throughput batched", "latency one short sentence", "same run, alternating with the baseline",
                 "x throughput", "Before / after: the baseline", "EmoBank dev r arousal, final",
                 "rerun: .venv/bin/python bench/emotion_bench.py"):
        assert line in r.stdout
