"""Average trained emotion models into one ("model soup", Wortsman et al., ICML 2022).

    python -m avatar.emotion.soup --models RUN_A RUN_B RUN_C --out weights/emotion \
        [--data ../shared/data/emobank/emobank_train_dev.csv]

The runs must share one initialisation (`train.py --seed S` with different `--order-seed`), so their weights
sit in one basin and their mean is a better model than each (the soup paper's finding for fine-tuning from one
pre-trained model). For LoRA runs the mean of the merged updates, (1/k) sum_i B_i A_i, is stored exactly as one
adapter of rank k r: A = [A_1; ...; A_k] and B = [B_1 ... B_k] / k, with alpha scaled so alpha / r is unchanged.
Inference still costs one MiniLM pass (the adapter is merged at load time). Heads and layer mixes are averaged.
The soup is scored on EmoBank dev, as each run's epoch was; the card lists every ingredient's dev figures too.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
import tempfile
from pathlib import Path

import torch

from avatar.emotion.model import EmotionModelConfig
from avatar.errors import ModelError
from avatar.pretrained import load_folder, save_folder

log = logging.getLogger(__name__)

#: Config fields that may differ between ingredients (everything else must match).
_FREE = {"metrics", "training", "lora_r", "lora_alpha"}


def soup_state(states: list[dict[str, torch.Tensor]], configs: list[EmotionModelConfig]) -> tuple[dict[str, torch.Tensor], EmotionModelConfig]:
    """The averaged model's tensors and config (ModelError when the runs cannot be averaged)."""
    if len(states) < 2:
        raise ModelError("a soup needs at least two models")
    first = dataclasses.asdict(configs[0])
    for c in configs[1:]:
        other = dataclasses.asdict(c)
        diff = [k for k in first if k not in _FREE and first[k] != other[k]]
        if diff:
            raise ModelError(f"the models differ in {', '.join(diff)}: only runs of one configuration can be averaged")
    if any(c.finetune != "lora" for c in configs):
        raise ModelError("only LoRA runs can be averaged (finetune='lora')")
    keys = set(states[0])
    if any(set(s) != keys for s in states[1:]):
        raise ModelError("the models hold different tensors")
    k = len(states)
    out: dict[str, torch.Tensor] = {}
    for name in sorted(keys):
        parts = [s[name].float() for s in states]
        if name.endswith("lora_A.weight"):
            out[name] = torch.cat(parts, dim=0)
        elif name.endswith("lora_B.weight"):
            # Each run's own scale alpha_i / r_i folds into its B, so runs of different ranks mix correctly.
            scales = [c.lora_alpha / c.lora_r for c in configs]
            out[name] = torch.cat([p * (s / scales[0]) for p, s in zip(parts, scales)], dim=1) / k
        else:
            out[name] = torch.stack(parts).mean(dim=0)
    rank = sum(c.lora_r for c in configs)
    cfg = dataclasses.replace(configs[0], lora_r=rank, lora_alpha=configs[0].lora_alpha / configs[0].lora_r * rank,
                              metrics={}, training={})
    return out, cfg


def _card(cfg: EmotionModelConfig, ingredients: list[tuple[str, EmotionModelConfig]]) -> str:
    from avatar.emotion.card import model_card

    rows = "\n".join(
        f"| `{c.training.get('command', name)}` | {c.metrics.get('emobank_dev_pearson', {}).get('valence', float('nan')):.4f} | "
        f"{c.metrics.get('emobank_dev_pearson', {}).get('arousal', float('nan')):.4f} | "
        f"{c.metrics.get('emobank_dev_pearson', {}).get('dominance', float('nan')):.4f} |"
        for name, c in ingredients)
    return model_card(cfg) + f"""
## Weight averaging
These weights are the uniform average ("model soup", Wortsman et al. 2022) of {len(ingredients)} runs that share
one initialisation and differ in batch order; their LoRA updates are stored exactly as one rank-{cfg.lora_r}
adapter (`avatar/emotion/soup.py`). Made with `{cfg.training.get('command', '')}`. The ingredients, each at its
own selected epoch (EmoBank dev Pearson r):

| run | valence | arousal | dominance |
|---|---|---|---|
{rows}
"""


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    p = argparse.ArgumentParser(prog="python -m avatar.emotion.soup", description=__doc__.split("\n\n")[0])
    p.add_argument("--models", type=Path, nargs="+", required=True, help="trained model folders (train.py --out)")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--data", default="../shared/data/emobank/emobank_train_dev.csv")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    from avatar.emotion.model import EmotionModel
    from avatar.emotion.train import load_emobank, pearson

    try:
        loaded = [load_folder(m, EmotionModelConfig, "emotion") for m in args.models]
        state, cfg = soup_state([s for _, s in loaded], [c for c, _ in loaded])
    except ModelError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    texts, y = load_emobank(args.data)["dev"]
    with tempfile.TemporaryDirectory() as tmp:
        save_folder(tmp, state, cfg, None)
        pred = EmotionModel.from_pretrained(tmp).predict_ratings(texts, batch_size=128)
    metrics = {k: round(pearson(pred[:, i], y[:, i]), 4) for i, k in enumerate(("valence", "arousal", "dominance"))}
    cfg.metrics = {"emobank_dev_pearson": metrics, "selected_epoch": "soup", "selected_weights": "averaged",
                   "history": [], "ingredients": [c.metrics.get("emobank_dev_pearson", {}) for c, _ in loaded]}
    first = loaded[0][0].training
    cfg.training = {**first, "command": "python -m avatar.emotion.soup " + " ".join(
        sys.argv[1:] if argv is None else argv), "ingredients": [c.training for c, _ in loaded]}
    save_folder(args.out, state, cfg, _card(cfg, [(str(m), c) for m, (c, _) in zip(args.models, loaded)]))
    log.info("saved %s: dev r %s", args.out, json.dumps(metrics))
    return 0


if __name__ == "__main__":
    sys.exit(main())
