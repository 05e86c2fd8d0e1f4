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
    restart = {"lambda_function": "pod-restart", "parameters": {"name": "cart-1", "namespace": "shop", "type": "pod"}}

    def occurrence(corr, pod, *later):
        a = {**alert, "labels": {**alert["labels"], "pod": pod}}
        d = {**restart, "parameters": {**restart["parameters"], "name": pod}}
        return [{"kind": "alert", "correlation_id": corr, "alertname": "PodCrashLoopBackOff",
                 "data": {"inbox_id": 1, "alert": a}},
                {"kind": "decision", "correlation_id": corr, "data": {"decision": d, "verdict": {"allowed": True}}},
                *[{**x, "correlation_id": corr} for x in later]]

    lines = [
        # A dry run "succeeds" but changed nothing: never a label.
        *occurrence("c1", "cart-1", {"kind": "result", "data": {"status": "success", "dry_run": True,
                                                                 "message": "would delete"}}),
        "this line is torn {",
        # Executed, and the alert resolved: the decision was right.
        *occurrence("c2", "cart-2", {"kind": "result", "data": {"status": "success", "dry_run": False}},
                    {"kind": "outcome", "data": {"outcome": "verified", "reason": "resolved 40s after"}}),
        # Executed, still firing after the window: wrong; a person should decide.
        *occurrence("c3", "cart-3", {"kind": "result", "data": {"status": "success", "dry_run": False}},
                    {"kind": "outcome", "data": {"outcome": "ineffective", "reason": "still firing"}}),
        # A person rejected it: wrong.
        *occurrence("c4", "cart-4", {"kind": "outcome", "data": {"outcome": "rejected", "reason": "holds a lock"}}),
        # The function failed (RBAC): says nothing about the decision.
        *occurrence("c5", "cart-5", {"kind": "result", "data": {"status": "error", "message": "forbidden"}},
                    {"kind": "outcome", "data": {"outcome": "failed"}}),
        {"seq": 7, "kind": "result", "correlation_id": "orphan", "data": {"status": "success"}},
        {"seq": 8, "kind": "verdict", "correlation_id": "c1", "data": {"unexpected": ["shape"]}},
    ]
    log.write_text("\n".join(x if isinstance(x, str) else json.dumps(x) for x in lines) + "\n")
    recs = from_audit_log(log)
    assert [r["alert"]["labels"]["pod"] for r in recs] == ["cart-1", "cart-2", "cart-3", "cart-4", "cart-5"]
    dry, good, ineffective, rejected, failed = recs
    assert dry["expect"] is None and dry["meta"]["dry_run"] is True and dry["meta"]["label"] is None
    assert good["expect"] == {"lambda_function": "pod-restart",
                              "parameters": {"name": "cart-2", "namespace": "shop", "type": "pod"}}
    assert good["meta"]["label"] == "positive" and good["meta"]["outcome"] == "verified"
    for neg in (ineffective, rejected):
        assert neg["expect"]["lambda_function"] is None and neg["meta"]["label"] == "negative"
        assert neg["meta"]["rejected"]["lambda_function"] == "pod-restart"
    assert failed["expect"] is None and failed["meta"]["outcome"] == "failed" and failed["meta"]["function"] == "pod-restart"
    assert collect(None, None, None, log) == recs
