"""The training loops' device, precision and gradient accumulation, through Hugging Face `accelerate`.

    acc = accelerator(mixed_precision="no", grad_accum=1)  # or accelerator_from_args(args) after add_train_args
    model, opt, sched = acc.prepare(model, opt, sched)
    for step in range(steps):
        with acc.accumulate(model):
            loss = loss_fn(model, batch.to(acc.device))
            optimizer_step(acc, model, loss, opt, sched, clip=1.0)

So the same `avatar train ...` command trains on this CPU, on a GPU, or (launched with `accelerate launch`) on
several. With the defaults (no mixed precision, no accumulation) on the CPU a run gives the same numbers as the
plain torch loop did. Imported only by training code (the `train` extra).
"""

from __future__ import annotations

import argparse
from typing import Any

PRECISIONS = ("no", "fp16", "bf16")


def add_train_args(parser: argparse.ArgumentParser) -> None:
    """The options every training command shares: --mixed-precision, --grad-accum, --cpu."""
    g = parser.add_argument_group("device and precision (accelerate)")
    g.add_argument("--mixed-precision", choices=PRECISIONS, default="no",
                   help="autocast the forward pass in fp16 (GPU) or bf16 (GPU or CPU); default no")
    g.add_argument("--grad-accum", type=int, default=1,
                   help="optimizer step every N batches (gradients summed over them); default 1")
    g.add_argument("--cpu", action="store_true", help="train on the CPU even where a GPU is available")


def accelerator(mixed_precision: str = "no", grad_accum: int = 1, cpu: bool = False) -> Any:  # accelerate.Accelerator
    """An Accelerator for one training run (ValueError for a precision or accumulation it cannot take).

    accelerate keeps its state per process: one process trains with one mixed precision."""
    from accelerate import Accelerator

    if mixed_precision not in PRECISIONS:
        raise ValueError(f"mixed precision must be one of {', '.join(PRECISIONS)}, got {mixed_precision!r}")
    if isinstance(grad_accum, bool) or not isinstance(grad_accum, int) or not 1 <= grad_accum <= 1024:
        raise ValueError(f"gradient accumulation must be an integer in [1, 1024], got {grad_accum!r}")
    # step_scheduler_with_optimizer=False: our schedules count optimizer steps, not batches x processes.
    return Accelerator(mixed_precision=mixed_precision, gradient_accumulation_steps=grad_accum, cpu=cpu,
                       step_scheduler_with_optimizer=False)


def accelerator_from_args(args: argparse.Namespace) -> Any:
    """accelerator() from the options add_train_args added."""
    return accelerator(args.mixed_precision, args.grad_accum, args.cpu)


def optimizer_step(acc: Any, model: Any, loss: Any, opt: Any, sched: Any = None, clip: float | None = 1.0) -> bool:
    """Backward, and when this batch ends an accumulation: clip, step the optimizer and the schedule, zero the
    gradients. Call inside `acc.accumulate(model)`. Returns whether the optimizer stepped."""
    acc.backward(loss)
    if not acc.sync_gradients:
        return False
    if clip is not None:
        acc.clip_grad_norm_(model.parameters(), clip)
    opt.step()
    if sched is not None:
        sched.step()
    opt.zero_grad(set_to_none=True)
    return True


def accumulated_step(acc: Any, model: Any, opt: Any, sched: Any, batch_loss: Any, clip: float | None = 1.0) -> float:
    """One optimizer step over acc.gradient_accumulation_steps batches, each `batch_loss()` (a scalar tensor);
    returns their mean loss. With one batch per step this is the plain loop: zero, backward, clip, step."""
    n = acc.gradient_accumulation_steps
    total = 0.0
    for _ in range(n):
        with acc.accumulate(model):
            loss = batch_loss()
            optimizer_step(acc, model, loss, opt, sched, clip)
        total += float(loss.detach().item())
    return total / n


def finish(acc: Any, net: Any) -> Any:
    """The trained module without what `prepare` added (a multi-device wrapper, the autocast around forward), so
    that saving and the ONNX export see the plain float32 model."""
    return acc.unwrap_model(net, keep_fp32_wrapper=False)
