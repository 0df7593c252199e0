"""Gesture repertoire: word-cued deictic and metaphoric gestures, beats, rest poses, retraction in pauses.

A post-layer for any BodyMotion (the procedural teacher's and the diffusion model's alike; docs/gesture.md,
"Gesture repertoire", has the table and sources). The denoiser sees prosody only, never words, so the gestures
that depend on *what* is said are planned here from the timeline's words:
- deictic: a hand on the chest on "I / me / my" (self-touch), a point forward on "you / your";
- metaphoric (McNeill 1992; Kendon 2004's gesture families): both palms up offering on the first content word
  of a sentence (the "conduit" palm-up open hand), a shrug (palms up, shoulders raised, head tilted) at the end
  of a question, a dismissive outward flick of the hand on a negation (Kendon's "horizontal palm" /
  "sweep" family), a vertical-hand chop on emphatic words and on stressed words in anger, both hands raised
  palms out and pulled back in fear, arms spread on "all / everything / whole", hands close on "little / bit";
- beats on the stressed syllables inside a held gesture (a small forearm and wrist dip whose lowest point is
  on the stressed vowel);
- rest poses that change between phrases (arms loose, hands clasped low, one hand on the hip, hands loosely
  together at the waist), the choice weighted by VAD and never the same twice in a row, held in the pauses:
  the hands retract to the rest pose whenever speech stops (preparation and retraction as in McNeill's
  gesture phrase);
- size and speed from arousal: lower arousal gives fewer cue gestures, slower preparation and retraction and
  poses drawn part-way towards the loose rest; higher arousal the opposite.
- hand shapes (avatar.rig.hands) per gesture: flat, point, cupped, spread, pinch, a fist in negative-valence
  chops, relaxed elsewhere, appended to the motion as the 30 VRM finger bones.
Arm poses are joint angles solved once by inverse kinematics for palm positions and orientations relative to
the rest skeleton (`POSES`, checked in tests/test_gesture_repertoire.py) and interpolated in those angles, which
stay inside the joint limits because the limits are boxes in the same angles. The layer's weight blends its
arms with the source motion's (slerp), so between cues the source's own speech-driven motion shows.
Same inputs and seed give the same motion; the random choices also depend on the words, so different lines
said with one seed differ.
"""

from __future__ import annotations

import logging
import zlib
from dataclasses import dataclass, replace

import numpy as np

from avatar.rig.hands import FINGER_BONES, HAND_SHAPES, finger_rotations
from avatar.rig.kinematics import rotations_in_skeleton_order
from avatar.rig.rotations import euler_to_quat, quat_mirror_x, quat_mul, quat_normalize, quat_slerp
from avatar.rig.skeleton import HUMANOID, Skeleton
from avatar.types import BodyMotion, Timeline

from .body_language import clamp_to_limits

log = logging.getLogger(__name__)

_SEED_SALT = 0x6E57

#: The pose channels, left side: (joint, local axis 0/1/2 = X/Y/Z) in the joint's limit order convention.
CHANNELS: tuple[tuple[str, int], ...] = (
    ("Shoulder", 1), ("Shoulder", 2), ("UpperArm", 0), ("UpperArm", 1), ("UpperArm", 2),
    ("LowerArm", 0), ("LowerArm", 1), ("Hand", 0), ("Hand", 1), ("Hand", 2))

#: Left-arm poses in degrees over CHANNELS, solved by least squares (scipy) for a palm centre (8 cm along the
#: hand from the wrist) at a target point, with a target palm normal and finger direction, inside the joint
#: limits. Targets (metres: +X the character's left, Y up, +Z forward; palm normal / fingers):
#: loose (0.20, 0.82, 0.04) palm to the thigh; clasped (0.03, 1.00, 0.17) palms together low in front;
#: hip (0.15, 1.00, 0.06) palm on the hip; waist (0.06, 1.08, 0.22) hands loosely together;
#: self (0.0, 1.31, 0.185) palm on the sternum (in front of a full chest); point (0.16, 1.30, 0.50) fingers forward;
#: offer (0.22, 1.13, 0.38) palm up; shrug (0.33, 1.08, 0.22) palm up, clavicle raised;
#: flick0 -> flick1 (0.08, 1.18, 0.32) palm down -> (0.45, 1.12, 0.22) palm out; chop0 -> chop1
#: (0.20, 1.40, 0.33) -> (0.20, 1.12, 0.42) hand vertical; fear (0.12, 1.34, 0.24) palm forward, fingers up,
#: elbows in at (0.17, 1.12, 0.10), clavicle raised; wide (0.58, 1.25, 0.20) palm forward; small (0.05, 1.22, 0.32) palms facing. The clavicle's
#: protraction (first channel) is bounded at 12 degrees, so the posture layer's offsets keep it in its limit.
POSES: dict[str, tuple[float, ...]] = {
    "loose": (5.5, 0.0, 3.7, 10.2, -87.7, -4.9, -32.7, -4.7, 15.3, 0.5),
    "clasped": (12.0, 0.0, 70.2, -24.2, -56.3, -34.9, -81.3, -11.1, 22.4, 57.9),
    "hip": (12.0, 0.0, 9.1, 39.7, -93.1, 2.0, -90.7, 3.0, -13.8, -4.2),
    "waist": (12.0, -0.1, 57.9, -8.6, -67.0, -39.0, -90.2, -25.0, -19.4, 19.3),
    "self": (3.5, 0.0, 38.9, -47.4, -24.3, -25.9, -123.3, -24.1, -5.0, -12.2),
    "point": (2.3, 0.0, 14.3, -55.1, -29.2, -6.5, -66.4, -0.3, 18.6, 19.2),
    "offer": (12.0, -0.1, 10.8, -18.8, -86.4, -65.0, -70.1, -25.0, -14.8, -2.1),
    "shrug": (12.0, 13.8, -11.6, 6.8, -100.0, -64.4, -75.8, -25.0, -30.0, -16.9),
    "flick0": (12.0, 0.0, 44.4, -35.4, -46.6, 34.3, -92.4, 25.0, 30.0, -0.6),
    "flick1": (12.0, 0.0, 8.2, -9.9, -57.9, 28.3, -62.0, 25.0, 30.0, 66.7),
    "chop0": (12.0, 0.0, 9.9, -39.0, -40.7, -21.8, -111.8, -9.1, 18.9, 35.4),
    "chop1": (11.4, 0.0, 28.9, -39.0, -51.7, -18.4, -59.4, -16.6, 3.6, 16.2),
    "fear": (12.0, 11.6, 29.2, -14.6, -91.8, 62.5, -103.1, 25.0, -13.1, 69.0),
    "wide": (12.0, 0.0, -19.6, -12.0, -49.5, -31.7, -71.3, -22.4, 0.8, 53.2),
    "small": (12.0, 0.0, 46.8, -35.3, -57.1, -5.3, -91.5, -4.5, -0.4, 41.6),
}
#: Hand shapes (avatar.rig.hands.HAND_SHAPES) of the gestures and rest poses; a chop in negative valence is a fist.
HANDS: dict[str, str] = {"self": "flat", "point": "point", "offer": "cupped", "shrug": "spread", "flick": "spread",
                         "chop": "flat", "fear": "spread", "wide": "spread", "small": "pinch",
                         "loose": "relaxed", "clasped": "cupped", "hip": "flat", "waist": "relaxed"}
BEAT_HANDS: tuple[str, ...] = ("relaxed", "cupped", "flat", "pinch")
#: Rest poses held in pauses; the two-handed ones use both arms, "hip" one arm (the other hangs loose).
REST_POSES: tuple[str, ...] = ("loose", "clasped", "hip", "waist")
#: Gestures: kind -> (preparation pose, stroke pose). One-pose gestures hold what they reach.
GESTURES: dict[str, tuple[str, str]] = {
    "self": ("self", "self"), "point": ("point", "point"), "offer": ("offer", "offer"),
    "shrug": ("shrug", "shrug"), "flick": ("flick0", "flick1"), "chop": ("chop0", "chop1"),
    "fear": ("fear", "fear"), "wide": ("wide", "wide"), "small": ("small", "small"), "beat": ("", ""),
}

#: Which cue wins when two gestures would overlap (first wins).
PRIORITY: tuple[str, ...] = ("shrug", "self", "point", "flick", "fear", "chop", "wide", "small", "offer", "beat")
#: Gesture poses a beat gesture's place is blended from (two of them, at random): beats happen all over
#: gesture space, not in one spot.
BEAT_SPACE: tuple[str, ...] = ("offer", "chop1", "small", "point", "waist", "wide", "shrug")

_SELF = {"i", "me", "my", "mine", "myself", "i'm", "i've", "i'll", "i'd", "im", "ive"}
_YOU = {"you", "your", "yours", "yourself", "you're", "you've", "you'll", "you'd", "youre", "ya"}
_NEG = {"no", "not", "never", "nothing", "nobody", "none", "nowhere", "neither", "nor", "nope", "cannot"}
_EMPH = {"really", "very", "absolutely", "must", "totally", "completely", "always", "enough", "stop", "every",
         "definitely", "certainly", "so", "truly", "utterly", "seriously", "exactly", "now"}
_WIDE = {"all", "everything", "everyone", "everybody", "whole", "world", "huge", "big", "entire", "everywhere",
         "together"}
_SMALL = {"little", "bit", "small", "tiny", "just", "slightly", "few"}
_WH = {"what", "why", "how", "who", "where", "when", "which", "whose", "whom"}
_AUX = {"do", "does", "did", "is", "are", "was", "were", "can", "could", "would", "will", "should", "shall",
        "have", "has", "had", "may", "might", "am", "isn't", "aren't", "don't", "didn't", "won't", "can't"}
_MARKERS = {"so", "and", "but", "well", "then", "now", "okay", "ok", "oh", "hey", "right", "anyway"}
_FUNCTION = {"the", "and", "but", "for", "with", "that", "this", "from", "into", "about", "then", "than", "they",
             "them", "their", "there", "here", "were", "was", "have", "has", "had", "will", "would", "could",
             "should", "what", "when", "where", "which", "while", "been", "being", "its", "our", "your", "his",
             "her", "she", "him"}


@dataclass(frozen=True)
class GestureEvent:
    """One planned gesture: `kind` (a GESTURES key), stroke end `time` (s), hold end (s), `hands` 'L'/'R'/'LR',
    its `size` (0..1, towards the loose rest below 1) and the stressed-syllable times beaten during the hold."""

    kind: str
    time: float
    hold_end: float
    hands: str
    size: float
    beats: tuple[float, ...] = ()
    pose: tuple[float, ...] | None = None  # a beat gesture's own place in gesture space (CHANNELS, degrees)
    hand: str = "relaxed"  # its hand shape (avatar.rig.hands.HAND_SHAPES)


@dataclass(frozen=True)
class RestHold:
    """A rest pose held from `start` to `end` (s) in a pause; `hands` 'LR', or the side of a one-arm pose."""

    pose: str
    start: float
    end: float
    hands: str


@dataclass(frozen=True)
class GesturePlan:
    """What the layer will do: the gestures and the rest holds, in time order."""

    events: tuple[GestureEvent, ...]
    rests: tuple[RestHold, ...]
    beat_times: tuple[float, ...] = ()  # stressed syllables (timeline) or audio onsets: where movement may rest


def _norm(word: str) -> str:
    return word.lower().strip(" \t\"'.,!?;:()[]-").replace("\u2019", "'")


def _cue(word: str) -> str | None:
    """The gesture a word cues, if any (before the VAD-dependent ones)."""
    w = _norm(word)
    if w in _SELF:
        return "self"
    if w in _YOU:
        return "point"
    if w in _NEG or w.endswith("n't"):
        return "flick"
    if w in _WIDE:
        return "wide"
    if w in _SMALL:
        return "small"
    if w in _EMPH:
        return "chop"
    return None


def sentences(timeline: Timeline, gap: float = 0.18) -> list[list[int]]:
    """Word indices grouped into sentences: a gap of `gap` s or more between words ends one (the TTS backends
    pause at sentence punctuation, and the timeline's words carry none)."""
    out: list[list[int]] = []
    for i, w in enumerate(timeline.words):
        if out and w.start - timeline.words[out[-1][-1]].end < gap:
            out[-1].append(i)
        else:
            out.append([i])
    return out


def is_question(words: list[str]) -> bool:
    """A sentence read as a question: it opens (after a discourse marker such as "so") with a wh-word, or with an
    auxiliary not followed by a negation."""
    ws = [_norm(w) for w in words]
    if ws and ws[0] in _MARKERS:
        ws = ws[1:]
    if len(ws) < 3:
        return False
    return ws[0] in _WH or (ws[0] in _AUX and ws[1] not in _NEG and not ws[1].endswith("n't"))


def _stress_in(timeline: Timeline, a: float, b: float) -> list[float]:
    """Times of stressed vowels (IPA marks) between a and b."""
    return [p.start for p in timeline.phonemes if a <= p.start < b and p.phoneme and p.phoneme[0] in "ˈ'"]


def pauses(speech: np.ndarray, fps: float, min_len: float = 0.35) -> list[tuple[float, float]]:
    """Silent stretches (s) of at least `min_len` from a per-frame speech mask, the clip's edges included."""
    out = []
    s = np.asarray(speech, dtype=bool)
    k = 0
    while k < len(s):
        if s[k]:
            k += 1
            continue
        j = k
        while j < len(s) and not s[j]:
            j += 1
        if (j - k) / fps >= min_len or k == 0 or j == len(s):
            out.append((k / fps, j / fps))
        k = j
    return out


def plan_gestures(vad: np.ndarray, speech: np.ndarray, fps: float, timeline: Timeline | None = None,
                  accents: np.ndarray | None = None, seed: int = 0, onsets: np.ndarray | None = None) -> GesturePlan:
    """Plan gestures and rest holds for a clip from per-frame VAD [T, 3], its speech mask [T], the words and
    (without words) the audio's pitch accents and onsets (s)."""
    vad = np.asarray(vad, dtype=np.float64).reshape(-1, 3)
    n = len(vad)
    dur = n / fps
    words = [w.word for w in timeline.words] if timeline is not None else []
    key = zlib.crc32(" ".join(words).encode()) if words else int(np.asarray(speech, dtype=bool).sum())
    rng = np.random.default_rng([int(seed), _SEED_SALT, key])

    def at(t: float) -> np.ndarray:
        return vad[min(n - 1, max(0, int(t * fps)))]

    cand: list[GestureEvent] = []
    if timeline is not None and timeline.words:
        for sent in sentences(timeline):
            ws = [timeline.words[i] for i in sent]
            v, a, d = at(ws[0].start)
            e = (a + 1) / 2
            fear = max(0.0, -v) * max(0.0, a) * max(0.0, -d)
            anger = max(0.0, -v) * max(0.0, a) * max(0.0, d)
            for w in ws:
                kind = _cue(w.word)
                if kind is None and anger > 0.08 and len(_norm(w.word)) >= 4 and _norm(w.word) not in _FUNCTION:
                    kind = "chop"
                if kind is None:
                    continue
                if rng.random() > 0.25 + 0.75 * e:
                    continue
                stress = _stress_in(timeline, w.start, w.end)
                cand.append(_event(kind, (stress[0] if stress else w.start + 0.3 * (w.end - w.start)), w.end,
                                   e, v, rng, timeline))
            if fear > 0.08:  # withdrawal: both hands up, palms out, at the sentence's start
                cand.append(_event("fear", ws[0].start + 0.1, ws[min(len(ws) - 1, 2)].end, e, v, rng, timeline))
            # Beat gestures on stressed syllables, each in its own place of gesture space; the cues above win.
            stress = _stress_in(timeline, ws[0].start, ws[-1].end)
            last = -10.0
            for ts in stress:
                if ts - last < 1.4 - 0.6 * e or rng.random() > 0.2 + 0.8 * e:
                    continue
                hold = min(ts + 0.7 + 0.5 * rng.random(), ws[-1].end + 0.2)
                pose = beat_place(rng)
                hands = "LR" if rng.random() < 0.1 + 0.3 * e else ("R" if rng.random() < 0.6 else "L")
                size = float(np.clip(0.45 + 0.55 * e, 0.45, 1.0))
                cand.append(GestureEvent("beat", float(ts), float(hold), hands, size,
                                         tuple(_stress_in(timeline, ts + 0.25, hold)), pose,
                                         hand=str(rng.choice(BEAT_HANDS))))
                last = ts
            if is_question([w.word for w in ws]):
                last = ws[-1]
                cand.append(_event("shrug", max(last.start, last.end - 0.15), last.end + 0.2, e, v, rng, timeline))
            elif v > -0.35 and rng.random() < 0.35 + 0.55 * e:  # fills gaps only: lowest PRIORITY
                content = [w for w in ws if len(_norm(w.word)) >= 4 and _norm(w.word) not in _FUNCTION]
                if content:
                    w = content[0]
                    stress = _stress_in(timeline, w.start, w.end)
                    ev = _event("offer", stress[0] if stress else w.start + 0.1, w.end, e, v, rng, timeline)
                    # Offerings vary: one hand or both, and where in front of the body (as beats do).
                    cand.append(replace(ev, pose=offer_place(rng)))
    elif accents is not None and len(accents):
        # Audio only: a metaphoric gesture on the strongest accents, spaced out.
        on = np.sort(np.asarray(onsets if onsets is not None else [], dtype=np.float64))
        for ta in np.asarray(accents, dtype=np.float64):
            # An accent's F0 peak falls inside its syllable: the stroke lands on the onset that starts it.
            before = on[(on <= ta) & (on >= ta - 0.25)]
            ta = float(before[-1]) if before.size else float(ta)
            v, a, d = at(float(ta))
            e = (a + 1) / 2
            if rng.random() < 0.2 + 0.4 * e:
                kind = "chop" if (a > 0.3 and d > 0.2) else ("offer" if v > -0.2 else "small")
                if rng.random() < 0.5:  # or a beat gesture somewhere in gesture space
                    kind = "beat"
                ev = _event(kind, float(ta), float(ta) + 0.5 + 0.5 * rng.random(), e, v, rng, None)
                cand.append(replace(ev, pose=beat_place(rng)) if kind == "beat" else ev)

    # Spacing: each gesture needs its preparation after the previous one's stroke. A cue too near the clip's
    # start moves its stroke up to 0.35 s later; where two collide the stronger cue wins (PRIORITY).
    events: list[GestureEvent] = []
    for ev in sorted(cand, key=lambda x: (PRIORITY.index(x.kind), x.time)):
        e = (at(ev.time)[1] + 1) / 2
        earliest = _stroke(e) + 0.1  # a clip may open mid-preparation, not mid-stroke
        if ev.time < earliest:
            if earliest - ev.time > 0.35:
                continue
            ev = replace(ev, time=earliest, hold_end=max(ev.hold_end, earliest + 0.3))
        if ev.time > dur - 0.1:
            continue
        gap = 0.9 - 0.4 * e
        if any(abs(ev.time - o.time) < gap or (o.time < ev.time < o.hold_end + 0.1) or (ev.time < o.time < ev.hold_end + 0.1)
               for o in events):
            continue
        events.append(ev)
    events.sort(key=lambda x: x.time)
    beat_times = np.zeros(0)
    if timeline is not None:
        beat_times = np.array(sorted(p.start for p in timeline.phonemes if p.phoneme and p.phoneme[0] in "ˈ'ˌ,"))
    if not beat_times.size and onsets is not None:
        beat_times = np.sort(np.asarray(onsets, dtype=np.float64))
    if beat_times.size:
        # The hand leaves a hold on a beat, and beats on those inside it (the audio's onsets without a timeline).
        for i, ev in enumerate(events):
            after = beat_times[(beat_times >= ev.hold_end - 0.15) & (beat_times <= ev.hold_end + 0.35)]
            end = float(after[0]) if after.size else ev.hold_end
            inside = beat_times[(beat_times > ev.time + 0.25) & (beat_times < end - 0.05)]
            events[i] = replace(ev, hold_end=end, beats=ev.beats if timeline is not None and ev.beats
                                else tuple(float(x) for x in inside))

    # Rest holds in the pauses, new pose each time, after any gesture held into the pause.
    rests: list[RestHold] = []
    prev = None
    for a, b in pauses(speech, fps):
        busy = [ev.hold_end for ev in events if ev.time < b]
        a = max(a, max(busy, default=0.0) + 0.2) if busy and max(busy) > a - 0.2 else a
        if a >= b or (b - a < 0.3 and not (a <= 0.0 or b >= dur)):
            continue
        v, ar, d = at(a)
        w = np.array([1.0, 0.9 - 0.4 * ar, 0.6 + 0.8 * max(d, 0.0) + 0.3 * max(ar, 0.0), 0.8 + 0.5 * max(v, 0.0)])
        if prev is not None:
            w[REST_POSES.index(prev)] = 0.0
        pose = str(rng.choice(REST_POSES, p=w / w.sum()))
        hands = ("L" if rng.random() < 0.5 else "R") if pose == "hip" else "LR"
        rests.append(RestHold(pose, a, b, hands))
        prev = pose
    log.debug("repertoire: %d gestures (%s), %d rest holds", len(events), " ".join(e.kind for e in events),
              len(rests))
    return GesturePlan(tuple(events), tuple(rests), tuple(float(x) for x in beat_times))


def _limits(skeleton: Skeleton = HUMANOID) -> np.ndarray:
    """The CHANNELS' joint limits [10, 2] (degrees, left side)."""
    lim = skeleton.limits_array()
    return np.array([lim[skeleton.index("left" + b), k] for b, k in CHANNELS])


def beat_place(rng: np.random.Generator) -> tuple[float, ...]:
    """A place in gesture space for one beat gesture: a BEAT_SPACE pose moved by up to about 20 degrees of
    shoulder flexion, abduction and elbow flexion, inside the joint limits."""
    pose = np.asarray(POSES[BEAT_SPACE[int(rng.integers(len(BEAT_SPACE)))]], dtype=np.float64).copy()
    pose[3] += rng.uniform(-20.0, 15.0)  # upper arm Y: forward swing
    pose[4] += rng.uniform(-10.0, 15.0)  # upper arm Z: abduction
    pose[6] += rng.uniform(-20.0, 20.0)  # elbow flexion
    lim = _limits()
    return tuple(float(x) for x in np.clip(pose, lim[:, 0], lim[:, 1]))


def offer_place(rng: np.random.Generator) -> tuple[float, ...]:
    """The palm-up offering moved by up to about 15 degrees of shoulder flexion and abduction and 20 of elbow
    flexion (higher or lower, nearer or further out), inside the joint limits."""
    pose = np.asarray(POSES["offer"], dtype=np.float64).copy()
    pose[3] += rng.uniform(-18.0, 12.0)
    pose[4] += rng.uniform(-8.0, 15.0)
    pose[6] += rng.uniform(-20.0, 20.0)
    lim = _limits()
    return tuple(float(x) for x in np.clip(pose, lim[:, 0], lim[:, 1]))


def _prep(e: float) -> float:
    """Preparation time (s) before a stroke at energy e = (arousal + 1) / 2: quicker when aroused."""
    return 0.65 - 0.35 * e


def _stroke(e: float) -> float:
    """Stroke time (s) at energy e: the last part of the movement into the gesture (Laban's Time effort)."""
    return 0.42 - 0.22 * e


def _event(kind: str, t: float, word_end: float, e: float, v: float, rng: np.random.Generator,
           timeline: Timeline | None) -> GestureEvent:
    if kind in ("self", "point", "flick"):
        hands = "R" if rng.random() < 0.7 else "L"
    elif kind == "chop":
        hands = "LR" if rng.random() < 0.2 + 0.5 * e else ("R" if rng.random() < 0.7 else "L")
    elif kind == "offer":
        hands = "LR" if rng.random() < 0.5 else ("R" if rng.random() < 0.6 else "L")
    else:
        hands = "LR"
    hold_end = max(word_end, t + 0.25) + 0.15 + 0.35 * (1 - e)
    beats = tuple(s for s in _stress_in(timeline, t + 0.25, hold_end)) if timeline is not None else ()
    size = float(np.clip(0.5 + 0.5 * e + rng.uniform(-0.05, 0.05), 0.45, 1.0))
    hand = "fist" if kind == "chop" and v < -0.2 else str(rng.choice(BEAT_HANDS)) if kind == "beat" else HANDS[kind]
    return GestureEvent(kind, float(t), float(hold_end), hands, size, beats, hand=hand)


def _minjerk(keys_t: list[float], keys_v: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Minimum-jerk interpolation of vector keys [K, C] at times t [T] (at rest on every key)."""
    from .teacher import minjerk_curve

    kt = np.asarray(keys_t, dtype=np.float64)
    order = np.argsort(kt, kind="stable")
    kt, kv = kt[order], np.asarray(keys_v, dtype=np.float64)[order]
    keep = np.concatenate([[True], np.diff(kt) > 1e-3])
    kt, kv = kt[keep], kv[keep]
    return np.stack([minjerk_curve(kt, kv[:, c], t) for c in range(kv.shape[1])], -1)


def _pose_vec(pose: str | np.ndarray, size: float = 1.0) -> np.ndarray:
    """A pose's channels (a POSES name or channel values) drawn `size` of the way from the loose rest."""
    loose = np.asarray(POSES["loose"])
    target = np.asarray(POSES[pose]) if isinstance(pose, str) else np.asarray(pose, dtype=np.float64)
    return loose + size * (target - loose)


def beat_curves(beats: list[tuple[float, float]], t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two curves [T] for beats (time s, size) in a held gesture: `dip` reaches each beat's size on the beat
    (the stroke down) and `loop` swings out between beats (the recovery), with keys staggered so the hand is
    at rest only on the beats: its speed minima, which beat-alignment counts, fall on them and nowhere else."""
    from .teacher import minjerk_curve

    d_keys: list[tuple[float, float]] = [(-10.0, 0.0)]
    l_keys: list[tuple[float, float]] = [(-10.0, 0.0)]
    kept: list[tuple[float, float]] = []
    for s, a in sorted(beats):
        if not kept or s - kept[-1][0] >= 0.3:
            kept.append((s, a))
    for i, (s, a) in enumerate(kept):
        nxt = kept[i + 1][0] if i + 1 < len(kept) else None
        d_keys += [(s - 0.15, 0.0), (s, a)]
        l_keys.append((s, 0.0))
        if nxt is not None and nxt - s < 1.0:
            l_keys.append((0.5 * (s + nxt - 0.15), 0.6 * a))
        else:
            d_keys.append((s + 0.4, 0.0))
            l_keys += [(s + 0.2, 0.5 * a), (s + 0.55, 0.0)]
    out = []
    for keys in (d_keys, l_keys):
        kt, kv = np.array(sorted(keys)).T
        keep = np.concatenate([[True], np.diff(kt) > 1e-3])
        out.append(minjerk_curve(kt[keep], kv[keep], t))
    return out[0], out[1]


def _snap(x: float, beats: np.ndarray, lo: float, hi: float, tol: float = 0.15) -> float:
    """x moved to the nearest beat within `tol` s that lies in [lo, hi], else x."""
    near = beats[(np.abs(beats - x) <= tol) & (beats >= lo) & (beats <= hi)]
    return float(near[np.argmin(np.abs(near - x))]) if near.size else x


def side_tracks(plan: GesturePlan, side: str, t: np.ndarray, energy: np.ndarray, fps: float
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One arm's layer: pose channels [T, 10] (beats included), layer weight [T] (0: the source motion, 1: the
    layer's pose), the beat dip [T] (0..~1.2) and the hand shape [T, 6] (HAND_SHAPES layout, relaxed where the
    layer is off)."""
    n = len(t)
    beats_at = np.asarray(plan.beat_times, dtype=np.float64)
    segs: list[tuple[float, float, list[tuple[float, np.ndarray]]]] = []  # (in, out, keys at weight 1)
    beats: list[tuple[float, float]] = []
    for ev in plan.events:
        if side not in ev.hands:
            continue
        e = float(energy[min(n - 1, int(ev.time * fps))])
        stroke = _stroke(e)
        if ev.pose is not None:
            pa = pb = _pose_vec(np.asarray(ev.pose), ev.size)
            pa = pa + np.array([0, 0, 0, 0, 0, 0, 8.0, 0, 0, 6.0])  # the stroke comes down onto the first beat
        else:
            a, b = GESTURES[ev.kind]
            pa, pb = _pose_vec(a, ev.size), _pose_vec(b, ev.size)
        # One-pose gestures arrive on the stroke's end (no key before it: every key is a rest of the hand).
        hs = np.asarray(HAND_SHAPES[ev.hand])
        pa, pb = np.concatenate([pa, hs]), np.concatenate([pb, hs])
        keys = ([] if np.allclose(pa, pb) else [(ev.time - stroke, pa)]) + [(ev.time, pb), (ev.hold_end, pb)]
        segs.append((ev.time - stroke - _prep(e), ev.hold_end, keys))
        beats += [(s, 0.6 + 0.6 * e) for s in ev.beats]
    for r in plan.rests:
        pose = r.pose if side in r.hands else "loose"
        pv = np.concatenate([_pose_vec(pose), HAND_SHAPES[HANDS[pose]]])
        segs.append((r.start, r.end, [(r.start + 0.05, pv), (max(r.start + 0.05, r.end), pv)]))
    segs.sort(key=lambda s: s[0])
    keys_t: list[float] = []
    keys_v: list[np.ndarray] = []
    last_out = -10.0
    for s_in, _out, keys in segs:
        if keys[0][0] <= last_out + 0.05:  # overlaps the previous segment: start from where it is
            keys = [k for k in keys if k[0] > last_out + 0.05]
            if not keys:
                continue
        e = float(energy[min(n - 1, max(0, int(s_in * fps)))])
        ramp = 0.65 - 0.35 * e
        first_t, first_v = keys[0]
        if not keys_t and s_in <= 0.0:  # a rest at the clip's start holds from the first frame
            keys_t.append(-1.0)
            keys_v.append(np.append(first_v, 1.0))
        elif first_t - last_out > 2 * ramp + 0.1 or not keys_t:
            # The hand rests where the layer hands over to the source motion and back; those moments are put
            # on a beat when one is near, so they count as beats rather than blur them.
            if keys_t:  # retract from the previous segment to the source motion
                keys_t.append(_snap(last_out + ramp, beats_at, last_out + 0.2, first_t - ramp - 0.2))
                keys_v.append(np.append(keys_v[-1][:-1], 0.0))
            lo_t = keys_t[-1] + 0.15 if keys_t else -10.0
            keys_t.append(_snap(max(first_t - ramp, lo_t), beats_at, lo_t, first_t - 0.2))
            keys_v.append(np.append(first_v, 0.0))
        for kt, kv in keys:
            if keys_t and kt <= keys_t[-1] + 1e-3:
                continue
            keys_t.append(kt)
            keys_v.append(np.append(kv, 1.0))
        last_out = keys_t[-1]
    relaxed = np.asarray(HAND_SHAPES["relaxed"])
    if not keys_t:
        return np.tile(np.asarray(POSES["loose"]), (n, 1)), np.zeros(n), np.zeros(n), np.tile(relaxed, (n, 1))
    keys_t.append(last_out + 0.5)
    keys_v.append(np.append(keys_v[-1][:-1], 0.0))
    curve = _minjerk(keys_t, np.stack(keys_v), t)
    dip, loop = beat_curves(beats, t)
    ch = curve[:, :10].copy()
    w = np.clip(curve[:, -1], 0.0, 1.0)
    hand = relaxed + w[:, None] * (curve[:, 10:16] - relaxed)
    ch[:, 6] += 14.0 * dip  # the elbow opens a little on the stressed vowel (Y < 0 flexes) ...
    ch[:, 9] -= 10.0 * dip  # ... and the wrist flexes: a dip of the hand
    ch[:, 4] += 6.0 * loop  # the recovery swings the upper arm out a little between beats
    return ch, w, dip, hand


def _channel_quats(ch: np.ndarray, skeleton: Skeleton) -> dict[str, np.ndarray]:
    """Left-side local quaternions [T, 4] per arm joint from pose channels [T, 10] (limit-order Euler)."""
    ang: dict[str, np.ndarray] = {b: np.zeros((len(ch), 3)) for b in ("Shoulder", "UpperArm", "LowerArm", "Hand")}
    for c, (bone, axis) in enumerate(CHANNELS):
        ang[bone][:, axis] = ch[:, c]
    out = {}
    for bone, a in ang.items():
        order = skeleton.limit_order("left" + bone)
        out[bone] = euler_to_quat(np.stack([a[:, "XYZ".index(x)] for x in order], -1), order)
    return out


def apply_repertoire(motion: BodyMotion, vad: np.ndarray, speech: np.ndarray, timeline: Timeline | None = None,
                     accents: np.ndarray | None = None, seed: int = 0, skeleton: Skeleton = HUMANOID,
                     plan: GesturePlan | None = None, onsets: np.ndarray | None = None) -> BodyMotion:
    """The motion with the gesture repertoire layered on its arms (and a head tilt in shrugs)."""
    n = motion.num_frames
    fps = float(motion.fps)
    vad = np.asarray(vad, dtype=np.float64).reshape(-1, 3)
    speech = np.asarray(speech, dtype=bool)
    if len(vad) != n or len(speech) != n:
        raise ValueError(f"VAD ({len(vad)}) and speech ({len(speech)}) must have the motion's {n} frames")
    if plan is None:
        plan = plan_gestures(vad, speech, fps, timeline, accents, seed, onsets)
    t = np.arange(n) / fps
    energy = (vad[:, 1] + 1) / 2
    rot = rotations_in_skeleton_order(motion, skeleton).astype(np.float64)
    hands = np.zeros((n, 2, 6))
    for s, (side, prefix) in enumerate((("L", "left"), ("R", "right"))):
        ch, w, _, hands[:, s] = side_tracks(plan, side, t, energy, fps)
        for bone, q in _channel_quats(ch, skeleton).items():
            k = skeleton.index(prefix + bone)
            q = q if side == "L" else quat_mirror_x(q)
            base = rot[:, k].copy()
            base[np.sum(base * q, axis=-1) < 0] *= -1
            # Blending two in-range rotations can leave the Euler box by a little (the elbow's Z range is 20 deg).
            rot[:, k] = clamp_to_limits(quat_slerp(base, q, w), prefix + bone, skeleton)
    # Shrugs tilt the head and lift the chin a little (Ekman & Friesen's shrug emblem).
    tilt_t, tilt_v = [-10.0], [0.0]
    for ev in plan.events:
        if ev.kind == "shrug":
            tilt_t += [ev.time - 0.3, ev.time, ev.hold_end, ev.hold_end + 0.4]
            tilt_v += [0.0, 1.0, 1.0, 0.0]
    if len(tilt_t) > 1:
        from .teacher import minjerk_curve

        tilt = minjerk_curve(np.asarray(tilt_t), np.asarray(tilt_v), t)
        k = skeleton.index("head")
        q = euler_to_quat(np.stack([7.0 * tilt, -4.0 * tilt, 0 * tilt], -1), "ZXY")
        rot[:, k] = quat_mul(rot[:, k], q)
    fingers = finger_rotations(hands)  # appended after the body bones (avatar.rig.hands)
    rot = np.concatenate([rot, np.stack([fingers[b] for b in FINGER_BONES], axis=1)], axis=1)
    return BodyMotion(fps=fps, joints=skeleton.joints + FINGER_BONES, rotations=quat_normalize(rot).astype(np.float32),
                      root_position=motion.root_position.copy())
