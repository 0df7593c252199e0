"""The neural backend: coqui-tts models (VITS, XTTS v2) from a folder the user places under weights/.

coqui-tts imports only beside torch 2.11 + torchaudio 2.11 + torchcodec, which cannot share the main venv
(torch 2.13), so it runs from `.venv-coqui` (made by `tts/coqui_setup.sh`). This module imports cleanly
without coqui: the library loads on first use and a missing one gives a ModelError naming the set-up command.

A model folder holds `config.json` (coqui's own config) and `model.safetensors`. A folder with only a coqui
`.pth` checkpoint is converted once, with torch.load(weights_only=True) (the restricted unpickler, which
refuses arbitrary objects), into `model.safetensors` beside it; nothing is ever unpickled unrestricted.

Emotion:
- VITS: speaking rate through the model's length scale (the durations it predicts scale with it, so the
  timeline stays exact), then the same WORLD reshaping as the espeak backend for F0 level, range, contour,
  boundary, tilt and breathiness, and a gain for loudness. Timeline: the duration predictor's per-token frame
  counts (outputs["durations"]) x hop length, token by token.
- XTTS v2: a reference clip chosen by VAD (nearest label in avatar.emotion.labels among the clips in the
  folder's `references/`, named by label, e.g. `happy.wav`), plus XTTS's speed control and a gain. XTTS has
  no durations; the timeline is estimated: the espeak backend's phoneme sequence and relative durations for
  the same sentence, stretched linearly over the XTTS audio's active-speech span (first to last frame within
  40 dB of the loudest). It is an estimate, good for lip sync, not for phonetics.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import logging
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from avatar.errors import InputError, ModelError
from avatar.tts.base import VADInput, synthesize_sentences
from avatar.tts.prosody import prosody_for
from avatar.tts.visemes import viseme_for
from avatar.tts.world import WorldEdit, WorldSettings, express
from avatar.types import VAD, Phoneme, Speech, Timeline, Word
from avatar.weights import weights_root

log = logging.getLogger(__name__)

SETUP_COMMAND = "tts/coqui_setup.sh"
#: The shipped weights (the registry's root: the checkout's weights/ or an installed wheel's avatar/assets).
WEIGHTS_DIR = weights_root()
#: WORLD for coqui's voices (world.express): eSpeak NG's fast settings (joe's keep_unvoiced and small-edit skip are
#: untested on these voices: coqui runs in its own venv, outside the bench).
WORLD = WorldSettings(frame_period_ms=10.0, aperiodicity="fast", f0_method="dio", keep_unvoiced=False, min_st=0.0)
_PREFIX_MARKS = set("ˈˌ")
_SUFFIX_MARKS = set("ːˑʰʲʷˠˤ˞\u0303\u0329")
_PUNCT = set("!'(),-.:;?\"¡¿«»“”‘’…—–")


def require_coqui() -> Any:
    """Import coqui-tts (the `TTS` package), or raise a ModelError naming the set-up command."""
    try:
        import TTS

        importlib.import_module("TTS.tts.models.vits")  # the model we run: import errors show here, not mid-run
    except Exception as exc:  # noqa: BLE001 - ImportError, or a torch/torchaudio mismatch raising at import time
        raise ModelError(
            f"coqui backend needs the coqui venv: run {SETUP_COMMAND} (creates .venv-coqui), then use "
            f".venv-coqui/bin/avatar tts ... --backend coqui ({type(exc).__name__}: {exc})"
        ) from None
    import TTS

    return TTS


def resolve_model_dir(voice: str | os.PathLike[str] | None) -> Path:
    """A model folder from --voice: a path, or a name under weights/; it must hold config.json."""
    if voice is None or not str(voice).strip():
        raise InputError("the coqui backend needs --voice MODEL_FOLDER (a folder with config.json and "
                         "model.safetensors, e.g. weights/my-vits)")
    p = Path(str(voice)).expanduser()
    if not p.exists() and not p.is_absolute() and (WEIGHTS_DIR / p).exists():
        p = WEIGHTS_DIR / p
    if not p.is_dir():
        raise InputError(f"coqui model folder not found: {voice}")
    if not (p / "config.json").is_file():
        raise InputError(f"{p} has no config.json (a coqui model folder needs config.json + model.safetensors)")
    return p


def checkpoint_to_safetensors(folder: Path) -> Path:
    """Return folder/model.safetensors, converting a coqui .pth there with the restricted unpickler if needed."""
    target = folder / "model.safetensors"
    if target.is_file():
        return target
    candidates = [folder / n for n in ("model.pth", "best_model.pth", "checkpoint.pth", "model_file.pth")]
    candidates += sorted(folder.glob("*.pth"))
    src = next((c for c in candidates if c.is_file() and not c.name.startswith("speakers")), None)
    if src is None:
        raise ModelError(f"{folder} has no model.safetensors (and no coqui .pth checkpoint to convert)")
    import torch
    from safetensors.torch import save_file

    from avatar.io import atomic_path

    log.warning("converting %s to model.safetensors (restricted unpickler, weights only)", src)
    try:
        state = torch.load(str(src), map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - the restricted unpickler refused something: we do not go further
        raise ModelError(f"{src.name} holds more than plain tensors and will not be unpickled ({exc}); "
                         "convert it to model.safetensors where you trust it") from None
    if isinstance(state, dict) and isinstance(state.get("model"), dict):
        state = state["model"]
    tensors = {k: v.contiguous() for k, v in state.items() if isinstance(v, torch.Tensor)}
    if not tensors:
        raise ModelError(f"{src.name} holds no tensors")
    with atomic_path(target, suffix=".part.safetensors") as tmp:
        save_file(tensors, str(tmp), metadata={"converted_from": src.name})
    return target


def _load_state(path: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(path), device="cpu")


class _Loaded:
    """One loaded model: its kind, the coqui model object, config and sample rate."""

    def __init__(self, folder: Path) -> None:
        require_coqui()
        from TTS.config import load_config

        self.folder = folder
        self.config = load_config(str(folder / "config.json"))
        self.kind = str(getattr(self.config, "model", "")).lower()
        weights = checkpoint_to_safetensors(folder)
        state = _load_state(weights)
        if self.kind == "vits":
            from TTS.tts.models.vits import Vits

            with _embedded_espeak():
                model = Vits.init_from_config(self.config)
            state = {k: v for k, v in state.items() if "speaker_encoder" not in k}
            missing, unexpected = model.load_state_dict(state, strict=False)
            if [m for m in missing if not m.startswith("disc.")] or unexpected:
                raise ModelError(f"{weights} does not match config.json (missing {missing[:3]}, unexpected {unexpected[:3]})")
            self.sample_rate = int(self.config.audio.sample_rate)
            self.hop = int(self.config.audio.hop_length)
        elif self.kind == "xtts":
            from TTS.tts.layers.xtts.tokenizer import VoiceBpeTokenizer
            from TTS.tts.models.xtts import Xtts

            model = Xtts.init_from_config(self.config)
            vocab = folder / "vocab.json"
            if not vocab.is_file():
                raise ModelError(f"{folder} needs the XTTS vocab.json beside config.json")
            model.tokenizer = VoiceBpeTokenizer(vocab_file=str(vocab))
            model.init_models()
            drop = ("torch_mel_spectrogram_style_encoder", "torch_mel_spectrogram_dvae", "dvae")
            state = {k.removeprefix("xtts."): v for k, v in state.items()}
            state = {k: v for k, v in state.items() if k.split(".")[0] not in drop}
            try:
                model.load_state_dict(state, strict=True)
            except RuntimeError:
                model.gpt.init_gpt_for_inference(kv_cache=model.args.kv_cache)
                model.load_state_dict(state, strict=True)
            model.gpt.init_gpt_for_inference(kv_cache=model.args.kv_cache)
            self.sample_rate = int(self.config.model_args.output_sample_rate if hasattr(self.config, "model_args")
                                   else 24000)
            self.hop = 0
        else:
            raise ModelError(f"{folder}: coqui model type {self.kind!r} is not supported (vits or xtts)")
        model.eval()
        self.model = model
        self.lock = threading.Lock()


@contextlib.contextmanager
def _embedded_espeak() -> Iterator[None]:
    """While loading a model, coqui's `espeak` phonemizer is ours: eSpeak NG from espeakng-loader via ctypes.

    coqui's own espeak phonemizer runs the `espeak-ng` executable, which we do not require; the IPA is the
    same (espeak_TextToPhonemes in IPA mode, stress marks included), so phoneme VITS models load unchanged.
    """
    from TTS.tts.utils.text import tokenizer as tok_mod
    from TTS.tts.utils.text.phonemizers.base import BasePhonemizer
    from TTS.tts.utils.text.punctuation import Punctuation

    from avatar.tts.espeak_lib import engine

    class EmbeddedEspeak(BasePhonemizer):
        """coqui phonemizer over the embedded eSpeak NG library."""

        def __init__(self, language: str, punctuations: str = Punctuation.default_puncs(), keep_puncs: bool = True,
                     **_: Any) -> None:
            super().__init__(language, punctuations=punctuations, keep_puncs=keep_puncs)

        @staticmethod
        def name() -> str:
            return "espeak"

        @classmethod
        def is_available(cls) -> bool:
            return True

        def version(self) -> str:
            return "espeak-ng (espeakng-loader)"

        @staticmethod
        def supported_languages() -> dict:
            out = {}
            for v in engine().voices():
                if not v.variant:
                    out[v.identifier] = v.name
                    out.update({lang: v.name for lang in v.languages})
            return out

        def _phonemize(self, text: str, separator: str) -> str:
            return engine().text_to_phonemes(text, self.language)

    original = tok_mod.get_phonemizer_by_name

    def pick(name: str, **kwargs: Any):  # noqa: ANN202 - coqui's BasePhonemizer
        if name in ("espeak", "espeak-ng", "espeak_ng"):
            return EmbeddedEspeak(**kwargs)
        return original(name, **kwargs)

    tok_mod.get_phonemizer_by_name = pick
    try:
        yield
    finally:
        tok_mod.get_phonemizer_by_name = original


_cache: dict[Path, _Loaded] = {}
_cache_lock = threading.Lock()


def load_model(folder: Path) -> _Loaded:
    """Load (once per process) the model in `folder`."""
    key = folder.resolve()
    with _cache_lock:
        if key not in _cache:
            try:
                _cache[key] = _Loaded(key)
            except (ModelError, InputError):
                raise
            except Exception as exc:  # a config or checkpoint coqui cannot use: one clear message, no traceback
                raise ModelError(f"cannot load the coqui model in {key}: {type(exc).__name__}: {exc}") from exc
        return _cache[key]


def tokens_to_timeline(symbols: list[str], frames: np.ndarray, hop: int, sr: int, n_samples: int,
                       words_hint: list[str], graphemes: bool) -> Timeline:
    """Timeline from per-token frame durations: blanks extend the token before them; spaces split words."""
    ends = np.cumsum(frames.astype(np.int64)) * hop
    starts = ends - frames.astype(np.int64) * hop
    phonemes: list[Phoneme] = []
    groups: list[list[Phoneme]] = [[]]
    pending, pending_start = "", None  # a stress mark waiting for its sound
    for sym, a, b in zip(symbols, starts, ends):
        a, b = min(int(a), n_samples), min(int(b), n_samples)
        if sym is None:  # blank or pad: its time belongs to the sound before it
            if phonemes and b > a:
                phonemes[-1] = phonemes[-1].model_copy(update={"end": b / sr})
            continue
        if sym == " " or sym in _PUNCT:
            if groups[-1]:
                groups.append([])
            if b > a and phonemes and phonemes[-1].phoneme == "_" and abs(phonemes[-1].end - a / sr) < 1e-9:
                phonemes[-1] = phonemes[-1].model_copy(update={"end": b / sr})  # ", " is one pause
            elif b > a:
                phonemes.append(Phoneme(phoneme="_", viseme="sil", start=a / sr, end=b / sr))
            continue
        if sym in _PREFIX_MARKS:  # stress: belongs to the sound after it
            pending = pending + sym if b > a or pending else sym
            pending_start = a if pending_start is None else pending_start
            continue
        if sym in _SUFFIX_MARKS and phonemes and phonemes[-1].viseme != "sil":
            phonemes[-1] = phonemes[-1].model_copy(update={"phoneme": phonemes[-1].phoneme + sym, "end": b / sr})
            if groups[-1]:
                groups[-1][-1] = phonemes[-1]
            continue
        if pending:
            sym, a, pending, pending_start = pending + sym, min(a, pending_start), "", None
        if b <= a:
            continue
        ph = Phoneme(phoneme=sym, viseme=viseme_for(sym, "graphemes" if graphemes else "ipa"), start=a / sr, end=b / sr)
        phonemes.append(ph)
        groups[-1].append(ph)
    groups = [g for g in groups if g]
    # Re-read each group's span from the final phoneme list (blanks may have extended its last phoneme).
    by_start = {p.start: p for p in phonemes}
    words: list[Word] = []
    use_hint = len(words_hint) == len(groups)
    for i, g in enumerate(groups):
        first, last = by_start.get(g[0].start, g[0]), by_start.get(g[-1].start, g[-1])
        text = words_hint[i] if use_hint else "".join(p.phoneme for p in g)
        words.append(Word(word=text, start=first.start, end=last.end))
    return Timeline(sample_rate=sr, duration=n_samples / sr, phonemes=phonemes, words=words)


class CoquiBackend:
    """coqui-tts VITS / XTTS v2 from a model folder (--voice), with VAD-driven prosody."""

    name = "coqui"

    def __init__(self, world: WorldSettings = WORLD, language: str = "en", speaker: int = 0) -> None:
        """Check that coqui-tts imports (ModelError naming the set-up command otherwise).

        `world`: WORLD's settings; `language` is XTTS's language; `speaker` is the speaker index for
        multi-speaker VITS models.
        """
        require_coqui()
        self.world = world
        self.language = language
        self.speaker = int(speaker)

    def list_voices(self) -> list[str]:
        """Model folders under weights/ whose config.json is a coqui VITS or XTTS config."""
        out = []
        for cfg in sorted(WEIGHTS_DIR.glob("*/config.json")):
            try:
                kind = json.loads(cfg.read_text(encoding="utf-8")).get("model", "")
            except (OSError, ValueError):
                continue
            if str(kind).lower() in ("vits", "xtts"):
                out.append(str(cfg.parent))
        return out

    def synthesize(self, text: str, vad: VADInput = None, voice: str | None = None, seed: int = 0) -> Speech:
        """Speak `text` with the model in folder `voice`; same text, VAD, model and seed give the same audio."""
        loaded = load_model(resolve_model_dir(voice))

        def one(sentence: str, v: VAD) -> tuple[np.ndarray, Timeline]:
            if loaded.kind == "vits":
                return self._vits(loaded, sentence, v, seed)
            return self._xtts(loaded, sentence, v, seed)

        return synthesize_sentences(text, vad, loaded.sample_rate, one, gap_seconds=0.15)

    # -- VITS ------------------------------------------------------------------------------------------

    def _vits(self, m: _Loaded, sentence: str, vad: VAD, seed: int) -> tuple[np.ndarray, Timeline]:
        import torch

        p = prosody_for(vad)
        tok = m.model.tokenizer
        ids = tok.text_to_ids(sentence)
        if not ids:
            raise InputError(f"the model's alphabet cannot spell any of {sentence[:40]!r}")
        with m.lock:
            torch.manual_seed(int(seed))
            m.model.length_scale = 1.0 / p.rate  # durations shrink with rate; the timeline follows them
            x = torch.as_tensor(ids, dtype=torch.long)[None]
            aux: dict[str, Any] = {"x_lengths": torch.tensor([x.shape[1]])}
            n_speakers = int(getattr(m.model, "num_speakers", 0) or 0)
            if getattr(m.model.args, "use_speaker_embedding", False) and n_speakers > 0:
                if not 0 <= self.speaker < n_speakers:
                    raise InputError(f"speaker {self.speaker} is out of range: the model has {n_speakers} speakers")
                aux["speaker_ids"] = torch.tensor([self.speaker])
            with torch.inference_mode():
                out = m.model.inference(x, aux_input=aux)
            m.model.length_scale = 1.0
        audio = out["model_outputs"][0, 0].float().cpu().numpy()
        frames = out["durations"][0, 0].float().cpu().numpy()
        chars = tok.characters
        blank = {getattr(chars, "blank_id", None), getattr(chars, "pad_id", None)} - {None}
        symbols = [None if i in blank else chars.id_to_char(int(i)) for i in ids]
        n = int(frames.sum()) * m.hop
        audio = audio[:n] if audio.size >= n else np.concatenate([audio, np.zeros(n - audio.size, np.float32)])
        # Level and range relative to a neutral 4-semitone range; the model chooses the voice's own F0.
        edit = WorldEdit.from_prosody(p, f0_factor=p.f0_scale, range_factor=p.range_st / 4.0)
        audio = express(audio.astype(np.float32), m.sample_rate, edit, self.world)
        audio = _gain(audio, p.volume)
        words = [w.strip("".join(_PUNCT)) for w in sentence.split()]
        tl = tokens_to_timeline(symbols, frames, m.hop, m.sample_rate, audio.size, [w for w in words if w],
                                graphemes=not getattr(m.config, "use_phonemes", False))
        return audio, tl

    # -- XTTS v2 ---------------------------------------------------------------------------------------

    def _xtts(self, m: _Loaded, sentence: str, vad: VAD, seed: int) -> tuple[np.ndarray, Timeline]:
        import torch

        p = prosody_for(vad)
        ref = pick_reference(m.folder, vad)
        lang = self.language
        if lang not in getattr(m.config, "languages", [lang]):
            raise InputError(f"XTTS model in {m.folder} has no language {lang!r}; it has {m.config.languages}")
        with m.lock:
            torch.manual_seed(int(seed))
            with torch.inference_mode():
                gpt_latent, spk = _xtts_conditioning(m, ref)
                out = m.model.inference(sentence, lang, gpt_latent, spk, speed=float(np.clip(p.rate, 0.5, 2.0)),
                                        do_sample=True, temperature=0.7)
        audio = _gain(np.asarray(out["wav"], dtype=np.float32).reshape(-1), p.volume)
        return audio, estimated_timeline(sentence, audio, m.sample_rate)


def _xtts_conditioning(m: _Loaded, ref: Path) -> tuple[Any, Any]:
    """XTTS's GPT latents and speaker embedding for one reference clip (cached per clip).

    The same computation as Xtts.get_conditioning_latents, but the clip is read with avatar.audio.load_audio
    (soundfile / PyAV) instead of torchcodec, which needs the system's FFmpeg libraries.
    """
    import torch

    from avatar.audio import load_audio

    cache = m.__dict__.setdefault("cond_cache", {})
    if ref not in cache:
        sr = 22050
        audio, _ = load_audio(ref, target_sr=sr)
        t = torch.from_numpy(audio[: sr * 30].copy())[None]
        spk = m.model.get_speaker_embedding(t, sr)
        gpt = m.model.get_gpt_cond_latents(t, sr, length=6, chunk_length=6)
        cache[ref] = (gpt, spk)
    return cache[ref]


def _gain(audio: np.ndarray, volume: float) -> np.ndarray:
    y = audio * np.float32(volume)
    peak = float(np.max(np.abs(y))) if y.size else 0.0
    return y * np.float32(0.99 / peak) if peak > 0.99 else y


def pick_reference(folder: Path, vad: VAD) -> Path:
    """The reference clip in folder/references/ whose label (file stem) is nearest to `vad` in VAD space."""
    from avatar.emotion.labels import LABEL_VAD

    refs = sorted((folder / "references").glob("*.wav")) if (folder / "references").is_dir() else []
    if not refs:
        raise ModelError(f"{folder} needs references/<label>.wav clips (e.g. neutral.wav, happy.wav) for XTTS")
    scored = []
    for r in refs:
        label = r.stem.lower()
        point = LABEL_VAD.get(label)
        if point is not None:
            scored.append((vad.distance(point if isinstance(point, VAD) else VAD.from_array(point)), r.name, r))
    if not scored:
        return refs[0]
    return min(scored)[2]


def estimated_timeline(sentence: str, audio: np.ndarray, sr: int) -> Timeline:
    """Estimate a timeline for audio without durations: espeak's phonemes stretched over the speech span."""
    from avatar.tts.espeak import EspeakBackend

    ref_audio, ref_tl = EspeakBackend().synthesize_sentence(sentence, VAD.neutral())
    frame = max(1, sr // 100)
    n = audio.size // frame
    if n == 0:
        return Timeline(sample_rate=sr, duration=audio.size / sr)
    rms = np.sqrt(np.mean(audio[: n * frame].reshape(n, frame) ** 2, axis=1) + 1e-12)
    active = np.flatnonzero(20 * np.log10(rms / rms.max()) > -40)
    a, b = active[0] * frame / sr, (active[-1] + 1) * frame / sr
    spoken = [ph for ph in ref_tl.phonemes if ph.viseme != "sil"]
    if not spoken:
        return Timeline(sample_rate=sr, duration=audio.size / sr)
    r0, r1 = spoken[0].start, max(ph.end for ph in spoken)
    k = (b - a) / max(1e-6, r1 - r0)

    def warp(t: float) -> float:
        return float(np.clip(a + (t - r0) * k, 0.0, audio.size / sr))

    phonemes = [ph.model_copy(update={"start": warp(ph.start), "end": warp(ph.end)}) for ph in ref_tl.phonemes
                if ph.end > r0 and ph.start < r1]
    words = [w.model_copy(update={"start": warp(w.start), "end": warp(w.end)}) for w in ref_tl.words]
    return Timeline(sample_rate=sr, duration=audio.size / sr, phonemes=phonemes, words=words)
