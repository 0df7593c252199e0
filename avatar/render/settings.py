"""RenderSettings: how frames are drawn (size, framing, anti-aliasing), validated once where they come in.

    settings = RenderSettings.make(width=512, height=512, framing="portrait")  # InputError when a value is wrong

Every renderer, the render pool and the pipeline take one of these; nothing downstream checks them again.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from avatar.errors import InputError

FRAMINGS = ("portrait", "full")
ANTIALIAS = ("fxaa", "msaa", "none")
#: One anti-aliasing everywhere (Renderer, render_frames, the pool, `avatar say`): FXAA, a single pass over the
#: avatar's pixels, costs a fraction of 4x MSAA on llvmpipe (bench/render_bench.py prints both).
DEFAULT_ANTIALIAS = "fxaa"
MAX_SIZE = 4096


class RenderSettings(BaseModel):
    """Frame size in pixels, camera framing, anti-aliasing and MSAA samples (used only with antialias="msaa")."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    width: int = Field(512, ge=16, le=MAX_SIZE)
    height: int = Field(512, ge=16, le=MAX_SIZE)
    framing: Literal["portrait", "full"] = "portrait"
    antialias: Literal["fxaa", "msaa", "none"] = DEFAULT_ANTIALIAS
    samples: int = Field(4, ge=0, le=16)

    @classmethod
    def make(cls, **values: Any) -> "RenderSettings":
        """Settings from keyword values (NumPy integers accepted); InputError with one line per wrong value."""
        values = {k: int(v) if k in ("width", "height", "samples") and _is_int(v) else v for k, v in values.items()}
        try:
            return cls(**values)
        except ValidationError as exc:
            raise InputError("; ".join(_message(e) for e in exc.errors())) from None

    @property
    def aspect(self) -> float:
        """Width over height."""
        return self.width / self.height


def _is_int(v: object) -> bool:
    import numpy as np

    return isinstance(v, (int, np.integer)) and not isinstance(v, bool)


def _message(err: dict) -> str:
    name = ".".join(str(p) for p in err.get("loc", ())) or "settings"
    if name == "framing":
        return f"framing must be one of {', '.join(FRAMINGS)}, got {err.get('input')!r}"
    if name == "antialias":
        return f"antialias must be one of {', '.join(ANTIALIAS)}, got {err.get('input')!r}"
    if name in ("width", "height"):
        return f"{name} must be an integer in [16, {MAX_SIZE}], got {err.get('input')!r}"
    if name == "samples":
        return f"samples must be an integer in [0, 16], got {err.get('input')!r}"
    return f"{name}: {err.get('msg')}"
