"""Weight averaging of emotion runs (avatar.emotion.soup): the stored adapter is exactly the mean update."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from avatar.emotion.model import EmotionModelConfig
from avatar.emotion.soup import soup_state
from avatar.errors import ModelError

KEY = "lora.base_model.model.encoder.layer.0.attention.self.query"


def _run(seed: int, r: int = 4, alpha: int = 8) -> tuple[dict[str, torch.Tensor], EmotionModelConfig]:
    g = torch.Generator().manual_seed(seed)
    state = {f"{KEY}.lora_A.weight": torch.randn(r, 6, generator=g), f"{KEY}.lora_B.weight": torch.randn(5, r, generator=g),
             "head.1.weight": torch.randn(3, 6, generator=g), "mix.weight": torch.randn(4, generator=g)}
    return state, EmotionModelConfig(lora_r=r, lora_alpha=alpha, pool_layers=4, metrics={"x": seed})


def test_soup_adapter_is_the_mean_of_the_merged_updates() -> None:
    runs = [_run(0), _run(1), _run(2, r=2, alpha=8)]
    state, cfg = soup_state([s for s, _ in runs], [c for _, c in runs])
    delta = (cfg.lora_alpha / cfg.lora_r) * state[f"{KEY}.lora_B.weight"] @ state[f"{KEY}.lora_A.weight"]
    want = sum((c.lora_alpha / c.lora_r) * s[f"{KEY}.lora_B.weight"] @ s[f"{KEY}.lora_A.weight"] for s, c in runs) / 3
    torch.testing.assert_close(delta, want)
    assert cfg.lora_r == 10 and cfg.metrics == {}
    torch.testing.assert_close(state["head.1.weight"], sum(s["head.1.weight"] for s, _ in runs) / 3)


def test_soup_refuses_runs_that_cannot_be_averaged() -> None:
    a, ca = _run(0)
    b, cb = _run(1)
    with pytest.raises(ModelError, match="at least two"):
        soup_state([a], [ca])
    with pytest.raises(ModelError, match="pool_layers"):
        soup_state([a, b], [ca, dataclasses.replace(cb, pool_layers=1)])
    with pytest.raises(ModelError, match="different tensors"):
        soup_state([a, {k: v for k, v in b.items() if k != "mix.weight"}], [ca, cb])


def test_soup_cli_refuses_missing_models(tmp_path, capsys) -> None:
    from avatar.emotion.soup import main

    assert main(["--models", str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(tmp_path / "out")]) == 2
    assert "needs config.json" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
