"""`python -m avatar.export [--class NAME] FOLDER ...`: write saved model folders' model.onnx from their checkpoints.

The shipped graphs were made with `--class FaceDenoiser weights/face`, `--class VisemeNet weights/lipsync` and
`--class GestureDenoiser weights/gesture` (the class is needed only for folders whose config.json predates
`_class_name`). The export itself is avatar.onnx_export's, as `save_pretrained` runs it after training.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

from avatar.errors import ModelError


#: Model classes by `_class_name`, for re-exporting saved folders.
def _classes() -> dict[str, Any]:
    from avatar.face.lipsync import VisemeNet
    from avatar.face.model import FaceDenoiser
    from avatar.gesture.model import GestureDenoiser

    return {cls.config_class.class_name: cls for cls in (FaceDenoiser, GestureDenoiser, VisemeNet)}


def export_folder(folder: str | os.PathLike[str], class_name: str | None = None) -> Path:
    """Re-export a saved folder's model.onnx from its model.safetensors, and rewrite its config.json in the
    current format (`_class_name`, `_format_version`). The class is config.json's `_class_name`, else
    `class_name` (for folders saved before configs named their class)."""
    folder = Path(folder)
    try:
        raw = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelError(f"cannot read {folder / 'config.json'}: {exc}") from None
    classes = _classes()
    name = (raw.get("_class_name") if isinstance(raw, dict) else None) or class_name
    if name not in classes:
        raise ModelError(f"{folder / 'config.json'}: model class {name!r} is not one of {sorted(classes)} "
                         "(pass --class for a folder saved before configs named their class)")
    model = classes[name].from_pretrained(folder)
    model.config.save(folder)
    return model.export_onnx(folder)


def main(argv: list[str] | None = None) -> int:
    """`python -m avatar.export FOLDER ...`: write each folder's model.onnx from its checkpoint."""
    ap = argparse.ArgumentParser(prog="python -m avatar.export", description=main.__doc__)
    ap.add_argument("folders", nargs="+", type=Path, help="model folders (config.json + model.safetensors)")
    ap.add_argument("--class", dest="class_name", default=None,
                    help="model class for folders whose config.json does not name it (FaceDenoiser, ...)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    for folder in args.folders:
        try:
            path = export_folder(folder, args.class_name)
        except ModelError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        print(json.dumps({"folder": str(folder), "onnx": str(path), "bytes": path.stat().st_size}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
