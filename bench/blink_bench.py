"""Blinks in the final face of `avatar say`: rate per minute and a full blink in every clip over 3 s.

    .venv/bin/python bench/blink_bench.py [--seed 0]

Ten lines of about 2-6 s are performed by the pipeline `avatar say` runs (avatar.pipeline.perform: emotion,
speech, face model and the expression layer after it); the FaceMotion it returns is the one `say` renders and
writes as face.json. A blink is a run of frames with both eyeBlink channels >= 0.5; it is full when both reach
0.8 on one frame. Goal (issue 22): 10-25 blinks per minute over the ten clips, every clip longer than 3 s has at
least one full blink. Also prints how many blinks start within 0.4 s after a pause (speech gap) begins.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

LINES = (
    "Hello there, it is good to see you. Come in and sit down.",
    "I am so happy to see you again! We have missed you so much.",
    "Please close the door when you leave, and switch off the lights in the hall.",
    "My old dog died this morning. I miss him so much, and the house is so quiet now.",
    "How dare you lie to me again! I trusted you, and you threw it all away.",
    "The train leaves at nine, and the next one comes an hour later, at ten.",
    "Something is moving in the dark. I am really scared. Please, stay close to me.",
    "Wow, I never expected to see you here, what a lovely surprise!",
    "We should meet tomorrow at the cafe near the old bridge, if you have time in the afternoon.",
    "That was the most disgusting meal I have ever eaten, and I will never go back there.",
)


def blinks(face) -> tuple[list[int], list[bool]]:
    """Onset frames of blinks (both lids >= 0.5) and whether each closes fully (both >= 0.8)."""
    both = np.minimum(face.channel("eyeBlinkLeft"), face.channel("eyeBlinkRight"))
    closed = both >= 0.5
    starts = list(np.flatnonzero(closed & ~np.concatenate([[False], closed[:-1]])))
    full = []
    for s in starts:
        e = s
        while e < len(closed) and closed[e]:
            e += 1
        full.append(bool(both[s:e].max() >= 0.8))
    return starts, full


def main() -> None:
    """Perform the lines, count the blinks, print the figures."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    print("rerun: .venv/bin/python bench/blink_bench.py " + " ".join(sys.argv[1:]))
    from avatar.face.teacher import speech_activity
    from avatar.pipeline import perform

    total_s = 0.0
    total_b = 0
    at_pause = 0
    ok = True
    t0 = time.perf_counter()
    print(f"{'s':>5s} {'blinks':>6s} {'full':>4s} {'/min':>5s}  line")
    for line in LINES:
        perf = perform(line, seed=args.seed)
        face = perf.face
        dur = face.num_frames / face.fps
        starts, full = blinks(face)
        total_s += dur
        total_b += len(starts)
        act = speech_activity(perf.speech.timeline, face.fps, face.num_frames) if perf.speech.timeline else None
        if act is not None:
            ends = np.flatnonzero((act[:-1] > 0.5) & (act[1:] <= 0.5)) + 1
            at_pause += sum(any(0 <= s - e <= int(0.4 * face.fps) for e in ends) for s in starts)
        good = dur <= 3.0 or any(full)
        ok &= good
        print(f"{dur:5.2f} {len(starts):6d} {sum(full):4d} {len(starts) / dur * 60:5.1f}  {line[:60]}"
              + ("" if good else "   <- no full blink"))
    rate = total_b / total_s * 60
    print(f"\n{len(LINES)} clips, {total_s:.1f} s, {total_b} blinks: {rate:.1f} per minute (goal 10-25); "
          f"every clip over 3 s has a full blink: {ok}; blinks starting within 0.4 s of a pause: {at_pause}; "
          f"{time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
