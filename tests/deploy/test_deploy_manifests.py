"""deploy/: every kustomization renders, every object validates against its API schema, the eventing
wiring is complete, and RBAC is exactly what the catalog declares.

Kustomizations are rendered by the real ``kubectl kustomize`` (tests/deploy/kustomize.py), so the
objects checked are the ones ``kubectl apply -k`` (or Flux) would apply.

Core kinds are validated with kubernetes-validate's bundled OpenAPI schemas (offline, strict: an
unknown field is an error, as with ``kubectl apply --validate=strict``). Knative, Flux and
prometheus-operator kinds are validated with jsonschema against the CRD schemas kept in
deploy/schemas (extracted from the upstream CRDs; see deploy/schemas/extract.py), made strict the
same way. Knative Serving's admission webhook refuses more than its schema does (feature-gated pod
fields, reserved env vars and ports); those rules are checked too, from knative/serving's
pkg/apis/serving (fieldmask.go, k8s_validation.go).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from functools import lru_cache
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from agent_sre import catalog
from tests.deploy.kustomize import KustomizeError, build, obj_id

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
K8S_VERSION = "1.31"
KUSTOMIZATIONS = sorted({p.parent for p in DEPLOY.rglob("kustomization.yaml")})
TOP = [DEPLOY / "overlays" / "cpu", DEPLOY / "overlays" / "gpu"]
IMAGE_REPOS = {"ghcr.io/agent-sre/agent-sre", "ghcr.io/agent-sre/agent-sre-cuda"}
TRIGGER_TYPE = "io.homelab.agent-sre.lambda.trigger"
ALERT_FIRED = "io.homelab.prometheus.alert.fired"


# --------------------------------------------------------------------------- schema validation


def _strict(schema: Any, honor_preserve: bool = True) -> Any:
    """Unknown fields are errors unless the schema preserves them (the API server would prune
    them silently, which hides typos like `deadLetterSInk`). Knative's admission webhooks decode
    with unknown fields disallowed, so for Knative kinds a listed set of properties is closed even
    where the CRD says x-kubernetes-preserve-unknown-fields."""
    if isinstance(schema, list):
        return [_strict(s, honor_preserve) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: _strict(v, honor_preserve) for k, v in schema.items()}
    preserve = honor_preserve and schema.get("x-kubernetes-preserve-unknown-fields")
    if "properties" in schema and not preserve and "additionalProperties" not in schema:
        out["additionalProperties"] = False
    return out


@lru_cache(maxsize=None)
def crd_schemas() -> dict[tuple[str, str], dict[str, Any]]:
    out = {}
    for p in (DEPLOY / "schemas").glob("*.json"):
        doc = json.loads(p.read_text())
        schema = dict(doc["schema"])
        # The API server always accepts these at the top, whether the CRD lists them or not.
        schema["properties"] = {"apiVersion": {"type": "string"}, "kind": {"type": "string"},
                                "metadata": {"type": "object"}, **schema.get("properties", {})}
        knative = doc["apiVersion"].split("/")[0].endswith(".knative.dev")
        out[(doc["apiVersion"], doc["kind"])] = _strict(schema, honor_preserve=not knative)
    return out


DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


def validate_object(o: dict[str, Any]) -> list[str]:
    errors: list[str] = []
    md = o.get("metadata") or {}
    name = md.get("name", "")
    if not name or len(name) > 253 or not DNS1123_SUBDOMAIN.match(name):
        errors.append(f"metadata.name {name!r} is not a DNS-1123 subdomain")
    for k, v in (md.get("labels") or {}).items():
        if not isinstance(v, str) or len(v) > 63 or not LABEL_VALUE.match(v):
            errors.append(f"label {k}={v!r} is not a valid label value")
    for k, v in (md.get("annotations") or {}).items():
        if not isinstance(v, str):
            errors.append(f"annotation {k} must be a string, got {type(v).__name__}")
    key = (o["apiVersion"], o["kind"])
    if key in crd_schemas():
        v = jsonschema.Draft7Validator(crd_schemas()[key])
        errors += [f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in v.iter_errors(o)]
        return errors
    try:
        kubernetes_validate.validate(o, K8S_VERSION, strict=True)
    except kubernetes_validate.SchemaNotFoundError:
        errors.append(f"no schema for {key}: add the CRD's schema to deploy/schemas")
    except kubernetes_validate.ValidationError as e:
        errors.append(f"{'.'.join(map(str, e.path))}: {e.message}")
    return errors


# --------------------------------------------------------------------------- Knative webhook rules

# pkg/apis/serving/fieldmask.go with the default config-features (feature-gated fields off,
# emptyDir volumes on, pod securityContext off) plus the features the README tells users to enable
# (KNATIVE_FEATURES): persistent volume claims, written to.
KSVC_POD_FIELDS = {"serviceAccountName", "containers", "volumes", "imagePullSecrets", "enableServiceLinks",
                   "automountServiceAccountToken", "containerConcurrency", "timeoutSeconds",
                   "responseStartTimeoutSeconds", "idleTimeoutSeconds"}
KSVC_CONTAINER_FIELDS = {"name", "args", "command", "env", "workingDir", "envFrom", "image", "imagePullPolicy",
                         "livenessProbe", "ports", "readinessProbe", "resources", "securityContext", "startupProbe",
                         "terminationMessagePath", "terminationMessagePolicy", "volumeMounts"}
KSVC_SECURITY_FIELDS = {"capabilities", "readOnlyRootFilesystem", "runAsUser", "runAsGroup", "runAsNonRoot",
                        "allowPrivilegeEscalation", "seccompProfile", "privileged"}
KSVC_VOLUME_SOURCES = {"secret", "configMap", "projected", "emptyDir", "persistentVolumeClaim"}
KNATIVE_FEATURES = ("kubernetes.podspec-persistent-volume-claim", "kubernetes.podspec-persistent-volume-write")
# pkg/apis/serving/k8s_validation.go
RESERVED_ENV = {"PORT", "K_SERVICE", "K_CONFIGURATION", "K_REVISION"}
RESERVED_PORTS = {8012, 8013, 8022, 9090, 9091, 8008}
RESERVED_PATHS = {"/", "/dev", "/dev/log"}


def knative_webhook_errors(o: dict[str, Any]) -> list[str]:
    errors = []
    tpl = o["spec"]["template"]
    ps = tpl["spec"]
    errors += [f"pod field {f} is feature-gated/disallowed" for f in set(ps) - KSVC_POD_FIELDS]
    if ps.get("automountServiceAccountToken") is True:
        errors.append("automountServiceAccountToken may only be set to false")
    containers = ps.get("containers") or []
    if len(containers) != 1:
        errors.append("exactly one container expected")
    for c in containers:
        errors += [f"container field {f} disallowed" for f in set(c) - KSVC_CONTAINER_FIELDS]
        errors += [f"securityContext.{f} disallowed" for f in set(c.get("securityContext") or {}) - KSVC_SECURITY_FIELDS]
        errors += [f"env {e['name']} is reserved by Knative" for e in c.get("env") or [] if e["name"] in RESERVED_ENV]
        ports = c.get("ports") or []
        if len(ports) > 1:
            errors.append("more than one port")
        for p in ports:
            if p["containerPort"] in RESERVED_PORTS:
                errors.append(f"port {p['containerPort']} is reserved")
            if p.get("name", "http1") not in ("http1", "h2c"):
                errors.append(f"port name {p['name']!r} must be http1 or h2c")
        for vm in c.get("volumeMounts") or []:
            if (vm["mountPath"].rstrip("/") or "/") in RESERVED_PATHS or not vm["mountPath"].startswith("/"):
                errors.append(f"mount path {vm['mountPath']} is reserved")
    for v in ps.get("volumes") or []:
        src = set(v) - {"name"}
        if not src <= KSVC_VOLUME_SOURCES:
            errors.append(f"volume {v['name']} uses {src - KSVC_VOLUME_SOURCES}")
    for k, v in (tpl.get("metadata", {}).get("annotations") or {}).items():
        if k.startswith("autoscaling.knative.dev/") and k.endswith("-scale") and not v.isdigit():
            errors.append(f"{k}={v!r} must be an integer string")
    return errors


# --------------------------------------------------------------------------- fixtures


@lru_cache(maxsize=None)
def render(path: Path) -> tuple[dict[str, Any], ...]:
    return tuple(build(path))


def by_kind(objs, kind: str, api_prefix: str = "") -> list[dict[str, Any]]:
    return [o for o in objs if o["kind"] == kind and o["apiVersion"].startswith(api_prefix)]


def ksvcs(objs):
    return {o["metadata"]["name"]: o for o in by_kind(objs, "Service", "serving.knative.dev/")}


def container(ksvc):
    return ksvc["spec"]["template"]["spec"]["containers"][0]


def env(ksvc) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container(ksvc).get("env", [])}


# --------------------------------------------------------------------------- tests


def test_every_kustomization_is_found():
    names = {str(p.relative_to(DEPLOY)) for p in KUSTOMIZATIONS}
    assert {"base", "overlays/cpu", "overlays/gpu", "flux", "base/functions", "base/monitoring", "base/network",
            "access"} <= names


@pytest.mark.parametrize("path", KUSTOMIZATIONS, ids=lambda p: str(p.relative_to(DEPLOY)))
def test_kustomization_renders_and_every_object_validates(path):
    objs = render(path)
    assert objs
    problems = {f"{o['kind']}/{o['metadata'].get('name')}": validate_object(o) for o in objs}
    problems = {k: v for k, v in problems.items() if v}
    assert not problems, json.dumps(problems, indent=1)


def test_validation_catches_mistakes():
    """The validators are not vacuous: typos and wrong types are reported."""
    objs = render(DEPLOY / "overlays" / "cpu")
    trig = json.loads(json.dumps(by_kind(objs, "Trigger")[0]))
    trig["spec"]["delivery"]["deadLetterSInk"] = trig["spec"]["delivery"].pop("deadLetterSink", {})
    assert any("deadLetterSInk" in e for e in validate_object(trig))
    svc = json.loads(json.dumps(ksvcs(objs)["agent-sre"]))
    svc["spec"]["template"]["spec"]["containers"][0]["ports"] = [{"containerPort": "8080"}]
    assert validate_object(svc)
    role = json.loads(json.dumps(by_kind(objs, "ClusterRole")[0]))
    role["rules"][0]["verb"] = role["rules"][0].pop("verbs")
    assert validate_object(role)
    rule = json.loads(json.dumps(by_kind(objs, "PrometheusRule")[0]))
    rule["spec"]["groups"][0]["rules"][0]["expr"] = {"not": "a string"}
    assert validate_object(rule)
    svc = json.loads(json.dumps(ksvcs(objs)["agent-sre"]))
    svc["spec"]["template"]["spec"]["nodeSelector"] = {"gpu": "true"}
    container(svc)["env"].append({"name": "PORT", "value": "9000"})
    errs = knative_webhook_errors(svc)
    assert any("nodeSelector" in e for e in errs) and any("PORT" in e for e in errs)
    with pytest.raises(KustomizeError):
        build(DEPLOY / "schemas")  # not a kustomization


def test_manifests_use_no_yaml_aliases():
    """An anchor shared by two places is one node to some YAML readers and two to others (kustomize
    copies it), so a manifest could mean different things to different tools."""
    files = sorted(DEPLOY.rglob("*.yaml"))
    assert len(files) > 10
    for p in files:
        events = list(yaml.parse(p.read_text()))
        assert not any(isinstance(e, yaml.AliasEvent) for e in events), p


@pytest.mark.parametrize("top", TOP, ids=lambda p: p.name)
def test_revisions_carry_their_service_labels(top):
    """Every Knative Service's Revision template (hence its pods) has the Service's labels,
    app.kubernetes.io/part-of from the base kustomization included."""
    svcs = ksvcs(render(top))
    assert len(svcs) == 2 + len(catalog.function_names())
    for name, svc in svcs.items():
        # visibility is the Route's setting, not a label of the pods
        labels = {k: v for k, v in svc["metadata"]["labels"].items() if k != "networking.knative.dev/visibility"}
        assert labels["app.kubernetes.io/part-of"] == "agent-sre", name
        template = svc["spec"]["template"]["metadata"]["labels"]
        assert labels.items() <= template.items(), (name, labels, template)


@pytest.mark.parametrize("top", TOP, ids=lambda p: p.name)
def test_knative_services_pass_the_serving_webhook_rules(top):
    for name, svc in ksvcs(render(top)).items():
        assert not knative_webhook_errors(svc), (name, knative_webhook_errors(svc))


@pytest.mark.parametrize("top", TOP, ids=lambda p: p.name)
def test_services_and_images(top):
    svcs = ksvcs(render(top))
    names = {"agent-sre", "trm-reasoning", *catalog.function_names()}
    assert set(svcs) == names
    for name, svc in svcs.items():
        c = container(svc)
        repo, _, tag = c["image"].rpartition(":")
        assert repo in IMAGE_REPOS and tag, c["image"]
        sc = c["securityContext"]
        assert sc["runAsNonRoot"] is True and sc["allowPrivilegeEscalation"] is False
        assert sc["capabilities"]["drop"] == ["ALL"]
    agent = svcs["agent-sre"]
    assert container(agent)["args"] == ["serve"]
    e = env(agent)
    assert {"BROKER_URL", "USE_TRM", "TRM_API_URL", "MODEL_PATH", "POLICY_PATH"} <= set(e)
    assert e["BROKER_URL"].endswith("/agent-sre/default")
    # The agent's server reads AUTH_TOKEN (the Alertmanager receiver's bearer token) and keeps the
    # gate state, outbox and audit log in STATE_DIR, which must be a writable mount.
    assert e["AUTH_TOKEN"]["secretKeyRef"]["name"] == "agent-sre-webhook"
    mounts = {m["mountPath"]: m["name"] for m in container(agent)["volumeMounts"]}
    assert e["STATE_DIR"] in mounts
    assert e["TRM_API_URL"] == "http://trm-reasoning.agent-sre.svc.cluster.local"
    assert container(svcs["trm-reasoning"])["args"] == ["serve-reasoning"]
    for fn in catalog.function_names():
        assert container(svcs[fn])["args"] == ["serve-function"]
        assert env(svcs[fn])["FUNCTION"] == fn


def test_gpu_overlay_only_changes_the_reasoning_service():
    cpu, gpu = render(DEPLOY / "overlays" / "cpu"), render(DEPLOY / "overlays" / "gpu")
    cpu_trm, gpu_trm = ksvcs(cpu)["trm-reasoning"], ksvcs(gpu)["trm-reasoning"]
    assert "nvidia.com/gpu" not in container(cpu_trm)["resources"].get("limits", {})
    assert container(gpu_trm)["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert env(gpu_trm)["DEVICE"] == "cuda" and env(cpu_trm)["DEVICE"] == "cpu"
    assert container(gpu_trm)["image"].startswith("ghcr.io/agent-sre/agent-sre-cuda:")
    assert container(cpu_trm)["image"].startswith("ghcr.io/agent-sre/agent-sre:")
    others = lambda objs: sorted(json.dumps(o, sort_keys=True) for o in objs  # noqa: E731
                                 if obj_id(o) != obj_id(cpu_trm))
    assert others(cpu) == others(gpu)


@pytest.mark.parametrize("top", TOP, ids=lambda p: p.name)
def test_eventing_wiring(top):
    objs = render(top)
    svcs = ksvcs(objs)
    brokers = {o["metadata"]["name"]: o for o in by_kind(objs, "Broker")}
    assert "default" in brokers
    triggers = by_kind(objs, "Trigger")

    def check_delivery(where: str, delivery: dict[str, Any]) -> None:
        assert delivery.get("retry", 0) >= 3, where
        assert delivery.get("backoffPolicy") == "exponential", where
        assert re.fullmatch(r"PT\d+(\.\d+)?S", delivery.get("backoffDelay", "")), where
        ref = delivery["deadLetterSink"]["ref"]
        assert ref["kind"] == "Service" and ref["name"] in svcs, where

    check_delivery("broker", brokers["default"]["spec"]["delivery"])
    for t in triggers:
        assert t["spec"]["broker"] in brokers
        ref = t["spec"]["subscriber"]["ref"]
        assert ref["apiVersion"] == "serving.knative.dev/v1" and ref["name"] in svcs, t["metadata"]["name"]
        attrs = t["spec"]["filter"]["attributes"]
        # CloudEvents attribute names are lowercase alphanumerics (the broker filters on them).
        assert all(re.fullmatch(r"[a-z0-9]{1,20}", k) for k in attrs), attrs
    fired = [t for t in triggers if t["spec"]["filter"]["attributes"].get("type") == ALERT_FIRED]
    assert len(fired) == 1 and fired[0]["spec"]["subscriber"]["ref"]["name"] == "agent-sre"
    check_delivery("alert.fired trigger", fired[0]["spec"]["delivery"])
    for fn in catalog.function_names():
        mine = [t for t in triggers if t["spec"]["filter"]["attributes"] == {"type": TRIGGER_TYPE, "lambdafunction": fn}]
        assert len(mine) == 1, fn
        assert mine[0]["spec"]["subscriber"]["ref"]["name"] == fn
        check_delivery(fn, mine[0]["spec"]["delivery"])
    # No trigger sends lambda triggers anywhere else (e.g. to every function at once).
    lambda_triggers = [t for t in triggers if t["spec"]["filter"]["attributes"].get("type") == TRIGGER_TYPE]
    assert len(lambda_triggers) == len(catalog.function_names())


def _granted(objs, sa_name: str, namespace: str) -> set[tuple[str, str, str]]:
    roles = {(o["kind"], o["metadata"].get("namespace", ""), o["metadata"]["name"]): o
             for o in objs if o["kind"] in ("Role", "ClusterRole")}
    out = set()
    for b in objs:
        if b["kind"] not in ("RoleBinding", "ClusterRoleBinding"):
            continue
        if not any(s["kind"] == "ServiceAccount" and s["name"] == sa_name and s.get("namespace", b["metadata"].get("namespace")) == namespace
                   for s in b["subjects"]):
            continue
        ref = b["roleRef"]
        ns = b["metadata"].get("namespace", "") if ref["kind"] == "Role" else ""
        role = roles.get((ref["kind"], ns, ref["name"]))
        assert role is not None, f"{b['metadata']['name']} binds missing {ref}"
        for r in role["rules"]:
            assert not r.get("resourceNames") and not r.get("nonResourceURLs")
            for g in r["apiGroups"]:
                for res in r["resources"]:
                    for v in r["verbs"]:
                        out.add((g, res, v))
    return out


def _grants_by_namespace(objs, sa_name: str, namespace: str) -> dict[str, set[tuple[str, str, str]]]:
    """What ``sa_name`` may do, per namespace ("*" for ClusterRoleBindings: every namespace)."""
    out: dict[str, set[tuple[str, str, str]]] = {}
    for b in objs:
        if b["kind"] not in ("RoleBinding", "ClusterRoleBinding"):
            continue
        ns = b["metadata"].get("namespace", "*") if b["kind"] == "RoleBinding" else "*"
        one = [b, *(o for o in objs if o["kind"] in ("Role", "ClusterRole"))]
        out.setdefault(ns, set()).update(_granted(one, sa_name, namespace))
    return {k: v for k, v in out.items() if v}


def _deploy_policy():
    from agent_sre import policy as policy_mod

    cm = next(o for o in render(DEPLOY / "overlays" / "cpu")
              if o["kind"] == "ConfigMap" and o["metadata"]["name"] == "agent-sre-policy")
    return policy_mod.parse(cm["data"]["policy.yaml"], "deploy policy ConfigMap")


@pytest.mark.parametrize("fn", catalog.function_names())
def test_function_rbac_is_exactly_the_catalog_declaration(fn):
    """A mutating function holds exactly its declared rights, in Roles, in the namespaces the policy
    lets it act in and nowhere else; a read-only one reads cluster-wide (never writes)."""
    objs = render(DEPLOY / "overlays" / "cpu")
    svc = ksvcs(objs)[fn]
    sa = svc["spec"]["template"]["spec"]["serviceAccountName"]
    ns = svc["metadata"]["namespace"]
    assert any(o["kind"] == "ServiceAccount" and o["metadata"]["name"] == sa and o["metadata"]["namespace"] == ns
               for o in objs)
    spec = catalog.get(fn)
    want = {(r.api_group, r.resource, v) for r in spec.rbac for v in r.verbs}
    by_ns = _grants_by_namespace(objs, sa, ns)
    assert set().union(*by_ns.values()) == want
    assert not any("*" in x for g in want for x in g)
    pol = _deploy_policy()
    if spec.mutating:
        assert "*" not in by_ns, f"{fn} holds cluster-wide rights: {by_ns.get('*')}"
        expected = set(pol.namespaces.allow) | ({"flux-system"} if fn in pol.namespaces.harmless else set())
        expected -= set(pol.namespaces.deny)
        if fn not in pol.namespaces.harmless:
            expected -= set(pol.namespaces.deny_mutating)
        assert set(by_ns) == expected
        for grants in by_ns.values():
            assert grants == want
        assert "kube-system" not in by_ns
    else:
        assert set(by_ns) == {"*"}
        assert not {v for _, _, v in want} - {"get", "list", "watch"}
        assert not {res for _, res, _ in want} & {"secrets", "configmaps"}


def test_write_rights_only_where_the_gate_would_act():
    """Cross-check with the gate itself: in every namespace where a function's ServiceAccount may
    write, the deploy policy lets that function act (and nowhere the gate refuses it on namespace)."""
    from agent_sre.alerts import Alert
    from agent_sre.decision import Method, validated
    from agent_sre.gate import Gate

    objs = render(DEPLOY / "overlays" / "cpu")
    gate = Gate(policy=_deploy_policy())
    candidates = {"default", "media", "monitoring", "flux-system", "kube-system", "kube-public", "knative-serving",
                  "knative-eventing", "somewhere-else"}
    for spec in catalog.specs():
        if not spec.mutating:
            continue
        by_ns = _grants_by_namespace(objs, spec.name, "agent-sre")
        for ns in candidates:
            params = {"name": "x", "namespace": ns, **({"type": "pod"} if spec.name == "pod-restart" else {})}
            labels = {"alertname": "Probe", "namespace": ns, "pod": "x", "name": "x",
                      "kind": spec.kind or "Pod", "exported_namespace": ns}
            decision = validated(spec.name, params, method=Method.STATIC, reasoning="probe", confidence=1.0)
            verdict = gate.check(Alert(labels=labels), decision)
            assert verdict.code != "target", verdict.reason  # the probe reaches the namespace rules
            if ns in by_ns:
                assert verdict.code != "namespace", (spec.name, ns, verdict.reason)


def test_agent_and_reasoning_hold_no_cluster_rights():
    objs = render(DEPLOY / "overlays" / "cpu")
    svcs = ksvcs(objs)
    for name in ("agent-sre", "trm-reasoning"):
        ps = svcs[name]["spec"]["template"]["spec"]
        sa = ps["serviceAccountName"]
        assert sa not in catalog.function_names()
        assert _granted(objs, sa, "agent-sre") == set(), name
        assert ps.get("automountServiceAccountToken") is False
        sa_obj = next(o for o in objs if o["kind"] == "ServiceAccount" and o["metadata"]["name"] == sa)
        assert sa_obj.get("automountServiceAccountToken") is False
    # Every binding in deploy/ is a function's.
    for b in objs:
        if b["kind"].endswith("RoleBinding"):
            assert {s["name"] for s in b["subjects"]} <= set(catalog.function_names()), b["metadata"]["name"]


def test_policy_configmap():
    objs = render(DEPLOY / "overlays" / "cpu")
    cm = next(o for o in objs if o["kind"] == "ConfigMap" and o["metadata"]["name"] == "agent-sre-policy")
    from agent_sre import policy as policy_mod

    pol = policy_mod.parse(cm["data"]["policy.yaml"], "deploy policy ConfigMap")  # the gate's own loader
    assert pol.mode == "dry_run"
    assert {"kube-system", "flux-system"} <= set(pol.namespaces.deny_mutating)
    assert "pod-restart" not in pol.namespaces.harmless
    assert pol.cooldown("pod-restart") > 0 and pol.budget.global_per_hour > 0
    agent = ksvcs(objs)["agent-sre"]
    mounts = {m["name"]: m["mountPath"] for m in container(agent)["volumeMounts"]}
    vols = {v["name"]: v for v in agent["spec"]["template"]["spec"]["volumes"]}
    pol_vol = next(n for n, v in vols.items() if v.get("configMap", {}).get("name") == "agent-sre-policy")
    assert env(agent)["POLICY_PATH"] == f"{mounts[pol_vol]}/policy.yaml"


def test_prometheusrule_matches_rules_dir_and_generated_files_are_current():
    out = subprocess.run([sys.executable, str(DEPLOY / "generate.py"), "--check"], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    pr = by_kind(render(DEPLOY / "overlays" / "cpu"), "PrometheusRule")
    assert len(pr) == 1
    groups = [g for p in sorted((REPO / "rules").glob("*.yaml")) for g in yaml.safe_load(p.read_text())["groups"]]
    assert pr[0]["spec"]["groups"] == groups


def test_flux_objects_point_at_an_overlay():
    objs = render(DEPLOY / "flux")
    ks = by_kind(objs, "Kustomization", "kustomize.toolkit.fluxcd.io/")
    assert ks
    for k in ks:
        path = REPO / k["spec"]["path"]
        assert path.resolve() in {p.resolve() for p in TOP}, k["spec"]["path"]
        assert k["spec"]["prune"] is True
        src = k["spec"]["sourceRef"]
        assert any(o["kind"] == src["kind"] and o["metadata"]["name"] == src["name"] for o in objs)
