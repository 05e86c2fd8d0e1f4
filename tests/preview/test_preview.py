"""`agent-sre preview` from rule files and PrometheusRule manifests, through the Python API."""

from __future__ import annotations

from agent_sre.chain.chain import Chain
from agent_sre.collect.rules import parse_rules
from agent_sre.preview import OUTCOMES, PreviewRow, preview_alerts, preview_rules, rules_from_paths, totals
from agent_sre.alerts import parse_payload

from .rulesets import MANIFEST, PLAIN, write_ruleset


def _by_name(rows: list[PreviewRow]) -> dict[str, list[PreviewRow]]:
    out: dict[str, list[PreviewRow]] = {}
    for r in rows:
        out.setdefault(r.alert.name, []).append(r)
    return out


def test_a_directory_of_rule_files_and_manifests(tmp_path):
    rules, problems = rules_from_paths([write_ruleset(tmp_path / "rules")])
    assert [r.alert for r in rules] == ["MyAppCrashing", "Watchdog", "FluxReconciliationFailure"]
    assert len(problems) == 1 and "broken.yaml" in problems[0] and "not YAML" in problems[0]

    rows = preview_rules(rules)
    by = _by_name(rows)
    # The rule's own annotations name the remediation; their templates are rendered per alert.
    [crash] = by["MyAppCrashing"]
    assert crash.decision.lambda_function == "pod-restart" and crash.stage == "annotations"
    assert crash.decision.parameters["namespace"] == "media"
    assert crash.decision.parameters["name"] == crash.alert.labels["pod"]
    assert crash.outcome == "remediate" and crash.verdict is not None and crash.verdict.allowed
    assert crash.verdict.mode == "suggest"
    assert crash.rule_group == "apps" and crash.source.endswith("apps.rules.yaml")
    # The heartbeat needs nothing and nobody is told.
    [dog] = by["Watchdog"]
    assert dog.outcome == "silent" and not dog.decision.action
    # One alert per kind the expression allows: the runbook reconciles a Kustomization in the
    # object's namespace (exported_namespace) and has no case for a HelmRepository.
    flux = {r.variant["kind"]: r for r in by["FluxReconciliationFailure"]}
    assert set(flux) == {"Kustomization", "HelmRepository"}
    k = flux["Kustomization"]
    assert k.decision.lambda_function == "flux-reconcile-kustomization"
    assert k.decision.parameters == {"name": k.alert.labels["name"], "namespace": k.alert.labels["exported_namespace"]}
    assert k.outcome == "remediate"
    # The runbook names the alert: no matching case is its answer (escalate), not a model's guess.
    repo = flux["HelmRepository"]
    assert repo.outcome == "escalate" and not repo.decision.action and repo.stage == "runbook"
    assert k.stage == "runbook"
    t = totals(rows)
    assert sum(t.values()) == len(rows) == 4 and set(t) == set(OUTCOMES)


def test_json_rows_carry_what_a_benchmark_scores():
    rows = preview_rules(parse_rules(PLAIN, "apps.yaml"))
    doc = rows[0].to_json()
    for key in ("alertname", "rule_group", "source", "lambda_function", "parameters", "method", "confidence",
                "gate", "outcome", "labels", "variant"):
        assert key in doc
    assert doc["gate"] == {"allowed": True, "code": "ok", "reason": "passed"}
    assert doc["method"] == "static_annotation" and doc["confidence"] == 1.0


def test_gate_refusals_are_reported_not_hidden():
    # The policy protects kube-system from mutating actions: the annotation asks, the gate refuses.
    text = PLAIN.replace('namespace="media"', 'namespace="kube-system"')
    [crash] = [r for r in preview_rules(parse_rules(text, "x.yaml")) if r.alert.name == "MyAppCrashing"]
    assert crash.decision.lambda_function == "pod-restart"
    assert crash.verdict is not None and not crash.verdict.allowed and crash.verdict.code == "namespace"
    assert crash.outcome == "escalate"


def test_low_confidence_and_abstention_are_uncertain():
    from agent_sre.decision import Method, validated

    class Shaky:
        name = "shaky"

        def __call__(self, alert):
            return validated("pod-restart", {"name": alert.labels["pod"], "namespace": alert.labels["namespace"]},
                             method=Method.LLM, confidence=0.5)

    class Mute:
        name = "mute"

        def __call__(self, alert):
            from agent_sre.decision import Abstain

            raise Abstain("not sure")

    [a] = parse_payload({"labels": {"alertname": "X", "pod": "p-1", "namespace": "media"}})
    [low] = preview_alerts([a], chain=Chain([Shaky()]))
    assert low.verdict is not None and low.verdict.code == "low_confidence" and low.outcome == "uncertain"
    [mute] = preview_alerts([a], chain=Chain([Mute()]))
    assert mute.outcome == "uncertain" and mute.decision.fallthrough == ["mute: not sure"]
    # Nothing was decided, so no confidence is claimed (the table prints "-")
    assert mute.to_json()["confidence"] is None and low.to_json()["confidence"] == 0.5


def test_manifest_list_and_multi_document_input_read_like_kustomize_output():
    doc = "apiVersion: v1\nkind: List\nitems:\n" + "".join(
        "  - " + line[0:] + "\n" if i == 0 else "    " + line + "\n"
        for i, line in enumerate(MANIFEST.split("---")[0].strip().splitlines()))
    rules = parse_rules(doc + "---\n" + PLAIN, "<stdin>")
    assert [r.alert for r in rules] == ["FluxReconciliationFailure", "MyAppCrashing", "Watchdog"]
