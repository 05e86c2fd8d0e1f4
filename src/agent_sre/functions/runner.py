"""Run one remediation function: validate, dedupe by trigger id, act, describe the outcome."""

from __future__ import annotations

import functools
import logging
import threading
import time
import zlib
from typing import Any, Callable, Mapping

from .. import catalog
from ..settings import FunctionSettings, load
from . import metrics
from .kube import Kube, KubeError, NoCluster, load_api_client
from .registry import Context, Result, get_handler, utcnow
from .store import MemoryStore, ResultStore, open_store

log = logging.getLogger(__name__)

_UNSET: Any = object()


class IdReused(ValueError):
    """A trigger id already answered, now arriving with other content (not a redelivery)."""


class Runner:
    """Holds what outlives one call: settings, the API client, the idempotency store."""

    def __init__(
        self,
        settings: FunctionSettings | None = None,
        *,
        api_client: Any = _UNSET,
        store: ResultStore | None = None,
        clock: Callable[[], Any] = utcnow,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.settings = settings or load(FunctionSettings)
        self._api_client = api_client
        self._api_error: str | None = None
        self.store = store if store is not None else MemoryStore()
        self.clock = clock
        self.sleep = sleep
        # Striped locks: two deliveries of one trigger id never run at once; memory stays bounded.
        self._locks = [threading.Lock() for _ in range(64)]

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, *, keep_s: float = 0.0) -> "Runner":
        """The runner the settings describe (``env``, default ``os.environ``), remembering trigger
        ids for at least ``keep_s`` seconds; SettingsError if a setting cannot be used."""
        settings = load(FunctionSettings, env)
        return cls(settings, store=open_store(settings, keep_s))

    # ------------------------------------------------------------------ cluster
    @property
    def api_client(self) -> Any:
        if self._api_client is _UNSET:
            try:
                self._api_client = load_api_client(self.settings.kubeconfig)
            except Exception as e:  # bad kubeconfig: report on every call, do not crash the app
                self._api_error = f"kubernetes configuration failed: {e}"
                self._api_client = None
        return self._api_client

    def cluster_mode(self) -> str:
        return "offline" if self.api_client is None else "cluster"

    # ------------------------------------------------------------------ run
    def _lock_for(self, key: str) -> threading.Lock:
        return self._locks[zlib.crc32(key.encode()) % len(self._locks)]

    def run(
        self,
        name: str,
        parameters: dict[str, Any] | None,
        *,
        dry_run: bool = True,
        event_id: str | None = None,
        correlation_id: str | None = None,
        settings: FunctionSettings | None = None,
        digest: str | None = None,
    ) -> dict[str, Any]:
        """Raises catalog.UnknownFunction / catalog.InvalidParameters before anything is done, and
        IdReused when ``event_id`` was answered for a trigger of another ``digest``; every other
        failure becomes a result with status ``error``. An id answered before gets that answer."""
        h = get_handler(name)
        clean = catalog.validate_parameters(name, parameters if parameters is not None else {})
        model = h.spec.params.model_validate(clean)
        effective_dry_run = bool(dry_run) or (settings or self.settings).dry_run
        if not event_id:
            return self._run(h, model, effective_dry_run, None, correlation_id, settings)
        with self._lock_for(event_id):
            seen = self.store.entry(event_id)
            if seen is not None:
                if digest and seen[1] and seen[1] != digest:
                    raise IdReused(f"trigger id {event_id} was answered before for other content")
                metrics.DUPLICATES.labels(name).inc()
                return seen[0]
            result = self._run(h, model, effective_dry_run, event_id, correlation_id, settings)
            # Errors are not remembered: a redelivery (Knative retry) gets another chance.
            if result["status"] != "error":
                self.store.put(event_id, result, digest)
            return result

    def _run(self, h: Any, model: Any, dry_run: bool, event_id: str | None, correlation_id: str | None,
             settings: FunctionSettings | None) -> dict[str, Any]:
        settings = settings or self.settings
        name = h.spec.name
        t0 = time.perf_counter()
        kube = Kube(self.api_client, dry_run=dry_run, timeout=settings.kube_timeout)
        ctx = Context(kube=kube, dry_run=dry_run, settings=settings, clock=self.clock, sleep=self.sleep,
                      event_id=event_id, correlation_id=correlation_id)
        target = {k: getattr(model, k) for k in ("namespace", "name") if getattr(model, k, None)}
        try:
            if kube.offline and not dry_run:
                why = self._api_error or "no Kubernetes API configured (not in a cluster and no KUBECONFIG)"
                res = Result("error", f"{why}; outside dry-run a cluster is required", target)
            elif kube.offline and self._api_error:
                res = Result("error", self._api_error, target)
            else:
                res = h.fn(model, ctx)
        except KubeError as e:
            hint = " (check the function's RBAC)" if e.status == 403 else ""
            what = "not found" if e.not_found else f"API error {e.status} {e.reason}"
            res = Result("error", f"{name}: {what}: {e.message}{hint}", target, {"api_status": e.status})
        except NoCluster as e:
            res = Result("error", str(e), target)
        except Exception as e:  # a function must answer, whatever happened
            log.exception("%s failed", name)
            res = Result("error", f"{name} failed: {type(e).__name__}: {e}", target)
        details = dict(res.details)
        if kube.requests:
            details["request"] = kube.requests[-1].doc()
            if len(kube.requests) > 1:
                details["requests"] = [r.doc() for r in kube.requests]
        out = {
            "function": name,
            "status": res.status,
            "action": res.action or h.action,
            "target": res.target or target,
            "message": res.message,
            "details": details,
            "dry_run": dry_run,
        }
        metrics.RESULTS.labels(name, res.status).inc()
        metrics.DURATION.labels(name).observe(time.perf_counter() - t0)
        return out


_default_lock = threading.Lock()


@functools.cache
def _runner_from_settings() -> Runner:
    return Runner.from_env()


def default_runner() -> Runner:
    """The in-process runner (``run_function``), built from the settings on first use (once, even
    when two threads ask at the same time: it holds the id store)."""
    with _default_lock:
        return _runner_from_settings()


def reset_default_runner() -> None:
    """Forget the in-process runner, so the next use reads the settings again."""
    _runner_from_settings.cache_clear()
