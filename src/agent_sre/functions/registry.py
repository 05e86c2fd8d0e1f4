"""Implementations attach to the catalog by name.

    @handler("pod-restart")
    def pod_restart(params: catalog.PodRestart, ctx: Context) -> Result: ...

The catalog stays the one declaration of each function (parameter model, risk, RBAC, tool
schema); this module only maps a catalog name to the code that carries it out, and refuses a
handler for a name the catalog does not declare. It never imports the handler modules: they
register themselves when imported, and the ``agent_sre.functions`` package imports them all.
"""

from __future__ import annotations

import datetime as _dt
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Literal

from .. import catalog
from ..settings import FunctionSettings

if TYPE_CHECKING:  # the Kubernetes client is only imported where it is used
    from .kube import Kube

Status = Literal["success", "error", "noop", "refused"]
OK_STATUSES = ("success", "noop")


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
    """What a handler may use: the cluster (``kube``), the dry-run flag, the clock and settings
    (they tune *how* a function acts, never *what* it acts on: that is the catalog's parameters)."""

    kube: "Kube"
    dry_run: bool
    settings: FunctionSettings = field(default_factory=FunctionSettings)
    clock: Callable[[], _dt.datetime] = utcnow
    sleep: Callable[[float], None] = time.sleep
    monotonic: Callable[[], float] = time.monotonic
    event_id: str | None = None
    correlation_id: str | None = None

    @property
    def offline(self) -> bool:
        """No cluster configured: dry-run only, preconditions cannot be checked."""
        return self.kube.offline


def watch(ctx: Context, look: Callable[[], tuple[bool | None, str]]) -> dict[str, Any]:
    """Verify the target after acting: poll ``look() -> (ok, what was seen)`` every
    ``VERIFY_POLL_SECONDS`` until it says True, for at most ``VERIFY_WAIT_SECONDS``. The last look
    decides: ``{"ok": True}`` recovered, ``{"ok": False}`` seen not recovering, ``{"ok": None}``
    not confirmed in time. Reported in the result as ``details.verification``."""
    s = ctx.settings
    t0 = ctx.monotonic()
    deadline = t0 + max(0.0, s.verify_wait_seconds)
    while True:
        ok, seen = look()
        if ok or ctx.monotonic() >= deadline:
            return {"ok": ok, "observed": seen, "waited_seconds": round(ctx.monotonic() - t0, 3)}
        ctx.sleep(max(0.01, min(s.verify_poll_seconds, deadline - ctx.monotonic())))


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


def get_handler(name: str) -> Handler:
    catalog.get(name)  # UnknownFunction first: the catalog is the authority on names
    try:
        return _HANDLERS[name]
    except KeyError:
        raise catalog.UnknownFunction(f"remediation {name!r} is declared but has no implementation") from None


def handlers() -> dict[str, Handler]:
    """The handlers registered so far (the ``agent_sre.functions`` package imports them all)."""
    return dict(_HANDLERS)
