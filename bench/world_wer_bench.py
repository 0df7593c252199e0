"""Word error rate of the neural voice under two WORLD settings, on lines with commas (where `split_f0` cuts).

pocketsphinx (bench/setup_asr.sh makes its venv) transcribes 16 lines with commas, each at arousal -0.8 and +0.8 (so
WORLD reshapes every line), spoken with joe's shipped WORLD settings and with one variant, seed 0; prints the WER
per setting and arousal. About 20 minutes on a loaded two-core machine (run it through the training slot):

    .venv/bin/python bench/world_wer_bench.py [--compare split_f0=1]
"""

from __future__ import annotations

import argparse
import shlex
import sys
import tempfile
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

LINES = [
    "It snowed, rained, and hailed the same morning.",
    "When the sun goes down, the city lights come on across the river.",
    "Well, I did not expect to see you here today, but I am really glad that you came.",
    "The quick brown fox jumps over the lazy dog, and then it runs away into the forest.",
    "I told you once, I told you twice, and I will not tell you again.",
    "After the long winter, the garden slowly came back to life.",
    "My brother, who lives in the city, called me late last night.",
    "If you want to catch the early train, you should leave before six.",
    "The old man sat by the fire, reading a book about ships.",
    "Yes, the kettle is on, and the tea will be ready soon.",
    "We walked along the beach, collecting shells and smooth stones.",
    "Before you go out, please close the windows and lock the door.",
    "The children laughed, the dog barked, and the baby finally fell asleep.",
    "Honestly, I think the blue one looks better than the green one.",
    "Although it was raining, the market was full of people buying fruit.",
    "She opened the letter, read it twice, and put it back in the drawer.",
]


def main(argv: list[str] | None = None) -> int:
    """Synthesise the lines per setting, transcribe them all, print WER per setting and arousal."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--compare", default="split_f0=1", help="the variant of the shipped settings, KEY=VALUE")
    args = ap.parse_args(argv)
    warnings.filterwarnings("ignore")
    import voice_bench as vb
    from world_bench import variant

    from avatar.tts import piper
    from avatar.types import VAD

    settings = {"shipped": piper.WORLD, args.compare: variant(piper.WORLD, args.compare)}
    paths: dict[tuple[str, int, float], Path] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, ws in settings.items():
            be = piper.PiperBackend(world=ws)
            if be.engine_for(None) != "piper":
                sys.exit("the neural voice is not installed: nothing to measure")
            for i, text in enumerate(LINES):
                for a in (-0.8, 0.8):
                    sp = be.synthesize(text, VAD(0.0, a, 0.0), seed=0)
                    p = Path(tmp) / f"{len(paths):03d}.wav"
                    vb.write16(p, sp.audio, sp.sample_rate)
                    paths[(name, i, a)] = p
            print(f"{name}: synthesised", flush=True)
        hyps = vb.transcribe(list(paths.values()))
    print(f"pocketsphinx WER, {len(LINES)} lines with commas, seed 0:")
    for name in settings:
        row = []
        for a in (-0.8, 0.8):
            err = n = 0
            for i, text in enumerate(LINES):
                de, dn = vb.wer(vb.words(text), vb.words(hyps[str(paths[(name, i, a)])]))
                err += de
                n += dn
            row.append(f"a={a:+.1f}: {100 * err / n:.1f} % ({err}/{n} words)")
        print(f"  {name:>14}: " + ", ".join(row))
    print("rerun: .venv/bin/python bench/world_wer_bench.py " + " ".join(shlex.quote(a) for a in sys.argv[1:]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
