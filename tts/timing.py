"""Speech timing from emotion: speaking rate bounds, pauses at punctuation and between sentences, lead-in, fade.

Pure rules, shared by the backends that can place pauses exactly (piper). People pause a few hundred ms
between sentences, longer when calm or sad and after a trailing "..." or a dash (Goldman-Eisler 1968; Zellner
1994, pauses of 200-600 ms between sentences in read speech; Campione & Véronis 2002, median inter-sentence
pauses about 0.5 s in read speech); commas get a short, audible break (Krivokapić 2007, 100-250 ms at
phrase boundaries). Arousal speeds speech up (Juslin & Laukka 2003) but words per minute stay within a
comfortable 130-200 range at both ends so excited lines never become a gabble.
"""

from __future__ import annotations

import re

from avatar.types import VAD

#: Silence before the first sentence (the audio should not start on the first phoneme).
LEAD_IN_S = 0.10
#: Silence after the last sentence, faded out over `FADE_OUT_S` from the end of speech.
TAIL_S = 0.12
FADE_OUT_S = 0.08
FADE_IN_S = 0.005
#: Inter-sentence pause bounds (seconds).
SENTENCE_PAUSE_MIN_S, SENTENCE_PAUSE_MAX_S = 0.18, 0.50
#: Pause at a clause boundary inside a sentence, by punctuation kind, for neutral arousal (seconds).
CLAUSE_PAUSE_S = {"comma": 0.14, "colon": 0.20, "semicolon": 0.22, "dash": 0.26, "ellipsis": 0.38, "stop": 0.22}

_TRAILING = re.compile(r"(\.\.\.|…|[-–—]+)[\"'”’)\]]*\s*$")


def speed_factor(vad: VAD) -> float:
    """Speaking-rate factor against the voice's neutral rate: 1 + 0.18a + 0.05v, within 0.82..1.2.

    With the neutral rate near 165 words a minute this stays inside 130-200 over the whole VAD cube (Schröder
    2004's +0.5A% is scaled down: his rules are for non-extreme emotions, and ours reach a = +-1)."""
    return min(1.2, max(0.82, 1.0 + 0.18 * vad.arousal + 0.05 * vad.valence))


def _arousal_pause(vad: VAD) -> float:
    """Pause length factor: longer when calm (low arousal), shorter when excited (1.3 at a=-1, 0.75 at a=+1)."""
    a = vad.arousal
    return 1.0 - 0.3 * a if a < 0 else 1.0 - 0.25 * a


def clause_pause_s(kind: str, vad: VAD) -> float:
    """The pause at one punctuation mark inside a sentence (comma, colon, semicolon, dash, ellipsis, stop)."""
    return CLAUSE_PAUSE_S[kind] * _arousal_pause(vad)


def sentence_pause_s(sentence: str, vad: VAD) -> float:
    """Time from the end of `sentence`'s last phoneme to the next sentence's first: 0.3 s at neutral arousal,
    0.18-0.5 s, longer when calm and after a trailing '...' or dash. The silence one hears is 50-100 ms
    longer (a sentence's last sound fades before its phoneme ends), so 200-600 ms."""
    pause = 0.30 * _arousal_pause(vad)
    m = _TRAILING.search(sentence)
    if m:
        pause += 0.12 if m.group(1) in ("...", "…") else 0.08
    return min(SENTENCE_PAUSE_MAX_S, max(SENTENCE_PAUSE_MIN_S, pause))


def punctuation_kind(gap: str) -> str | None:
    """The kind of pause the text between two words asks for ('comma', 'dash', ...), or None for a plain space.

    Only punctuation followed by a space or the end counts, so '1,250' and '3.14' are not pauses."""
    if "..." in gap or "…" in gap:
        return "ellipsis"
    if "—" in gap or "–" in gap or re.search(r"(^|\s)-+(\s|$)", gap) or "--" in gap:
        return "dash"
    m = re.search(r"([,;:.!?])[\"'”’)\]]*(\s|$)", gap)
    if not m:
        return None
    return {",": "comma", ";": "semicolon", ":": "colon"}.get(m.group(1), "stop")
