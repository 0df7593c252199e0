import numpy as np
import pytest

from avatar.emotion.dynamics import Dialogue, EmotionDynamics, Personality
from avatar.emotion.labels import EKMAN_LABELS, LABEL_VAD, label_for, label_probabilities, vad_for_label
from avatar.errors import InputError
from avatar.types import VAD


def test_every_label_point_maps_back_to_itself():
    for name in EKMAN_LABELS:
        label, conf = label_for(LABEL_VAD[name])
        assert label == name, (name, label)
        assert 0 < conf <= 1
    for name in LABEL_VAD:
        assert label_for(LABEL_VAD[name], fine=True)[0] == name


def test_weak_points_are_neutral_and_direction_decides_otherwise():
    assert label_for(VAD(0.05, -0.03, 0.02))[0] == "neutral"
    assert label_for(VAD(0.35, 0.2, 0.15))[0] == "happy"  # weaker than the prototype, same direction
    assert label_for(VAD(-0.3, -0.15, -0.15))[0] == "sad"
    p = label_probabilities(VAD(0.3, 0.3, 0.1))
    assert sum(p.values()) == pytest.approx(1.0)


def test_label_lookup():
    assert vad_for_label("Joy") == LABEL_VAD["happy"]
    with pytest.raises(InputError):
        vad_for_label("hangry")


def test_personality_validates_and_gives_mehrabian_temperament():
    with pytest.raises(Exception):  # noqa: B017, PT011
        Personality(extraversion=1.5)
    sunny = Personality(extraversion=0.9, agreeableness=0.9, neuroticism=0.1).temperament()
    gloomy = Personality(extraversion=0.1, agreeableness=0.2, neuroticism=0.9).temperament()
    assert sunny.valence > 0 > gloomy.valence
    assert sunny.dominance > gloomy.dominance
    assert Personality().temperament().distance(VAD.neutral()) < 1e-6


def test_state_moves_towards_stimulus_with_inertia():
    dyn = EmotionDynamics(Personality())
    angry = VAD(-0.6, 0.6, 0.3)
    s1 = dyn.step(VAD.neutral(), angry)
    assert 0 < s1.distance(VAD.neutral()) < angry.distance(VAD.neutral())  # moved, not all the way
    s2 = dyn.step(s1, VAD.neutral())  # a neutral line next: the anger carries over
    assert s2.valence < -0.1
    s3 = dyn.step(s1, angry)  # the same stimulus again: closer still
    assert s3.distance(angry) < s1.distance(angry)


def test_neurotic_character_reacts_more_to_bad_news():
    bad = VAD(-0.7, 0.4, -0.3)
    calm = EmotionDynamics(Personality(neuroticism=0.1, conscientiousness=0.8)).step(VAD.neutral(), bad)
    touchy = EmotionDynamics(Personality(neuroticism=0.9, conscientiousness=0.3)).step(VAD.neutral(), bad)
    assert touchy.valence < calm.valence


def test_state_stays_in_range_under_repeated_extremes():
    dyn = EmotionDynamics(Personality(neuroticism=1.0, extraversion=1.0))
    s = VAD.neutral()
    for i in range(50):
        s = dyn.step(s, VAD(1, 1, 1) if i % 2 else VAD(-1, -1, -1))
        assert np.all(np.abs(s.as_array()) <= 1.0)


def test_dialogue_tracks_each_character_separately():
    table = {"great news": VAD(0.8, 0.5, 0.3), "terrible": VAD(-0.8, 0.3, -0.3), "ok": VAD(0, 0, 0)}
    d = Dialogue(lambda t: table[t], {"ann": Personality(), "bob": Personality(neuroticism=0.9)})
    a1 = d.say("ann", "great news")
    b1 = d.say("bob", "terrible")
    assert a1.valence > 0 > b1.valence
    a2 = d.say("ann", "ok")
    assert 0 < a2.valence < a1.valence  # mood carries over and decays
    assert d.state("bob") == b1
    over = d.say("bob", "ok", override=VAD(0.9, 0.0, 0.0))
    assert over.valence > b1.valence


def test_consistent_vad_moves_only_what_disagrees():
    from avatar.emotion.labels import CONSISTENCY_MARGIN, consistent_vad, is_consistent

    assert consistent_vad(VAD(-0.5, 0.3, 0.1), "sad") == VAD(-0.5, 0.3, 0.1)  # already agrees: unchanged
    sad = consistent_vad(VAD(0.4, 0.2, 0.0), "sad")
    assert sad == VAD(-CONSISTENCY_MARGIN, 0.2, 0.0) and is_consistent(sad, "sad")
    happy = consistent_vad(VAD(-0.2, 0.1, 0.0), "happy")
    assert happy.valence > 0 and is_consistent(happy, "happy")
    fear = consistent_vad(VAD(-0.6, -0.3, -0.2), "fearful")
    assert fear.arousal > 0 and fear.valence == -0.6
    assert consistent_vad(VAD(0.9, 0.5, 0.2), "neutral") == VAD(0.9, 0.5, 0.2)
    assert not is_consistent(VAD(0.3, 0.2, 0.0), "sad") and not is_consistent(VAD(0.3, -0.2, 0.0), "surprised")


def test_sign_free_labels_follow_decisive_category_evidence():
    """A neutral or surprised label takes the valence sign of clear category evidence, and only then."""
    from avatar.emotion.labels import CONSISTENCY_MARGIN, VALENCE_EVIDENCE, category_valence, consistent_vad, is_consistent

    dread = {"neutral": 0.40, "happy": 0.02, "sad": 0.30, "angry": 0.10, "fearful": 0.15, "disgusted": 0.02,
             "surprised": 0.01}
    assert category_valence(dread) <= -VALENCE_EVIDENCE
    moved = consistent_vad(VAD(0.3, 0.1, 0.2), "neutral", dread)
    assert moved == VAD(-CONSISTENCY_MARGIN, 0.1, 0.2)
    assert is_consistent(moved, "neutral", dread) and not is_consistent(VAD(0.3, 0.1, 0.2), "neutral", dread)
    assert consistent_vad(VAD(-0.4, 0.1, 0.2), "neutral", dread) == VAD(-0.4, 0.1, 0.2)  # already agrees
    delight = {"neutral": 0.02, "happy": 0.45, "sad": 0.01, "angry": 0.01, "fearful": 0.01, "disgusted": 0.0,
               "surprised": 0.50}
    up = consistent_vad(VAD(-0.1, -0.2, 0.0), "surprised", delight)
    assert up.valence == CONSISTENCY_MARGIN and up.arousal == CONSISTENCY_MARGIN
    # EmoBank-style reading: neutral and unsure, so the VAD head's valence stays as it is
    unsure = {"neutral": 0.70, "happy": 0.05, "sad": 0.15, "angry": 0.03, "fearful": 0.03, "disgusted": 0.02,
              "surprised": 0.02}
    assert consistent_vad(VAD(0.3, 0.1, 0.0), "neutral", unsure) == VAD(0.3, 0.1, 0.0)
    # a label that fixes the sign keeps it whatever the evidence says
    assert consistent_vad(VAD(0.5, 0.1, 0.0), "sad", delight).valence == -CONSISTENCY_MARGIN
