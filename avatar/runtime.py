"""The one model runtime: every trained network runs its `model.onnx` in onnxruntime through `OnnxModel`.

Sessions are set up for an engine that shares its cores with render workers, batch workers and other
processes: one intra-op thread by default ($AVATAR_ONNX_THREADS or `threads=` to change it), thread-pool
spinning off (`session.intra_op.allow_spinning=0`; a spinning pool made small forward passes many times slower
whenever the other core was busy), sequential execution, CPU provider only. Only `.onnx` files are loaded
(nothing is unpickled). `import onnxruntime` costs a new process about 0.1-0.4 s against torch's 2-3 s, and the
same graphs run in game engines (Unity Sentis, Unreal NNE).
"""

from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path
from typing import Any, Callable, ClassVar, Mapping, TypeVar

import numpy as np

from avatar.errors import InputError, ModelError

log = logging.getLogger(__name__)
N = TypeVar("N", bound="OnnxNet")

#: Environment variable for the intra-op thread count of every session (default 1).
THREADS_ENV = "AVATAR_ONNX_THREADS"
#: The file name of a model folder's inference graph.
ONNX_FILE = "model.onnx"
#: Largest graph we load (every shipped model is under 50 MB): bounds memory before anything is parsed.
MAX_BYTES = 256 * 2**20

#: ONNX element types -> NumPy dtypes, for the inputs we feed.
_DTYPES = {"tensor(float)": np.float32, "tensor(double)": np.float64, "tensor(float16)": np.float16,
           "tensor(int64)": np.int64, "tensor(int32)": np.int32, "tensor(bool)": np.bool_,
           "tensor(uint8)": np.uint8, "tensor(int8)": np.int8}


def default_threads() -> int:
    """Intra-op threads per session: $AVATAR_ONNX_THREADS (a positive integer), else 1."""
    raw = os.environ.get(THREADS_ENV, "").strip()
    if not raw:
        return 1
    try:
        n = int(raw)
    except ValueError:
        n = 0
    if n < 1:
        raise InputError(f"{THREADS_ENV} must be a positive integer, got {raw!r}")
    return n


def session_options(threads: int | None = None) -> Any:
    """onnxruntime SessionOptions for our sessions: `threads` intra-op threads (default `default_threads()`),
    one inter-op thread, spinning off, sequential execution, all graph optimisations."""
    import onnxruntime as ort

    n = default_threads() if threads is None else int(threads)
    if n < 1:
        raise InputError(f"threads must be a positive integer, got {threads!r}")
    so = ort.SessionOptions()
    so.intra_op_num_threads = n
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    so.add_session_config_entry("session.inter_op.allow_spinning", "0")
    so.log_severity_level = 3  # errors only: ORT's warnings go to stderr, outside logging
    return so


def onnx_path(path: str | os.PathLike[str]) -> Path:
    """The graph file for `path`: a model folder's model.onnx, or an .onnx file itself (ModelError otherwise)."""
    p = Path(path)
    if p.is_dir() or not p.suffix:  # a model folder (or a missing one): its model.onnx
        p = p / ONNX_FILE
    if p.suffix.lower() != ".onnx":
        raise ModelError(f"only ONNX graphs (.onnx) are loaded, got {p.name!r}")
    if not p.is_file():
        raise ModelError(f"no ONNX graph at {p} (export it with the model's training command, see its README.md)")
    size = p.stat().st_size
    if size > MAX_BYTES:
        raise ModelError(f"{p} is {size / 2**20:.0f} MB, over the {MAX_BYTES // 2**20} MB limit for a model graph")
    return p


class OnnxModel:
    """An ONNX graph in an onnxruntime session: `model(x=..., t=...)` gives the first output, `run` all of them.

    Inputs are checked by name and cast to the graph's declared element type; sessions are safe to call from
    several threads at once (onnxruntime's `run` is).
    """

    def __init__(self, path: str | os.PathLike[str], threads: int | None = None,
                 optimized_cache: str | os.PathLike[str] | None = None) -> None:
        """Open `path` with `threads` intra-op threads; with `optimized_cache` (a folder), onnxruntime's graph
        optimisations are saved there the first time and read back afterwards (`open_optimized`)."""
        self.path = onnx_path(path)
        self.threads = default_threads() if threads is None else int(threads)
        self.optimized_cache = None if optimized_cache is None else Path(optimized_cache)
        try:
            if optimized_cache is None:
                self.session = _session(str(self.path), session_options(self.threads))
            else:
                self.session = open_optimized(self.path, self.threads, Path(optimized_cache))
        except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own Fail/InvalidGraph types
            raise ModelError(f"cannot load {self.path}: {str(exc).splitlines()[0] if str(exc) else exc!r}") from None
        self.inputs = {i.name: _DTYPES.get(i.type, np.float32) for i in self.session.get_inputs()}
        self.input_shapes = {i.name: tuple(i.shape) for i in self.session.get_inputs()}
        self.outputs = [o.name for o in self.session.get_outputs()]
        meta = self.session.get_modelmeta()
        #: The graph's metadata_props (export writes the model's class name and format version there).
        self.metadata: dict[str, str] = dict(meta.custom_metadata_map or {})

    def feed(self, inputs: Mapping[str, Any]) -> dict[str, np.ndarray]:
        """`inputs` as the session takes them: every declared input present, no others, each in its dtype."""
        missing = [k for k in self.inputs if k not in inputs]
        extra = [k for k in inputs if k not in self.inputs]
        if missing or extra:
            raise InputError(f"{self.path.parent.name}/{self.path.name} takes inputs {list(self.inputs)}; "
                             f"missing {missing}, unknown {extra}")
        return {k: np.ascontiguousarray(inputs[k], dtype=dt) for k, dt in self.inputs.items()}

    def run(self, inputs: Mapping[str, Any], outputs: list[str] | None = None) -> dict[str, np.ndarray]:
        """Every output (or the named ones) by name."""
        names = outputs or self.outputs
        try:
            values = self.session.run(names, self.feed(inputs))
        except InputError:
            raise
        except Exception as exc:  # noqa: BLE001 - shape mismatches surface as onnxruntime errors
            raise InputError(f"{self.path.name}: {str(exc).splitlines()[0]}") from None
        return dict(zip(names, values))

    def __call__(self, **inputs: Any) -> np.ndarray:
        """The first output for keyword inputs."""
        return self.run(inputs, self.outputs[:1])[self.outputs[0]]

    def __repr__(self) -> str:
        return f"OnnxModel({str(self.path)!r}, threads={self.threads})"

    def __getstate__(self) -> dict[str, Any]:
        # A session does not pickle; a worker process that receives the model opens the graph again.
        return {"path": str(self.path), "threads": self.threads,
                "optimized_cache": None if self.optimized_cache is None else str(self.optimized_cache)}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["path"], state["threads"], state.get("optimized_cache"))  # type: ignore[misc]


def load_onnx(path: str | os.PathLike[str], threads: int | None = None,
              optimized_cache: str | os.PathLike[str] | None = None) -> OnnxModel:
    """The session for a model folder or .onnx file, opened once per (file, threads) in this process (the
    registry's one cache, avatar.weights.cached); `optimized_cache` as in OnnxModel."""
    from avatar.weights import cached

    p = onnx_path(path)
    n = default_threads() if threads is None else int(threads)
    return cached(f"onnx/{n}", p, lambda resolved: OnnxModel(resolved, n, optimized_cache))


def _session(graph: str, options: Any) -> Any:
    import onnxruntime as ort

    return ort.InferenceSession(graph, sess_options=options, providers=["CPUExecutionProvider"])


def _cpu_fingerprint() -> str:
    """This CPU's instruction-set flags (Linux) or name: onnxruntime's saved optimisations may depend on them."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith(("flags", "Features")):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return f"{platform.machine()}|{platform.processor()}"


def optimized_graph_path(path: Path, cache: Path) -> Path:
    """Where `open_optimized` keeps `path`'s optimised graph: keyed by the file (path, size, mtime), this
    onnxruntime's version and this CPU, since a saved optimisation is only valid for the build and machine that
    made it."""
    import hashlib

    import onnxruntime as ort

    st = path.stat()
    key = f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}|{ort.__version__}|{_cpu_fingerprint()}"
    return cache / f"{path.stem}-optimized-{hashlib.sha1(key.encode()).hexdigest()[:16]}.onnx"


def open_optimized(path: Path, threads: int, cache: Path) -> Any:
    """A session for `path` whose graph optimisations are done once and saved in `cache`: the saved graph is
    opened with optimisations off, which gives the same arithmetic (bit-identical outputs) and skips most of the
    set-up (Piper's 63 MB voice: 0.63 -> 0.17 CPU s to open, `bench/voice_open_bench.py`). Saving a graph removes
    the saved graphs of the same file made under another key (another onnxruntime, CPU or file version). A missing
    or unwritable cache, or a saved graph that does not open, falls back to optimising in memory."""
    import onnxruntime as ort

    from avatar.io import atomic_path

    saved = optimized_graph_path(path, cache)
    if saved.is_file():
        options = session_options(threads)
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        try:
            return _session(str(saved), options)
        except Exception as exc:  # noqa: BLE001 - a truncated or foreign file: make it again
            log.warning("the saved optimised graph %s does not open (%s); making it again", saved, exc)
            with contextlib.suppress(OSError):  # a read-only cache: the save below fails and falls back
                saved.unlink(missing_ok=True)
    try:
        with atomic_path(saved, suffix=".onnx") as tmp:
            options = session_options(threads)
            options.optimized_model_filepath = str(tmp)  # onnxruntime writes it while it sets the session up
            session = _session(str(path), options)
            if not tmp.is_file() or tmp.stat().st_size == 0:
                raise OSError(f"onnxruntime wrote no optimised graph to {tmp}")
        log.info("saved %s's optimised graph to %s (once)", path.name, saved)
        for stale in cache.glob(f"{path.stem}-optimized-*.onnx"):  # ~63 MB each for the voice: keep one
            if stale != saved:
                with contextlib.suppress(OSError):
                    stale.unlink(missing_ok=True)
        return session
    except Exception as exc:  # noqa: BLE001 - no cache (unwritable, full) or a graph error the plain open repeats
        log.info("cannot save an optimised graph in %s (%s): optimising in memory", cache, exc)
        return _session(str(path), session_options(threads))


class OnnxNet:
    """Base of a trained network's inference wrapper: its config plus a forward pass on NumPy arrays.

    `from_pretrained(folder)` runs the folder's model.onnx in onnxruntime (nothing else is read but
    config.json); `from_module(module)` runs a torch module (training, evaluation and parity tests hand one in;
    torch is imported only then). Both are called the same way: `net(*arrays)` in `onnx_inputs` order.
    """

    #: The pydantic config class (an avatar.weights.ModelConfig).
    config_class: ClassVar[type]
    #: What the model is called in error messages ("face", "gesture").
    model_name: ClassVar[str] = "model"
    #: The graph's input names, in call order.
    onnx_inputs: ClassVar[tuple[str, ...]] = ()

    def __init__(self, config: Any, forward: Callable[..., np.ndarray], metadata: Mapping[str, str],
                 source: str) -> None:
        self.config = config
        self._forward = forward
        self.metadata = dict(metadata)
        self.source = source
        self.check()

    def check(self) -> None:
        """ModelError when the config does not fit this code (subclasses add their checks)."""

    def feature_dims(self) -> dict[str, int]:
        """Each input's last (feature) axis as the config sizes it; checked against the graph when loaded."""
        return {}

    def __call__(self, *arrays: Any) -> np.ndarray:
        """The first output for inputs in `onnx_inputs` order."""
        if len(arrays) != len(self.onnx_inputs):
            raise InputError(f"the {self.model_name} network takes {len(self.onnx_inputs)} inputs "
                             f"({', '.join(self.onnx_inputs)}), got {len(arrays)}")
        return self._forward(*arrays)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.source!r})"

    @classmethod
    def from_pretrained(cls: type[N], folder: str | os.PathLike[str], threads: int | None = None) -> N:
        """The folder's config.json and model.onnx (ModelError when missing, for another class, or not ours)."""
        folder = Path(folder)
        config = cls.config_class.load(folder)
        model = load_onnx(folder, threads)
        meta = model.metadata
        name = meta.get("_class_name")
        if name is not None and name != cls.config_class.class_name:
            raise ModelError(f"{model.path} holds a {name}, not a {cls.config_class.class_name}")
        if list(model.inputs) != list(cls.onnx_inputs):
            raise ModelError(f"{model.path} takes inputs {list(model.inputs)}, this code feeds "
                             f"{list(cls.onnx_inputs)}: export it again (python -m avatar.export {folder})")
        names = cls.onnx_inputs

        def forward(*arrays: Any) -> np.ndarray:
            return model(**dict(zip(names, arrays)))

        net = cls(config, forward, meta, str(model.path))
        for name, dim in net.feature_dims().items():
            got = model.input_shapes[name][-1]
            if got != dim:  # a config edited or mixed with another model's graph
                raise ModelError(f"{model.path} does not fit its config.json: input {name!r} has {got} features, "
                                 f"the config says {dim}")
        return net

    @classmethod
    def module_metadata(cls, module: Any) -> dict[str, str]:
        """What the exported graph's metadata would hold for a torch module (its `onnx_metadata()`)."""
        return dict(module.onnx_metadata()) if hasattr(module, "onnx_metadata") else {}

    @classmethod
    def from_module(cls: type[N], module: Any) -> N:
        """Run a torch module (eval mode, no gradients) on NumPy inputs: float arrays as float32."""
        import torch

        module.eval()

        def forward(*arrays: Any) -> np.ndarray:
            ts = []
            for a in arrays:
                a = np.asarray(a)
                ts.append(torch.from_numpy(np.ascontiguousarray(a, np.float32 if a.dtype.kind == "f" else None)))
            with torch.no_grad():
                return module(*ts).numpy()

        return cls(module.config, forward, cls.module_metadata(module), type(module).__name__)

    @classmethod
    def of(cls: type[N], model: Any) -> N:
        """`model` as it is when it is one of these, a torch module with this config wrapped, else InputError."""
        if isinstance(model, cls):
            return model
        if hasattr(model, "state_dict") and isinstance(getattr(model, "config", None), cls.config_class):
            return cls.from_module(model)
        raise InputError(f"not a {cls.model_name} network: {type(model).__name__}")
