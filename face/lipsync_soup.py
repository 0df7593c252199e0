"""Average viseme networks that share one initialisation (WiSE-FT, Wortsman et al., CVPR 2022).

    python -m avatar.face.lipsync_soup --models weights/lipsync FINE_TUNED --mix 0.5 --out DIR

A network fine-tuned from another (`python -m avatar.face.lipsync --init`) sits in the same basin, so the
weights on the line between them are networks too; the paper's finding is that the middle of that line keeps the
fine-tune's gains and holds up better on data unlike both training sets (here: voices neither heard). `--mix W`
is the fine-tune's share (the last model's; with more than two models it is ignored and all share equally).
The card of the result lists each ingredient's own card, so its data and command stay on record.
"""

from __future__ import annotations

import argparse
import logging
import math
import shlex
import sys
from pathlib import Path


from avatar.errors import InputError, ModelError

from .lipsync import VisemeNet, load_lipsync

log = logging.getLogger(__name__)


def soup(nets: list[VisemeNet], weights: list[float] | None = None) -> VisemeNet:
    """A new network whose every tensor is the weighted mean of the networks' (ModelError if they differ)."""
    if len(nets) < 2:
        raise ModelError("a soup needs at least two networks")
    w = [1.0 / len(nets)] * len(nets) if weights is None else [float(x) for x in weights]
    if len(w) != len(nets) or not all(math.isfinite(x) and x >= 0 for x in w) or not math.isclose(sum(w), 1.0):
        raise ModelError(f"need one weight >= 0 per network, summing to 1; got {weights}")
    if any(n.config != nets[0].config for n in nets[1:]):
        raise ModelError("the networks differ in shape or classes: only networks of one config can be averaged")
    states = [n.state_dict() for n in nets]
    out = VisemeNet(nets[0].config)
    out.load_state_dict({k: sum(x * s[k].float() for x, s in zip(w, states)) for k in states[0]})
    return out.eval()


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    p = argparse.ArgumentParser(prog="python -m avatar.face.lipsync_soup", description=__doc__.split("\n\n")[0])
    p.add_argument("--models", type=Path, nargs="+", required=True, help="lip sync folders (the first the base)")
    p.add_argument("--mix", type=float, default=0.5, help="the last model's share with two models (default 0.5)")
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if len(args.models) < 2:
        p.error("--models needs at least two folders")
    if not (math.isfinite(args.mix) and 0.0 <= args.mix <= 1.0):
        p.error("--mix must be in [0, 1]")
    weights = [1.0 - args.mix, args.mix] if len(args.models) == 2 else None
    try:
        nets = [load_lipsync(m) for m in args.models]
        cards = [(m, (m / "README.md").read_text(encoding="utf-8") if (m / "README.md").is_file() else "")
                 for m in args.models]
        net = soup(nets, weights)
    except (InputError, ModelError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    command = ".venv/bin/python -m avatar.face.lipsync_soup " + " ".join(
        shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv))
    shares = weights or [1.0 / len(nets)] * len(nets)
    card = ("# Viseme network (avatar.face.lipsync), weight average\n\n"
            "The weighted mean of the tensors of " + ", ".join(f"`{m}` (x{s:.2f})" for m, s in zip(args.models, shares))
            + f" (WiSE-FT).\n\n- Command: `{command}`\n"
            "- Licence: Apache-2.0 (weights); the training text is EmoBank (CC-BY-SA 4.0).\n\n"
            + "".join(f"## Ingredient `{m}` (its card)\n\n" + "".join(f"> {line}".rstrip() + "\n" for line in c.splitlines())
                      + "\n" for m, c in cards))
    net.save_pretrained(args.out, card=card)
    log.info("saved %s", args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
