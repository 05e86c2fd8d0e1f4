import os

import pytest

from agent_sre.alerts import parse_payload
from agent_sre.chain.annotations import AnnotationStage
from agent_sre.chain.base import Abstain
from agent_sre.chain.chain import Chain
from agent_sre.chain.rules import RuleStage
from agent_sre.decision import Method, validated
from agent_sre import runbook


def alert(alertname, status="firing", annotations=None, **labels):
    return parse_payload({"status": status, "labels": {"alertname": alertname, **labels},
                          "annotations": annotations or {}})[0]


RULES = Chain([AnnotationStage(), RuleStage()])


@pytest.mark.parametrize("a,fn,params", [
    (alert("FluxReconciliationFailure", kind="Kustomization", name="apps", exported_namespace="home",
           namespace="flux-system"), "flux-reconcile-kustomization", {"name": "apps", "namespace": "home"}),
    (alert("FluxReconciliationFailure", kind="GitRepository", name="infra", exported_namespace="flux-system",
           namespace="flux-system"), "flux-reconcile-gitrepository", {"name": "infra", "namespace": "flux-system"}),
    (alert("FluxReconciliationFailure", kind="HelmRelease", name="grafana", exported_namespace="monitoring",
           namespace="flux-system"), "flux-reconcile-helmrelease", {"name": "grafana", "namespace": "monitoring"}),
    (alert("FluxGitRepositoryOutOfSync", kind="GitRepository", name="infra", namespace="flux-system"),
     "flux-reconcile-gitrepository", {"name": "infra", "namespace": "flux-system"}),
    (alert("FluxHelmReleaseFailing", kind="HelmRelease", name="loki", exported_namespace="logging",
           namespace="flux-system"), "flux-reconcile-helmrelease", {"name": "loki", "namespace": "logging"}),
    (alert("PodCrashLoopBackOff", namespace="media", pod="jellyfin-5c8-abcde", container="jellyfin"),
     "pod-restart", {"name": "jellyfin-5c8-abcde", "namespace": "media", "type": "pod"}),
    (alert("PrometheusServiceDown", namespace="monitoring", job="prometheus"),
     "pod-check-status", {"namespace": "monitoring"}),
    (alert("PersistentVolumeFillingUpCritical", namespace="home", persistentvolumeclaim="data-pg-0"),
     "check-pvc-status", {"name": "data-pg-0", "namespace": "home"}),
])
def test_seed_runbook_with_real_label_semantics(a, fn, params):
    d = RULES.decide(a)
    assert d.method is Method.RULES
    assert d.lambda_function == fn
    assert d.parameters == params


def test_prometheus_down_is_a_two_step_plan():
    d = RULES.decide(alert("PrometheusServiceDown", namespace="monitoring"))
    assert [s.lambda_function for s in d.plan] == ["pod-check-status", "pod-restart"]
    assert d.plan[1].when == "unhealthy"
    assert d.plan[1].from_previous == ["name", "namespace"]


def test_unreconcilable_flux_kind_gets_no_action_from_the_runbook_itself():
    d = RULES.decide(alert("FluxReconciliationFailure", kind="Bucket", name="b", namespace="flux-system"))
    assert d.lambda_function is None and d.method is Method.RULES
    assert "no case matches" in d.reasoning and "escalate" in d.reasoning


def test_missing_label_gives_no_action_not_a_guess():
    d = RULES.decide(alert("PodCrashLoopBackOff", namespace="media"))
    assert d.lambda_function is None and d.method is Method.RULES
    assert "lacks labels for name" in d.reasoning


@pytest.mark.parametrize("suspended", ["true", "True"])
def test_suspended_flux_object_is_not_reconciled(suspended):
    d = RULES.decide(alert("FluxReconciliationFailure", kind="HelmRelease", name="grafana",
                           exported_namespace="monitoring", suspended=suspended))
    assert d.lambda_function is None and d.method is Method.RULES and "no case matches" in d.reasoning
    d = RULES.decide(alert("FluxReconciliationFailure", kind="HelmRelease", name="grafana",
                           exported_namespace="monitoring", suspended="false"))
    assert d.lambda_function == "flux-reconcile-helmrelease"


def test_resolved_alert_never_gets_a_remediation_even_with_annotation():
    a = alert("PodCrashLoopBackOff", status="resolved", namespace="m", pod="p-1",
              annotations={"lambda_function": "pod-restart", "lambda_parameters": '{"name": "p-1", "namespace": "m"}'})
    d = RULES.decide(a)
    assert d.lambda_function is None and "resolved" in d.reasoning


def test_static_annotation_wins_and_is_validated():
    a = alert("Anything", namespace="web",
              annotations={"lambda_function": "pod-restart",
                           "lambda_parameters": '{"name": "homepage", "namespace": "web", "type": "deployment"}'})
    d = RULES.decide(a)
    assert d.method is Method.STATIC and d.parameters["type"] == "deployment"
    bad = alert("Anything", annotations={"lambda_function": "rm-rf", "lambda_parameters": "{}"})
    d = RULES.decide(bad)
    assert d.lambda_function is None
    assert any("annotations: rejected proposal" in r for r in d.fallthrough)
    templ = alert("Anything", annotations={"lambda_function": "pod-restart",
                                           "lambda_parameters": '{"name": "{{ $labels.pod }}", "namespace": "x"}'})
    with pytest.raises(Abstain):
        AnnotationStage()(templ)


class Exploding:
    name = "boom"

    def __call__(self, a):
        raise RuntimeError("kaboom")


class Proposes:
    name = "liar"

    def __call__(self, a):
        return validated("pod-restart", {"name": "x", "namespace": "y"}, method=Method.TRM, confidence=0.99)


def test_failing_stage_falls_through_and_is_reported():
    d = Chain([Exploding(), RuleStage()]).decide(alert("PodCrashLoopBackOff", namespace="a", pod="p-1"))
    assert d.method is Method.RULES
    assert d.fallthrough == ["boom: failed (RuntimeError: kaboom)"]


def test_first_deciding_stage_wins_and_batching_keeps_order():
    alerts = [alert("PodCrashLoopBackOff", namespace="a", pod=f"p-{i}") for i in range(5)]
    alerts.insert(2, alert("PodCrashLoopBackOff", status="resolved", namespace="a", pod="z"))
    ds = Chain([Proposes(), RuleStage()]).decide_many(alerts)
    assert [d.method for d in ds] == [Method.TRM] * 2 + [Method.NONE] + [Method.TRM] * 3


def test_runbook_rejects_unknown_function_or_parameter():
    with pytest.raises(ValueError, match="unknown remediation"):
        runbook.parse("alerts:\n- alert: X\n  when:\n  - plan: [{function: nuke}]\n")
    with pytest.raises(ValueError, match="has no parameter"):
        runbook.parse("alerts:\n- alert: X\n  when:\n  - plan: [{function: pod-restart, parameters: {force: [a]}}]\n")


def test_runbook_key_written_twice_is_an_error_and_merge_keys_still_work():
    with pytest.raises(ValueError, match="key 'plan' appears twice"):
        runbook.parse("alerts:\n- alert: X\n  when:\n  - plan: []\n    plan: [{function: pod-restart}]\n")
    book = runbook.parse(
        "base: &p {name: [pod], namespace: [namespace]}\n"
        "alerts:\n- alert: X\n  when:\n  - plan:\n    - function: pod-check-status\n"
        "      parameters:\n        <<: *p\n        name: [exported_pod]\n")
    d = Chain([RuleStage(book)]).decide(alert("X", namespace="a", exported_pod="p-0", pod="other"))
    assert (d.lambda_function, d.parameters) == ("pod-check-status", {"name": "p-0", "namespace": "a"})


def test_a_runbook_edited_into_an_invalid_file_keeps_the_last_good_one(tmp_path, caplog):
    path = tmp_path / "runbook.yaml"
    path.write_text("alerts:\n- alert: X\n  when:\n  - plan: []\n")
    stage = RuleStage(path=path)
    assert stage(alert("X")).plan == []
    path.write_text("alerts:\n- alert: X\n  when:\n  - plan: []\n- alert: X2\n  alert: Y\n  when: []\n")
    os.utime(path, (1, 1))  # a new modification time, so the cached parse is not reused
    assert stage(alert("X")).plan == [] and "key 'alert' appears twice" in caplog.text


def test_flux_object_of_a_kind_we_cannot_reconcile_is_not_sent_to_the_kustomization_function():
    d = RULES.decide(alert("FluxReconciliationFailure", customresource_kind="Bucket", customresource_name="b",
                           namespace="flux-system"))
    assert d.lambda_function is None
    d = RULES.decide(alert("FluxReconciliationFailure", customresource_kind="Kustomization",
                           customresource_name="apps", customresource_namespace="home", namespace="monitoring"))
    assert (d.lambda_function, d.parameters) == ("flux-reconcile-kustomization", {"name": "apps", "namespace": "home"})
