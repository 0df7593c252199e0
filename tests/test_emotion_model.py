"""Behaviour of the shipped text-to-VAD model (weights/emotion) on inputs whose direction is unambiguous."""

import json

import pytest

from avatar.errors import InputError
from avatar.types import SentenceEmotion


def v(analyzer, text):
    return analyzer.text_vad(text)


def test_weights_are_small_and_documented(root):
    folder = root / "weights" / "emotion"
    assert (folder / "model.safetensors").stat().st_size < 10 * 2**20
    card = (folder / "README.md").read_text()
    assert "EmoBank" in card and "CC-BY-SA" in card and "python -m avatar.emotion.train" in card
    cfg = json.loads((folder / "config.json").read_text())
    assert cfg["metrics"]["emobank_dev_pearson"]["valence"] > 0.7


def test_valence_direction(analyzer):
    assert v(analyzer, "I love this, it is wonderful!").valence - v(analyzer, "This is awful and I hate it.").valence > 0.4


def test_negation_lowers_valence(analyzer):
    assert v(analyzer, "I am not happy at all.").valence < v(analyzer, "I am happy.").valence - 0.1


def test_exclamation_raises_arousal(analyzer):
    assert v(analyzer, "We won the championship!!!").arousal > v(analyzer, "We won the championship.").arousal


def test_intensifier_strengthens(analyzer):
    assert v(analyzer, "I am extremely happy.").valence > v(analyzer, "I am somewhat happy.").valence


def test_emoji_are_read(analyzer):
    assert v(analyzer, "I got the job 😊").valence > v(analyzer, "I got the job 😢").valence


def test_calm_versus_excited_arousal(analyzer):
    assert v(analyzer, "Run! The building is on fire!").arousal > v(analyzer, "The afternoon was quiet and calm.").arousal + 0.2


def test_per_sentence_records(analyzer):
    out = analyzer.analyze("What a beautiful day! My dog died this morning.")
    assert len(out) == 2 and all(isinstance(r, SentenceEmotion) for r in out)
    assert out[0].vad.valence > out[1].vad.valence
    assert out[1].label in {"sad", "fearful", "disgusted", "angry"}
    for r in out:
        assert 0.0 <= r.confidence <= 1.0
        assert set(r.to_record()) == {"text", "valence", "arousal", "dominance", "label", "confidence"}


@pytest.mark.parametrize("bad", ["", "   ", "\n\n"])
def test_empty_input_is_refused(analyzer, bad):
    with pytest.raises(InputError):
        analyzer.analyze(bad)


def test_mixed_script_and_odd_unicode_work_with_lower_confidence(analyzer):
    en = analyzer.analyze_lines(["I am very happy today."])[0]
    mixed = analyzer.analyze_lines(["我今天很高兴 and Привет! \u202e\u0301 🎉"])[0]
    assert -1 <= mixed.vad.valence <= 1
    assert mixed.confidence < en.confidence


def test_hundred_thousand_characters(analyzer):
    text = ("The market opened quietly. Then, to everyone's delight, prices soared! " * 1400)[:100_000]
    out = analyzer.analyze_lines([text])[0]
    assert -1 <= out.vad.valence <= 1 and out.label


def test_calibration_keeps_order_and_range():
    import numpy as np

    from avatar.emotion.model import soft_saturate

    u = np.linspace(-4, 4, 801)
    s = soft_saturate(u)
    assert np.all(np.diff(s) > 0)  # strictly increasing: two strong sentences keep their order
    assert np.all(np.abs(s) <= 1.0)
    assert np.allclose(soft_saturate(np.array([-0.5, 0.0, 0.8])), [-0.5, 0.0, 0.8])  # linear up to the knee
    assert soft_saturate(np.array([1.3]))[0] > soft_saturate(np.array([1.2]))[0]
