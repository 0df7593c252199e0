"""No import cycles between the engine's packages (our own AST check: every `import`, at module level or inside a
function, is an edge, since a lazy import still ties the two packages together).

A unit is a subpackage (`avatar.face`, `avatar.render`, ...) or one top-level module of `avatar` (`avatar.types`,
`avatar.pipeline`, ...). Base modules (errors, types, io, weights, runtime, ...) must import no stage; stages import
base modules and, downward only, each other; the pipeline, CLI, app, batch and live sit on top.
`KNOWN` would list cycles accepted for a while (none now: gesture <-> render went when glTF loading moved to the
base package avatar.gltf); a new cycle fails, and so does a known one that is gone (so the list only shrinks).
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = {"avatar": "avatar", "avatar.tts": "tts", "avatar.face": "face", "avatar.gesture": "gesture"}
SUBPACKAGES = {"avatar.emotion", "avatar.render", "avatar.batch", "avatar.live", "avatar.tts", "avatar.face",
               "avatar.gesture"}

#: Cycles present when this test was written (sorted units of each strongly connected component).
KNOWN: set[tuple[str, ...]] = set()


def _modules() -> dict[str, Path]:
    mods = {}
    for pkg, folder in FOLDERS.items():
        for f in (ROOT / folder).rglob("*.py"):
            parts = list(f.relative_to(ROOT / folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            mods[".".join([pkg, *parts])] = f
    return mods


def _unit(module: str) -> str:
    parts = module.split(".")
    if ".".join(parts[:2]) in SUBPACKAGES:
        return ".".join(parts[:2])
    return ".".join(parts[:2]) if len(parts) > 1 else "avatar"


def _graph() -> dict[str, dict[str, list[str]]]:
    """unit -> {imported unit: [the imports that make the edge]}."""
    edges: dict[str, dict[str, list[str]]] = {}
    for mod, path in _modules().items():
        is_pkg = path.name == "__init__.py"
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = mod.split(".") if is_pkg else mod.split(".")[:-1]
                    base = base[: len(base) - (node.level - 1)]
                    target = ".".join(base + ([node.module] if node.module else []))
                    # `from . import x` names modules x of that package
                    targets = [f"{target}.{a.name}" for a in node.names] if not node.module else [target]
                else:
                    targets = [node.module or ""]
            else:
                continue
            for t in targets:
                if t == "avatar" or not t.startswith("avatar."):
                    continue
                a, b = _unit(mod), _unit(t)
                if a != b:
                    edges.setdefault(a, {}).setdefault(b, []).append(f"{mod} -> {t}")
    return edges


def _cycles(edges: dict[str, dict[str, list[str]]]) -> set[tuple[str, ...]]:
    """Strongly connected components with more than one unit (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: set[tuple[str, ...]] = set()

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in edges.get(v, {}):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.add(tuple(sorted(comp)))

    for v in sorted({*edges, *(w for d in edges.values() for w in d)}):
        if v not in index:
            visit(v)
    return out


def test_no_new_import_cycles_between_packages() -> None:
    edges = _graph()
    found = _cycles(edges)
    new = found - KNOWN
    detail = []
    for comp in sorted(new):
        for a in comp:
            for b in comp:
                if b in edges.get(a, {}):
                    detail.append(f"  {a} -> {b}: {edges[a][b][:3]}")
    assert not new, "import cycle(s) between packages:\n" + "\n".join(detail)
    gone = KNOWN - found
    assert not gone, f"these cycles are gone: remove them from KNOWN in {Path(__file__).name}: {sorted(gone)}"


def test_base_modules_import_no_stage() -> None:
    """errors, types, io, weights and the model runtime sit below every stage."""
    base = {"avatar.errors", "avatar.types", "avatar.io", "avatar.weights", "avatar.runtime", "avatar.diffusion"}
    stages = SUBPACKAGES | {"avatar.pipeline", "avatar.cli", "avatar.pipeline_cli"}
    edges = _graph()
    bad = {f"{a} -> {b}": edges[a][b][:2] for a in base for b in edges.get(a, {}) if b in stages}
    assert not bad, bad
