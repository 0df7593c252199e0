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
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from avatar.errors import ModelError
from avatar.io import atomic_path, atomic_write_text

if TYPE_CHECKING:
    import numpy as np

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


#: safetensors dtype names -> little-endian NumPy dtypes (bfloat16 has none in NumPy: refused).
_ST_DTYPES = {"F64": "<f8", "F32": "<f4", "F16": "<f2", "I64": "<i8", "I32": "<i4", "I16": "<i2", "I8": "i1",
              "U8": "u1", "BOOL": "?"}
_ST_MAX_HEADER = 100 * 2**20


def map_safetensors(path: str | os.PathLike[str]) -> dict[str, "np.ndarray"]:
    """A .safetensors file's tensors as read-only NumPy views of the memory-mapped file (nothing is copied;
    where the file system cannot map files, of the file read once).

    Why not `safetensors.numpy.load_file`: it copies every tensor, 0.08 s for the 90 MB MiniLM encoder, about a
    quarter of the emotion stage of `avatar say`, while inference reads its largest tensor (the word embeddings)
    only a few rows at a time. The format is a little-endian u64 header length, a JSON header, then raw bytes;
    every entry is checked (dtype, shape, offsets within the file) before a view is made. ModelError if not valid.
    """
    import mmap

    import numpy as np

    p = Path(path)
    try:
        with open(p, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size < 8:
                raise ModelError(f"{p.name} is not a safetensors file (too short)")
            try:
                buf: mmap.mmap | bytes = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
            except (OSError, ValueError):  # a file system that cannot map files: read it (views stay read-only)
                buf = f.read()
                size = len(buf)
    except OSError as exc:
        raise ModelError(f"cannot read {p}: {exc}") from exc
    n = int.from_bytes(buf[:8], "little")
    if n > min(_ST_MAX_HEADER, size - 8):
        raise ModelError(f"{p.name} is not a safetensors file (header of {n} bytes)")
    try:
        header = json.loads(bytes(buf[8:8 + n]))
    except (UnicodeDecodeError, ValueError) as exc:
        raise ModelError(f"{p.name} has an unreadable safetensors header: {exc}") from None
    if not isinstance(header, dict):
        raise ModelError(f"{p.name} has a safetensors header that is not an object")
    out: dict[str, np.ndarray] = {}
    start = 8 + n
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        try:
            dtype = np.dtype(_ST_DTYPES[entry["dtype"]])
            shape = tuple(int(d) for d in entry["shape"])
            lo, hi = (int(x) for x in entry["data_offsets"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelError(f"{p.name}: tensor {name!r} has a bad header entry ({exc!r})") from None
        count = int(np.prod(shape, dtype=np.int64)) if shape else 1
        if min(shape, default=0) < 0 or not 0 <= lo <= hi <= size - start or hi - lo != count * dtype.itemsize:
            raise ModelError(f"{p.name}: tensor {name!r} does not fit the file (shape {shape}, bytes {lo}-{hi})")
        out[name] = np.frombuffer(buf, dtype=dtype, count=count, offset=start + lo).reshape(shape)
    return out


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
