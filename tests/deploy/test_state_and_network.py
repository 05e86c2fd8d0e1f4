"""deploy/: state that outlives the pod, secrets that fail closed, cluster-local services, and the
NetworkPolicies. Rendered with the real `kubectl kustomize` like the other deploy tests; the objects
themselves are schema-checked there (test_deploy_manifests)."""

from __future__ import annotations

import json
import posixpath
from pathlib import Path
from typing import Any

import pytest

from agent_sre import catalog
from agent_sre.settings import FunctionSettings, StateSettings, load
from tests.deploy.test_deploy_manifests import (DEPLOY, KNATIVE_FEATURES, REPO, TOP, by_kind, container, ksvcs,
                                                render)


def _env(svc) -> dict[str, str]:
    return {e["name"]: e["value"] for e in container(svc).get("env", []) if "value" in e}


def _volume_at(svc, path: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The mount holding ``path`` (longest mount path that contains it) and its volume."""
    mounts = container(svc).get("volumeMounts", [])
    best = None
    for m in mounts:
        mp = m["mountPath"].rstrip("/")
        if path == mp or path.startswith(mp + "/"):
            if best is None or len(mp) > len(best["mountPath"].rstrip("/")):
                best = m
    assert best is not None, f"{path} is on no volume (the root filesystem is read-only)"
    vols = {v["name"]: v for v in svc["spec"]["template"]["spec"]["volumes"]}
    return best, vols[best["name"]]


def state_paths(svc) -> list[str]:
    """Every state path the process would use, resolved by the settings reader from the manifest's env."""
    env = _env(svc)
    if container(svc)["args"] == ["serve"]:
        st = load(StateSettings, env)
        assert env.get("STATE_DIR"), "the agent's STATE_DIR must be set"
        return [str(st.state_dir), str(st.state_path), str(st.outbox_path), str(st.audit_path)]
    fs = load(FunctionSettings, env)
    assert fs.state_dir is not None, "a function without STATE_DIR remembers trigger ids in memory only"
    return [str(fs.state_dir)]


@pytest.mark.parametrize("top", TOP, ids=lambda p: p.name)
def test_no_state_outbox_or_audit_path_sits_on_an_emptydir(top):
    objs = render(top)
    claims = {o["metadata"]["name"] for o in by_kind(objs, "PersistentVolumeClaim")}
    svcs = ksvcs(objs)
    checked = 0
    for name in ["agent-sre", *catalog.function_names()]:
        svc = svcs[name]
        for path in state_paths(svc):
            mount, vol = _volume_at(svc, posixpath.normpath(path))
            assert "emptyDir" not in vol, f"{name}: {path} is on emptyDir volume {vol['name']}"
            assert vol.get("persistentVolumeClaim", {}).get("claimName") in claims, (name, path, vol)
            assert not mount.get("readOnly"), (name, path)
            checked += 1
    assert checked == 4 + len(catalog.function_names())


def test_the_check_catches_an_emptydir():
    svc = json.loads(json.dumps(ksvcs(render(TOP[0]))["agent-sre"]))
    for v in svc["spec"]["template"]["spec"]["volumes"]:
        if v["name"] == "state":
            v.pop("persistentVolumeClaim")
            v["emptyDir"] = {}
    path = state_paths(svc)[2]
    assert "emptyDir" in _volume_at(svc, path)[1]


def test_one_pod_per_state_volume():
    """ReadWriteOnce volumes and SQLite files: one replica per volume at any scale."""
    svcs = ksvcs(render(TOP[0]))
    for name in ["agent-sre", *catalog.function_names()]:
        ann = svcs[name]["spec"]["template"]["metadata"]["annotations"]
        assert ann["autoscaling.knative.dev/max-scale"] == "1", name


def test_readme_documents_the_knative_features_the_volumes_need():
    text = (REPO / "README.md").read_text()
    for feature in KNATIVE_FEATURES:
        assert f"{feature}: enabled" in text or f'"{feature}": "enabled"' in text, feature


@pytest.mark.parametrize("top", TOP, ids=lambda p: p.name)
def test_every_service_is_cluster_local(top):
    for name, svc in ksvcs(render(top)).items():
        assert svc["metadata"]["labels"].get("networking.knative.dev/visibility") == "cluster-local", name


def _secret_volumes(svc) -> dict[str, dict[str, Any]]:
    return {v["name"]: v["secret"] for v in svc["spec"]["template"]["spec"]["volumes"] if "secret" in v}


# What `agent-sre keys generate` writes: Secret → (setting, the file it names; None: the directory).
KEY_SECRETS = {"agent-sre-agent-signing-key": ("AGENT_SIGNING_KEY", "agent.pem"),
               "agent-sre-agent-public-keys": ("AGENT_PUBLIC_KEYS", None),
               "agent-sre-function-signing-key": ("FUNCTION_SIGNING_KEY", "function.pem"),
               "agent-sre-function-public-keys": ("FUNCTION_PUBLIC_KEYS", None),
               "agent-sre-audit-hmac-key": ("AUDIT_HMAC_KEY", "audit-hmac.key")}
AGENT_MOUNTS = {"agent-sre-agent-signing-key", "agent-sre-agent-public-keys", "agent-sre-function-public-keys",
                "agent-sre-audit-hmac-key"}
FUNCTION_MOUNTS = {"agent-sre-function-signing-key", "agent-sre-agent-public-keys", "agent-sre-audit-hmac-key"}


def check_keys(svc, secrets: set[str]) -> None:
    env = _env(svc)
    vols = _secret_volumes(svc)
    assert {v["secretName"] for v in vols.values()} == secrets
    assert all(v["optional"] is False and "items" not in v for v in vols.values())  # a ring may hold one key
    for secret in secrets:
        setting, file = KEY_SECRETS[secret]
        mount, vol = _volume_at(svc, env[setting])
        assert vol.get("secret", {}).get("secretName") == secret and mount.get("readOnly") is True, setting
        where = mount["mountPath"] + (f"/{file}" if file else "")
        assert env[setting] == where == f"/var/run/secrets/agent-sre/{secret.removeprefix('agent-sre-')}" + \
            (f"/{file}" if file else ""), setting


def test_keys_come_from_secrets_that_must_exist():
    """The key Secrets are mounted with optional: false, so a pod without them never starts; each side
    gets only its own private key; the settings point where `keys generate` says."""
    svcs = ksvcs(render(TOP[0]))
    check_keys(svcs["agent-sre"], AGENT_MOUNTS)
    for fn in catalog.function_names():
        check_keys(svcs[fn], FUNCTION_MOUNTS)
    assert not _secret_volumes(svcs["trm-reasoning"])


# --------------------------------------------------------------------------- NetworkPolicies


def _policies():
    return by_kind(render(TOP[0]), "NetworkPolicy")


def _selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    for k, v in (selector.get("matchLabels") or {}).items():
        if labels.get(k) != v:
            return False
    for e in selector.get("matchExpressions") or []:
        have = e["key"] in labels
        if e["operator"] == "Exists" and not have:
            return False
        if e["operator"] == "In" and labels.get(e["key"]) not in e["values"]:
            return False
    return True


def pod_labels(svc) -> dict[str, str]:
    """A Knative revision pod's labels: the template's plus what Knative adds."""
    return {**svc["spec"]["template"]["metadata"]["labels"], "serving.knative.dev/service": svc["metadata"]["name"]}


def _peer_allows(peer: dict[str, Any], ns: str, labels: dict[str, str], own_ns: str) -> bool:
    if "ipBlock" in peer:
        return True
    if "namespaceSelector" in peer:
        if not _selects(peer["namespaceSelector"], {"kubernetes.io/metadata.name": ns}):
            return False
    elif ns != own_ns:
        return False
    return "podSelector" not in peer or _selects(peer["podSelector"], labels)


def ingress_allowed(svc, ns: str, labels: dict[str, str], pols: list[dict[str, Any]] | None = None) -> bool:
    """Whether the NetworkPolicies (or ``pols``) let a pod (``ns``, ``labels``) connect to ``svc``'s pods."""
    target = pod_labels(svc)
    own = svc["metadata"]["namespace"]
    mine = [p for p in (_policies() if pols is None else pols) if p["metadata"]["namespace"] == own
            and _selects(p["spec"]["podSelector"], target) and "Ingress" in p["spec"]["policyTypes"]]
    assert mine, f"no ingress policy selects {svc['metadata']['name']}: everything may reach it"
    for p in mine:
        for rule in p["spec"].get("ingress") or []:
            if not rule.get("from") or any(_peer_allows(peer, ns, labels, own) for peer in rule["from"]):
                return True
    return False


BROKER_FILTER = ("knative-eventing", {"eventing.knative.dev/brokerRole": "filter"})
BROKER_INGRESS = ("knative-eventing", {"eventing.knative.dev/brokerRole": "ingress"})
ALERTMANAGER = ("monitoring", {"app.kubernetes.io/name": "alertmanager"})
ACTIVATOR = ("knative-serving", {"app": "activator"})
GATEWAY = ("kourier-system", {"app": "3scale-kourier-gateway"})
STRANGERS = [("default", {"app": "anything"}), ("monitoring", {"app.kubernetes.io/name": "grafana"}),
             ("agent-sre", {"app": "debug-shell"}), BROKER_INGRESS, ("kube-system", {"k8s-app": "kube-dns"}),
             ("knative-serving", {"app": "controller"})]


def test_only_the_broker_reaches_the_functions():
    svcs = ksvcs(render(TOP[0]))
    for fn in catalog.function_names():
        svc = svcs[fn]
        assert ingress_allowed(svc, *BROKER_FILTER)
        assert ingress_allowed(svc, *ACTIVATOR) and ingress_allowed(svc, *GATEWAY)  # Knative's own hops
        for who in [*STRANGERS, ALERTMANAGER, ("agent-sre", pod_labels(svcs["agent-sre"]))]:
            assert not ingress_allowed(svc, *who), (fn, who)


def test_only_alertmanager_and_the_broker_reach_the_agent():
    svcs = ksvcs(render(TOP[0]))
    agent = svcs["agent-sre"]
    assert ingress_allowed(agent, *ALERTMANAGER) and ingress_allowed(agent, *BROKER_FILTER)
    for who in [*STRANGERS, ("agent-sre", pod_labels(svcs["pod-restart"]))]:
        assert not ingress_allowed(agent, *who), who


def test_only_the_agent_reaches_the_reasoning_service():
    svcs = ksvcs(render(TOP[0]))
    reasoning = svcs["trm-reasoning"]
    assert ingress_allowed(reasoning, "agent-sre", pod_labels(svcs["agent-sre"]))
    for who in [*STRANGERS, ALERTMANAGER, BROKER_FILTER, ("agent-sre", pod_labels(svcs["pod-restart"]))]:
        assert not ingress_allowed(reasoning, *who), who


def test_function_and_reasoning_egress_is_limited():
    pols = _policies()
    svcs = ksvcs(render(TOP[0]))
    for name in [*catalog.function_names(), "trm-reasoning"]:
        mine = [p for p in pols if "Egress" in p["spec"]["policyTypes"]
                and _selects(p["spec"]["podSelector"], pod_labels(svcs[name]))]
        assert mine, name
        for p in mine:
            for rule in p["spec"]["egress"]:
                # every rule names its ports: no "anything, anywhere"
                assert rule.get("ports"), (name, rule)
                for peer in rule.get("to", []):
                    assert "ipBlock" not in peer
    dns_only = next(p for p in pols if p["metadata"]["name"] == "agent-sre-reasoning-egress")
    assert [port["port"] for r in dns_only["spec"]["egress"] for port in r["ports"]] == [53, 53]


def test_the_network_policy_check_is_not_vacuous():
    svc = ksvcs(render(TOP[0]))["pod-restart"]
    assert not ingress_allowed(svc, "default", {"app": "x"})
    open_policy = {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                   "metadata": {"name": "open", "namespace": "agent-sre"},
                   "spec": {"podSelector": {}, "policyTypes": ["Ingress"], "ingress": [{}]}}
    assert ingress_allowed(svc, "default", {"app": "x"}, pols=[*_policies(), open_policy])


def test_workload_spec_fields_match_the_api_schema():
    """The admission policies compare every apps/v1 spec field but the template; a field that
    Kubernetes adds must be added to WORKLOAD_SPEC_FIELDS (deploy/generate.py)."""
    import importlib.util

    import kubernetes_validate

    spec = importlib.util.spec_from_file_location("generate", DEPLOY / "generate.py")
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    base = Path(kubernetes_validate.__file__).parent / "kubernetes-json-schema" / "v1.31.0-local-strict"
    for resource, fields in gen.WORKLOAD_SPEC_FIELDS.items():
        schema = json.loads((base / f"{resource[:-1]}spec-apps-v1.json").read_text())
        assert set(schema["properties"]) - {"template"} == set(fields), resource
