"""Label inference from PromQL, checked against the engine's label semantics."""

from __future__ import annotations

import pytest

from agent_sre.collect.promql import PromQLError, infer_labels
from agent_sre.collect.rules import RuleFileError, parse_rules


@pytest.mark.parametrize("expr, labels, open_", [
    # aggregation keeps exactly its by() labels
    ('max by (kind, name, exported_namespace) (gotk_reconcile_condition{type="Ready",status="False"}) == 1',
     ["exported_namespace", "kind", "name"], False),
    # by() after the argument list
    ("sum(rate(http_requests_total[5m])) by (job, code) > 1", ["code", "job"], False),
    # without() drops from a known metric's labels
    ("sum without (uid, instance, job) (kube_pod_container_status_restarts_total) > 3",
     ["container", "namespace", "pod"], False),
    # no grouping: no labels
    ("sum(rate(x_total[5m])) / sum(rate(y_total[5m])) > 0.1", [], False),
    # one-to-one without modifiers keeps the left side; `and on` keeps the left side too
    ("kubelet_volume_stats_available_bytes / kubelet_volume_stats_capacity_bytes < 0.03 "
     "and on (namespace, persistentvolumeclaim) kubelet_volume_stats_used_bytes > 0",
     ["instance", "job", "namespace", "node", "persistentvolumeclaim"], False),
    # one-to-one with on(): only the on() labels survive (even for comparisons)
    ("kube_deployment_spec_replicas > on (namespace, deployment) kube_deployment_status_replicas_available",
     ["deployment", "namespace"], False),
    # group_left adds labels from the one side
    ("kube_pod_container_status_waiting_reason * on (namespace, pod) group_left (node) kube_pod_info",
     ["container", "instance", "job", "namespace", "node", "pod", "reason", "uid"], False),
    # ignoring() drops
    ("kube_pod_status_ready / ignoring (condition) kube_pod_status_ready",
     ["instance", "job", "namespace", "pod", "uid"], False),
    # label_replace adds its destination, histogram_quantile drops le
    ('label_replace(up{job="kubelet"}, "node", "$1", "instance", "(.*):.*") == 0',
     ["endpoint", "instance", "job", "namespace", "node", "pod", "service"], False),
    ("histogram_quantile(0.99, sum by (le, verb) (rate(apiserver_request_duration_seconds_bucket[5m]))) > 1",
     ["verb"], False),
    # absent keeps equality matchers only
    ('absent(up{job="kubelet", instance=~".+"})', ["job"], False),
    ("vector(1)", [], False),
    # unknown metric: matcher labels known, the rest open
    ('rate(foo_total{a="b"}[5m] offset 1h) > 3', ["a"], True),
])
def test_infer_labels(expr, labels, open_):
    r = infer_labels(expr)
    assert r.labels == labels
    assert r.open is open_


def test_values_from_matchers():
    r = infer_labels('max by (kind, name, reason) (x{kind=~"HelmRelease|Kustomization", reason="Failed", name=~".*"})')
    assert r.values() == {"kind": ["HelmRelease", "Kustomization"], "reason": ["Failed"]}
    assert r.metrics == ["x"]


def test_parse_errors_are_reported():
    with pytest.raises(PromQLError):
        infer_labels("sum by (a (x)")
    with pytest.raises(PromQLError):
        infer_labels("up{job=\"a\"} $ 3")


def test_parse_rules_plain_and_prometheusrule():
    text = """
groups:
  - name: g
    rules:
      - record: job:up:sum
        expr: sum by (job) (up)
      - alert: A
        expr: up == 0
        for: 5m
        labels: {severity: critical}
---
apiVersion: monitoring.coreos.com/v1
kind: PrometheusRule
metadata: {name: x}
spec:
  groups:
    - name: h
      rules:
        - alert: B
          expr: vector(1)
          annotations: {summary: hi}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: unrelated}
data: {groups: "not rules"}
"""
    rules = parse_rules(text, "t.yaml")
    assert [(r.alert, r.group, r.for_) for r in rules] == [("A", "g", "5m"), ("B", "h", None)]
    assert rules[0].labels == {"severity": "critical"}
    assert rules[1].annotations == {"summary": "hi"}
    with pytest.raises(RuleFileError):
        parse_rules("groups: {a: 1}", "bad.yaml")
    with pytest.raises(RuleFileError):
        parse_rules("groups:\n - name: g\n   rules:\n    - alert: X\n", "bad.yaml")
