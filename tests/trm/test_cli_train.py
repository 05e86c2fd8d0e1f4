"""`agent-sre dataset generate` → `train` → `evaluate --model` on the tiny preset: the README's recipe."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from agent_sre.cli import app


def test_recipe_commands_train_report_and_evaluate_the_model_just_trained(tmp_path):
    run = CliRunner()
    data, out = tmp_path / "training.jsonl", tmp_path / "run"
    r = run.invoke(app, ["dataset", "generate", "--n", "400", "--seed", "5", "-o", str(data)])
    assert r.exit_code == 0, r.output
    r = run.invoke(app, ["train", "--training-data", str(data), "--output-dir", str(out), "--preset", "tiny",
                         "--seed", "3", "--epochs", "1", "--export", str(tmp_path / "export")])
    assert r.exit_code == 0, r.output
    assert f"MODEL_PATH={tmp_path / 'export'}" in r.output and "validation (" in r.output
    assert "selected epoch 1 of 1" in r.output
    meta = json.loads((tmp_path / "export" / "config.json").read_text())["extra"]
    assert meta["split"]["seed"] == 3 and meta["threshold"] >= 0.9
    r = run.invoke(app, ["evaluate", "--data", str(data), "--held-out", "--model", str(tmp_path / "export"),
                         "--output-dir", str(tmp_path / "eval")])
    assert r.exit_code == 0, r.output
    m = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    trained = json.loads((out / "metrics.json").read_text())
    assert m["n"] == trained["test"]["n"]  # the model's own held-out split (seed 3), not seed 0's
    assert m["at_threshold"]["threshold"] == meta["threshold"]
    # every wrong remediation the gate would let through is named, not only counted
    listed = [ln for ln in r.output.splitlines() if ln.strip().startswith("wrong, allowed:")]
    assert len(listed) == min(20, m["through_gate"]["wrong_allowed"])
    r = run.invoke(app, ["train", "--training-data", str(data), "--preset", "huge"])
    assert r.exit_code != 0 and "unknown preset" in r.output
