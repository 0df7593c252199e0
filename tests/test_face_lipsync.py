"""Audio-only lip sync: frame labels, the viseme network, the estimated timeline, and its use in generate_face."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from avatar.errors import InputError, ModelError
from avatar.types import VISEMES, Phoneme, Timeline


def _tl() -> Timeline:
    ph = [Phoneme(start=0.1, end=0.2, phoneme="p", viseme="PP"), Phoneme(start=0.2, end=0.4, phoneme="a", viseme="aa")]
    return Timeline(sample_rate=16000, duration=0.5, phonemes=ph)


def test_frame_labels_take_the_phoneme_at_each_frame_centre():
    from avatar.face.lipsync import frame_labels

    lab = frame_labels(_tl(), 15, 30.0)
    names = [VISEMES[i] for i in lab]
    assert names[:3] == ["sil", "sil", "sil"] and names[3:6] == ["PP"] * 3 and names[6:12] == ["aa"] * 6
    assert names[12:] == ["sil"] * 3


def test_speed_perturbed_examples_keep_labels_on_the_sound(tmp_path):
    """A clip played 1.1x faster is 1/1.1 as long, and its labels still mark the frames where the sound is."""
    import soundfile as sf

    from avatar.face.lipsync import SPEED_FACTORS, _examples, speed_perturb

    sr = 16000
    x = np.zeros(sr, np.float32)
    t = np.arange(int(0.3 * sr)) / sr
    x[int(0.4 * sr):int(0.7 * sr)] = 0.5 * np.sin(2 * np.pi * 220 * t)  # 'aa' from 0.4 to 0.7 s
    assert speed_perturb(x, 1.1).size == pytest.approx(x.size / 1.1, abs=2)
    assert speed_perturb(x, 1.0).size == x.size
    sf.write(tmp_path / "c.wav", x, sr)
    tl = Timeline(sample_rate=sr, duration=1.0, phonemes=[Phoneme(start=0.4, end=0.7, phoneme="a", viseme="aa")])
    (tmp_path / "c.json").write_text(tl.to_json(), encoding="utf-8")
    feats, labels, info = _examples(tmp_path, copies=8, seed=0, fps=30.0, speed=True)
    assert info["speed"] and len(feats) == 8
    factors = [30 / len(lab) for lab in labels]  # 30 frames at 1.0
    assert factors[0] == pytest.approx(1.0) and any(abs(f - 1.0) > 0.08 for f in factors[1:])
    for f, lab in zip(feats, labels):
        assert len(f) == len(lab)
        energy = f[:, 80]  # the first feature frame's log energy
        loud = np.flatnonzero(energy > (energy.min() + energy.max()) / 2)
        on = np.flatnonzero(lab == VISEMES.index("aa"))
        assert abs(loud[0] - on[0]) <= 1 and abs(loud[-1] - on[-1]) <= 1
    assert set(SPEED_FACTORS) and all(0.85 <= s <= 1.15 for s in SPEED_FACTORS)


def _Fixed(logits: np.ndarray):
    """Stands in for a trained net: returns the logits it was given (to test the decoding alone)."""
    from avatar.face.viseme_net import LipSyncConfig, VisemeNetOnnx

    return VisemeNetOnnx(LipSyncConfig(), lambda audio: logits[None], {}, "fixed logits")


def test_estimate_timeline_turns_runs_into_phonemes():
    from avatar.face.lipsync import LipSyncConfig, estimate_timeline

    labels = ["sil"] * 3 + ["PP"] * 4 + ["aa"] * 6 + ["sil"] * 2
    logits = np.full((len(labels), len(VISEMES)), -5.0, np.float32)
    for i, v in enumerate(labels):
        logits[i, VISEMES.index(v)] = 5.0
    feats = np.zeros((len(labels), LipSyncConfig().audio_dim), np.float32)
    tl = estimate_timeline(_Fixed(logits), feats, duration=0.5, pp_level=None)
    assert [p.viseme for p in tl.phonemes] == ["PP", "aa"]
    assert tl.phonemes[0].start == pytest.approx(3 / 30) and tl.phonemes[0].end == pytest.approx(7 / 30)
    assert tl.phonemes[1].end == pytest.approx(13 / 30) and tl.duration == 0.5
    # Sub-frame p/b/m edges: where P(PP) crosses PP_EDGE_LEVEL of its peak between frame centres (k + 0.5) / fps.
    pp = estimate_timeline(_Fixed(logits), feats, duration=0.5).phonemes[0]
    assert pp.start == pytest.approx(3.2 / 30, abs=1e-3) and pp.end == pytest.approx(6.8 / 30, abs=1e-3)
    with pytest.raises(InputError):
        estimate_timeline(_Fixed(logits), feats[:, :10], duration=0.5)


def test_closure_straddling_a_frame_boundary_seals_the_frame_inside_it():
    """Labels are frame centres, the face is shown at frame starts: a closure whose posterior stays high into the
    next frame must seal that next display frame, not the one half a frame before it."""
    from avatar.face.lipsync import LipSyncConfig, estimate_timeline
    from avatar.face.visemes import closure_weights

    probs = np.full((10, len(VISEMES)), 1e-4)
    probs[:, VISEMES.index("aa")] = 1.0
    pp = [0.0, 0.0, 0.0, 0.05, 0.9, 0.45, 0.0, 0.0, 0.0, 0.0]  # argmax PP on frame 4 only, P(PP) 0.45 on frame 5
    probs[:, VISEMES.index("PP")] = pp
    probs[:, VISEMES.index("aa")] -= np.array(pp)
    probs /= probs.sum(axis=1, keepdims=True)
    feats = np.zeros((10, LipSyncConfig().audio_dim), np.float32)
    logits = np.log(probs).astype(np.float32)
    timeline = estimate_timeline(_Fixed(logits), feats, duration=10 / 30)
    spans = [(p.start, p.end) for p in timeline.phonemes]
    assert [p.viseme for p in timeline.phonemes] == ["aa", "PP", "aa"]
    # the closure's sub-frame edges trim its neighbours (exported timelines stay a sequence, no overlaps)
    assert all(e0 <= s1 + 1e-12 for (_, e0), (s1, _) in zip(spans, spans[1:])), spans
    assert spans[0][1] == pytest.approx(spans[1][0]) and spans[1][1] == pytest.approx(spans[2][0])
    shifted = closure_weights(timeline, 30, 10)
    assert shifted[5] == 1.0 and shifted[4] < 1.0  # closure over t = 5/30 (between centres 4.5 and 5.5)
    edges = closure_weights(estimate_timeline(_Fixed(logits), feats, duration=10 / 30, pp_level=None), 30, 10)
    assert edges[4] == 1.0 and edges[5] < 1.0  # the run's frame boundaries: half a frame early


def test_network_shapes_save_and_load(tmp_path):
    from avatar.face.lipsync import LipSyncConfig, VisemeNet, load_lipsync

    net = VisemeNet(LipSyncConfig(hidden=16, layers=2))
    x = torch.randn(2, 40, net.config.audio_dim)
    assert net(x).shape == (2, 40, len(VISEMES))
    net.save_pretrained(tmp_path / "lips", onnx=False)
    again = load_lipsync(tmp_path / "lips")
    torch.testing.assert_close(again(x), net.eval()(x))
    with pytest.raises(ModelError, match="avatar.face.lipsync"):
        load_lipsync(tmp_path / "missing")


def test_exported_graph_matches_the_torch_network(tmp_path):
    """save_pretrained exports model.onnx; inference runs it in onnxruntime (no torch) and gives torch's logits
    and posteriors (tolerance 1e-4: float32 kernels sum in another order)."""
    from avatar.face.lipsync import LipSyncConfig, VisemeNet
    from avatar.face.viseme_net import VisemeNetOnnx, load_viseme_net, viseme_posteriors

    torch.manual_seed(0)
    net = VisemeNet(LipSyncConfig(hidden=32, layers=6)).eval()
    with torch.no_grad():  # non-trivial norms, so that a wrong affine or eps would show
        for p in net.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    x = np.random.default_rng(1).normal(size=(2, 70, net.config.audio_dim)).astype(np.float32)
    want = net(torch.from_numpy(x)).detach().numpy()
    net.save_pretrained(tmp_path / "lips")
    assert (tmp_path / "lips" / "model.onnx").is_file()
    onnx_net = load_viseme_net(tmp_path / "lips")
    assert isinstance(onnx_net, VisemeNetOnnx)
    np.testing.assert_allclose(onnx_net(x), want, atol=1e-4, rtol=1e-4)
    probs = viseme_posteriors(onnx_net, x[0])
    np.testing.assert_allclose(probs, torch.softmax(torch.from_numpy(want[0]), -1).numpy(), atol=1e-5)
    np.testing.assert_allclose(viseme_posteriors(net, x[0]), probs, atol=1e-5)  # a torch net is wrapped
    with pytest.raises(ModelError, match="avatar.face.lipsync"):
        load_viseme_net(tmp_path / "missing")
    with pytest.raises(ModelError, match="viseme classes"):
        VisemeNetOnnx(LipSyncConfig(hidden=32, classes=("sil", "PP")), lambda a: a, {}, "test")
    cfg = tmp_path / "lips" / "config.json"
    cfg.write_text(cfg.read_text().replace('"hidden": 32', '"hidden": 32, "hiden": 32'))
    with pytest.raises(ModelError, match="hiden"):  # configs refuse unknown keys
        load_viseme_net(tmp_path / "lips")


def test_training_learns_the_frame_labels():
    """A few steps on separable toy features fit better than chance, and the loss goes down."""
    from avatar.face.lipsync import LipSyncConfig, frame_accuracy, train

    rng = np.random.default_rng(0)
    cfg = LipSyncConfig(hidden=16, layers=2)
    labels = [rng.integers(0, 3, 160) for _ in range(4)]
    feats = [np.eye(cfg.audio_dim, dtype=np.float32)[y * 7] * 3 + rng.normal(0, 0.1, (160, cfg.audio_dim)).astype(np.float32)
             for y in labels]
    net, losses = train(feats, labels, cfg, steps=60, batch=4, window=64, lr=3e-3)
    assert np.mean(losses[-10:]) < np.mean(losses[:10])
    assert frame_accuracy(net, feats, labels)[0] > 0.6
    # With the openness term (labels 0-2: sil, PP, FF) the loss is larger at the start and still learns.
    net2, losses2 = train(feats, labels, cfg, steps=60, batch=4, window=64, lr=3e-3, openness_weight=10.0)
    assert losses2[0] > losses[0] and np.mean(losses2[-10:]) < np.mean(losses2[:10])
    assert frame_accuracy(net2, feats, labels)[0] > 0.6


def test_generate_face_refines_lips_from_the_audio_when_no_timeline(tmp_path):
    """With a lip model and no timeline the mouth follows the estimated timeline (closed on its p/b/m)."""
    from avatar.face.generate import generate_face
    from avatar.face.lipsync import LipSyncConfig, VisemeNet
    from avatar.face.model import FaceDenoiser, FaceDiffusionConfig
    from avatar.face.visemes import IDX

    face_net = FaceDenoiser(FaceDiffusionConfig(hidden=16, blocks=1, window=32, overlap=8))
    lips = VisemeNet(LipSyncConfig(hidden=16, layers=1))
    with torch.no_grad():  # a net that always says PP: every frame gets sealed lips
        for p in lips.parameters():
            p.zero_()
        lips.out.bias[VISEMES.index("PP")] = 10.0
    audio = (np.random.default_rng(0).normal(size=16000) * 0.1).astype(np.float32)
    sealed = generate_face(audio, 16000, model=face_net, lips=lips, steps=2)
    opn = sealed.frames[:, IDX["jawOpen"]] - sealed.frames[:, IDX["mouthClose"]]
    assert (opn <= 0.02).mean() > 0.9
    raw = generate_face(audio, 16000, model=face_net, lips=False, steps=2)
    assert not np.allclose(raw.frames, sealed.frames)


def test_training_cli_refuses_bad_folders(tmp_path, capsys):
    """A missing folder is a usage error; a folder without clips says so and writes nothing."""
    from avatar.face.lipsync import main

    with pytest.raises(SystemExit) as exc:
        main(["--data", str(tmp_path / "nope"), "--out", str(tmp_path / "w")])
    assert exc.value.code == 2
    (tmp_path / "empty").mkdir()
    assert main(["--data", str(tmp_path / "empty"), "--out", str(tmp_path / "w"), "--steps", "1"]) == 2
    assert "no <id>.wav" in capsys.readouterr().err
    assert not (tmp_path / "w").exists()


def test_openness_loss_charges_confusions_by_what_they_do_to_the_mouth(tmp_path):
    """Zero on the label, small for a vowel taken for another open vowel, large for an open vowel taken for p/b/m;
    the CLI refuses a negative weight."""
    from avatar.face.lipsync import VISEME_OPENNESS, main, openness_loss

    op = torch.tensor(VISEME_OPENNESS)
    assert VISEME_OPENNESS[VISEMES.index("PP")] == 0.0 and VISEME_OPENNESS[VISEMES.index("aa")] > 0.5

    def sure(v: str) -> torch.Tensor:
        logits = torch.full((1, len(VISEMES)), -20.0)
        logits[0, VISEMES.index(v)] = 20.0
        return logits

    aa = torch.tensor([VISEMES.index("aa")])
    assert float(openness_loss(sure("aa"), aa, op)) < 1e-6
    assert float(openness_loss(sure("E"), aa, op)) < 0.5 * float(openness_loss(sure("PP"), aa, op))
    for flag, bad in (("--openness-weight", "-1"), ("--pp-weight", "0"), ("--pp-weight", "nan")):
        with pytest.raises(SystemExit) as exc:
            main(["--data", str(tmp_path), "--out", str(tmp_path / "w"), flag, bad])
        assert exc.value.code == 2


def test_mel_warp_moves_a_formant_and_spec_augment_keeps_the_layout():
    """alpha 1 is the identity; alpha > 1 moves a spectral peak to higher bands (a shorter vocal tract); the
    augmented window keeps its shape, unvoiced F0 stays 0, and the draw depends only on the generator."""
    from avatar.face.lipsync import F0_SHIFT_OCTAVES, mel_warp_matrix, spec_augment

    assert np.allclose(mel_warp_matrix(1.0), np.eye(80), atol=1e-6)
    frame = np.exp(-0.5 * ((np.arange(80) - 40) / 2.0) ** 2)
    assert np.argmax(mel_warp_matrix(1.15) @ frame) > 41 and np.argmax(mel_warp_matrix(1 / 1.15) @ frame) < 39
    rng = np.random.default_rng(0)
    x = rng.normal(size=(50, 166)).astype(np.float32)
    x[:, 82] = x[:, 165] = np.where(np.arange(50) < 25, 0.0, 0.5)  # F0 columns of both sub-frames: half unvoiced
    a = spec_augment(x, np.random.default_rng(1))
    assert a.shape == x.shape and a.dtype == np.float32
    assert np.array_equal(a, spec_augment(x, np.random.default_rng(1))) and not np.allclose(a, x)
    assert (a[:25, 82] == 0).all() and (a[:25, 165] == 0).all()
    shift = a[25:, 82] - 0.5
    assert np.allclose(shift, shift[0]) and abs(shift[0]) <= F0_SHIFT_OCTAVES
    assert np.array_equal(a[:, 80:82], x[:, 80:82])  # energy and voicing untouched
    with pytest.raises(ValueError, match="features must be"):
        spec_augment(x[:, :100], rng)


def test_training_cli_reads_several_folders_and_sizes_a_fresh_network(tmp_path):
    """--data takes several corpora (clips of both are read); --hidden/--layers size a fresh net, not an --init one."""
    import json as _json

    from avatar.face.lipsync import _examples, main

    sr = 16000
    for name, n in (("a", 2), ("b", 1)):
        d = tmp_path / name
        d.mkdir()
        for i in range(n):
            import soundfile as sf

            sf.write(d / f"c{i}.wav", (np.random.default_rng(i).normal(size=sr // 2) * 0.1).astype(np.float32), sr)
            (d / f"c{i}.json").write_text(_tl().model_dump_json())
    feats, labels, info = _examples([tmp_path / "a", tmp_path / "b"], 1, 0, 30.0)
    assert info["clips"] == 3 and len(feats) == 3
    out = tmp_path / "w"
    assert main(["--data", str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(out), "--steps", "2",
                 "--batch", "2", "--hidden", "24", "--layers", "2", "--spec-aug", "--threads", "1"]) == 0
    cfg = _json.loads((out / "config.json").read_text())
    assert cfg["hidden"] == 24 and cfg["layers"] == 2 and "--spec-aug" in (out / "README.md").read_text()
    for bad in (["--hidden", "20"], ["--layers", "0"], ["--init", str(out), "--hidden", "32"]):
        with pytest.raises(SystemExit) as exc:
            main(["--data", str(tmp_path / "a"), "--out", str(tmp_path / "w2"), *bad])
        assert exc.value.code == 2


def test_exclude_variants_leaves_a_dev_sets_voices_out_of_training(tmp_path):
    """--exclude-variants drops the clips whose manifest voice has that eSpeak variant, in every --data folder;
    other variants, plain accents and joe stay; a folder without a manifest is refused when excluding."""
    import json as _json

    import soundfile as sf

    from avatar.errors import InputError
    from avatar.face.lipsync import _examples, main, voice_variant

    assert (voice_variant("en-us+klatt2"), voice_variant("en-us"), voice_variant("joe")) == ("klatt2", "", "")
    sr = 16000
    voices = {"a": ["en-us+Alicia", "en-us", "joe"], "b": ["en-gb-x-rp+Alicia", "en+Storm"]}
    for name, vs in voices.items():
        d = tmp_path / name
        d.mkdir()
        rows = []
        for i, v in enumerate(vs):
            sf.write(d / f"{name}{i}.wav", (np.random.default_rng(i).normal(size=sr // 2) * 0.1).astype(np.float32), sr)
            (d / f"{name}{i}.json").write_text(_tl().model_dump_json())
            rows.append(_json.dumps({"id": f"{name}{i}", "voice": v}))
        (d / "manifest.jsonl").write_text("\n".join(rows) + "\n")
    folders = [tmp_path / "a", tmp_path / "b"]
    assert _examples(folders, 1, 0, 30.0)[2]["clips"] == 5
    feats, _, info = _examples(folders, 1, 0, 30.0, exclude=["Alicia"])
    assert info["clips"] == 3 and len(feats) == 3 and info["excluded"] == ["Alicia"]
    assert _examples(folders, 1, 0, 30.0, exclude=["Alicia", "Storm"])[2]["clips"] == 2
    # A clip the manifest does not know (an interrupted corpus run, a damaged last line) is refused, not kept, and
    # so is a variant that matches no clip (a typo would otherwise leave the dev voice in training).
    man_a = tmp_path / "a" / "manifest.jsonl"
    good = man_a.read_text()
    man_a.write_text(good.rsplit("\n", 2)[0] + '\n{"id": "a2", "voi')
    with pytest.raises(InputError, match="no record"):
        _examples(folders, 1, 0, 30.0, exclude=["Alicia"])
    man_a.write_text(good)
    with pytest.raises(InputError, match="no clip of alicia"):
        _examples(folders, 1, 0, 30.0, exclude=["alicia"])
    (tmp_path / "b" / "manifest.jsonl").unlink()
    with pytest.raises(InputError, match="manifest"):
        _examples(folders, 1, 0, 30.0, exclude=["Alicia"])
    out = tmp_path / "w"
    assert main(["--data", str(tmp_path / "a"), "--out", str(out), "--steps", "1", "--batch", "2", "--hidden", "16",
                 "--layers", "1", "--exclude-variants", "Alicia", "--threads", "1"]) == 0
    card = (out / "README.md").read_text()
    assert "2 clips" in card and "Left out of training" in card and "Alicia" in card


def test_soup_averages_networks_of_one_config_and_the_cli_writes_it(tmp_path):
    """Each tensor of the soup is the weighted mean of the ingredients'; other shapes and bad mixes are refused."""
    from avatar.face.lipsync import LipSyncConfig, VisemeNet
    from avatar.face.lipsync_soup import main, soup

    torch.manual_seed(0)
    a, b = VisemeNet(LipSyncConfig(hidden=16, layers=2)), VisemeNet(LipSyncConfig(hidden=16, layers=2))
    s = soup([a, b], [0.25, 0.75])
    w = "convs.1.weight"
    assert torch.allclose(s.state_dict()[w], 0.25 * a.state_dict()[w] + 0.75 * b.state_dict()[w])
    with pytest.raises(ModelError):
        soup([a, VisemeNet(LipSyncConfig(hidden=24, layers=2))])
    with pytest.raises(ModelError):
        soup([a, b], [0.5, 0.6])
    a.save_pretrained(tmp_path / "a", onnx=False)
    b.save_pretrained(tmp_path / "b", onnx=False)
    assert main(["--models", str(tmp_path / "a"), str(tmp_path / "b"), "--mix", "0.75", "--out", str(tmp_path / "s")]) == 0
    from avatar.face.lipsync import load_lipsync

    assert torch.allclose(load_lipsync(tmp_path / "s").state_dict()[w], s.state_dict()[w])
    assert (tmp_path / "s" / "model.onnx").is_file() and "x0.75" in (tmp_path / "s" / "README.md").read_text()
    with pytest.raises(SystemExit):
        main(["--models", str(tmp_path / "a"), str(tmp_path / "b"), "--mix", "1.5", "--out", str(tmp_path / "t")])
