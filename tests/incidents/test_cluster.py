"""Confirming links with the Kubernetes API: KMock (tests/functions/kcluster.py) behind the
official client, through a real kubeconfig. The cluster confirms or refutes; it is never needed."""

from __future__ import annotations

import pytest

from agent_sre.alerts import Alert
from agent_sre.incidents.cluster import KubeFacts, load_api_client
from agent_sre.incidents.correlate import correlate
from agent_sre.incidents.evidence import Ref, facts

KS = "kustomize.toolkit.fluxcd.io/v1/kustomizations"
HR = "helm.toolkit.fluxcd.io/v2/helmreleases"



def _pod(name, node, owner=None):
    meta = {"name": name, "labels": {"app": "x"}}
    if owner:
        meta["ownerReferences"] = [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": owner,
                                    "uid": "u", "controller": True}]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": {"nodeName": node}}


def _f(labels, **ann):
    return facts(Alert(labels=labels, annotations=ann, startsAt="2026-11-20T08:00:00Z"))


def test_pod_node_and_owner_and_flux_references(cluster):
    cluster.add("v1/pods", "shop", _pod("cart-0", "worker-1", owner="cart-6d5f8b7c9"))
    cluster.add(KS, "flux-system", {"apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
                                    "metadata": {"name": "apps"},
                                    "spec": {"sourceRef": {"kind": "GitRepository", "name": "fleet"},
                                             "dependsOn": [{"name": "infra"}]}})
    cluster.add(HR, "db", {"apiVersion": "helm.toolkit.fluxcd.io/v2", "kind": "HelmRelease", "metadata": {"name": "pg"},
                           "spec": {"chart": {"spec": {"chart": "postgresql", "sourceRef": {
                               "kind": "HelmRepository", "name": "bitnami", "namespace": "flux-system"}}}}})
    kf = KubeFacts(load_api_client(cluster.kubeconfig))
    info = kf.pod("shop", "cart-0")
    assert info.node == "worker-1" and info.owner == Ref("replicaset", "shop", "cart-6d5f8b7c9")
    assert kf.flux_refs("Kustomization", "flux-system", "apps") == (
        Ref("GitRepository", "flux-system", "fleet"), Ref("Kustomization", "flux-system", "infra"))
    assert kf.flux_refs("HelmRelease", "db", "pg") == (Ref("HelmRepository", "flux-system", "bitnami"),)
    assert kf.pod("shop", "gone-0") is None  # not found: cannot tell
    n = len(cluster.requests("GET"))
    kf.pod("shop", "cart-0")
    assert len(cluster.requests("GET")) == n  # answered from the cache


def test_the_cluster_says_which_unlabelled_pods_run_on_the_down_node(cluster):
    cluster.add("v1/pods", "shop", _pod("cart-0", "worker-1"))
    cluster.add("v1/pods", "shop", _pod("web-0", "worker-2"))
    fs = [_f({"alertname": "KubeNodeNotReady", "node": "worker-1"}),
          _f({"alertname": "KubePodCrashLooping", "namespace": "shop", "pod": "cart-0"}),
          _f({"alertname": "KubePodCrashLooping", "namespace": "shop", "pod": "web-0"})]
    alone = correlate(fs)  # from the alerts alone, both started as the node went down
    assert [alone[f.fp].role for f in fs[1:]] == ["symptom", "symptom"]
    roles = correlate(fs, KubeFacts(load_api_client(cluster.kubeconfig)))
    assert roles[fs[1].fp].role == "symptom" and roles[fs[1].fp].confirmed
    assert roles[fs[2].fp].role == "alone"  # it runs on worker-2: restarted as usual


def test_a_kustomization_that_names_nothing_is_linked_by_its_sourceRef(cluster):
    cluster.add(KS, "flux-system", {"apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
                                    "metadata": {"name": "apps"},
                                    "spec": {"sourceRef": {"kind": "GitRepository", "name": "b"}}})
    fs = [_f({"alertname": "FluxReconciliationFailure", "kind": "GitRepository", "name": n,
              "exported_namespace": "flux-system"}) for n in ("a", "b")]
    fs.append(_f({"alertname": "FluxReconciliationFailure", "kind": "Kustomization", "name": "apps",
                  "exported_namespace": "flux-system"}))
    assert correlate(fs)[fs[2].fp].role == "alone"  # two failing sources: the alerts cannot tell
    roles = correlate(fs, KubeFacts(load_api_client(cluster.kubeconfig)))
    assert roles[fs[2].fp].root == fs[1].fp and roles[fs[2].fp].confirmed


def test_an_unreachable_api_changes_nothing(tmp_path):
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text("apiVersion: v1\nkind: Config\ncurrent-context: x\nclusters: [{name: x, cluster: "
                          "{server: 'http://127.0.0.1:9'}}]\nusers: [{name: u, user: {token: t}}]\n"
                          "contexts: [{name: x, context: {cluster: x, user: u}}]\n")
    kf = KubeFacts(load_api_client(str(kubeconfig)), timeout_s=0.5)
    fs = [_f({"alertname": "KubeNodeNotReady", "node": "worker-1"}),
          _f({"alertname": "KubePodCrashLooping", "namespace": "shop", "pod": "cart-0"})]
    assert correlate(fs, kf) == correlate(fs)
