"""avatar.batch: reading and validating scripts, and planning (emotion carry-over, seeds, input hashes)."""

from __future__ import annotations

import json

import pytest
from batch_fakes import fake_analyze

from avatar.batch.plan import VideoSettings, line_seed, plan_jobs
from avatar.batch.script import check_lines, load_script, parse_script
from avatar.errors import InputError
from avatar.types import VAD

GOOD = """
characters:
  ann: {voice: en-us, personality: {neuroticism: 0.9, extraversion: 0.8}, base_emotion: relaxed}
  bob: {personality: {conscientiousness: 0.9, neuroticism: 0.1}}
lines:
  - {id: a1, character: ann, text: "Hello there!"}
  - {id: b1, character: bob, text: "Hi."}
  - {id: a2, character: ann, text: "Hello there!"}
  - {id: a3, character: ann, text: "I am so sad.", emotion: [-0.5, 0.1, 0.0]}
"""


def _plan(text: str, **kw):
    script = parse_script(text, "yaml")
    good, bad = check_lines(script)
    args = {"seed": 0, "settings": VideoSettings(), "models": {"m": 1}, "analyze": fake_analyze, **kw}
    jobs, late = plan_jobs(script, good, **args)
    return {j.id: j for j in jobs}, bad + late


def test_example_script_is_valid(root):
    script = load_script(root / "examples" / "tavern.yaml")
    good, bad = check_lines(script)
    assert len(good) == 5 and bad == []
    assert set(script.characters) == {"barkeep", "bard"}


def test_bad_lines_fail_alone_with_clear_messages():
    text = """
characters: {ann: {}}
lines:
  - {id: ok1, character: ann, text: "Fine."}
  - {id: x1, character: zed, text: "Who am I?"}
  - {id: x2, character: ann, text: "   "}
  - {id: ../x, character: ann, text: "Escape."}
  - {id: a/b, character: ann, text: "Nested."}
  - {id: OK1, character: ann, text: "Same id, other case."}
  - {id: x3, character: ann}
  - {id: x4, character: ann, text: "Typo.", emotoin: happy}
  - {id: manifest.jsonl, character: ann, text: "Reserved."}
  - just a string
  - {id: x5, character: ann, text: "Bad emotion.", emotion: {valence: 2}}
  - {id: x6, character: ann, text: "Unknown label.", emotion: smug}
  - {id: ok2, character: ann, text: "Also fine."}
"""
    good, bad = check_lines(parse_script(text, "yaml"))
    assert [line.id for _, line in good] == ["ok1", "ok2"]
    errors = {f.index: f.error for f in bad}
    assert len(errors) == 11
    assert "unknown character 'zed'" in errors[1]
    assert "empty" in errors[2]
    assert "unsafe name '../x'" in errors[3] and "unsafe name 'a/b'" in errors[4]
    assert "duplicate id 'OK1' (first used by line 1)" in errors[5]
    assert "text" in errors[6] and "emotoin" in errors[7]
    assert "reserved" in errors[8] and "not a mapping" in errors[9]
    assert "valence" in errors[10] and "unknown emotion label 'smug'" in errors[11]
    assert {f.id for f in bad if f.index == 3} == {"../x"}  # the record keeps what the user wrote


@pytest.mark.parametrize("text, message", [
    ("lines: [", "not valid YAML at line"),
    ("- a\n- b\n", "mapping with `characters:` and `lines:`"),
    ("characters: {}\n", "`lines:` must be a non-empty list"),
    ("characters: {}\nlines: []\n", "non-empty list"),
    ("characters: {}\nlines: [{id: a, character: b, text: c}]\nscene: x\n", "unknown top-level keys ['scene']"),
    ("characters: {ann: {personality: {openness: 1.5}}}\nlines: [{id: a, character: ann, text: hi}]\n",
     "character 'ann'"),
    ("characters: {ann: {voce: en}}\nlines: [{id: a, character: ann, text: hi}]\n", "voce"),
    ("characters: [ann]\nlines: [{id: a, character: ann, text: hi}]\n", "map each name"),
])
def test_malformed_script_is_an_input_error(text, message):
    with pytest.raises(InputError, match=None) as err:
        parse_script(text, "yaml")
    assert message in str(err.value)


def test_file_level_errors(tmp_path):
    with pytest.raises(InputError, match="not found"):
        load_script(tmp_path / "missing.yaml")
    bad = tmp_path / "bin.yaml"
    bad.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(InputError, match="not UTF-8"):
        load_script(bad)
    s = tmp_path / "s.yaml"
    s.write_text("characters: {ann: {avatar: nope.glb}}\nlines: [{id: a, character: ann, text: hi}]\n")
    with pytest.raises(InputError, match="avatar file not found"):
        load_script(s)


def test_jsonl_and_csv_scripts(tmp_path):
    jl = tmp_path / "s.jsonl"
    jl.write_text('{"id": "a", "character": "ann", "text": "Hi!"}\n\n{broken\n'
                  '{"id": "b", "character": "bob", "text": "Yo.", "emotion": "angry"}\n', encoding="utf-8")
    good, bad = check_lines(load_script(jl))
    assert [line.id for _, line in good] == ["a", "b"]  # no characters file: any name is welcome
    assert len(bad) == 1 and "file line 3 is not JSON" in bad[0].error
    chars = tmp_path / "chars.yaml"
    chars.write_text("characters:\n  ann: {voice: en-us}\n")
    good, bad = check_lines(load_script(jl, characters=chars))
    assert [line.id for _, line in good] == ["a"] and "unknown character 'bob'" in bad[-1].error

    csv = tmp_path / "s.csv"
    csv.write_text('id,character,text,valence,arousal\nc1,ann,"Well, hello.",0.5,0.2\nc2,ann,Plain.,,\n'
                   'c3,ann,Odd.,x,0\nc4,ann,Too,many,cells,here\n', encoding="utf-8")
    good, bad = check_lines(load_script(csv))
    lines = {line.id: line for _, line in good}
    assert lines["c1"].emotion == VAD(0.5, 0.2, 0.0) and lines["c1"].text == "Well, hello."
    assert lines["c2"].emotion is None
    assert [f.id for f in bad] == ["c3", "c4"] and "more cell(s) than the header" in bad[1].error
    bad_csv = tmp_path / "b.csv"
    bad_csv.write_text("name,line\nann,hi\n")
    with pytest.raises(InputError, match="needs columns id, character, text"):
        load_script(bad_csv)
    not_json = tmp_path / "n.jsonl"
    not_json.write_text("hello\nworld\n")
    with pytest.raises(InputError, match="no row is a JSON object"):
        load_script(not_json)


def test_emotion_carries_over_within_a_character():
    jobs, bad = _plan(GOOD)
    assert bad == []
    a1, a2, a3 = jobs["a1"], jobs["a2"], jobs["a3"]
    # Same text, same stimulus, but the second time the mood starts where the first line left it.
    assert a1.stimulus == a2.stimulus and a1.vad != a2.vad
    stim = VAD(*a1.stimulus)
    assert VAD(*a2.vad).distance(stim) < VAD(*a1.vad).distance(stim)
    assert a3.stimulus == (-0.5, 0.1, 0.0)  # an override replaces what the text reads as
    assert a3.vad[0] < a2.vad[0]
    # Bob's line between Ann's lines does not touch Ann's mood: without it, Ann's lines plan the same.
    without_bob = GOOD.replace('  - {id: b1, character: bob, text: "Hi."}\n', "")
    jobs2, _ = _plan(without_bob)
    assert all(jobs2[k].vad == jobs[k].vad and jobs2[k].input_hash == jobs[k].input_hash for k in ("a1", "a2", "a3"))


def test_seeds_and_hashes_are_stable_and_specific():
    jobs, _ = _plan(GOOD)
    again, _ = _plan(GOOD)
    assert {k: (j.seed, j.input_hash) for k, j in jobs.items()} == {k: (j.seed, j.input_hash) for k, j in again.items()}
    assert jobs["a1"].seed == line_seed(0, "a1") != line_seed(1, "a1") != line_seed(0, "a2")
    assert len({j.seed for j in jobs.values()}) == len(jobs)
    for change in ({"seed": 1}, {"settings": VideoSettings(width=256)}, {"models": {"m": 2}}):
        other, _ = _plan(GOOD, **change)
        assert all(other[k].input_hash != jobs[k].input_hash for k in jobs), change
    voiced, _ = _plan(GOOD.replace("voice: en-us", "voice: en-gb"))
    assert voiced["a1"].input_hash != jobs["a1"].input_hash and voiced["b1"].input_hash == jobs["b1"].input_hash
    # A failing analyzer on one line fails that line only.
    def picky(text: str) -> VAD:
        if "Hi." in text:
            raise InputError("unreadable")
        return fake_analyze(text)
    partial, bad = _plan(GOOD, analyze=picky)
    assert "b1" not in partial and [f.id for f in bad] == ["b1"] and "a3" in partial
    json.dumps([j.vad_record() for j in jobs.values()])


def test_render_settings_are_checked():
    with pytest.raises(InputError, match="even"):
        VideoSettings(width=255)
    with pytest.raises(InputError):
        VideoSettings(framing="wide")


def test_recorded_lines_name_their_audio_relative_to_the_script(tmp_path):
    """`audio:` (YAML/JSONL, or a CSV column) performs a recording: a missing file fails that line only, and the
    recording's bytes are part of the line's input hash (so a new take renders again on --resume)."""
    (tmp_path / "vo").mkdir()
    (tmp_path / "vo" / "a1.wav").write_bytes(b"take one")
    (tmp_path / "s.yaml").write_text("""
lines:
  - {id: a1, character: ann, text: "Hello there!", audio: vo/a1.wav}
  - {id: a2, character: ann, text: "Hello there!", audio: vo/missing.wav}
  - {id: a3, character: ann, text: "Hello there!", audio: ""}
  - {id: a4, character: ann, text: "Hello there!"}
""", encoding="utf-8")
    script = load_script(tmp_path / "s.yaml")
    good, bad = check_lines(script)
    assert [line.id for _, line in good] == ["a1", "a4"]
    assert "audio file not found" in bad[0].error and "missing.wav" in bad[0].error
    assert bad[1].id == "a3" and "audio" in bad[1].error
    args = {"seed": 0, "settings": VideoSettings(), "models": {"m": 1}, "analyze": fake_analyze}
    jobs = {j.id: j for j in plan_jobs(script, good, **args)[0]}
    assert jobs["a1"].audio == str((tmp_path / "vo" / "a1.wav").resolve()) and jobs["a4"].audio is None
    (tmp_path / "vo" / "a1.wav").write_bytes(b"take two")
    again = {j.id: j for j in plan_jobs(script, good, **args)[0]}
    assert again["a1"].input_hash != jobs["a1"].input_hash and again["a4"].input_hash == jobs["a4"].input_hash
    (tmp_path / "s.csv").write_text("id,character,text,audio\nc1,ann,Hi.,vo/a1.wav\nc2,ann,Hi.,\n", encoding="utf-8")
    good, bad = check_lines(load_script(tmp_path / "s.csv"))
    assert not bad and [line.audio for _, line in good] == ["vo/a1.wav", None]


# ------------------------------------------------------------------------------------------------------------
# Issue 20: paths confined to the script's folder (item 5), broken CSV quoting (6), one prefix per message (19)
# ------------------------------------------------------------------------------------------------------------


def test_script_files_must_lie_in_the_scripts_folder_unless_trusted(tmp_path):
    """An untrusted script cannot pull other files (a recording, an avatar) into OUTDIR, and the error is worded
    the same whether the outside file exists or not."""
    (tmp_path / "secret.wav").write_bytes(b"someone's recording")
    (tmp_path / "secret.glb").write_bytes(b"glTF")
    work = tmp_path / "work"
    (work / "vo").mkdir(parents=True)
    (work / "vo" / "ok.wav").write_bytes(b"take")
    (work / "vo" / "link.wav").symlink_to(tmp_path / "secret.wav")  # a link out counts as outside
    (work / "s.yaml").write_text(f"""
lines:
  - {{id: a1, character: ann, text: "Hi.", audio: vo/ok.wav}}
  - {{id: a2, character: ann, text: "Hi.", audio: ../secret.wav}}
  - {{id: a3, character: ann, text: "Hi.", audio: ../nothing-here.wav}}
  - {{id: a4, character: ann, text: "Hi.", audio: {tmp_path / 'secret.wav'}}}
  - {{id: a5, character: ann, text: "Hi.", audio: vo/link.wav}}
""", encoding="utf-8")
    good, bad = check_lines(load_script(work / "s.yaml"))
    assert [line.id for _, line in good] == ["a1"]
    assert [f.id for f in bad] == ["a2", "a3", "a4", "a5"]
    for f in bad:
        assert "is outside the script's folder; pass --trust-script" in f.error and "not found" not in f.error
    assert bad[0].error.replace("line 2", "").replace("secret", "X") == \
        bad[1].error.replace("line 3", "").replace("nothing-here", "X")
    good, bad = check_lines(load_script(work / "s.yaml", trusted=True))
    assert [line.id for _, line in good] == ["a1", "a2", "a4", "a5"] and "not found" in bad[0].error

    (work / "c.yaml").write_text("characters: {ann: {avatar: ../secret.glb}}\n"
                                 "lines: [{id: a, character: ann, text: hi}]\n")
    with pytest.raises(InputError, match="character 'ann': avatar '../secret.glb' is outside the script's folder"):
        load_script(work / "c.yaml")
    assert load_script(work / "c.yaml", trusted=True).characters["ann"].avatar == "../secret.glb"


@pytest.mark.parametrize("body, where", [
    ('a1,ann,"Hello there\na2,ann,Fine.\na3,ann,Also fine.\n', "file line 2"),  # never closed: to the end
    ('a1,ann,"Hello there\na2,ann,"Fine."\na3,ann,Also fine.\n', "file line 2"),  # closed by the next quote
    ('a1,ann,"Hello,\nthere",happy\na2,ann,Fine.,\n', "file line 2"),  # a line break in a quoted cell
])
def test_an_unclosed_csv_quote_fails_the_script(tmp_path, body, where):
    """An unclosed quote used to swallow every later row into one line's text, and the batch said all ok."""
    s = tmp_path / "s.csv"
    s.write_text("id,character,text,emotion\n" + body, encoding="utf-8")
    with pytest.raises(InputError) as err:
        load_script(s)
    assert where in str(err.value) and "quote" in str(err.value), str(err.value)


def test_line_and_file_line_are_named_apart_and_prefixes_are_not_doubled(tmp_path):
    s = tmp_path / "s.csv"
    s.write_text("id,character,text,emotion\n\nc1,ann,Hi.,smug\nc2,ann,Too,many,cells\n", encoding="utf-8")
    _, bad = check_lines(load_script(s))
    # 'line N' counts lines of dialogue (the manifest's index + 1), 'file line N' lines of the file.
    assert bad[0].error.startswith("line 1: unknown emotion label 'smug'"), bad[0].error
    assert bad[1].error.startswith("file line 4 has 1 more cell(s)"), bad[1].error
    for f in bad:
        assert "invalid Line" not in f.error and "row" not in f.error


def test_a_model_reading_goes_into_the_manifest_record():
    """An analyzer that returns a SentenceEmotion: its VAD is the stimulus, its label/categories/intensity the
    line's `reading` in the manifest; an override line has none."""
    from avatar.batch.manifest import pending_record
    from avatar.types import SentenceEmotion

    def reading(text: str) -> SentenceEmotion:
        return SentenceEmotion(text=text, vad=VAD(-0.4, 0.5, 0.1), label="angry", confidence=0.7,
                               categories={"neutral": 0.1, "angry": 0.7, "sad": 0.2}, intensity=0.6)

    jobs, bad = _plan(GOOD, analyze=reading)
    assert bad == [] and jobs["a1"].stimulus == (-0.4, 0.5, 0.1)
    rec = pending_record(jobs["a1"])
    assert rec["reading"] == {"label": "angry", "confidence": 0.7, "intensity": 0.6,
                              "categories": {"neutral": 0.1, "angry": 0.7, "sad": 0.2}}
    assert "reading" not in pending_record(jobs["a3"])
