"""Benchmark: emotional speech from the espeak backend, measured independently on the output audio.

For one sentence at arousal +0.8 and -0.8 (valence and dominance 0) it measures, from the samples alone
(avatar.tts.analysis): median F0 by WORLD Harvest, speaking rate as phonemes (and vowels, i.e. syllables)
per second of active speech, loudness as the RMS level of active speech; the gap between the timeline's last
spoken phoneme and the audio's last active frame; and the real-time factor on one pinned core including the
emotion processing (engine + WORLD), against the bare engine (neutral, no WORLD) measured in the same run. The
RTF that is checked is CPU time (time.process_time: this process's seconds on the core, all threads counted)
per second of audio, so other work on a shared machine does not count; wall-clock RTF is printed beside it.

Acceptance (issue 3): F0 x1.15 or more, rate x1.15 or more, loudness +3 dB or more, timeline end within
0.25 s of the audio, RTF <= 0.05.

    OMP_NUM_THREADS=1 .venv/bin/python bench/tts_bench.py [--repeats 7] [--json out.json]
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse
import json
import sys
import time

import numpy as np

SENTENCE = "The quick brown fox jumps over the lazy dog, and then it runs away into the forest."
PARAGRAPH = ("I can't believe we finally won the championship! Everyone was screaming and hugging. "
             "But then I remembered that my grandmother could not be there to see it. "
             "She would have been so proud of us. Anyway, tomorrow we start training again.")
VOWEL_VISEMES = {"aa", "E", "ih", "oh", "ou"}


def _timed(fn, repeats: int):
    """Run fn `repeats` times; return its last output, median CPU seconds and median wall seconds."""
    cpu, wall, out = [], [], None
    for _ in range(repeats):
        c0, w0 = time.process_time(), time.perf_counter()
        out = fn()
        cpu.append(time.process_time() - c0)
        wall.append(time.perf_counter() - w0)
    return out, float(np.median(cpu)), float(np.median(wall))


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark, print the figures and the rerun command; exit 1 if an acceptance figure fails."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=7, help="timing repeats (median is reported)")
    ap.add_argument("--voice", default="en-us")
    ap.add_argument("--json", help="also write the figures to this JSON file")
    args = ap.parse_args(argv)
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})  # one core, as the acceptance says

    from avatar.tts.analysis import measure
    from avatar.tts.espeak import BASE_VOLUME, EspeakBackend
    from avatar.types import VAD

    tts = EspeakBackend()
    tts.check_voice(args.voice)
    tts.synthesize("Warm up.", VAD(0, 0.5, 0), voice=args.voice)

    # Baseline: the bare engine, neutral prosody, no WORLD (what the emotion processing adds to).
    eng = tts.engine
    (raw, _), t_raw, _w = _timed(lambda: eng.synth(SENTENCE, 175, 50, 50, BASE_VOLUME), args.repeats)
    rtf_raw = t_raw / (raw.size / tts.sample_rate)

    rows = {}
    for name, vad in (("low", VAD(0, -0.8, 0)), ("neutral", VAD(0, 0, 0)), ("high", VAD(0, 0.8, 0))):
        sp, t, tw = _timed(lambda v=vad: tts.synthesize(SENTENCE, v, voice=args.voice), args.repeats)
        m = measure(sp.audio, sp.sample_rate, f0_method="harvest")
        spoken = [p for p in sp.timeline.phonemes if p.viseme != "sil"]
        vowels = [p for p in spoken if p.viseme in VOWEL_VISEMES]
        rows[name] = {
            "duration_s": sp.duration, "rtf": t / sp.duration, "rtf_wall": tw / sp.duration,
            "f0_median_hz": m.f0_median, "f0_range_st": m.f0_range_st, "loudness_db": m.loudness_db,
            "active_s": m.active_seconds, "phonemes": len(spoken),
            "phonemes_per_s": len(spoken) / m.active_seconds, "syllables_per_s": len(vowels) / m.active_seconds,
            "timeline_end_gap_s": abs(max(p.end for p in spoken) - m.speech_end),
            "timeline_vs_audio_s": abs(sp.timeline.duration - sp.duration),
        }

    # A paragraph with per-sentence emotion (the CLI's default path), for the RTF on longer text.
    para_vads = [VAD(0.8, 0.7, 0.4), VAD(0.7, 0.8, 0.2), VAD(-0.6, -0.3, -0.3), VAD(0.4, -0.2, 0.0), VAD(0.1, 0.1, 0.2)]
    psp, tp, tpw = _timed(lambda: tts.synthesize(PARAGRAPH, para_vads, voice=args.voice), max(3, args.repeats // 2))
    para_rtf, para_rtf_wall = tp / psp.duration, tpw / psp.duration

    hi, lo = rows["high"], rows["low"]
    figures = {
        "f0_ratio": hi["f0_median_hz"] / lo["f0_median_hz"],
        "rate_ratio_phonemes": hi["phonemes_per_s"] / lo["phonemes_per_s"],
        "rate_ratio_syllables": hi["syllables_per_s"] / lo["syllables_per_s"],
        "loudness_diff_db": hi["loudness_db"] - lo["loudness_db"],
        "timeline_end_gap_s_max": max(r["timeline_end_gap_s"] for r in rows.values()),
        "rtf_max_sentence": max(r["rtf"] for r in rows.values()),
        "rtf_paragraph": para_rtf,
        "rtf_bare_engine": rtf_raw,
        "rtf_wall_max_sentence": max(r["rtf_wall"] for r in rows.values()),
        "rtf_wall_paragraph": para_rtf_wall,
        "load_average_1min": os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan"),
    }
    checks = {
        "f0_ratio >= 1.15": figures["f0_ratio"] >= 1.15,
        "rate_ratio >= 1.15": figures["rate_ratio_phonemes"] >= 1.15,
        "loudness_diff >= +3 dB": figures["loudness_diff_db"] >= 3.0,
        "timeline end within 0.25 s": figures["timeline_end_gap_s_max"] <= 0.25,
        "RTF <= 0.05 (CPU time, one core)": max(figures["rtf_max_sentence"], para_rtf) <= 0.05,
    }

    print(f"tts_bench: espeak backend, voice {args.voice}, {tts.sample_rate} Hz, one core, median of {args.repeats}")
    print(f"sentence: {SENTENCE!r}")
    hdr = ("cond", "dur s", "RTF cpu", "F0 med Hz", "F0 rng st", "loud dB", "active s", "phon/s", "syll/s", "tl gap s")
    print("  ".join(f"{h:>9}" for h in hdr))
    for name, r in rows.items():
        vals = (name, r["duration_s"], r["rtf"], r["f0_median_hz"], r["f0_range_st"], r["loudness_db"], r["active_s"],
                r["phonemes_per_s"], r["syllables_per_s"], r["timeline_end_gap_s"])
        print("  ".join(f"{v:>9}" if isinstance(v, str) else f"{v:>9.3f}" for v in vals))
    print(f"paragraph ({len(para_vads)} sentences, per-sentence VAD): {psp.duration:.2f} s audio, RTF {para_rtf:.4f}")
    print(f"wall-clock RTF (shares the core with whatever else runs; load average {figures['load_average_1min']:.2f}): "
          f"sentence max {figures['rtf_wall_max_sentence']:.4f}, paragraph {para_rtf_wall:.4f}")
    print(f"baseline (bare engine, neutral, no WORLD): RTF {rtf_raw:.4f}; emotion processing costs "
          f"x{figures['rtf_max_sentence'] / rtf_raw:.1f} the bare engine")
    print(f"arousal +0.8 vs -0.8: F0 x{figures['f0_ratio']:.3f}, rate x{figures['rate_ratio_phonemes']:.3f} "
          f"(syllables x{figures['rate_ratio_syllables']:.3f}), loudness {figures['loudness_diff_db']:+.2f} dB")
    for k, ok in checks.items():
        print(f"  [{'PASS' if ok else 'FAIL'}] {k}")
    print("rerun: OMP_NUM_THREADS=1 .venv/bin/python bench/tts_bench.py" + (f" --voice {args.voice}" if args.voice != "en-us" else ""))
    if args.json:
        from avatar.io import atomic_write_text

        atomic_write_text(args.json, json.dumps({"rows": rows, "figures": figures, "checks": checks}, indent=1))
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
