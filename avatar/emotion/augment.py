"""More sentences to distil on: variants of the training sentences, for a teacher to label.

Knowledge distillation carries more of a teacher's reading when the student sees it on more inputs than the
labelled ones. With no other English text on this machine, the extra inputs are made from EmoBank *train*
sentences (never dev): a contiguous crop (50-90 % of the words), the sentence with 15 % of its words dropped,
or two sentences joined (capped at 60 words). Deterministic for a seed; duplicates and exact training
sentences are skipped. The teacher (`avatar.emotion.teacher --augment N`) then labels them.
"""

from __future__ import annotations

import random

MIN_WORDS = 4
MAX_JOINED_WORDS = 60


def augment(texts: list[str], n: int, seed: int = 0) -> list[str]:
    """`n` new sentences made from `texts` (crops, word dropout, joins), none equal to an input."""
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    pool = [t.split() for t in texts if len(t.split()) >= MIN_WORDS]
    if n and not pool:
        raise ValueError(f"no sentence of at least {MIN_WORDS} words to augment")
    rng = random.Random(seed)
    seen = set(texts)
    out: list[str] = []
    tries = 0
    while len(out) < n:
        tries += 1
        if tries > 50 * n + 1000:  # a tiny pool cannot give n distinct variants
            raise ValueError(f"could make only {len(out)} distinct variants of {len(pool)} sentences")
        kind = rng.random()
        words = rng.choice(pool)
        if kind < 0.4:
            k = max(3, int(len(words) * rng.uniform(0.5, 0.9)))
            start = rng.randrange(0, len(words) - k + 1)
            new = words[start:start + k]
        elif kind < 0.7:
            new = [w for w in words if rng.random() > 0.15] or words
        else:
            new = (words + rng.choice(pool))[:MAX_JOINED_WORDS]
        text = " ".join(new)
        if text not in seen:
            seen.add(text)
            out.append(text)
    return out
