"""Joining sentences (tts.base.synthesize_sentences): audio finished in another thread is waited for and faded."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from avatar.tts.base import PendingAudio, synthesize_sentences
from avatar.types import Phoneme, Timeline

SR = 8000
TEXT = "One two. Three four five. Six."


def _model(sentence: str) -> tuple[np.ndarray, Timeline]:
    n = 400 * len(sentence.split())
    audio = np.sin(np.arange(n) * 0.05 * len(sentence)).astype(np.float32)
    return audio, Timeline(sample_rate=SR, duration=n / SR, phonemes=[Phoneme(phoneme="a", viseme="aa", start=0.0,
                                                                                end=n / SR)])


def _finish(audio: np.ndarray) -> np.ndarray:
    return audio * np.float32(0.5)


def test_pending_audio_gives_the_same_speech_as_finished_audio():
    kw = dict(gap_seconds=0.1, lead_in_seconds=0.05, tail_seconds=0.02, fade_out_seconds=0.03)

    def now(s: str, v: object) -> tuple[np.ndarray, Timeline]:
        a, tl = _model(s)
        return _finish(a), tl

    finished_in: list[str] = []

    with ThreadPoolExecutor(1, thread_name_prefix="finish") as pool:
        def later(s: str, v: object) -> tuple[PendingAudio, Timeline]:
            a, tl = _model(s)

            def job() -> np.ndarray:
                finished_in.append(threading.current_thread().name)
                return _finish(a)
            return PendingAudio(pool.submit(job), a.size), tl

        ref = synthesize_sentences(TEXT, None, SR, now, **kw)
        got = synthesize_sentences(TEXT, None, SR, later, **kw)
    assert len(finished_in) == 3 and all(n.startswith("finish") for n in finished_in)
    np.testing.assert_array_equal(got.audio, ref.audio)  # the fade-out reaches the last (pending) sentence too
    assert abs(float(got.audio[-int(0.02 * SR) - 1])) < 1e-3
    assert got.sentence_spans == ref.sentence_spans and got.timeline == ref.timeline


def test_a_pending_sentence_that_changes_its_length_is_refused():
    with ThreadPoolExecutor(1) as pool:
        def bad(s: str, v: object) -> tuple[PendingAudio, Timeline]:
            a, tl = _model(s)
            return PendingAudio(pool.submit(lambda: a[:-1]), a.size), tl

        with pytest.raises(AssertionError, match="changed its length"):
            synthesize_sentences(TEXT, None, SR, bad)


def test_an_error_while_finishing_a_sentence_reaches_the_caller():
    with ThreadPoolExecutor(1) as pool:
        def failing(s: str, v: object) -> tuple[PendingAudio, Timeline]:
            a, tl = _model(s)

            def job() -> np.ndarray:
                if s.startswith("Three"):
                    raise ValueError("WORLD failed on sentence 2")
                return a
            return PendingAudio(pool.submit(job), a.size), tl

        with pytest.raises(ValueError, match="sentence 2"):
            synthesize_sentences(TEXT, None, SR, failing)
