"""bench/spread.py: the figures of several training runs, each read from its own directory, and their
mean / min / max. The runs here are the shipped model's own output (its metrics, its export)."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import spread  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]

RULES = """
groups:
  - name: apps
    rules:
      - alert: KubePodCrashLooping
        expr: max_over_time(kube_pod_container_status_waiting_reason{reason="CrashLoopBackOff"}[5m]) >= 1
        labels: {severity: warning}
        annotations:
          description: 'Pod {{ $labels.namespace }}/{{ $labels.pod }} ({{ $labels.container }}) is crash looping.'
      - alert: RedisDown
        expr: redis_up == 0
        labels: {severity: critical}
"""
LABELS = {"rules": [
    {"source": "me/rules:rules.yaml", "group": "apps", "alert": "KubePodCrashLooping",
     "expect": {"function": "pod-restart", "parameters": {"name": "pod", "namespace": "namespace", "type": "=pod"}}},
    {"source": "me/rules:rules.yaml", "group": "apps", "alert": "RedisDown", "expect": "none", "reason": "no function"},
]}


def test_each_run_is_read_from_its_directory_and_summarised(tmp_path, capsys):
    metrics = json.loads((ROOT / "docs" / "trm" / "metrics-cpu.json").read_text())
    runs = []
    for name, wrong in (("s0", 8), ("s1", 2)):  # the second run: the same figures but fewer wrong ones
        run = tmp_path / name
        shutil.copytree(ROOT / "src" / "agent_sre" / "data" / "model", run / "model")
        m = json.loads(json.dumps(metrics))
        m["test"]["through_gate"]["wrong_allowed"] = wrong
        (run / "metrics.json").write_text(json.dumps(m))
        runs.append(run)
    corpus = tmp_path / "corpus" / "me__rules"
    corpus.mkdir(parents=True)
    (corpus / "rules.yaml").write_text(RULES)
    (tmp_path / "labels.yaml").write_text(yaml.safe_dump(LABELS))

    rows = spread.main([*map(str, runs), "--rules-dir", str(tmp_path / "corpus"),
                        "--labels", str(tmp_path / "labels.yaml"), "--score", str(tmp_path / "absent.py")])
    out = capsys.readouterr().out
    assert [r["test_wrong_gate"] for r in rows] == [8, 2]
    assert all(r["test_exact"] == metrics["test"]["exact"] for r in rows)
    assert all(r["real_n"] == 1 and r["real_wrong_gate"] == 0 for r in rows)  # the crash loop, the runbook's shape
    assert all("public_actionable" not in r for r in rows)  # no score.py: that part is skipped, not invented
    table = {ln.split("|")[1].strip(): [c.strip() for c in ln.split("|")[2:-1]] for ln in out.splitlines()
             if ln.startswith("| ")}
    head = table["run"]
    col = head.index("test: wrong past gate")
    assert (table["**mean**"][col], table["**min**"][col], table["**max**"][col]) == ("5", "2", "8")


def test_data_re_measures_the_gate_figures_through_todays_gate(tmp_path):
    """A run's metrics.json carries the gate's figures from training time; with --data they are
    measured again on the run's own split, through this checkout's gate and policy."""
    import pytest

    from agent_sre.trm import records as R
    from agent_sre.trm.evaluate import decision_rows, safety
    from agent_sre.trm.generator import generate
    from agent_sre.trm.infer import load_predictor

    data = tmp_path / "data.jsonl"
    R.write_jsonl(data, generate(n=500, seed=3))
    sp = R.split(R.labelled(R.merge([data])), seed=1, by="name")
    metrics = json.loads((ROOT / "docs" / "trm" / "metrics-cpu.json").read_text())
    metrics["test"]["n"] = len(sp.test)
    metrics["test"]["through_gate"].update(wrong_allowed=99, allowed=99)  # stale: not what the gate says now
    run = tmp_path / "s1"
    shutil.copytree(ROOT / "src" / "agent_sre" / "data" / "model", run / "model")
    (run / "metrics.json").write_text(json.dumps(metrics))
    (run / "split.json").write_text(json.dumps({"seed": 1, "by": "name"}))

    [row] = spread.main([str(run), "--data", str(data), "--score", str(tmp_path / "absent.py")])
    pred = load_predictor(run / "model")
    want_t = safety(decision_rows(pred, sp.test), metrics["validation"]["threshold"])
    want_v = safety(decision_rows(pred, sp.val), metrics["validation"]["threshold"])
    assert (row["test_allowed"], row["test_wrong_gate"]) == (want_t["allowed"], want_t["wrong_allowed"]) != (99, 99)
    assert row["val_wrong_gate"] == want_v["wrong_allowed"]

    metrics["test"]["n"] += 1  # another file than the run was trained on: refused, not silently re-measured
    (run / "metrics.json").write_text(json.dumps(metrics))
    with pytest.raises(SystemExit, match="test split"):
        spread.main([str(run), "--data", str(data), "--score", str(tmp_path / "absent.py")])
