"""ctypes binding to the eSpeak NG library that `espeakng-loader` ships (no subprocess, no system package).

Only the handful of calls the backend needs: initialise once in synchronous mode with phoneme events in IPA,
collect samples and events through the synth callback, set voice and prosody parameters, list voices.
The library is process-global C state, so every call goes through one lock (`ENGINE_LOCK`).
Hand-written rather than taken from a wrapper package: the wrappers on PyPI either spawn the `espeak`
executable or drop the per-phoneme events, and we need both the events and the bundled library.
"""

from __future__ import annotations

import ctypes
import logging
import struct
import threading
from ctypes import CFUNCTYPE, POINTER, Structure, Union, c_char, c_char_p, c_int, c_short, c_ubyte, c_uint, c_void_p
from dataclasses import dataclass

import numpy as np

from avatar.errors import InputError, ModelError

log = logging.getLogger(__name__)

# speak_lib.h (API revision 12, espeak-ng 1.52) constants.
AUDIO_OUTPUT_SYNCHRONOUS = 2
INITIALIZE_PHONEME_EVENTS = 0x0001
INITIALIZE_PHONEME_IPA = 0x0002
INITIALIZE_DONT_EXIT = 0x8000
CHARS_UTF8 = 1
POS_CHARACTER = 1
EVENT_LIST_TERMINATED, EVENT_WORD, EVENT_SENTENCE, EVENT_MARK, EVENT_PLAY, EVENT_END, EVENT_MSG_TERMINATED, \
    EVENT_PHONEME, EVENT_SAMPLERATE = range(9)
PARAM_RATE, PARAM_VOLUME, PARAM_PITCH, PARAM_RANGE = 1, 2, 3, 4
PARAM_PUNCTUATION, PARAM_CAPITALS, PARAM_WORDGAP, PARAM_INTONATION = 5, 6, 7, 9
EE_OK, EE_NOT_FOUND = 0, 2

#: Parameter limits the engine accepts (speak_lib.h): rate in words per minute, the rest 0..100 (volume 0..200).
RATE_MIN, RATE_MAX = 80, 450
DEFAULT_RATE = 175


class _EventId(Union):
    _fields_ = [("number", c_int), ("name", c_char_p), ("string", c_char * 8)]


class _Event(Structure):
    _fields_ = [
        ("type", c_int),
        ("unique_identifier", c_uint),
        ("text_position", c_int),  # 1-based character position in the input
        ("length", c_int),  # characters in the word
        ("audio_position", c_int),  # milliseconds
        ("sample", c_int),  # sample index in the output
        ("user_data", c_void_p),
        ("id", _EventId),
    ]


class _Voice(Structure):
    _fields_ = [
        ("name", c_char_p),
        ("languages", c_void_p),  # (priority byte, language string)* terminated by an empty string
        ("identifier", c_char_p),
        ("gender", c_ubyte),
        ("age", c_ubyte),
        ("variant", c_ubyte),
        ("xx1", c_ubyte),
        ("score", c_int),
        ("spare", c_void_p),
    ]


#: eSpeak NG seeds its own random generator (breath noise of variants like +f3) from the clock; we fix it.
_RAND_SEED = 12345
#: Wave-generator statics in wavegen.c that run on from one synthesis to the next (the pitch-flutter
#: oscillator index, glottal phase and sign, the echo buffer, the automatic gain, the noise generator's
#: seed). Re-initialising the library does not reset them, so the same text would come out a few samples
#: different on every call. All are plain integers or integer arrays (no pointers): we save them once after
#: initialisation and put them back before each synthesis, which makes the output repeatable.
_WAVEGEN_STATE = {
    "Flutter_ix": 4, "h_switch_sign": 4, "wavephase": 4, "cycle_count": 4, "agc": 4, "amplitude2": 4,
    "maxh": 4, "maxh2": 4, "echo_head": 4, "echo_tail": 4, "espeak_rand_state": 4, "echo_buf": 0,
}


def _elf_symbols(path: str) -> dict[str, tuple[int, int]]:
    """Local and global symbols (name -> (offset, size)) from an ELF64 shared library's .symtab, or {}."""
    try:
        data = open(path, "rb").read()
        if data[:4] != b"\x7fELF" or data[4] != 2:
            return {}
        shoff, = struct.unpack_from("<Q", data, 0x28)
        shentsize, shnum = struct.unpack_from("<HH", data, 0x3A)
        secs = [struct.unpack_from("<IIQQQQIIQQ", data, shoff + i * shentsize) for i in range(shnum)]
        out: dict[str, tuple[int, int]] = {}
        for sec in secs:
            if sec[1] != 2:  # SHT_SYMTAB (absent when the library is stripped)
                continue
            strtab = secs[sec[6]][4]
            for off in range(sec[4], sec[4] + sec[5], 24):
                name_off, _info, _other, _shndx, value, size = struct.unpack_from("<IBBHQQ", data, off)
                end = data.index(b"\0", strtab + name_off)
                out[data[strtab + name_off:end].decode("ascii", "replace")] = (value, size)
        return out
    except (OSError, struct.error, ValueError, IndexError):
        return {}


_CALLBACK = CFUNCTYPE(c_int, POINTER(c_short), c_int, POINTER(_Event))

#: Every engine call holds this lock: eSpeak NG keeps one global state per process.
ENGINE_LOCK = threading.RLock()


@dataclass(frozen=True)
class RawEvent:
    """One engine event: kind ('word', 'phoneme', 'sentence', 'end'), sample index, text span, phoneme."""

    kind: str
    sample: int
    text_position: int = 0
    length: int = 0
    phoneme: str = ""


@dataclass(frozen=True)
class VoiceInfo:
    """One eSpeak NG voice: its file identifier (what --voice takes), display name, languages, gender."""

    identifier: str
    name: str
    languages: tuple[str, ...]
    gender: str
    variant: bool = False


class _Engine:
    """The initialised library; one per process (see engine())."""

    def __init__(self) -> None:
        try:
            import espeakng_loader
        except ImportError as exc:  # declared dependency; only a broken install gets here
            raise ModelError("the espeak backend needs the `espeakng-loader` package (pip install espeakng-loader)") from exc
        path = espeakng_loader.get_library_path()
        data = espeakng_loader.get_data_path()
        try:
            self.lib = ctypes.CDLL(path)
        except OSError as exc:
            raise ModelError(f"cannot load the eSpeak NG library at {path}: {exc}") from exc
        lib = self.lib
        lib.espeak_Initialize.argtypes = [c_int, c_int, c_char_p, c_int]
        lib.espeak_Initialize.restype = c_int
        lib.espeak_SetSynthCallback.argtypes = [_CALLBACK]
        lib.espeak_SetSynthCallback.restype = None
        lib.espeak_Synth.argtypes = [c_void_p, ctypes.c_size_t, c_uint, c_int, c_uint, c_uint, POINTER(c_uint), c_void_p]
        lib.espeak_Synth.restype = c_int
        lib.espeak_SetParameter.argtypes = [c_int, c_int, c_int]
        lib.espeak_SetParameter.restype = c_int
        lib.espeak_GetParameter.argtypes = [c_int, c_int]
        lib.espeak_GetParameter.restype = c_int
        lib.espeak_SetVoiceByName.argtypes = [c_char_p]
        lib.espeak_SetVoiceByName.restype = c_int
        lib.espeak_ListVoices.argtypes = [POINTER(_Voice)]
        lib.espeak_ListVoices.restype = POINTER(POINTER(_Voice))
        lib.espeak_TextToPhonemes.argtypes = [POINTER(c_void_p), c_int, c_int]
        lib.espeak_TextToPhonemes.restype = c_char_p
        self.sample_rate = lib.espeak_Initialize(
            AUDIO_OUTPUT_SYNCHRONOUS, 100, data.encode(), INITIALIZE_PHONEME_EVENTS | INITIALIZE_PHONEME_IPA | INITIALIZE_DONT_EXIT
        )
        if self.sample_rate <= 0:
            raise ModelError(f"eSpeak NG failed to initialise (data at {data})")
        # The callback object must outlive every synthesis: keep a reference on the engine.
        self._chunks: list[np.ndarray] = []
        self._events: list[RawEvent] = []
        self._cb = _CALLBACK(self._on_audio)
        lib.espeak_SetSynthCallback(self._cb)
        self._voices: list[VoiceInfo] | None = None
        self._current_voice: str | None = None
        self._state = self._snapshot_state(path)
        log.info("eSpeak NG initialised at %d Hz from %s", self.sample_rate, path)

    def _snapshot_state(self, path: str) -> list[tuple[int, bytes]]:
        """Addresses and initial bytes of the wave generator's carried-over statics (see _WAVEGEN_STATE)."""
        syms = _elf_symbols(path)
        anchor = syms.get("espeak_Initialize")
        if anchor is None:
            log.warning("eSpeak NG library has no symbol table: repeated synthesis may differ by a few samples")
            return []
        base = ctypes.cast(self.lib.espeak_Initialize, c_void_p).value - anchor[0]
        state = []
        for name, (value, size) in syms.items():
            want = _WAVEGEN_STATE.get(name.split(".")[0])
            if want is None or size == 0 or (want and size != want):
                continue
            initial = ctypes.string_at(base + value, size)
            if name.split(".")[0] == "espeak_rand_state":  # seeded from the clock at start-up: fix it instead
                initial = struct.pack("<I", _RAND_SEED)
            state.append((base + value, initial))
        if len(state) < len(_WAVEGEN_STATE):
            log.warning("eSpeak NG: found %d of %d wave-generator statics; output may not repeat exactly",
                        len(state), len(_WAVEGEN_STATE))
        return state

    def _reset_state(self) -> None:
        for addr, initial in self._state:
            ctypes.memmove(addr, initial, len(initial))

    def _on_audio(self, wav, numsamples, events) -> int:  # noqa: ANN001 - ctypes pointers
        if numsamples > 0 and wav:
            self._chunks.append(np.ctypeslib.as_array(wav, shape=(numsamples,)).copy())
        i = 0
        names = {EVENT_WORD: "word", EVENT_PHONEME: "phoneme", EVENT_SENTENCE: "sentence", EVENT_END: "end",
                 EVENT_MSG_TERMINATED: "end"}
        while True:
            ev = events[i]
            if ev.type == EVENT_LIST_TERMINATED:
                break
            kind = names.get(ev.type)
            if kind is not None:
                ph = ev.id.string.decode("utf-8", "replace") if ev.type == EVENT_PHONEME else ""
                self._events.append(RawEvent(kind, int(ev.sample), int(ev.text_position), int(ev.length), ph))
            i += 1
        return 0

    # -- voices ------------------------------------------------------------------------------------------

    def voices(self) -> list[VoiceInfo]:
        """Every voice and variant the bundled data holds."""
        with ENGINE_LOCK:
            if self._voices is None:
                out = self._list(None, variant=False)
                spec = _Voice()
                keep = ctypes.c_char_p(b"variant")  # keep the bytes alive while the call reads them
                spec.languages = ctypes.cast(keep, c_void_p).value
                out += self._list(spec, variant=True)
                del keep
                self._voices = out
            return list(self._voices)

    def _list(self, spec: _Voice | None, variant: bool) -> list[VoiceInfo]:
        arr = self.lib.espeak_ListVoices(ctypes.byref(spec) if spec is not None else None)
        out: list[VoiceInfo] = []
        i = 0
        while arr and arr[i]:
            v = arr[i].contents
            ident = (v.identifier or b"").decode("utf-8", "replace")
            name = (v.name or b"").decode("utf-8", "replace")
            langs = _parse_languages(v.languages)
            gender = {1: "male", 2: "female"}.get(int(v.gender), "")
            if variant:
                ident = ident.split("/")[-1]
            out.append(VoiceInfo(ident, name, tuple(langs), gender, variant))
            i += 1
        return out

    def set_voice(self, name: str) -> None:
        """Select a voice by file identifier, name or language, with an optional '+variant'."""
        with ENGINE_LOCK:
            if name == self._current_voice:
                return
            rc = self.lib.espeak_SetVoiceByName(name.encode("utf-8"))
            if rc != EE_OK:
                # eSpeak NG matches names and voice files only: 'en-gb' is a language of the voice file 'gmw/en'
                # (and 'zh' of 'sit/cmn'), so a language code with no file of its name is resolved here.
                base, plus, variant = name.partition("+")
                ident = self.voice_for_language(base)
                if ident is not None:
                    rc = self.lib.espeak_SetVoiceByName((ident + plus + variant).encode("utf-8"))
            if rc != EE_OK:
                self._current_voice = None
                raise InputError(f"unknown espeak voice {name!r}; `avatar tts --list-voices` lists them")
            self._current_voice = name

    def voice_for_language(self, language: str) -> str | None:
        """The voice file that speaks `language` (a code such as 'en-gb'), preferring voices that list it first."""
        lang = language.strip().lower()
        best: tuple[int, int] | None = None
        ident = None
        for order, v in enumerate(self.voices()):
            langs = [x.lower() for x in v.languages]
            if v.variant or lang not in langs:
                continue
            key = (langs.index(lang), order)
            if best is None or key < best:
                best, ident = key, v.identifier
        return ident

    # -- synthesis ---------------------------------------------------------------------------------------

    def synth(self, text: str, rate: int, pitch: int, range_: int, volume: int) -> tuple[np.ndarray, list[RawEvent]]:
        """Synthesise plain UTF-8 text with the current voice; returns int16 samples and the events."""
        data = text.encode("utf-8") + b"\0"
        buf = ctypes.create_string_buffer(data, len(data))
        with ENGINE_LOCK:
            for param, value in ((PARAM_RATE, rate), (PARAM_PITCH, pitch), (PARAM_RANGE, range_), (PARAM_VOLUME, volume)):
                self.lib.espeak_SetParameter(param, int(value), 0)
            # Punctuation is not spoken and capitals get no beep: the text reads as prose.
            self.lib.espeak_SetParameter(PARAM_PUNCTUATION, 0, 0)
            self.lib.espeak_SetParameter(PARAM_CAPITALS, 0, 0)
            self._chunks, self._events = [], []
            if self._current_voice is not None:
                # Selecting the voice again resets what a synthesis leaves in it (the klatt and breath state of
                # variants such as +f3 or +m2), so a text sounds the same whatever was said before it.
                self.lib.espeak_SetVoiceByName(self._current_voice.encode("utf-8"))
            self._reset_state()
            # Flags: UTF-8 only. No espeakSSML and no espeakPHONEMES, so '<tags>' and '[[phonemes]]' stay text.
            rc = self.lib.espeak_Synth(buf, len(data), 0, POS_CHARACTER, 0, CHARS_UTF8, None, None)
            chunks, events = self._chunks, self._events
            self._chunks, self._events = [], []
        if rc != EE_OK:
            raise ModelError(f"eSpeak NG synthesis failed (code {rc})")
        audio = np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.int16)
        return audio, events


    def text_to_phonemes(self, text: str, voice: str) -> str:
        """IPA for `text` in `voice` (clause by clause, words separated by spaces), as coqui's phonemizer gives."""
        data = text.encode("utf-8") + b"\0"
        buf = ctypes.create_string_buffer(data, len(data))
        ptr = c_void_p(ctypes.addressof(buf))
        out: list[str] = []
        with ENGINE_LOCK:
            self.set_voice(voice)
            for _ in range(len(data) + 1):  # one clause per call; the engine advances ptr, NULL at the end
                if not ptr.value:
                    break
                res = self.lib.espeak_TextToPhonemes(ctypes.byref(ptr), CHARS_UTF8, 0x02)
                if res:
                    out.append(res.decode("utf-8", "replace").strip())
        return " ".join(x for x in out if x)


def _parse_languages(ptr: int | None) -> list[str]:
    """Decode the (priority byte, NUL-terminated name)* list that ends with an empty name."""
    if not ptr:
        return []
    out: list[str] = []
    off = 0
    for _ in range(64):
        prio = ctypes.c_ubyte.from_address(ptr + off).value
        if prio == 0:
            break
        s = ctypes.string_at(ptr + off + 1)
        if not s:
            break
        out.append(s.decode("utf-8", "replace"))
        off += 1 + len(s) + 1
    return out


_engine: _Engine | None = None


def engine() -> _Engine:
    """The process-wide initialised engine (created on first use)."""
    global _engine
    with ENGINE_LOCK:
        if _engine is None:
            _engine = _Engine()
        return _engine
