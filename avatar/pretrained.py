"""Model folders, saved and loaded the way diffusers components are: config.json + model.safetensors + README.md.

Every trained model in the engine uses this one path, so each `weights/<name>/` folder looks the same and
weights are only ever read with safetensors (nothing is unpickled). `PretrainedMixin` gives an `nn.Module`
whose `config` is a dataclass its `save_pretrained` / `from_pretrained`; `save_folder` / `load_folder` are the
two halves for models that store only part of their weights (the emotion model keeps just its adapter).
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from avatar.errors import ModelError
from avatar.io import atomic_path, atomic_write_text

C = TypeVar("C")
M = TypeVar("M", bound="PretrainedMixin")


def save_folder(folder: str | os.PathLike[str], state: dict[str, Any], config: Any, card: str | None) -> Path:
    """Write `state` (name -> tensor, dtypes kept) as model.safetensors, `config` (a dataclass) as config.json."""
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().contiguous().cpu() for k, v in state.items()}  # dtype as the caller chose
    with atomic_path(folder / "model.safetensors") as tmp:
        save_file(tensors, str(tmp), metadata={"format": "pt"})
    atomic_write_text(folder / "config.json", json.dumps(dataclasses.asdict(config), indent=2))
    if card is not None:
        atomic_write_text(folder / "README.md", card)
    return folder


def load_folder(folder: str | os.PathLike[str], config_class: type[C], what: str,
                framework: str = "pt") -> tuple[C, dict[str, Any]]:
    """Read a model folder's config (unknown keys ignored) and tensors; ModelError names `what` on failure.

    framework "pt" gives torch tensors, "np" NumPy arrays (what the torch-free inference paths load).
    """
    if framework == "np":
        from safetensors.numpy import load_file
    elif framework == "pt":
        from safetensors.torch import load_file
    else:
        raise ValueError(f"framework must be 'pt' or 'np', got {framework!r}")

    folder = Path(folder)
    cfg_path, w_path = folder / "config.json", folder / "model.safetensors"
    if not cfg_path.is_file() or not w_path.is_file():
        raise ModelError(f"{what} model folder {folder} needs config.json and model.safetensors")
    try:
        raw = json.loads(cfg_path.read_text(encoding="utf-8"))
        known = {f.name for f in dataclasses.fields(config_class)}  # type: ignore[arg-type]
        config = config_class(**{k: v for k, v in raw.items() if k in known})
        state = load_file(str(w_path))
    except Exception as exc:
        raise ModelError(f"cannot read {what} model in {folder}: {exc}") from exc
    return config, state


class PretrainedMixin:
    """`save_pretrained(dir)` / `from_pretrained(dir)` for a module built as `cls(config)` from a dataclass."""

    config_class: ClassVar[type]
    #: What the model is called in error messages ("face", "gesture").
    model_name: ClassVar[str] = "model"
    config: Any

    def num_parameters(self) -> int:
        """Number of weights."""
        return sum(p.numel() for p in self.parameters())  # type: ignore[attr-defined]

    def default_card(self) -> str:
        """The model card written when `save_pretrained` is given none."""
        return f"# {type(self).__name__}\n\nNo card was written for these weights.\n"

    def save_pretrained(self, folder: str | os.PathLike[str], card: str | None = None) -> Path:
        """Write config.json, model.safetensors and the model card README.md (a default card if none given)."""
        return save_folder(folder, self.state_dict(), self.config,  # type: ignore[attr-defined]
                           card if card is not None else self.default_card())

    @classmethod
    def from_pretrained(cls: type[M], folder: str | os.PathLike[str]) -> M:
        """Load a saved model in eval mode (ModelError when files are missing or do not fit the config)."""
        config, state = load_folder(folder, cls.config_class, cls.model_name)
        model = cls(config)  # type: ignore[call-arg]
        try:
            model.load_state_dict(state, strict=True)  # type: ignore[attr-defined]
        except RuntimeError as exc:
            raise ModelError(f"{Path(folder) / 'model.safetensors'} does not fit its config.json: "
                             f"{str(exc).splitlines()[0]}") from exc
        model.eval()  # type: ignore[attr-defined]
        return model
