"""What one alert says about its place in an incident: the label shapes of Flux, kube-state-metrics
and the Flux Operator, node alerts that carry the exporter's pod, ReplicaSets from labels or names."""

from agent_sre.alerts import Alert
from agent_sre.incidents.evidence import Ref, facts


def _f(labels, **ann):
    return facts(Alert(labels=labels, annotations=ann, startsAt="2026-11-20T08:00:00Z"))


def test_node_alert_carrying_the_exporters_pod_is_about_the_node():
    f = _f({"alertname": "KubeNodeNotReady", "node": "worker-3", "condition": "Ready", "status": "true",
            "namespace": "monitoring", "pod": "kube-state-metrics-6d9f7c5b8-x2k4q"})
    assert f.subject == "node" and f.outage and f.ident == Ref("node", "", "worker-3")


def test_node_readiness_rule_named_after_the_condition_is_an_outage():
    assert _f({"alertname": "KubernetesNodeReady", "node": "n1", "condition": "Ready", "status": "true"}).outage
    assert _f({"alertname": "KubeNodeUnreachable", "node": "n1", "key": "node.kubernetes.io/unreachable"}).outage


def test_node_pressure_is_not_an_outage_and_pods_are_not_nodes():
    f = _f({"alertname": "NodeFilesystemSpaceFillingUp", "node": "n1", "mountpoint": "/"})
    assert f.subject == "node" and not f.outage
    p = _f({"alertname": "KubePodNotReady", "namespace": "shop", "pod": "web-0", "node": "n1"})
    assert p.subject == "pod" and p.node == "n1" and p.replicaset is None  # a StatefulSet pod


def test_replicaset_from_the_pod_name_or_the_hash_label():
    f = _f({"alertname": "KubePodCrashLooping", "namespace": "shop", "pod": "web-7d9f8c6b5-x2k4q"})
    assert f.replicaset == Ref("replicaset", "shop", "web-7d9f8c6b5") and f.deployment == "web"
    g = _f({"alertname": "KubePodCrashLooping", "namespace": "shop", "pod": "web-7d9f8c6b5-x2k4q",
            "label_pod_template_hash": "7d9f8c6b5"})
    assert g.replicaset == f.replicaset
    # a DaemonSet pod (one generated suffix) and a word with vowels are no ReplicaSet hash
    assert _f({"alertname": "KubePodCrashLooping", "namespace": "m", "pod": "node-exporter-x7k2p"}).replicaset is None
    assert _f({"alertname": "KubePodCrashLooping", "namespace": "m", "pod": "api-server-worker-x7k2p"}).replicaset is None


def test_flux_shapes_read_the_objects_namespace_not_the_exporters():
    gotk = _f({"alertname": "FluxReconciliationFailure", "kind": "Kustomization", "name": "apps",
               "exported_namespace": "team-a", "namespace": "flux-system"})
    assert gotk.subject == "flux" and gotk.flux_kind == "Kustomization" and gotk.ident == Ref("Kustomization", "team-a", "apps")
    ksm = _f({"alertname": "FluxReconciliationFailure", "customresource_kind": "HelmRelease",
              "customresource_group": "helm.toolkit.fluxcd.io", "name": "redis", "exported_namespace": "db",
              "namespace": "monitoring", "chart_source_name": "bitnami"})
    assert ksm.flux_kind == "HelmRelease" and ksm.upstream == (Ref("source", "", "bitnami"),)
    op = _f({"alertname": "FluxResourceNotReady", "kind": "Kustomization", "name": "apps",
             "exported_namespace": "flux-system", "source_name": "fleet", "reason": "ArtifactFailed"})
    assert op.upstream == (Ref("source", "", "fleet"),) and op.upstream_hint


def test_messages_name_sources_and_dependencies_or_say_only_not_ready():
    base = {"alertname": "FluxReconciliationFailure", "kind": "Kustomization", "name": "apps",
            "exported_namespace": "flux-system"}
    assert _f(base, message="Source 'GitRepository/flux-system/fleet' is not ready").upstream == \
        (Ref("GitRepository", "flux-system", "fleet"),)
    assert _f(base, message="dependency 'flux-system/infra' is not ready").upstream == \
        (Ref("flux", "flux-system", "infra"),)
    unnamed = _f(base, message="Source artifact not found, retrying in 30s")
    assert unnamed.upstream == () and unnamed.upstream_hint and not unnamed.own_cause
    own = _f(base, message="kustomize build failed: accumulating resources: missing Resource metadata")
    assert own.own_cause and not own.upstream_hint
    # "Dependencies do not meet ready condition" names no dependency
    assert _f(base, description="Dependencies do not meet ready condition, retrying in 30s").upstream == ()


def test_volumes_and_deployments():
    assert _f({"alertname": "KubePersistentVolumeFillingUp", "namespace": "db",
               "persistentvolumeclaim": "data-pg-0"}).subject == "volume"
    w = _f({"alertname": "KubeDeploymentRolloutStuck", "namespace": "shop", "deployment": "web"})
    assert w.subject == "workload" and w.ident == Ref("deployment", "shop", "web")
