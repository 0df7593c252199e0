"""Distillation from a larger encoder (avatar.emotion.teacher) and the trainer's use of it."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from avatar.emotion.teacher import out_of_fold, ridge_fit, ridge_predict


def test_ridge_recovers_a_linear_map_and_out_of_fold_never_sees_the_row() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 5))
    y = x @ rng.normal(size=(5, 3)) + 3.0
    model = ridge_fit(x, y, lam=1e-6)
    np.testing.assert_allclose(ridge_predict(model, x), y, atol=1e-4)
    y_out = y.copy()
    y_out[7] += 1000.0  # a row no other row explains: its own fold must not have learnt it
    assert abs(out_of_fold(x, y_out, lam=1.0)[7, 0] - y_out[7, 0]) > 900
    assert np.corrcoef(out_of_fold(x, y, lam=1.0)[:, 0], y[:, 0])[0, 1] > 0.99


def _emobank(path, n_train: int = 40, n_dev: int = 12) -> None:
    words = ["wonderful", "terrible", "calm", "furious", "happy", "sad", "quiet", "thrilled"]
    rng = np.random.default_rng(1)
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["id", "split", "V", "A", "D", "text"])
        for i in range(n_train + n_dev):
            text = " ".join(rng.choice(words, 4))
            w.writerow([f"s{i}", "train" if i < n_train else "dev", *np.round(rng.uniform(2, 4, 3), 2), text])


def test_training_with_a_teacher_writes_a_loadable_model(tmp_path) -> None:
    from avatar.emotion.model import EmotionModel
    from avatar.emotion.train import main

    data = tmp_path / "eb.csv"
    _emobank(data)
    teacher = tmp_path / "t.npz"
    rng = np.random.default_rng(2)
    np.savez(teacher, train_pred=rng.uniform(2, 4, (40, 3)).astype(np.float32),
             train_features=rng.normal(size=(40, 16)).astype(np.float16), dev_pred=np.zeros((12, 3), np.float32),
             train_size=40)
    out = tmp_path / "model"
    main(["--data", str(data), "--out", str(out), "--epochs", "1", "--threads", "1", "--rank", "2",
          "--teacher", str(teacher), "--teacher-weight", "0.5", "--embed-weight", "1.0"])
    assert EmotionModel.from_pretrained(out).predict_ratings(["a calm day"]).shape == (1, 3)
    assert "--teacher" in (out / "README.md").read_text()
    np.savez(teacher, train_pred=np.zeros((39, 3), np.float32), train_features=np.zeros((39, 16), np.float16),
             dev_pred=np.zeros((12, 3), np.float32), train_size=39)
    with pytest.raises(SystemExit, match="39 train rows"):
        main(["--data", str(data), "--out", str(tmp_path / "m2"), "--epochs", "1", "--threads", "1", "--rank", "2",
              "--teacher", str(teacher)])


def test_teacher_cli_refuses_a_folder_without_an_encoder(tmp_path) -> None:
    from avatar.emotion.teacher import main

    with pytest.raises(SystemExit) as exc:
        main(["--encoder", str(tmp_path), "--out", str(tmp_path / "t.npz")])
    assert exc.value.code == 2 and not (tmp_path / "t.npz").exists()


def test_augment_is_deterministic_new_and_distinct() -> None:
    from avatar.emotion.augment import augment

    texts = [f"the {w} dog ran over the {v} hill today" for w in ("red", "old", "big") for v in ("green", "far")]
    a = augment(texts, 40, seed=3)
    assert a == augment(texts, 40, seed=3) and a != augment(texts, 40, seed=4)
    assert len(a) == 40 == len(set(a)) and not set(a) & set(texts) and all(a)
    assert augment(texts, 0) == []
    with pytest.raises(ValueError, match="4 words"):
        augment(["too short"], 5)
    with pytest.raises(ValueError, match="distinct"):
        augment(["one two three four"], 500)


def test_teacher_labels_variants_and_the_trainer_learns_from_them(tmp_path) -> None:
    """The whole distillation path on a tiny corpus, with the packaged MiniLM standing in as the teacher."""
    from avatar.emotion.model import EmotionModel, encoder_dir
    from avatar.emotion.teacher import main as teacher
    from avatar.emotion.train import main as train

    data = tmp_path / "eb.csv"
    _emobank(data)
    student = tmp_path / "student"
    train(["--data", str(data), "--out", str(student), "--epochs", "1", "--threads", "1", "--rank", "2"])
    extra = tmp_path / "extra.npz"
    assert teacher(["--encoder", str(encoder_dir()), "--out", str(tmp_path / "t.npz"), "--data", str(data),
                    "--threads", "1", "--augment", "30", "--student", str(student), "--extra-out", str(extra)]) == 0
    with np.load(extra, allow_pickle=False) as e:
        assert e["text"].shape == (30,) and e["target"].shape == (30, 3) and np.isfinite(e["target"]).all()
    out = tmp_path / "model"
    train(["--data", str(data), "--out", str(out), "--epochs", "1", "--threads", "1", "--rank", "2",
           "--extra", str(extra)])
    assert EmotionModel.from_pretrained(out).predict_ratings(["a calm day"]).shape == (1, 3)
    assert '"extra_size": 30' in (out / "config.json").read_text()
    bad = tmp_path / "bad.npz"
    np.savez(bad, text=np.array(["a", "b"]), target=np.full((2, 3), np.nan))
    with pytest.raises(SystemExit, match="finite"):
        train(["--data", str(data), "--out", str(tmp_path / "m3"), "--epochs", "1", "--extra", str(bad)])
    with pytest.raises(SystemExit) as exc:  # variants without a place to write them
        teacher(["--encoder", str(encoder_dir()), "--out", str(tmp_path / "t2.npz"), "--augment", "5"])
    assert exc.value.code == 2


def test_dim_weights_are_checked_and_change_the_loss() -> None:
    import argparse

    import torch

    from avatar.emotion.train import corr_loss, dim_weights

    assert torch.allclose(dim_weights("2,1,0.5"), torch.tensor([2, 1, 0.5]) * 3 / 3.5)
    assert torch.allclose(dim_weights("1,1,1"), torch.ones(3))
    for bad in ("1,2", "a,b,c", "-1,1,1", "0,0,0", "nan,1,1", "1,1,1,1"):
        with pytest.raises(argparse.ArgumentTypeError):
            dim_weights(bad)
    pred = torch.tensor([[0.0, 1.0, 0.0], [1.0, 0.0, 1.0], [2.0, 2.0, 0.5]])
    target = torch.tensor([[0.0, 0.0, 0.0], [1.0, 1.0, 1.0], [2.0, 2.0, 2.0]])  # valence perfect, arousal not
    assert corr_loss(pred, target, dim_weights("1,0,0")) < 1e-6 < corr_loss(pred, target, dim_weights("0,1,0"))


def test_joint_dialogue_run_with_top_layers_only(tmp_path) -> None:
    """--train-layers keeps the lower layers' adapter as --init had it; the run writes a two-head model whose card
    records the options."""
    import torch

    from avatar.emotion.dialogue_data import DATA_DIR
    from avatar.emotion.model import EmotionModel
    from avatar.emotion.train import freeze_lower_layers, main
    from avatar.pretrained import load_folder

    data = tmp_path / "eb.csv"
    _emobank(data)
    lines = tmp_path / "lines.csv"
    with open(DATA_DIR / "lines.csv", newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        rows = [r for r in reader if r["group"].endswith("oneword")]  # short lines: a quick run
    with open(lines, "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=reader.fieldnames)
        w.writeheader()
        w.writerows(rows)
    base = tmp_path / "base"
    common = ["--data", str(data), "--epochs", "1", "--threads", "1", "--rank", "2", "--dialogue", str(lines),
              "--limit", "40"]
    main([*common, "--out", str(base)])
    out = tmp_path / "top"
    cache = tmp_path / "lower.safetensors"
    extra = tmp_path / "extra.npz"  # teacher-labelled sentences: their lower states are cached with the rest
    np.savez(extra, text=np.array(["a calm quiet day", "a furious night", "so thrilled today"]),
             target=np.array([[3.2, 2.4, 3.0], [1.8, 4.1, 3.1], [4.3, 3.8, 3.2]], np.float32))
    main([*common, "--out", str(out), "--init", str(base), "--train-layers", "2", "--variant-share", "0.5",
          "--dev-originals", "--save-every-epoch", "--ema", "0", "--eb-sign-weight", "1", "--self-distill", "0.5",
          "--features-cache", str(cache), "--extra", str(extra), "--dialogue-vad-weight", "0.2",
          "--dialogue-vad-dims", "1,0,0"])
    assert cache.exists()
    from avatar.emotion.toplayers import LowerStates

    assert "a furious night" in LowerStates.load(cache).texts
    assert '"extra_size": 3' in (out / "config.json").read_text()
    assert json.loads((out / "config.json").read_text())["training"]["dialogue_vad_dims"] == [3.0, 0.0, 0.0]
    assert "the VAD loss weighted 0.2, on valence only" in (out / "README.md").read_text()
    with pytest.raises(SystemExit, match="another model or split"):  # the cache holds layer-4 states, not layer-5
        main([*common, "--out", str(tmp_path / "top1"), "--init", str(base), "--train-layers", "1",
              "--features-cache", str(cache)])
    # each training path refuses the other's cache with a one-line message (not a KeyError)
    with pytest.raises(SystemExit, match="not a sentence-vector cache"):
        main([*common, "--out", str(tmp_path / "heads"), "--init", str(base), "--freeze-encoder",
              "--features-cache", str(cache)])
    with pytest.raises(SystemExit, match="--extra needs the encoder to learn"):  # not read there: refuse it
        main([*common, "--out", str(tmp_path / "heads2"), "--init", str(base), "--freeze-encoder",
              "--extra", str(extra)])
    from safetensors.torch import save_file

    heads_cache = tmp_path / "heads.safetensors"
    save_file({n: torch.zeros(2, 4) for n in ("eb", "dv", "dl", "dd")}, str(heads_cache))
    with pytest.raises(SystemExit, match="not a lower-layer cache"):
        main([*common, "--out", str(tmp_path / "top2"), "--init", str(base), "--train-layers", "2",
              "--features-cache", str(heads_cache)])
    _, before = load_folder(base, type(EmotionModel.from_pretrained(base).config), "emotion")
    _, after = load_folder(out, type(EmotionModel.from_pretrained(out).config), "emotion")
    lora = [k for k in before if k.startswith("lora.")]
    low = [k for k in lora if ".layer.0." in k or ".layer.3." in k]
    top = [k for k in lora if ".layer.5." in k and "lora_B" in k]
    assert low and top
    assert all(torch.equal(before[k], after[k]) for k in low)
    assert any(not torch.equal(before[k], after[k]) for k in top)
    assert "--train-layers" in (out / "README.md").read_text() and "--self-distill" in (out / "README.md").read_text()
    model = EmotionModel.from_pretrained(base)
    with pytest.raises(SystemExit, match="1..6"):
        freeze_lower_layers(model, 7)


def test_onnx_features_match_the_torch_sentence_vectors() -> None:
    """--onnx-features reads the shipped graph's pooled vector: the same as the torch model's (fp16-stored weights)."""
    import torch

    from avatar.emotion.model import EmotionModel, prepare_text
    from avatar.emotion.train import onnx_features
    from avatar.weights import model_dir

    folder = model_dir("emotion")
    model = EmotionModel.from_pretrained(folder)
    texts = ["Help! Somebody help me!", "Okay.", "I set two plates at supper out of habit. 😢"]
    got = onnx_features(folder, texts, model.token_ids, batch_size=2)
    with torch.inference_mode():
        want = model.pooled(*model._pad(model.token_ids([prepare_text(t) for t in texts])))
    assert got.shape == want.shape
    assert float((got - want).abs().max()) < 5e-3


def test_sign_loss_penalises_categories_against_the_rated_valence() -> None:
    import torch

    from avatar.emotion.dialogue_data import CATEGORIES
    from avatar.emotion.labels import CATEGORY_VALENCE_SIGN
    from avatar.emotion.train import sign_loss

    sign_of = torch.tensor([float(CATEGORY_VALENCE_SIGN[c]) for c in CATEGORIES])

    def one_hot(cat: str) -> torch.Tensor:
        return torch.nn.functional.one_hot(torch.tensor([CATEGORIES.index(cat)]), len(CATEGORIES)).float() * 20

    pleasant, unpleasant, flat = torch.tensor([0.6]), torch.tensor([-0.6]), torch.tensor([0.05])
    assert float(sign_loss(one_hot("sad"), pleasant, sign_of)) > 0.45
    assert float(sign_loss(one_hot("happy"), pleasant, sign_of)) < 1e-6
    assert float(sign_loss(one_hot("happy"), unpleasant, sign_of)) > 0.45
    assert float(sign_loss(one_hot("surprised"), unpleasant, sign_of)) < 1e-6  # no fixed sign: never penalised
    assert float(sign_loss(one_hot("sad"), flat, sign_of)) == 0.0  # inside the dead zone


def test_top_layers_on_cached_lower_states_give_the_models_own_sentence_vector(tmp_path) -> None:
    """--train-layers runs only the top layers on cached lower-layer states: the same sentence vector as the whole
    encoder (float16 storage aside), for every split point; the cache survives a save, load, merge and subset."""
    import torch

    from avatar.emotion.model import EmotionModel, prepare_text
    from avatar.emotion.toplayers import LowerStates, cached_states, top_pooled
    from avatar.weights import model_dir

    model = EmotionModel.from_pretrained(model_dir("emotion"))
    texts = ["Help! Somebody help me!", "Okay.", "I set two plates at supper out of habit. 😢",
             "The inn is a little further down the road, past the mill and the old stone bridge."]
    with torch.inference_mode():
        want = model.pooled(*model._pad(model.token_ids([prepare_text(t) for t in texts])))
        for k in (1, 2, 6):
            low = LowerStates.encode(model, texts, k)
            got = top_pooled(model, low, [3, 0, 2, 1], k)
            assert float((got - want[[3, 0, 2, 1]]).abs().max()) < 2e-3, k
    path = tmp_path / "c.safetensors"
    first = cached_states(model, texts[:2], 2, "key", path)
    both = cached_states(model, texts[::-1], 2, "key", path)  # two cached, two added
    assert first.texts == texts[:2] and both.texts == texts[::-1]
    again = LowerStates.load(path).subset(texts[::-1])
    assert torch.equal(again.states, both.states) and torch.equal(again.pools, both.pools)
    with torch.inference_mode():
        got = top_pooled(model, again, [0, 1, 2, 3], 2)
    assert float((got - want.flip(0)).abs().max()) < 2e-3
    with pytest.raises(SystemExit, match="another model"):
        cached_states(model, texts, 2, "other key", path)
    with pytest.raises(SystemExit, match="1..6"):
        LowerStates.encode(model, texts, 0)
