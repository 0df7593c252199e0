"""FACS-grounded VAD -> expression: monotone in the right directions, in range, mixing with speech."""

from __future__ import annotations

import numpy as np
import pytest

from avatar.emotion.labels import LABEL_VAD
from avatar.errors import InputError
from avatar.face.expression import (AU_NAMES, IDX, action_units, combine, expression_curves, expression_weights,
                                    vad_frames)
from avatar.types import VAD, EmotionSegment, EmotionTrack

GRID = np.linspace(-1, 1, 21)


def w(v: float, a: float, d: float) -> np.ndarray:
    return expression_weights(VAD(v, a, d))


def both(x: np.ndarray, name: str) -> float:
    return float(x[IDX[f"{name}Left"]] + x[IDX[f"{name}Right"]]) / 2


def test_smile_rises_with_valence() -> None:
    for a in (-0.5, 0.0, 0.6):
        for d in (-0.4, 0.0, 0.4):
            smile = np.array([both(w(v, a, d), "mouthSmile") for v in GRID])
            cheek = np.array([both(w(v, a, d), "cheekSquint") for v in GRID])
            assert np.all(np.diff(smile) >= -1e-6) and np.all(np.diff(cheek) >= -1e-6)
            assert smile[-1] - smile[10] > 0.25
    assert both(w(0, 0, 0), "mouthSmile") == 0.0


def test_brow_raise_and_eye_widen_rise_with_arousal() -> None:
    # Not where dominance and displeasure make aroused faces angry (brows down): v < 0 with d > 0.
    for v, d in ((-0.5, -0.5), (0.0, -0.5), (0.0, 0.0), (0.5, -0.5), (0.5, 0.0), (0.5, 0.5)):
        if True:
            rows = [w(v, a, d) for a in GRID]
            wide = np.array([both(r, "eyeWide") for r in rows])
            inner = np.array([r[IDX["browInnerUp"]] for r in rows])
            outer = np.array([both(r, "browOuterUp") for r in rows])
            for curve in (wide, inner, outer):  # the trend (the blend of categories can wobble by a few %)
                assert curve[15] >= curve[10] - 1e-9 and curve[-1] >= curve[15] - 0.05
            assert wide[-1] > wide[10] + 0.15
            assert inner[-1] > inner[10] + 0.05


def test_emotion_prototypes_show_their_action_units() -> None:
    au = {k: action_units(v) for k, v in LABEL_VAD.items()}
    assert au["happy"]["AU12"] > 0.4 and au["happy"]["AU6"] > 0.3
    assert au["sad"]["AU15"] > 0.3 and au["sad"]["AU1"] > 0.15
    assert au["angry"]["AU4"] > 0.4 and au["angry"]["AU23"] > 0.1
    assert au["surprised"]["AU2"] > 0.3 and au["surprised"]["AU5"] > 0.2
    assert au["fearful"]["AU20"] > 0.15 and au["fearful"]["AU26"] > 0.2
    # Dominance separates anger (brows down) from fear/surprise (brows up).
    assert au["angry"]["AU4"] > au["angry"]["AU2"] and au["surprised"]["AU2"] > au["surprised"]["AU4"]
    assert all(v == 0.0 for v in au["neutral"].values())
    sad, happy = expression_weights(LABEL_VAD["sad"]), expression_weights(LABEL_VAD["happy"])
    assert both(sad, "mouthFrown") > both(happy, "mouthFrown") + 0.3
    assert both(expression_weights(LABEL_VAD["angry"]), "browDown") > 0.4


def test_everything_in_range_over_the_vad_cube() -> None:
    g = np.linspace(-1, 1, 9)
    rows = np.stack(np.meshgrid(g, g, g, indexing="ij"), axis=-1).reshape(-1, 3)
    x = expression_curves(rows)
    assert x.shape == (len(rows), 52) and x.dtype == np.float32
    assert (x >= 0).all() and (x <= 1).all()


def test_bad_vad_is_refused() -> None:
    with pytest.raises(InputError):
        expression_curves(np.array([[0.0, float("nan"), 0.0]]))
    with pytest.raises(InputError):
        expression_curves(np.array([[1.5, 0.0, 0.0]]))
    with pytest.raises(InputError):
        expression_weights([0.1, 0.2])  # type: ignore[arg-type]


def test_vad_frames_accepts_every_form() -> None:
    track = EmotionTrack(segments=[EmotionSegment(start=0, end=1, vad=VAD(-0.5, 0, 0)),
                                   EmotionSegment(start=1, end=2, vad=VAD(0.8, 0.2, 0))], transition=0.2)
    rows = vad_frames(track, 60, 30.0)
    assert rows.shape == (60, 3) and rows[0, 0] == pytest.approx(-0.5) and rows[-1, 0] == pytest.approx(0.8)
    assert vad_frames(VAD(0.1, 0.2, 0.3), 5, 30.0).shape == (5, 3)
    assert vad_frames([0.1, 0.2, 0.3], 5, 30.0).shape == (5, 3)
    with pytest.raises(InputError):
        vad_frames(np.zeros((4, 3)), 5, 30.0)
    with pytest.raises(InputError):
        vad_frames([0.0, 2.0, 0.0], 5, 30.0)


def test_smile_yields_to_rounding_and_closure_but_lips_stay_sealed() -> None:
    expr = np.repeat(w(0.9, 0.5, 0.2)[None], 3, axis=0).astype(np.float64)
    mouth = np.zeros((3, 52))
    mouth[1, IDX["mouthPucker"]] = 0.7
    mouth[2, IDX["jawOpen"]] = 0.06
    mouth[2, IDX["mouthClose"]] = 0.06
    out = combine(mouth, expr, closure=np.array([0.0, 0.0, 1.0]))
    s = out[:, IDX["mouthSmileLeft"]]
    assert s[1] < 0.5 * s[0] and s[2] < 0.75 * s[0]
    assert out[2, IDX["jawOpen"]] - out[2, IDX["mouthClose"]] <= 0.01
    assert (out >= 0).all() and (out <= 1).all()
    with pytest.raises(InputError):
        combine(mouth[:, :10], expr[:, :10])


def test_au_table_covers_the_prototypes() -> None:
    for au in ("AU1", "AU2", "AU4", "AU5", "AU6", "AU7", "AU9", "AU12", "AU15", "AU20", "AU23", "AU26"):
        assert au in AU_NAMES


def test_inner_brows_rise_and_knit_in_sadness_and_fear() -> None:
    """AU1+4: the raised inner brow is not cancelled by the brow lowerer (the oblique brow of grief and fear)."""
    for label in ("sad", "fearful"):
        x = expression_weights(LABEL_VAD[label])
        assert x[IDX["browInnerUp"]] > 0.7, label
        assert x[IDX["browInnerUp"]] > both(x, "browDown") + 0.3, label
        assert both(x, "browDown") > 0.1, label  # still drawn together
    angry = expression_weights(LABEL_VAD["angry"])
    assert both(angry, "browDown") > 0.7 and angry[IDX["browInnerUp"]] < 0.1


def test_categories_blend_continuously_and_never_mix_opposites() -> None:
    from avatar.face.expression import CATEGORY_VAD, category_weights

    names = ("happy", "relaxed", "sad", "angry", "fearful", "surprised", "disgusted")
    for i, c in enumerate(names):
        w = category_weights(CATEGORY_VAD[c].as_array()[None])[0]
        assert int(np.argmax(w)) == i and w[i] > 0.75, (c, w)  # its own prototype (anger and disgust lie close)
    sad_w = category_weights(CATEGORY_VAD["sad"].as_array()[None])[0]
    assert sad_w[names.index("happy")] < 0.01 and sad_w[names.index("angry")] < 0.05
    # A straight path from sad to happy changes the face by small steps (no switch by label).
    path = np.linspace(LABEL_VAD["sad"].as_array(), LABEL_VAD["happy"].as_array(), 60)
    faces = expression_curves(path)
    assert np.abs(np.diff(faces, axis=0)).max() < 0.2


def test_envelope_onset_apex_hold_and_decay() -> None:
    from avatar.face.expression import emotion_envelope

    track = EmotionTrack(segments=[EmotionSegment(start=0.0, end=3.0, vad=VAD(0.7, 0.4, 0.2)),
                                   EmotionSegment(start=3.0, end=6.0, vad=VAD(-0.6, -0.3, -0.3))])
    env = emotion_envelope(track, 180, 30.0)
    assert 0.7 <= env[0] <= 0.8  # already in the emotion on the first frame
    apex = int(np.argmax(env[:60] >= 0.999))
    assert 0.3 <= apex / 30.0 <= 0.8
    assert env[60:80].min() >= 0.999  # holds
    assert env[89] < 0.8  # decays at the sentence's end
    assert 0.3 <= (int(np.argmax(env[90:] >= 0.999)) + 1) / 30.0 <= 0.8  # the next sentence's onset
    assert env[-1] < 0.75
    assert np.array_equal(emotion_envelope(VAD(0.5, 0.5, 0.0), 90, 30.0)[:3], emotion_envelope(track, 180, 30.0)[:3])


def test_seeded_variation_is_small_asymmetric_and_reproducible() -> None:
    rows = np.repeat(LABEL_VAD["happy"].as_array()[None], 150, axis=0)
    a = expression_curves(rows, seed=3)
    assert np.array_equal(a, expression_curves(rows, seed=3))
    plain = expression_curves(rows)
    smile = a[:, IDX["mouthSmileLeft"]]
    assert smile.std() > 0.005 and np.abs(smile - plain[:, IDX["mouthSmileLeft"]]).max() < 0.3
    assert not np.allclose(a[:, IDX["mouthSmileLeft"]], a[:, IDX["mouthSmileRight"]])


def test_lowered_brow_turns_wide_eyes_into_a_glare_but_not_under_a_raised_inner_brow() -> None:
    from avatar.face.expression import AU_NAMES, arkit_from_action_units

    def row(**aus: float) -> np.ndarray:
        au = np.zeros((1, len(AU_NAMES)))
        for k, v in aus.items():
            au[0, AU_NAMES.index(k)] = v
        return arkit_from_action_units(au)[0]

    wide = both(row(AU5=1.0), "eyeWide")
    assert both(row(AU4=1.0, AU5=1.0), "eyeWide") < 0.5 * wide  # anger: a glare
    assert both(row(AU1=1.0, AU4=1.0, AU5=1.0), "eyeWide") == wide  # fear: brows lifted, eyes stay wide
    # 1+2+4 (fear's brow): raised but flattened, the outer brow held well below surprise's 1+2 arch.
    arch = both(row(AU1=1.0, AU2=1.0), "browOuterUp")
    assert both(row(AU1=1.0, AU2=1.0, AU4=1.0), "browOuterUp") < 0.5 * arch
    # Lip tightening keeps the corners level: the frown offsets the pack's press, which lifts them.
    tight = row(AU23=1.0)
    assert both(tight, "mouthPress") > 0.5 and both(tight, "mouthFrown") > 0.1


def test_fear_stares_and_disgust_is_not_anger() -> None:
    """Fear 1+2+4+5+7+20+26: upper lids raised hard over tensed lower lids, brows up, knit and flatter than in
    surprise, lips stretched. Disgust (9+10+15+17) wrinkles the nose and lifts the upper lip without anger's
    lowered, knit brows and tightened lids."""
    fear, surprise = expression_weights(LABEL_VAD["fearful"]), expression_weights(LABEL_VAD["surprised"])
    assert both(fear, "eyeWide") > 0.85 and both(fear, "eyeSquint") > 0.25
    assert both(fear, "mouthStretch") > 0.8 and both(surprise, "mouthStretch") < 0.1
    assert both(fear, "browOuterUp") < 0.5 * both(surprise, "browOuterUp") and fear[IDX["browInnerUp"]] > 0.9
    assert both(fear, "browDown") > 0.1  # drawn together
    disgust, angry = expression_weights(LABEL_VAD["disgusted"]), expression_weights(LABEL_VAD["angry"])
    assert both(disgust, "noseSneer") > 0.6 and both(disgust, "mouthUpperUp") > 0.6
    assert both(disgust, "browDown") < 0.5 * both(angry, "browDown")
    assert both(disgust, "eyeSquint") < 0.5 * both(angry, "eyeSquint")
