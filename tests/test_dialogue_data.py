"""The hand-written dialogue set: balanced, split by group, labels consistent with their VAD points."""

import collections
import subprocess
import sys

from avatar.emotion.dialogue_data import CATEGORIES, DATA_DIR, load_dialogue, load_triples

NEGATIVE = {"sad", "angry", "fearful", "disgusted"}


def test_build_is_reproducible(tmp_path):
    before = (DATA_DIR / "lines.csv").read_bytes()
    subprocess.run([sys.executable, str(DATA_DIR / "build.py")], check=True, capture_output=True)
    assert (DATA_DIR / "lines.csv").read_bytes() == before, "lines.csv is stale: run datasets/dialogue/build.py"


def test_groups_never_straddle_splits():
    rows = load_dialogue()
    split_of = collections.defaultdict(set)
    for r in rows:
        split_of[r.group].add(r.split)
    assert all(len(s) == 1 for s in split_of.values())
    texts = collections.defaultdict(set)
    for r in rows:
        texts[r.text.lower()].add(r.split)
    assert all(len(s) == 1 for s in texts.values())


def test_balanced_over_categories_and_intensities():
    rows = load_dialogue()
    assert len(rows) >= 9000 and sum(r.variant == "original" for r in rows) >= 3000
    per_cat = collections.Counter(r.category for r in rows)
    assert set(per_cat) == set(CATEGORIES)
    assert max(per_cat.values()) / min(per_cat.values()) < 1.1
    for split in ("train", "dev", "test"):
        assert {r.category for r in rows if r.split == split} == set(CATEGORIES)
    emo = collections.Counter(r.intensity for r in rows if r.category != "neutral")
    assert set(emo) == {"mild", "plain", "strong"} and max(emo.values()) / min(emo.values()) < 1.1


def test_each_batch_split_on_its_own_and_later_batches_varied():
    """Every batch has every category in every split (a batch is split alone, so adding one never moves another's
    groups); batches after the first name a genre and a speaker per group and cover many of each."""
    rows = [r for r in load_dialogue() if r.variant == "original"]
    batches = collections.defaultdict(list)
    for r in rows:
        batches[r.batch].append(r)
    assert len(batches) >= 3
    for batch, rs in batches.items():
        for split in ("train", "dev", "test"):
            assert {r.category for r in rs if r.split == split} == set(CATEGORIES), (batch, split)
    later = [r for r in rows if r.batch != "batch1"]
    assert all(r.genre and r.speaker for r in later)
    genres = collections.Counter(r.genre for r in later)
    assert len([g for g, n in genres.items() if n >= 30]) >= 10, genres
    assert len({r.speaker for r in later}) >= 50


def test_vad_agrees_with_category():
    for r in load_dialogue():
        v, a, _ = r.vad
        if r.category in NEGATIVE:
            assert v < 0, r
        elif r.category == "happy":
            assert v > 0, r
        elif r.category == "surprised":
            assert a > 0, r
        else:
            assert r.vad == (0.0, 0.0, 0.0) and r.intensity_value == 0.0, r


def test_mostly_without_naming_the_emotion_and_varied():
    orig = [r for r in load_dialogue() if r.variant == "original"]
    tags = collections.Counter(t for r in orig for t in r.tags)
    assert tags["names_emotion"] / len(orig) < 0.1
    for t in ("negation", "sarcasm", "question", "exclamation", "one_word", "emoji"):
        assert tags[t] >= 15, t


def test_triples():
    triples = load_triples()
    assert len(triples) >= 20
    assert {t[0] for t in triples} == set(CATEGORIES) - {"neutral"}
    lines = {r.text for r in load_dialogue()}
    assert not any(x in lines for t in triples for x in t[1:]), "triples must stay out of the training lines"
