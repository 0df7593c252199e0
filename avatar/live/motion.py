"""What the avatar does at any stream time: idle life between lines, generated clips while speaking, eased mood.

- Idle: the face teacher without a timeline (avatar.face.teacher: blinks, gaze saccades, 1/f head drift from
  face.idle) plus the body teacher on silence (avatar.gesture.teacher: breathing, weight shift, sway, arms at
  rest), made in blocks of BLOCK seconds that overlap by OVERLAP seconds and are crossfaded, so an endless
  idle never repeats and never jumps. Blocks are made ahead on a worker thread.
- Mood: the current emotion as keyframes eased with smoothstep; the idle face wears the mood's FACS
  expression (face.expression), so emotion eases between lines instead of jumping.
- Clips: one per speech chunk (a sentence, or the first clause of a long first sentence), placed on the
  stream time axis; each fades in from the idle over FADE_IN and back out over FADE seconds. A clip's face
  is ready when it is placed; its procedural body (and the motion of the diffusion models, when loaded)
  arrive a little later and are crossfaded in over UPGRADE_FADE seconds from the moment they arrive
  (docs/live.md, "Latency").
"""

from __future__ import annotations

import bisect
import logging
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from avatar.face.expression import expression_weights, head_bias
from avatar.rig.skeleton import HUMANOID
from avatar.live.clock import lower_thread_priority
from avatar.live.frames import NB, LiveFrame, nlerp, sample_rotations, sample_track
from avatar.types import VAD, BodyMotion, FaceMotion, Timeline

log = logging.getLogger(__name__)

MOTION_FPS = 30.0   # the generators' rate; frames are interpolated to the stream's fps
BLOCK = 8.0         # seconds of idle per block
OVERLAP = 1.0       # seconds two idle blocks share (crossfaded)
FADE_IN = 0.08      # seconds a clip takes to fade in from the idle (short: speech starts ~10 ms into a clip)
FADE = 0.15         # seconds a clip takes to fade out to the idle (and to fade out at a stop)
UPGRADE_FADE = 0.3  # seconds from procedural to model motion when the model's arrives mid-clip
_HEAD = slice(NB, NB + 3)


def smoothstep(x: float) -> float:
    """0 below 0, 1 above 1, 3x^2 - 2x^3 between (zero slope at both ends)."""
    x = min(1.0, max(0.0, x))
    return x * x * (3.0 - 2.0 * x)


def body_arrays(body: BodyMotion) -> tuple[np.ndarray, np.ndarray]:
    """Rotations [T, J, 4] in HUMANOID joint order (identity for joints the motion lacks) and root [T, 3]."""
    n = body.num_frames
    rot = np.zeros((n, len(HUMANOID.joints), 4))
    rot[..., 3] = 1.0
    for j, name in enumerate(HUMANOID.joints):
        if name in body.joints:
            rot[:, j] = body.rotations[:, body.joints.index(name)]
    return rot, np.asarray(body.root_position, dtype=np.float64)


class Mood:
    """The emotion over stream time: keyframes (start, transition, VAD) eased with smoothstep; thread-safe."""

    def __init__(self, vad: VAD | None = None) -> None:
        """Start at `vad` (neutral by default)."""
        v = (vad or VAD.neutral()).as_array().astype(np.float64)
        self._keys: list[tuple[float, float, np.ndarray]] = [(-1e9, 0.0, v)]
        self._lock = threading.Lock()

    def set(self, vad: VAD, at: float, transition: float = 0.8) -> None:
        """Ease towards `vad` from stream time `at` over `transition` seconds (later keys replace later ones)."""
        with self._lock:
            keys = [k for k in self._keys if k[0] < at]
            keys.append((float(at), max(0.0, float(transition)), vad.as_array().astype(np.float64)))
            # Keys wholly in the past no longer matter once a later one has finished easing.
            while len(keys) > 2 and keys[1][0] + keys[1][1] < at - 60.0:
                keys.pop(0)
            self._keys = keys

    def value(self, t: float) -> np.ndarray:
        """VAD [3] at stream time t."""
        with self._lock:
            keys = list(self._keys)
        v = keys[0][2]
        for start, trans, target in keys[1:]:
            if t <= start:
                break
            w = 1.0 if trans <= 0 else smoothstep((t - start) / trans)
            v = v * (1.0 - w) + target * w
        return v

    def target(self) -> VAD:
        """The VAD the mood is heading to (the last keyframe's)."""
        with self._lock:
            return VAD.clipped(*self._keys[-1][2])


@lru_cache(maxsize=512)
def _mood_face(v: float, a: float, d: float) -> tuple[np.ndarray, np.ndarray]:
    """FACS expression weights [52] and head bias [3] of a mood (cached: the mood moves slowly)."""
    row = np.array([[v, a, d]])
    return expression_weights(row[0]).astype(np.float64), head_bias(row)[0]


@dataclass
class Clip:
    """One spoken sentence placed at `start` (stream s): audio at the stream rate and its motion at 30 fps."""

    line: int
    sentence: int
    text: str
    start: float
    audio: np.ndarray
    sample_rate: int
    vad: VAD
    timeline: Timeline
    face: FaceMotion
    body: tuple[np.ndarray, np.ndarray] | None = None  # procedural body; None until made (the idle body stands in)
    body_from: float = 0.0  # stream time the procedural body arrived (crossfaded in when after start)
    model: tuple[FaceMotion, tuple[np.ndarray, np.ndarray], float] | None = None  # face, body, from (s)
    cut: float | None = None  # stream time at which a stop cut the clip short
    followed: bool = False  # the next clip starts right where this one ends (set by Schedule.place)
    epoch: int = 0
    say_wall: float = 0.0  # monotonic time the line was asked for (latency figures)
    first_frame_wall: float | None = None

    @property
    def duration(self) -> float:
        """Audio length in seconds."""
        return self.audio.size / self.sample_rate

    @property
    def end(self) -> float:
        """Stream time at which the clip stops driving the avatar (audio end, + FADE_IN if followed; or the cut)."""
        e = self.start + self.duration
        if self.cut is not None:
            return min(e, self.cut + FADE)
        # Followed gaplessly: hold the last frame while the next clip fades in over it, so the pose goes
        # straight from one sentence to the next instead of dipping into the idle between them.
        return e + FADE_IN if self.followed else e

    def set_body(self, body: BodyMotion, at: float) -> None:
        """Give the clip its procedural body, fading in from stream time `at` (before start: no fade)."""
        self.body_from = float(at)
        self.body = body_arrays(body)

    def install(self, face: FaceMotion, body: BodyMotion, at: float) -> None:
        """Switch to the model's motion, crossfading from stream time `at` (before start: no fade at all)."""
        self.model = (face, body_arrays(body), float(at))

    def weight(self, t: float) -> float:
        """How much of the avatar this clip drives at stream time t (fades in and out of the idle)."""
        if t < self.start or t >= self.end:
            return 0.0
        w = smoothstep((t - self.start) / FADE_IN)
        if not self.followed:
            w = min(w, smoothstep((self.start + self.duration - t) / FADE))
        if self.cut is not None:
            w = min(w, 1.0 - smoothstep((t - self.cut) / FADE))
        return w

    def _fade(self, at: float, t: float) -> float:
        return 1.0 if at <= self.start else smoothstep((t - at) / UPGRADE_FADE)

    def sample(self, t: float) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None, float]:
        """(face [59], rotations [J, 4], root [3], body weight) at stream time t; no body yet: None, None, 0."""
        local = t - self.start
        face = sample_track(self.face.frames, self.face.fps, local)
        rot = root = None
        wb = 0.0
        body = self.body
        if body is not None:
            rot = sample_rotations(body[0], MOTION_FPS, local)
            root = sample_track(body[1], MOTION_FPS, local)
            wb = self._fade(self.body_from, t)
        model = self.model
        if model is not None:
            mface, (mrot, mroot), at = model
            w = self._fade(at, t)
            if w > 0:
                face = face * (1 - w) + sample_track(mface.frames, mface.fps, local) * w
                mr = sample_rotations(mrot, MOTION_FPS, local)
                mp = sample_track(mroot, MOTION_FPS, local)
                if rot is None:
                    rot, root, wb = mr, mp, w
                else:
                    rot = nlerp(rot, mr, w)
                    root = root * (1 - w) + mp * w
                    wb = max(wb, w)
        return face, rot, root, wb

    def speaking_at(self, t: float) -> bool:
        """True while a word of this clip is being said at stream time t."""
        local = t - self.start
        if self.cut is not None and t >= self.cut:
            return False
        return any(w.start <= local < w.end for w in self.timeline.words)

    def audio_slice(self, a: int, b: int) -> tuple[int, np.ndarray] | None:
        """This clip's samples within stream samples [a, b): (offset into the range, samples), faded at a cut."""
        s0 = int(round(self.start * self.sample_rate))
        i0, i1 = max(a, s0), min(b, s0 + self.audio.size)
        if i1 <= i0:
            return None
        seg = self.audio[i0 - s0:i1 - s0]
        if self.cut is not None:
            t = (np.arange(i0, i1) / self.sample_rate - self.cut) / FADE
            seg = seg * (1.0 - np.clip(t, 0.0, 1.0))
        return i0 - a, seg


class IdleSource:
    """Endless idle face + body in crossfaded blocks, made ahead on a worker thread; same seed, same idle."""

    def __init__(self, mood: Mood, seed: int = 0) -> None:
        """Idle that follows `mood` (the body's posture is set when each block is made)."""
        self.mood = mood
        self.seed = int(seed)
        self._blocks: dict[int, Future] = {}
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="idle")
        self._lowered = False
        self._lock = threading.Lock()

    def _make(self, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        from avatar.face.teacher import teacher_motion as face_teacher
        from avatar.gesture.teacher import teacher_motion as body_teacher
        if not self._lowered:  # on the worker thread, once: its blocks are due 8 s ahead, the frames now
            lower_thread_priority(5)
            self._lowered = True

        dur = BLOCK + OVERLAP
        seed = (self.seed * 1_000_003 + k) % (2**31)
        face = face_teacher(None, VAD.neutral(), duration=dur, fps=MOTION_FPS, seed=seed)
        vad = VAD.clipped(*self.mood.value(k * BLOCK))
        sr = 16000
        body = body_teacher(np.zeros(int(dur * sr), dtype=np.float32), vad, sr=sr, fps=MOTION_FPS, seed=seed)
        rot, root = body_arrays(body)
        return face.frames.astype(np.float64), rot, root

    def block(self, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Block k (stream time k * BLOCK onwards), waiting for it if not made yet; asks for block k + 1."""
        with self._lock:
            for j in (k, k + 1):
                if j not in self._blocks:
                    self._blocks[j] = self._pool.submit(self._make, j)
            for j in [j for j in self._blocks if j < k - 1]:
                del self._blocks[j]
            fut = self._blocks[k]
        return fut.result()

    def sample(self, t: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(face [59], rotations [J, 4], root [3]) of the idle at stream time t >= 0."""
        t = max(0.0, t)
        k = int(t // BLOCK)
        face, rot, root = self._at(k, t - k * BLOCK)
        into = t - k * BLOCK
        if k > 0 and into < OVERLAP:
            w = smoothstep(into / OVERLAP)
            pf, pr, pp = self._at(k - 1, t - (k - 1) * BLOCK)
            blink = np.maximum(face[[0, 7]], pf[[0, 7]])  # a blink in either block stays a whole blink
            face = pf * (1 - w) + face * w
            face[[0, 7]] = blink
            rot = nlerp(pr, rot, w)
            root = pp * (1 - w) + root * w
        expr, bias = _mood_face(*np.round(self.mood.value(t), 3).tolist())
        face = face.copy()
        face[:NB] = np.clip(face[:NB] + expr, 0.0, 1.0)
        face[_HEAD] += bias
        return face, rot, root

    def _at(self, k: int, local: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        f, r, p = self.block(k)
        return (sample_track(f, MOTION_FPS, local), sample_rotations(r, MOTION_FPS, local),
                sample_track(p, MOTION_FPS, local))

    def close(self) -> None:
        """Stop the worker thread."""
        self._pool.shutdown(wait=False, cancel_futures=True)


@dataclass
class Schedule:
    """Clips in start order; thread-safe placement and lookup."""

    clips: list[Clip] = field(default_factory=list)
    tail: float = 0.0  # stream time at which the last placed clip ends
    last: Clip | None = None  # the last placed clip
    lock: threading.Lock = field(default_factory=threading.Lock)

    def place(self, clip: Clip, earliest: float) -> float:
        """Put the clip at max(earliest, the end of the previous clip); returns its start."""
        with self.lock:
            clip.start = max(earliest, self.tail)
            # Same line, back to back, and known before the previous clip would start fading out: hand over
            # from clip to clip without the idle between (see Clip.end).
            if self.last is not None and self.last.cut is None and clip.line == self.last.line \
                    and earliest <= self.tail - FADE:
                self.last.followed = True
            self.tail = clip.start + clip.duration
            self.last = clip
            starts = [c.start for c in self.clips]
            self.clips.insert(bisect.bisect_right(starts, clip.start), clip)
            return clip.start

    def active(self, t: float) -> list[Clip]:
        """Clips that cover stream time t (at most two: one fading out, one fading in)."""
        with self.lock:
            return [c for c in self.clips if c.start <= t < c.end]

    def window(self, t0: float, t1: float) -> list[Clip]:
        """Clips overlapping [t0, t1)."""
        with self.lock:
            return [c for c in self.clips if c.start < t1 and c.end > t0]

    def prune(self, t: float) -> None:
        """Forget clips that ended more than 5 s before t."""
        with self.lock:
            self.clips = [c for c in self.clips if c.end > t - 5.0]

    def cut(self, t: float) -> int:
        """Stop every clip at stream time t (fade out); later ones are dropped. Returns how many were affected."""
        with self.lock:
            n = 0
            keep = []
            for c in self.clips:
                if c.start >= t:
                    n += 1
                    continue
                if c.end > t:
                    c.cut = t
                    n += 1
                keep.append(c)
            self.clips = keep
            self.tail = min(self.tail, t + FADE)
            return n

    def busy(self, t: float) -> bool:
        """True while a clip is playing or waiting at stream time t."""
        with self.lock:
            return any(c.end > t for c in self.clips)


def compose(index: int, t: float, idle: IdleSource, schedule: Schedule, mood: Mood) -> tuple[LiveFrame, list[Clip]]:
    """The frame at stream time t: the idle, with each active clip blended over it; and those clips."""
    face, rot, root = idle.sample(t)
    clips = schedule.active(t)
    line = None
    speaking = False
    for c in clips:
        w = c.weight(t)
        if w <= 0:
            continue
        cf, cr, cp, wb = c.sample(t)
        face = face * (1 - w) + cf * w
        if cr is not None and wb > 0:
            rot = nlerp(rot, cr, w * wb)
            root = root * (1 - w * wb) + cp * (w * wb)
        line = c.line
        speaking = speaking or c.speaking_at(t)
    frame = LiveFrame(index=index, time=t, face=face, rotations=rot, root=root, vad=mood.value(t),
                      speaking=speaking, line=line)
    return frame, clips
