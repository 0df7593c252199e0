"""Speech corpus -> tiny face model -> `avatar face` end to end (fast: 3 clips, 10 steps, a 12k-weight model)."""

from __future__ import annotations

import json
import subprocess

import numpy as np
import pytest

from avatar.face.features import frames_for
from avatar.types import FACE_CHANNELS, VAD, FaceMotion, Timeline

torch = pytest.importorskip("torch")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    from avatar.tts.corpus import build_corpus

    out = tmp_path_factory.mktemp("corpus")
    build_corpus(out, clips=3, seed=7, progress=False)
    return out


@pytest.fixture(scope="module")
def tiny_model(corpus, tmp_path_factory):
    from avatar.face.train import main

    out = tmp_path_factory.mktemp("weights") / "face"
    argv = ["--data", str(corpus), "--out", str(out), "--steps", "10", "--batch", "4", "--hidden", "16",
            "--blocks", "2", "--window", "32", "--overlap", "8", "--copies", "1", "--threads", "1", "--seed", "3",
            "--save-every", "4"]
    assert main(argv) == 0
    return out


def test_corpus_files_and_manifest(corpus):
    from avatar.tts.corpus import HELDOUT_LANGUAGES, HELDOUT_VARIANTS

    records = [json.loads(ln) for ln in (corpus / "manifest.jsonl").read_text().splitlines()]
    assert [r["id"] for r in records] == [f"train_7_{i:06d}" for i in range(3)]
    for r in records:
        audio_path = corpus / f"{r['id']}.wav"
        tl = Timeline.from_json(corpus / f"{r['id']}.json")
        vad = VAD(**json.loads((corpus / f"{r['id']}.vad.json").read_text()))
        assert audio_path.stat().st_size > 1000 and tl.duration == pytest.approx(r["duration"], abs=1e-3)
        assert len(tl.words) >= 4 and vad == VAD(r["valence"], r["arousal"], r["dominance"])
        lang, _, variant = r["voice"].partition("+")
        assert lang not in HELDOUT_LANGUAGES and variant not in HELDOUT_VARIANTS
    assert not [p for p in corpus.iterdir() if p.name.startswith(".")]  # no temp files left


def test_corpus_is_deterministic_and_resume_skips(corpus, tmp_path):
    from avatar.tts.corpus import build_corpus

    # A 2-clip corpus with the same seed is the first two clips of the 3-clip one, byte for byte.
    build_corpus(tmp_path, clips=2, seed=7, progress=False)
    for i in range(2):
        for ext in (".wav", ".json", ".vad.json"):
            name = f"train_7_{i:06d}{ext}"
            assert (tmp_path / name).read_bytes() == (corpus / name).read_bytes(), name
    first = tmp_path / "train_7_000000.wav"
    stamp = first.stat().st_mtime_ns
    (tmp_path / "train_7_000001.wav").unlink()  # an interrupted clip is made again, a complete one is kept
    records = build_corpus(tmp_path, clips=3, seed=7, resume=True, progress=False)
    assert first.stat().st_mtime_ns == stamp
    assert (tmp_path / "train_7_000001.wav").read_bytes() == (corpus / "train_7_000001.wav").read_bytes()
    assert len(records) == 3 and len((tmp_path / "manifest.jsonl").read_text().splitlines()) == 3
    (tmp_path / "manifest.jsonl").unlink()  # a run killed before its manifest: the clips still count as done
    stamp = (tmp_path / "train_7_000002.wav").stat().st_mtime_ns
    again = build_corpus(tmp_path, clips=3, seed=7, resume=True, progress=False)
    assert again == records and (tmp_path / "train_7_000002.wav").stat().st_mtime_ns == stamp


def test_resume_with_another_voice_list_remakes_the_clips(corpus, tmp_path):
    """--more-voices keeps a clip's id, text and VAD but draws another voice: resuming a corpus made without it
    remakes each clip whose manifest names another voice (it kept the old audio under the new voice's name)."""
    import shutil

    from avatar.tts.corpus import build_corpus

    for p in corpus.iterdir():
        shutil.copy(p, tmp_path / p.name)
    before = {r["id"]: r["voice"] for r in map(json.loads, (tmp_path / "manifest.jsonl").read_text().splitlines())}
    records = build_corpus(tmp_path, clips=3, seed=7, resume=True, more_voices=True, progress=False)
    changed = [r["id"] for r in records if r["voice"] != before[r["id"]]]
    assert changed  # seed 7's first clips draw other voices from the longer list
    for cid in changed:
        assert (tmp_path / f"{cid}.wav").read_bytes() != (corpus / f"{cid}.wav").read_bytes(), cid


def test_corpus_examples_count_the_neural_voice(corpus, tmp_path, monkeypatch):
    """The card's count of neural-voice clips reads the manifest by tts.corpus (damaged lines skipped) and its name."""
    import shutil

    from avatar.face.train import corpus_examples
    from avatar.tts import corpus as tc

    for p in corpus.glob("train_7_00000[01].*"):
        shutil.copy(p, tmp_path)
    recs = tc.read_manifest(corpus / "manifest.jsonl")
    recs["train_7_000000"]["voice"] = "nova"
    lines = [json.dumps(recs["train_7_000000"]), "{damaged", '{"voice": "nova"}', json.dumps(recs["train_7_000001"])]
    (tmp_path / "manifest.jsonl").write_text("\n".join(lines) + "\n")
    monkeypatch.setattr(tc, "NEURAL_VOICE", "nova")
    _, info = corpus_examples(tmp_path, fps=30.0, copies=1, seed=0, progress=False)
    assert info["clips"] == 2 and info["neural"] == 1


def test_heldout_split_shares_no_voice_or_sentence():
    from avatar.tts.corpus import load_sentences, voices_for

    assert not set(voices_for("train")) & set(voices_for("heldout"))
    train, held = load_sentences("train"), load_sentences("heldout")
    assert train and held and not set(train) & set(held)


def test_more_voices_widen_train_only_and_stay_off_the_heldout_voices():
    from avatar.errors import InputError
    from avatar.tts.corpus import EXTRA_TRAIN_VARIANTS, HELDOUT_VARIANTS, TRAIN_VARIANTS, voices_for

    more = voices_for("train", more=True)
    assert set(voices_for("train")) < set(more) and not set(more) & set(voices_for("heldout"))
    assert len(set(EXTRA_TRAIN_VARIANTS)) == len(EXTRA_TRAIN_VARIANTS) and not set(EXTRA_TRAIN_VARIANTS) & set(TRAIN_VARIANTS)
    # No relative of a held-out variant either (iven2 is iven's sibling).
    assert not [v for v in EXTRA_TRAIN_VARIANTS for h in HELDOUT_VARIANTS if v.lower().startswith(h.lower())]
    with pytest.raises(InputError):
        voices_for("heldout", more=True)


def test_augmentation_keeps_length_and_changes_signal():
    from avatar.face.train import augment_audio

    sr = 22050
    x = (0.3 * np.sin(2 * np.pi * 220 * np.arange(sr) / sr)).astype(np.float32)
    a = augment_audio(x, sr, np.random.default_rng(0))
    b = augment_audio(x, sr, np.random.default_rng(0))
    assert a.shape == x.shape and a.dtype == np.float32 and np.array_equal(a, b)
    assert np.abs(a).max() <= 1.0 and not np.allclose(a, x, atol=1e-3)


def test_trained_model_card_and_determinism(tiny_model, corpus):
    from avatar.face.generate import generate_face, load_face_model
    from avatar.audio import load_audio

    card = (tiny_model / "README.md").read_text()
    model = load_face_model(tiny_model)
    assert "10 steps" in card and "--steps 10" in card and "CC-BY-SA" in card and "3 clips" in card
    assert "Checkpoint" not in card  # the final save replaced the step-4 and step-8 checkpoints
    from avatar.face.model import FaceDenoiser

    assert f"{FaceDenoiser.from_pretrained(tiny_model).num_parameters():,} " in card
    assert (tiny_model / "model.onnx").is_file()  # the training command exported the inference graph
    audio, sr = load_audio(corpus / "train_7_000000.wav")
    a = generate_face(audio, sr, VAD(0.5, 0.2, 0.0), seed=1, model=model, steps=3)
    b = generate_face(audio, sr, VAD(0.5, 0.2, 0.0), seed=1, model=model, steps=3)
    assert np.array_equal(a.frames, b.frames) and a.num_frames == frames_for(audio.size / sr, 30.0)


def test_generate_refuses_a_timeline_of_other_audio(tiny_model, corpus):
    from avatar.audio import load_audio
    from avatar.errors import InputError
    from avatar.face.generate import generate_face

    audio, sr = load_audio(corpus / "train_7_000000.wav")
    other = Timeline.from_json(corpus / "train_7_000002.json")
    with pytest.raises(InputError, match="not the same speech"):
        generate_face(audio, sr, timeline=other, model=tiny_model, steps=1)
    with pytest.raises(InputError, match="float"):
        generate_face((audio * 32767).astype(np.int16), sr, model=tiny_model, steps=1)


def _avatar(avatar_bin, *args):
    return subprocess.run([avatar_bin, "face", *args], capture_output=True, text=True, timeout=120,
                          env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"})


def test_cli_json_with_timeline_closes_lips(avatar_bin, tiny_model, corpus, tmp_path):
    from avatar.face.visemes import closure_weights, mouth_openness

    wav, tl_path = corpus / "train_7_000002.wav", corpus / "train_7_000002.json"
    out = tmp_path / "face.json"
    res = _avatar(avatar_bin, "--audio", str(wav), "--timeline", str(tl_path), "--model", str(tiny_model),
                  "--valence", "0.6", "--steps", "3", "-o", str(out))
    assert res.returncode == 0, res.stderr
    face = FaceMotion.from_json(out)
    tl = Timeline.from_json(tl_path)
    assert face.names == FACE_CHANNELS and abs(face.num_frames - tl.duration * 30) <= 1
    sealed = closure_weights(tl, 30.0, face.num_frames) >= 1.0
    assert sealed.sum() >= 1, "the test sentence needs a p, b or m"
    assert (mouth_openness(face.frames[:, :52])[sealed] <= 1e-4).all()


def test_cli_csv(tiny_model, corpus, tmp_path):
    # In-process (typer's runner) so torch is not imported a second time; the subprocess tests cover the script.
    from typer.testing import CliRunner

    from avatar.audio import load_audio
    from avatar.cli import app
    from avatar.face.livelink import read_livelink_csv

    wav = corpus / "train_7_000000.wav"
    out = tmp_path / "face.csv"
    res = CliRunner().invoke(app, ["face", "--audio", str(wav), "--model", str(tiny_model), "--steps", "2",
                                   "-o", str(out)])
    assert res.exit_code == 0, res.output
    audio, sr = load_audio(wav)
    take = read_livelink_csv(out)
    assert abs(take.num_frames - audio.size / sr * 30) <= 1
    assert json.loads(res.stdout)["lip_refined"] is False


def test_cli_bad_audio_and_missing_model(avatar_bin, corpus, tmp_path):
    junk = tmp_path / "junk.wav"
    junk.write_text("this is not audio")
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    for bad in (junk, empty):
        res = _avatar(avatar_bin, "--audio", str(bad), "--model", str(tmp_path), "-o", str(tmp_path / "o.json"))
        assert res.returncode == 2 and "error:" in res.stderr and bad.name in res.stderr, res.stderr
    res = _avatar(avatar_bin, "--audio", str(corpus / "train_7_000000.wav"), "--model", str(tmp_path / "none"),
                  "-o", str(tmp_path / "o.json"))
    assert res.returncode == 1 and "no trained face model" in res.stderr and "avatar.face.train" in res.stderr
    assert not (tmp_path / "o.json").exists()


def test_checkpoints_during_training():
    """--save-every calls back with the step and the losses so far; the last step is left to the final save."""
    from avatar.face.model import FaceDenoiser, FaceDiffusionConfig
    from avatar.face.train import Windows, train

    cfg = FaceDiffusionConfig(hidden=16, blocks=1, window=16, overlap=4)
    model = FaceDenoiser(cfg)
    rng = np.random.default_rng(0)
    data = Windows(rng.normal(size=(6, 16, cfg.motion_dim)).astype(np.float32),
                   rng.normal(size=(6, 16, cfg.audio_dim)).astype(np.float32), np.zeros((6, 3), np.float32))
    seen = []
    train(data, model, steps=7, batch=2, progress=False, checkpoint=lambda s, l: seen.append((s, len(l), model.training)),  # noqa: E741
          save_every=3)
    assert seen == [(3, 3, False), (6, 6, False)]  # saved in eval mode, then training went on
    assert not model.training


def test_init_fine_tunes_the_trained_model(tiny_model, corpus, tmp_path):
    """--init starts from the trained weights (its architecture, not the command's) and the card says so."""
    from avatar.face.model import FaceDenoiser
    from avatar.face.train import main

    out = tmp_path / "tuned"
    argv = ["--data", str(corpus), "--init", str(tiny_model), "--out", str(out), "--steps", "1", "--batch", "4",
            "--lr", "1e-9", "--copies", "1", "--threads", "1", "--hidden", "64"]
    assert main(argv) == 0
    a, b = FaceDenoiser.from_pretrained(tiny_model), FaceDenoiser.from_pretrained(out)
    assert b.config.hidden == a.config.hidden == 16 and b.config.window == a.config.window == 32
    sa, sb = a.state_dict(), b.state_dict()
    assert max(float((sa[k] - sb[k]).abs().max()) for k in sa) < 1e-4  # one step at lr 1e-9: the same weights
    assert f"Fine-tuned from `{tiny_model}`" in (out / "README.md").read_text()
