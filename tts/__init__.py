"""Emotional speech: text + VAD + voice -> Speech (audio + phoneme/word/viseme timeline).

    >>> from avatar.tts import get_backend
    >>> from avatar.types import VAD
    >>> speech = get_backend().synthesize("Hello there!", VAD(0.6, 0.5, 0.1))

Backends: `piper` (the default: the neural English voice `joe`, eSpeak NG for every other voice),
`espeak` (embedded eSpeak NG + WORLD) and `coqui` (VITS / XTTS v2 models from a
folder, in the separate `.venv-coqui`; see docs/tts.md).
"""

from avatar.tts.base import MAX_TTS_CHARS, Backend, VADInput, backend_names, get_backend
from avatar.tts.prosody import ProsodyParams, prosody_for
from avatar.types import Speech

__all__ = ["Backend", "get_backend", "backend_names", "MAX_TTS_CHARS", "ProsodyParams", "prosody_for", "synthesize"]


def synthesize(text: str, vad: VADInput = None, voice: str | None = None, backend: str = "piper",
               seed: int = 0) -> Speech:
    """Speak `text` with one backend (see Backend.synthesize); returns avatar.types.Speech."""
    return get_backend(backend).synthesize(text, vad, voice, seed=seed)
