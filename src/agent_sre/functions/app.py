"""The remediation functions' CloudEvents HTTP app (one app, one or all functions).

    agent-sre serve-function                                     # all (FUNCTION unset)
    FUNCTION=pod-restart uvicorn agent_sre.functions.app:app     # one function

POST / takes a signed ``io.homelab.agent-sre.lambda.trigger`` CloudEvent (binary or structured
mode) and answers 200 with the signed result event in binary mode (Knative reply semantics); the
result is also POSTed to ``K_SINK`` (Knative SinkBinding) or ``RESULT_SINK`` when set. What a
trigger must pass is ``receive.Receiver``'s: 401 when it is not signed by the agent, 403 when it
is stale, replayed or not allowed by the policy, 4xx with the reason for anything malformed.
Query parameters ``with_source`` / ``force`` override the Flux settings per subscription.

Without keys (``FUNCTION_SIGNING_KEY``, ``AGENT_PUBLIC_KEYS``) and ``STATE_DIR`` the service
does not start, unless ``FUNCTION_LOCAL_MODE=dry-run-only`` says it may only ever dry-run.
"""

from __future__ import annotations

import logging
from typing import Any, Mapping

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.concurrency import run_in_threadpool

from .. import catalog, ce
from .. import policy as policy_mod
from ..audit import Audit, load_key
from ..http_body import BodyError, read_body
from ..settings import FunctionKeySettings, FunctionSettings, ServerSettings, SettingsError, load, parse_flag
from ..signing import FUTURE_SKEW_S, Refused, Trust, key_setting, ring_setting
from . import metrics
from .receive import Receiver
from .registry import handlers
from .runner import Runner

log = logging.getLogger(__name__)

MAX_BODY = 1 << 20  # a trigger is a few hundred bytes; MAX_BODY_BYTES overrides

# Settings a request may change (a Knative subscriber URI `...?with_source=true`): query key → setting.
OVERRIDABLE = {"with_source": "flux_with_source", "force": "flux_force"}


def with_overrides(settings: FunctionSettings, query: Mapping[str, str]) -> FunctionSettings:
    """``settings`` with the OVERRIDABLE ones the query names; SettingsError for a non-boolean."""
    changes = {attr: parse_flag(query[key], key) for key, attr in OVERRIDABLE.items() if key in query}
    return settings.model_copy(update=changes) if changes else settings


def _reject(status: int, reason: str, message: str) -> JSONResponse:
    metrics.REJECTED.labels(reason).inc()
    return JSONResponse({"error": reason, "message": message}, status_code=status)


def create_app(function: str | None = None, *, trust: Trust | None, runner: Runner | None = None,
               sink: str | None = None, max_body: int | None = None, read_timeout: float | None = None,
               policy: policy_mod.Policy | None = None, audit: Audit | None = None,
               dry_run_only: bool = False) -> FastAPI:
    """Serve ``function`` (None: every one), acting through ``runner`` (default: from the settings)
    on triggers ``trust`` verifies (None: unsigned accepted, only with ``dry_run_only``), under
    ``policy`` (default: the runner's POLICY_PATH and DRY_RUN), posting results to ``sink`` too
    when set; bodies over ``max_body`` bytes get 413, bodies not in within ``read_timeout`` seconds
    408 (both default to the settings)."""
    if function is not None:
        catalog.get(function)  # fail at start-up on a name the catalog does not declare
    served = [function] if function else sorted(handlers())
    runner = runner or Runner.from_env()
    if policy is None:
        policy = policy_mod.load(runner.settings.policy_path, dry_run=runner.settings.dry_run)
    receiver = Receiver(runner, trust=trust, policy=policy, served=served, audit=audit, dry_run_only=dry_run_only)
    max_body = max_body or ServerSettings().body_limit(MAX_BODY)
    read_timeout = read_timeout or ServerSettings().read_timeout_seconds
    app = FastAPI(title="agent-sre remediation functions", version="0.1.0")
    app.state.runner = runner
    app.state.receiver = receiver
    app.state.served = served
    app.state.sink = sink

    @app.get("/healthz")
    def healthz() -> dict[str, Any]:
        return {"status": "ok"}

    @app.get("/readyz")
    def readyz() -> JSONResponse:
        mode = runner.cluster_mode()
        dry = runner.settings.dry_run or dry_run_only
        ready = mode == "cluster" or dry
        body = {"ready": ready, "functions": served, "cluster": mode, "dry_run": dry,
                "signed": trust is not None}
        if not ready:
            body["reason"] = "no Kubernetes API configured and DRY_RUN=false"
        return JSONResponse(body, status_code=200 if ready else 503)

    @app.get("/metrics")
    def prom() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    @app.post("/")
    async def receive(request: Request) -> Response:
        try:
            body = await read_body(request, max_body, read_timeout)
        except BodyError as e:
            refused = _reject(e.status, "too-large" if e.status == 413 else "timeout", str(e))
            refused.headers.update(e.headers)
            return refused
        try:
            event = ce.from_http(dict(request.headers), body)
        except ce.CloudEventError as e:
            return _reject(400, "malformed", str(e))
        try:
            settings = with_overrides(runner.settings, request.query_params)
        except SettingsError as e:
            return _reject(400, "malformed", str(e))
        try:
            reply, _ = await run_in_threadpool(receiver.receive, event, settings)
        except Refused as e:  # counted by the receiver
            return JSONResponse({"error": e.reason, "message": e.message}, status_code=e.status)
        headers, payload = ce.to_binary(reply)
        if app.state.sink:
            await _post_sink(app.state.sink, headers, payload)
        return Response(content=payload, status_code=200, headers=headers)

    return app


async def _post_sink(url: str, headers: dict[str, str], body: bytes) -> None:
    try:
        async with httpx.AsyncClient(timeout=5.0) as client:
            r = await client.post(url, headers=headers, content=body)
        if r.status_code >= 300:
            metrics.SINK_ERRORS.inc()
            log.warning("result sink %s answered %s", url, r.status_code)
    except httpx.HTTPError as e:
        metrics.SINK_ERRORS.inc()
        log.warning("result sink %s unreachable: %s", url, e)


def app_from_env(env: Mapping[str, str] | None = None) -> FastAPI:
    """``agent-sre serve-function``'s app from the settings; SettingsError names one that cannot be
    used or a key that is missing."""
    server, fs, keys = load(ServerSettings, env), load(FunctionSettings, env), load(FunctionKeySettings, env)
    local = keys.function_local_mode == "dry-run-only"
    if local and not fs.dry_run:
        raise SettingsError("DRY_RUN=false contradicts FUNCTION_LOCAL_MODE=dry-run-only (the local mode serves "
                            "without keys and never writes): to act, give the keys (AGENT_PUBLIC_KEYS, "
                            "FUNCTION_SIGNING_KEY) instead of the local mode")
    if not local:
        for var, value, why in (
                ("AGENT_PUBLIC_KEYS", keys.agent_public_keys, "it verifies that a trigger comes from the agent"),
                ("FUNCTION_SIGNING_KEY", keys.function_signing_key, "it signs the result events"),
                ("STATE_DIR", fs.state_dir, "it remembers answered trigger ids there, across restarts")):
            if value is None:
                raise SettingsError(f"{var} is unset: serve-function needs it ({why}); or set "
                                    "FUNCTION_LOCAL_MODE=dry-run-only to serve without keys, in dry-run only")
    key = key_setting("FUNCTION_SIGNING_KEY", keys.function_signing_key) if keys.function_signing_key else None
    ring = ring_setting("AGENT_PUBLIC_KEYS", keys.agent_public_keys) if keys.agent_public_keys else None
    trust = Trust(key, ring, keys.trigger_max_age_s) if ring is not None else None
    if trust is None:
        log.warning("FUNCTION_LOCAL_MODE=dry-run-only without AGENT_PUBLIC_KEYS: unsigned triggers are "
                    "accepted and every run is a dry run")
    try:
        pol = policy_mod.load(fs.policy_path, dry_run=fs.dry_run)
    except (OSError, policy_mod.PolicyError) as e:
        raise SettingsError(f"POLICY_PATH={str(fs.policy_path)!r}: {e}") from None
    audit = None
    if fs.state_dir is not None:
        try:
            hmac_key = load_key(keys.audit_hmac_key) if keys.audit_hmac_key else None
        except (OSError, ValueError) as e:
            raise SettingsError(f"AUDIT_HMAC_KEY={str(keys.audit_hmac_key)!r}: {e}") from None
        audit = Audit(fs.state_dir / "functions-audit.jsonl", key=hmac_key, signer=key)
    runner = Runner.from_env(env, keep_s=keys.trigger_max_age_s + FUTURE_SKEW_S)
    return create_app(fs.function, trust=trust, runner=runner, sink=fs.k_sink or fs.result_sink,
                      max_body=server.body_limit(MAX_BODY), read_timeout=server.read_timeout_seconds, policy=pol,
                      audit=audit, dry_run_only=local)


def __getattr__(name: str) -> Any:
    # `uvicorn agent_sre.functions.app:app` builds the app from the settings on first access.
    if name == "app":
        globals()["app"] = app_from_env()
        return globals()["app"]
    raise AttributeError(name)
