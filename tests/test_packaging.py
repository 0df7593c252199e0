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
