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
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from tqdm import tqdm

from avatar.emotion.model import EmotionModel, EmotionModelConfig, length_batches, prepare_text
from avatar.training import optimizer_step

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


def dialogue_metrics(model: EmotionModel, rows: list) -> dict[str, float]:
    """Category accuracy, valence sign on emotional lines and intensity MAE on dialogue rows (eval mode)."""
    from avatar.emotion.dialogue_data import CATEGORIES

    model.eval()
    ratings, logits, inten = model.predict_all([r.text for r in rows], batch_size=128)
    gold = np.array([CATEGORIES.index(r.category) for r in rows])
    vad = model.rating_to_vad(ratings)
    emo = np.array([r.category not in ("neutral", "surprised") for r in rows])
    sign = np.sign(vad[emo, 0]) == np.sign([r.vad[0] for r, e in zip(rows, emo) if e])
    return {"accuracy": float((logits.argmax(1) == gold).mean()), "valence_sign": float(sign.mean()),
            "intensity_mae": float(np.abs(inten - [r.intensity_value for r in rows]).mean())}


def fit_temperature(logits: np.ndarray, gold: np.ndarray) -> float:
    """The softmax temperature that minimises the negative log-likelihood of `gold` (grid search, 0.3..5)."""
    best_t, best_nll = 1.0, float("inf")
    for t in np.exp(np.linspace(np.log(0.3), np.log(5.0), 200)):
        z = logits / t
        z = z - z.max(1, keepdims=True)
        nll = float(-(z[np.arange(len(gold)), gold] - np.log(np.exp(z).sum(1))).mean())
        if nll < best_nll:
            best_t, best_nll = float(t), nll
    return round(best_t, 4)


def freeze_lower_layers(model: EmotionModel, keep: int) -> int:
    """Train only the top `keep` transformer layers' adapter (or weights); returns how many tensors were frozen.

    Autograd then stops at the lowest trained layer: a step costs the forward pass plus the backward pass of the top
    layers only (about half a full step with two of six layers), what a shared two-core machine can afford.
    """
    n_layers = model.encoder.config.num_hidden_layers
    if not 0 < keep <= n_layers:
        raise SystemExit(f"--train-layers takes 1..{n_layers}, got {keep}")
    frozen = 0
    for name, param in model.encoder.named_parameters():
        m = re.search(r"\.layer\.(\d+)\.", name)
        if param.requires_grad and (m is None or int(m[1]) < n_layers - keep):
            param.requires_grad = False
            frozen += 1
    log.info("training the top %d of %d encoder layers (%d tensors frozen)", keep, n_layers, frozen)
    return frozen


@torch.inference_mode()
def _features(model: EmotionModel, texts: list[str], batch_size: int = 64) -> torch.Tensor:
    """The frozen encoder's sentence vectors [N, H] (what the heads read), batched by length."""
    model.eval()
    ids = model.token_ids([prepare_text(t) for t in texts])
    out = torch.zeros(len(texts), model.pooled_size)
    for k, idx in enumerate(length_batches(ids, batch_size)):
        out[idx] = model.pooled(*model._pad([ids[j] for j in idx]))
        if k % 20 == 0:
            log.info("features: %d / %d batches", k, -(-len(ids) // batch_size))
    return out


def _accelerator(args: argparse.Namespace):  # noqa: ANN202 - an accelerate.Accelerator
    """--mixed-precision and --grad-accum through accelerate, on the CPU: the evaluation and the saved model run
    there (the encoder is small; a GPU run of this trainer is not supported)."""
    from avatar.training import accelerator

    return accelerator(getattr(args, "mixed_precision", "no"), getattr(args, "grad_accum", 1), cpu=True)


def onnx_features(folder: Path, texts: list[str], tokenize: Callable[[list[str]], list[list[int]]], threads: int = 1,
                  batch_size: int = 64) -> torch.Tensor:
    """The sentence vectors [N, H] that `folder`'s exported graph (model.onnx) feeds its heads, run in onnxruntime.

    The same vectors as the torch encoder gives (fp16-stored weights: within about 1e-3) at a fraction of the CPU
    time; `tokenize` maps texts to token ids as training does.
    """
    import onnx
    import onnxruntime as ort

    graph = onnx.load(str(Path(folder) / "model.onnx"))
    heads = [n for n in graph.graph.node if n.op_type == "Gemm" and n.input[1].endswith("cat_head.1.weight")]
    if len(heads) != 1:
        raise SystemExit(f"{folder}/model.onnx: cannot find the category head's input (export it first)")
    pooled = heads[0].input[0]
    graph.graph.output.append(onnx.helper.make_tensor_value_info(pooled, onnx.TensorProto.FLOAT, None))
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    sess = ort.InferenceSession(graph.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    ids = tokenize([prepare_text(t) for t in texts])
    out = None
    for k, idx in enumerate(length_batches(ids, batch_size)):
        width = max(len(ids[j]) for j in idx)
        x = np.zeros((len(idx), width), dtype=np.int64)
        mask = np.zeros_like(x)
        for row, j in enumerate(idx):
            x[row, : len(ids[j])] = ids[j]
            mask[row, : len(ids[j])] = 1
        vec = sess.run([pooled], {"input_ids": x, "attention_mask": mask})[0]
        if out is None:
            out = torch.zeros(len(texts), vec.shape[1])
        out[idx] = torch.from_numpy(vec.astype(np.float32))
        if k % 20 == 0:
            log.info("features (onnxruntime): %d / %d batches", k, -(-len(ids) // batch_size))
    return out if out is not None else torch.zeros(0, 0)


def sign_loss(logits: torch.Tensor, valence: torch.Tensor, sign_of: torch.Tensor, dead_zone: float = 0.1) -> torch.Tensor:
    """Probability the category head puts on categories whose valence sign contradicts a rated valence.

    For EmoBank sentences (no category): a sentence rated clearly pleasant should not read sad, angry, fearful or
    disgusted, nor a clearly unpleasant one happy, or the consistency step drags the VAD head's valence across zero.
    Weighted by how far the rating lies past `dead_zone`.
    """
    p = torch.softmax(logits, dim=-1)
    wrong = torch.relu(-torch.sign(valence)[:, None] * sign_of[None, :])  # 1 where the signs disagree
    return ((p * wrong).sum(1) * torch.relu(valence.abs() - dead_zone)).mean()


def emobank_subset(x: list[str], y: np.ndarray, fraction: float, seed: int) -> tuple[list[str], np.ndarray]:
    """A seeded share `fraction` of EmoBank train (all of it at 1.0), in the original order."""
    if fraction >= 1.0:
        return x, y
    keep = np.sort(np.random.default_rng(seed).permutation(len(x))[: int(len(x) * fraction)])
    return [x[i] for i in keep], y[keep]


def load_extra(path: Path, dev_texts: list[str]) -> tuple[list[str], np.ndarray]:
    """--extra's teacher-labelled sentences and their ratings [N, 3] (SystemExit when malformed or holding dev text)."""
    with np.load(path, allow_pickle=False) as e:
        texts, ratings = [str(t) for t in e["text"]], np.asarray(e["target"], np.float64)
    if ratings.shape != (len(texts), 3) or not np.isfinite(ratings).all():
        raise SystemExit(f"{path}: 'target' must be finite [N, 3] ratings beside N texts")
    if set(texts) & set(dev_texts):
        raise SystemExit(f"{path} contains dev sentences")
    return texts, ratings


@dataclass
class Targets:
    """What the joint losses compare against, in the model's units (shared by the heads-only and top-layer loops)."""

    z_eb: torch.Tensor  # [N, 3] z-scored EmoBank (and --extra) ratings
    v_eb: torch.Tensor  # [N] their valence in the engine's [-1, 1] units (for --eb-sign-weight)
    z_dl: torch.Tensor  # [M, 3] the dialogue lines' VAD points, z-scored like the ratings
    c_dl: torch.Tensor  # [M] category index
    i_dl: torch.Tensor  # [M] intensity 0..1
    gold_dv: np.ndarray  # dialogue dev category indices
    sign_of: torch.Tensor  # [C] each category's valence sign (0 for neutral and surprised)


def targets(tr_y: np.ndarray, dl_rows: list, dv_rows: list, mean: np.ndarray, std: np.ndarray,
            scale: np.ndarray) -> Targets:
    """The joint training targets of EmoBank ratings `tr_y` and the dialogue train/dev rows."""
    from avatar.emotion.dialogue_data import CATEGORIES
    from avatar.emotion.labels import CATEGORY_VALENCE_SIGN

    # dialogue VAD points are in the engine's [-1, 1]; |u| < 0.8 is the linear part of the calibration
    return Targets(
        z_eb=torch.tensor((tr_y - mean) / std, dtype=torch.float32),
        v_eb=torch.tensor((tr_y[:, 0] - 3.0) / scale[0], dtype=torch.float32),
        z_dl=torch.tensor(((3.0 + np.array([r.vad for r in dl_rows]).reshape(-1, 3) * scale) - mean) / std,
                          dtype=torch.float32),
        c_dl=torch.tensor([CATEGORIES.index(r.category) for r in dl_rows], dtype=torch.long),
        i_dl=torch.tensor([r.intensity_value for r in dl_rows], dtype=torch.float32),
        gold_dv=np.array([CATEGORIES.index(r.category) for r in dv_rows]),
        sign_of=torch.tensor([float(CATEGORY_VALENCE_SIGN.get(c, 0)) for c in CATEGORIES]))


def warmup_cosine(opt: torch.optim.Optimizer, total: int) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warm-up over the first 6 % of `total` steps, then a cosine decay to zero."""
    warm = max(1, int(0.06 * total))
    return torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / warm) * max(0.0, 0.5 * (1 + math.cos(math.pi * min(1.0, s / total)))))


def dialogue_dims(args: argparse.Namespace) -> torch.Tensor:
    """Per-dimension weights of the dialogue lines' VAD loss: --dialogue-vad-dims, else --dim-weights."""
    dims = getattr(args, "dialogue_vad_dims", None)
    return args.dim_weights if dims is None else dims


def _dev_scores(model: EmotionModel, z_eb: torch.Tensor, eb_y: np.ndarray, z_dl: torch.Tensor, logits: torch.Tensor,
                inten: torch.Tensor, dl_rows: list, gold_cat: np.ndarray) -> dict[str, float]:
    """Dev figures of one model state: EmoBank VAD r, dialogue accuracy, valence sign and intensity MAE."""
    pred = model.z_to_rating(z_eb.numpy().astype(np.float64))
    m = {d: pearson(pred[:, i], eb_y[:, i]) for i, d in enumerate(("valence", "arousal", "dominance"))}
    vad = model.rating_to_vad(model.z_to_rating(z_dl.numpy().astype(np.float64)))
    emo = np.array([r.category not in ("neutral", "surprised") for r in dl_rows])
    m["dialogue_accuracy"] = float((logits.argmax(1).numpy() == gold_cat).mean())
    m["dialogue_valence_sign"] = float((np.sign(vad[emo, 0]) == np.sign([r.vad[0] for r in np.array(dl_rows)[emo]])).mean())
    m["dialogue_intensity_mae"] = float(np.abs(torch.sigmoid(inten).numpy() - [r.intensity_value for r in dl_rows]).mean())
    return m


def train_heads(args: argparse.Namespace, model: EmotionModel, cfg: EmotionModelConfig, eb: tuple, dv: tuple,
                dl_rows: list, dv_rows: list, mean: np.ndarray, std: np.ndarray, scale: np.ndarray) -> dict:
    """--freeze-encoder: the encoder (with --init's adapter) stays as it is; both heads train on its sentence vectors.

    The VAD head continues from --init's on EmoBank train plus the dialogue lines' VAD points; the category and
    intensity head learns from the dialogue lines. One encoder pass over all text, then epochs cost milliseconds,
    which is what a shared two-core machine allows. Selection: EmoBank dev V r + A r + dialogue dev accuracy.
    """
    # a seeded subset of EmoBank train keeps the VAD head anchored, at less cost
    tr_x, tr_y = emobank_subset(*eb, args.emobank_fraction, args.seed)
    dv_x, dv_y = dv
    t0 = time.time()
    cache = args.features_cache
    if cache is not None and cache.exists():  # the same --init, data and limit: the encoder pass is reusable
        from safetensors.torch import load_file

        f = load_file(str(cache))
        if not {"eb", "dv", "dl", "dd"} <= set(f):
            raise SystemExit(f"{cache} is not a sentence-vector cache of --freeze-encoder (a --train-layers cache?); "
                             "remove it or pick another")
        f_eb, f_dv, f_dl, f_dd = f["eb"], f["dv"], f["dl"], f["dd"]
        if (len(f_eb), len(f_dv), len(f_dl), len(f_dd)) != (len(tr_x), len(dv_x), len(dl_rows), len(dv_rows)):
            raise SystemExit(f"{cache} was made for other data")
    else:
        if args.onnx_features:  # the exported graph of --init: the same vectors, several times faster on a CPU
            def encode(texts: list[str]) -> torch.Tensor:
                return onnx_features(args.init, texts, model.token_ids, threads=args.threads)
        else:
            def encode(texts: list[str]) -> torch.Tensor:
                return _features(model, texts)
        f_eb = encode(tr_x)
        f_dv = encode(dv_x)
        f_dl = encode([r.text for r in dl_rows])
        f_dd = encode([r.text for r in dv_rows])
        if cache is not None:
            from safetensors.torch import save_file

            save_file({"eb": f_eb, "dv": f_dv, "dl": f_dl, "dd": f_dd}, str(cache))
    log.info("encoded %d texts in %.0f s", len(tr_x) + len(dv_x) + len(dl_rows) + len(dv_rows), time.time() - t0)
    tg = targets(tr_y, dl_rows, dv_rows, mean, std, scale)
    z_eb, v_eb, z_dl, c_dl, i_dl, gold_dv, sign_of = (tg.z_eb, tg.v_eb, tg.z_dl, tg.c_dl, tg.i_dl, tg.gold_dv,
                                                      tg.sign_of)
    # --freeze-vad-head: the VAD head stays as --init trained it (EmoBank figures unchanged); only the category +
    # intensity head learns.
    params = [*([] if args.freeze_vad_head else model.head.parameters()), *model.cat_head.parameters()]
    if args.freeze_vad_head:
        model.head.requires_grad_(False)
    opt = torch.optim.AdamW(params, lr=args.lr, weight_decay=0.01)
    acc = _accelerator(args)
    rng = torch.Generator().manual_seed(args.seed)
    w = args.dim_weights
    best: dict = {"score": -1.0}
    history = []

    def score_now() -> dict[str, float]:
        model.eval()
        with torch.inference_mode():
            z_eb = model.head(f_dv)
            zd, logits, inten = model.heads(f_dd)
        return _dev_scores(model, z_eb, dv_y, zd, logits, inten, dv_rows, gold_dv)

    bs = args.batch_size
    for epoch in range(args.epochs):
        model.train()
        perm_eb = torch.randperm(len(f_eb), generator=rng)
        perm_dl = torch.randperm(len(f_dl), generator=rng)
        n_steps = max(len(f_eb), len(f_dl) * args.dialogue_repeat) // bs
        for step in range(n_steps):
            b = perm_eb[(step * bs) % len(f_eb):][:bs]
            d = perm_dl[(step * bs) % len(f_dl):][:bs]
            zd, logits, inten = model.heads(f_dl[d])
            loss = torch.zeros(())
            if not args.freeze_vad_head:
                pred = model.head(f_eb[b])
                loss = (((pred - z_eb[b]) ** 2).mean(0) * w).mean() + args.corr_weight * corr_loss(pred, z_eb[b], w)
            loss = loss + (args.cat_weight * torch.nn.functional.cross_entropy(logits, c_dl[d], label_smoothing=0.05)
                           + args.int_weight * torch.nn.functional.binary_cross_entropy_with_logits(inten, i_dl[d])
                           + args.dialogue_vad_weight * (((zd - z_dl[d]) ** 2).mean(0) * dialogue_dims(args)).mean())
            if args.eb_sign_weight > 0:
                loss = loss + args.eb_sign_weight * sign_loss(model.heads(f_eb[b])[1], v_eb[b], sign_of)
            with acc.accumulate(model):
                optimizer_step(acc, model, loss, opt, None, clip=None)
        m = score_now()
        history.append({"epoch": epoch + 1, "weights": "raw", **{k: round(v, 4) for k, v in m.items()}})
        score = m["valence"] + m["arousal"] + m["dialogue_accuracy"]
        log.info("epoch %d dev: %s", epoch + 1, " ".join(f"{k} {v:.4f}" for k, v in m.items()))
        if score > best["score"]:
            best = {"score": score, "epoch": epoch + 1, "metrics": m,
                    "state": {k: v.clone() for k, v in model.trainable_state().items()}}
    model.load_trainable_state(best["state"])
    model.eval()
    with torch.inference_mode():
        _, logits, _ = model.heads(f_dd)
    cfg.temperature = fit_temperature(logits.numpy().astype(np.float64), gold_dv)
    log.info("category temperature %.3f (fitted on dialogue dev)", cfg.temperature)
    return {"best": best, "history": history, "seconds": time.time() - t0}


def train_top(args: argparse.Namespace, model: EmotionModel, cfg: EmotionModelConfig, eb: tuple, dv: tuple,
              dl_rows: list, dv_rows: list, mean: np.ndarray, std: np.ndarray, scale: np.ndarray) -> dict:
    """--train-layers N: only the top N encoder layers' adapter, the layer mix and both heads learn, jointly.

    The frozen lower layers run once per text (`avatar.emotion.toplayers`, cached in --features-cache); each step
    then runs the top layers on one EmoBank batch (VAD loss, plus --eb-sign-weight's sign loss on the category
    head) and one dialogue batch (category, intensity and --dialogue-vad-weight's VAD loss), batches of similar
    length. Selection: EmoBank dev valence r + arousal r + dialogue dev accuracy.
    """
    from avatar.emotion.dialogue_data import CATEGORIES
    from avatar.emotion.toplayers import cache_key, cached_states, top_pooled

    k = args.train_layers
    freeze_lower_layers(model, k)
    # No LoRA dropout: its masks over every adapted layer's input cost about a seventh of a step on the CPU; the
    # layers' own dropout and the heads' still regularise.
    for mod in model.encoder.modules():
        if isinstance(getattr(mod, "lora_dropout", None), torch.nn.ModuleDict):
            for name in list(mod.lora_dropout):
                mod.lora_dropout[name] = torch.nn.Identity()
    # a seeded subset of EmoBank train: less to encode and a shorter epoch
    tr_x, tr_y = emobank_subset(*eb, args.emobank_fraction, args.seed)
    n_gold = len(tr_x)
    if args.extra is not None:  # teacher-labelled sentences: more EmoBank-style batches, their ratings the target
        extra_x, extra_y = load_extra(args.extra, dv[0])
        tr_x, tr_y = list(tr_x) + extra_x, np.concatenate([tr_y, extra_y])
    dv_x, dv_y = dv
    t0 = time.time()
    key = cache_key(args.init, k, cfg.pool_layers)
    texts = {"eb": list(tr_x), "dv": list(dv_x), "dl": [r.text for r in dl_rows], "dd": [r.text for r in dv_rows]}
    allx = cached_states(model, [t for v in texts.values() for t in v], k, key, args.features_cache)
    low = {name: allx.subset(v) for name, v in texts.items()}
    log.info("lower-layer states of %d texts ready in %.0f s", len(allx.texts), time.time() - t0)
    tg = targets(tr_y, dl_rows, dv_rows, mean, std, scale)
    z_eb, v_eb, z_dl, c_dl, i_dl, gold_dv, sign_of = (tg.z_eb, tg.v_eb, tg.z_dl, tg.c_dl, tg.i_dl, tg.gold_dv,
                                                      tg.sign_of)
    enc_params = [p for p in model.encoder.parameters() if p.requires_grad]
    head_params = [*model.head.parameters(), *model.cat_head.parameters()]
    if cfg.pool_layers > 1 and not model.concat:
        head_params.append(model.layer_mix)
    opt = torch.optim.AdamW([{"params": enc_params, "lr": args.lr}, {"params": head_params, "lr": args.lr * 2}],
                            weight_decay=0.01)
    rng = random.Random(args.seed if args.order_seed is None else args.order_seed)
    eb_len, dl_len = low["eb"].lengths, low["dl"].lengths
    bs = args.batch_size

    def dialogue_batches() -> list[list[int]]:
        keep = [i for i, r in enumerate(dl_rows) if r.variant == "original" or rng.random() < args.variant_share]
        return [[keep[i] for i in b] for b in _batches([dl_len[i] for i in keep], bs, rng)]

    steps_per_epoch = max(len(tr_x) // bs, len(dialogue_batches()) * args.dialogue_repeat)
    sched = warmup_cosine(opt, steps_per_epoch * args.epochs)
    w = args.dim_weights

    def run(name: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Heads' outputs for a whole set, in eval mode (batches of similar length)."""
        model.eval()
        n = len(low[name].texts)
        zs, lg, it = torch.zeros(n, 3), torch.zeros(n, len(CATEGORIES)), torch.zeros(n)
        with torch.inference_mode():
            for idx in length_batches([[0] * m for m in low[name].lengths], 128):
                zs[idx], lg[idx], it[idx] = model.heads(top_pooled(model, low[name], idx, k))
        model.train()
        return zs, lg, it

    def score_now() -> dict[str, float]:
        z_eb, _, _ = run("dv")
        zd, lg, it = run("dd")
        return _dev_scores(model, z_eb, dv_y, zd, lg, it, dv_rows, gold_dv)

    if args.self_distill > 0:  # --init's own VAD predictions on EmoBank train, mixed into the target (see --help);
        z_init, _, _ = run("eb")  # --extra rows are teacher labels already: left as they are
        z_eb[:n_gold] = (1 - args.self_distill) * z_eb[:n_gold] + args.self_distill * z_init[:n_gold]
    best: dict = {"score": -1.0}
    history = []
    model.train()
    for epoch in range(args.epochs):
        eb_batches = _batches(eb_len, bs, rng)
        dl_batches = [b for _ in range(args.dialogue_repeat) for b in dialogue_batches()]
        t_epoch = time.time()
        for step in range(steps_per_epoch):
            b = eb_batches[step % len(eb_batches)]
            d = dl_batches[step % len(dl_batches)]
            pred, eb_logits, _ = model.heads(top_pooled(model, low["eb"], b, k))
            loss = (((pred - z_eb[b]) ** 2).mean(0) * w).mean() + args.corr_weight * corr_loss(pred, z_eb[b], w)
            if args.eb_sign_weight > 0:
                loss = loss + args.eb_sign_weight * sign_loss(eb_logits, v_eb[b], sign_of)
            zd, logits, inten = model.heads(top_pooled(model, low["dl"], d, k))
            loss = loss + (args.cat_weight * torch.nn.functional.cross_entropy(logits, c_dl[d], label_smoothing=0.05)
                           + args.int_weight * torch.nn.functional.binary_cross_entropy_with_logits(inten, i_dl[d])
                           + args.dialogue_vad_weight * (((zd - z_dl[d]) ** 2).mean(0) * dialogue_dims(args)).mean())
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_([*enc_params, *head_params], 1.0)
            opt.step()
            sched.step()
            if step % 20 == 19 or step + 1 == steps_per_epoch:
                log.info("epoch %d step %d / %d loss %.3f (%.2f s a step)", epoch + 1, step + 1, steps_per_epoch,
                         loss.item(), (time.time() - t_epoch) / (step + 1))
            if args.max_steps and step + 1 >= args.max_steps:
                log.info("--max-steps %d: %.2f s a step", args.max_steps, (time.time() - t_epoch) / (step + 1))
                break
        m = score_now()
        history.append({"epoch": epoch + 1, "weights": "raw", **{n: round(v, 4) for n, v in m.items()}})
        log.info("epoch %d dev: %s", epoch + 1, " ".join(f"{n} {v:.4f}" for n, v in m.items()))
        score = m["valence"] + m["arousal"] + m["dialogue_accuracy"]
        if score > best["score"]:
            best = {"score": score, "epoch": epoch + 1, "weights": "raw", "metrics": m,
                    "state": {n: v.clone() for n, v in model.trainable_state().items()}}
            if args.save_every_epoch:
                _save(args, model, cfg, best, history, len(tr_x), 0, len(dl_rows), len(dv_x), time.time() - t0,
                      state=best["state"])
        if args.max_steps:
            break
    model.load_trainable_state(best["state"])
    _, logits, _ = run("dd")
    model.eval()
    cfg.temperature = fit_temperature(logits.numpy().astype(np.float64), gold_dv)
    log.info("category temperature %.3f (fitted on dialogue dev)", cfg.temperature)
    return {"best": best, "history": history, "seconds": time.time() - t0, "train_size": n_gold,
            "extra_size": len(tr_x) - n_gold}


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
    init_state = None
    if args.init is not None:  # continue from a saved model (same encoder, rank and pooling): keep its targets
        from avatar.pretrained import load_folder

        init_cfg, init_state = load_folder(args.init, EmotionModelConfig, "emotion")
        args.init_training = {"command": init_cfg.training.get("command"),
                              "emobank_dev_pearson": init_cfg.metrics.get("emobank_dev_pearson")}
        mean, std, scale = (np.asarray(x) for x in (init_cfg.target_mean, init_cfg.target_std, init_cfg.calib_scale))
    cfg = EmotionModelConfig(finetune=args.finetune, lora_r=args.rank, lora_alpha=2 * args.rank, pool_layers=args.pool_layers,
                             pool_mode=args.pool_mode, target_mean=mean.tolist(),
                             target_std=std.tolist(), calib_scale=scale.round(4).tolist())
    dl_rows = dv_rows = []
    if args.dialogue is not None:  # the categorical + intensity head, trained on our dialogue lines
        from avatar.emotion.dialogue_data import CATEGORIES, load_dialogue

        cfg.categories = list(CATEGORIES)
        dl_rows, dv_rows = load_dialogue("train", args.dialogue), load_dialogue("dev", args.dialogue)
        if args.dev_originals:  # select on the hand-written lines alone (a third of the cost, no emoji cue)
            dv_rows = [r for r in dv_rows if r.variant == "original"]
        if args.limit:
            dl_rows, dv_rows = dl_rows[: args.limit], dv_rows[: max(50, args.limit // 4)]
    model = EmotionModel(cfg)
    if init_state is not None:
        model.load_trainable_state(init_state, source=str(args.init))
    if args.freeze_encoder:
        if not dl_rows or init_state is None:
            raise SystemExit("--freeze-encoder trains the heads on --init's encoder: give --init and --dialogue")
        if args.extra is not None:  # the heads-only path has no use for extra sentences: say so, not ignore it
            raise SystemExit("--extra needs the encoder to learn: use it with --train-layers or without --freeze-encoder")
        res = train_heads(args, model, cfg, (tr_x, tr_y), (dv_x, dv_y), dl_rows, dv_rows, mean, std, scale)
        best = res["best"]
        return _save(args, model, cfg, best, res["history"], len(tr_x), 0, len(dl_rows), len(dv_x), res["seconds"])
    if cfg.finetune == "full":  # the transformer layers learn; the (large) embedding table stays as shipped
        for name, param in model.encoder.named_parameters():
            param.requires_grad = name.startswith("encoder.")
    if args.train_layers:
        if not dl_rows or args.teacher is not None:
            raise SystemExit("--train-layers trains jointly on EmoBank (+ --extra) and --dialogue (no --teacher)")
        res = train_top(args, model, cfg, (tr_x, tr_y), (dv_x, dv_y), dl_rows, dv_rows, mean, std, scale)
        return _save(args, model, cfg, res["best"], res["history"], res["train_size"], res["extra_size"],
                     len(dl_rows), len(dv_x), res["seconds"])
    n_gold = len(tr_x)
    z_extra = None
    if args.extra is not None:  # teacher-labelled extra text (no gold ratings): more sentences to distil on
        if args.embed_weight > 0:
            raise SystemExit("--extra rows have no teacher features; use --embed-weight 0")
        extra_x, extra_y = load_extra(args.extra, dv_x)
        tr_x = list(tr_x) + extra_x
        z_extra = torch.tensor((extra_y - mean) / std, dtype=torch.float32)
    n_vad = len(tr_x)  # rows before this index are EmoBank (+ extra); after it, dialogue lines
    if dl_rows:
        tr_x = list(tr_x) + [prepare_text(r.text) for r in dl_rows]  # emoji spelled out, as at inference
        tg = targets(tr_y, dl_rows, dv_rows, mean, std, scale)
        dl_z, dl_cat, dl_int = tg.z_dl, tg.c_dl, tg.i_dl
    enc_all = model.tokenizer([t for t in tr_x], truncation=True, max_length=cfg.max_length)
    lengths = [len(ids) for ids in enc_all["input_ids"]]
    z = torch.tensor((tr_y - mean) / std, dtype=torch.float32)
    if z_extra is not None:
        z = torch.cat([z, z_extra])
    if dl_rows:
        z = torch.cat([z, dl_z])
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
        {"params": [*model.head.parameters(), model.layer_mix, *(proj.parameters() if proj is not None else []),
                    *(model.cat_head.parameters() if model.cat_head is not None else [])],
         "lr": args.lr * 2},
    ], weight_decay=0.01)
    acc = _accelerator(args)
    # The batch order has its own seed so that runs can share one initialisation (weight averaging needs it).
    rng = random.Random(args.seed if args.order_seed is None else args.order_seed)
    def epoch_batches() -> list[list[int]]:
        """EmoBank batches and dialogue batches (never mixed: their losses differ), shuffled together."""
        eb = _batches(lengths[:n_vad], args.batch_size, rng)
        if args.emobank_fraction < 1.0:
            eb = eb[: max(1, int(len(eb) * args.emobank_fraction))]
        keep = [i for i, r in enumerate(dl_rows) if r.variant == "original" or rng.random() < args.variant_share]
        dl = [[n_vad + keep[i] for i in b] for _ in range(args.dialogue_repeat if dl_rows else 0)
              for b in _batches([lengths[n_vad + i] for i in keep], args.batch_size, rng)]
        out = eb + dl
        rng.shuffle(out)
        return out

    steps_per_epoch = len(epoch_batches())
    sched = warmup_cosine(opt, steps_per_epoch * args.epochs)
    # An exponential moving average of the weights usually generalises a little better than the last
    # step; both are scored on dev every epoch and the better one is kept (torch's own AveragedModel).
    from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

    ema = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(args.ema)) if args.ema > 0 else None
    best: dict = {"score": -1.0}
    history = []
    t0 = time.time()
    for epoch in range(args.epochs):
        model.train()
        bar = tqdm(epoch_batches(), desc=f"epoch {epoch + 1}/{args.epochs}", mininterval=30)
        for b in bar:
            enc = model.tokenizer([tr_x[i] for i in b], padding=True, truncation=True,
                                  max_length=cfg.max_length, return_tensors="pt")
            # Prepared text (emoji spelled out) is what inference sees; EmoBank has almost no emoji,
            # so tokenising the raw text here is equivalent and faster.
            with acc.autocast():  # the encoder, nearly all of the cost, in --mixed-precision ("no": as it is)
                pooled = model.pooled(enc["input_ids"], enc["attention_mask"])
            pooled = pooled.float()
            if b[0] >= n_vad:  # a dialogue batch: category, intensity and (coarse, so lighter) VAD targets
                d = [i - n_vad for i in b]
                pred, logits, inten = model.heads(pooled)
                loss = (args.cat_weight * torch.nn.functional.cross_entropy(logits, dl_cat[d], label_smoothing=0.05)
                        + args.int_weight * torch.nn.functional.binary_cross_entropy_with_logits(inten, dl_int[d])
                        + args.dialogue_vad_weight * (((pred - z[b]) ** 2).mean(0) * dialogue_dims(args)).mean())
                with acc.accumulate(model):
                    stepped = optimizer_step(acc, model, loss, opt, sched)
                if stepped and ema is not None:
                    ema.update_parameters(model)
                continue
            pred = model.head(pooled)
            target = z[b]
            if z_teacher is not None and args.teacher_weight > 0:
                target = (1 - args.teacher_weight) * target + args.teacher_weight * z_teacher[b]
            w = args.dim_weights
            loss = (((pred - target) ** 2).mean(0) * w).mean() + args.corr_weight * corr_loss(pred, target, w)
            if proj is not None:
                loss = loss + args.embed_weight * torch.nn.functional.mse_loss(proj(pooled), feat_teacher[b])
            with acc.accumulate(model):
                stepped = optimizer_step(acc, model, loss, opt, sched)
            if stepped and ema is not None:
                ema.update_parameters(model)
            bar.set_postfix(loss=f"{loss.item():.3f}")
        candidates = [("raw", model)] + ([("ema", ema.module)] if ema is not None else [])
        for kind, m in candidates:
            metrics = evaluate(m, dv_x, dv_y)
            score = metrics["valence"] + metrics["arousal"]
            if dv_rows:
                metrics.update({f"dialogue_{k}": v for k, v in dialogue_metrics(m, dv_rows).items()})
                score += metrics["dialogue_accuracy"]
            history.append({"epoch": epoch + 1, "weights": kind, **{k: round(v, 4) for k, v in metrics.items()}})
            log.info("epoch %d (%s weights) dev: %s", epoch + 1, kind,
                     " ".join(f"{k} {v:.4f}" for k, v in metrics.items()))
            if score > best["score"]:
                best = {"score": score, "epoch": epoch + 1, "weights": kind, "metrics": metrics,
                        "state": {k: v.clone() for k, v in m.trainable_state().items()}}
                if args.save_every_epoch:  # a long run stopped early still leaves its best epoch behind
                    _save(args, model, cfg, best, history, n_gold, n_vad - n_gold, len(dl_rows), len(dv_x),
                          time.time() - t0, state=best["state"])
    # Restore the best epoch's adapter and head before saving.
    model.load_trainable_state(best["state"])
    if dv_rows:  # calibrate the category confidence on dialogue dev (temperature scaling)
        from avatar.emotion.dialogue_data import CATEGORIES

        model.eval()
        _, logits, _ = model.predict_all([r.text for r in dv_rows], batch_size=128)
        cfg.temperature = fit_temperature(logits, np.array([CATEGORIES.index(r.category) for r in dv_rows]))
        log.info("category temperature %.3f (fitted on dialogue dev)", cfg.temperature)
    return _save(args, model, cfg, best, history, n_gold, n_vad - n_gold, len(dl_rows), len(dv_x), time.time() - t0)


def _save(args: argparse.Namespace, model: EmotionModel, cfg: EmotionModelConfig, best: dict, history: list,
          n_gold: int, n_extra: int, n_dialogue: int, n_dev: int, seconds: float,
          state: dict[str, torch.Tensor] | None = None) -> dict:
    """Write the selected model with its metrics and the exact training command into the folder and card.

    `state` (a trainable state) is written instead of the model's own weights, which are left as they are."""
    cfg.metrics = {"emobank_dev_pearson": {k: round(v, 4) for k, v in best["metrics"].items() if "_" not in k},
                   "dialogue_dev": {k[9:]: round(v, 4) for k, v in best["metrics"].items() if k.startswith("dialogue_")},
                   "selected_epoch": best["epoch"], "selected_weights": best.get("weights", "raw"), "history": history}
    cfg.training = {"command": "python -m avatar.emotion.train " + " ".join(args.argv), "seed": args.seed, "order_seed": args.order_seed,
                    "teacher": str(args.teacher) if args.teacher else None, "teacher_weight": args.teacher_weight,
                    "embed_weight": args.embed_weight, "extra": str(args.extra) if args.extra else None,
                    "extra_size": n_extra, "dialogue_size": n_dialogue, "init": str(args.init) if args.init else None,
                    "init_training": getattr(args, "init_training", None),
                    "dialogue_repeat": args.dialogue_repeat, "variant_share": args.variant_share,
                    "dev_originals": args.dev_originals, "emobank_fraction": args.emobank_fraction,
                    "freeze_encoder": args.freeze_encoder, "onnx_features": args.onnx_features,
                    "eb_sign_weight": args.eb_sign_weight, "self_distill": getattr(args, "self_distill", 0.0),
                    "train_layers": args.train_layers, "freeze_vad_head": args.freeze_vad_head, "cat_weight": args.cat_weight, "int_weight": args.int_weight, "dialogue_vad_weight": args.dialogue_vad_weight,
                    "dialogue_vad_dims": None if getattr(args, "dialogue_vad_dims", None) is None else [round(float(x), 4) for x in args.dialogue_vad_dims],
                    "epochs": args.epochs, "batch_size": args.batch_size, "lr": args.lr, "finetune": args.finetune, "rank": args.rank, "pool_layers": args.pool_layers, "pool_mode": args.pool_mode,
                    "corr_weight": args.corr_weight, "dim_weights": [round(float(x), 4) for x in args.dim_weights], "ema": args.ema, "train_size": n_gold, "dev_size": n_dev,
                    "seconds": round(seconds, 1), "torch": torch.__version__}
    model.config = cfg
    from avatar.emotion.card import model_card

    if state is not None:
        from avatar.pretrained import save_folder

        save_folder(args.out, state, cfg, model_card(cfg))
    else:
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
    p.add_argument("--dialogue", type=Path, default=None,
                   help="datasets/dialogue/lines.csv: train the category + intensity head jointly on its train split")
    p.add_argument("--init", type=Path, default=None, help="start from this saved model's adapter and VAD head")
    p.add_argument("--freeze-encoder", action="store_true",
                   help="keep --init's encoder and adapter; train only the VAD and category heads (fast)")
    p.add_argument("--freeze-vad-head", action="store_true",
                   help="with --freeze-encoder: keep --init's VAD head too; train only the category + intensity head")
    p.add_argument("--eb-sign-weight", type=float, default=0.0,
                   help="with --freeze-encoder: weight of a loss keeping the category head from contradicting the "
                        "rated valence of EmoBank train sentences (their category is unknown)")
    p.add_argument("--onnx-features", action="store_true",
                   help="with --freeze-encoder: compute the sentence vectors with --init's model.onnx in onnxruntime")
    p.add_argument("--features-cache", type=Path, default=None,
                   help="with --freeze-encoder: keep the encoder's sentence vectors here (safetensors) and reuse "
                        "them; with --train-layers: the lower layers' token states (texts missing from it are added)")
    p.add_argument("--train-layers", type=int, default=0,
                   help="train only the top N encoder layers' adapter (0: all), jointly with both heads, on the "
                        "lower layers' cached token states (--features-cache keeps them); needs --dialogue")
    p.add_argument("--self-distill", type=float, default=0.0,
                   help="with --train-layers: share of --init's own VAD predictions in the EmoBank target, so that "
                        "what it learned from data no longer at hand (the teacher-labelled extra sentences) is kept")
    p.add_argument("--max-steps", type=int, default=0,
                   help="with --train-layers: stop after this many steps of the first epoch (profiling)")
    p.add_argument("--save-every-epoch", action="store_true",
                   help="write the best model so far after each epoch (the final save adds the fitted temperature)")
    p.add_argument("--variant-share", type=float, default=1.0,
                   help="share of the mechanical variants (address, emoji) drawn afresh each epoch beside every "
                        "hand-written line")
    p.add_argument("--dev-originals", action="store_true",
                   help="score and calibrate on the hand-written dialogue dev lines only, not their variants")
    p.add_argument("--dialogue-repeat", type=int, default=2, help="passes over the dialogue lines per epoch")
    p.add_argument("--emobank-fraction", type=float, default=1.0, help="share of EmoBank batches used per epoch")
    p.add_argument("--cat-weight", type=float, default=1.0)
    p.add_argument("--int-weight", type=float, default=1.0)
    p.add_argument("--dialogue-vad-weight", type=float, default=0.5)
    p.add_argument("--dialogue-vad-dims", type=dim_weights, default=None,
                   help="V,A,D weights of the dialogue lines' VAD loss (default: --dim-weights); 1,0,0 keeps only "
                        "valence, whose sign the category fixes, and leaves arousal to EmoBank's ratings")
    from avatar.training import add_train_args

    add_train_args(p)
    args = p.parse_args(argv)
    args.argv = argv
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    train(args)


if __name__ == "__main__":
    main()
