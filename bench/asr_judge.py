"""Outside speech judge: pocketsphinx 5.1.1 with its bundled US English model transcribes 16 kHz mono WAVs.

Runs in its own venv (bench/setup_asr.sh makes bench/.venv-asr); prints one JSON line per file,
{"path", "text"}. The decoder is pocketsphinx's default (its en-us acoustic model, 3-gram language model and
dictionary), not tuned to our sentences, so it favours no voice it was not built for.

    bench/.venv-asr/bin/python bench/asr_judge.py a.wav b.wav
"""

from __future__ import annotations

import json
import sys
import wave


def transcribe(decoder, path: str) -> str:
    """The decoder's best hypothesis for one 16 kHz mono 16-bit WAV."""
    with wave.open(path, "rb") as w:
        if w.getframerate() != 16000 or w.getnchannels() != 1 or w.getsampwidth() != 2:
            raise SystemExit(f"{path}: need 16 kHz mono 16-bit PCM")
        raw = w.readframes(w.getnframes())
    decoder.start_utt()
    decoder.process_raw(raw, full_utt=True)
    decoder.end_utt()
    hyp = decoder.hyp()
    return hyp.hypstr if hyp is not None else ""


def main(argv: list[str]) -> int:
    """Transcribe each WAV named on the command line (or run a self-check)."""
    from pocketsphinx import Decoder

    decoder = Decoder(samprate=16000, loglevel="FATAL")
    if argv == ["--self-check"]:
        import math
        import os
        import struct
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            p = os.path.join(tmp, "tone.wav")
            with wave.open(p, "wb") as w:
                w.setnchannels(1)
                w.setsampwidth(2)
                w.setframerate(16000)
                w.writeframes(b"".join(struct.pack("<h", int(3000 * math.sin(i / 10))) for i in range(16000)))
            transcribe(decoder, p)
        print("pocketsphinx ok")
        return 0
    for path in argv:
        print(json.dumps({"path": path, "text": transcribe(decoder, path)}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
