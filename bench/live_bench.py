"""Benchmark live driving: latency from a line to its first mouth shape, frame rate and timing jitter over VMC.

    OMP_NUM_THREADS=1 .venv/bin/python bench/live_bench.py [--fps 60] [--idle 3] [--motion auto] [--fixed-vad]

A python-osc ThreadingOSCUDPServer on 127.0.0.1 receives the VMC stream (one bundle per frame). The stream
idles for --idle seconds, then says each line of LINES in turn (each after the previous one is finished), and
then one line of recorded speech (`say_audio`: LINES[1] as our own TTS spoke it, made before the stream starts,
standing in for a user's recording; its mouth comes from the viseme network). Printed:
- per line: seconds from say() to the first received bundle of the line (stream time >= the start of its
  first chunk) and to the first with the mouth moving (a VRM vowel A/I/U/E/O 0.1 away from its level before
  the line), and the first-frame latency as a ratio of the first chunk's audio duration (the baseline:
  the latency should be small next to what is being said);
- received frames per second and inter-arrival jitter (std, p99, max of |interval - 1/fps|) while idle and
  while speaking, and their ratio (speaking vs idle: generation must not slow the frame loop);
- the stream's timing: TTS and procedural motion per sentence, model motion per sentence and how often it
  arrived after its sentence had started (then it is crossfaded in).
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

LINES = (
    "Hello there!",
    "I am so happy to see you again, it has been far too long.",
    "Honestly, I am a little worried about tomorrow.",
    "Stop right there. That is not acceptable!",
    "Let me tell you a story. It starts on a quiet evening, long ago, in a small town by the sea.",
)
VOWELS = ("A", "I", "U", "E", "O")


def _serve(port_out, rows_out, stop) -> None:
    from pythonosc.dispatcher import Dispatcher
    from pythonosc.osc_packet import OscPacket
    from pythonosc.osc_server import ThreadingOSCUDPServer

    packets: list[tuple[float, bytes]] = []
    lock = threading.Lock()

    class PacketDispatcher(Dispatcher):
        def call_handlers_for_packet(self, data, client_address):
            t = time.monotonic()
            with lock:  # parsed after the run: parsing ~100 messages per packet live would load the CPU
                packets.append((t, bytes(data)))
            return []

    server = ThreadingOSCUDPServer(("127.0.0.1", 0), PacketDispatcher())
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port_out.put(server.server_address[1])
    stop.wait()
    server.shutdown()
    rows = []
    with lock:
        for t, data in packets:
            stream_t, vowels, bones = -1.0, dict.fromkeys(VOWELS, 0.0), 0
            for m in OscPacket(data).messages:
                a, p = m.message.address, m.message.params
                if a == "/VMC/Ext/T":
                    stream_t = float(p[0])
                elif a == "/VMC/Ext/Blend/Val" and p[0] in vowels:
                    vowels[p[0]] = float(p[1])
                elif a == "/VMC/Ext/Bone/Pos":
                    bones += 1
            rows.append((t, stream_t, *vowels.values(), bones))
    rows_out.put(rows)


class Receiver:
    """A python-osc ThreadingOSCUDPServer in its own process (not competing with the stream for the GIL) that
    records each packet's arrival time, then (after the run) its stream time T, max vowel and bone count."""

    def __init__(self) -> None:
        import multiprocessing as mp

        ctx = mp.get_context("spawn")
        self._ports, self._rows, self._stop = ctx.Queue(), ctx.Queue(), ctx.Event()
        self._proc = ctx.Process(target=_serve, args=(self._ports, self._rows, self._stop), daemon=True)
        self._proc.start()
        self.port = self._ports.get(timeout=60)
        self.rows = np.zeros((0, 8))  # arrival, T, A, I, U, E, O, bone messages

    def close(self) -> None:
        """Stop the receiver and collect its rows (time.monotonic is system-wide, so times compare)."""
        self._stop.set()
        self.rows = np.array(self._rows.get(timeout=60)).reshape(-1, 8)
        self._proc.join(timeout=10)

    def between(self, t0: float, t1: float) -> np.ndarray:
        """Rows that arrived in [t0, t1)."""
        return self.rows[(self.rows[:, 0] >= t0) & (self.rows[:, 0] < t1)]


def timing(windows: list[np.ndarray], fps: float) -> dict[str, float]:
    """Frame rate and jitter of received bundles, pooled over separate time windows (each in stream-time order)."""
    frames, span, late, dev = 0, 0.0, [], []
    for rows in windows:
        if len(rows) < 3:
            continue
        r = rows[np.argsort(rows[:, 1])]
        frames += len(r) - 1
        span += r[-1, 0] - r[0, 0]
        off = r[:, 0] - r[:, 1]  # arrival - stream time: constant when every frame is on time
        late.append(off - np.median(off))
        dev.append(np.abs(np.diff(r[:, 0]) - 1.0 / fps))
    if not late:
        return {"fps": float("nan"), "std_ms": float("nan"), "p99_ms": float("nan"), "max_ms": float("nan")}
    late_a, dev_a = np.concatenate(late), np.concatenate(dev)
    return {"fps": frames / span if span > 0 else float("nan"), "std_ms": 1e3 * float(np.std(late_a)),
            "p99_ms": 1e3 * float(np.percentile(dev_a, 99)), "max_ms": 1e3 * float(dev_a.max())}


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print its figures."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fps", type=float, default=60.0)
    ap.add_argument("--idle", type=float, default=3.0, help="seconds of idle measured before the lines")
    ap.add_argument("--motion", default="auto", choices=("auto", "model", "procedural"))
    ap.add_argument("--fixed-vad", action="store_true", help="a fixed VAD instead of the text emotion model")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    import logging

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    from avatar.live.stream import LiveStream, StreamConfig
    from avatar.live.vmc import VMCSender
    from avatar.types import VAD

    sys.setswitchinterval(0.001)  # as `avatar stream` does
    rx = Receiver()
    cfg = StreamConfig(fps=args.fps, motion=args.motion, seed=args.seed,
                       vad=VAD(0.3, 0.3, 0.0) if args.fixed_vad else None)
    stream = LiveStream(cfg, [VMCSender("127.0.0.1", rx.port)])
    t = time.perf_counter()
    stream.load()
    load_s = time.perf_counter() - t
    recorded = stream.backend.synthesize(LINES[1], VAD(0.5, 0.3, 0.0))  # the recording of the audio line
    stream.start()
    time.sleep(0.5)  # the receiver's first packets start its threads
    idle0 = time.monotonic()
    time.sleep(args.idle)
    idle1 = time.monotonic()
    marks = []
    for text in (*LINES, None):
        said = time.monotonic()
        if text is None:
            line = stream.say_audio(recorded.audio, recorded.sample_rate, label="recording")
            text = f"(audio) {LINES[1]}"
        else:
            line = stream.say(text)
        stream.wait_drained(120)
        marks.append((line, text, said, time.monotonic()))
        print(f"line {line} said at stream {stream.now() - (time.monotonic() - said):.2f} s", file=sys.stderr)
        time.sleep(0.4)
    stream.close()
    rx.close()
    per_line = []
    speak_rows = []
    for line, text, said, done in marks:
        rows = rx.between(said, done)
        speak_rows.append(rows)
        # Receiver side: the first bundle of the line (stream time >= its first chunk's start), and the first
        # with the mouth moving: a vowel 0.1 away from its level over the 0.3 s before the line (the idle mood
        # can hold the lips in a vowel-like shape, so "non-zero" alone is not a speech signal).
        start = stream.stats.first_start.get(line, float("nan"))
        first = next((r[0] for r in rows if r[1] >= start), float("nan"))
        before = rx.between(said - 0.3, said)
        base = before[:, 2:7].mean(axis=0) if len(before) else np.zeros(5)
        moved = next((r[0] for r in rows if np.abs(r[2:7] - base).max() > 0.1), float("nan"))
        per_line.append((line, text, first - said, moved - said,
                         stream.stats.first_audio_duration.get(line, float("nan"))))
    s = stream.stats
    print(f"live stream benchmark: fps {args.fps:g}, motion {'model' if stream.models else 'procedural'}, "
          f"emotion {'fixed VAD' if args.fixed_vad else 'from text'}; load + warm-up {load_s:.2f} s")
    print("\nper line, received over VMC: first frame of the line (s after say), first mouth movement (s),")
    print("first chunk's audio (s), ratio first frame / audio (the baseline: latency against what is said)")
    for line, text, ff, mouth, dur in per_line:
        print(f"  {line}: {ff:6.3f}  {mouth:6.3f}  {dur:6.2f}  {ff / dur:5.3f}   {text[:48]!r}")
    ff = np.array([p[2] for p in per_line])
    mo = np.array([p[3] for p in per_line])
    print(f"  first frame: median {np.nanmedian(ff):.3f} s, max {np.nanmax(ff):.3f} s (goal 0.15, limit 0.5); "
          f"first mouth movement: median {np.nanmedian(mo):.3f} s, max {np.nanmax(mo):.3f} s")
    idle_rows = rx.between(idle0, idle1)
    idle = timing([idle_rows], args.fps)
    speak = timing(speak_rows, args.fps)
    print("\nframes received: fps, lateness std (ms), |interval - 1/fps| p99 and max (ms)")
    for name, m in (("idle", idle), ("speaking", speak)):
        print(f"  {name:9s} {m['fps']:6.2f}  {m['std_ms']:6.2f}  {m['p99_ms']:6.2f}  {m['max_ms']:6.2f}")
    print(f"  speaking / idle frame rate: {speak['fps'] / idle['fps']:.3f}; frames sent {s.frames}, skipped "
          f"{s.skipped}, max lateness {1e3 * s.late_max:.1f} ms")
    worst = sorted(s.late_frames, key=lambda x: -x[1])[:3]
    print(f"  frames sent more than one frame late: {len(s.late_frames)}; worst (stream s, ms late): "
          + ", ".join(f"{t:.2f}/{1e3 * d:.0f}" for t, d in worst))
    bones = int(np.median(idle_rows[:, 7])) if len(idle_rows) else 0
    print(f"  bone messages per bundle: {bones}")
    if s.emotion_seconds:
        print(f"\nper sentence: text emotion {1e3 * np.median(s.emotion_seconds):.0f} ms (median)")
    print(f"per chunk: TTS {1e3 * np.median(s.tts_seconds):.0f} ms, procedural motion "
          f"{1e3 * np.median(s.procedural_seconds):.0f} ms (medians; for the audio line the procedural motion "
          "includes reading its visemes)")
    if s.model_seconds:
        print(f"  model motion {1e3 * np.median(s.model_seconds):.0f} ms median, {1e3 * max(s.model_seconds):.0f} ms "
              f"max; arrived after its sentence started: {s.model_late} of {len(s.model_seconds)}")
    if s.errors:
        print("errors:", *s.errors, sep="\n  ")
    print("\nrerun: OMP_NUM_THREADS=1 .venv/bin/python bench/live_bench.py " + " ".join(argv or sys.argv[1:]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
