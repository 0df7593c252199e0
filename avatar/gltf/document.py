"""Fast decoding of glTF JSON into pygltflib objects.

Why: pygltflib's `GLTF2.from_json` builds its dataclasses through dataclasses_json's generic `_decode_dataclass`,
which looks up overrides and type hints again for every object. For our default avatar (263 accessors, 263
buffer views) that took 0.25-0.45 s, ~90 % of `load_avatar` (measured ~0.32 s -> ~0.03 s with this module, median
of 5 fresh processes), paid by every `avatar say` process. Here each pygltflib dataclass gets a decoding plan built
once from `dataclasses.fields` and `typing.get_type_hints`, and decoding is plain loops calling the dataclass
constructors (~6 ms, plus ~4 ms to build the plans).

The result is what `pygltflib.GLTF2.from_json(text, infer_missing=True)` returns: the same classes, values and
value types (a JSON `0` in a float field becomes `0.0`, as dataclasses_json converts it). The tests
(tests/test_gltf_document.py) check this object by object against pygltflib's decoder. Anything the plans do
not reproduce exactly (a type they do not know, a value of an unexpected shape, a dataclasses_json decoder or
letter case configured) sends the whole document through pygltflib's own decoder instead.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import threading
import typing
from collections.abc import Collection
from datetime import datetime
from decimal import Decimal
from enum import Enum
from typing import Any, Callable, Union
from uuid import UUID

import pygltflib
from dataclasses_json import cfg

log = logging.getLogger(__name__)

_MISSING = object()
_SCALARS = (int, float, str, bool)
# Types dataclasses_json converts or treats as collections in ways the plans do not reproduce.
_SPECIAL = (Collection, Enum, datetime, Decimal, UUID)

Conv = Callable[[Any], Any]  # a converter; None in a plan means "the value as is"


class _UnsupportedError(Exception):
    """A type or value the fast path does not reproduce exactly: decode with pygltflib instead."""


def gltf_from_json(text: str) -> pygltflib.GLTF2:
    """Decode glTF JSON into a pygltflib.GLTF2, exactly as `GLTF2.from_json(text, infer_missing=True)` does."""
    data = json.loads(text)  # broken JSON raises here just as in pygltflib (same json.loads call)
    try:
        return _decode_gltf(data)
    except Exception as exc:  # noqa: BLE001 - correctness first: pygltflib decides (and raises) for odd files
        log.debug("fast glTF decode fell back to pygltflib's decoder: %s: %s", type(exc).__name__, exc)
        return pygltflib.GLTF2.from_json(text, infer_missing=True)


def load_glb(path: str | os.PathLike[str]) -> pygltflib.GLTF2:
    """Read a .glb/.vrm file as `pygltflib.GLTF2().load_binary` does, decoding its JSON chunk fast."""
    return _Loader.load_binary(str(path))


def load_gltf(path: str | os.PathLike[str]) -> pygltflib.GLTF2:
    """Read a .gltf file as `pygltflib.GLTF2().load_json` does, decoding its JSON fast."""
    return _Loader.load_json(str(path))


class _Loader(pygltflib.GLTF2):
    """pygltflib's own container code (load_binary, load_from_bytes, load_json) with `from_json` swapped.

    Never instantiated: `from_json` returns a plain pygltflib.GLTF2, on which pygltflib then sets the binary blob,
    `_path` and `_name` exactly as it does for its own objects."""

    @classmethod
    def from_json(cls, s: str, *, infer_missing: bool = False, **kw: Any) -> pygltflib.GLTF2:  # type: ignore[override]
        """`gltf_from_json` for the call pygltflib's loaders make; any other call goes to pygltflib."""
        if infer_missing and not kw:
            return gltf_from_json(s)
        return pygltflib.GLTF2.from_json(s, infer_missing=infer_missing, **kw)


def _decode_gltf(data: Any) -> pygltflib.GLTF2:
    if cfg.global_config.decoders:  # a registered decoder could apply to any field or list item
        raise _UnsupportedError("dataclasses_json global decoders are registered")
    if type(data) is not dict:
        raise _UnsupportedError("the JSON document is not an object")
    gltf = _decoder(pygltflib.GLTF2)(data)
    # As GLTF2.from_json: attribute dicts become Attributes afterwards (targets stay dicts).
    for mesh in gltf.meshes:
        for primitive in mesh.primitives:
            raw = primitive.attributes
            if raw:
                primitive.attributes = pygltflib.Attributes(**raw)
    return gltf


_DECODERS: dict[type, Conv] = {}
_BUILDING: set[type] = set()
_LOCK = threading.RLock()  # plans are built once, also when threads (the app) read avatars at the same time


def _decoder(cls: type) -> Conv:
    """The decoder of dict -> `cls` (a dataclass), built once per class."""
    dec = _DECODERS.get(cls)
    if dec is None:
        with _LOCK:
            dec = _DECODERS.get(cls)
            if dec is None:
                if cls in _BUILDING:  # a self-referencing dataclass: not in pygltflib, not worth supporting
                    raise _UnsupportedError(f"recursive dataclass {cls.__name__}")
                _BUILDING.add(cls)
                try:
                    dec = _DECODERS[cls] = _build_decoder(cls)
                finally:
                    _BUILDING.discard(cls)
    return dec


def _build_decoder(cls: type) -> Conv:
    # Class or field dataclasses_json config (letter case, undefined-parameter handling, decoders) is not
    # reproduced here; pygltflib sets none.
    if getattr(cls, "dataclass_json_config", None):
        raise _UnsupportedError(f"{cls.__name__} has a dataclasses_json config")
    hints = typing.get_type_hints(cls)
    plan = []
    for f in dataclasses.fields(cls):
        if f.metadata.get("dataclasses_json"):
            raise _UnsupportedError(f"{cls.__name__}.{f.name} has dataclasses_json field config")
        if not f.init:  # _decode_dataclass skips these too
            continue
        conv = _converter(hints[f.name])
        # A missing key takes the default (converted as a present value would be: it is immutable, so once
        # here), else a fresh default_factory() value (converted per object), else None (infer_missing=True).
        if f.default is not dataclasses.MISSING:
            default = f.default if f.default is None or conv is None else conv(f.default)
            factory = None
        elif f.default_factory is not dataclasses.MISSING:
            default, factory = None, f.default_factory
        else:
            default, factory = None, None
        plan.append((f.name, conv, default, factory))
    plan_t = tuple(plan)

    def decode(d: dict) -> Any:
        kw = {}
        for name, conv, default, factory in plan_t:
            v = d.get(name, _MISSING)  # unknown keys in d are ignored, as by _decode_dataclass
            if v is _MISSING:
                if factory is None:
                    kw[name] = default
                    continue
                v = factory()
            # A None field value stays None whatever the field's type (_decode_dataclass does not convert it).
            kw[name] = v if v is None or conv is None else conv(v)
        return cls(**kw)

    return decode


def _converter(tp: Any) -> Conv | None:
    """A converter reproducing dataclasses_json's `_decode_type` for type `tp` (None: the value as is)."""
    if tp is Any:  # _decode_generic: Any accepts the value
        return None
    if tp in _SCALARS:  # _support_extended_types: an instance stays, anything else is converted (0 -> 0.0)
        def scalar(v: Any, t: type = tp) -> Any:
            return v if isinstance(v, t) else t(v)
        return scalar
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return _dataclass_converter(tp)
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is Union:
        # Optional[X]: None stays None, else decoded as X. Other unions try dataclasses in turn: not reproduced.
        if len(args) != 2 or args[1] is not type(None):
            raise _UnsupportedError(f"union type {tp}")
        inner = _converter(args[0])
        if inner is None:
            return None
        return lambda v: None if v is None else inner(v)
    if origin is list and len(args) == 1:
        item = _converter(args[0])

        def to_list(v: Any) -> Any:
            if v is None:
                return None
            if type(v) is not list:  # dataclasses_json would iterate a str or dict: leave that to it
                raise _UnsupportedError(f"expected a JSON array, got {type(v).__name__}")
            return list(v) if item is None else [item(x) for x in v]
        return to_list
    if origin is dict and len(args) == 2 and args[0] in (str, Any):
        value = _converter(args[1])

        def to_dict(v: Any) -> Any:
            if v is None:
                return None
            if type(v) is not dict:
                raise _UnsupportedError(f"expected a JSON object, got {type(v).__name__}")
            # JSON keys are already str, so key decoding changes nothing; the dict itself is a new one.
            return dict(v) if value is None else {k: value(x) for k, x in v.items()}
        return to_dict
    # Any other class (pygltflib.Attributes): _support_extended_types passes the value through.
    if isinstance(tp, type) and origin is None and not issubclass(tp, _SPECIAL) and not issubclass(tp, _SCALARS):
        return None
    raise _UnsupportedError(f"type {tp!r}")


def _dataclass_converter(cls: type) -> Conv:
    decode = _decoder(cls)

    def to_dataclass(v: Any) -> Any:
        if type(v) is dict:
            return decode(v)
        if v is None:  # a None list item stays None (_decode_generic)
            return None
        if isinstance(v, cls):  # a default_factory() instance (GLTF2.asset): _decode_dataclass keeps it
            return v
        raise _UnsupportedError(f"expected a JSON object for {cls.__name__}, got {type(v).__name__}")
    return to_dataclass
