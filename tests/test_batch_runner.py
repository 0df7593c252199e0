"""avatar.batch runner with a fast injected render step: failure recording, resume, interruption, workers."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from batch_fakes import FakeRender, fake_analyze, fake_render_fn

from avatar.batch.manifest import DONE, read_manifest
from avatar.batch.plan import VideoSettings
from avatar.batch.runner import _outdir_lock, run_batch
from avatar.batch.script import parse_script
from avatar.errors import InputError

FIVE = """
characters:
  ann: {voice: en-us, personality: {neuroticism: 0.8}}
  bob: {}
lines:
  - {id: l1, character: ann, text: "Hello there!"}
  - {id: l2, character: bob, text: "Hi."}
  - {id: l3, character: carl, text: "I am not in the cast."}
  - {id: l4, character: ann, text: "This is sad news."}
  - {id: l5, character: bob, text: "Indeed!"}
"""


def _run(script_text: str, out: Path, render=None, **kw):
    kw.setdefault("progress", False)
    return run_batch(parse_script(script_text, "yaml"), out, render=render or FakeRender(), analyze=fake_analyze,
                     **kw)


def _snapshot(folder: Path) -> dict[str, tuple[int, bytes]]:
    """mtime (ns) and bytes of every file under `folder` (the lock file aside)."""
    return {p.relative_to(folder).as_posix(): (p.stat().st_mtime_ns, p.read_bytes())
            for p in sorted(folder.rglob("*")) if p.is_file() and p.name != ".batch.lock"}


def test_bad_line_is_recorded_and_the_others_render(tmp_path):
    res = _run(FIVE, tmp_path / "out")
    assert res.exit_code == 1 and res.failed == 1 and res.rendered == 4
    recs = read_manifest(tmp_path / "out" / "manifest.jsonl")
    assert [r["id"] for r in recs] == ["l1", "l2", "l3", "l4", "l5"]
    assert [r["status"] for r in recs] == ["ok", "ok", "failed", "ok", "ok"]
    bad = recs[2]
    assert bad["stage"] == "validate" and "unknown character 'carl'" in bad["error"]
    assert not (tmp_path / "out" / "l3").exists()
    for r in (recs[0], recs[1], recs[3], recs[4]):
        assert set(r["files"]) == {"speech.wav", "face.json"}
        for rel in r["files"].values():
            assert (tmp_path / "out" / rel).is_file()
        assert (tmp_path / "out" / r["id"] / DONE).is_file()
        assert set(r["vad"]) == {"valence", "arousal", "dominance"} and r["timings"]["total"] >= 0
        assert r["error"] is None and r["duration"] == 1.0
    # No temporary files are left behind.
    assert not [p for p in (tmp_path / "out").rglob("*.part")]


def test_render_failure_is_recorded(tmp_path):
    text = FIVE.replace("I am not in the cast.", "x").replace("character: carl", "character: bob") \
               .replace("This is sad news.", "FAIL here")
    res = _run(text, tmp_path / "out")
    recs = {r["id"]: r for r in res.records}
    assert res.exit_code == 1 and recs["l4"]["status"] == "failed" and recs["l4"]["stage"] == "render"
    assert "InputError: cannot speak" in recs["l4"]["error"]
    assert recs["l3"]["status"] == "ok" and not (tmp_path / "out" / "l4" / DONE).exists()


def test_all_good_exits_zero_and_plain_function_render(tmp_path):
    text = FIVE.replace("character: carl", "character: bob")
    res = _run(text, tmp_path / "out", render=fake_render_fn)
    assert res.exit_code == 0 and res.rendered == 5
    assert (tmp_path / "out" / "l3" / "out.txt").is_file()


def test_resume_touches_nothing_and_renders_only_what_changed(tmp_path):
    out = tmp_path / "out"
    _run(FIVE, out)
    before = _snapshot(out)
    time.sleep(0.02)
    log = tmp_path / "log"
    log.mkdir()
    res = _run(FIVE, out, render=FakeRender(log_dir=str(log)), resume=True)
    assert res.rendered == 0 and res.skipped == 4 and res.exit_code == 1
    assert _snapshot(out) == before  # not one file rewritten, the manifest included
    assert list(log.iterdir()) == []  # and the render step never ran

    # Change ann's first line: it and ann's later line (her mood carries over) re-render; bob's do not.
    changed = FIVE.replace("Hello there!", "Hello, sad world.")
    res = _run(changed, out, render=FakeRender(log_dir=str(log)), resume=True)
    rendered = sorted((log / f).read_text().split() for f in os.listdir(log))
    assert sorted(sum(rendered, [])) == ["l1", "l4"] and res.skipped == 2
    after = _snapshot(out)
    assert after["l2/speech.wav"] == before["l2/speech.wav"]
    assert after["l1/speech.wav"] != before["l1/speech.wav"]

    # A damaged output makes its line render again; without --resume everything renders.
    (out / "l2" / "face.json").write_text("{}")
    res = _run(changed, out, resume=True)
    assert res.rendered == 1 and res.skipped == 3
    res = _run(changed, out)
    assert res.rendered == 4 and res.skipped == 0


def test_interrupted_run_resumes_without_loss_or_duplicates(tmp_path):
    class Boom(FakeRender):
        def __call__(self, job, workdir):
            if job.id == "l4":
                raise KeyboardInterrupt
            return super().__call__(job, workdir)

    out = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):
        _run(FIVE, out, render=Boom())
    recs = {r["id"]: r["status"] for r in read_manifest(out / "manifest.jsonl")}
    assert recs == {"l1": "ok", "l2": "ok", "l3": "failed", "l4": "pending", "l5": "pending"}
    res = _run(FIVE, out, resume=True)
    assert res.skipped == 2 and res.rendered == 2
    clean = tmp_path / "clean"
    _run(FIVE, clean)
    assert _bytes(out) == _bytes(clean)


def _bytes(folder: Path) -> dict[str, bytes]:
    """Every output's bytes, with run-dependent fields (timings, worker) taken out of the JSON records."""
    out = {}
    for p in sorted(folder.rglob("*")):
        if not p.is_file() or p.name == ".batch.lock":
            continue
        data = p.read_bytes()
        if p.name in (DONE, "manifest.jsonl"):
            docs = [json.loads(x) for x in data.decode().splitlines()] if p.suffix == ".jsonl" else [json.loads(data)]
            for d in docs:
                for rec in (d, d.get("record", {})):
                    rec.pop("timings", None)
                    rec.pop("worker", None)
            data = json.dumps(docs, sort_keys=True).encode()
        out[p.relative_to(folder).as_posix()] = data
    return out


KILL_SCRIPT = """
import sys, time
sys.path.insert(0, {tests!r})
from batch_fakes import FakeRender, fake_analyze
from avatar.batch.runner import run_batch

class Slow(FakeRender):
    def __call__(self, job, workdir):
        time.sleep(0.15)
        return super().__call__(job, workdir)

lines = "\\n".join("  - {{id: n%02d, character: ann, text: 'Line %d!'}}" % (i, i) for i in range(12))
open({script!r}, "w").write("characters: {{ann: {{}}}}\\nlines:\\n" + lines + "\\n")
run_batch({script!r}, {out!r}, render=Slow(), analyze=fake_analyze, resume=True, progress=False)
"""


def test_kill_at_any_moment_then_resume(tmp_path):
    """SIGKILL a real batch process mid-run (twice), resume, and compare with an uninterrupted run."""
    tests = str(Path(__file__).parent)
    out, script = tmp_path / "out", tmp_path / "s.yaml"
    code = KILL_SCRIPT.format(tests=tests, script=str(script), out=str(out))
    for after in ("n02", "n06"):  # kill once a given line is done (so each kill lands mid-run), then resume
        proc = subprocess.Popen([sys.executable, "-c", code])
        deadline = time.monotonic() + 60
        while not (out / after / DONE).exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.07)  # into the next line's render
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        done = sorted(p.parent.name for p in out.glob(f"*/{DONE}"))
        assert after in done and len(done) < 12, done  # killed part-way
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
    recs = read_manifest(out / "manifest.jsonl")
    assert [r["id"] for r in recs] == [f"n{i:02d}" for i in range(12)] and {r["status"] for r in recs} == {"ok"}
    clean = tmp_path / "clean"
    subprocess.run([sys.executable, "-c", KILL_SCRIPT.format(tests=tests, script=str(script), out=str(clean))],
                   check=True, timeout=120)
    assert _bytes(out) == _bytes(clean)


def test_two_worker_processes_give_the_same_outputs(tmp_path):
    log = tmp_path / "log"
    log.mkdir()
    text = FIVE.replace("character: carl", "character: bob")
    par = _run(text, tmp_path / "par", render=FakeRender(log_dir=str(log)), workers=2)
    ser = _run(text, tmp_path / "ser")
    assert par.rendered == ser.rendered == 5
    assert _bytes(tmp_path / "par") == _bytes(tmp_path / "ser")
    ids = sum((f.read_text().split() for f in log.iterdir()), [])
    assert sorted(ids) == ["l1", "l2", "l3", "l4", "l5"]  # each line rendered exactly once
    # Rendered in worker processes (at most two; a fast worker may take every line), not in this one.
    assert 1 <= len(list(log.iterdir())) <= 2 and f"{os.getpid()}.log" not in os.listdir(log)
    assert all(not r["worker"].endswith(f":{os.getpid()}") for r in par.records)


def test_scene_plays_the_clips_in_order(tmp_path):
    import av

    out = tmp_path / "out"
    res = _run(FIVE, out, render=FakeRender(clip=True), scene=True, settings=VideoSettings(width=64, height=64))
    assert res.scene == out / "scene.mp4"
    frames = 0
    for rec in res.records:
        if rec["status"] == "ok":
            with av.open(str(out / rec["files"]["clip.mp4"])) as c:
                frames += sum(1 for _ in c.decode(video=0))
    with av.open(str(res.scene)) as c:
        assert c.streams.video[0].codec_context.name == "h264" and c.streams.audio[0].codec_context.name == "aac"
        shades = [float(f.to_ndarray(format="rgb24").mean()) for f in c.decode(video=0)]
        audio_s = float(c.streams.audio[0].duration * c.streams.audio[0].time_base)
    assert len(shades) == frames
    assert abs(audio_s - frames / 30) < 0.1  # sound as long as the picture
    assert shades[0] < 20 and abs(shades[-1] - 160) < 25  # l1 (shade 0) first, l5 (shade 160) last
    before = _snapshot(out)
    _run(FIVE, out, render=FakeRender(clip=True), scene=True, resume=True,
         settings=VideoSettings(width=64, height=64))
    assert _snapshot(out) == before


def test_outdir_lock_and_bad_options(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    with _outdir_lock(out):
        with pytest.raises(InputError, match="another batch"):
            _run(FIVE, out)
    with pytest.raises(InputError, match="workers"):
        _run(FIVE, out, workers=0)
    with pytest.raises(InputError, match="unknown executor"):
        _run(FIVE, out, executor="slurm")
    (tmp_path / "file").write_text("x")
    with pytest.raises(InputError, match="not a folder"):
        _run(FIVE, tmp_path / "file")


def test_cli_malformed_script_exits_2(tmp_path, avatar_bin):
    bad = tmp_path / "bad.yaml"
    bad.write_text("lines: [\n")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    r = subprocess.run([avatar_bin, "batch", str(bad), "-o", str(tmp_path / "o")], capture_output=True, text=True,
                       env=env, timeout=120)
    assert r.returncode == 2 and "error:" in r.stderr and "not valid YAML" in r.stderr
    r = subprocess.run([avatar_bin, "batch", str(bad)], capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 2 and "-o OUTDIR" in r.stderr


def test_unwritable_line_folder_fails_that_line_only(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "l2").write_text("a file where the folder should be")
    res = _run(FIVE, out)
    recs = {r["id"]: r for r in res.records}
    assert recs["l2"]["status"] == "failed" and recs["l2"]["stage"] == "write"
    assert recs["l1"]["status"] == recs["l4"]["status"] == recs["l5"]["status"] == "ok"


def test_pipeline_renderer_reports_a_missing_model_before_work(tmp_path):
    import pickle

    from avatar.batch.render import PipelineRenderer
    from avatar.errors import ModelError

    with pytest.raises(ModelError, match="train"):
        PipelineRenderer(face_model=str(tmp_path / "none")).fingerprint()
    r = PipelineRenderer(face_model="f", gesture_model="g")
    r._avatars["x"] = object()  # loaded avatars stay in their process
    back = pickle.loads(pickle.dumps(r))
    assert back.face_model == "f" and back._avatars == {}


POOL_SCRIPT = """
import sys, time
sys.path.insert(0, {tests!r})
from batch_fakes import FakeRender, fake_analyze
from avatar.batch.runner import run_batch

class Slow(FakeRender):
    def __call__(self, job, workdir):
        time.sleep(0.5)
        return super().__call__(job, workdir)

if __name__ == "__main__":
    lines = "\\n".join("  - {{id: p%02d, character: ann, text: 'Line %d!'}}" % (i, i) for i in range(20))
    open({script!r}, "w").write("characters: {{ann: {{}}}}\\nlines:\\n" + lines + "\\n")
    run_batch({script!r}, {out!r}, render=Slow(log_dir={log!r}), analyze=fake_analyze, workers=2, progress=False)
"""


def test_workers_exit_when_the_driver_is_killed(tmp_path):
    log = tmp_path / "log"
    log.mkdir()
    code = tmp_path / "drive.py"
    code.write_text(POOL_SCRIPT.format(tests=str(Path(__file__).parent), script=str(tmp_path / "s.yaml"),
                                       out=str(tmp_path / "out"), log=str(log)))
    tmp = tmp_path / "tmp"  # the workers' TMPDIR: their line folders go here
    tmp.mkdir()
    proc = subprocess.Popen([sys.executable, str(code)], env={**os.environ, "TMPDIR": str(tmp)})
    deadline = time.monotonic() + 60
    while len(list(log.iterdir())) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    pids = [int(p.stem) for p in log.iterdir()]
    assert pids and proc.poll() is None
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    deadline = time.monotonic() + 15
    alive = pids
    while alive and time.monotonic() < deadline:
        time.sleep(0.2)
        alive = [p for p in pids if Path(f"/proc/{p}").exists() and "Z" not in Path(f"/proc/{p}/stat").read_text().split()[2]]
    assert not alive, f"workers {alive} outlived the killed batch process"
    assert list(tmp.iterdir()) == []  # and took the line folders they were rendering in with them


def test_line_folders_of_killed_workers_are_removed_by_the_next_batch(tmp_path, monkeypatch):
    from avatar.batch.worker import remove_stale_workdirs

    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    dead = tmp_path / f"avatar-batch-{p.pid}-l1-abcd1234"
    alive = tmp_path / f"avatar-batch-{os.getpid()}-l2-abcd1234"
    other = tmp_path / "someone-elses"
    for d in (dead, alive, other):
        (d / "sub").mkdir(parents=True)
        (d / "sub" / "clip.mp4").write_bytes(b"partial")
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)  # re-read TMPDIR
    text = FIVE.replace("character: carl", "character: bob")
    assert _run(text, tmp_path / "out").exit_code == 0  # a batch's workers clean up when they start
    assert sorted(q.name for q in tmp_path.iterdir()) == sorted([alive.name, other.name, "out"])
    assert remove_stale_workdirs(str(tmp_path)) == 0


def test_a_line_folder_linking_out_of_outdir_fails_that_line_only(tmp_path):
    """Issue 20 item 13: it aborted the whole batch (exit 2); with --resume too."""
    out = tmp_path / "out"
    out.mkdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (out / "l2").symlink_to(elsewhere, target_is_directory=True)
    text = FIVE.replace("character: carl", "character: bob")
    for resume in (False, True):
        res = _run(text, out, resume=resume)
        recs = {r["id"]: r for r in res.records}
        assert res.exit_code == 1 and res.failed == 1, recs["l2"]
        assert recs["l2"]["status"] == "failed" and recs["l2"]["stage"] == "write"
        assert "would escape the output folder" in recs["l2"]["error"]
        assert all(recs[i]["status"] == "ok" for i in ("l1", "l3", "l4", "l5"))
        assert list(elsewhere.iterdir()) == []  # nothing written through the link


def test_an_unwritable_outdir_is_refused_before_any_work(tmp_path, monkeypatch):
    render = FakeRender(log_dir=tmp_path / "log")
    (tmp_path / "log").mkdir()
    real = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: False if Path(p) == tmp_path else real(p, mode))
    with pytest.raises(InputError, match="cannot write into .*permission denied"):
        _run(FIVE, tmp_path / "out", render=render)
    assert not (tmp_path / "out").exists() and list((tmp_path / "log").iterdir()) == []


def test_no_progress_bar_when_stderr_is_not_a_terminal(tmp_path, capsys):
    """A log file or a pipe gets no tqdm redraws (issue 20 item 19); a terminal still does."""
    text = FIVE.replace("character: carl", "character: bob")
    _run(text, tmp_path / "out", progress=True)
    err = capsys.readouterr().err
    assert "batch:" not in err and "line/s" not in err, err


def test_a_scene_path_that_cannot_be_written_is_refused_before_rendering(tmp_path):
    out = tmp_path / "out"
    (out / "scene.mp4").mkdir(parents=True)
    (tmp_path / "log").mkdir()
    with pytest.raises(InputError, match="--scene .*scene.mp4' is a folder"):
        _run(FIVE, out, render=FakeRender(log_dir=tmp_path / "log"), scene=True)
    assert list((tmp_path / "log").iterdir()) == []  # nothing rendered


def test_a_batch_worker_runs_the_neural_voice_on_one_thread_unless_told(monkeypatch):
    """Workers are the parallelism: the voice's session, finishing pool and WORLD get one thread each
    ($AVATAR_TTS_THREADS=1), unless the user set it."""
    import threadpoolctl

    from avatar.batch import worker

    monkeypatch.setattr(threadpoolctl, "threadpool_limits", lambda n: None)  # keep this process's BLAS as it is
    monkeypatch.setattr(worker, "remove_stale_workdirs", lambda: None)
    if "torch" in sys.modules:  # keep this process's torch threads as they are
        monkeypatch.setattr(sys.modules["torch"], "set_num_threads", lambda n: None)
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        monkeypatch.setenv(name, os.environ.get(name, "1"))  # restored after the test
    monkeypatch.delenv("AVATAR_TTS_THREADS", raising=False)
    worker.setup_worker(lambda: None)
    assert os.environ["AVATAR_TTS_THREADS"] == "1"
    monkeypatch.setenv("AVATAR_TTS_THREADS", "3")
    worker.setup_worker(lambda: None)
    assert os.environ["AVATAR_TTS_THREADS"] == "3"
