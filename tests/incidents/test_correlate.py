"""The deterministic correlator on each storm kind and on the cases that must stay unrelated."""

import pytest

from agent_sre.alerts import Alert
from agent_sre.incidents import scenarios as S
from agent_sre.incidents.correlate import correlate
from agent_sre.incidents.evidence import facts


def _roles(docs):
    fs = [facts(Alert.model_validate(d)) for d in docs]
    return correlate(fs), {f.fp: f for f in fs}


def _alert(labels, starts="2026-11-20T08:00:00Z", **ann):
    return {"labels": labels, "annotations": ann, "startsAt": starts}


@pytest.mark.parametrize("kind", S.KINDS)
@pytest.mark.parametrize("seed", range(6))
def test_whole_storm_roles_match_the_truth(kind, seed):
    scn = S.generate(kind, seed)
    roles, _ = _roles([a.alert_doc() for a in scn.alerts])
    for a in scn.alerts:
        r = roles[a.fingerprint]
        if a.truth == "unrelated":
            assert r.role == "alone", (scn.name, a.labels, r)
        elif a.truth == "symptom":
            root = a.cause
            while root is not None and root.cause is not None:
                root = root.cause
            assert r.role == "symptom", (scn.name, a.labels, r)
            if root is not None:
                assert r.root == root.fingerprint, (scn.name, a.labels, r)
        else:  # root or lead
            assert r.role in ("root", "lead"), (scn.name, a.labels, r)
    incidents = {r.incident for r in roles.values() if r.role != "alone"}
    assert len(incidents) == (0 if kind in ("control", "volumes") else 1)


def test_unrelated_crash_loops_and_a_failing_kustomization_stay_alone():
    roles, _ = _roles([
        _alert({"alertname": "KubePodCrashLooping", "namespace": "shop", "pod": "web-7d9f8c6b5-x2k4q", "node": "n1"}),
        _alert({"alertname": "KubePodCrashLooping", "namespace": "shop", "pod": "api-5f6d7b8c9d-bbbbb", "node": "n1"}),
        _alert({"alertname": "KubePodCrashLooping", "namespace": "db", "pod": "pg-0"}),
        _alert({"alertname": "FluxReconciliationFailure", "kind": "Kustomization", "name": "apps",
                "exported_namespace": "flux-system"}, message="kustomize build failed: missing Resource metadata"),
    ])
    assert {r.role for r in roles.values()} == {"alone"}


def test_a_kustomization_naming_nothing_with_two_failing_sources_is_left_alone():
    roles, by = _roles([
        _alert({"alertname": "FluxReconciliationFailure", "kind": "GitRepository", "name": "a", "exported_namespace": "flux-system"}),
        _alert({"alertname": "FluxReconciliationFailure", "kind": "GitRepository", "name": "b", "exported_namespace": "flux-system"}),
        _alert({"alertname": "FluxReconciliationFailure", "kind": "Kustomization", "name": "apps", "exported_namespace": "flux-system"}),
    ])
    ks = next(fp for fp, f in by.items() if f.flux_kind == "Kustomization")
    assert roles[ks].role == "alone"


def test_a_named_source_that_is_not_failing_refutes_the_link():
    roles, by = _roles([
        _alert({"alertname": "FluxResourceNotReady", "kind": "GitRepository", "name": "fleet", "exported_namespace": "flux-system"}),
        _alert({"alertname": "FluxResourceNotReady", "kind": "Kustomization", "name": "apps", "exported_namespace": "flux-system",
                "source_name": "other-repo"}),
    ])
    assert {r.role for r in roles.values()} == {"alone"}


def test_dependency_chain_resolves_to_the_source():
    roles, by = _roles([
        _alert({"alertname": "FluxReconciliationFailure", "kind": "GitRepository", "name": "fleet", "exported_namespace": "flux-system"}),
        _alert({"alertname": "FluxReconciliationFailure", "kind": "Kustomization", "name": "infra", "exported_namespace": "flux-system"},
               message="Source 'GitRepository/flux-system/fleet' is not ready"),
        _alert({"alertname": "FluxReconciliationFailure", "kind": "Kustomization", "name": "apps", "exported_namespace": "team-a"},
               message="dependency 'flux-system/infra' is not ready"),
    ])
    git = next(fp for fp, f in by.items() if f.flux_kind == "GitRepository")
    apps = next(fp for fp, f in by.items() if f.ident and f.ident.name == "apps")
    assert roles[apps].role == "symptom" and roles[apps].root == git
    assert roles[git].role == "root"


def test_pod_without_node_label_crash_looping_before_the_node_went_down_is_not_its_symptom():
    roles, by = _roles([
        _alert({"alertname": "KubeNodeNotReady", "node": "n2"}, starts="2026-11-20T08:30:00Z"),
        _alert({"alertname": "KubePodCrashLooping", "namespace": "a", "pod": "old-0"}, starts="2026-11-20T07:40:00Z"),
        _alert({"alertname": "KubePodCrashLooping", "namespace": "a", "pod": "new-0"}, starts="2026-11-20T08:31:00Z"),
        _alert({"alertname": "KubePodCrashLooping", "namespace": "a", "pod": "other-0", "node": "n3"}, starts="2026-11-20T08:31:00Z"),
    ])
    name = {f.ident.name if f.ident else "": fp for fp, f in by.items()}
    assert roles[name["old-0"]].role == "alone"
    assert roles[name["other-0"]].role == "alone"  # labelled with a healthy node
    assert roles[name["new-0"]].role == "symptom" and roles[name["new-0"]].root == name["n2"]


def test_one_crash_looping_pod_alone_and_one_with_its_deployment_alert():
    roles, by = _roles([_alert({"alertname": "KubePodCrashLooping", "namespace": "a", "pod": "web-7d9f8c6b5-x2k4q"})])
    assert [r.role for r in roles.values()] == ["alone"]
    roles, by = _roles([
        _alert({"alertname": "KubePodCrashLooping", "namespace": "a", "pod": "web-7d9f8c6b5-x2k4q"}),
        _alert({"alertname": "KubeDeploymentRolloutStuck", "namespace": "a", "deployment": "web"}),
    ])
    pod = next(fp for fp, f in by.items() if f.subject == "pod")
    dep = next(fp for fp, f in by.items() if f.subject == "workload")
    assert roles[pod].root == dep and roles[dep].role == "root"


def test_two_rules_about_one_node_are_one_incident():
    roles, by = _roles([
        _alert({"alertname": "KubeNodeNotReady", "node": "n2"}),
        _alert({"alertname": "KubeNodeUnreachable", "node": "n2"}, starts="2026-11-20T08:01:00Z"),
        _alert({"alertname": "KubePodCrashLooping", "namespace": "a", "pod": "x-0", "node": "n2"}),
    ])
    assert sorted(r.role for r in roles.values()) == ["root", "symptom", "symptom"]
    assert len({r.incident for r in roles.values()}) == 1


def test_a_helmrelease_naming_only_its_helmchart_is_linked_to_the_failing_repository():
    roles, by = _roles([
        _alert({"alertname": "FluxReconciliationFailure", "kind": "HelmRepository", "name": "bitnami",
                "exported_namespace": "flux-system"}),
        _alert({"alertname": "FluxReconciliationFailure", "kind": "HelmRelease", "name": "redis",
                "exported_namespace": "db"}, message="HelmChart 'flux-system/db-redis' is not ready"),
    ])
    hr = next(fp for fp, f in by.items() if f.flux_kind == "HelmRelease")
    assert roles[hr].role == "symptom"


def test_statefulset_pods_of_one_revision_failing_together_are_a_rollout():
    roles, _ = _roles([
        _alert({"alertname": "KubePodCrashLooping", "namespace": "db", "pod": f"pg-{i}",
                "label_controller_revision_hash": "pg-5c7d9f8b6"}) for i in range(3)])
    assert sorted(r.role for r in roles.values()) == ["lead", "symptom", "symptom"]
