"""bench/real_rules.py: rule files from a directory -> alerts as delivered -> scored against labels."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import real_rules as rr  # noqa: E402
import real_synth as synth  # noqa: E402
from bench.compare import bl  # noqa: E402

RULES = """
groups:
  - name: apps
    rules:
      - alert: KubePodCrashLooping
        expr: max_over_time(kube_pod_container_status_waiting_reason{reason="CrashLoopBackOff"}[5m]) >= 1
        labels: {severity: warning}
        annotations:
          description: 'Pod {{ $labels.namespace }}/{{ $labels.pod }} ({{ $labels.container }}) is crash looping.'
      - alert: FluxObjectFailing
        expr: gotk_resource_info{ready="False", customresource_kind=~"Kustomization|HelmRelease"}
        labels: {severity: critical}
        annotations: {summary: '{{ $labels.customresource_kind }} {{ $labels.name }} failing'}
      - alert: RedisDown
        expr: redis_up == 0
        annotations: {summary: 'Redis down (instance {{ $labels.instance }})', description: 'LABELS = {{ $labels }}'}
"""
MANIFEST = """
apiVersion: monitoring.coreos.com/v1
kind: PrometheusRule
metadata: {name: targets}
spec:
  groups:
    - name: general
      rules:
        - alert: TargetDown
          expr: 100 * (count(up == 0) by (job, namespace, service) / count(up) by (job, namespace, service)) > 10
          labels: {severity: warning}
"""
LABELS = {"rules": [
    {"source": "me/rules:rules.yaml", "group": "apps", "alert": "KubePodCrashLooping",
     "expect": {"function": "pod-restart", "parameters": {"name": "pod", "namespace": "namespace", "type": "=pod"}}},
    {"source": "me/rules:rules.yaml", "group": "apps", "alert": "FluxObjectFailing",
     "cases": [{"when": {"suspended": ["true", "True"]}, "expect": "none"},
               {"when": {"customresource_kind": ["Kustomization"]},
                "expect": {"function": "flux-reconcile-kustomization",
                           "parameters": {"name": "name", "namespace": "exported_namespace"}}},
               {"when": {}, "expect": {"function": "flux-reconcile-helmrelease",
                                       "parameters": {"name": "name", "namespace": "exported_namespace"}}}]},
    {"source": "me/rules:rules.yaml", "group": "apps", "alert": "RedisDown", "expect": "none", "reason": "no function"},
    {"source": "me/rules:manifests/targets.yaml", "group": "general", "alert": "TargetDown", "borderline": True,
     "cases": [{"when": {"job": {"regex": ".*prometheus"}}, "expect": {"function": "pod-check-status",
                                                                      "parameters": {"namespace": "namespace"}}},
               {"when": {}, "expect": "none"}]},
]}


@pytest.fixture
def rules_dir(tmp_path):
    d = tmp_path / "corpus" / "me__rules"
    (d / "manifests").mkdir(parents=True)
    (d / "rules.yaml").write_text(RULES)
    (d / "manifests" / "targets.yaml").write_text(MANIFEST)
    (d / "chart-template.yaml").write_text("groups: {{ .Values.x }}: [")  # unreadable: counted, skipped
    labels = tmp_path / "labels.yaml"
    labels.write_text(yaml.safe_dump(LABELS))
    return tmp_path / "corpus", labels


def test_alerts_are_synthesised_as_delivered_and_expectations_follow_the_labels(rules_dir):
    corpus, labels = rules_dir
    cases, info = rr.build_cases(corpus, rr.load_labels(labels))
    assert info == {"files": 2, "unreadable": 1, "rules": 4, "unlabelled_rules": 0}
    by = {}
    for c in cases:
        by.setdefault(c["rule"], []).append(c)
    crash = by["KubePodCrashLooping"][0]
    lab = crash["alert"]["labels"]
    assert lab["reason"] == "CrashLoopBackOff" and lab["job"] == "kube-state-metrics"  # matcher value, scrape job
    assert crash["expect_fn"] == "pod-restart"
    assert crash["expect_params"] == {"name": lab["pod"], "namespace": lab["namespace"], "type": "pod"}
    assert lab["pod"] in crash["alert"]["annotations"]["description"]  # templates rendered with the labels
    flux = by["FluxObjectFailing"]
    kinds = {c["alert"]["labels"]["customresource_kind"]: c for c in flux
             if c["alert"]["labels"].get("suspended") not in ("true", "True")}
    assert kinds["Kustomization"]["expect_fn"] == "flux-reconcile-kustomization"
    assert kinds["HelmRelease"]["expect_fn"] == "flux-reconcile-helmrelease"
    ksm = kinds["HelmRelease"]["alert"]["labels"]
    assert ksm["namespace"] != ksm["exported_namespace"] and len(ksm) >= 15  # KSM's own scrape labels too
    assert kinds["HelmRelease"]["expect_params"]["namespace"] == ksm["exported_namespace"]
    suspended = [c for c in flux if c["alert"]["labels"].get("suspended") in ("true", "True")]
    assert suspended and all(c["expect_fn"] is None for c in suspended)  # one alert per labelled case
    redis = by["RedisDown"][0]["alert"]
    assert redis["annotations"]["description"].startswith("LABELS = map[") and "instance" in redis["labels"]
    td = by["TargetDown"]
    assert {c["expect_fn"] for c in td} == {"pod-check-status", None} and all(c["borderline"] for c in td)
    assert all("pod" not in c["alert"]["labels"] for c in td)  # aggregated away


class _Fixed(bl.BenchMethod):
    """Answers every alert with the expected decision, except one wrong remediation (confident)."""

    def __init__(self, cases):
        self.want = {json.dumps(c["alert"]["labels"], sort_keys=True): c for c in cases}

    def predict_batch(self, alerts):
        out = []
        for a in alerts:
            c = self.want[json.dumps(a["labels"], sort_keys=True)]
            if a["labels"]["alertname"] == "RedisDown":
                out.append(bl.Pred("pod-restart", {"name": a["labels"]["pod"], "namespace": a["labels"]["namespace"],
                                                   "type": "pod"}, 0.99))
            else:
                out.append(bl.Pred(c["expect_fn"], c["expect_params"], 0.95))
        return out


def test_scoring_counts_wrong_remediations_past_the_gate(rules_dir):
    corpus, labels = rules_dir
    cases, _ = rr.build_cases(corpus, rr.load_labels(labels))
    scored = [c for c in cases if c["labelled"]]
    rows = rr.score(scored, _Fixed(scored).predict_batch([c["alert"] for c in scored]), 0.9)
    rep = rr.report(rows, 0.9)
    raw = rep["raw"]
    assert raw["actionable_exact"] == raw["actionable"] == raw["actionable_exact_at_threshold"] >= 3
    assert raw["wrong_raw"] == raw["wrong_passing_gate"] == 1  # the exporter's pod, restarted: the gate allows it
    assert raw["no_action_idle"] == raw["no_action"] - 1
    assert rep["borderline"]["n"] == 2 and rep["dedup"]["n"] <= raw["n"]
    assert rep["errors"][0]["alertname"] == "RedisDown"


def test_cli_runs_the_trm_on_a_rules_directory(rules_dir, tmp_path, capsys):
    corpus, labels = rules_dir
    out = rr.main([str(corpus), "--labels", str(labels), "--methods", "trm,rules", "--json", str(tmp_path / "r.json")])
    assert set(out["methods"]) == {"trm", "rules"}
    saved = json.loads((tmp_path / "r.json").read_text())
    assert saved["info"]["rules"] == 4 and saved["methods"]["rules"]["raw"]["wrong_raw"] == 0
    printed = capsys.readouterr().out
    assert "trm (dedup)" in printed and "past gate" in printed


def test_render_subset_of_the_template_language():
    labels = {"namespace": "a", "pod": "b"}
    assert synth.render("{{ $labels.namespace }}/{{ .Labels.pod }} {{ $value | humanize }}", labels, "7") == "a/b 7"
    assert synth.render('{{ printf "%.2f" $value }}%', labels, "3") == "3%"
    assert synth.render("{{ $labels }}", labels) == "map[namespace:a pod:b]"
    assert synth.render("{{ if $labels.cluster }}x{{ end }}", labels) == "x"  # actions other than values vanish
