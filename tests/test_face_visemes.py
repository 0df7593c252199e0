"""Mouth shapes from a phoneme timeline: closure on p/b/m, open vowels, rounding, smoothness, rest."""

from __future__ import annotations

import numpy as np
import pytest

from avatar.errors import InputError
from avatar.face.visemes import IDX, VISEME_TARGETS, closure_weights, mouth_curves, mouth_openness
from avatar.types import VISEMES, Phoneme, Timeline

FPS = 30.0


def timeline(seq: list[tuple[str, float]], lead: float = 0.3, tail: float = 0.5) -> Timeline:
    """Build a timeline from (viseme, duration) pairs."""
    t, ph = lead, []
    for vis, dur in seq:
        ph.append({"phoneme": vis.lower(), "viseme": vis, "start": round(t, 4), "end": round(t + dur, 4)})
        t += dur
    return Timeline(sample_rate=16000, duration=t + tail, phonemes=ph)


def frames_in(tl: Timeline, index: int, fps: float = FPS) -> np.ndarray:
    p = tl.phonemes[index]
    t = np.arange(int(round(tl.duration * fps))) / fps
    return np.nonzero((t >= p.start) & (t < p.end))[0]


def curves(tl: Timeline, fps: float = FPS) -> np.ndarray:
    return mouth_curves(tl, fps, int(round(tl.duration * fps)))


SPEECH = [("E", 0.1), ("nn", 0.06), ("oh", 0.14), ("PP", 0.07), ("aa", 0.15), ("PP", 0.06), ("aa", 0.12),
          ("PP", 0.08), ("ou", 0.14), ("SS", 0.09), ("ih", 0.1), ("kk", 0.07), ("aa", 0.16), ("FF", 0.08),
          ("E", 0.1), ("DD", 0.06), ("ou", 0.12)]


def test_targets_table_is_complete_and_in_range() -> None:
    assert VISEME_TARGETS.shape == (len(VISEMES), 52)
    assert (VISEME_TARGETS >= 0).all() and (VISEME_TARGETS <= 1).all()
    assert not VISEME_TARGETS[VISEMES.index("sil")].any()


def test_bilabials_close_the_lips_even_between_open_vowels() -> None:
    tl = timeline(SPEECH)
    m = curves(tl)
    opn = mouth_openness(m)
    pp = [i for i, p in enumerate(tl.phonemes) if p.viseme == "PP"]
    for i in pp:
        idx = frames_in(tl, i)
        assert idx.size > 0
        assert np.all(opn[idx] <= 0.02), (i, opn[idx])
        assert np.all(m[idx, IDX["jawOpen"]] <= 0.15)
        assert np.all(m[idx, IDX["mouthPressLeft"]] >= 0.35)


def test_bilabial_shorter_than_a_frame_still_gets_a_closed_frame() -> None:
    tl = timeline([("aa", 0.2), ("PP", 0.02), ("aa", 0.2)], lead=0.31)
    m = curves(tl)
    assert frames_in(tl, 1).size == 0  # no frame time falls inside the 20 ms /p/
    w = closure_weights(tl, FPS, m.shape[0])
    assert (w == 1.0).sum() >= 1
    assert mouth_openness(m)[w == 1.0].max() <= 0.02


def test_open_vowels_drop_the_jaw_and_rounded_vowels_pucker() -> None:
    tl = timeline([("sil", 0.2), ("aa", 0.2), ("DD", 0.08), ("ou", 0.2), ("sil", 0.2)])
    m = curves(tl)
    aa, ou = frames_in(tl, 1), frames_in(tl, 3)
    mid_aa, mid_ou = aa[len(aa) // 2], ou[len(ou) // 2]
    assert m[mid_aa, IDX["jawOpen"]] >= 0.45
    assert mouth_openness(m)[mid_aa] >= 0.45
    assert m[mid_ou, IDX["mouthPucker"]] >= 0.5
    assert m[mid_ou, IDX["mouthPucker"]] > 3 * m[mid_aa, IDX["mouthPucker"]]
    assert m[mid_aa, IDX["jawOpen"]] > 2 * m[mid_ou, IDX["jawOpen"]]


def test_lip_rounding_is_anticipated_through_a_consonant() -> None:
    # /s u/: rounding starts during the /s/ (Cohen & Massaro's anticipatory coarticulation) ...
    rounded = curves(timeline([("aa", 0.2), ("SS", 0.12), ("ou", 0.2)]))
    spread = curves(timeline([("aa", 0.2), ("SS", 0.12), ("ih", 0.2)]))
    tl = timeline([("aa", 0.2), ("SS", 0.12), ("ou", 0.2)])
    s = frames_in(tl, 1)
    assert rounded[s[-1], IDX["mouthPucker"]] > 0.15
    assert rounded[s[-1], IDX["mouthPucker"]] > spread[s[-1], IDX["mouthPucker"]] + 0.1


def test_coarticulation_is_smooth() -> None:
    tl = timeline(SPEECH * 3)
    m30 = curves(tl, 30.0)
    m60 = curves(tl, 60.0)
    assert np.abs(np.diff(m30, axis=0)).max() <= 0.3
    assert np.abs(np.diff(m60, axis=0)).max() <= 0.2
    # Much smoother than switching targets at phoneme boundaries (the no-coarticulation baseline).
    t = np.arange(m30.shape[0]) / 30.0
    step = np.zeros_like(m30)
    for p in tl.phonemes:
        step[(t >= p.start) & (t < p.end)] = VISEME_TARGETS[VISEMES.index(p.viseme)]
    assert np.abs(np.diff(m30, axis=0)).mean() < 0.8 * np.abs(np.diff(step, axis=0)).mean()


def test_silence_relaxes_to_rest() -> None:
    tl = timeline([("aa", 0.2), ("oh", 0.1), ("sil", 1.2), ("ou", 0.2)], lead=1.0, tail=1.0)
    m = curves(tl)
    sil = frames_in(tl, 2)
    middle = sil[len(sil) // 2 - 3: len(sil) // 2 + 3]
    assert np.abs(m[middle]).max() < 0.02
    assert np.abs(m[:10]).max() < 0.02  # before the first phoneme
    assert np.abs(m[-5:]).max() < 0.02  # after the last


def test_gaps_without_phonemes_are_silence_too() -> None:
    tl = Timeline(sample_rate=16000, duration=3.0, phonemes=[
        {"phoneme": "a", "viseme": "aa", "start": 0.2, "end": 0.4},
        {"phoneme": "a", "viseme": "aa", "start": 2.0, "end": 2.2}])
    m = curves(tl)
    assert np.abs(m[30:50]).max() < 0.02


def test_shapes_range_and_errors() -> None:
    tl = timeline(SPEECH)
    m = curves(tl)
    assert m.dtype == np.float32 and m.shape == (int(round(tl.duration * FPS)), 52)
    assert (m >= 0).all() and (m <= 1).all()
    non_mouth = [IDX[n] for n in ("eyeBlinkLeft", "browInnerUp", "cheekSquintLeft")]
    assert not m[:, non_mouth].any()
    assert mouth_curves(tl, FPS, 0).shape == (0, 52)
    empty = Timeline(sample_rate=16000, duration=1.0)
    assert not mouth_curves(empty, FPS, 30).any()
    with pytest.raises(InputError):
        mouth_curves(tl, float("nan"), 10)
    with pytest.raises(InputError):
        mouth_curves(tl, FPS, -1)
    with pytest.raises(InputError):
        mouth_curves({"phonemes": []}, FPS, 10)  # type: ignore[arg-type]


def test_pure_function() -> None:
    tl = timeline(SPEECH)
    assert np.array_equal(curves(tl), curves(tl))


def _onehot(labels: list[str]) -> np.ndarray:
    p = np.zeros((len(labels), len(VISEMES)))
    for i, v in enumerate(labels):
        p[i, VISEMES.index(v)] = 1.0
    return p


def test_posterior_mouth_follows_certain_frames_like_a_timeline() -> None:
    """One-hot posteriors of a long /a/ open the jaw as the timeline does; silence frames rest."""
    from avatar.face.visemes import posterior_mouth_curves

    labels = ["sil"] * 10 + ["aa"] * 15 + ["sil"] * 10
    soft = posterior_mouth_curves(_onehot(labels), 30.0, len(labels))
    tl = Timeline(sample_rate=16000, duration=len(labels) / 30,
                  phonemes=[Phoneme(start=10 / 30, end=25 / 30, phoneme="a", viseme="aa")])
    hard = mouth_curves(tl, 30.0, len(labels), closure=False)
    jaw = IDX["jawOpen"]
    assert soft.dtype == np.float32 and soft.shape == (len(labels), 52)
    assert soft[17, jaw] == pytest.approx(hard[17, jaw], abs=0.05) and soft[17, jaw] > 0.5
    assert soft[0, jaw] < 0.05 and soft[-1, jaw] < 0.05


def test_posterior_mouth_mixes_uncertain_frames() -> None:
    """Half /a/, half /p/ on every frame gives a jaw between the two certain cases."""
    from avatar.face.visemes import posterior_mouth_curves

    n = 20
    aa = posterior_mouth_curves(_onehot(["aa"] * n), 30.0, n)[10, IDX["jawOpen"]]
    pp = posterior_mouth_curves(_onehot(["PP"] * n), 30.0, n)[10, IDX["jawOpen"]]
    mix = posterior_mouth_curves(0.5 * _onehot(["aa"] * n) + 0.5 * _onehot(["PP"] * n), 30.0, n)[10, IDX["jawOpen"]]
    assert pp < mix < aa


def test_posterior_mouth_refuses_bad_input() -> None:
    from avatar.face.visemes import posterior_mouth_curves

    with pytest.raises(InputError):
        posterior_mouth_curves(np.zeros((5, 3)), 30.0, 5)
    with pytest.raises(InputError):
        posterior_mouth_curves(np.full((5, len(VISEMES)), np.nan), 30.0, 5)
    assert posterior_mouth_curves(np.zeros((0, len(VISEMES))), 30.0, 0).shape == (0, 52)
