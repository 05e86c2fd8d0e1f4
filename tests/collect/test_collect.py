"""The collector against a real Prometheus 2.42 + Alertmanager 0.25 (tests/e2e/harness.py) and an
audit log; the inferred labels are checked against the labels the real alerts carry."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agent_sre import catalog
from agent_sre.collect import collect
from agent_sre.collect.promql import infer_labels
from agent_sre.collect.sources import from_audit_log
from tests.e2e import harness

REPO = Path(__file__).resolve().parents[2]
WANT = {"FluxReconciliationFailure", "PodCrashLoopBackOff", "PersistentVolumeFillingUpCritical", "Watchdog"}


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    missing = harness.binaries_missing()
    assert not missing, f"{missing} missing: run .ci/install-system-deps.sh"
    work = tmp_path_factory.mktemp("collect")
    with harness.Exporter() as ex, harness.WebhookSink() as sink:
        ex.set_flux_ready("Kustomization", "sonarr", "media", ready=False)
        ex.set_flux_ready("Kustomization", "healthy", "apps", ready=True)
        ex.set_crashloop("shop", "cart-7d9f-abcde", "cart", crashing=True)
        ex.set_volume("db", "data-postgres-0", capacity=10e9, available=1e8)
        stack = harness.Stack(work, ex.url, sink.url + "/webhook",
                              harness.fast_rules(harness.load_rule_groups()))
        with stack:
            harness.wait_until(
                lambda: WANT <= {a["labels"]["alertname"] for a in stack.am_alerts()}, 40,
                what=f"Alertmanager holding {sorted(WANT)}")
            yield stack


def _by_source(records, source):
    return [r for r in records if r["meta"]["source"] == source]


def test_collect_rules_and_live_alerts(live):
    records = collect([REPO / "rules"], live.prometheus_url, live.alertmanager_url, None)
    rules = _by_source(records, "rule_file")
    assert {r["alert"]["labels"]["alertname"] for r in rules} >= WANT | {"PrometheusServiceDown"}
    # The same rules loaded in Prometheus are recognised as the same (test timings change only `for`).
    flux = next(r for r in rules if r["alert"]["labels"]["alertname"] == "FluxReconciliationFailure")
    assert "prometheus_rule" in flux["meta"]["seen_in"]
    assert flux["expect"] is None
    assert flux["meta"]["inferred_labels"] == sorted(
        {"alertname", "kind", "name", "exported_namespace", "namespace", "severity", "team"})
    assert "Kustomization" in flux["meta"]["label_values"]["kind"]
    crash = next(r for r in rules if r["alert"]["labels"]["alertname"] == "PodCrashLoopBackOff")
    assert crash["meta"]["metrics"] == ["kube_pod_container_status_waiting_reason"]

    alerts = _by_source(records, "alertmanager")
    names = {a["alert"]["labels"]["alertname"] for a in alerts}
    assert WANT <= names
    # Alerts seen in Prometheus and Alertmanager are one record.
    assert not {r["alert"]["labels"]["alertname"] for r in _by_source(records, "prometheus_alert")} & WANT
    flux_alert = next(a for a in alerts if a["alert"]["labels"]["alertname"] == "FluxReconciliationFailure")
    assert flux_alert["alert"]["labels"]["exported_namespace"] == "media"
    assert flux_alert["alert"]["labels"]["namespace"] == "flux-system"
    assert flux_alert["alert"]["fingerprint"] and flux_alert["meta"]["seen_in"] == ["alertmanager", "prometheus_alert"]
    # Only the failing Kustomization fires.
    assert [a["alert"]["labels"]["name"] for a in alerts
            if a["alert"]["labels"]["alertname"] == "FluxReconciliationFailure"] == ["sonarr"]


def test_inferred_labels_match_the_real_alerts(live):
    """What the expression parser says an alert carries is what Prometheus really produced."""
    rules = {r["alert"]["labels"]["alertname"]: r for r in _by_source(collect([REPO / "rules"]), "rule_file")}
    seen, exact = set(), set()
    for a in live.am_alerts():
        name = a["labels"]["alertname"]
        rule = rules[name]
        real = set(a["labels"])
        inferred = set(rule["meta"]["inferred_labels"])
        assert real <= inferred, (name, sorted(real - inferred))
        seen.add(name)
        inf = infer_labels(rule["meta"]["expr"])
        if not inf.open and any(w in rule["meta"]["expr"] for w in (" by (", " by(")):
            assert real == inferred, (name, sorted(inferred - real))
            exact.add(name)
    assert WANT <= seen
    assert {"FluxReconciliationFailure", "PodCrashLoopBackOff"} <= exact  # both aggregate with by (...)


def test_static_annotation_renders_to_valid_parameters(live):
    """The one static fast path, rendered by the real Prometheus, validates against the catalog."""
    pvc = next(a for a in live.am_alerts() if a["labels"]["alertname"] == "PersistentVolumeFillingUpCritical")
    fn = pvc["annotations"]["lambda_function"]
    params = json.loads(pvc["annotations"]["lambda_parameters"])
    assert params == {"name": "data-postgres-0", "namespace": "db"}
    assert catalog.validate_parameters(fn, params) == params


def test_audit_outcomes(tmp_path):
    log = tmp_path / "audit.jsonl"
    alert = {"labels": {"alertname": "PodCrashLoopBackOff", "namespace": "shop", "pod": "cart-1"},
             "annotations": {"summary": "x"}, "status": "firing"}
    lines = [
        {"seq": 1, "kind": "alert", "correlation_id": "c1", "alertname": "PodCrashLoopBackOff",
         "data": {"inbox_id": 1, "alert": alert}},
        {"seq": 2, "kind": "decision", "correlation_id": "c1",
         "data": {"decision": {"lambda_function": "pod-restart",
                               "parameters": {"name": "cart-1", "namespace": "shop", "type": "pod"}},
                  "verdict": {"allowed": True}}},
        {"seq": 3, "kind": "result", "correlation_id": "c1",
         "data": {"status": "success", "action": "pod-restart", "dry_run": True, "message": "would delete"}},
        "this line is torn {",
        {"seq": 4, "kind": "alert", "correlation_id": "c2", "data": {"alert": {**alert, "labels": {**alert["labels"], "pod": "cart-2"}}}},
        {"seq": 5, "kind": "event", "correlation_id": "c2",
         "data": {"lambda_function": "pod-restart", "parameters": {"name": "cart-2", "namespace": "shop"}}},
        {"seq": 6, "kind": "result", "correlation_id": "c2", "data": {"status": "error", "message": "forbidden"}},
        {"seq": 7, "kind": "result", "correlation_id": "orphan", "data": {"status": "success"}},
        {"seq": 8, "kind": "verdict", "correlation_id": "c1", "data": {"unexpected": ["shape"]}},
    ]
    log.write_text("\n".join(x if isinstance(x, str) else json.dumps(x) for x in lines) + "\n")
    recs = from_audit_log(log)
    assert len(recs) == 2  # the orphan result has no alert to learn from
    ok, bad = recs
    assert ok["expect"] == {"lambda_function": "pod-restart",
                            "parameters": {"name": "cart-1", "namespace": "shop", "type": "pod"}}
    assert ok["alert"]["labels"]["pod"] == "cart-1" and ok["meta"]["outcome"] == "success"
    assert bad["expect"] is None and bad["meta"]["outcome"] == "error" and bad["meta"]["function"] == "pod-restart"
    assert collect(None, None, None, log) == recs
