"""Benchmark: the default voice (neural, piper) against festival HTS and eSpeak NG, judged from the audio alone.

1. Intelligibility: pocketsphinx 5.1.1 (its bundled en-us model, in bench/.venv-asr: bench/setup_asr.sh)
   transcribes 16 kHz mono renderings of 16 Harvard sentences (IEEE 1969, lists 1-2; public domain) by
   - ours: what `avatar tts TEXT` writes (default backend and voice, emotion read from the text),
   - festival with the HTS voice cmu_us_slt_arctic_hts (`text2wave`),
   - eSpeak NG (our espeak backend, same emotion),
   and reports each voice's word error rate (WER) in the same run.
   Goals: ours <= 1.5x festival's and <= 0.5x eSpeak NG's.
2. Emotion, on one sentence at arousal +0.8 and -0.8 (valence, dominance 0), measured on the output audio:
   median F0 (WORLD Harvest) x >= 1.3, loudness of active speech >= +4 dB, speaking rate x >= 1.2 (words per
   minute from the first to the last active 10 ms frame; phonemes per second of active speech beside it), and
   words per minute within 130-200 at both ends, as the mean over the 16 sentences.
3. Pauses between sentences (silent runs across each sentence boundary, 35 dB below the loudest frame) on a
   four-sentence paragraph at arousal -0.8, 0 and +0.8: every one within 200-600 ms; the lead-in (silence
   before the first active frame) within 50-150 ms.
4. Real-time factor of the TTS alone (the paragraph, warm process): wall clock with the voice's default threads,
   and CPU time per second of audio; goal <= 0.15 (checked on the neutral paragraph: the voice model alone; the
   same paragraph at arousal +0.8, where WORLD edits every sentence, is printed beside it).
5. `--plots DIR`: pitch and energy of the bench sentence at low, neutral and high arousal (PNG).

    flock /work/locks/bench.lock .venv/bin/python bench/voice_bench.py [--plots out/voice] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
ASR_PY = ROOT / "bench" / ".venv-asr" / "bin" / "python"
HARVARD = [  # Harvard sentences, lists 1 and 2 (IEEE Recommended Practice for Speech Quality Measurements, 1969)
    "The birch canoe slid on the smooth planks.",
    "Glue the sheet to the dark blue background.",
    "It's easy to tell the depth of a well.",
    "These days a chicken leg is a rare dish.",
    "Rice is often served in round bowls.",
    "The juice of lemons makes fine punch.",
    "The box was thrown beside the parked truck.",
    "The hogs were fed chopped corn and garbage.",
    "Four hours of steady work faced us.",
    "A large size in stockings is hard to sell.",
    "The boy was there when the sun rose.",
    "A rod is used to catch pink salmon.",
    "The source of the huge river is the clear spring.",
    "Kick the ball straight and follow through.",
    "Help the woman get back to her feet.",
    "A pot of tea helps to pass the evening.",
]
SENTENCE = "The quick brown fox jumps over the lazy dog, and then it runs away into the forest."
PARAGRAPH = ("I finished the report this morning. Then I walked slowly to the station... "
             "The platform was empty and cold. Nobody came for a long time - nobody at all.")
VOWELS = {"aa", "E", "ih", "oh", "ou"}


def words(text: str) -> list[str]:
    """Lower-case words without punctuation (apostrophes kept), for WER."""
    return re.findall(r"[a-z']+", text.lower().replace("’", "'"))


def wer(ref: list[str], hyp: list[str]) -> tuple[int, int]:
    """(edit distance in words, reference length)."""
    d = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        prev, d[0] = d[0], i
        for j, h in enumerate(hyp, 1):
            prev, d[j] = d[j], min(d[j] + 1, d[j - 1] + 1, prev + (r != h))
    return d[len(hyp)], len(ref)


def to_16k(audio: np.ndarray, sr: int) -> np.ndarray:
    """Resample to 16 kHz (polyphase) as int16."""
    from math import gcd

    from scipy.signal import resample_poly

    g = gcd(16000, sr)
    y = resample_poly(audio.astype(np.float64), 16000 // g, sr // g)
    return np.clip(np.round(y * 32767), -32768, 32767).astype(np.int16)


def write16(path: Path, audio: np.ndarray, sr: int) -> None:
    """A 16 kHz mono 16-bit WAV for the judge."""
    import soundfile as sf

    sf.write(str(path), to_16k(audio, sr), 16000, subtype="PCM_16")


def festival(text: str, path: Path) -> tuple[np.ndarray, int]:
    """festival's HTS voice (cmu_us_slt_arctic_hts) speaking `text` (audio, rate)."""
    import soundfile as sf

    raw = path.with_suffix(".fest.wav")
    subprocess.run(["text2wave", "-eval", "(voice_cmu_us_slt_arctic_hts)", "-o", str(raw)], input=text.encode(),
                   check=True, capture_output=True)
    audio, sr = sf.read(str(raw), dtype="float32")
    return audio if audio.ndim == 1 else audio.mean(axis=1), sr


def transcribe(paths: list[Path]) -> dict[str, str]:
    """pocketsphinx's transcripts, by path."""
    if not ASR_PY.is_file():
        sys.exit("no speech judge: run bench/setup_asr.sh first (makes bench/.venv-asr)")
    out = subprocess.run([str(ASR_PY), str(ROOT / "bench" / "asr_judge.py"), *map(str, paths)], check=True,
                         capture_output=True, text=True).stdout
    return {r["path"]: r["text"] for r in map(json.loads, out.splitlines())}


def boundary_silences(audio: np.ndarray, sr: int, spans) -> list[float]:
    """Length (s) of the silent run that contains each sentence boundary (active frames as in the analysis)."""
    from avatar.tts.analysis import active_frames

    _, mask = active_frames(audio, sr)
    out = []
    for _, end in spans[:-1]:
        k = min(mask.size - 1, int(end / 0.01))
        lo = hi = k
        while lo > 0 and not mask[lo - 1]:
            lo -= 1
        while hi < mask.size and not mask[hi]:
            hi += 1
        out.append((hi - lo) * 0.01)
    return out


def rate_of(sp, text: str) -> dict[str, float]:
    """Words per minute (first to last active frame) and phonemes per second of active speech."""
    from avatar.tts.analysis import measure

    m = measure(sp.audio, sp.sample_rate)
    spoken = [p for p in sp.timeline.phonemes if p.viseme != "sil"]
    return {"wpm": len(words(text)) / max(1e-6, m.speech_end - m.speech_start) * 60.0,
            "phonemes_per_s": len(spoken) / max(1e-6, m.active_seconds),
            "syllables_per_s": sum(p.viseme in VOWELS for p in spoken) / max(1e-6, m.active_seconds)}


def plot(rows: dict, path: Path) -> None:
    """Pitch (Harvest, Hz) and energy (dBFS per 10 ms) of the same sentence at each arousal, one panel each."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from avatar.audio import import_pyworld

    pw = import_pyworld()
    fig, axes = plt.subplots(2, 1, figsize=(11, 6.5), sharex=True)
    colours = {"low (a=-0.8)": "tab:blue", "neutral": "tab:gray", "high (a=+0.8)": "tab:red"}
    for name, sp in rows.items():
        x = sp.audio.astype(np.float64)
        f0, t = pw.harvest(x, sp.sample_rate, f0_floor=50.0, f0_ceil=500.0, frame_period=5.0)
        f0 = np.where(f0 > 0, f0, np.nan)
        axes[0].plot(t, f0, ".", ms=2.5, color=colours[name], label=name)
        hop = sp.sample_rate // 100
        n = x.size // hop
        db = 10 * np.log10(np.mean(x[: n * hop].reshape(n, hop) ** 2, axis=1) + 1e-12)
        axes[1].plot(np.arange(n) * 0.01, db, color=colours[name], lw=1, label=name)
        for w in sp.timeline.words:
            if name == "high (a=+0.8)":
                axes[1].text(w.start, -75, w.word, fontsize=7, color=colours[name], rotation=60)
    axes[0].set_ylabel("F0 (Hz)")
    axes[0].set_ylim(50, 350)
    axes[0].legend(loc="upper right")
    axes[0].set_title(f"Default voice: {SENTENCE!r}")
    axes[1].set_ylabel("energy (dBFS, 10 ms)")
    axes[1].set_ylim(-80, 0)
    axes[1].set_xlabel("time (s)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; print the figures and the rerun command; exit 1 if a goal fails."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--plots", type=Path, help="write pitch/energy plots (PNG) into this folder")
    ap.add_argument("--json", help="also write the figures to this JSON file")
    ap.add_argument("--repeats", type=int, default=3, help="timing repeats (median)")
    args = ap.parse_args(argv)

    from avatar.tts import get_backend
    from avatar.tts.cli import _text_vads
    from avatar.types import VAD

    ours, espeak = get_backend(), get_backend("espeak")
    print(f"voice_bench: ours = default backend {ours.name!r} ({ours.engine_for(None)}), voice "
          f"{ours.check_voice(None)!r}; peers festival HTS slt and eSpeak NG en-us; judge pocketsphinx 5.1.1 en-us")

    # 1. Intelligibility.
    errs = {"ours": [0, 0], "festival": [0, 0], "espeak": [0, 0]}
    per: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        paths: dict[tuple[str, int], Path] = {}
        for i, text in enumerate(HARVARD):
            vads = _text_vads(text)  # what `avatar tts TEXT` does without VAD flags
            for name in errs:
                p = Path(tmp) / f"{name}-{i:02d}.wav"
                if name == "festival":
                    audio, sr = festival(text, p)
                else:
                    sp = (ours if name == "ours" else espeak).synthesize(text, vads)
                    audio, sr = sp.audio, sp.sample_rate
                write16(p, audio, sr)
                paths[(name, i)] = p
        hyps = transcribe(list(paths.values()))
        for i, text in enumerate(HARVARD):
            row = {"text": text}
            for name in errs:
                hyp = hyps[str(paths[(name, i)])]
                e, n = wer(words(text), words(hyp))
                errs[name][0] += e
                errs[name][1] += n
                row[name] = hyp
            per.append(row)
    wers = {k: e / n for k, (e, n) in errs.items()}

    # 2. Emotion contrast on one sentence, and the rate over the 16 sentences at both ends.
    lo_v, hi_v = VAD(0, -0.8, 0), VAD(0, 0.8, 0)
    from avatar.tts.analysis import measure

    rows = {"low (a=-0.8)": ours.synthesize(SENTENCE, lo_v), "neutral": ours.synthesize(SENTENCE, VAD()),
            "high (a=+0.8)": ours.synthesize(SENTENCE, hi_v)}
    m = {k: measure(sp.audio, sp.sample_rate, f0_method="harvest") for k, sp in rows.items()}
    r = {k: rate_of(sp, SENTENCE) for k, sp in rows.items()}
    lo, hi = "low (a=-0.8)", "high (a=+0.8)"
    wpm_ends = {}
    for name, v in (("low", lo_v), ("high", hi_v)):
        wpm_ends[name] = float(np.mean([rate_of(ours.synthesize(t, v), t)["wpm"] for t in HARVARD]))
    contrast = {
        "f0_ratio": m[hi].f0_median / m[lo].f0_median,
        "loudness_diff_db": m[hi].loudness_db - m[lo].loudness_db,
        "rate_ratio_wpm": r[hi]["wpm"] / r[lo]["wpm"],
        "rate_ratio_phonemes": r[hi]["phonemes_per_s"] / r[lo]["phonemes_per_s"],
        "wpm_low_sentence": r[lo]["wpm"], "wpm_high_sentence": r[hi]["wpm"],
        "wpm_low_mean16": wpm_ends["low"], "wpm_high_mean16": wpm_ends["high"],
    }

    # 3. Pauses, 4. RTF.
    pauses, leads = {}, {}
    timing = {}
    for name, v in (("low", lo_v), ("neutral", VAD()), ("high", hi_v)):
        sp = ours.synthesize(PARAGRAPH, v)
        pauses[name] = boundary_silences(sp.audio, sp.sample_rate, sp.sentence_spans)
        leads[name] = measure(sp.audio, sp.sample_rate).speech_start
        if name in ("neutral", "high"):  # neutral: the voice model alone; high: WORLD edits every sentence
            walls, cpus = [], []
            for _ in range(args.repeats):
                c0, w0 = time.process_time(), time.perf_counter()
                sp = ours.synthesize(PARAGRAPH, v)
                cpus.append(time.process_time() - c0)
                walls.append(time.perf_counter() - w0)
            t = {"audio_s": sp.duration, "rtf_wall": float(np.median(walls)) / sp.duration,
                 "rtf_cpu": float(np.median(cpus)) / sp.duration}
            if name == "neutral":
                timing = t
            else:
                timing["aroused"] = t
    all_pauses = [p for v in pauses.values() for p in v]
    figures = {"wer": wers, "contrast": contrast, "pauses_s": pauses, "lead_in_s": leads, "tts_timing": timing,
               "load_average_1min": os.getloadavg()[0]}
    checks = {
        "WER ours <= 1.5x festival": wers["ours"] <= 1.5 * wers["festival"],
        "WER ours <= 0.5x eSpeak NG": wers["ours"] <= 0.5 * wers["espeak"],
        "F0 high/low >= 1.3": contrast["f0_ratio"] >= 1.3,
        "loudness high-low >= +4 dB": contrast["loudness_diff_db"] >= 4.0,
        "rate high/low >= 1.2 (words/min)": contrast["rate_ratio_wpm"] >= 1.2,
        "130-200 words/min at both ends (mean of 16)": 130 <= wpm_ends["low"] and wpm_ends["high"] <= 200,
        "pauses between sentences 200-600 ms": all(0.2 <= p <= 0.6 for p in all_pauses),
        "lead-in 50-150 ms": all(0.05 <= x <= 0.15 for x in leads.values()),
        "TTS RTF <= 0.15 (wall, warm)": timing["rtf_wall"] <= 0.15,
    }

    print(f"\n1. WER over {len(HARVARD)} Harvard sentences ({errs['ours'][1]} words):")
    for k in errs:
        print(f"   {k:9s} {wers[k] * 100:5.1f} %")
    print(f"   ours / festival = {wers['ours'] / max(1e-9, wers['festival']):.2f}x, "
          f"ours / eSpeak NG = {wers['ours'] / max(1e-9, wers['espeak']):.2f}x")
    for row in per[:4]:
        print(f"   e.g. {row['text']!r}: ours {row['ours']!r} | festival {row['festival']!r} | espeak {row['espeak']!r}")
    print(f"\n2. arousal +0.8 vs -0.8 on {SENTENCE!r}:")
    for k in rows:
        print(f"   {k:14s} F0 {m[k].f0_median:6.1f} Hz (p10-p90 {m[k].f0_range_st:4.1f} st)  loudness "
              f"{m[k].loudness_db:6.1f} dBFS  {r[k]['wpm']:5.1f} words/min  {r[k]['phonemes_per_s']:5.2f} phonemes/s")
    print(f"   F0 x{contrast['f0_ratio']:.2f}, loudness {contrast['loudness_diff_db']:+.1f} dB, rate "
          f"x{contrast['rate_ratio_wpm']:.2f} (phonemes/s x{contrast['rate_ratio_phonemes']:.2f}); "
          f"words/min over the 16 sentences: {wpm_ends['low']:.0f} (low) .. {wpm_ends['high']:.0f} (high)")
    print("\n3. pauses between sentences (ms): " + "; ".join(
        f"{k}: {', '.join(str(int(round(p * 1000))) for p in v)}" for k, v in pauses.items())
        + "; lead-in (ms): " + ", ".join(f"{k} {v * 1000:.0f}" for k, v in leads.items()))
    print(f"\n4. TTS alone, paragraph of {timing['audio_s']:.1f} s, warm: RTF wall {timing['rtf_wall']:.3f}, "
          f"CPU {timing['rtf_cpu']:.3f} (load average {figures['load_average_1min']:.1f} on {os.cpu_count()} CPUs); "
          f"at arousal +0.8 (WORLD on every sentence): RTF wall {timing['aroused']['rtf_wall']:.3f}, "
          f"CPU {timing['aroused']['rtf_cpu']:.3f}")
    for k, ok in checks.items():
        print(f"  [{'PASS' if ok else 'FAIL'}] {k}")
    if args.plots:
        out = args.plots / "pitch_energy.png"
        plot(rows, out)
        print(f"plot: {out}")
    print("rerun: flock /work/locks/bench.lock .venv/bin/python bench/voice_bench.py"
          + (f" --plots {args.plots}" if args.plots else ""))
    if args.json:
        from avatar.io import atomic_write_text

        atomic_write_text(args.json, json.dumps({"figures": figures, "checks": checks, "sentences": per}, indent=1))
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
