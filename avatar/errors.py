"""Exception types shared by every stage, so front ends can tell bad input from bugs."""

from __future__ import annotations


class AvatarError(Exception):
    """Base class for errors the engine raises on purpose (bad input, missing model, failed stage)."""


class InputError(AvatarError, ValueError):
    """The caller gave input the engine refuses: empty text, NaN VAD, broken audio, a hostile path."""


class ModelError(AvatarError, RuntimeError):
    """A model folder is missing, incomplete or not loadable."""


class OutputError(AvatarError, OSError):
    """Writing a finished output failed (disk full, folder removed meanwhile): the work was done, not saved."""


class Terminated(BaseException):
    """The process got SIGTERM: raised in the main thread so that `finally` blocks clean up (temp files, workers)."""
