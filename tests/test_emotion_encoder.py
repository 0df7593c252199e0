"""Our NumPy inference BERT (avatar.emotion.encoder, regressor) against transformers + peft, which training uses."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from avatar.errors import ModelError

ROOT = Path(__file__).resolve().parents[1]

TEXTS = ["I love this!", "I can't believe we finally won!", "Ugh. 😡 This is the worst day…",
         "Привет, как дела? 你好", "naïve café", "so " * 150]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A training model with a random (non-zero) adapter and head, saved like the real one."""
    from avatar.emotion.model import EmotionModel, EmotionModelConfig

    torch.manual_seed(0)
    model = EmotionModel(EmotionModelConfig(lora_r=4, lora_alpha=8, pool_layers=3, max_length=64))
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name or name == "layer_mix":
                p.normal_(0, 0.05)
    folder = tmp_path_factory.mktemp("emo") / "model"
    model.save_pretrained(folder)
    return model.eval(), folder


def test_inference_model_matches_transformers_and_peft(trained):
    from avatar.emotion.model import EmotionRegressor

    model, folder = trained
    fast = EmotionRegressor.from_pretrained(folder)
    assert fast.token_ids(TEXTS) == model.token_ids(TEXTS)  # same ids, truncation included
    assert max(len(x) for x in fast.token_ids(TEXTS)) == 64
    np.testing.assert_allclose(fast.predict_ratings(TEXTS), model.predict_ratings(TEXTS), atol=1e-5)
    assert "transformers" not in type(fast.encoder).__module__
    # Batches side by side on threads (how EmotionAnalyzer runs it) give what one batch at a time gives.
    np.testing.assert_allclose(fast.predict_ratings(TEXTS, batch_size=2, threads=2), fast.predict_ratings(TEXTS),
                               atol=1e-6)


def test_concatenated_layers_match_training_and_store_no_mix(tmp_path):
    """pool_mode="concat": the head reads the pooled layers side by side; the NumPy model reads them the same way."""
    from avatar.emotion.model import EmotionModel, EmotionModelConfig, EmotionRegressor
    from avatar.errors import ModelError

    torch.manual_seed(2)
    model = EmotionModel(EmotionModelConfig(lora_r=4, lora_alpha=8, pool_layers=3, pool_mode="concat", max_length=64))
    assert model.head[1].in_features == 3 * model.encoder.config.hidden_size
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.05)
        # The third layer's block of the head's input weights: zeroing it must change the output.
        before = model.eval().predict_ratings(TEXTS)
    assert "mix.weight" not in model.trainable_state()
    model.save_pretrained(tmp_path / "concat")
    fast = EmotionRegressor.from_pretrained(tmp_path / "concat")
    np.testing.assert_allclose(fast.predict_ratings(TEXTS), before, atol=1e-5)
    with torch.no_grad():
        h = model.encoder.config.hidden_size
        model.head[1].weight[:, 2 * h:] = 0.0
    assert np.abs(model.predict_ratings(TEXTS) - before).max() > 1e-4
    with pytest.raises(ModelError):
        EmotionModel(EmotionModelConfig(pool_layers=2, pool_mode="sum"))


def test_full_finetune_layers_load_as_training_reloads_them(tmp_path):
    """finetune="full" stores the transformer layers in float16; both models read them back the same way."""
    from avatar.emotion.model import EmotionModel, EmotionModelConfig, EmotionRegressor

    torch.manual_seed(1)
    model = EmotionModel(EmotionModelConfig(finetune="full", pool_layers=2, max_length=64))
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.startswith("encoder.encoder.layer.5.") or name == "layer_mix":
                p.add_(torch.randn_like(p) * 0.05)
    model.save_pretrained(tmp_path / "full")
    slow = EmotionModel.from_pretrained(tmp_path / "full")
    fast = EmotionRegressor.from_pretrained(tmp_path / "full")
    np.testing.assert_allclose(fast.predict_ratings(TEXTS), slow.predict_ratings(TEXTS), atol=1e-5)
    key = "encoder.layer.5.output.dense.weight"  # the changed layer, stored as float16, computed in float32
    assert fast.encoder.weights[key].dtype == np.float32
    np.testing.assert_array_equal(fast.encoder.weights[key], model.encoder.state_dict()[key].half().float().numpy())


def test_analyze_in_a_fresh_process_never_imports_torch():
    code = ("import sys, avatar.emotion; out = avatar.emotion.analyze('I am happy.'); "
            "print(out[0].label, sorted(m for m in ('torch', 'transformers', 'peft') if m in sys.modules))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.split()[-1] == "[]", r.stdout


def test_a_foreign_adapter_is_refused(trained, tmp_path):
    from safetensors.torch import load_file, save_file

    from avatar.emotion.model import EmotionRegressor

    _, folder = trained
    state = load_file(str(folder / "model.safetensors"))
    bad = {k: (v[:, :-1].contiguous() if k.endswith("lora_A.weight") else v) for k, v in state.items()}
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "config.json").write_text((folder / "config.json").read_text())
    save_file(bad, str(tmp_path / "bad" / "model.safetensors"))
    with pytest.raises(ModelError, match="do not fit"):
        EmotionRegressor.from_pretrained(tmp_path / "bad")
    headless = {k: v for k, v in state.items() if not k.startswith("head.")}
    save_file(headless, str(tmp_path / "bad" / "model.safetensors"))
    with pytest.raises(ModelError, match="no regression head"):
        EmotionRegressor.from_pretrained(tmp_path / "bad")
