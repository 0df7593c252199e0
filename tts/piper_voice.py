"""A Piper VITS voice (.onnx + .onnx.json) run in onnxruntime, with its per-token durations exposed.

Piper's exported graph takes phoneme ids, their count and three scales (noise_scale, length_scale, noise_w)
and returns only audio. We edit the graph once with the `onnx` package and cache the result:
- the duration tensor (frames per input token, `/Ceil_output_0`, before the decoder) becomes an output
  `durations`, so the timeline is the model's own alignment (frames x hop samples; it sums to the audio length);
- two inputs `dur_scale` and `dur_add` (one value per token) reshape those durations inside the same pass:
  frames = round(w * length_scale * dur_scale + dur_add) (round in place of Piper's ceil; dur_add = 0.5 *
  dur_scale gives Piper's usual lengths on average, and, unlike ceil, which lengthens every 1-2 frame token
  by half a frame, scales the whole sentence in proportion): exact pauses at punctuation, the speaking rate,
  longer emphasised syllables, without running the model twice;
- the two RandomNormalLike nodes (duration noise and latent noise) read inputs `noise_dp` and `noise_z`
  instead, which we fill from a seeded NumPy generator: onnxruntime's random ops advance from run to run even
  with a seed, so the same text would otherwise never sound the same twice.
With dur_scale = 1, dur_add = 0.5 and zero noise the edited graph gives the original graph's output (tested).

Why not `piper-tts`: it is GPL-3.0-or-later (our code is Apache-2.0), and it adds its own espeak-ng build and
phonemiser, while we already bind eSpeak NG (the phonemiser Piper voices were trained on) and need the
duration tensor anyway; what remains is one onnxruntime call.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from avatar.errors import InputError, ModelError

log = logging.getLogger(__name__)

#: Bump when the graph edit changes, so cached graphs from an older edit are not reused.
PATCH_VERSION = 2
#: Frames of latent noise kept per seed (the graph tiles it for longer sentences): 12 s at 22.05 kHz / 256.
NOISE_FRAMES = 1024
#: Channels of latent noise given (the graph cuts them to its latent width: 192 in Piper's VITS voices).
NOISE_CHANNELS = 256
_DURATION_NODE = "/Ceil"
_LATENT_NOISE_NODE = "/RandomNormalLike"
_DP_NOISE_NODE = "/dp/RandomNormalLike"


#: Environment variable for the voice's intra-op threads (default 2; see `tts_threads`).
THREADS_ENV = "AVATAR_TTS_THREADS"


def tts_threads() -> int:
    """Intra-op threads of the voice's session: $AVATAR_TTS_THREADS, else 2 (half the wall time of one on two
    cores; speech is synthesised before the face, body and render stages start, so it competes with none)."""
    raw = os.environ.get(THREADS_ENV, "").strip()
    try:
        n = int(raw) if raw else 2
    except ValueError:
        n = 0
    if n < 1:
        raise InputError(f"{THREADS_ENV} must be a positive integer, got {raw!r}")
    return n


@dataclass(frozen=True)
class VoiceConfig:
    """What the .onnx.json says: sample rate, hop, default scales, the phoneme id map, the eSpeak voice."""

    sample_rate: int
    hop: int
    noise_scale: float
    length_scale: float
    noise_w: float
    phoneme_ids: dict[str, int]
    espeak_voice: str
    name: str

    @classmethod
    def load(cls, path: Path) -> "VoiceConfig":
        """Read and check a Piper voice config."""
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
            inf = raw.get("inference", {})
            ids = {k: int(v[0]) for k, v in raw["phoneme_id_map"].items()}
            if raw.get("phoneme_type", "espeak") != "espeak":
                raise ModelError(f"{path.name}: phoneme_type {raw.get('phoneme_type')!r} is not supported (espeak only)")
            return cls(sample_rate=int(raw["audio"]["sample_rate"]), hop=int(raw.get("hop_length", 256)),
                       noise_scale=float(inf.get("noise_scale", 0.667)),
                       length_scale=float(inf.get("length_scale", 1.0)), noise_w=float(inf.get("noise_w", 0.8)),
                       phoneme_ids=ids, espeak_voice=str(raw.get("espeak", {}).get("voice", "en-us")),
                       name=path.name.removesuffix(".onnx.json"))
        except ModelError:
            raise
        except (OSError, ValueError, KeyError, TypeError, IndexError) as exc:
            raise ModelError(f"cannot read the Piper voice config {path}: {exc}") from None


def cache_dir() -> Path:
    """Where edited graphs are kept: $AVATAR_CACHE, else $XDG_CACHE_HOME/avatar, else ~/.cache/avatar."""
    env = os.environ.get("AVATAR_CACHE")
    if env:
        return Path(env)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "avatar"


def patched_graph(model: Path) -> Path:
    """The cached edited graph for `model` (made once, atomically; keyed by the file's size, mtime and edit)."""
    st = model.stat()
    key = hashlib.sha1(f"{model.resolve()}|{st.st_size}|{st.st_mtime_ns}|{PATCH_VERSION}".encode()).hexdigest()[:16]
    out = cache_dir() / "piper" / f"{model.stem}-{key}.onnx"
    if out.is_file():
        return out
    log.info("preparing %s for timing and seeded noise (once, cached at %s)", model.name, out)
    from avatar.io import atomic_write_bytes

    atomic_write_bytes(out, patch_graph_bytes(model))
    return out


def patch_graph_bytes(model: Path) -> bytes:
    """Edit a Piper VITS graph: durations out, per-token duration controls in, noise from inputs."""
    import onnx
    from onnx import TensorProto, helper

    m = onnx.load(str(model))
    g = m.graph
    nodes = {n.name: n for n in g.node}
    missing = [n for n in (_DURATION_NODE, _LATENT_NOISE_NODE, _DP_NOISE_NODE) if n not in nodes]
    if missing:
        raise ModelError(f"{model.name} is not a Piper VITS export we know (no {', '.join(missing)} node)")
    new: list = []
    # Durations: round(w * dur_scale + dur_add), w being the graph's own (already length-scaled) durations.
    ceil = nodes[_DURATION_NODE]
    ceil.op_type = "Round"
    w = ceil.input[0]
    new += [helper.make_node("Mul", [w, "dur_scale"], ["avatar/w_scaled"], name="avatar/DurScale"),
            helper.make_node("Add", ["avatar/w_scaled", "dur_add"], ["avatar/w_final"], name="avatar/DurAdd"),
            helper.make_node("Identity", [ceil.output[0]], ["durations"], name="avatar/Durations")]
    ceil.input[0] = "avatar/w_final"
    # Duration-predictor noise: exactly [1, 2, tokens], given as is.
    dp = nodes[_DP_NOISE_NODE]
    new.append(helper.make_node("Identity", ["noise_dp"], [dp.output[0]], name="avatar/NoiseDp"))
    # Latent noise: [1, C, frames]; frames is known only inside the graph, so a [1, C' >= C, N] input is tiled
    # ceil(frames / N) times along time and cut to shape.
    z = nodes[_LATENT_NOISE_NODE]
    like = z.input[0]
    def const(name: str, vals: list[int]) -> object:
        return helper.make_tensor(name, TensorProto.INT64, [len(vals)], vals)

    g.initializer.extend([const("avatar/i2", [2]), const("avatar/one", [1]), const("avatar/ones2", [1, 1]),
                          const("avatar/zeros3", [0, 0, 0])])
    new += [
        helper.make_node("Shape", [like], ["avatar/zshape"]),
        helper.make_node("Shape", ["noise_z"], ["avatar/nshape"]),
        helper.make_node("Gather", ["avatar/zshape", "avatar/i2"], ["avatar/frames"], axis=0),
        helper.make_node("Gather", ["avatar/nshape", "avatar/i2"], ["avatar/nframes"], axis=0),
        helper.make_node("Add", ["avatar/frames", "avatar/nframes"], ["avatar/f_plus"]),
        helper.make_node("Sub", ["avatar/f_plus", "avatar/one"], ["avatar/f_round"]),
        helper.make_node("Div", ["avatar/f_round", "avatar/nframes"], ["avatar/reps"]),
        helper.make_node("Concat", ["avatar/ones2", "avatar/reps"], ["avatar/tile"], axis=0),
        helper.make_node("Tile", ["noise_z", "avatar/tile"], ["avatar/tiled"]),
        helper.make_node("Slice", ["avatar/tiled", "avatar/zeros3", "avatar/zshape"], [z.output[0]]),
    ]
    keep = [n for n in g.node if n.name not in (_DP_NOISE_NODE, _LATENT_NOISE_NODE)]
    del g.node[:]
    g.node.extend(keep + new)
    f = TensorProto.FLOAT
    g.input.extend([helper.make_tensor_value_info("dur_scale", f, [1, 1, "phonemes"]),
                    helper.make_tensor_value_info("dur_add", f, [1, 1, "phonemes"]),
                    helper.make_tensor_value_info("noise_dp", f, [1, 2, "phonemes"]),
                    helper.make_tensor_value_info("noise_z", f, [1, None, None])])
    g.output.append(helper.make_tensor_value_info("durations", f, [1, 1, "phonemes"]))
    # Nodes were appended after their consumers: put the graph back in topological order for the checker.
    _toposort(g)
    onnx.checker.check_model(m, full_check=False)
    return m.SerializeToString()


def _toposort(g) -> None:  # noqa: ANN001 - onnx GraphProto
    known = {i.name for i in g.input} | {t.name for t in g.initializer} | {""}
    pending = list(g.node)
    ordered = []
    while pending:
        rest = []
        for n in pending:
            if all(i in known for i in n.input):
                ordered.append(n)
                known.update(n.output)
            else:
                rest.append(n)
        if len(rest) == len(pending):
            raise ModelError("the edited Piper graph has a cycle or a missing input")
        pending = rest
    del g.node[:]
    g.node.extend(ordered)


@dataclass(frozen=True)
class Inference:
    """One model run: float32 audio and the frames each input token got (audio length = frames.sum() * hop)."""

    audio: np.ndarray
    frames: np.ndarray


class PiperVoice:
    """A Piper voice's graph (edited, cached) in an onnxruntime session (avatar.runtime), with seeded noise."""

    def __init__(self, model: Path, config: Path | None = None, threads: int | None = None) -> None:
        """Open `model` (.onnx) with its `config` (default: model + '.json')."""
        model = Path(model)
        if model.suffix.lower() != ".onnx" or not model.is_file():
            raise ModelError(f"no Piper voice graph (.onnx) at {model}")
        self.config = VoiceConfig.load(Path(config) if config else model.with_name(model.name + ".json"))
        self.model_path = model
        self.threads = tts_threads() if threads is None else int(threads)
        from avatar.runtime import load_onnx

        self.model = load_onnx(patched_graph(model), self.threads, optimized_cache=cache_dir() / "piper")
        self._noise: dict[int, np.ndarray] = {}
        self._lock = threading.Lock()

    def ids(self, symbols: str) -> list[int]:
        """Piper's id sequence for an IPA/punctuation string: ^, then each symbol followed by the pad, then $."""
        m = self.config.phoneme_ids
        out = [m["^"], m["_"]]
        for ch in symbols:
            if ch not in m:
                raise InputError(f"the voice has no phoneme {ch!r}")
            out += [m[ch], m["_"]]
        out.append(m["$"])
        return out

    def _latent_noise(self, seed: int) -> np.ndarray:
        with self._lock:
            if seed not in self._noise:
                rng = np.random.default_rng([seed, 1])
                self._noise[seed] = rng.standard_normal((1, NOISE_CHANNELS, NOISE_FRAMES), dtype=np.float32)
            return self._noise[seed]

    def infer(self, ids: list[int], length_scale: float, noise_scale: float, noise_w: float,
              dur_scale: np.ndarray | None = None, dur_add: np.ndarray | None = None, seed: int = 0) -> Inference:
        """Run the voice on `ids` (frames per token: round(w * length_scale * dur_scale + dur_add); the defaults,
        1 and 0.5, match Piper's ceil); the same inputs and seed give the same audio."""
        n = len(ids)
        x = np.asarray(ids, dtype=np.int64)[None, :]
        ds = np.ones((1, 1, n), np.float32) if dur_scale is None else np.asarray(dur_scale, np.float32).reshape(1, 1, n)
        da = np.full((1, 1, n), 0.5, np.float32) if dur_add is None else np.asarray(dur_add, np.float32).reshape(1, 1, n)
        rng = np.random.default_rng([seed, 0, n])
        noise_dp = rng.standard_normal((1, 2, n), dtype=np.float32)
        noise_z = self._latent_noise(seed)
        scales = np.array([noise_scale, length_scale, noise_w], dtype=np.float32)
        out = self.model.run({"input": x, "input_lengths": np.array([n], np.int64), "scales": scales,
                              "dur_scale": ds, "dur_add": da, "noise_dp": noise_dp, "noise_z": noise_z},
                             ["output", "durations"])
        return Inference(audio=np.asarray(out["output"], np.float32).reshape(-1),
                         frames=np.asarray(out["durations"]).reshape(-1).astype(np.int64))
