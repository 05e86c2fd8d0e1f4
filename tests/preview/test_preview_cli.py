"""`agent-sre preview` as a user runs it: files and directories, `kubectl kustomize` output on
stdin, the table and --json, bad settings, and nothing sent or written."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.deploy.kustomize import kubectl
from tests.e2e import harness

from .rulesets import MANIFEST, PLAIN, write_ruleset

AGENT_SRE = Path(sys.executable).parent / "agent-sre"


def run(*args: str, cwd: Path, stdin: str | None = None, **env: str) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("LLM_", "BROKER", "STATE", "POLICY"))}
    return subprocess.run([str(AGENT_SRE), "preview", *args], cwd=cwd, input=stdin, capture_output=True, text=True,
                          timeout=120, env={**base, **env})


def test_directory_as_json_lines_and_table_with_totals(tmp_path):
    rules = write_ruleset(tmp_path / "rules")
    out = run(str(rules), "--json", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    assert [(r["alertname"], r["variant"].get("kind")) for r in rows] == [
        ("MyAppCrashing", None), ("Watchdog", None),
        ("FluxReconciliationFailure", "Kustomization"), ("FluxReconciliationFailure", "HelmRepository")]
    crash = rows[0]
    assert crash["lambda_function"] == "pod-restart" and crash["method"] == "static_annotation"
    assert crash["gate"]["allowed"] is True and crash["outcome"] == "remediate"
    assert crash["rule_group"] == "apps" and crash["source"].endswith("apps.rules.yaml")
    # The broken file is named on stderr, on one line; the rest is previewed.
    [warning] = out.stderr.strip().splitlines()
    assert warning.startswith("warning: skipped ") and "broken.yaml" in warning

    table = run(str(rules), cwd=tmp_path)
    assert table.returncode == 0, table.stderr
    assert "4 alerts from 3 rules: remediate 2 · escalate 1 · uncertain 0 · silent 1" in table.stdout
    assert "MyAppCrashing" in table.stdout and "refused" not in table.stdout


def test_kubectl_kustomize_output_on_stdin(tmp_path):
    base = tmp_path / "monitoring"
    base.mkdir()
    (base / "flux.yaml").write_text(MANIFEST.split("---")[0])
    (base / "kustomization.yaml").write_text(
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nnamespace: monitoring\n"
        "commonLabels: {app.kubernetes.io/part-of: monitoring}\nresources: [flux.yaml]\n")
    rendered = subprocess.run([str(kubectl()), "kustomize", str(base)], capture_output=True, text=True, check=True)
    out = run("-", "--json", cwd=tmp_path, stdin=rendered.stdout)
    assert out.returncode == 0, out.stderr
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    assert [r["alertname"] for r in rows] == ["FluxReconciliationFailure"] * 2
    assert all(r["source"] == "<stdin>" and r["rule_group"] == "flux" for r in rows)


def test_nothing_is_sent_or_written(tmp_path):
    (tmp_path / "apps.yaml").write_text(PLAIN)
    with harness.WebhookSink() as sink:
        out = run("apps.yaml", cwd=tmp_path, STATE_DIR=str(tmp_path / "state"), BROKER_URL=sink.url)
        assert out.returncode == 0, out.stderr
        assert "remediate 1" in out.stdout  # a remediation was decided and allowed ...
        assert sink.snapshot() == []  # ... and no trigger went anywhere
    assert sorted(p.name for p in tmp_path.iterdir()) == ["apps.yaml"]  # no state, outbox or audit log


def test_unusable_settings_and_arguments_stop_it_naming_them(tmp_path):
    (tmp_path / "apps.yaml").write_text(PLAIN)
    bad = run("apps.yaml", cwd=tmp_path, POLICY_PATH=str(tmp_path / "missing.yaml"))
    assert bad.returncode == 2 and "POLICY_PATH" in bad.stderr
    bad = run("apps.yaml", cwd=tmp_path, LLM_KEEP_ALIVE="a while")
    assert bad.returncode == 2 and "LLM_KEEP_ALIVE" in bad.stderr
    bad = run("apps.yaml", "--external-label", "no-equals-sign", cwd=tmp_path)
    assert bad.returncode == 2 and "NAME=VALUE" in bad.stderr
    bad = run(cwd=tmp_path)
    assert bad.returncode == 2 and "--prometheus-url" in bad.stderr
    bad = run("--prometheus-url", f"http://127.0.0.1:{harness.free_port()}", cwd=tmp_path)
    assert bad.returncode == 2 and "/api/v1/rules" in bad.stderr


def test_external_labels_reach_the_alerts(tmp_path):
    (tmp_path / "apps.yaml").write_text(PLAIN)
    out = run("apps.yaml", "--json", "--external-label", "prometheus=monitoring/k8s",
              "--external-label", "cluster=home", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    for row in map(json.loads, out.stdout.splitlines()):
        assert row["labels"]["prometheus"] == "monitoring/k8s" and row["labels"]["cluster"] == "home"
