"""The embedded eSpeak NG backend: events and timeline, voices, emotion contrast, hostile input."""

from __future__ import annotations

import numpy as np
import pytest

from avatar.errors import InputError
from avatar.tts import get_backend
from avatar.tts.analysis import measure
from avatar.tts.espeak import EspeakBackend, sanitize
from avatar.types import VAD, VISEMES, EmotionSegment, EmotionTrack

SENTENCE = "The quick brown fox jumps over the lazy dog, and then it runs away into the forest."


@pytest.fixture(scope="module")
def tts() -> EspeakBackend:
    return get_backend("espeak")


def test_timeline_is_sane(tts):
    text = "Hello there, my friend. Café naïve! We met at 10 o'clock."
    sp = tts.synthesize(text, VAD(0.3, 0.2, 0.0))
    tl = sp.timeline
    assert sp.sample_rate == tl.sample_rate == 22050
    assert tl.duration == pytest.approx(sp.duration, abs=1e-6)
    starts = [p.start for p in tl.phonemes]
    assert starts == sorted(starts) and all(p.end >= p.start for p in tl.phonemes)
    for a, b in zip(tl.phonemes, tl.phonemes[1:]):
        assert b.start >= a.end - 1e-9  # no overlap
    assert all(0 <= p.start and p.end <= sp.duration + 1e-9 for p in tl.phonemes)
    assert all(p.viseme in VISEMES for p in tl.phonemes)
    assert sum(p.viseme != "sil" for p in tl.phonemes) > 25
    words = [w.word for w in tl.words]
    assert words[:3] == ["Hello", "there", "my"] and "Café" in words and "naïve" in words
    pos = 0
    for w in words:  # every word is a piece of the text, in order
        pos = text.index(w, pos)
    for w in tl.words:
        inside = [p for p in tl.phonemes if p.start >= w.start - 1e-9 and p.end <= w.end + 1e-9 and p.viseme != "sil"]
        assert inside, w
    # sound where the timeline says speech is: the spoken phonemes carry most of the energy
    spoken = np.zeros(sp.audio.size, bool)
    for p in tl.phonemes:
        if p.viseme != "sil":
            spoken[int(p.start * sp.sample_rate):int(p.end * sp.sample_rate)] = True
    energy = sp.audio.astype(np.float64) ** 2
    assert energy[spoken].sum() > 0.95 * energy.sum()
    # numbers are read as several words under overlapping events: still one word each
    nums = tts.synthesize("I have 1,250 apples, in 2024.").timeline
    assert [w.word for w in nums.words] == ["I", "have", "1,250", "apples", "in", "2024"]


def test_bilabials_are_pp(tts):
    tl = tts.synthesize("Bob made a map, pop!").timeline
    for p in tl.phonemes:
        if p.phoneme.strip("ˈˌː") in {"p", "b", "m"}:
            assert p.viseme == "PP", p
    assert sum(p.viseme == "PP" for p in tl.phonemes) >= 6


def test_voices_listed_and_selectable(tts):
    voices = tts.list_voices()
    assert len(voices) > 100 and any(v.endswith("en-US") or v == "gmw/en-US" for v in voices)
    infos = tts.voices()
    assert any(v.variant and v.identifier == "f3" for v in infos)
    a = tts.synthesize("Guten Tag, wie geht es dir?", voice="de").audio
    b = tts.synthesize("Hello, how are you?", voice="en-us+f3")
    assert a.size > 0 and b.audio.size > 0
    assert measure(b.audio, b.sample_rate).f0_median > 150  # the female variant is higher
    with pytest.raises(InputError, match="unknown espeak voice"):
        tts.synthesize("hello", voice="xx-nosuch")
    with pytest.raises(InputError, match="unknown espeak variant"):
        tts.synthesize("hello", voice="en-us+nosuch")
    for bad in ("../../etc/passwd", "../voices/en", "en\x00", "x" * 200):
        with pytest.raises(InputError, match="invalid espeak voice"):
            tts.synthesize("hello", voice=bad)
    assert tts.synthesize("Hi.", voice="English (America)").audio.size > 0  # display names work too


def test_language_codes_select_the_voice_that_speaks_them(tts):
    """'en-gb' (the README's example, en-gb+f3) is a language of the voice file gmw/en, not a file of its own:
    eSpeak NG's SetVoiceByName refuses it, so it is resolved through the voice list."""
    assert tts.engine.voice_for_language("en-gb") == "gmw/en"
    assert tts.engine.voice_for_language("EN-GB") == "gmw/en"
    assert tts.engine.voice_for_language("zh") == "sit/cmn"
    assert tts.engine.voice_for_language("xx-nosuch") is None
    gb = tts.synthesize("Hello, how are you?", voice="en-gb+f3")
    us = tts.synthesize("Hello, how are you?", voice="en-us+f3")
    assert gb.audio.size > 0 and measure(gb.audio, gb.sample_rate).f0_median > 150  # the variant applies
    assert gb.audio.size != us.audio.size or not np.array_equal(gb.audio, us.audio)  # another accent
    assert tts.synthesize("Hello.", voice="en-gb").audio.size > 0


def test_arousal_contrast_is_measurable(tts):
    hi = tts.synthesize(SENTENCE, VAD(0, 0.8, 0))
    lo = tts.synthesize(SENTENCE, VAD(0, -0.8, 0))
    mh, ml = measure(hi.audio, hi.sample_rate), measure(lo.audio, lo.sample_rate)
    assert mh.f0_median / ml.f0_median >= 1.15
    assert ml.active_seconds / mh.active_seconds >= 1.15  # same phonemes in less speaking time
    assert mh.loudness_db - ml.loudness_db >= 3.0
    for sp in (hi, lo):
        last = max(p.end for p in sp.timeline.phonemes if p.viseme != "sil")
        assert abs(last - measure(sp.audio, sp.sample_rate).speech_end) <= 0.25


def test_deterministic_and_valence_changes_contour(tts):
    a = tts.synthesize(SENTENCE, VAD(0.7, 0.2, 0.1)).audio
    b = tts.synthesize(SENTENCE, VAD(0.7, 0.2, 0.1)).audio
    assert np.array_equal(a, b)
    c = tts.synthesize(SENTENCE, VAD(0.7, 0.2, -0.8)).audio
    assert abs(a.size - c.size) < 0.01 * a.size  # dominance changes pitch, loudness and contour, not timing
    assert not np.array_equal(a, c)


@pytest.mark.parametrize("voice", ["en-us+f3", "en-us+m2"])
def test_voice_variants_repeat_whatever_came_before_and_across_processes(tts, voice):
    """Variants carry klatt/breath state and eSpeak seeds its noise from the clock: a line must still sound the
    same after other lines (batch scripts interleave characters) and in another process (a re-run)."""
    import hashlib
    import subprocess
    import sys

    first = tts.synthesize("Hello there, my friend.", VAD(0.5, 0.3, 0.1), voice).audio
    tts.synthesize("What a strange day it has been!", VAD(-0.5, 0.8, 0.2), voice)
    tts.synthesize("Another voice in between.", VAD(0.0, 0.0, 0.0), "en-us")
    again = tts.synthesize("Hello there, my friend.", VAD(0.5, 0.3, 0.1), voice).audio
    assert np.array_equal(first, again)
    code = ("import hashlib, numpy as np; from avatar.tts import get_backend; from avatar.types import VAD; "
            f"a = get_backend('espeak').synthesize('Hello there, my friend.', VAD(0.5, 0.3, 0.1), {voice!r}).audio; "
            "print(hashlib.sha1(np.ascontiguousarray(a).tobytes()).hexdigest())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()[-1]
    assert out == hashlib.sha1(np.ascontiguousarray(first).tobytes()).hexdigest()


def test_per_sentence_vads_and_track(tts):
    text = "I am calm. I AM FURIOUS NOW!"
    both = tts.synthesize(text, [VAD(0, -0.8, 0), VAD(0, 0.8, 0)])
    ref1 = tts.synthesize("I am calm.", VAD(0, -0.8, 0))
    ref2 = tts.synthesize("I AM FURIOUS NOW!", VAD(0, 0.8, 0))
    assert both.audio.size == ref1.audio.size + ref2.audio.size
    assert np.array_equal(both.audio[:ref1.audio.size], ref1.audio)
    off = ref1.duration
    assert both.timeline.words[-1].end == pytest.approx(ref2.timeline.words[-1].end + off, abs=1e-6)
    track = EmotionTrack(segments=[EmotionSegment(start=0, end=1, vad=VAD(0, -0.8, 0)),
                                   EmotionSegment(start=1, end=9, vad=VAD(0, 0.8, 0))], transition=0.0)
    tracked = tts.synthesize(text, track)  # sentence 1 starts in the calm segment, sentence 2 in the angry one
    assert abs(tracked.audio.size - both.audio.size) < 0.01 * both.audio.size
    first = tracked.timeline.words[1].end
    assert first == pytest.approx(ref1.timeline.words[1].end, abs=0.01)
    with pytest.raises(InputError, match="one per sentence"):
        tts.synthesize(text, [VAD(0, 0, 0)])


def test_bad_input_is_refused_clearly(tts):
    with pytest.raises(InputError, match="empty"):
        tts.synthesize("   \n ")
    with pytest.raises(InputError):
        tts.synthesize("hello", VAD(float("nan"), 0, 0))
    with pytest.raises(InputError, match="finite"):
        tts.synthesize("hello", [float("nan"), 0.0, 0.0])
    with pytest.raises(InputError, match="split it"):
        tts.synthesize("word " * 10_000)  # 50k characters: refused at once, with what to do


def test_emoji_and_injection_are_spoken_as_text(tts):
    sp = tts.synthesize("I love it 😀🎉!")
    assert sp.duration > 0.5 and "love" in [w.word for w in sp.timeline.words]
    # eSpeak's phoneme input ([[ ]]) and SSML must not be interpreted: the letters are read as words.
    text = "[[a]] <speak> <break time='5s'/> hello &amp; bye"
    assert sanitize(text).count("[[") == 0 and len(sanitize(text)) == len(text)
    sp = tts.synthesize(text)
    words = [w.word.lower() for w in sp.timeline.words]
    for expected in ("a", "speak", "break", "time", "hello", "bye"):
        assert any(expected in w for w in words), (expected, words)
    w = sp.timeline.words
    gaps = [w[0].start, sp.duration - w[-1].end] + [b.start - a.end for a, b in zip(w, w[1:])]
    assert max(gaps) < 2.0  # the break tag did not insert 5 s of silence anywhere
    only = tts.synthesize("🙂")  # the engine names the emoji
    assert only.duration > 0.2
    with pytest.raises(InputError, match="nothing the voice can say"):
        tts.synthesize("...")
