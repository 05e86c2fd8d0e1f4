"""The remediation catalog: one declaration per function, the single source of truth.

Each function is declared once, as a pydantic model of its parameters decorated with
``@remediation``.  That one declaration feeds:

* validation of every proposed decision (``validate_parameters``),
* the LLM's tool schemas (``tool_schemas``),
* the TRM's label space (``function_names`` / ``parameter_names`` / ``enum_slots``),
* the RBAC each function needs (``FunctionSpec.rbac``), checked against deploy/.

The implementations live in ``agent_sre.functions`` and attach to a spec by name; importing
this module never imports the Kubernetes client.
"""

from __future__ import annotations

import enum
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Literal, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model, model_validator

# RFC 1123 names (DNS subdomain for most objects, DNS label for namespaces).
K8S_NAME_RE = r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$"
K8S_NAMESPACE_RE = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"
# A conservative equality-based label selector: key=value[,key=value...] (also ==, !=).
_LABEL_KEY = r"([a-z0-9A-Z]([-a-z0-9A-Z_.]*[a-z0-9A-Z])?/)?[a-z0-9A-Z]([-a-z0-9A-Z_.]{0,61}[a-z0-9A-Z])?"
_LABEL_VAL = r"([a-z0-9A-Z]([-a-z0-9A-Z_.]{0,61}[a-z0-9A-Z])?)?"
K8S_SELECTOR_RE = rf"^{_LABEL_KEY}(==|!=|=){_LABEL_VAL}(,{_LABEL_KEY}(==|!=|=){_LABEL_VAL})*$"


class Risk(str, enum.Enum):
    READ_ONLY = "read-only"
    MUTATING = "mutating"


@dataclass(frozen=True)
class RBACRule:
    """One Kubernetes RBAC rule a function needs (what deploy/ must grant, no more)."""

    api_group: str
    resource: str
    verbs: tuple[str, ...]


class Params(BaseModel):
    """Base of every parameter model: strict, no unknown keys, no coercion surprises."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, frozen=True)


@dataclass(frozen=True)
class FunctionSpec:
    name: str
    description: str
    risk: Risk
    params: type[Params]
    rbac: tuple[RBACRule, ...] = ()
    # Which parameters name the object acted on (used by the gate: the target must appear in the alert).
    target_keys: tuple[str, ...] = ("name", "namespace")
    # The Kubernetes kind acted on (Flux functions: the alert's ``kind`` label must agree), and the
    # label keys that can name it, per value of ``type`` (None: any). The gate uses these to refuse a
    # model that copies the right string from the wrong label (a HelmRelease's name as a pod name).
    kind: str | None = None
    name_labels: dict[str | None, tuple[str, ...]] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def labels_for_name(self, params: dict[str, Any]) -> tuple[str, ...] | None:
        """Label-key fragments that may hold ``params['name']``; None when not constrained."""
        if not self.name_labels:
            return None
        return self.name_labels.get(params.get("type"), self.name_labels.get(None))

    @property
    def mutating(self) -> bool:
        return self.risk is Risk.MUTATING

    def json_schema(self) -> dict[str, Any]:
        return self.params.model_json_schema()

    def parameter_names(self) -> list[str]:
        return list(self.params.model_fields)

    def required_parameters(self) -> list[str]:
        return [k for k, f in self.params.model_fields.items() if f.is_required()]

    def enums(self) -> dict[str, tuple[str, ...]]:
        """Parameters with a closed set of values (e.g. pod-restart ``type``)."""
        out: dict[str, tuple[str, ...]] = {}
        for k, f in self.params.model_fields.items():
            if get_origin(f.annotation) is Literal:
                out[k] = tuple(str(a) for a in get_args(f.annotation))
        return out

    def tool_schema(self) -> dict[str, Any]:
        """OpenAI/Ollama tool definition. Allowed values also go into descriptions: some
        renderers (Ollama's FunctionGemma template among them) drop ``enum``."""
        schema = self.json_schema()
        props: dict[str, Any] = {}
        for k, p in schema.get("properties", {}).items():
            desc = p.get("description", k)
            prop: dict[str, Any] = {"type": "string", "description": desc}
            if "enum" in p:
                prop["enum"] = list(p["enum"])
                prop["description"] = f"{desc}. One of: {', '.join(map(str, p['enum']))}"
            props[k] = prop
        risk = "read-only" if not self.mutating else "changes the cluster"
        return {
            "type": "function",
            "function": {
                "name": self.name,
                "description": f"{self.description} ({risk})",
                "parameters": {"type": "object", "properties": props, "required": self.required_parameters()},
            },
        }


_REGISTRY: dict[str, FunctionSpec] = {}


def remediation(
    name: str,
    *,
    description: str,
    risk: Risk,
    rbac: tuple[RBACRule, ...] = (),
    target_keys: tuple[str, ...] = ("name", "namespace"),
    kind: str | None = None,
    name_labels: dict[str | None, tuple[str, ...]] | None = None,
):
    """Class decorator: declare a remediation function by its parameter model."""

    def wrap(cls: type[Params]) -> type[Params]:
        if name in _REGISTRY:
            raise ValueError(f"remediation {name!r} declared twice")
        _REGISTRY[name] = FunctionSpec(name, description, risk, cls, rbac, target_keys, kind, dict(name_labels or {}))
        cls.function_name = name  # type: ignore[attr-defined]
        return cls

    return wrap


# --------------------------------------------------------------------------- declarations

# Label keys that name a Flux object: plain `name` (gotk_* metrics), kube-state-metrics' custom
# resource state (`customresource_name`), and keys named after the kind.
_FLUX_NAME_LABELS = ("name", "customresource_name", "exported_name")

_FLUX_NOTE = "Like `flux reconcile`: sets the reconcile.fluxcd.io/requestedAt annotation; suspended objects are left alone."


def _flux_reconcile(kind: str, what: str, rbac: tuple[RBACRule, ...], labels: tuple[str, ...]) -> type[Params]:
    """Declare ``flux-reconcile-<kind>``: every Flux kind takes the object's name and namespace."""
    params = create_model(
        f"FluxReconcile{kind}", __base__=Params,
        name=(str, Field(pattern=K8S_NAME_RE, max_length=253, description=f"{kind} name")),
        namespace=(str, Field(pattern=K8S_NAMESPACE_RE, max_length=63, description=f"namespace of the {kind}")),
    )
    return remediation(f"flux-reconcile-{kind.lower()}", description=f"{what} {_FLUX_NOTE}", risk=Risk.MUTATING,
                       rbac=rbac, kind=kind, name_labels={None: _FLUX_NAME_LABELS + labels})(params)


def _get_patch(group: str, *plurals: str) -> tuple[RBACRule, ...]:
    return tuple(RBACRule(group, p, ("get", "patch")) for p in plurals)


FluxReconcileKustomization = _flux_reconcile(
    "Kustomization", "Ask Flux to reconcile a Kustomization now.",
    _get_patch("kustomize.toolkit.fluxcd.io", "kustomizations")
    + _get_patch("source.toolkit.fluxcd.io", "gitrepositories", "ocirepositories", "buckets"),
    ("kustomization",))
FluxReconcileGitRepository = _flux_reconcile(
    "GitRepository", "Ask Flux to fetch a GitRepository source again now.",
    _get_patch("source.toolkit.fluxcd.io", "gitrepositories"),
    ("gitrepository", "repository", "source"))
FluxReconcileHelmRelease = _flux_reconcile(
    "HelmRelease", "Ask Flux to reconcile a HelmRelease now.",
    _get_patch("helm.toolkit.fluxcd.io", "helmreleases")
    + _get_patch("source.toolkit.fluxcd.io", "helmrepositories", "helmcharts", "ocirepositories", "gitrepositories"),
    ("helmrelease", "release"))


@remediation(
    "pod-restart",
    description="Restart a workload: delete a controller-owned pod (normal grace period; bare pods are refused) "
    "or roll out a deployment/statefulset/daemonset like `kubectl rollout restart`.",
    risk=Risk.MUTATING,
    rbac=(RBACRule("", "pods", ("get", "delete")),
          RBACRule("apps", "replicasets", ("get",)),
          RBACRule("apps", "deployments", ("get", "patch")),
          RBACRule("apps", "statefulsets", ("get", "patch")),
          RBACRule("apps", "daemonsets", ("get", "patch"))),
    name_labels={"pod": ("pod",), "deployment": ("deployment", "workload", "owner_name"),
                 "statefulset": ("statefulset", "workload", "owner_name"),
                 "daemonset": ("daemonset", "workload", "owner_name")},
)
class PodRestart(Params):
    name: str = Field(pattern=K8S_NAME_RE, max_length=253, description="pod or workload name")
    namespace: str = Field(pattern=K8S_NAMESPACE_RE, max_length=63, description="namespace of the pod or workload")
    type: Literal["pod", "deployment", "statefulset", "daemonset"] = Field(
        default="pod", description="kind of object named by `name`"
    )


@remediation(
    "pod-check-status",
    description="Read-only: report phase, readiness, restarts, waiting/terminated reasons and recent events "
    "of the pods matching a selector or a name; says whether they are healthy.",
    risk=Risk.READ_ONLY,
    rbac=(RBACRule("", "pods", ("get", "list")), RBACRule("", "events", ("list",))),
    target_keys=("namespace", "name", "selector"),
    name_labels={None: ("pod",)},
)
class PodCheckStatus(Params):
    namespace: str = Field(pattern=K8S_NAMESPACE_RE, max_length=63, description="namespace of the pods")
    selector: str | None = Field(default=None, pattern=K8S_SELECTOR_RE, max_length=512,
                                 description="label selector, e.g. app.kubernetes.io/name=prometheus")
    name: str | None = Field(default=None, pattern=K8S_NAME_RE, max_length=253, description="pod name")

    @model_validator(mode="after")
    def _one_target(self) -> "PodCheckStatus":
        if self.selector and self.name:
            raise ValueError("give either selector or name, not both")
        return self


@remediation(
    "check-pvc-status",
    description="Read-only: report a PersistentVolumeClaim's phase, capacity, storage class, whether it can "
    "expand, and its usage from Prometheus when available.",
    risk=Risk.READ_ONLY,
    rbac=(RBACRule("", "persistentvolumeclaims", ("get",)),
          RBACRule("storage.k8s.io", "storageclasses", ("get",))),
    kind="PersistentVolumeClaim",
    name_labels={None: ("persistentvolumeclaim", "pvc", "claim", "volume")},
)
class CheckPVCStatus(Params):
    name: str = Field(pattern=K8S_NAME_RE, max_length=253, description="PersistentVolumeClaim name")
    namespace: str = Field(pattern=K8S_NAMESPACE_RE, max_length=63, description="namespace of the claim")


# --------------------------------------------------------------------------- queries


class UnknownFunction(ValueError):
    pass


def get(name: str) -> FunctionSpec:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UnknownFunction(f"unknown remediation function {name!r}; known: {', '.join(_REGISTRY)}") from None


def specs() -> list[FunctionSpec]:
    return list(_REGISTRY.values())


def function_names() -> list[str]:
    return list(_REGISTRY)


def parameter_names() -> list[str]:
    """Every parameter name across the catalog, in a stable order (TRM label space)."""
    seen: dict[str, None] = {}
    for s in _REGISTRY.values():
        for k in s.parameter_names():
            seen.setdefault(k, None)
    return list(seen)


def enum_slots() -> list[tuple[str, str, tuple[str, ...]]]:
    """(function, parameter, allowed values) for every enumerated parameter."""
    return [(s.name, k, v) for s in _REGISTRY.values() for k, v in s.enums().items()]


def tool_schemas() -> list[dict[str, Any]]:
    return [s.tool_schema() for s in _REGISTRY.values()]


def catalog_hash() -> str:
    """Stable hash of the label space; a trained model records it and refuses a different catalog."""
    doc = [(s.name, s.risk.value, s.json_schema()) for s in _REGISTRY.values()]
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:16]


class InvalidParameters(ValueError):
    pass


def validate_parameters(function: str, parameters: dict[str, Any]) -> dict[str, Any]:
    """Validate and normalise parameters for ``function``; raise with a readable reason."""
    spec = get(function)
    if not isinstance(parameters, dict):
        raise InvalidParameters(f"{function}: parameters must be an object, got {type(parameters).__name__}")
    clean = {k: (str(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else v)
             for k, v in parameters.items() if v is not None and v != ""}
    try:
        model = spec.params.model_validate(clean)
    except ValidationError as e:
        reasons = "; ".join(f"{'.'.join(map(str, err['loc'])) or 'parameters'}: {err['msg']}" for err in e.errors())
        raise InvalidParameters(f"{function}: {reasons}") from None
    return {k: v for k, v in model.model_dump().items() if v is not None}
