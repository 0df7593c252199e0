"""A short dialogue as one performance: each line performed with its planned emotion, then joined end to end.

The demo renders several lines as ONE video and one set of animation files, rather than one video per line
joined afterwards: joining performances is a few array concatenations, needs no re-encoding, and gives the
renderer and the exporters (BVH, glTF, Live Link CSV) one continuous clip. Between lines the avatar pauses
for `GAP_S` seconds of silence while face and body ease (smoothstep; slerp for joint rotations) from the
last pose of one line to the first pose of the next, so a line change never pops.
"""

from __future__ import annotations

import itertools
import logging
import math
from typing import TYPE_CHECKING, Callable

import numpy as np

from avatar.app_readout import LineEmotion
from avatar.errors import InputError
from avatar.types import BodyMotion, EmotionSegment, EmotionTrack, FaceMotion, Speech, Timeline

if TYPE_CHECKING:
    from avatar.pipeline import Performance

log = logging.getLogger(__name__)

#: Pause between two lines of a dialogue, seconds.
GAP_S = 0.3
# Rough share of one line's perform() time per stage, in the order perform() runs them (avatar.pipeline.STAGES),
# so the progress bar moves evenly. bench/pipeline_bench.py prints the stage times: with the neural voice the speech
# (WORLD's edits) dominates, and the face samples in a thread during "body", so "face" is nearly instant.
_STAGE_WEIGHT = {"emotion": 0.1, "speech": 0.55, "body": 0.3, "face": 0.05}
# Where each stage starts within a line: the sum of the weights of the stages before it.
_STAGE_START = dict(zip(_STAGE_WEIGHT, itertools.accumulate(_STAGE_WEIGHT.values(), initial=0.0)))


def _smoothstep(n: int) -> np.ndarray:
    """n weights strictly between 0 and 1, eased at both ends."""
    x = np.arange(1, n + 1, dtype=np.float64) / (n + 1)
    return x * x * (3 - 2 * x)


def _pad_frames(a: np.ndarray, n: int) -> np.ndarray:
    """`a` ([T, ...]) lengthened to n frames by holding its last frame."""
    if a.shape[0] >= n:
        return a[:n]
    return np.concatenate([a, np.repeat(a[-1:], n - a.shape[0], axis=0)], axis=0)


def join_performances(perfs: list[Performance], gap: float = GAP_S) -> Performance:
    """Join performances end to end with `gap` seconds of eased, silent motion between them (pure)."""
    from avatar.rig.rotations import quat_slerp
    from avatar.pipeline import Performance

    if not perfs:
        raise InputError("nothing to join")
    if len(perfs) == 1:
        return perfs[0]
    fps = perfs[0].face.fps
    sr = perfs[0].speech.sample_rate
    if any(p.face.fps != fps or p.body.fps != fps or p.speech.sample_rate != sr for p in perfs):
        raise InputError("performances to join must share frame rate and sample rate")
    if any(p.body.joints != perfs[0].body.joints or p.face.names != perfs[0].face.names for p in perfs):
        raise InputError("performances to join must share face channels and body joints")
    n_gap = max(1, int(round(gap * fps)))

    def samples_at(frame: int) -> int:
        return int(round(frame * sr / fps))

    faces, rots, roots, audio = [], [], [], []
    durations: list[float] = []  # seconds each part occupies, gap included (for the timeline offsets)
    spans: list[tuple[float, float]] = []
    segments: list[EmotionSegment] = []
    frame = 0
    for i, p in enumerate(perfs):
        # Whole frames that hold all of the line's audio, so the video and the audio end together.
        n = max(p.face.num_frames, p.body.num_frames, math.ceil(p.speech.duration * fps - 1e-9), 1)
        while samples_at(frame + n) - samples_at(frame) < p.speech.audio.size:
            n += 1
        f = _pad_frames(p.face.frames, n)
        r = _pad_frames(p.body.rotations, n)
        root = _pad_frames(p.body.root_position, n)
        seg_samples = samples_at(frame + n) - samples_at(frame)
        a = np.zeros(seg_samples, dtype=np.float32)
        a[: p.speech.audio.size] = p.speech.audio
        start = samples_at(frame) / sr
        faces.append(f)
        rots.append(r)
        roots.append(root)
        audio.append(a)
        spans.extend((start + s0, start + s1) for s0, s1 in p.speech.sentence_spans)
        line_segments = [EmotionSegment(start=start + s.start, end=start + s.end, vad=s.vad)
                         for s in p.emotion.segments]
        frame += n
        last = i == len(perfs) - 1
        if not last:
            nxt = perfs[i + 1]
            w = _smoothstep(n_gap)
            faces.append(((1 - w)[:, None] * f[-1][None] + w[:, None] * nxt.face.frames[0][None]).astype(np.float32))
            rots.append(np.stack([quat_slerp(r[-1], nxt.body.rotations[0], float(t)) for t in w]).astype(np.float32))
            roots.append(((1 - w)[:, None] * root[-1][None] + w[:, None] * nxt.body.root_position[0][None])
                         .astype(np.float32))
            audio.append(np.zeros(samples_at(frame + n_gap) - samples_at(frame), dtype=np.float32))
            frame += n_gap
        end = samples_at(frame) / sr
        # The line's last emotion holds through the pause; the next line's takes over where that line starts.
        last_seg = line_segments[-1]
        line_segments[-1] = EmotionSegment(start=last_seg.start, end=max(end, last_seg.end), vad=last_seg.vad)
        segments.extend(line_segments)
        durations.append(end - start)
    speech_audio = np.concatenate(audio)
    timelines = [p.speech.timeline for p in perfs]
    timeline = None
    if all(t is not None for t in timelines):
        timeline = Timeline.concat(timelines, durations=durations)
        # concat sums float offsets; pin the duration to the audio so validation never trips on rounding
        timeline = timeline.model_copy(update={"duration": speech_audio.size / sr})
    speech = Speech(audio=speech_audio, sample_rate=sr, timeline=timeline, sentence_spans=tuple(spans))
    face = FaceMotion(fps=fps, frames=np.concatenate(faces), names=perfs[0].face.names)
    body = BodyMotion(fps=fps, joints=perfs[0].body.joints, rotations=np.concatenate(rots),
                      root_position=np.concatenate(roots))
    emotion = EmotionTrack(segments=segments, transition=perfs[0].emotion.transition)
    log.debug("joined %d lines: %d frames, %.2f s of audio", len(perfs), face.num_frames, speech.duration)
    return Performance(text="\n".join(p.text for p in perfs), sentences=[s for p in perfs for s in p.sentences],
                       emotion=emotion, speech=speech, face=face, body=body, seed=perfs[0].seed,
                       voice=perfs[0].voice)


def perform_plan(plan: list[LineEmotion], *, voice: str | None = None, seed: int = 0,
                 progress: Callable[[str, float], None] | None = None) -> Performance:
    """Perform every planned line (line i with seed + i) and join them; progress(stage, fraction) overall."""
    from avatar.pipeline import perform

    perfs = []
    for i, line in enumerate(plan):
        def line_progress(stage: str, fraction: float, i: int = i) -> None:
            # the stage's share summed as _STAGE_START sums it: a stage's end is exactly the next one's start
            if progress is not None:
                progress(f"{stage} (line {i + 1}/{len(plan)})" if len(plan) > 1 else stage,
                         (i + (_STAGE_START.get(stage, 0.0) + fraction * _STAGE_WEIGHT.get(stage, 0.0))) / len(plan))

        # A single line read from its text is performed sentence by sentence (vad=None); otherwise the
        # planned VAD (dialogue mood or the user's override) drives the whole line.
        vad = None if line.source == "text" else line.vad
        perfs.append(perform(line.text, vad=vad, voice=voice, seed=(int(seed) + i) % 2**31,
                             progress=line_progress))
    return join_performances(perfs)
