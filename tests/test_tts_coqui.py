"""The coqui-tts backend: clean import without coqui, safe checkpoint conversion, and (in .venv-coqui) a tiny
randomly initialised VITS and XTTS v2 built, saved, loaded through our backend and synthesised.

The end-to-end test needs coqui-tts, which lives in its own venv:
    tts/coqui_setup.sh && .venv-coqui/bin/python -m pytest tests/test_tts_coqui.py -q
"""

from __future__ import annotations

import importlib.util
import json
import pickle

import numpy as np
import pytest

from avatar.errors import ModelError
from avatar.types import VAD, VISEMES

HAVE_COQUI = importlib.util.find_spec("TTS") is not None


def test_backend_module_imports_without_coqui():
    from avatar.tts import coqui, get_backend

    assert coqui.SETUP_COMMAND == "tts/coqui_setup.sh"
    if HAVE_COQUI:
        assert get_backend("coqui").name == "coqui"
    else:
        with pytest.raises(ModelError, match="coqui backend needs the coqui venv: run tts/coqui_setup.sh"):
            get_backend("coqui")


def test_pth_is_converted_with_the_restricted_unpickler(tmp_path):
    import torch
    from safetensors.torch import load_file

    from avatar.tts.coqui import checkpoint_to_safetensors

    good = tmp_path / "good"
    good.mkdir()
    torch.save({"model": {"w": torch.arange(6.0).reshape(2, 3)}, "step": 7, "config": {"model": "vits"}},
               good / "model.pth")
    out = checkpoint_to_safetensors(good)
    assert out.name == "model.safetensors" and torch.equal(load_file(str(out))["w"], torch.arange(6.0).reshape(2, 3))

    class Payload:  # any class is refused by weights_only=True; a real attack would run code here
        def __reduce__(self):
            return (print, ("unpickled!",))

    bad = tmp_path / "bad"
    bad.mkdir()
    with open(bad / "model.pth", "wb") as f:
        pickle.dump({"model": Payload()}, f)
    with pytest.raises(ModelError, match="will not be unpickled"):
        checkpoint_to_safetensors(bad)
    assert not (bad / "model.safetensors").exists()


def _tiny_vits(folder):
    """Build and save a tiny random VITS (characters, no phonemizer): config.json + model.safetensors."""
    import torch
    from safetensors.torch import save_file
    from TTS.config.shared_configs import BaseAudioConfig
    from TTS.tts.configs.shared_configs import CharactersConfig
    from TTS.tts.configs.vits_config import VitsArgs, VitsConfig
    from TTS.tts.models.vits import Vits

    torch.manual_seed(0)
    args = VitsArgs(hidden_channels=16, hidden_channels_ffn_text_encoder=32, num_heads_text_encoder=2,
                    num_layers_text_encoder=1, num_layers_flow=1, num_layers_posterior_encoder=1,
                    kernel_size_text_encoder=3, resblock_kernel_sizes_decoder=[3], resblock_dilation_sizes_decoder=[[1, 3, 5]],
                    upsample_rates_decoder=[8, 8, 2, 2], upsample_kernel_sizes_decoder=[16, 16, 4, 4],
                    upsample_initial_channel_decoder=32, use_sdp=False, init_discriminator=False)
    cfg = VitsConfig(model_args=args, audio=BaseAudioConfig(sample_rate=22050, hop_length=256, win_length=1024,
                                                           fft_size=1024),
                     use_phonemes=False, add_blank=True, text_cleaner="basic_cleaners",
                     characters=CharactersConfig(characters_class="TTS.tts.models.vits.VitsCharacters",
                                                 characters="abcdefghijklmnopqrstuvwxyz", punctuations="!'(),-.:;? ",
                                                 pad="<PAD>", blank="<BLNK>", eos=None, bos=None))
    model = Vits.init_from_config(cfg)
    folder.mkdir(parents=True, exist_ok=True)
    cfg.save_json(str(folder / "config.json"))
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(folder / "model.safetensors"))
    return folder


def _tiny_xtts(folder):
    """Build and save a tiny random XTTS v2: config.json, model.safetensors, a character vocab.json, references."""
    import soundfile as sf
    import torch
    from safetensors.torch import save_file
    from tokenizers import Tokenizer, models
    from TTS.tts.configs.xtts_config import XttsArgs, XttsConfig
    from TTS.tts.layers.xtts.tokenizer import VoiceBpeTokenizer
    from TTS.tts.models.xtts import Xtts

    torch.manual_seed(0)
    folder.mkdir(parents=True, exist_ok=True)
    specials = ["[STOP]", "[UNK]", "[SPACE]", "[START]", "[en]"]
    vocab = {t: i for i, t in enumerate(specials + list("abcdefghijklmnopqrstuvwxyz'.,!?-"))}
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token="[UNK]"))
    tok.add_special_tokens(specials)
    tok.save(str(folder / "vocab.json"))
    args = XttsArgs(gpt_layers=1, gpt_n_model_channels=64, gpt_n_heads=2, gpt_max_audio_tokens=40,
                    gpt_max_text_tokens=200, gpt_num_audio_tokens=130, gpt_start_audio_token=128,
                    gpt_stop_audio_token=129, decoder_input_dim=64, gpt_use_perceiver_resampler=True)
    cfg = XttsConfig(model_args=args, languages=["en"])
    model = Xtts.init_from_config(cfg)
    model.tokenizer = VoiceBpeTokenizer(vocab_file=str(folder / "vocab.json"))
    model.init_models()
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(folder / "model.safetensors"))
    cfg.save_json(str(folder / "config.json"))
    (folder / "references").mkdir()
    sr, t = 22050, np.arange(3 * 22050) / 22050
    for i, label in enumerate(["neutral", "happy", "sad", "angry"]):
        wave = 0.2 * np.sign(np.sin(2 * np.pi * (110 + 30 * i) * t)) * (0.5 + 0.5 * np.sin(2 * np.pi * 3 * t))
        sf.write(str(folder / "references" / f"{label}.wav"), wave.astype(np.float32), sr)
    return folder


@pytest.mark.skipif(not HAVE_COQUI, reason="needs coqui-tts in the coqui venv: run tts/coqui_setup.sh, then "
                                           ".venv-coqui/bin/python -m pytest tests/test_tts_coqui.py")
def test_tiny_models_end_to_end(tmp_path):
    from avatar.tts import get_backend

    folder = _tiny_vits(tmp_path / "tiny-vits")
    assert json.loads((folder / "config.json").read_text())["model"] == "vits"
    tts = get_backend("coqui")
    text = "hello there. bob made a map!"
    calm = tts.synthesize(text, VAD(0, -0.8, 0), voice=str(folder), seed=1)
    fast = tts.synthesize(text, VAD(0, 0.8, 0), voice=str(folder), seed=1)
    again = tts.synthesize(text, VAD(0, -0.8, 0), voice=str(folder), seed=1)
    assert np.array_equal(calm.audio, again.audio)  # same seed, same audio
    for sp in (calm, fast):
        assert sp.sample_rate == 22050 and sp.audio.size > 0 and np.isfinite(sp.audio).all()
        tl = sp.timeline
        assert tl.duration == pytest.approx(sp.duration, abs=1e-6)
        assert [w.word for w in tl.words] == ["hello", "there", "bob", "made", "a", "map"]
        assert all(p.viseme in VISEMES for p in tl.phonemes)
        assert [p.phoneme for p in tl.phonemes if p.viseme != "sil"][:5] == list("hello")
        assert all(p.viseme == "PP" for p in tl.phonemes if p.phoneme in ("b", "m", "p"))
        starts = [p.start for p in tl.phonemes]
        assert starts == sorted(starts) and tl.phonemes[-1].end <= sp.duration + 1e-6
    # rate goes through the duration predictor's length scale, so the timeline shrinks with the audio
    assert fast.timeline.words[-1].end < calm.timeline.words[-1].end
    assert fast.duration < calm.duration

    # XTTS v2: loaded from safetensors (no torch.load), reference clip chosen by VAD, estimated timeline
    from avatar.tts.coqui import load_model, pick_reference

    xfolder = _tiny_xtts(tmp_path / "tiny-xtts")
    vads = [VAD(0, 0, 0), VAD(0.8, 0.5, 0.3)]
    assert [pick_reference(xfolder, v).stem for v in vads] == ["neutral", "happy"]
    x1 = tts.synthesize("Hello there. I am so happy!", vads, voice=str(xfolder), seed=3)
    x2 = tts.synthesize("Hello there. I am so happy!", vads, voice=str(xfolder), seed=3)
    assert load_model(xfolder).kind == "xtts" and x1.sample_rate == 24000
    assert np.array_equal(x1.audio, x2.audio) and np.isfinite(x1.audio).all() and x1.duration > 0.2
    assert [w.word for w in x1.timeline.words] == ["Hello", "there", "I am", "so", "happy"]
    assert x1.timeline.duration == pytest.approx(x1.duration, abs=1e-6)
    assert all(p.end <= x1.duration + 1e-6 for p in x1.timeline.phonemes)


def test_token_durations_become_a_timeline():
    """VITS-style tokens (blanks between, stress and length marks, spaces) to phonemes and words."""
    from avatar.tts.coqui import tokens_to_timeline

    syms = [None, "b", None, "ˈ", "ɑ", "ː", None, "b", None, " ", None, "m", None, "ˈ", "eɪ", None, "d", None, "!"]
    frames = np.array([1, 2, 1, 0, 3, 1, 0, 2, 1, 2, 0, 2, 1, 1, 4, 0, 2, 1, 3], dtype=np.float32)
    hop, sr = 256, 22050
    n = int(frames.sum()) * hop
    tl = tokens_to_timeline(syms, frames, hop, sr, n, ["Bob", "made"], graphemes=False)
    assert [p.phoneme for p in tl.phonemes] == ["b", "ˈɑː", "b", "_", "m", "ˈeɪ", "d", "_"]
    assert [p.viseme for p in tl.phonemes] == ["PP", "aa", "PP", "sil", "PP", "E", "DD", "sil"]
    assert [w.word for w in tl.words] == ["Bob", "made"]
    assert tl.phonemes[0].start == pytest.approx(1 * hop / sr) and tl.phonemes[-1].end == pytest.approx(n / sr)
    for a, b in zip(tl.phonemes, tl.phonemes[1:]):
        assert b.start == pytest.approx(a.end)  # blanks and marks leave no holes
    assert tl.words[0].end == pytest.approx(tl.phonemes[2].end) and tl.words[1].start == pytest.approx(tl.phonemes[4].start)


def test_xtts_reference_choice_and_estimated_timeline(tmp_path):
    """The XTTS helpers that need no model: reference clip by VAD, and the estimated timeline."""
    import soundfile as sf

    from avatar.tts.coqui import estimated_timeline, pick_reference

    refs = tmp_path / "references"
    refs.mkdir()
    for label in ("neutral", "happy", "sad", "angry"):
        sf.write(str(refs / f"{label}.wav"), np.zeros(2400, np.float32), 24000)
    assert pick_reference(tmp_path, VAD(0.7, 0.5, 0.3)).stem == "happy"
    assert pick_reference(tmp_path, VAD(-0.6, -0.3, -0.3)).stem == "sad"
    assert pick_reference(tmp_path, VAD(-0.5, 0.6, 0.3)).stem == "angry"
    with pytest.raises(ModelError, match="references"):
        pick_reference(tmp_path / "nowhere", VAD.neutral())
    sr = 24000
    audio = np.zeros(3 * sr, np.float32)
    audio[sr // 2: 5 * sr // 2] = 0.1 * np.sin(np.arange(2 * sr) * 2 * np.pi * 150 / sr)  # speech from 0.5 to 2.5 s
    tl = estimated_timeline("Hello there, my friend.", audio, sr)
    spoken = [p for p in tl.phonemes if p.viseme != "sil"]
    assert spoken[0].start == pytest.approx(0.5, abs=0.02) and max(p.end for p in spoken) == pytest.approx(2.5, abs=0.02)
    assert [w.word for w in tl.words] == ["Hello", "there", "my", "friend"]
    assert tl.duration == pytest.approx(3.0)
