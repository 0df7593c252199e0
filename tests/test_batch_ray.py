"""avatar.batch on Ray: a local Ray (2 CPUs) renders a script with the fast injected render step."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from batch_fakes import FakeRender, fake_analyze

from avatar.batch.manifest import read_manifest
from avatar.batch.runner import run_batch
from avatar.batch.script import parse_script

ray = pytest.importorskip("ray")

SCRIPT = """
characters: {ann: {}, bob: {}}
lines:
  - {id: r1, character: ann, text: "Hello!"}
  - {id: r2, character: bob, text: "FAIL on purpose."}
  - {id: r3, character: ann, text: "Goodbye."}
  - {id: r4, character: nobody, text: "Not in the cast."}
"""


@pytest.fixture(scope="module")
def local_ray():
    tests = str(Path(__file__).parent)
    # Ray workers import the fake render step from this folder.
    path = os.pathsep.join(p for p in (tests, os.environ.get("PYTHONPATH", "")) if p)
    ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING",
             runtime_env={"env_vars": {"PYTHONPATH": path, "OMP_NUM_THREADS": "1"}})
    yield ray
    ray.shutdown()


def test_ray_executor_renders_a_script(tmp_path, local_ray):
    script = parse_script(SCRIPT, "yaml")
    res = run_batch(script, tmp_path / "ray", render=FakeRender(), executor="ray", workers=2,
                    analyze=fake_analyze, progress=False)
    status = {r["id"]: r["status"] for r in read_manifest(tmp_path / "ray" / "manifest.jsonl")}
    assert status == {"r1": "ok", "r2": "failed", "r3": "ok", "r4": "failed"} and res.exit_code == 1
    assert all(r["worker"] for r in res.records if r.get("stage") != "validate")
    # Results came back to this process and were written here, the same bytes as a local run.
    local = run_batch(script, tmp_path / "local", render=FakeRender(), analyze=fake_analyze, progress=False)
    for rid in ("r1", "r3"):
        for name in ("speech.wav", "face.json"):
            assert (tmp_path / "ray" / rid / name).read_bytes() == (tmp_path / "local" / rid / name).read_bytes()
    assert local.exit_code == 1
    # And --resume on Ray finds everything done (Ray is not even asked to render).
    again = run_batch(script, tmp_path / "ray", render=FakeRender(), executor="ray", workers=2,
                      analyze=fake_analyze, resume=True, progress=False)
    assert again.rendered == 0 and again.skipped == 2
