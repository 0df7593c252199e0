"""The built wheel works on its own: installed (not editable) into a new venv outside the repository, `avatar say`
run from another folder finds its weights and default avatar inside the installed package.

The new venv borrows the dependencies of .venv (a path line, so no download and no editable hook of ours comes
with them); `.ci/fresh_install.sh` does the same with the dependencies installed from the index.
"""

from __future__ import annotations

import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _source_copy(dst: Path) -> Path:
    """The repository's files (tracked and new, not ignored) copied to `dst`: a build there leaves no build/ in
    the checkout, and two builds never share one."""
    import shutil

    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT, capture_output=True,
                           check=True).stdout.decode().split("\0")
    for name in filter(None, files):
        src = ROOT / name
        if src.is_file():
            (dst / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst / name)
    return dst


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    src = _source_copy(tmp_path_factory.mktemp("src"))
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w",
                        str(out), str(src)], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    (whl,) = out.glob("avatar_engine-*.whl")
    return whl


def test_wheel_carries_the_weights_the_default_avatar_and_the_shaders(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    for model in ("face", "gesture", "lipsync"):
        assert {f"avatar/assets/{model}/{f}" for f in ("config.json", "model.onnx", "README.md")} <= names
    assert "avatar/assets/emotion/config.json" in names
    assert "avatar/assets/avatars/default.glb" in names
    shaders = {p.name for p in (ROOT / "avatar" / "render" / "glsl").iterdir()}
    assert shaders and {f"avatar/render/glsl/{f}" for f in shaders} <= names  # the renderer reads them at run time
    meta = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    runtime = [line for line in meta.splitlines() if line.startswith("Requires-Dist:") and "extra ==" not in line]
    heavy = [line for line in runtime if any(p in line for p in ("torch", "transformers", "diffusers", "peft"))]
    assert not heavy, f"runtime dependencies that `say` never imports: {heavy}"


@pytest.mark.slow
def test_installed_wheel_says_hello_from_another_folder(wheel: Path, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    py = venv / "bin" / "python"
    site = Path(subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                               capture_output=True, text=True, check=True).stdout.strip())
    # The repo's .venv dependencies, after the new venv's own site-packages (so the wheel's avatar wins).
    (site / "zz_shared_deps.pth").write_text(sysconfig.get_path("purelib") + "\n")
    r = subprocess.run([sys.executable, "-m", "pip", "--python", str(py), "install", "-q", "--no-deps",
                        "--no-index", str(wheel)], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "OMP_NUM_THREADS": "1"}
    r = subprocess.run([str(venv / "bin" / "avatar"), "say", "Hello.", "-o", "x.mp4", "--size", "128"], cwd=work,
                       env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    assert (work / "x.mp4").stat().st_size > 1000
    probe = ("import sys, avatar, avatar.weights; from avatar.pipeline import DEFAULT_AVATAR; "
             "print(avatar.__file__); print(avatar.weights.weights_root()); print(DEFAULT_AVATAR)")
    r = subprocess.run([str(py), "-c", probe], cwd=work, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    pkg, weights, avatar_file = (Path(x) for x in r.stdout.split())
    for p in (pkg, weights, avatar_file):
        assert p.is_relative_to(site), f"{p} is not inside the installed package ({site})"
    assert weights == site / "avatar" / "assets" and avatar_file.is_file()
    r = subprocess.run([sys.executable, "-m", "pip", "--python", str(py), "check"], capture_output=True, text=True,
                       timeout=300)
    # Only our own requirements count: the shared .venv also holds build-only packages installed --no-deps (anny).
    ours = [line for line in r.stdout.splitlines() if line.lower().startswith(("avatar-engine", "avatar_engine"))]
    assert not ours, ours
