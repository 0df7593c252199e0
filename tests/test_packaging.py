"""The installable package: every code folder is listed in pyproject, so a wheel (not only an editable
install) carries it."""

import tomllib


def test_every_package_folder_is_listed(root):
    cfg = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(cfg["packages"])
    dirs = {name: root / path for name, path in cfg["package-dir"].items()}
    found = set()
    for name, folder in dirs.items():
        for init in folder.rglob("__init__.py"):
            rel = init.parent.relative_to(folder).parts
            found.add(".".join((name, *rel)))
    missing = sorted(f for f in found if f not in listed)
    assert not missing, f"add these to [tool.setuptools] packages in pyproject.toml: {missing}"


def test_dev_runs_the_command_in_the_callers_folder(root, tmp_path):
    """`/path/to/repo/dev emotion --input lines.txt` reads (and `say -o x.mp4` writes) relative to where it is called,
    though set-up runs at the repo root."""
    import json
    import subprocess

    (tmp_path / "lines.txt").write_text("I am so happy today!\n", encoding="utf-8")
    r = subprocess.run([str(root / "dev"), "emotion", "--input", "lines.txt"], cwd=tmp_path, capture_output=True,
                       text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    assert json.loads(r.stdout.strip().splitlines()[-1])["text"] == "I am so happy today!"
