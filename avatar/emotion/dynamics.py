"""Dialogue dynamics: a character's mood moves line by line under its personality.

Follows "Automatically Select Emotion for Response via Personality-affected Emotion Transition"
(Wen et al., Findings of ACL 2021): the next emotional state is the previous state plus a change that
depends on the new stimulus (here, the VAD read from the line's text) and on the Big Five personality.

    temperament b   = Mehrabian (1996) Big-Five -> PAD regression
    reactivity  r_d = base_d * personality gain_d          (how far one line pulls the mood)
    s_t = s_{t-1} + r ⊙ (e_t - s_{t-1}) + k (b - s_{t-1})  (then clipped to [-1, 1])

so a mood carries over (inertia = 1 - r), is pulled by each new line, and relaxes towards the
character's temperament. Numbers and sources: docs/emotion.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
from pydantic import ConfigDict, Field

from avatar.errors import InputError
from avatar.types import VAD, Strict


class Personality(Strict):
    """Big Five traits, each in [0, 1] (0.5 is average)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    openness: float = Field(default=0.5, ge=0.0, le=1.0)
    conscientiousness: float = Field(default=0.5, ge=0.0, le=1.0)
    extraversion: float = Field(default=0.5, ge=0.0, le=1.0)
    agreeableness: float = Field(default=0.5, ge=0.0, le=1.0)
    neuroticism: float = Field(default=0.5, ge=0.0, le=1.0)

    def temperament(self) -> VAD:
        """Baseline mood from Mehrabian's (1996) regression of PAD temperament on the Big Five."""
        o, c, e, a = (2 * x - 1 for x in (self.openness, self.conscientiousness, self.extraversion,
                                          self.agreeableness))
        s = 1 - 2 * self.neuroticism  # Mehrabian uses emotional stability, the opposite of neuroticism
        p = 0.21 * e + 0.59 * a + 0.19 * s
        ar = 0.15 * o + 0.30 * a - 0.57 * s
        d = 0.25 * o + 0.17 * c + 0.60 * e - 0.32 * a
        # Temperament is a mild, lasting bias, not an emotion: scale it well inside the range.
        return VAD.clipped(0.4 * p, 0.4 * ar, 0.4 * d)

    def reactivity(self) -> np.ndarray:
        """Per-dimension share of the gap to a new stimulus that one line closes, in (0, 1)."""
        n, e, c = self.neuroticism - 0.5, self.extraversion - 0.5, self.conscientiousness - 0.5
        # Neurotic characters swing more (emotional lability); extraverts more in arousal; conscientious
        # ones are steadier. Base 0.6: one line moves most of the way, a second line finishes it.
        gains = np.array([1 + 0.8 * n - 0.3 * c, 1 + 0.6 * n + 0.4 * e - 0.3 * c, 1 + 0.4 * e - 0.4 * n])
        return np.clip(0.6 * gains, 0.1, 0.95)


@dataclass
class EmotionDynamics:
    """The transition rule for one character: `step(state, stimulus) -> next state` (pure)."""

    personality: Personality = field(default_factory=Personality)
    relax: float = 0.1  # share of the distance to temperament recovered per line
    negativity_bias: float = 0.25  # neurotic characters take negative valence harder (scaled by N)

    def __post_init__(self) -> None:
        if not 0.0 <= self.relax < 1.0:
            raise InputError(f"relax must be in [0, 1), got {self.relax}")

    def step(self, state: VAD, stimulus: VAD) -> VAD:
        """The next state after a line whose text carries `stimulus`."""
        s, e = state.as_array().astype(np.float64), stimulus.as_array().astype(np.float64)
        b = self.personality.temperament().as_array().astype(np.float64)
        r = self.personality.reactivity().copy()
        if e[0] < s[0]:
            r[0] = min(0.95, r[0] * (1 + self.negativity_bias * 2 * (self.personality.neuroticism - 0.5) * 2))
        nxt = s + r * (e - s) + self.relax * (b - s)
        return VAD.clipped(*nxt)

    def initial(self) -> VAD:
        """The state before any line: the character's temperament."""
        return self.personality.temperament()


class Dialogue:
    """Tracks each character's mood across a dialogue; `say` returns the VAD to perform a line with."""

    def __init__(self, analyze: Callable[[str], VAD], personalities: dict[str, Personality] | None = None,
                 base_emotion: dict[str, VAD] | None = None) -> None:
        """`analyze` maps a line of text to its VAD (normally avatar.emotion.text_vad)."""
        self._analyze = analyze
        self._dyn = {k: EmotionDynamics(p) for k, p in (personalities or {}).items()}
        self._state: dict[str, VAD] = {}
        for name, vad in (base_emotion or {}).items():
            self._state[name] = vad

    def dynamics(self, character: str) -> EmotionDynamics:
        """The dynamics of a character (average personality if none was given)."""
        return self._dyn.setdefault(character, EmotionDynamics())

    def state(self, character: str) -> VAD:
        """The character's current mood."""
        return self._state.get(character) or self.dynamics(character).initial()

    def say(self, character: str, text: str, override: VAD | None = None) -> VAD:
        """Advance the character's mood by one line; an override sets the stimulus instead of the text."""
        stimulus = override if override is not None else self._analyze(text)
        new = self.dynamics(character).step(self.state(character), stimulus)
        self._state[character] = new
        return new
