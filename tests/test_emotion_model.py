"""Behaviour of the shipped text emotion model (weights/emotion) on inputs whose direction is unambiguous."""

import json

import pytest

from avatar.errors import InputError
from avatar.types import SentenceEmotion


def v(analyzer, text):
    return analyzer.text_vad(text)


def test_weights_are_small_and_documented(root):
    folder = root / "weights" / "emotion"
    assert (folder / "model.safetensors").stat().st_size < 10 * 2**20
    assert (folder / "model.onnx").stat().st_size < 50 * 10**6
    card = (folder / "README.md").read_text()
    assert "EmoBank" in card and "CC-BY-SA" in card and "python -m avatar.emotion.train" in card
    assert "datasets/dialogue" in card and "python -m avatar.emotion.export" in card
    cfg = json.loads((folder / "config.json").read_text())
    assert cfg["metrics"]["emobank_dev_pearson"]["valence"] > 0.7
    assert cfg["categories"] == ["neutral", "happy", "sad", "angry", "fearful", "disgusted", "surprised"]


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
        rec = r.to_record()
        assert {"text", "valence", "arousal", "dominance", "label", "confidence"} <= set(rec)  # the documented ones
        assert set(rec["categories"]) == set(analyzer.categories) and abs(sum(rec["categories"].values()) - 1) < 1e-3
        assert rec["label"] == max(rec["categories"], key=rec["categories"].get) and 0 <= rec["intensity"] <= 1


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


DIALOGUE = {  # lines in the style of our dialogue set, none of them in it
    "sad": ["My brother never came back from the mines.", "I keep his letters under my pillow. There won't be any more."],
    "angry": ["You broke my cart and you won't even apologise?!", "Get your filthy hands off my daughter!"],
    "fearful": ["Help! The wolves are inside the walls!", "Something is breathing behind that door."],
    "disgusted": ["Ugh, the bread is crawling with weevils.", "He licked the plates clean and put them back."],
    "happy": ["We're getting married in the spring!", "Fresh pie for everyone, on the house tonight!"],
    "surprised": ["Wait, the statue just winked at me?", "You're the new captain? Since when?!"],
    "neutral": ["The ferry leaves at the second bell.", "Bring the crates to the north warehouse."],
}


def test_dialogue_categories_are_predicted(analyzer):
    lines = [(c, t) for c, ts in DIALOGUE.items() for t in ts]
    got = analyzer.readings([t for _, t in lines])
    right = sum(g.label == c for (c, _), g in zip(lines, got))
    assert right >= len(lines) - 3, [(c, g.label, t) for (c, t), g in zip(lines, got) if g.label != c]


def test_label_and_vad_never_disagree(analyzer):
    """A sad label with positive valence (or happy with negative, surprised or afraid with low arousal, or a neutral
    one against decisive category evidence) is a bug."""
    from avatar.emotion import is_consistent

    texts = [t for ts in DIALOGUE.values() for t in ts] + ["Oh great, another Monday.", "I am happy", "Fine.",
                                                           "I can't believe we finally won!", "😢", "ok"]
    for r in analyzer.readings(texts):
        assert is_consistent(r.vad, r.label, r.categories), r


def test_intensity_grows_with_the_words(analyzer):
    for mild, strong in (("I'm a little annoyed.", "I'm FURIOUS!"), ("That's nice.", "That's absolutely wonderful!"),
                         ("I'm slightly nervous.", "I'm absolutely terrified!")):
        a, b = analyzer.readings([mild, strong])
        assert a.intensity < b.intensity, (mild, a.intensity, strong, b.intensity)


def test_inference_needs_no_torch():
    import subprocess
    import sys

    code = ("import sys; from avatar.emotion import analyze; analyze('Help! Somebody help me!'); "
            "assert 'torch' not in sys.modules and 'transformers' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
