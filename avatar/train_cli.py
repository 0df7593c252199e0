"""`avatar train face|gesture|lipsync|emotion`: the training commands under the one CLI.

Each subcommand hands its arguments to the stage's own training entry point, so `avatar train face --data DIR --out
weights/face ...` and `python -m avatar.face.train --data DIR --out weights/face ...` are the same command (the
model cards keep recording the latter, which needs no installed script). `avatar train face --help` lists the
options. They need the `train` extra (torch, diffusers, transformers, peft, accelerate, onnx).
"""

from __future__ import annotations

import importlib
import sys

import typer

#: subcommand -> (module with main(argv), one line for the help).
TRAINERS: dict[str, tuple[str, str]] = {
    "face": ("avatar.face.train", "Train the face denoiser on our speech corpus and/or Live Link Face takes."),
    "gesture": ("avatar.gesture.train", "Train the gesture denoiser on teacher motion and/or captured BVH."),
    "lipsync": ("avatar.face.lipsync", "Train the viseme network (audio-only lip sync) on our speech corpus."),
    "emotion": ("avatar.emotion.train", "Train the text emotion model (VAD + categories) on EmoBank and dialogue."),
}

_FORWARD = {"allow_extra_args": True, "ignore_unknown_options": True, "help_option_names": []}


def run_trainer(name: str, argv: list[str]) -> int:
    """Run the training entry point of `name` with `argv`; its exit code (0 when it returns None)."""
    module, _ = TRAINERS[name]
    if importlib.util.find_spec("torch") is None:
        typer.echo("error: training needs the train extra: pip install 'avatar-engine[train]' (./dev installs it)",
                   err=True)
        return 2
    code = importlib.import_module(module).main(list(argv))
    return int(code or 0)


def register(app: typer.Typer) -> None:
    """Add the `train` command group to the avatar CLI."""
    train = typer.Typer(help="Train the models (needs the train extra). Each takes its stage's options; "
                             "`avatar train face --help` lists them.", no_args_is_help=True)

    def make(name: str, summary: str) -> None:
        @train.command(name, help=f"{summary} Options: `avatar train {name} --help`.", context_settings=_FORWARD,
                       add_help_option=False)
        def command(ctx: typer.Context) -> None:
            raise typer.Exit(run_trainer(name, ctx.args))

    for name, (_, summary) in TRAINERS.items():
        make(name, summary)
    app.add_typer(train, name="train")


if __name__ == "__main__":  # python -m avatar.train_cli face ... (the same as avatar train face ...)
    sys.exit(run_trainer(sys.argv[1], sys.argv[2:]) if len(sys.argv) > 1 and sys.argv[1] in TRAINERS else 2)
