"""Fuzzing the input parsers with hypothesis: each returns a valid object or raises InputError, never another
exception (issue 20). Text, VAD, timeline, batch-script and control-message parsers.

The budget is fixed for CI: derandomized (the same examples on every run, so a failure reproduces), at most
FUZZ_EXAMPLES examples per test, a per-example deadline, no example database; the file takes about 15-30 s.
"""

from __future__ import annotations

import json
import math
import os
from datetime import timedelta
from typing import Any, Callable

import pytest

pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from avatar.errors import InputError

#: Examples per test; AVATAR_FUZZ_EXAMPLES=5000 AVATAR_FUZZ_SEED=random for a longer hunt by hand.
FUZZ_EXAMPLES = int(os.environ.get("AVATAR_FUZZ_EXAMPLES", "150"))
FUZZ = settings(max_examples=FUZZ_EXAMPLES, deadline=timedelta(seconds=5),
                derandomize=os.environ.get("AVATAR_FUZZ_SEED") != "random", database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large], print_blob=True)

# Any code point, lone surrogates and controls included: what argv, JSON escapes and files can carry.
any_char = st.characters(codec=None, exclude_categories=())
texts = st.one_of(st.text(any_char, max_size=300),
                  st.text(st.sampled_from(list(".!?。…\"' \n\t\u200d\u200c\ufeffabcXY1é漢👩")), max_size=300))
json_scalars = st.one_of(st.none(), st.booleans(), st.integers(min_value=-2**70, max_value=2**70),
                         st.floats(allow_nan=True, allow_infinity=True), st.text(any_char, max_size=30))
json_values = st.recursive(json_scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(any_char, max_size=12), inner, max_size=4)), max_leaves=12)


def parsed(fn: Callable[..., Any], *args: Any) -> Any:
    """fn(*args), or None when it raised InputError; any other exception fails the test."""
    try:
        return fn(*args)
    except InputError as exc:
        assert str(exc).strip(), "an InputError needs a message"
        return None


def _dumps(obj: Any) -> str:
    return json.dumps(obj, allow_nan=True, ensure_ascii=False)


# ---------------------------------------------------------------------------------------------- text

@FUZZ
@given(texts)
def test_text_parsers(text: str) -> None:
    from avatar.emotion.sentences import MAX_SENTENCE_CHARS, check_text, split_sentences
    from avatar.text import check_unicode
    from avatar.tts.base import check_tts_text

    ok = parsed(check_text, text)
    if ok is not None:
        assert isinstance(ok, str) and ok.strip()
        assert not any(0xD800 <= ord(c) <= 0xDFFF for c in ok)
    for fn in (split_sentences, check_tts_text):
        sentences = parsed(fn, text)
        if sentences is not None:
            assert sentences and ok is not None
            for s in sentences:
                assert s.text.strip() and len(s.text) <= MAX_SENTENCE_CHARS and 0 <= s.start <= s.end
    assert (parsed(check_unicode, text) is None) == any(0xD800 <= ord(c) <= 0xDFFF for c in text)


@FUZZ
@given(st.binary(max_size=300))
def test_utf8_decoding(raw: bytes) -> None:
    from avatar.text import decode_utf8

    out = parsed(decode_utf8, raw, "input")
    try:
        expected = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        expected = None
    assert out == expected


# ---------------------------------------------------------------------------------------------- VAD

def _valid_vad(v: Any) -> None:
    from avatar.types import VAD

    assert isinstance(v, VAD)
    assert all(math.isfinite(x) and -1.0 <= x <= 1.0 for x in (v.valence, v.arousal, v.dominance))


@FUZZ
@given(json_values, json_values, json_values, json_values)
def test_vad_parsers(a: Any, b: Any, c: Any, spec: Any) -> None:
    from avatar.batch.script import parse_emotion
    from avatar.types import VAD

    for v in (parsed(VAD, a, b, c), parsed(lambda: VAD(valence=a)), parsed(VAD.from_array, [a, b, c]),
              parsed(VAD.model_validate, spec)):
        if v is not None:
            _valid_vad(v)
    v = parsed(parse_emotion, spec, "emotion")
    if v is not None:
        _valid_vad(v)


# ---------------------------------------------------------------------------------------------- timeline

spans = st.fixed_dictionaries({"start": json_scalars, "end": json_scalars},
                              optional={"phoneme": json_scalars, "viseme": st.sampled_from(["sil", "aa", "PP", "x"]),
                                        "word": json_scalars})
timelines = st.fixed_dictionaries(
    {"sample_rate": json_scalars, "duration": json_scalars},
    optional={"phonemes": st.lists(spans, max_size=4), "words": st.lists(spans, max_size=4), "extra": json_values})


@FUZZ
@given(st.one_of(timelines, json_values), st.text(any_char, max_size=200))
def test_timeline_parser(obj: Any, junk: str) -> None:
    from avatar.types import Timeline

    for source in (_dumps(obj), "{" + junk):  # JSON text (starts with '{', so never read as a file path)
        tl = parsed(Timeline.from_json, source)
        if tl is not None:
            assert isinstance(tl, Timeline) and tl.sample_rate > 0 and math.isfinite(tl.duration)
            assert all(math.isfinite(p.start) and math.isfinite(p.end) for p in (*tl.phonemes, *tl.words))


# ---------------------------------------------------------------------------------------------- batch scripts

lines = st.fixed_dictionaries({}, optional={"id": json_scalars, "character": json_scalars, "text": json_scalars,
                                            "emotion": json_values, "audio": json_scalars, "extra": json_scalars})
scripts = st.fixed_dictionaries({}, optional={
    "lines": st.one_of(st.lists(st.one_of(lines, json_values), max_size=4), json_values),
    "characters": st.one_of(st.dictionaries(st.text(max_size=8), st.one_of(json_values, st.fixed_dictionaries(
        {}, optional={"voice": json_scalars, "avatar": json_scalars, "personality": json_values,
                      "base_emotion": json_values})), max_size=3), json_values),
    "title": json_scalars})


@FUZZ
@given(st.one_of(scripts, json_values), st.text(any_char, max_size=300), st.sampled_from(["yaml", "jsonl", "csv"]))
def test_batch_script_parsers(obj: Any, text: str, fmt: str) -> None:
    from avatar.batch.script import Line, LineFailure, check_lines, parse_script

    sources = [(text, fmt), (_dumps(obj), "yaml")]
    if isinstance(obj, dict) and isinstance(obj.get("lines"), list):
        sources.append(("\n".join(_dumps(x) for x in obj["lines"]), "jsonl"))
    for source, kind in sources:
        script = parsed(parse_script, source, kind, "fuzz")
        if script is None:
            continue
        good, bad = check_lines(script)  # per-line problems are LineFailures, never exceptions
        assert len(good) + len(bad) == len(script.lines)
        assert all(isinstance(line, Line) and line.text.strip() for _, line in good)
        assert all(isinstance(f, LineFailure) and f.error for f in bad)


# ---------------------------------------------------------------------------------------------- control messages

controls = st.fixed_dictionaries({"type": st.one_of(st.sampled_from(["say", "audio", "emotion", "stop"]), json_scalars)},
                                 optional={"text": st.one_of(texts, json_scalars), "path": json_scalars,
                                           "valence": json_scalars, "arousal": json_scalars,
                                           "dominance": json_scalars, "transition": json_scalars,
                                           "extra": json_values})


@FUZZ
@given(st.one_of(controls, json_values), st.text(any_char, max_size=300))
def test_control_message_parser(obj: Any, text: str) -> None:
    from avatar.live.stream import parse_control

    for msg in (obj, _dumps(obj), text, text.encode("utf-8", "surrogatepass")):
        c = parsed(parse_control, msg)
        if c is None:
            continue
        assert c["type"] in ("say", "audio", "emotion", "stop")
        if c.get("vad") is not None:
            _valid_vad(c["vad"])
        if c["type"] == "say":
            assert isinstance(c["text"], str) and c["text"].strip()
        if c["type"] == "emotion" and c["transition"] is not None:
            assert 0 <= c["transition"] <= 10
