import pytest

from avatar.emotion.sentences import MAX_SENTENCE_CHARS, MAX_TEXT_CHARS, check_text, split_sentences
from avatar.errors import InputError


def texts(s):
    return [x.text for x in split_sentences(s)]


def test_basic_split_with_offsets():
    src = "Hello there!  How are you? I'm fine."
    out = split_sentences(src)
    assert [s.text for s in out] == ["Hello there!", "How are you?", "I'm fine."]
    for s in out:
        assert src[s.start:s.end] == s.text


def test_abbreviations_numbers_and_ellipsis():
    assert texts("Dr. Smith paid $3.50 for it. Then he left.") == ["Dr. Smith paid $3.50 for it.", "Then he left."]
    assert texts("Wait... what? No!") == ["Wait...", "what?", "No!"] or texts("Wait... what? No!") == ["Wait... what?", "No!"]
    assert texts('"Run!" she said. Fine.') == ['"Run!" she said.', "Fine."]


def test_cjk_and_mixed_scripts():
    assert texts("我很高兴。你好吗？Yes.") == ["我很高兴。", "你好吗？", "Yes."]
    assert texts("Привет! Как дела?") == ["Привет!", "Как дела?"]


@pytest.mark.parametrize("bad", ["", "   \n\t ", "\u200b\u200b"])
def test_empty_is_refused(bad):
    with pytest.raises(InputError):
        split_sentences(bad)


def test_huge_text_is_split_into_bounded_pieces():
    wall = "word " * 20_000  # 100k characters, no punctuation
    out = split_sentences(wall)
    assert all(len(s.text) <= MAX_SENTENCE_CHARS for s in out)
    assert sum(len(s.text.split()) for s in out) == 20_000
    with pytest.raises(InputError):
        check_text("a" * (MAX_TEXT_CHARS + 1))


def test_unspaced_long_text_is_cut_hard():
    out = split_sentences("字" * 1000)
    assert all(len(s.text) <= MAX_SENTENCE_CHARS for s in out) and sum(len(s.text) for s in out) == 1000
