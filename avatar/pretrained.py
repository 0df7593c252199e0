"""Model folders, saved and loaded the way diffusers components are: config.json + model.safetensors + README.md.

Every trained model in the engine uses this one path, so each `weights/<name>/` folder looks the same and
weights are only ever read with safetensors (nothing is unpickled). `PretrainedMixin` gives an `nn.Module`
whose `config` is a dataclass its `save_pretrained` / `from_pretrained`; `save_folder` / `load_folder` are the
two halves for models that store only part of their weights (the emotion model keeps just its adapter).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
from pathlib import Path
from typing import Any, Callable, ClassVar, TypeVar

from avatar.errors import ModelError
from avatar.io import atomic_path, atomic_write_text
# read_config and its bounds live with the registry (avatar.weights).
from avatar.weights import ModelConfig, read_config

log = logging.getLogger(__name__)

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
    if isinstance(config, ModelConfig):
        config.save(folder)
    else:  # a dataclass config (the emotion model's)
        atomic_write_text(folder / "config.json", json.dumps(dataclasses.asdict(config), indent=2))
    if card is not None:
        atomic_write_text(folder / "README.md", card)
    return folder


#: Bytes per element of each safetensors dtype (the format's own names).
_ST_ITEMSIZE = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "F8_E4M3": 1, "F8_E5M2": 1, "I64": 8, "I32": 4, "I16": 2,
                "I8": 1, "U64": 8, "U32": 4, "U16": 2, "U8": 1, "BOOL": 1}


def safetensors_header(path: str | os.PathLike[str]) -> dict[str, tuple[str, tuple[int, ...]]]:
    """A .safetensors file's tensors as {name: (dtype, shape)}, from its header alone (nothing else is read);
    every entry is checked against the file's size. ModelError if the file is not valid safetensors."""
    p = Path(path)
    try:
        with open(p, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            n = int.from_bytes(f.read(8), "little") if size >= 8 else -1
            if not 0 < n <= min(_ST_MAX_HEADER, size - 8):
                raise ModelError(f"{p.name} is not a safetensors file (header of {n} bytes in {size})")
            text = f.read(n)
    except OSError as exc:
        raise ModelError(f"cannot read {p}: {exc}") from exc
    entries = _header_entries(text, size - 8 - n, p.name)
    return {name: (e[0], e[1]) for name, e in entries.items()}


def _header_entries(text: bytes, data_size: int, name: str) -> dict[str, tuple[str, tuple[int, ...], int, int]]:
    """Parse and check a safetensors JSON header: {tensor: (dtype, shape, start, end)} within data_size bytes."""
    try:
        header = json.loads(text)
    except (UnicodeDecodeError, ValueError) as exc:
        raise ModelError(f"{name} has an unreadable safetensors header: {exc}") from None
    if not isinstance(header, dict):
        raise ModelError(f"{name} has a safetensors header that is not an object")
    out = {}
    for tensor, entry in header.items():
        if tensor == "__metadata__":
            continue
        try:
            dtype = str(entry["dtype"])
            itemsize = _ST_ITEMSIZE[dtype]
            shape = tuple(int(d) for d in entry["shape"])
            lo, hi = (int(x) for x in entry["data_offsets"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelError(f"{name}: tensor {tensor!r} has a bad header entry ({exc!r})") from None
        count = math.prod(shape)
        if min(shape, default=0) < 0 or not 0 <= lo <= hi <= data_size or hi - lo != count * itemsize:
            raise ModelError(f"{name}: tensor {tensor!r} does not fit the file (shape {shape}, bytes {lo}-{hi})")
        out[tensor] = (dtype, shape, lo, hi)
    return out


def check_shapes(want: dict[str, tuple[int, ...]], got: dict[str, tuple[int, ...]], source: str) -> None:
    """ModelError naming the first tensors whose shapes differ between what a config asks for and a file holds."""
    if got != want:
        import heapq

        wrong = heapq.nsmallest(5, (k for k in {**want, **got} if want.get(k) != got.get(k)))  # no full sort
        raise ModelError(f"{source} does not fit its config.json: {', '.join(wrong[:4])}"
                         f"{' ...' if len(wrong) > 4 else ''}")


def load_folder(folder: str | os.PathLike[str], config_class: type[C], what: str,
                framework: str = "pt",
                expect: Callable[[C], dict[str, tuple[int, ...]]] | None = None) -> tuple[C, dict[str, Any]]:
    """Read a model folder's config and tensors; ModelError names `what` on failure. A `ModelConfig` refuses
    unknown keys; a dataclass config (the emotion model's) ignores them.

    framework "pt" gives torch tensors, "np" NumPy arrays (what the torch-free inference paths load). Before
    anything is built or read past the headers, the config's numbers are bounded (read_config) and, with
    `expect` (the config -> every tensor's shape), the shapes are checked against the safetensors header.
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
    raw = read_config(cfg_path, what)
    header = safetensors_header(w_path)
    if isinstance(config_class, type) and issubclass(config_class, ModelConfig):
        config = config_class.from_dict(raw, source=str(cfg_path))  # refuses unknown keys and other classes
    else:
        try:
            known = {f.name for f in dataclasses.fields(config_class)}  # type: ignore[arg-type]
            config = config_class(**{k: v for k, v in raw.items() if k in known})
        except Exception as exc:
            raise ModelError(f"cannot read {what} model in {folder}: {exc}") from exc
    if expect is not None:
        check_shapes(expect(config), {k: v[1] for k, v in header.items()}, str(w_path))
    try:
        state = load_file(str(w_path))
    except Exception as exc:
        raise ModelError(f"cannot read {what} model in {folder}: {exc}") from exc
    return config, state


_ST_MAX_HEADER = 100 * 2**20


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

    def save_pretrained(self, folder: str | os.PathLike[str], card: str | None = None,
                        onnx: bool | None = None) -> Path:
        """Write config.json, model.safetensors and the model card README.md (a default card if none given),
        then model.onnx for inference (`onnx`: default whenever the class declares its graph; False skips the
        export, which takes torch's exporter 10-60 s)."""
        folder = save_folder(folder, self.state_dict(), self.config,  # type: ignore[attr-defined]
                             card if card is not None else self.default_card())
        if onnx is None:
            onnx = hasattr(self, "onnx_inputs")
        if onnx:
            try:
                self.export_onnx(folder)
            except ImportError as exc:  # the checkpoint is saved; a long training run must not end in a traceback
                (folder / "model.onnx").unlink(missing_ok=True)
                log.error("model.onnx not written (%s): pip install 'avatar-engine[train]', then "
                          "python -m avatar.export %s", exc, folder)
        else:  # never leave a graph that is not this checkpoint's (a training checkpoint over a finished model)
            (folder / "model.onnx").unlink(missing_ok=True)
        return folder

    def onnx_metadata(self) -> dict[str, str]:
        """Strings stored in the exported graph's metadata besides the class name and format version."""
        return {}

    def export_onnx(self, folder: str | os.PathLike[str]) -> Path:
        """Write `folder`/model.onnx from this module (avatar.onnx_export; checked against torch first)."""
        from avatar.onnx_export import export_onnx

        return export_onnx(self, folder, self.onnx_metadata())

    @classmethod
    def from_pretrained(cls: type[M], folder: str | os.PathLike[str]) -> M:
        """Load a saved model in eval mode (ModelError when files are missing or do not fit the config).

        The module is first laid out on torch's meta device (no memory) and its shapes checked against the
        safetensors header, so a config that does not fit its weights is refused before anything is built."""
        config, state = load_folder(folder, cls.config_class, cls.model_name, expect=cls._meta_shapes)
        model = cls(config)  # type: ignore[call-arg]
        try:
            model.load_state_dict(state, strict=True)  # type: ignore[attr-defined]
        except RuntimeError as exc:
            raise ModelError(f"{Path(folder) / 'model.safetensors'} does not fit its config.json: "
                             f"{str(exc).splitlines()[0]}") from exc
        model.eval()  # type: ignore[attr-defined]
        return model

    @classmethod
    def _meta_shapes(cls, config: Any) -> dict[str, tuple[int, ...]]:
        """Every state-dict entry's shape for `config`, from a module laid out on the meta device."""
        import torch

        with torch.device("meta"):
            probe = cls(config)  # type: ignore[call-arg]
        return {k: tuple(v.shape) for k, v in probe.state_dict().items()}  # type: ignore[attr-defined]
