"""The model registry: where each model folder is, how its config is read, and one cache of loaded models.

Every entry point (`avatar say`, `avatar face|gesture|emotion`, batch, live, the app) finds a model the same way:

1. `$AVATAR_MODEL_<NAME>` (NAME upper-cased: `AVATAR_MODEL_FACE`, `AVATAR_MODEL_GESTURE`, `AVATAR_MODEL_LIPSYNC`,
   `AVATAR_MODEL_EMOTION`), when set and not empty;
2. the weights installed with the package (`avatar/assets/<name>/`, package data of a built wheel);
3. the checkout's `weights/<name>/` (an editable install or a source tree).

A folder holds `config.json` (with `_class_name` and `_format_version`), `model.onnx` (what inference runs, in
onnxruntime: avatar.runtime), `model.safetensors` (the torch training checkpoint) and `README.md` (the card).
docs/design.md ("Model folders") describes the layout.
"""

from __future__ import annotations

import importlib.resources
import json
import logging
import math
import os
import re
import threading
from pathlib import Path
from typing import Any, Callable, ClassVar, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from avatar.errors import ModelError

log = logging.getLogger(__name__)

#: Prefix of the per-model environment override: AVATAR_MODEL_FACE=/path/to/folder.
ENV_PREFIX = "AVATAR_MODEL_"
#: The models the engine ships (folder names under weights/).
SHIPPED = ("emotion", "face", "gesture", "lipsync")
#: The package that carries the weights in a built wheel (pyproject maps it to the checkout's weights/).
ASSETS_PACKAGE = "avatar.assets"
_NAME = re.compile(r"[a-z][a-z0-9_]*")

T = TypeVar("T")
C = TypeVar("C", bound="ModelConfig")


def env_var(name: str) -> str:
    """The environment variable that overrides model `name`'s folder (AVATAR_MODEL_<NAME>)."""
    return ENV_PREFIX + _check_name(name).upper()


def _check_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ModelError(f"model names are lower-case identifiers, got {name!r}")
    return name


def weights_root() -> Path:
    """The folder holding every shipped model: the installed package data, else the checkout's weights/."""
    try:
        installed = importlib.resources.files("avatar") / "assets"
        if installed.is_dir():
            return Path(str(installed))
    except (ModuleNotFoundError, TypeError, NotImplementedError):  # a zip import or no files() support
        pass
    return Path(__file__).resolve().parents[1] / "weights"


def model_dir(name: str) -> Path:
    """Model `name`'s folder: $AVATAR_MODEL_<NAME> when set, else the shipped weights (not checked to exist)."""
    env = os.environ.get(env_var(name), "").strip()
    if env:
        return Path(env).expanduser()
    return weights_root() / name


def resolve(name: str, folder: str | os.PathLike[str] | None = None) -> Path:
    """`folder` when given (a caller's --model), else `model_dir(name)`."""
    return Path(folder).expanduser() if folder is not None else model_dir(name)


def default_avatar() -> Path:
    """The shipped default avatar (.glb): $AVATAR_MODEL_AVATARS/default.glb or weights/avatars/default.glb."""
    return model_dir("avatars") / "default.glb"


# ---------------------------------------------------------------------------------------------------------
# Configs
# ---------------------------------------------------------------------------------------------------------

class ModelConfig(BaseModel):
    """Base of every model config: unknown keys are refused; `class_name` and `format_version` are saved as
    `_class_name` / `_format_version` so a folder says what it holds and which layout it was written in."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, protected_namespaces=())

    #: The model class this config builds (written as `_class_name`).
    class_name: ClassVar[str] = ""
    #: The newest folder layout this code reads and writes (written as `_format_version`).
    format_version: ClassVar[int] = 1

    def to_json(self) -> str:
        """The config.json text: `_class_name`, `_format_version`, then the fields."""
        body = {"_class_name": self.class_name, "_format_version": self.format_version,
                **self.model_dump(mode="json")}
        return json.dumps(body, indent=2) + "\n"

    @classmethod
    def from_dict(cls: type[C], raw: dict[str, Any], source: str = "config.json") -> C:
        """Validate a parsed config.json (ModelError naming `source`: another class, a newer format, unknown
        or bad keys)."""
        if not isinstance(raw, dict):
            raise ModelError(f"{source} is not a JSON object")
        raw = dict(raw)
        name = raw.pop("_class_name", None)
        version = raw.pop("_format_version", None)
        if name is not None and name != cls.class_name:
            raise ModelError(f"{source} is for a {name}, not a {cls.class_name}")
        if version is not None and (isinstance(version, bool) or not isinstance(version, int)
                                    or not 0 <= version <= cls.format_version):
            raise ModelError(f"{source} has format version {version!r}; this code reads up to "
                             f"{cls.format_version} (update avatar-engine)")
        try:
            return cls.model_validate(raw)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "(root)"
            raise ModelError(f"{source}: {where}: {first['msg']}") from None

    @classmethod
    def load(cls: type[C], folder: str | os.PathLike[str]) -> C:
        """Read `folder`/config.json (ModelError when missing or not valid; its size and numbers are bounded
        before anything is built: read_config)."""
        path = Path(folder) / "config.json"
        try:
            raw = read_config(path, cls.class_name or "model")
        except OSError as exc:
            raise ModelError(f"cannot read {path}: {exc.strerror or exc}") from None
        return cls.from_dict(raw, source=str(path))

    def save(self, folder: str | os.PathLike[str]) -> Path:
        """Write `folder`/config.json atomically; returns its path."""
        from avatar.io import atomic_write_text

        path = Path(folder) / "config.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, self.to_json())
        return path


#: A model's config.json over this size is refused unread (ours are 2-6 kB).
MAX_CONFIG_BYTES = 1 << 20
#: Every number in a config.json must be finite and at most this in size: no width, count, window or step
#: count of ours comes near it (hidden 128-384, 1000 diffusion steps), and a hostile one (hidden=1e9,
#: blocks=1e9) is refused before it sizes a loop or an array (at the bound, the shape check takes about a second).
MAX_CONFIG_NUMBER = 16384
#: A model's frame rate (`fps`) bounds the frames it makes for a second of audio.
MAX_MODEL_FPS = 240.0


def read_config(path: str | os.PathLike[str], what: str = "model") -> dict[str, Any]:
    """A model's config.json as a dict, refused (ModelError) when over MAX_CONFIG_BYTES, not a JSON object, or
    holding a number that is not finite or beyond MAX_CONFIG_NUMBER (or an `fps` outside (0, MAX_MODEL_FPS])."""
    p = Path(path)
    size = p.stat().st_size
    if size > MAX_CONFIG_BYTES:
        raise ModelError(f"{p} is {size / 2**20:.1f} MiB; a {what} model's config.json is at most "
                         f"{MAX_CONFIG_BYTES // 2**20} MiB")
    try:
        raw = json.loads(p.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise ModelError(f"{p} is not valid JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise ModelError(f"{p} is not a JSON object")

    def check(value: Any, key: str) -> None:
        if isinstance(value, bool) or value is None or isinstance(value, str):
            return
        if isinstance(value, (int, float)):
            if not math.isfinite(value) or abs(value) > MAX_CONFIG_NUMBER:
                raise ModelError(f"{p}: {key} = {value!r} is out of range (finite, at most {MAX_CONFIG_NUMBER})")
        elif isinstance(value, list):
            for i, v in enumerate(value):
                check(v, f"{key}[{i}]")
        elif isinstance(value, dict):
            for k, v in value.items():
                check(v, f"{key}.{k}")

    for key, value in raw.items():
        check(value, key)
    fps = raw.get("fps")
    if fps is not None and not (isinstance(fps, (int, float)) and 0 < fps <= MAX_MODEL_FPS):
        raise ModelError(f"{p}: fps = {fps!r} is out of range (0, {MAX_MODEL_FPS:g}]")
    return raw


def require_files(folder: str | os.PathLike[str], files: tuple[str, ...], what: str, how: str) -> Path:
    """`folder` if it holds every one of `files`, else ModelError naming the missing ones and `how` to make them."""
    p = Path(folder)
    missing = [f for f in files if not (p / f).is_file()]
    if missing:
        raise ModelError(f"no {what} model in {p} (missing {', '.join(missing)}); {how}")
    return p


# ---------------------------------------------------------------------------------------------------------
# The one cache of loaded models
# ---------------------------------------------------------------------------------------------------------

_CACHE: dict[tuple[str, str], Any] = {}
_CACHE_LOCK = threading.Lock()
_LOAD_LOCKS: dict[tuple[str, str], threading.Lock] = {}


def cached(kind: str, folder: str | os.PathLike[str], load: Callable[[Path], T]) -> T:
    """`load(folder)` once per (kind, resolved folder) in this process; later calls share the result.

    Loads of different models run in parallel; two threads asking for the same one wait for one load.
    """
    path = Path(folder).resolve()
    key = (kind, str(path))
    with _CACHE_LOCK:
        if key in _CACHE:
            return _CACHE[key]
        lock = _LOAD_LOCKS.setdefault(key, threading.Lock())
    with lock:
        with _CACHE_LOCK:
            if key in _CACHE:
                return _CACHE[key]
        value = load(path)
        with _CACHE_LOCK:
            _CACHE[key] = value
        return value


def clear_cache() -> None:
    """Forget every loaded model (tests; a long-lived process after its weights changed on disk)."""
    with _CACHE_LOCK:
        _CACHE.clear()
        _LOAD_LOCKS.clear()
