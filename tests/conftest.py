"""Shared fixtures: the repo root, the trained models (loaded once per test session)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(scope="session")
def root() -> Path:
    """The repository root."""
    return ROOT


@pytest.fixture(scope="session")
def analyzer():
    """The shipped text-to-VAD model."""
    from avatar.emotion import default_analyzer

    return default_analyzer()


@pytest.fixture(scope="session")
def avatar_bin() -> str:
    """The console script installed in .venv."""
    path = ROOT / ".venv" / "bin" / "avatar"
    assert path.exists(), "run ./dev test so .venv/bin/avatar exists"
    return str(path)
