"""A teacher for the emotion model: a larger frozen sentence encoder plus ridge regression, for distillation.

    python -m avatar.emotion.teacher --encoder DIR --out teacher.npz [--data ../shared/data/emobank/emobank_train_dev.csv]

DIR is a BERT-like encoder folder that transformers can load offline (config.json, model.safetensors,
tokenizer files), e.g. all-mpnet-base-v2 (docs/emotion.md says where it comes from). Every EmoBank train and dev
sentence is encoded once (mean-pooled, last four layers averaged); a ridge regression on those features
predicts the ratings. Its predictions for the train sentences are out-of-fold (5 folds), so they carry what the
larger encoder reads into a sentence it has not been fitted on. `train.py --teacher teacher.npz` uses them:
blended into the targets (`--teacher-weight`) and, as feature distillation, the student's pooled vector is
asked to predict the teacher's features (`--embed-weight`). The teacher is used in training only: the shipped
model is still MiniLM alone, one forward pass.

`--augment N --extra-out extra.npz` also labels N variants of the training sentences (`avatar.emotion.augment`)
with the ridge fitted on all of train, averaged with an existing emotion model's reading when `--student DIR`
is given (the two read differently: on dev their average beats either); `train.py --extra extra.npz` trains on
them beside the gold rows.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

RIDGE = 1000.0  # chosen on EmoBank dev among 100, 300, 1000, 3000 (V r 0.720, 0.720, 0.724, 0.723)


def encode(folder: Path, texts: list[str], batch: int = 64, layers: int = 4) -> np.ndarray:
    """Mean-pooled features [N, H] (float32), the last `layers` hidden layers averaged."""
    import torch
    from tqdm import tqdm
    from transformers import AutoModel, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    model = AutoModel.from_pretrained(str(folder), local_files_only=True, use_safetensors=True).eval()
    order = np.argsort([len(t) for t in texts], kind="stable")
    out = np.zeros((len(texts), model.config.hidden_size), np.float32)
    with torch.inference_mode():
        for i in tqdm(range(0, len(texts), batch), desc="teacher features", unit="batch"):
            idx = order[i:i + batch]
            enc = tok([texts[j] for j in idx], padding=True, truncation=True, max_length=128, return_tensors="pt")
            states = model(**enc, output_hidden_states=True).hidden_states[-layers:]
            mask = enc["attention_mask"][..., None].float()
            pooled = torch.stack([(h * mask).sum(1) / mask.sum(1) for h in states]).mean(0)
            out[idx] = pooled.numpy()
    return out


def ridge_fit(x: np.ndarray, y: np.ndarray, lam: float = RIDGE) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(feature mean, feature std, weights, target mean) of a ridge regression on standardised features."""
    mu, sd = x.mean(0), x.std(0) + 1e-6
    a = (x - mu) / sd
    w = np.linalg.solve(a.T @ a + lam * np.eye(a.shape[1]), a.T @ (y - y.mean(0)))
    return mu, sd, w, y.mean(0)


def ridge_predict(model: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray], x: np.ndarray) -> np.ndarray:
    """Predictions of a ridge_fit model."""
    mu, sd, w, ym = model
    return ((x - mu) / sd) @ w + ym


def out_of_fold(x: np.ndarray, y: np.ndarray, folds: int = 5, seed: int = 0, lam: float = RIDGE) -> np.ndarray:
    """Each row predicted by a ridge fitted on the other folds."""
    idx = np.random.default_rng(seed).permutation(len(x))
    pred = np.zeros_like(y, dtype=np.float64)
    for part in np.array_split(idx, folds):
        rest = np.setdiff1d(idx, part)
        pred[part] = ridge_predict(ridge_fit(x[rest], y[rest], lam), x[part])
    return pred


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    p = argparse.ArgumentParser(prog="python -m avatar.emotion.teacher", description=__doc__.split("\n\n")[0])
    p.add_argument("--encoder", type=Path, required=True, help="teacher encoder folder (transformers format)")
    p.add_argument("--out", type=Path, required=True, help="where to write the .npz")
    p.add_argument("--data", default="../shared/data/emobank/emobank_train_dev.csv")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--augment", type=int, default=0, help="also label this many variants of the train sentences")
    p.add_argument("--student", type=Path, default=None, help="emotion model folder averaged into those labels")
    p.add_argument("--extra-out", type=Path, default=None, help="where to write the labelled variants (.npz)")
    p.add_argument("--seed", type=int, default=0, help="seed of the variants")
    args = p.parse_args(argv)
    if args.augment < 0:
        p.error("--augment must be >= 0")
    if args.augment and args.extra_out is None:
        p.error("--augment needs --extra-out")
    if args.student is not None and not (args.student / "model.safetensors").is_file():
        p.error(f"no emotion model (model.safetensors) in {args.student}")
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if not (args.encoder / "config.json").is_file():
        p.error(f"no encoder (config.json) in {args.encoder}")
    import torch

    from avatar.emotion.train import load_emobank, pearson

    torch.set_num_threads(args.threads)
    data = load_emobank(args.data)
    t0 = time.time()
    tr_x, tr_y = data["train"]
    dv_x, dv_y = data["dev"]
    tr_f, dv_f = encode(args.encoder, tr_x), encode(args.encoder, dv_x)
    oof = out_of_fold(tr_f, tr_y)
    dev_pred = ridge_predict(ridge_fit(tr_f, tr_y), dv_f)
    r_dev = [pearson(dev_pred[:, i], dv_y[:, i]) for i in range(3)]
    r_oof = [pearson(oof[:, i], tr_y[:, i]) for i in range(3)]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_name(args.out.name + ".part.npz")
    np.savez(tmp, train_pred=oof.astype(np.float32), train_features=tr_f.astype(np.float16),
             dev_pred=dev_pred.astype(np.float32), train_size=len(tr_x))
    tmp.replace(args.out)
    log.info("teacher %s: dev r V %.4f A %.4f D %.4f; train out-of-fold r V %.4f A %.4f D %.4f (%.0f s)",
             args.encoder.name, *r_dev, *r_oof, time.time() - t0)
    if args.augment:
        write_extra(args, tr_x, tr_f, tr_y)
    return 0


def write_extra(args: argparse.Namespace, tr_x: list[str], tr_f: np.ndarray, tr_y: np.ndarray) -> None:
    """Label `args.augment` variants of the train sentences and write them (text, target ratings) atomically."""
    from avatar.emotion.augment import augment

    extra = augment(tr_x, args.augment, seed=args.seed)
    target = ridge_predict(ridge_fit(tr_f, tr_y), encode(args.encoder, extra))
    if args.student is not None:
        from avatar.emotion.model import EmotionModel

        target = 0.5 * (target + EmotionModel.from_pretrained(args.student).predict_ratings(extra))
    args.extra_out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.extra_out.with_name(args.extra_out.name + ".part.npz")
    np.savez(tmp, text=np.array(extra), target=target.astype(np.float32))
    tmp.replace(args.extra_out)
    log.info("wrote %d labelled variants to %s", len(extra), args.extra_out)


if __name__ == "__main__":
    sys.exit(main())
