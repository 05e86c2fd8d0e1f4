"""Loading a predictor, abstaining, and the TRM chain stage, on a tiny model trained in the test."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from agent_sre import catalog
from agent_sre.alerts import Alert
from agent_sre.decision import Abstain, Method
from agent_sre.trm import records as ds
from agent_sre.trm.checkpoint import ModelLoadError, export
from agent_sre.trm.encoding import Tokenizer, default_priority_keys
from agent_sre.trm.evaluate import evaluate_records, format_report, plot_confusion, plot_reliability
from agent_sre.trm.generator import generate
from agent_sre.trm.infer import Predictor, load_predictor
from agent_sre.chain.trm import TRMStage
from agent_sre.trm.model import TRMConfig
from agent_sre.trm.recipe import encode_records
from agent_sre.trm.train import TrainConfig, train


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    torch.set_num_threads(1)  # small tensors: one thread is faster and immune to a busy machine
    d = tmp_path_factory.mktemp("trm")
    recs = generate(n=200, seed=5)
    tok = Tokenizer.build([r["alert"] for r in recs], priority_keys=default_priority_keys())
    X, Y = encode_records(tok, recs)
    mc = TRMConfig.preset("tiny", seq_len=tok.seq_len, feature_vocab=tok.feature_vocab, n_out=tok.space.n_out)
    tc = TrainConfig(lr=3e-3, epochs=1, max_steps=8, batch_size=32, warmup_steps=2, num_threads=1)
    train(mc, tc, (X, Y), None, output_dir=d / "run", progress=False)
    from agent_sre.trm.checkpoint import model_from_checkpoint

    ema, _ = model_from_checkpoint(d / "run" / "checkpoint.pt")
    export(ema, mc, d / "model", extra={"tokenizer": tok.to_dict(), "catalog_hash": catalog.catalog_hash()})
    return d / "model"


@pytest.fixture(scope="module")
def alerts():
    return [ds.Alert.model_validate(r["alert"]) for r in ds.runbook_records()]


def test_predict_batch_one_call(model_dir, alerts, monkeypatch):
    p = load_predictor(model_dir)
    calls = []
    orig = p.model.predict
    monkeypatch.setattr(p.model, "predict", lambda x, **kw: calls.append(x.shape) or orig(x, **kw))
    preds = p.predict_batch(alerts)
    assert len(calls) == 1 and calls[0][0] == len(alerts)
    assert len(preds) == len(alerts)
    for pr in preds:
        assert 0.0 <= pr.confidence <= 1.0
        assert 1 <= pr.iterations <= 4
        assert json.loads(pr.text)  # the model's text answer is JSON
        assert (pr.decision is None) == (pr.error is not None)
        if pr.decision is not None:
            assert pr.decision.method is Method.TRM
            assert pr.decision.iterations == pr.iterations


def test_stage_abstains_below_threshold(model_dir, alerts):
    strict = TRMStage.from_path(model_dir, threshold=1.01)  # nothing can reach it
    with pytest.raises(Abstain, match="confidence|invalid"):
        strict(alerts[0])
    for r in strict.batch(alerts):
        assert isinstance(r, Abstain) and ("confidence" in str(r) or "invalid" in str(r))
    lax = TRMStage(predictor=strict.predictor, threshold=0.0)
    for r in lax.batch(alerts):  # at threshold 0 only invalid output abstains
        assert (isinstance(r, Abstain) and "invalid" in str(r)) or r.method is Method.TRM


def test_stage_abstains_on_resolved(model_dir, alerts):
    lax = TRMStage.from_path(model_dir, threshold=0.0)
    assert lax.predictor.predict(alerts[0]).iterations >= 1
    resolved = alerts[0].model_copy(update={"status": "resolved"})
    with pytest.raises(Abstain, match="resolved"):
        lax(resolved)


def test_stage_decides_when_confident(alerts):
    """A predictor whose model puts all mass on the runbook answer: the stage returns that decision."""
    tok = Tokenizer.build([r["alert"] for r in ds.runbook_records()], min_count=1)

    class Oracle(torch.nn.Module):
        def __init__(self, rec):
            super().__init__()
            self.rec = rec

        def predict(self, x, **kw):
            y = tok.labels(self.rec["alert"], self.rec["expect"])
            P = torch.zeros(1, tok.seq_len, tok.space.n_out)
            for i, c in enumerate(y):
                P[0, i, max(c, 0)] = 1.0
            return {"probs": P, "steps": torch.tensor([3]), "q_halt": torch.tensor([0.99])}

    rec = next(r for r in ds.runbook_records() if r["expect"]["lambda_function"] == "pod-check-status")
    stage = TRMStage(predictor=Predictor(Oracle(rec), tok), threshold=0.9)
    d = stage(Alert.model_validate(rec["alert"]))
    assert d.lambda_function == "pod-check-status" and d.method is Method.TRM and d.iterations == 3
    assert [s.lambda_function for s in d.plan] == ["pod-check-status", "pod-restart"]
    assert d.plan[1].from_previous == ["name", "namespace"]


def test_load_errors(model_dir, tmp_path):
    with pytest.raises(ModelLoadError, match="does not exist"):
        load_predictor(tmp_path / "nope")
    bad = tmp_path / "bad"
    shutil.copytree(model_dir, bad)
    cfg = json.loads((bad / "config.json").read_text())
    cfg["extra"]["catalog_hash"] = "0000000000000000"
    (bad / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ModelLoadError, match="catalog"):
        load_predictor(bad)
    corrupt = tmp_path / "corrupt"
    shutil.copytree(model_dir, corrupt)
    with open(corrupt / "model.safetensors", "r+b") as f:
        f.seek(200)
        f.write(b"\x00garbage\x00")
    with pytest.raises(ModelLoadError):
        load_predictor(corrupt)
    (corrupt / "config.json").unlink()
    with pytest.raises(ModelLoadError, match="missing"):
        load_predictor(corrupt)
    # the chain's stage turns a broken model into an abstention, not a crash
    with pytest.raises(Abstain, match="unusable"):
        TRMStage(model_path=corrupt)(Alert(labels={"alertname": "X"}))


def test_evaluate_reports_and_plots(model_dir, tmp_path):
    p = load_predictor(model_dir)
    recs = generate(n=40, seed=21)
    m = evaluate_records(p, recs, threshold=0.5)
    assert m["n"] == 40
    assert sum(map(sum, m["confusion"]["matrix"])) == 40
    assert 0 <= m["calibration"]["ece"] <= 1
    assert "REMEDIATIONS ON NO-ACTION" in format_report(m)
    assert plot_confusion(m, tmp_path / "c.png").stat().st_size > 1000
    assert plot_reliability(m, tmp_path / "r.png").stat().st_size > 1000


def test_train_from_jsonl_end_to_end(tmp_path):
    from agent_sre.trm.recipe import train_from_jsonl

    data = tmp_path / "gen.jsonl"
    ds.write_jsonl(data, generate(n=300, seed=4))
    m = train_from_jsonl(data, tmp_path / "out", preset="tiny", epochs=1, max_steps=4, batch_size=32,
                         warmup_steps=1)
    out = tmp_path / "out"
    for f in ("model/model.safetensors", "model/model.onnx", "model/config.json", "metrics.json", "split.json",
              "confusion.png", "reliability.png"):
        assert (out / f).is_file(), f
    split_info = json.loads((out / "split.json").read_text())
    assert split_info["seed"] == 0 and split_info["sizes"] == m["sizes"]
    assert m["test"]["n"] == m["sizes"]["test"] > 0
    p = load_predictor(out / "model")
    assert p.tok.seq_len == 64 and p.tok.max_labels == 24 and p.meta["catalog_hash"] == catalog.catalog_hash()
    assert p.meta["tokenizer"]["words"] and p.tok.key_rank  # vocabulary and label ranking travel with the model
    assert p.threshold() == m["validation"]["threshold"] >= 0.9


def test_recipe_selects_by_validation_and_says_how_safe_it_is(tmp_path, capsys):
    """The epochs of the second half are scored on validation (wrong remediations past the gate at the
    stage threshold, then decisions right); the export is the selected one; the summary says how safe
    validation found it — or warns. With calibrate_threshold the threshold is the lowest safe one."""
    from agent_sre.trm.evaluate import THRESHOLDS
    from agent_sre.trm.recipe import format_summary, train_from_jsonl

    data = tmp_path / "gen.jsonl"
    ds.write_jsonl(data, generate(n=400, seed=6))
    m = train_from_jsonl(data, tmp_path / "out", preset="tiny", epochs=3, batch_size=64, progress=True)
    sel = m["selection"]
    assert [s["epoch"] for s in sel] == [2, 3]  # epoch 1 of 3 is not a candidate
    best = max(sel, key=lambda s: tuple(s["score"]))
    assert m["model"]["selected_epoch"] == best["epoch"]
    for s in sel:
        assert s["score"] == [-s["val_wrong_past_gate"], s["val_right_decided"]]
    v = m["validation"]
    assert v["threshold"] == 0.9 and v["chosen"]["threshold"] == 0.9
    assert v["safe"] is (v["chosen"]["wrong_allowed"] == 0)
    text = format_summary(m, tmp_path / "out" / "model")
    assert f"MODEL_PATH={tmp_path / 'out' / 'model'}" in text and "validation (" in text
    assert ("NOT SAFE ON VALIDATION" in text) is (not v["safe"])
    unsafe = {**m, "validation": {**v, "safe": False}}
    assert "NOT SAFE ON VALIDATION" in format_summary(unsafe, tmp_path)
    t = m["test"]["through_gate"]
    assert ("NOT SAFE ON THE HELD-OUT TEST" in text) is (t["wrong_allowed"] > 0)
    leaky = {**m, "test": {**m["test"], "through_gate": {**t, "wrong_allowed": 3}}}
    assert "NOT SAFE ON THE HELD-OUT TEST — 3 wrong" in format_summary(leaky, tmp_path)
    c = train_from_jsonl(data, tmp_path / "cal", preset="tiny", epochs=1, batch_size=64, calibrate_threshold=True)
    cv = c["validation"]
    assert cv["threshold"] in THRESHOLDS
    if cv["safe"]:
        assert all(a["wrong_allowed"] > 0 for a in cv["at"] if a["threshold"] < cv["threshold"])
    err = capsys.readouterr().err  # not a terminal: readable progress lines, one per epoch at least
    assert "epoch 1/3 done, optimizer step" in err and "epoch 3/3 done" in err and "\r" not in err


def test_backend_choice_and_its_reasons(model_dir, tmp_path):
    assert load_predictor(model_dir).info["backend"] == "onnx"  # the export carries its graph
    old = tmp_path / "before-the-graph"  # an export written before the graph was part of it
    shutil.copytree(model_dir, old)
    (old / "model.onnx").unlink()
    cfg = json.loads((old / "config.json").read_text())
    del cfg["onnx_sha256"]
    (old / "config.json").write_text(json.dumps(cfg))
    p = load_predictor(old)
    assert p.info["backend"] == "torch" and "no model.onnx" in p.info["backend_note"]
    with pytest.raises(ModelLoadError, match="backend onnx unusable.*no model.onnx"):
        load_predictor(old, backend="onnx")
    with pytest.raises(ValueError, match="auto, onnx or torch"):
        load_predictor(model_dir, backend="tensorflow")
    bad = tmp_path / "bad-graph"
    shutil.copytree(model_dir, bad)
    raw = bytearray((bad / "model.onnx").read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    (bad / "model.onnx").write_bytes(bytes(raw))
    for backend in ("onnx", "torch"):  # the export is one unit: whichever file is damaged, it is refused
        with pytest.raises(ModelLoadError, match="model.onnx does not match the checksum"):
            load_predictor(bad, backend=backend)


def test_both_backends_decide_alike(model_dir, alerts):
    onnx_, torch_ = load_predictor(model_dir, backend="onnx"), load_predictor(model_dir, backend="torch")
    for a, b in zip(onnx_.predict_batch(alerts), torch_.predict_batch(alerts)):
        assert (a.text, a.iterations, a.error) == (b.text, b.iterations, b.error)
        assert a.confidence == pytest.approx(b.confidence, abs=1e-3)


def test_reexport_adds_the_graph_to_an_export_and_keeps_its_weights(model_dir, tmp_path):
    from agent_sre.trm.recipe import reexport

    old = tmp_path / "old"
    shutil.copytree(model_dir, old)
    (old / "model.onnx").unlink()
    cfg = json.loads((old / "config.json").read_text())
    del cfg["onnx_sha256"]
    (old / "config.json").write_text(json.dumps(cfg))
    new = reexport(old, tmp_path / "new")
    assert (new / "model.safetensors").read_bytes() == (model_dir / "model.safetensors").read_bytes()
    assert load_predictor(new).info["backend"] == "onnx"


def test_one_threshold_and_threads_rule_for_the_stage_and_the_service(model_dir, monkeypatch):
    from agent_sre.reasoning.engine import TRMEngine

    for var in ("TRM_THRESHOLD", "TORCH_THREADS", "TRM_BACKEND"):
        monkeypatch.delenv(var, raising=False)
    stage, engine = TRMStage.from_path(model_dir), TRMEngine.load(model_dir)
    assert stage.threshold == engine.threshold == 0.9  # recorded in none: the default
    assert stage.predictor.info["threads"] == engine.info["threads"] == 1
    monkeypatch.setenv("TRM_THRESHOLD", "0.5")
    monkeypatch.setenv("TORCH_THREADS", "2")
    stage, engine = TRMStage.from_path(model_dir), TRMEngine.load(model_dir)
    assert stage.threshold == engine.threshold == 0.5
    assert stage.predictor.info["threads"] == engine.info["threads"] == 2


def test_an_ensemble_export_is_served_as_the_average_of_its_members(tmp_path):
    """Two members trained on the same split: one directory, the members in subdirectories, every
    backend averaging their probabilities; a member that does not fit refuses to load."""
    from agent_sre.trm import artifact
    from agent_sre.trm.infer import EnsembleTRM
    from agent_sre.trm.recipe import reexport, train_from_jsonl

    data = tmp_path / "gen.jsonl"
    ds.write_jsonl(data, generate(n=300, seed=8))
    m = train_from_jsonl(data, tmp_path / "out", preset="tiny", epochs=1, max_steps=3, batch_size=32,
                         members=2, select=False)
    model = tmp_path / "out" / "model"
    assert m["model"]["members"] == 2 and [x["seed"] for x in m["members"]] == [0, 1000]
    assert artifact.read(model).extra["members"] == ["member-1"]
    alerts = [r["alert"] for r in generate(n=12, seed=9)]
    for backend in ("onnx", "torch"):
        ens = load_predictor(model, backend=backend)
        assert isinstance(ens.model, EnsembleTRM) and ens.info["members"] == 2
        one = load_predictor(model, backend=backend).model.members
        _, x = ens.encode(alerts)
        want = np.mean([o.predict(x)["probs"] for o in one], axis=0)
        assert np.allclose(ens.forward(x)["probs"], want, atol=1e-6)
        assert len(ens.predict_batch(alerts)) == 12
    again = reexport(model, tmp_path / "again")  # an export with members re-exports whole
    assert load_predictor(again).info["members"] == 2
    again = reexport(tmp_path / "out", tmp_path / "from-run")  # and from the training runs
    assert load_predictor(again).info["members"] == 2
    bad = tmp_path / "bad"
    shutil.copytree(model, bad)
    cfg = json.loads((bad / "member-1" / "config.json").read_text())
    cfg["model"]["hidden"] = 64
    (bad / "member-1" / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ModelLoadError, match="member"):
        load_predictor(bad)
    meta = json.loads((bad / "config.json").read_text())
    meta["extra"]["members"] = ["../elsewhere"]
    (bad / "config.json").write_text(json.dumps(meta))
    with pytest.raises(ModelLoadError, match="subdirectory"):
        load_predictor(bad)


def test_an_ensemble_answer_is_only_as_sure_as_its_least_sure_member():
    """The average chooses the answer; its confidence is the lowest of the average's and each member's
    probability for the same choices. Two members, one certain and one at 0.84 on the function: the
    average is 0.92 sure, above the threshold, yet the stage abstains."""
    from agent_sre.trm.infer import EnsembleTRM

    tok = Tokenizer.build([r["alert"] for r in ds.runbook_records()], min_count=1)
    rec = next(r for r in ds.runbook_records() if r["expect"]["lambda_function"] == "pod-check-status")
    other = next(r for r in ds.runbook_records() if r["expect"]["lambda_function"] == "flux-reconcile-kustomization")
    alert = Alert.model_validate(rec["alert"])

    class Member:
        """A member's output: all mass on ``expect``'s labels, ``sure`` of it at the function slot."""

        cfg = None

        def __init__(self, expect, sure=1.0):
            self.y, self.sure = tok.labels(rec["alert"], expect), sure

        def predict(self, x, **kw):
            P = np.zeros((1, tok.seq_len, tok.space.n_out), dtype=np.float32)
            for i, c in enumerate(self.y):
                P[0, i, max(c, 0)] = 1.0
            P[0, 0] *= self.sure
            P[0, 0, 0] += 1.0 - self.sure  # the rest on "no action"
            return {"probs": P, "steps": np.array([2]), "q_halt": np.array([0.99])}

    def stage(*members):
        return TRMStage(predictor=Predictor(EnsembleTRM(list(members)), tok), threshold=0.9)

    sure = Member(rec["expect"])
    d = stage(sure, Member(rec["expect"]))(alert)
    assert d.lambda_function == "pod-check-status" and d.confidence == pytest.approx(1.0)
    one = Predictor(EnsembleTRM([sure, Member(rec["expect"], 0.84)]), tok)
    assert one.predict(alert).confidence == pytest.approx(0.84)
    assert float(one.forward(one.encode([alert])[1])["probs"][0, 0].max()) == pytest.approx(0.92)
    with pytest.raises(Abstain, match="confidence 0.84"):
        stage(sure, Member(rec["expect"], 0.84))(alert)
    # A member sure of another function gives the average's choice no probability at all.
    wrong_fn = dict(other["expect"], parameters=rec["expect"]["parameters"])
    three = Predictor(EnsembleTRM([sure, sure, Member(wrong_fn)]), tok)
    p = three.predict(alert)
    assert p.decision.lambda_function == "pod-check-status" and p.confidence == 0.0
