"""Alerts synthesised from rules: labels the expression leaves, matcher values, dispatch variants,
rendered annotations."""

from __future__ import annotations

import re

from agent_sre.collect.promql import infer_labels
from agent_sre.collect.rules import parse_rules
from agent_sre.collect.synth import synthesize


def rule(expr: str, labels: dict | None = None, annotations: dict | None = None, alert: str = "A"):
    doc = {"groups": [{"name": "g", "rules": [{"alert": alert, "expr": expr, "labels": labels or {},
                                               "annotations": annotations or {}}]}]}
    import yaml

    [r] = parse_rules(yaml.safe_dump(doc), "test.yaml")
    return r


def test_crashloop_over_kube_state_metrics_carries_the_objects_labels_and_the_targets():
    r = rule('max_over_time(kube_pod_container_status_waiting_reason{reason="CrashLoopBackOff", job="kube-state-metrics"}[5m]) >= 1',
             labels={"severity": "warning"},
             annotations={"description": "Pod {{ $labels.namespace }}/{{ $labels.pod }} ({{ $labels.container }}) "
                                         "is waiting ({{ $labels.reason }}) {{ printf \"%.0f\" $value }} time(s)"})
    [s] = synthesize(r)
    a = s.alert
    assert a.status == "firing" and a.name == "A" and a.labels["severity"] == "warning"
    # kube-state-metrics honours labels: namespace/pod/container are the object's, job/instance KSM's.
    assert a.labels["reason"] == "CrashLoopBackOff" and a.labels["job"] == "kube-state-metrics"
    assert {"namespace", "pod", "container", "uid", "instance", "service", "endpoint"} <= set(a.labels)
    assert a.labels["namespace"] not in ("monitoring", "kube-system")
    assert a.annotations["description"] == (f"Pod {a.labels['namespace']}/{a.labels['pod']} ({a.labels['container']}) "
                                            "is waiting (CrashLoopBackOff) 2 time(s)")
    assert list(a.labels) == sorted(a.labels)  # as Alertmanager delivers them
    assert s.notes == ()


def test_aggregation_keeps_only_its_by_labels():
    [s] = synthesize(rule("sum by (namespace, persistentvolumeclaim) (kubelet_volume_stats_used_bytes) > 0"))
    assert set(s.alert.labels) == {"alertname", "namespace", "persistentvolumeclaim"}


def test_node_exporter_alert_carries_the_exporter_pod_not_an_application_pod():
    [s] = synthesize(rule('node_systemd_unit_state{state="failed"} == 1'))
    labels = s.alert.labels
    assert labels["name"].endswith(".service") and labels["state"] == "failed"
    assert labels["job"] == "node-exporter" and "node-exporter" in labels["pod"] and labels["namespace"] == "monitoring"


def test_negative_and_regex_matchers_are_respected():
    [s] = synthesize(rule('kube_pod_container_status_waiting_reason{reason!~"ContainerCreating|CrashLoopBackOff"} == 1'))
    assert s.alert.labels["reason"] not in ("ContainerCreating", "CrashLoopBackOff")
    [s] = synthesize(rule('kube_pod_status_phase{phase=~"Pending|Unknown"} > 0'))
    assert s.alert.labels["phase"] in ("Pending", "Unknown")
    [s] = synthesize(rule('up{job=~"node.*"} == 0'))
    assert re.fullmatch("node.*", s.alert.labels["job"])


def test_dispatch_label_gives_one_alert_per_allowed_kind():
    r = rule('gotk_resource_info{ready="False", customresource_kind=~"GitRepository|HelmRepository|Bucket"} > 0')
    alerts = synthesize(r)
    assert [s.variant for s in alerts] == [{"customresource_kind": k} for k in ("GitRepository", "HelmRepository", "Bucket")]
    for s in alerts:
        assert s.alert.labels["customresource_kind"] == s.variant["customresource_kind"]
        # KSM custom-resource-state: the object's namespace in exported_namespace, KSM's own in namespace.
        assert s.alert.labels["exported_namespace"] != s.alert.labels["namespace"]
        assert s.alert.labels["ready"] == "False"
    [one] = synthesize(rule('gotk_resource_info{ready="False", customresource_kind="HelmRelease"} > 0'))
    assert one.variant == {"customresource_kind": "HelmRelease"}
    assert one.alert.labels["customresource_group"] == "helm.toolkit.fluxcd.io"


def test_flux_rule_without_a_kind_matcher_fires_for_each_flux_kind():
    alerts = synthesize(rule('max by (namespace, name, kind) (gotk_reconcile_condition{type="Ready",status="False"}) == 1'))
    kinds = [s.alert.labels["kind"] for s in alerts]
    assert {"Kustomization", "HelmRelease", "GitRepository"} <= set(kinds) and len(kinds) == len(set(kinds))
    assert all(set(s.alert.labels) == {"alertname", "kind", "name", "namespace"} for s in alerts)


def test_a_metric_that_fixes_its_kind_is_not_varied():
    [s] = synthesize(rule('flux_instance_info{ready!="True"}'))
    assert s.alert.labels["kind"] == "FluxInstance" and s.alert.labels["ready"] != "True"


def test_label_replace_copies_the_value_it_would_copy():
    [s] = synthesize(rule('label_replace(flux_resource_info{kind="HelmRelease", ready="False"}, '
                          '"namespace", "$1", "exported_namespace", "(.*)")'))
    assert s.alert.labels["namespace"] == s.alert.labels["exported_namespace"]


def test_absent_keeps_equality_labels_only_and_value_follows_the_threshold():
    [s] = synthesize(rule('absent(up{job="cert-manager"})', annotations={"summary": "{{ $labels.job }} gone"}))
    assert s.alert.labels == {"alertname": "A", "job": "cert-manager"}
    assert s.alert.annotations["summary"] == "cert-manager gone"
    [s] = synthesize(rule("100 * (node_filesystem_avail_bytes / node_filesystem_size_bytes) < 10",
                          annotations={"d": "{{ $value | humanize }}% left on {{ $labels.mountpoint }}"}))
    assert s.alert.annotations["d"] == "5% left on /"


def test_rule_labels_override_and_are_rendered_and_external_labels_fill_in():
    [s] = synthesize(rule('up{job="x"} == 0', labels={"severity": "critical", "team": "{{ $labels.job }}-owners"}),
                     external_labels={"prometheus": "monitoring/k8s", "severity": "ignored"})
    assert s.alert.labels["team"] == "x-owners" and s.alert.labels["severity"] == "critical"
    assert s.alert.labels["prometheus"] == "monitoring/k8s"


def test_an_annotation_that_needs_prometheus_is_left_out_and_noted():
    [s] = synthesize(rule("up == 0", annotations={"summary": "down", "description": '{{ with query "up" }}{{ end }}'}))
    assert s.alert.annotations == {"summary": "down"}
    assert any("annotation description left out" in n for n in s.notes)


def test_an_expression_the_parser_cannot_read_still_gives_the_rules_alert():
    [s] = synthesize(rule("sum by (a (x)", labels={"severity": "info"}))
    assert s.alert.labels == {"alertname": "A", "severity": "info"}
    assert "expression not understood" in s.notes[0]


def test_scrape_labels_are_opt_in_for_infer_labels():
    assert infer_labels('rate(foo_total{a="b"}[5m]) > 3').labels == ["a"]
    scraped = infer_labels('rate(foo_total{a="b"}[5m]) > 3', scrape=True).labels
    assert {"a", "job", "instance", "namespace", "pod"} <= set(scraped)
    assert infer_labels("sum by (job) (foo_total) > 3", scrape=True).labels == ["job"]
