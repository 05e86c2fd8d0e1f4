"""Learning from outcomes: what the loop recorded becomes labelled examples (`dataset collect`),
which `select`, `preview` and `train` read back; a dry-run result is never a label."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from agent_sre.cli import app as cli
from agent_sre.trm import records as ds
from tests.loop.support import crash, make
from tests.loop.test_loop import approve_next, fixed


def run(*args: str, **env: str):
    return CliRunner().invoke(cli, list(args), env={"COLUMNS": "200", "USE_TRM": "false", **env})


def history(tmp_path):
    """An audit log with a verified fix, an ineffective one, a rejection and a dry run."""
    rig = make(tmp_path, "mode: execute\nautonomy: {promote_after: 5}")
    fixed(rig, 1)
    rig.agent.handle_alerts([crash(2)])
    approve_next(rig)
    rig.answer(rig.broker.triggers[-1], ok=False, observed="replacement pod crashes")
    rig.agent.handle_alerts([crash(3)])
    [req] = [r for r in rig.requests() if r["parameters"]["name"] == "web-3"]
    rig.loop.decide(req["id"], False, "bob", "wrong pod")
    dry = make(tmp_path / "dry", "mode: dry_run")
    dry.agent.handle_alerts([crash(4)])
    dry.answer(dry.broker.triggers[-1])
    return [rig.audit.path, dry.audit.path]


def test_collect_labels_outcomes_and_select_preview_train_read_it_back(tmp_path):
    logs = history(tmp_path)
    out = tmp_path / "collected.jsonl"
    recs = []
    for i, log in enumerate(logs):
        part = tmp_path / f"c{i}.jsonl"
        r = run("dataset", "collect", "--audit-log", str(log), "-o", str(part))
        assert r.exit_code == 0, r.output
        recs += ds.read_jsonl(part)
    ds.write_jsonl(out, recs)
    by_pod = {r["alert"]["labels"]["pod"]: r for r in recs}
    assert by_pod["web-1"]["meta"]["label"] == "positive"
    assert by_pod["web-1"]["expect"]["lambda_function"] == "pod-restart"
    assert by_pod["web-1"]["expect"]["parameters"] == {"name": "web-1", "namespace": "media", "type": "pod"}
    for pod in ("web-2", "web-3"):
        assert by_pod[pod]["meta"]["label"] == "negative" and by_pod[pod]["expect"]["lambda_function"] is None
    assert by_pod["web-4"]["expect"] is None and by_pod["web-4"]["meta"]["dry_run"] is True
    assert by_pod["web-4"]["meta"]["result"] == "success"  # a dry-run "success" is not an answer

    # select reads the records' alerts
    r = run("select", "--file", str(out), "--strategy", "rules")
    assert r.exit_code == 0, r.output
    lines = [json.loads(x) for x in r.output.splitlines()]
    assert len(lines) == 4 and all(x["alertname"] == "PodCrashLoopBackOff" for x in lines)
    assert sorted(x["parameters"]["name"] for x in lines) == ["web-1", "web-2", "web-3", "web-4"]
    # preview too
    r = run("preview", str(out), "--json")
    assert r.exit_code == 0, r.output
    assert len(r.output.splitlines()) == 4

    # train skips the unlabelled one and weighs the outcomes
    assert len(ds.labelled(recs)) == 3
    weighted = ds.outcome_weighted(ds.labelled(recs), 4)
    assert len(weighted) == 12
    from agent_sre.trm.generator import generate
    from agent_sre.trm.recipe import train_from_jsonl

    gen = tmp_path / "gen.jsonl"
    ds.write_jsonl(gen, generate(n=200, seed=3))
    m = train_from_jsonl([gen, out], tmp_path / "run", preset="tiny", epochs=1, max_steps=2, batch_size=32,
                         warmup_steps=1, outcome_weight=4, split_by="random")
    assert sum(m["sizes"].values()) == 200 + 3  # the three labelled outcomes, not the dry run
    assert (tmp_path / "run" / "model" / "model.onnx").is_file()
