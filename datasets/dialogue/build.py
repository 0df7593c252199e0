"""Build lines.csv from the hand-written source files (deterministic; stdlib only).

    python datasets/dialogue/build.py

Each `source/<category>.txt` (first batch) and `source/batch<N>/<category>.txt` (later batches) holds groups: a
`# group-id: situation` header (later batches: `# group-id [genre/speaker]: situation`), then lines prefixed `m:` /
`p:` / `s:` (mild, plain, strong) or `n:` (neutral), optionally ending in `{sarcasm}`. Every hand-written line gets two
mechanical variants (a form of address in front; an emoji added, or the line's emoji removed) in the same group.
Groups, never lines, are split train/dev/test (70/15/15 per category and batch, seeded; a later batch never moves an
earlier batch's groups), so a line's variants and its siblings from the same situation never straddle splits. The VAD point of a line is its category's prototype
(avatar/emotion/labels.py, Russell & Mehrabian 1977) scaled by its intensity.
"""

from __future__ import annotations

import csv
import random
import re
from pathlib import Path

HERE = Path(__file__).resolve().parent
CATEGORIES = ("neutral", "happy", "sad", "angry", "fearful", "disgusted", "surprised")
#: Copied from avatar.emotion.labels.LABEL_VAD so this script needs nothing but the standard library.
PROTOTYPE = {"neutral": (0.0, 0.0, 0.0), "happy": (0.76, 0.48, 0.35), "sad": (-0.63, -0.27, -0.33),
             "angry": (-0.51, 0.59, 0.25), "fearful": (-0.64, 0.60, -0.43), "disgusted": (-0.60, 0.35, 0.11),
             "surprised": (0.40, 0.67, -0.13)}
INTENSITY = {"m": ("mild", 1 / 3, 0.45), "p": ("plain", 2 / 3, 0.7), "s": ("strong", 1.0, 0.95), "n": ("none", 0.0, 0.0)}
#: Source folders, in order: the first batch lives in source/ itself; each batch is split on its own.
BATCHES = ("", "batch2", "batch3", "batch4", "batch5", "batch6", "batch7", "batch8")
ADDRESS = ("Traveler", "Listen", "Captain", "Friend", "Hey", "Mira", "Sir", "Look")
EMOJI = {"neutral": ("👍", "📜"), "happy": ("😊", "😄"), "sad": ("😢", "😞"), "angry": ("😠", "😤"),
         "fearful": ("😨", "😰"), "disgusted": ("🤢", "😖"), "surprised": ("😮", "😲")}
_EMOJI_RE = re.compile("[\U0001F000-\U0001FAFF\u2600-\u27BF\u2B00-\u2BFF\uFE0F\u200d]+")
_NAMES = re.compile(r"\b(happ\w*|glad|joy\w*|sad\w*|unhappy|angry|anger|mad|furious|annoy\w*|irritat\w*|"
                    r"scared|afraid|fear\w*|terrified|frightened|nervous|uneasy|disgust\w*|revolting|"
                    r"surpris\w*|astonish\w*|stunned)\b", re.I)
_NEG = re.compile(r"\b(not|no|never|nothing|nobody|none|don't|doesn't|didn't|can't|won't|isn't|wasn't|aren't|"
                  r"haven't|couldn't|wouldn't|shouldn't|nor)\b|n't\b", re.I)


def parse(path: Path) -> list[dict]:
    """The groups of one source file: [{group, situation, lines: [(code, text, sarcasm)]}]."""
    groups: list[dict] = []
    for n, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = raw.strip()
        if not line:
            continue
        if line.startswith("#"):
            gid, _, situation = line[1:].partition(":")
            m = re.fullmatch(r"\s*(\S+)\s*(?:\[([\w-]+)/([\w-]+)\])?\s*", gid)
            if m is None:
                raise SystemExit(f"{path}:{n}: expected '# group-id [genre/speaker]: situation'")
            groups.append({"group": m[1], "genre": m[2] or "", "speaker": m[3] or "", "situation": situation.strip(),
                           "lines": []})
            continue
        code, sep, text = line.partition(":")
        if not sep or code not in INTENSITY or not groups:
            raise SystemExit(f"{path}:{n}: expected 'm:|p:|s:|n: text' after a '# group: situation' header")
        sarcasm = text.rstrip().endswith("{sarcasm}")
        text = text.replace("{sarcasm}", "").strip()
        groups[-1]["lines"].append((code, text, sarcasm))
    return groups


def tags(text: str, sarcasm: bool) -> str:
    """Space-separated features of a line (for the datasheet's counts and per-feature figures)."""
    t = []
    words = re.findall(r"[A-Za-z']+", text)
    if sarcasm:
        t.append("sarcasm")
    if _NEG.search(text):
        t.append("negation")
    if "?" in text:
        t.append("question")
    if "!" in text:
        t.append("exclamation")
    if len(words) <= 1:
        t.append("one_word")
    if _EMOJI_RE.search(text):
        t.append("emoji")
    if _NAMES.search(text):
        t.append("names_emotion")
    if sum(w.isupper() and len(w) > 1 for w in words) >= 1 and any(len(w) > 2 and w.isupper() for w in words):
        t.append("caps")
    return " ".join(t)


def variants(text: str, category: str, rng: random.Random) -> list[tuple[str, str]]:
    """Two mechanical variants of a line: ('address', ...) and ('emoji', ...) / ('no_emoji', ...)."""
    first = text.split(" ", 1)[0]
    keep_case = first in ("I", "I'm", "I'd", "I'll", "I've") or (first.isupper() and len(first) > 1)
    body = text if keep_case or not text[:1].isalpha() else text[0].lower() + text[1:]
    out = [("address", f"{rng.choice(ADDRESS)}, {body}")]
    if _EMOJI_RE.search(text):
        stripped = " ".join(_EMOJI_RE.sub(" ", text).split())
        if re.search(r"[A-Za-z]", stripped):
            out.append(("no_emoji", stripped))
    else:
        out.append(("emoji", f"{text} {rng.choice(EMOJI[category])}"))
    return out


def main() -> None:
    """Parse every source file, split by group, write lines.csv."""
    rng = random.Random(23)
    rows = []
    for batch, cat in ((b, c) for b in BATCHES for c in CATEGORIES):
        path = HERE / "source" / batch / f"{cat}.txt"
        if batch and not path.exists():
            continue
        groups = parse(path)
        order = list(range(len(groups)))
        random.Random(f"split-{cat}" + (f"-{batch}" if batch else "")).shuffle(order)
        n_test = n_dev = round(0.15 * len(groups))
        split_of = {g: ("test" if k < n_test else "dev" if k < n_test + n_dev else "train") for k, g in enumerate(order)}
        for gi, g in enumerate(groups):
            if not g["group"].startswith(cat + "-"):
                raise SystemExit(f"{cat}.txt: group {g['group']!r} must start with '{cat}-'")
            for li, (code, text, sarcasm) in enumerate(g["lines"]):
                if (code == "n") != (cat == "neutral"):
                    raise SystemExit(f"{cat}.txt {g['group']}: 'n:' lines belong to neutral only, m/p/s to the rest")
                name, level, scale = INTENSITY[code]
                v, a, d = (round(scale * x, 3) for x in PROTOTYPE[cat])
                base = {"group": g["group"], "split": split_of[gi], "batch": batch or "batch1", "genre": g["genre"],
                        "speaker": g["speaker"], "category": cat, "intensity": name,
                        "intensity_value": round(level, 3), "valence": v, "arousal": a, "dominance": d}
                lid = f"{g['group']}-{li + 1:02d}"
                rows.append({"id": lid, "variant": "original", "text": text, "tags": tags(text, sarcasm), **base})
                for kind, vt in variants(text, cat, rng):
                    rows.append({"id": f"{lid}-{kind}", "variant": kind, "text": vt, "tags": tags(vt, sarcasm), **base})
    ids = [r["id"] for r in rows]
    if len(ids) != len(set(ids)):
        raise SystemExit("a group id is used twice")
    seen: dict[str, str] = {}
    for r in rows:
        if r["text"] in seen and seen[r["text"]] != r["split"]:
            raise SystemExit(f"duplicate text across splits: {r['text']!r}")
        seen[r["text"]] = r["split"]
    fields = ["id", "group", "split", "batch", "genre", "speaker", "category", "intensity", "intensity_value", "valence",
              "arousal", "dominance", "variant", "tags", "text"]
    tmp = HERE / "lines.csv.tmp"
    with open(tmp, "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=fields, lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
    tmp.replace(HERE / "lines.csv")
    print(f"wrote {len(rows)} rows ({sum(r['variant'] == 'original' for r in rows)} hand-written) to lines.csv")


if __name__ == "__main__":
    main()
