"""VAD-to-prosody rules, the engine mapping, WORLD reshaping and the viseme table."""

from __future__ import annotations

import numpy as np
import pytest

from avatar.tts.analysis import measure
from avatar.tts.espeak import engine_settings
from avatar.tts.prosody import NEUTRAL, RULES, prosody_for
from avatar.tts.visemes import IPA_VISEMES, viseme_for
from avatar.tts.world import (WorldEdit, WorldSettings, cheaptrick_threads, edit_f0, express, fix_octaves,
                              harvest_grid, harvest_pieces, pause_cut, reshape, track_f0)
from avatar.types import VAD, VISEMES


def test_neutral_is_identity_and_directions_follow_the_literature():
    assert prosody_for(VAD.neutral()) == NEUTRAL
    assert engine_settings(NEUTRAL).world.is_identity()
    hi, lo = prosody_for(VAD(0, 0.8, 0)), prosody_for(VAD(0, -0.8, 0))
    assert hi.rate > 1 > lo.rate and hi.f0_scale > 1 > lo.f0_scale and hi.range_st > 4 > lo.range_st
    assert hi.volume_db > 3 and lo.volume_db < -3 and hi.tilt_db_oct > 0 > lo.tilt_db_oct
    assert lo.breathiness > 0 == hi.breathiness
    pos, neg = prosody_for(VAD(0.8, 0, 0)), prosody_for(VAD(-0.8, 0, 0))
    assert pos.contour_st > 0 > neg.contour_st  # rising vs falling
    dom, sub = prosody_for(VAD(0, 0, 0.8)), prosody_for(VAD(0, 0, -0.8))
    assert dom.f0_scale < sub.f0_scale and dom.volume > sub.volume and dom.boundary_st < 0 < sub.boundary_st
    assert prosody_for(VAD(0.5, 0.5, 0.5), strength=0) == NEUTRAL
    assert {r[0] for r in RULES} == set(NEUTRAL.as_dict())
    extreme = prosody_for(VAD(1, 1, -1))
    s = engine_settings(extreme)
    assert 80 <= s.rate <= 450 and 0 <= s.pitch <= 100 and 0 <= s.range <= 100 and 0 <= s.volume <= 200


def test_engine_mapping_sends_leftovers_to_world():
    s = engine_settings(prosody_for(VAD(0, 1, 0)))
    assert s.range == 100 and s.world.range_factor > 1  # 8 semitones is past the engine's 6.8
    s = engine_settings(prosody_for(VAD(0, 0.3, 0)))
    assert s.world.range_factor == 1 and s.world.f0_factor == 1


def _tone(sr=16000, seconds=1.0, f0=120.0):
    t = np.arange(int(sr * seconds)) / sr
    x = sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, 12))
    return (0.2 * x / np.abs(x).max()).astype(np.float32)


def test_world_keeps_length_and_moves_f0():
    sr = 16000
    x = _tone(sr)
    up = reshape(x, sr, WorldEdit(f0_factor=1.25))
    assert up.shape == x.shape and up.dtype == np.float32 and np.isfinite(up).all()
    assert measure(up, sr).f0_median / measure(x, sr).f0_median == pytest.approx(1.25, rel=0.05)
    same = reshape(x, sr, WorldEdit())
    assert np.array_equal(same, x)  # identity skips resynthesis
    silent = np.zeros(sr, np.float32)
    assert np.array_equal(reshape(silent, sr, WorldEdit(f0_factor=2.0)), silent)
    assert np.array_equal(reshape(x, sr, WorldEdit(contour_st=2.0)), reshape(x, sr, WorldEdit(contour_st=2.0)))


def _pulses(sr: int, rate: float, alternate: float, seconds: float = 1.0) -> np.ndarray:
    """A vowel-like pulse train whose every other pulse has `alternate` times the amplitude (creaky voice)."""
    from scipy.signal import lfilter

    x = np.zeros(int(sr * seconds))
    for k in range(int(seconds * rate)):
        x[int(k * sr / rate)] = 1.0 if k % 2 == 0 else alternate
    for f, bw in ((500, 80), (1500, 100), (2500, 120)):
        r, th = np.exp(-np.pi * bw / sr), 2 * np.pi * f / sr
        x = lfilter([1.0], [1.0, -2 * r * np.cos(th), r * r], x)
    return 0.5 * x / np.abs(x).max()


def test_octave_check_halves_a_reading_of_the_pulse_rate_and_keeps_true_periods():
    sr = 22050
    t = np.arange(0.0, 1.0, 0.005)
    creaky = _pulses(sr, 200.0, 0.45)  # pulses at 200 Hz, period 10 ms: the pitch is 100 Hz
    fixed = fix_octaves(creaky, sr, np.full(t.size, 200.0), t)
    assert np.median(fixed) == pytest.approx(100.0)
    for rate in (120.0, 150.0, 200.0):  # even pulses: the reading is right and stays
        clean = _pulses(sr, rate, 1.0)
        assert np.median(fix_octaves(clean, sr, np.full(t.size, rate), t)) == pytest.approx(rate)
    f0, _ = track_f0(_pulses(sr, 150.0, 1.0), sr, 5.0, "dio-octave")
    assert np.median(f0[f0 > 0]) == pytest.approx(150.0, rel=0.02)
    with pytest.raises(ValueError, match="f0 method"):
        track_f0(creaky, sr, 5.0, "yin")


def test_f0_edit_contour_and_boundary():
    f0 = np.full(200, 100.0)
    f0[:10] = 0
    rise = edit_f0(f0, WorldEdit(contour_st=4.0))
    assert rise[0] == 0 and rise[10] < 100 < rise[-1]
    assert 12 * np.log2(rise[-1] / rise[10]) == pytest.approx(4.0, abs=0.01)
    fall = edit_f0(f0, WorldEdit(boundary_st=-2.0))
    assert fall[100] == pytest.approx(100) and 12 * np.log2(fall[-1] / 100) == pytest.approx(-2.0, abs=0.01)


def test_f0_floor_keeps_a_lowered_voice_out_of_creak():
    f0 = np.full(100, 100.0)
    f0[:5] = 0
    low = WorldEdit(f0_factor=0.5)  # an octave down: no floor
    assert edit_f0(f0, low)[50] == pytest.approx(50.0)
    floored = edit_f0(f0, WorldEdit(f0_factor=0.5, floor_st=6.0))
    # 6 semitones below the input's median, then a third of the rest: -8 semitones in all.
    assert floored[0] == 0 and 12 * np.log2(floored[50] / 100.0) == pytest.approx(-8.0, abs=0.01)
    assert edit_f0(f0, WorldEdit(f0_factor=0.8, floor_st=6.0))[50] == pytest.approx(80.0)  # above it: untouched


def test_harvest_searches_the_given_band():
    sr = 22050
    x = _pulses(sr, 150.0, 1.0)
    f0, _ = track_f0(x, sr, 5.0, "harvest", f0_range=(60.0, 330.0))
    assert np.median(f0[f0 > 0]) == pytest.approx(150.0, rel=0.02)
    f0, _ = track_f0(x, sr, 5.0, "harvest", f0_range=(200.0, 500.0))  # the true pitch is outside the band
    assert not np.any(np.abs(f0[f0 > 0] - 150.0) < 5.0)


def test_keep_unvoiced_leaves_the_consonants_as_they_were():
    """With keep_unvoiced, samples far from any voiced frame come back unchanged; voiced ones are resynthesised."""
    sr = 22050
    rng = np.random.default_rng(0)
    noise = 0.05 * rng.standard_normal(int(0.4 * sr))  # a fricative
    x = np.concatenate([noise, _pulses(sr, 120.0, 1.0, 0.6), noise]).astype(np.float32)
    edit = WorldEdit(f0_factor=1.3)
    kept = reshape(x, sr, edit, aperiodicity="d4c", frame_period_ms=5.0, f0_method="harvest", keep_unvoiced=True)
    plain = reshape(x, sr, edit, aperiodicity="d4c", frame_period_ms=5.0, f0_method="harvest")
    inner = slice(int(0.05 * sr), int(0.3 * sr))
    assert kept.size == x.size and np.array_equal(kept[inner], x[inner])
    assert not np.allclose(plain[inner], x[inner], atol=1e-3)
    mid = slice(int(0.55 * sr), int(0.85 * sr))
    assert np.array_equal(kept[mid], plain[mid]) and not np.allclose(kept[mid], x[mid], atol=1e-3)


def test_small_edits_are_small():
    assert WorldEdit(f0_factor=2 ** (0.5 / 12), contour_st=-0.9, tilt_db_oct=0.5).is_small(1.0, 1.0, 0.1)
    for big in (WorldEdit(f0_factor=2 ** (1.5 / 12)), WorldEdit(range_factor=1.3), WorldEdit(boundary_st=-2.0),
                WorldEdit(tilt_db_oct=-2.0), WorldEdit(breathiness=0.4)):
        assert not big.is_small(1.0, 1.0, 0.1)


def test_every_engine_takes_one_world_path():
    """world.express: an edit under the voice's threshold returns the audio untouched, a larger one is reshaped with
    the voice's settings (the same as calling reshape with them); every backend holds its WorldSettings."""
    from avatar.tts import coqui, espeak, piper

    sr = 16000
    x = _tone(sr)
    ws = WorldSettings(min_st=1.0, keep_unvoiced=True)
    small, big = WorldEdit(contour_st=0.8, tilt_db_oct=0.5), WorldEdit(contour_st=2.0)
    assert np.array_equal(express(x, sr, small, ws), x)
    assert not np.array_equal(express(x, sr, small, WorldSettings(min_st=0.0)), x)
    assert np.array_equal(express(x, sr, big, ws), reshape(x, sr, big, keep_unvoiced=True))
    assert np.array_equal(express(x, sr, small, ws, f0_offsets_st=np.full(200, 2.0)),
                          reshape(x, sr, small, f0_offsets_st=np.full(200, 2.0), keep_unvoiced=True))
    for mod in (piper, espeak, coqui):
        assert isinstance(mod.WORLD, WorldSettings)


def test_harvest_cut_grid_and_pause_choice():
    """Cuts fall on a step that keeps Harvest's 1 ms frames, the output frames and its decimation in place; the
    pause nearest the middle is chosen, never one too short or leaving a piece under the minimum."""
    assert harvest_grid(22050, 5.0) == 441 and harvest_grid(16000, 5.0) == 80 and harvest_grid(44100, 5.0) == 882
    sr, n = 22050, 22050 * 6
    gaps = [(int(0.5 * sr), int(0.7 * sr)), (int(2.6 * sr), int(2.65 * sr)), (int(3.5 * sr), int(3.7 * sr)),
            (int(5.6 * sr), int(5.8 * sr))]
    assert pause_cut(n, sr, gaps) == gaps[2]  # the 50 ms gap at 2.6 s is too short; 0.6 s and 5.7 s too near an end
    assert pause_cut(n, sr, gaps + [(int(2.1 * sr), int(2.3 * sr))]) == (int(2.1 * sr), int(2.3 * sr))  # 39 % of 6 s
    assert pause_cut(n, sr, gaps[:2]) is None and pause_cut(n, sr, []) is None


def test_threaded_world_analysis_matches_one_pass():
    """Harvest on two pieces cut in a silent gap, in two threads, gives the single pass's frames (same times, same
    count; on a clean vibrato tone the same F0 within 1 %, which a one-frame misplacement would not give: the
    vibrato moves 1.5 % in 5 ms); CheapTrick on halves of the frames equals one call's (but for digital silence); a threaded
    reshape repeats exactly."""
    from concurrent.futures import ThreadPoolExecutor

    from avatar.audio import import_pyworld

    pw = import_pyworld()
    sr = 22050
    t = np.arange(int(1.3 * sr)) / sr
    phase = 2 * np.pi * np.cumsum(120.0 * (1 + 0.1 * np.sin(2 * np.pi * 5 * t))) / sr
    tone = sum(np.sin(k * phase) / k for k in range(1, 8))
    x = np.concatenate([tone, np.zeros(int(0.25 * sr)), 0.8 * tone[::-1]]) * 0.2
    gap = (tone.size, tone.size + int(0.25 * sr))
    f1, t1 = pw.harvest(x, sr, f0_floor=60.0, f0_ceil=330.0, frame_period=5.0)
    with ThreadPoolExecutor(2) as pool:
        f2, t2 = harvest_pieces(x, sr, 5.0, (60.0, 330.0), [pause_cut(x.size, sr, [gap])], pool)
        sp1 = pw.cheaptrick(x, f1, t1, sr, f0_floor=71.0)
        sp2 = cheaptrick_threads(x, f1, t1, sr, pool, 2)
    assert np.array_equal(t1, t2) and f1.size == f2.size
    both = (f1 > 0) & (f2 > 0)
    assert np.mean((f1 > 0) == (f2 > 0)) > 0.99 and np.mean(np.abs(f2[both] / f1[both] - 1) < 0.01) > 0.99
    assert np.array_equal(sp1[: f1.size // 2], sp2[: f1.size // 2])
    # (WORLD adds 1e-12 safeguard noise from a generator that each call restarts: only digital silence differs)
    assert np.allclose(sp2, sp1, rtol=0.01, atol=1e-9 * sp1.max())
    edit = WorldEdit(f0_factor=1.2)
    kw = dict(frame_period_ms=5.0, f0_method="harvest", f0_range=(60.0, 330.0), keep_unvoiced=True)
    a = reshape(x, sr, edit, threads=2, gaps=[gap], split_f0=True, **kw)
    assert a.shape == x.shape and np.array_equal(a, reshape(x, sr, edit, threads=2, gaps=[gap], split_f0=True, **kw))
    assert measure(a[: gap[0]], sr).f0_median / measure(x[: gap[0]], sr).f0_median == pytest.approx(1.2, rel=0.05)


def test_visemes():
    for p in "pbm":
        assert viseme_for(p) == "PP"
    assert viseme_for("ˈoʊ") == "oh" and viseme_for("tʃ") == "CH" and viseme_for("ð") == "TH"
    assert viseme_for("") == "sil" and viseme_for("_") == "sil" and viseme_for("5") == "sil"
    assert viseme_for("ɑ̃ː") == "aa" and viseme_for("ʃ") == "CH" and viseme_for("sh", "graphemes") == "CH"
    assert viseme_for("j") == "ih" and viseme_for("j", "graphemes") == "CH"
    assert set(IPA_VISEMES.values()) | {"sil"} == set(VISEMES)
    assert viseme_for("ж") in VISEMES  # another script's letter still gets a class
