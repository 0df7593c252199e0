"""Train the text-to-VAD model on EmoBank train, select on dev, save to weights/emotion.

    .venv/bin/python -m avatar.emotion.train --data ../shared/data/emobank/emobank_train_dev.csv \
        --out weights/emotion

Runs on the CPU (about 25 minutes on 2 cores). Deterministic for a given seed and thread count.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import math
import random
import re
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from avatar.emotion.model import EmotionModel, EmotionModelConfig

log = logging.getLogger("avatar.emotion.train")

_HAS_WORD = re.compile(r"[A-Za-z]")


def load_emobank(path: str | Path) -> dict[str, tuple[list[str], np.ndarray]]:
    """Read EmoBank's CSV (id, split, V, A, D, text) into {split: (texts, ratings [N, 3])}."""
    out: dict[str, tuple[list[str], list[list[float]]]] = {}
    with open(path, newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            text = (row.get("text") or "").strip()
            if not _HAS_WORD.search(text):
                continue  # empty or punctuation-only rows carry no signal
            texts, ys = out.setdefault(row["split"], ([], []))
            texts.append(text)
            ys.append([float(row["V"]), float(row["A"]), float(row["D"])])
    return {k: (t, np.asarray(y, dtype=np.float64)) for k, (t, y) in out.items()}


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation of two 1-D arrays."""
    a, b = a - a.mean(), b - b.mean()
    return float((a * b).sum() / math.sqrt((a * a).sum() * (b * b).sum() + 1e-12))


def evaluate(model: EmotionModel, texts: list[str], y: np.ndarray) -> dict[str, float]:
    """Pearson r per dimension on EmoBank ratings."""
    model.eval()  # the training loop puts it back in train mode
    pred = model.predict_ratings(texts, batch_size=128)
    return {k: pearson(pred[:, i], y[:, i]) for i, k in enumerate(("valence", "arousal", "dominance"))}


def _batches(lengths: list[int], batch_size: int, rng: random.Random) -> list[list[int]]:
    """Length-bucketed shuffled batches: similar lengths together means little padding (CPU time)."""
    idx = list(range(len(lengths)))
    rng.shuffle(idx)
    chunks = [sorted(idx[i:i + batch_size * 20], key=lambda j: lengths[j]) for i in range(0, len(idx), batch_size * 20)]
    batches = [c[i:i + batch_size] for c in chunks for i in range(0, len(c), batch_size)]
    rng.shuffle(batches)
    return batches


def corr_loss(pred: torch.Tensor, target: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
    """1 - Pearson r per dimension within the batch, averaged with `weights` (optimises what we are measured on)."""
    p = pred - pred.mean(0, keepdim=True)
    t = target - target.mean(0, keepdim=True)
    r = (p * t).sum(0) / (p.norm(dim=0) * t.norm(dim=0) + 1e-8)
    return ((1 - r) * (1.0 if weights is None else weights)).mean()


def dim_weights(text: str) -> torch.Tensor:
    """'V,A,D' loss weights (non-negative, not all zero), scaled to mean 1."""
    try:
        w = torch.tensor([float(x) for x in text.split(",")], dtype=torch.float32)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--dim-weights takes three numbers V,A,D, got {text!r}") from None
    if w.shape != (3,) or not torch.isfinite(w).all() or (w < 0).any() or w.sum() <= 0:
        raise argparse.ArgumentTypeError(f"--dim-weights takes three non-negative numbers V,A,D, got {text!r}")
    return w * 3 / w.sum()


def train(args: argparse.Namespace) -> dict:
    """Train, select the best epoch on dev, save; returns the dev metrics."""
    torch.manual_seed(args.seed)
    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.set_num_threads(args.threads)
    data = load_emobank(args.data)
    tr_x, tr_y = data["train"]
    dv_x, dv_y = data["dev"]
    if args.limit:
        tr_x, tr_y = tr_x[: args.limit], tr_y[: args.limit]
        dv_x, dv_y = dv_x[: max(50, args.limit // 8)], dv_y[: max(50, args.limit // 8)]
    mean, std = tr_y.mean(0), tr_y.std(0)
    q01, q99 = np.percentile(tr_y, 1, axis=0), np.percentile(tr_y, 99, axis=0)
    scale = np.maximum(np.abs(q01 - 3.0), np.abs(q99 - 3.0)) / 0.9
    cfg = EmotionModelConfig(finetune=args.finetune, lora_r=args.rank, lora_alpha=2 * args.rank, pool_layers=args.pool_layers,
                             pool_mode=args.pool_mode, target_mean=mean.tolist(),
                             target_std=std.tolist(), calib_scale=scale.round(4).tolist())
    model = EmotionModel(cfg)
    if cfg.finetune == "full":  # the transformer layers learn; the (large) embedding table stays as shipped
        for name, param in model.encoder.named_parameters():
            param.requires_grad = name.startswith("encoder.")
    n_gold = len(tr_x)
    z_extra = None
    if args.extra is not None:  # teacher-labelled extra text (no gold ratings): more sentences to distil on
        if args.embed_weight > 0:
            raise SystemExit("--extra rows have no teacher features; use --embed-weight 0")
        with np.load(args.extra, allow_pickle=False) as e:
            extra_x, extra_y = [str(t) for t in e["text"]], np.asarray(e["target"], np.float64)
        if extra_y.shape != (len(extra_x), 3) or not np.isfinite(extra_y).all():
            raise SystemExit(f"{args.extra}: 'target' must be finite [N, 3] ratings beside N texts")
        if set(extra_x) & set(dv_x):
            raise SystemExit(f"{args.extra} contains dev sentences")
        tr_x = list(tr_x) + extra_x
        z_extra = torch.tensor((extra_y - mean) / std, dtype=torch.float32)
    enc_all = model.tokenizer([t for t in tr_x], truncation=True, max_length=cfg.max_length)
    lengths = [len(ids) for ids in enc_all["input_ids"]]
    z = torch.tensor((tr_y - mean) / std, dtype=torch.float32)
    if z_extra is not None:
        z = torch.cat([z, z_extra])
    z_teacher = feat_teacher = proj = None
    if args.teacher is not None:  # distillation (avatar.emotion.teacher): predictions and features per train row
        with np.load(args.teacher, allow_pickle=False) as t:
            if int(t["train_size"]) != len(data["train"][0]):
                raise SystemExit(f"{args.teacher} was made for {int(t['train_size'])} train rows, not {len(data['train'][0])}")
            z_teacher = torch.tensor((t["train_pred"][:n_gold] - mean) / std, dtype=torch.float32)
            if z_extra is not None:  # extra rows are teacher labels already: mixing leaves them as they are
                z_teacher = torch.cat([z_teacher, z_extra])
            f = t["train_features"][:n_gold].astype(np.float32) if args.embed_weight > 0 else None
        if f is not None:
            feat_teacher = torch.tensor((f - f.mean(0)) / (f.std(0) + 1e-6))
            # Feature distillation: a linear map from our sentence vector must predict the teacher's features, so
            # the encoder learns to carry what the larger model reads (the map is dropped after training).
            proj = torch.nn.Linear(model.pooled_size, feat_teacher.shape[1])

    enc_params = [p for p in model.encoder.parameters() if p.requires_grad]
    opt = torch.optim.AdamW([
        {"params": enc_params, "lr": args.lr},
        {"params": [*model.head.parameters(), model.layer_mix, *(proj.parameters() if proj is not None else [])],
         "lr": args.lr * 2},
    ], weight_decay=0.01)
    # The batch order has its own seed so that runs can share one initialisation (weight averaging needs it).
    rng = random.Random(args.seed if args.order_seed is None else args.order_seed)
    steps_per_epoch = math.ceil(len(tr_x) / args.batch_size)
    total = steps_per_epoch * args.epochs
    warm = max(1, int(0.06 * total))
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / warm) * max(0.0, 0.5 * (1 + math.cos(math.pi * min(1.0, s / total)))))
    # An exponential moving average of the weights usually generalises a little better than the last
    # step; both are scored on dev every epoch and the better one is kept (torch's own AveragedModel).
    from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

    ema = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(args.ema)) if args.ema > 0 else None
    best: dict = {"score": -1.0}
    history = []
    t0 = time.time()
    for epoch in range(args.epochs):
        model.train()
        bar = tqdm(_batches(lengths, args.batch_size, rng), desc=f"epoch {epoch + 1}/{args.epochs}")
        for b in bar:
            enc = model.tokenizer([tr_x[i] for i in b], padding=True, truncation=True,
                                  max_length=cfg.max_length, return_tensors="pt")
            # Prepared text (emoji spelled out) is what inference sees; EmoBank has almost no emoji,
            # so tokenising the raw text here is equivalent and faster.
            pooled = model.pooled(enc["input_ids"], enc["attention_mask"])
            pred = model.head(pooled)
            target = z[b]
            if z_teacher is not None and args.teacher_weight > 0:
                target = (1 - args.teacher_weight) * target + args.teacher_weight * z_teacher[b]
            w = args.dim_weights
            loss = (((pred - target) ** 2).mean(0) * w).mean() + args.corr_weight * corr_loss(pred, target, w)
            if proj is not None:
                loss = loss + args.embed_weight * torch.nn.functional.mse_loss(proj(pooled), feat_teacher[b])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            if ema is not None:
                ema.update_parameters(model)
            bar.set_postfix(loss=f"{loss.item():.3f}")
        candidates = [("raw", model)] + ([("ema", ema.module)] if ema is not None else [])
        for kind, m in candidates:
            metrics = evaluate(m, dv_x, dv_y)
            score = metrics["valence"] + metrics["arousal"]
            history.append({"epoch": epoch + 1, "weights": kind, **{k: round(v, 4) for k, v in metrics.items()}})
            log.info("epoch %d (%s weights) dev r: V %.4f A %.4f D %.4f", epoch + 1, kind, metrics["valence"],
                     metrics["arousal"], metrics["dominance"])
            if score > best["score"]:
                best = {"score": score, "epoch": epoch + 1, "weights": kind, "metrics": metrics,
                        "state": {k: v.clone() for k, v in m.trainable_state().items()}}
    # Restore the best epoch's adapter and head before saving.
    model.load_trainable_state(best["state"])
    cfg.metrics = {"emobank_dev_pearson": {k: round(v, 4) for k, v in best["metrics"].items()},
                   "selected_epoch": best["epoch"], "selected_weights": best["weights"], "history": history}
    cfg.training = {"command": "python -m avatar.emotion.train " + " ".join(args.argv), "seed": args.seed, "order_seed": args.order_seed,
                    "teacher": str(args.teacher) if args.teacher else None, "teacher_weight": args.teacher_weight,
                    "embed_weight": args.embed_weight, "extra": str(args.extra) if args.extra else None,
                    "extra_size": len(tr_x) - n_gold,
                    "epochs": args.epochs, "batch_size": args.batch_size, "lr": args.lr, "finetune": args.finetune, "rank": args.rank, "pool_layers": args.pool_layers, "pool_mode": args.pool_mode,
                    "corr_weight": args.corr_weight, "dim_weights": [round(float(x), 4) for x in args.dim_weights], "ema": args.ema, "train_size": n_gold, "dev_size": len(dv_x),
                    "seconds": round(time.time() - t0, 1), "torch": torch.__version__}
    model.config = cfg
    from avatar.emotion.card import model_card

    model.save_pretrained(args.out, card=model_card(cfg))
    log.info("saved %s (best epoch %d): %s", args.out, best["epoch"], json.dumps(cfg.metrics["emobank_dev_pearson"]))
    return asdict(cfg)["metrics"]


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point."""
    import sys

    argv = list(sys.argv[1:] if argv is None else argv)
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default="../shared/data/emobank/emobank_train_dev.csv")
    p.add_argument("--out", default="weights/emotion")
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=5e-4)
    p.add_argument("--finetune", choices=("lora", "full"), default="lora",
                   help="train a LoRA adapter, or the transformer layers themselves (embeddings frozen)")
    p.add_argument("--rank", type=int, default=16)
    p.add_argument("--pool-layers", type=int, default=1, help="mix the mean-pools of the last N layers")
    p.add_argument("--pool-mode", choices=["mix", "concat"], default="mix",
                   help="softmax-mix the pooled layers, or concatenate them for the head")
    p.add_argument("--corr-weight", type=float, default=0.5)
    p.add_argument("--dim-weights", type=dim_weights, default=dim_weights("1,1,1"),
                   help="loss weights of valence, arousal, dominance (e.g. 2,1,0.5: valence is hardest to read)")
    p.add_argument("--ema", type=float, default=0.995, help="EMA decay per step (0 turns it off)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--order-seed", type=int, default=None, help="seed of the batch order (default: --seed)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--limit", type=int, default=0, help="use only the first N training rows (smoke tests)")
    p.add_argument("--teacher", type=Path, default=None, help="teacher .npz from python -m avatar.emotion.teacher")
    p.add_argument("--teacher-weight", type=float, default=0.5, help="share of the teacher's predictions in the target")
    p.add_argument("--embed-weight", type=float, default=0.0, help="weight of the teacher feature distillation loss")
    p.add_argument("--extra", type=Path, default=None,
                   help=".npz of teacher-labelled extra sentences: 'text' [N] and 'target' [N, 3] ratings (1..5)")
    args = p.parse_args(argv)
    args.argv = argv
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    train(args)


if __name__ == "__main__":
    main()
