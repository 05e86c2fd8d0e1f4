"""The admission policies' CEL, evaluated by cel-python on sample admission requests: the functions'
ServiceAccounts may delete a pod, set a workload's pod-template restartedAt annotation and a Flux
object's reconcile annotations, and nothing else (an image, replicas, spec.suspend, another
annotation, a label, a subresource, a create or delete of anything but a pod). Other users'
requests are not judged. The policies are taken from the rendered overlay, as applied.

The evaluator follows the ValidatingAdmissionPolicy rules: a policy applies when a resource rule
matches (group, resource or resource/subresource, operation) and every matchCondition is true;
its variables are computed (lazily in the API server; an error here only matters if a validation
reads the variable); the request is denied if any validation is false or errors (failurePolicy
Fail), with that validation's message.
"""

from __future__ import annotations

import copy
import fnmatch
from functools import lru_cache
from typing import Any

import celpy
import pytest

from agent_sre import catalog
from tests.deploy.test_deploy_manifests import TOP, by_kind, render

FN = "system:serviceaccount:agent-sre:{}"
POD_RESTART = FN.format("pod-restart")
FLUX_KS = FN.format("flux-reconcile-kustomization")
FLUX_HR = FN.format("flux-reconcile-helmrelease")
FLUX_GIT = FN.format("flux-reconcile-gitrepository")
HUMAN = "kubernetes-admin"
CONTROLLER = "system:serviceaccount:kube-system:replicaset-controller"

_ENV = celpy.Environment()


@lru_cache(maxsize=None)
def _program(expr: str):
    return _ENV.program(_ENV.compile(expr))


def _eval(expr: str, activation: dict[str, Any]) -> Any:
    try:
        out = _program(expr).evaluate(activation)
    except Exception as e:  # noqa: BLE001 - an evaluation error is a denial under failurePolicy Fail
        return e
    return out


def policies() -> list[dict[str, Any]]:
    return by_kind(render(TOP[0]), "ValidatingAdmissionPolicy")


def bindings() -> list[dict[str, Any]]:
    return by_kind(render(TOP[0]), "ValidatingAdmissionPolicyBinding")


def _matches(rule: dict[str, Any], request: dict[str, Any]) -> bool:
    res = request["resource"]
    name = res["resource"] + (f"/{request['subResource']}" if request["subResource"] else "")
    return (request["operation"] in rule["operations"]
            and any(g in ("*", res["group"]) for g in rule["apiGroups"])
            and any(fnmatch.fnmatchcase(name, r) for r in rule["resources"]))


def admit(request: dict[str, Any], obj: dict | None, old: dict | None,
          under: list[dict[str, Any]] | None = None) -> tuple[bool, list[str]]:
    """(allowed, denial messages) for one admission request under every bound policy (or ``under``)."""
    bound = {b["spec"]["policyName"] for b in bindings() if b["spec"]["validationActions"] == ["Deny"]}
    denied: list[str] = []
    act = {"request": celpy.json_to_cel(request), "object": celpy.json_to_cel(obj),
           "oldObject": celpy.json_to_cel(old)}
    for p in policies() if under is None else under:
        spec = p["spec"]
        if p["metadata"]["name"] not in bound:
            continue
        if not any(_matches(r, request) for r in spec["matchConstraints"]["resourceRules"]):
            continue
        if not all(_eval(c["expression"], act) is True or _eval(c["expression"], act) == celpy.celtypes.BoolType(True)
                   for c in spec.get("matchConditions", [])):  # noqa: E501
            continue
        variables = {}
        for v in spec.get("variables", []):
            variables[v["name"]] = _eval(v["expression"], {**act, "variables": celpy.json_to_cel(
                {k: x for k, x in variables.items() if not isinstance(x, Exception)})})
        act_v = {**act, "variables": celpy.celtypes.MapType(
            {celpy.celtypes.StringType(k): x for k, x in variables.items() if not isinstance(x, Exception)})}
        assert not any(isinstance(x, Exception) for x in variables.values() if request["operation"] == "UPDATE"), \
            variables
        for val in spec["validations"]:
            out = _eval(val["expression"], act_v)
            if isinstance(out, Exception) or not bool(out):
                denied.append(val["message"])
    return not denied, denied


def request(user: str, operation: str, group: str, resource: str, *, sub: str = "", kind: str = "",
            namespace: str = "media", name: str = "x") -> dict[str, Any]:
    return {"uid": "1", "kind": {"group": group, "version": "v1", "kind": kind},
            "resource": {"group": group, "version": "v1", "resource": resource}, "subResource": sub,
            "name": name, "namespace": namespace, "operation": operation,
            "userInfo": {"username": user, "groups": ["system:serviceaccounts"]}, "dryRun": False}


# --------------------------------------------------------------------------- samples


def pod() -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "web-1", "namespace": "media", "labels": {"app": "web"},
                         "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-6c5",
                                              "uid": "u1", "controller": True}]},
            "spec": {"containers": [{"name": "web", "image": "web:1"}]}}


def workload(kind: str = "Deployment") -> dict[str, Any]:
    spec: dict[str, Any] = {
        "selector": {"matchLabels": {"app": "web"}},
        "template": {"metadata": {"labels": {"app": "web"}, "annotations": {"prometheus.io/scrape": "true"}},
                     "spec": {"containers": [{"name": "web", "image": "web:1", "resources": {"limits": {"memory": "1Gi"}}}],
                              "serviceAccountName": "web"}},
        "revisionHistoryLimit": 10}
    if kind != "DaemonSet":
        spec["replicas"] = 3
    if kind == "Deployment":
        spec["strategy"] = {"type": "RollingUpdate"}
    if kind == "StatefulSet":
        spec["serviceName"] = "web"
    return {"apiVersion": "apps/v1", "kind": kind,
            "metadata": {"name": "web", "namespace": "media", "labels": {"app": "web"},
                         "annotations": {"deployment.kubernetes.io/revision": "4"}, "generation": 7},
            "spec": spec, "status": {"readyReplicas": 1}}


def restarted(obj: dict[str, Any], when: str = "2026-11-29T10:00:00Z") -> dict[str, Any]:
    new = copy.deepcopy(obj)
    new["spec"]["template"]["metadata"].setdefault("annotations", {})["kubectl.kubernetes.io/restartedAt"] = when
    new["metadata"]["generation"] += 1  # the server's doing, not the patch's
    new["metadata"]["managedFields"] = [{"manager": "agent-sre", "operation": "Update"}]
    return new


def kustomization() -> dict[str, Any]:
    return {"apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
            "metadata": {"name": "apps", "namespace": "flux-system", "labels": {"team": "home"},
                         "annotations": {"note": "managed"}, "finalizers": ["finalizers.fluxcd.io"]},
            "spec": {"interval": "10m", "path": "./apps", "prune": True,
                     "sourceRef": {"kind": "GitRepository", "name": "flux-system"}},
            "status": {"conditions": [{"type": "Ready", "status": "False"}]}}


def annotated(obj: dict[str, Any], **ann: str) -> dict[str, Any]:
    new = copy.deepcopy(obj)
    new["metadata"].setdefault("annotations", {}).update(ann)
    return new


REQUESTED = "reconcile.fluxcd.io/requestedAt"
FORCE = "reconcile.fluxcd.io/forceAt"
RESET = "reconcile.fluxcd.io/resetAt"


def flux_update(user: str, old: dict, new: dict, resource: str = "kustomizations",
                group: str = "kustomize.toolkit.fluxcd.io", sub: str = "") -> tuple[bool, list[str]]:
    return admit(request(user, "UPDATE", group, resource, sub=sub, kind=old["kind"], namespace="flux-system"), new, old)


# --------------------------------------------------------------------------- pods


def test_a_function_may_delete_a_pod():
    assert admit(request(POD_RESTART, "DELETE", "", "pods", kind="Pod"), None, pod()) == (True, [])


@pytest.mark.parametrize("operation,sub", [("UPDATE", ""), ("CREATE", ""), ("CREATE", "eviction"),
                                           ("CONNECT", "exec"), ("UPDATE", "status"), ("DELETE", "ephemeralcontainers")])
def test_a_function_may_do_nothing_else_to_a_pod(operation, sub):
    new = copy.deepcopy(pod())
    new["metadata"]["labels"]["app"] = "other"
    ok, why = admit(request(POD_RESTART, operation, "", "pods", sub=sub, kind="Pod"), new, pod())
    assert not ok and "may only delete pods" in why[0]


# --------------------------------------------------------------------------- workloads


WORKLOADS = [("Deployment", "deployments"), ("StatefulSet", "statefulsets"), ("DaemonSet", "daemonsets")]


@pytest.mark.parametrize("kind,resource", WORKLOADS)
def test_a_rollout_restart_is_allowed(kind, resource):
    old = workload(kind)
    assert admit(request(POD_RESTART, "UPDATE", "apps", resource, kind=kind), restarted(old), old) == (True, [])
    again = restarted(old, "2026-11-29T11:00:00Z")  # a second restart changes the value
    assert admit(request(POD_RESTART, "UPDATE", "apps", resource, kind=kind), again, restarted(old))[0]


def _changed(kind: str, change) -> dict[str, Any]:
    new = restarted(workload(kind))
    change(new)
    return new


WORKLOAD_CHANGES = {
    "image": (lambda o: o["spec"]["template"]["spec"]["containers"][0].update(image="evil:latest"),
              "pod template's spec"),
    "service account": (lambda o: o["spec"]["template"]["spec"].update(serviceAccountName="admin"),
                        "pod template's spec"),
    "memory limit": (lambda o: o["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]
                     .update(memory="1Ti"), "pod template's spec"),
    "template label": (lambda o: o["spec"]["template"]["metadata"]["labels"].update(app="other"),
                       "pod template's labels"),
    "another template annotation": (lambda o: o["spec"]["template"]["metadata"]["annotations"]
                                    .update({"sidecar.istio.io/inject": "false"}), "restartedAt annotation"),
    "template annotation removed": (lambda o: o["spec"]["template"]["metadata"]["annotations"]
                                    .pop("prometheus.io/scrape"), "restartedAt annotation"),
    "selector": (lambda o: o["spec"].update(selector={"matchLabels": {"app": "x"}}), "spec"),
    "revision history": (lambda o: o["spec"].update(revisionHistoryLimit=0), "spec"),
    "metadata label": (lambda o: o["metadata"]["labels"].update(app="x"), "labels, finalizers"),
    "metadata annotation": (lambda o: o["metadata"]["annotations"].update(x="y"), "annotations"),
    "owner": (lambda o: o["metadata"].update(ownerReferences=[{"kind": "X", "name": "y"}]), "owner references"),
}


@pytest.mark.parametrize("kind,resource", WORKLOADS)
@pytest.mark.parametrize("what", WORKLOAD_CHANGES)
def test_a_restart_that_changes_anything_else_is_refused(kind, resource, what):
    change, message = WORKLOAD_CHANGES[what]
    old = workload(kind)
    ok, why = admit(request(POD_RESTART, "UPDATE", "apps", resource, kind=kind), _changed(kind, change), old)
    assert not ok and any(message in w for w in why), why


@pytest.mark.parametrize("kind,resource,change", [
    ("Deployment", "deployments", lambda o: o["spec"].update(replicas=0)),
    ("Deployment", "deployments", lambda o: o["spec"].update(paused=True)),
    ("Deployment", "deployments", lambda o: o["spec"].update(strategy={"type": "Recreate"})),
    ("StatefulSet", "statefulsets", lambda o: o["spec"].update(replicas=0)),
    ("StatefulSet", "statefulsets", lambda o: o["spec"].update(podManagementPolicy="Parallel")),
    ("DaemonSet", "daemonsets", lambda o: o["spec"].update(updateStrategy={"type": "OnDelete"})),
])
def test_scaling_pausing_or_a_new_strategy_is_refused(kind, resource, change):
    ok, why = admit(request(POD_RESTART, "UPDATE", "apps", resource, kind=kind), _changed(kind, change),
                    workload(kind))
    assert not ok and any("only restart its pods" in w for w in why), why


@pytest.mark.parametrize("operation,sub", [("UPDATE", "scale"), ("UPDATE", "status"), ("CREATE", ""), ("DELETE", "")])
def test_no_create_delete_or_subresource_on_workloads(operation, sub):
    old = workload()
    new = restarted(old) if operation != "DELETE" else None
    ok, why = admit(request(POD_RESTART, operation, "apps", "deployments", sub=sub, kind="Deployment"), new,
                    old if operation != "CREATE" else None)
    assert not ok and "may only update a deployment" in why[0], why


# --------------------------------------------------------------------------- Flux


@pytest.mark.parametrize("keys", [(REQUESTED,), (REQUESTED, FORCE), (REQUESTED, RESET), (RESET,)])
def test_reconcile_annotations_are_allowed(keys):
    old = kustomization()
    new = annotated(old, **{k: "2026-11-29T10:00:00Z" for k in keys})
    assert flux_update(FLUX_KS, old, new) == (True, [])
    # set again with a new value
    assert flux_update(FLUX_KS, new, annotated(new, **{k: "2026-11-29T11:00:00Z" for k in keys}))[0]


def test_helmrelease_and_gitrepository_reconcile_requests_are_allowed():
    hr = {**kustomization(), "apiVersion": "helm.toolkit.fluxcd.io/v2", "kind": "HelmRelease"}
    assert flux_update(FLUX_HR, hr, annotated(hr, **{REQUESTED: "t", FORCE: "t"}), "helmreleases",
                       "helm.toolkit.fluxcd.io")[0]
    git = {**kustomization(), "apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository"}
    assert flux_update(FLUX_GIT, git, annotated(git, **{REQUESTED: "t"}), "gitrepositories",
                       "source.toolkit.fluxcd.io")[0]


FLUX_CHANGES = {
    "suspend": (lambda o: o["spec"].update(suspend=True), "spec"),
    "interval": (lambda o: o["spec"].update(interval="1000h"), "spec"),
    "path": (lambda o: o["spec"].update(path="./evil"), "spec"),
    "disable reconciliation": (lambda o: o["metadata"]["annotations"].update(
        {"kustomize.toolkit.fluxcd.io/reconcile": "disabled"}), "reconcile annotations"),
    "annotation removed": (lambda o: o["metadata"]["annotations"].pop("note"), "reconcile annotations"),
    "label": (lambda o: o["metadata"]["labels"].update(team="x"), "labels"),
    "finalizer removed": (lambda o: o["metadata"].update(finalizers=[]), "finalizers"),
}


@pytest.mark.parametrize("what", FLUX_CHANGES)
def test_a_reconcile_request_that_changes_anything_else_is_refused(what):
    change, message = FLUX_CHANGES[what]
    old = kustomization()
    new = annotated(old, **{REQUESTED: "2026-11-29T10:00:00Z"})
    change(new)
    ok, why = flux_update(FLUX_KS, old, new)
    assert not ok and any(message in w for w in why), why


@pytest.mark.parametrize("operation,sub", [("UPDATE", "status"), ("DELETE", ""), ("CREATE", "")])
def test_no_create_delete_or_status_on_flux_objects(operation, sub):
    old = kustomization()
    ok, why = admit(request(FLUX_KS, operation, "kustomize.toolkit.fluxcd.io", "kustomizations", sub=sub,
                            kind="Kustomization", namespace="flux-system"),
                    None if operation == "DELETE" else annotated(old, **{REQUESTED: "t"}),
                    None if operation == "CREATE" else old)
    assert not ok and "may only update a Flux object" in why[0]


# --------------------------------------------------------------------------- scope


@pytest.mark.parametrize("user", [HUMAN, CONTROLLER, "system:serviceaccount:agent-sre:agent-sre",
                                  "system:serviceaccount:other:pod-restart"])
def test_other_users_are_not_judged(user):
    old = workload()
    new = _changed("Deployment", lambda o: o["spec"].update(replicas=0))
    assert admit(request(user, "UPDATE", "apps", "deployments", kind="Deployment"), new, old) == (True, [])
    old = kustomization()
    assert flux_update(user, old, annotated(old, x="y"))[0]


def test_every_function_account_is_judged_and_only_those():
    want = {FN.format(n) for n in catalog.function_names()}
    for p in policies():
        [cond] = p["spec"]["matchConditions"]
        for user in want:
            assert _eval(cond["expression"], {"request": celpy.json_to_cel({"userInfo": {"username": user}})})
        assert not _eval(cond["expression"], {"request": celpy.json_to_cel({"userInfo": {"username": HUMAN}})})


def test_every_resource_a_function_may_change_has_a_policy():
    matched = set()
    for p in policies():
        for r in p["spec"]["matchConstraints"]["resourceRules"]:
            assert set(r["operations"]) == {"CREATE", "UPDATE", "DELETE", "CONNECT"}
            matched |= {(g, res) for g in r["apiGroups"] for res in r["resources"]}
    for spec in catalog.specs():
        for rule in spec.rbac:
            if set(rule.verbs) - {"get", "list", "watch"}:
                assert (rule.api_group, rule.resource) in matched and \
                       (rule.api_group, rule.resource + "/*") in matched, rule
    assert {p["metadata"]["name"] for p in policies()} == {b["spec"]["policyName"] for b in bindings()}
    assert all(p["spec"]["failurePolicy"] == "Fail" for p in policies())


def test_the_evaluator_is_not_vacuous():
    """A validation that is false, or that errors, denies; a policy that does not match does not."""
    old = workload()
    bad = {"expression": "object.spec.nosuchfield == 1", "message": "boom"}
    patched = copy.deepcopy(policies())
    for p in patched:
        p["spec"]["validations"].append(bad)
    ok, why = admit(request(POD_RESTART, "UPDATE", "apps", "deployments", kind="Deployment"), restarted(old), old,
                    under=patched)
    assert not ok and why == ["boom"]
    false = copy.deepcopy(policies())
    for p in false:
        p["spec"]["validations"].append({"expression": "false", "message": "no"})
    assert admit(request(POD_RESTART, "DELETE", "", "pods", kind="Pod"), None, pod(), under=false) == (False, ["no"])
    assert admit(request(HUMAN, "DELETE", "", "pods", kind="Pod"), None, pod(), under=false) == (True, [])
