"""Implementations attach to the catalog by name.

    @handler("pod-restart")
    def pod_restart(params: catalog.PodRestart, ctx: Context) -> Result: ...

The catalog stays the one declaration of each function (parameter model, risk, RBAC, tool
schema); this module only maps a catalog name to the code that carries it out, and refuses a
handler for a name the catalog does not declare.
"""

from __future__ import annotations

import datetime as _dt
import os
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Literal

from .. import catalog

if TYPE_CHECKING:  # the Kubernetes client is only imported where it is used
    from .kube import Kube

Status = Literal["success", "error", "noop", "refused"]
OK_STATUSES = ("success", "noop")


def _env_bool(name: str, default: bool) -> bool:
    v = os.environ.get(name)
    if v is None or v.strip() == "":
        return default
    return v.strip().lower() in ("1", "true", "yes", "on")


def parse_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in ("1", "true", "yes", "on")


@dataclass(frozen=True)
class Settings:
    """Function settings: environment, optionally overridden per request (query string).

    They tune *how* a function acts, never *what* it acts on (that is the catalog's parameters).
    """

    dry_run: bool = True  # DRY_RUN, default true: nothing is written unless DRY_RUN=false
    flux_with_source: bool = False  # FLUX_WITH_SOURCE: reconcile the source first
    flux_force: bool = False  # FLUX_FORCE: HelmRelease only, also set reconcile.fluxcd.io/forceAt
    flux_wait_seconds: float = 30.0  # FLUX_WAIT_SECONDS: how long to watch Ready after the request
    flux_poll_seconds: float = 2.0  # FLUX_POLL_SECONDS
    prometheus_url: str | None = None  # PROMETHEUS_URL
    prometheus_timeout: float = 5.0  # PROMETHEUS_TIMEOUT
    pvc_usage_threshold: float = 0.85  # PVC_USAGE_THRESHOLD: above it the claim is reported unhealthy
    events_per_pod: int = 5  # POD_EVENTS: recent events reported per pod
    kube_timeout: float = 10.0  # KUBE_TIMEOUT: seconds per Kubernetes API request

    @classmethod
    def from_env(cls) -> "Settings":
        e = os.environ.get
        return cls(
            dry_run=_env_bool("DRY_RUN", True),
            flux_with_source=_env_bool("FLUX_WITH_SOURCE", False),
            flux_force=_env_bool("FLUX_FORCE", False),
            flux_wait_seconds=float(e("FLUX_WAIT_SECONDS") or 30.0),
            flux_poll_seconds=float(e("FLUX_POLL_SECONDS") or 2.0),
            prometheus_url=(e("PROMETHEUS_URL") or None),
            prometheus_timeout=float(e("PROMETHEUS_TIMEOUT") or 5.0),
            pvc_usage_threshold=float(e("PVC_USAGE_THRESHOLD") or 0.85),
            events_per_pod=int(e("POD_EVENTS") or 5),
            kube_timeout=float(e("KUBE_TIMEOUT") or 10.0),
        )

    # Settings a caller may change per request (e.g. a Knative subscriber URI `...?with_source=true`).
    OVERRIDABLE = {"with_source": "flux_with_source", "force": "flux_force"}

    def with_overrides(self, query: dict[str, str]) -> "Settings":
        import dataclasses

        changes: dict[str, Any] = {}
        for key, attr in self.OVERRIDABLE.items():
            if key in query:
                changes[attr] = parse_bool(query[key])
        return dataclasses.replace(self, **changes) if changes else self


def utcnow() -> _dt.datetime:
    return _dt.datetime.now(_dt.timezone.utc)


def rfc3339(t: _dt.datetime, *, nanos: bool = True) -> str:
    """RFC 3339 in UTC with a Z suffix (microseconds kept when ``nanos``)."""
    t = t.astimezone(_dt.timezone.utc)
    if nanos:
        return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Context:
    """What a handler may use: the cluster (``kube``), the dry-run flag, the clock and settings."""

    kube: "Kube"
    dry_run: bool
    settings: Settings = field(default_factory=Settings)
    clock: Callable[[], _dt.datetime] = utcnow
    sleep: Callable[[float], None] = time.sleep
    monotonic: Callable[[], float] = time.monotonic
    event_id: str | None = None
    correlation_id: str | None = None

    @property
    def offline(self) -> bool:
        """No cluster configured: dry-run only, preconditions cannot be checked."""
        return self.kube.offline


@dataclass
class Result:
    status: Status
    message: str
    target: dict[str, Any] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)
    action: str = ""

    @property
    def ok(self) -> bool:
        return self.status in OK_STATUSES


HandlerFn = Callable[[Any, Context], Result]


@dataclass(frozen=True)
class Handler:
    spec: catalog.FunctionSpec
    fn: HandlerFn
    action: str


_HANDLERS: dict[str, Handler] = {}


def handler(name: str, *, action: str | None = None) -> Callable[[HandlerFn], HandlerFn]:
    """Attach ``fn`` to the catalog function ``name`` (which must be declared there)."""
    spec = catalog.get(name)  # raises UnknownFunction for a name the catalog does not declare

    def wrap(fn: HandlerFn) -> HandlerFn:
        if name in _HANDLERS and _HANDLERS[name].fn is not fn:
            raise ValueError(f"handler for {name!r} registered twice")
        _HANDLERS[name] = Handler(spec, fn, action or name)
        return fn

    return wrap


def _load_all() -> None:
    # Importing the implementation modules registers their handlers.
    from . import flux, pods, pvc  # noqa: F401


def get_handler(name: str) -> Handler:
    _load_all()
    catalog.get(name)  # UnknownFunction first: the catalog is the authority on names
    try:
        return _HANDLERS[name]
    except KeyError:
        raise catalog.UnknownFunction(f"remediation {name!r} is declared but has no implementation") from None


def handlers() -> dict[str, Handler]:
    _load_all()
    return dict(_HANDLERS)
