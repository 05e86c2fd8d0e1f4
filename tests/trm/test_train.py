"""TRM trainer and export: learning, resume, checkpoints, export/load and its failure modes."""
from __future__ import annotations

import json

import pytest
import torch

from agent_sre.trm.checkpoint import ModelLoadError, export, load_exported, model_from_checkpoint
from agent_sre.trm.model import TRM, TRMConfig
from agent_sre.trm.train import TrainConfig, train


def match_task(n: int, L: int = 8, V: int = 6, seed: int = 0):
    """Label 1 at every position whose word equals the word at the query position (role channel = 2).
    Needs content-based mixing across positions; a per-position model cannot solve it."""
    g = torch.Generator().manual_seed(seed)
    tok = torch.randint(1, V, (n, L), generator=g)
    q = torch.randint(0, L, (n,), generator=g)
    role = torch.ones(n, L, dtype=torch.long)
    role[torch.arange(n), q] = 2
    lab = (tok == tok[torch.arange(n), q].unsqueeze(1)).long()
    lab[:, -1] = -100  # ignored positions must not count
    return torch.stack([tok, role], -1), lab


def cfg(**kw) -> TRMConfig:
    return TRMConfig.preset("tiny", seq_len=8, feature_vocab=(6, 3), n_out=2, **kw)


def tcfg(**kw) -> TrainConfig:
    base = dict(lr=3e-3, weight_decay=0.01, warmup_steps=10, epochs=2, batch_size=32, ema_decay=0.99,
                seed=0, device="cpu", checkpoint_every=10**9)
    return TrainConfig(**{**base, **kw})


def test_tiny_model_overfits_match_task(tmp_path):
    X, Y = match_task(128)
    m = train(cfg(), tcfg(epochs=20), (X, Y), val_set=(X, Y), output_dir=tmp_path, progress=False)
    # EMA model evaluated with ACT predict on the training set
    assert m["val_token_acc"] >= 0.98, m
    assert m["val_exact_acc"] >= 0.9, m
    assert sum(m["sup_steps_hist"].values()) == 128 * 20  # every sample halts exactly once per epoch
    meta = json.loads((tmp_path / "train_meta.json").read_text())
    assert meta["seed"] == 0 and meta["steps"] == m["steps"] and meta["torch_version"] == torch.__version__
    assert meta["device"] == "cpu" and "train_loss" in meta["final"]


def test_deep_supervision_runs_one_optimizer_step_per_supervision_step(tmp_path):
    X, Y = match_task(32)
    c = cfg(halt_exploration_prob=0.0)
    m = train(c, tcfg(epochs=1), (X, Y), output_dir=tmp_path, progress=False)
    # q_head starts at bias -5 -> nothing halts early in the first batch: all n_sup steps are taken
    assert m["steps"] == c.n_sup and m["sup_steps_hist"] == {c.n_sup: 32}


def _params(model: torch.nn.Module):
    return {k: v.clone() for k, v in model.state_dict().items()}


@pytest.mark.parametrize("interrupt", [dict(epochs=1), dict(epochs=3, max_steps=3)],
                         ids=["epoch-boundary", "mid-epoch"])
def test_resume_matches_uninterrupted_training(tmp_path, interrupt):
    X, Y = match_task(96)
    full = train(cfg(), tcfg(epochs=3), (X, Y), output_dir=tmp_path / "full", progress=False)
    part = train(cfg(), tcfg(**interrupt), (X, Y), output_dir=tmp_path / "part", progress=False)
    assert part["steps"] < full["steps"]
    resumed = train(cfg(), tcfg(epochs=3), (X, Y), output_dir=tmp_path / "part", resume=True,
                    progress=False)
    assert resumed["steps"] == full["steps"]
    assert resumed["sup_steps_hist"] == full["sup_steps_hist"]
    assert resumed["train_loss"] == pytest.approx(full["train_loss"], rel=1e-5)
    a = torch.load(tmp_path / "full" / "checkpoint.pt", weights_only=False)
    b = torch.load(tmp_path / "part" / "checkpoint.pt", weights_only=False)
    for key in ("model", "ema"):
        for name, t in a[key].items():
            assert torch.allclose(t, b[key][name], atol=1e-6), (key, name)
    assert a["optimizer"]["state"][0]["step"] == b["optimizer"]["state"][0]["step"]


def test_max_steps_and_periodic_checkpoint(tmp_path):
    X, Y = match_task(64)
    m = train(cfg(), tcfg(epochs=50, max_steps=10, checkpoint_every=3), (X, Y), output_dir=tmp_path,
              progress=False)
    assert 10 <= m["steps"] <= 10 + cfg().n_sup  # stops at the first batch boundary past max_steps
    ck = torch.load(tmp_path / "checkpoint.pt", weights_only=False)
    assert ck["step"] == m["steps"] and set(ck) >= {"model", "ema", "optimizer", "rng", "model_config",
                                                    "train_config", "epoch", "batch_in_epoch"}
    ema, c = model_from_checkpoint(tmp_path / "checkpoint.pt")
    assert c == cfg()
    assert all(torch.equal(v, ck["ema"][k]) for k, v in ema.state_dict().items())
    assert not all(torch.equal(ck["ema"][k], ck["model"][k]) for k in ck["model"])  # EMA is a real average


def test_bad_labels_rejected(tmp_path):
    X, Y = match_task(8)
    Y[0, 0] = 2  # n_out = 2
    with pytest.raises(ValueError, match="labels"):
        train(cfg(), tcfg(), (X, Y), output_dir=tmp_path, progress=False)


def test_resume_refuses_other_model_config(tmp_path):
    X, Y = match_task(32)
    train(cfg(), tcfg(epochs=1), (X, Y), output_dir=tmp_path, progress=False)
    with pytest.raises(ValueError, match="config"):
        train(cfg(hidden=16, heads=2), tcfg(epochs=2), (X, Y), output_dir=tmp_path, resume=True,
              progress=False)


# ---------------------------------------------------------------- export / load


@pytest.fixture()
def exported(tmp_path):
    torch.manual_seed(0)
    c = cfg(mixer="mlp")
    m = TRM(c)
    with torch.no_grad():
        m.q_head.bias.fill_(0.0)  # make ACT depend on the weights, not the "never halt" init
        m.q_head.weight.normal_()
    extra = {"vocab": ["<pad>", "a", "b"], "catalog_hash": "abc123", "labels": ["O", "B-x"]}
    d = export(m, c, tmp_path / "export", extra=extra)
    return m, c, extra, d


def test_export_roundtrip_identical_predictions(exported):
    m, c, extra, d = exported
    m2, c2, extra2 = load_exported(d)
    assert c2 == c and extra2 == extra and not m2.training
    X, _ = match_task(16, seed=5)
    a, b = m.predict(X), m2.predict(X)
    assert torch.equal(a["probs"], b["probs"]) and torch.equal(a["steps"], b["steps"])
    # an EMA state dict exports the same way
    d2 = export(m.state_dict(), c, d.parent / "from_state", extra={})
    assert torch.equal(load_exported(d2)[0].predict(X)["probs"], a["probs"])


def test_export_rejects_non_json_extra(tmp_path):
    c = cfg()
    with pytest.raises(ValueError, match="JSON"):
        export(TRM(c), c, tmp_path, extra={"x": object()})


def test_load_missing_files(exported, tmp_path):
    _, _, _, d = exported
    with pytest.raises(ModelLoadError, match="missing"):
        load_exported(tmp_path / "nowhere")
    (d / "model.safetensors").unlink()
    with pytest.raises(ModelLoadError, match="model.safetensors"):
        load_exported(d)


def test_load_corrupt_weights(exported):
    _, _, _, d = exported
    w = d / "model.safetensors"
    raw = bytearray(w.read_bytes())
    raw[len(raw) // 2] ^= 0xFF  # one flipped byte in the tensor data: still parseable, wrong weights
    w.write_bytes(bytes(raw))
    with pytest.raises(ModelLoadError, match="checksum"):
        load_exported(d)


def test_load_garbage_weights_even_with_matching_checksum(exported):
    _, _, _, d = exported
    w = d / "model.safetensors"
    w.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00not a header at all")
    meta = json.loads((d / "config.json").read_text())
    import hashlib
    meta["weights_sha256"] = hashlib.sha256(w.read_bytes()).hexdigest()
    (d / "config.json").write_text(json.dumps(meta))
    with pytest.raises(ModelLoadError, match="cannot read"):
        load_exported(d)


def test_load_bad_config(exported):
    _, _, _, d = exported
    (d / "config.json").write_text("{not json")
    with pytest.raises(ModelLoadError, match="JSON"):
        load_exported(d)


def test_load_weights_that_do_not_fit_config(exported):
    _, c, _, d = exported
    meta = json.loads((d / "config.json").read_text())
    meta["model"]["hidden"] = 16  # the weights are 32 wide
    (d / "config.json").write_text(json.dumps(meta))
    with pytest.raises(ModelLoadError, match="do not fit"):
        load_exported(d)


@pytest.fixture(autouse=True)
def _one_thread():
    # Tiny matrices gain nothing from intra-op threads, and OpenMP spinning collapses when the
    # 2-core machine is shared with another process; one thread keeps the runtime predictable.
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def test_lr_schedule_warmup_and_cosine():
    from agent_sre.trm.train import _lr_at
    c = tcfg(lr=1.0, warmup_steps=10, schedule="cosine", min_lr_ratio=0.1)
    assert _lr_at(c, 0, 0.0) == pytest.approx(0.1)  # warm-up
    assert _lr_at(c, 9, 0.0) == pytest.approx(1.0)
    assert _lr_at(c, 100, 0.5) == pytest.approx(0.55)
    assert _lr_at(c, 100, 1.0) == pytest.approx(0.1)
    assert _lr_at(tcfg(lr=1.0, warmup_steps=1), 100, 0.9) == 1.0  # constant


def test_accepts_datasets_and_restores_thread_count(tmp_path):
    from torch.utils.data import Dataset, TensorDataset

    X, Y = match_task(16)

    class Pairs(Dataset):
        def __len__(self):
            return len(X)

        def __getitem__(self, i):
            return X[i], Y[i]

    torch.set_num_threads(2)  # the caller's setting; training itself runs on 1 thread
    a = train(cfg(), tcfg(epochs=1, num_threads=1), TensorDataset(X, Y), output_dir=tmp_path / "a",
              progress=False)
    assert torch.get_num_threads() == 2
    torch.set_num_threads(1)
    b = train(cfg(), tcfg(epochs=1), Pairs(), output_dir=tmp_path / "b", progress=False)
    assert a["steps"] == b["steps"] and a["train_loss"] == pytest.approx(b["train_loss"])


def test_a_single_supervision_step_trains(tmp_path):
    # The plain-network ablation (n = T = N_sup = 1) must train; every sample "explores" here, which
    # with one supervision step has nothing to draw from.
    import torch as _t
    from agent_sre.trm.model import TRMConfig
    from agent_sre.trm.train import TrainConfig, train

    _t.manual_seed(0)
    X = _t.randint(1, 8, (32, 6, 1))
    Y = (X[..., 0] % 3).long()
    mc = TRMConfig.preset("tiny", seq_len=6, feature_vocab=(8,), n_out=3, n=1, T=1, n_sup=1,
                          halt_exploration_prob=1.0)
    m = train(mc, TrainConfig(max_steps=5, batch_size=16, num_threads=1), (X, Y), None,
              output_dir=tmp_path, progress=False)
    assert m["steps"] >= 5 and set(m["sup_steps_hist"]) == {1}


def test_paper_recipe_trains_with_stablemax_and_adam_atan2(tmp_path):
    """The paper preset's recipe (AdamATan2, stablemax cross-entropy, plain EMA, no clipping), on the tiny
    shape: it learns, and a model whose output is stablemax gives normalised probabilities."""
    from agent_sre.trm.recipe import TRAIN_PRESETS

    paper = TRAIN_PRESETS["paper"]
    assert (paper["optimizer"], paper["loss"], paper["grad_clip"], paper["ema_warmup"]) == (
        "adamatan2", "stablemax", None, False)
    assert TRMConfig.preset("paper", seq_len=8, feature_vocab=(6, 3), n_out=2).output == "stablemax"
    X, Y = match_task(128)
    recipe = {**paper, "lr": 3e-3, "warmup_steps": 10, "batch_size": 32, "epochs": 20, "ema_decay": 0.9}
    c = cfg(output="stablemax")
    m = train(c, tcfg(**recipe), (X, Y), val_set=(X, Y), output_dir=tmp_path, progress=False)
    assert m["val_token_acc"] >= 0.9, m
    model, _ = model_from_checkpoint(tmp_path / "checkpoint.pt")
    probs = model.predict(X[:16])["probs"]
    assert torch.allclose(probs[:, :-1].sum(-1), torch.ones(16, 7), atol=1e-5)
    with pytest.raises(ValueError):
        tcfg(loss="focal")
    with pytest.raises(ValueError):
        cfg(output="sparsemax")
