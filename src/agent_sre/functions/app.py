"""The remediation functions' CloudEvents HTTP app (one app, one or all functions).

    agent-sre serve-function                                     # all (FUNCTION unset)
    FUNCTION=pod-restart uvicorn agent_sre.functions.app:app     # one function

POST / takes a ``io.homelab.agent-sre.lambda.trigger`` CloudEvent (binary or structured mode) and
answers 200 with the result event in binary mode (Knative reply semantics); the result is also
POSTed to ``K_SINK`` (Knative SinkBinding) or ``RESULT_SINK`` when set.  Malformed events, other
types, unknown or not-served functions, invalid parameters and a ``dry_run`` that is not a
boolean are refused with 4xx and a reason.  Query parameters ``with_source`` / ``force``
override the Flux settings per subscription.
"""

from __future__ import annotations

import logging
from typing import Any, Mapping

import httpx
from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from .. import catalog, ce
from ..events import TRIGGER, result_event
from ..http_body import BodyTooLarge, read_body
from ..settings import FunctionSettings, ServerSettings, SettingsError, load, parse_flag
from . import metrics
from .registry import handlers
from .runner import Runner

log = logging.getLogger(__name__)

# Settings a request may change (a Knative subscriber URI `...?with_source=true`): query key → setting.
OVERRIDABLE = {"with_source": "flux_with_source", "force": "flux_force"}


def with_overrides(settings: FunctionSettings, query: Mapping[str, str]) -> FunctionSettings:
    """``settings`` with the OVERRIDABLE ones the query names; SettingsError for a non-boolean."""
    changes = {attr: parse_flag(query[key], key) for key, attr in OVERRIDABLE.items() if key in query}
    return settings.model_copy(update=changes) if changes else settings


def _reject(status: int, reason: str, message: str) -> JSONResponse:
    metrics.REJECTED.labels(reason).inc()
    return JSONResponse({"error": reason, "message": message}, status_code=status)


def create_app(function: str | None = None, *, runner: Runner | None = None, sink: str | None = None,
               max_body: int | None = None) -> FastAPI:
    """Serve ``function`` (None: every one), acting through ``runner`` (default: from the settings),
    posting results to ``sink`` too when set; bodies over ``max_body`` bytes get 413."""
    if function is not None:
        catalog.get(function)  # fail at start-up on a name the catalog does not declare
    served = [function] if function else sorted(handlers())
    runner = runner or Runner.from_env()
    max_body = max_body or ServerSettings().max_body_bytes
    app = FastAPI(title="agent-sre remediation functions", version="0.1.0")
    app.state.runner = runner
    app.state.served = served
    app.state.sink = sink

    @app.get("/healthz")
    def healthz() -> dict[str, Any]:
        return {"status": "ok"}

    @app.get("/readyz")
    def readyz() -> JSONResponse:
        mode = runner.cluster_mode()
        ready = mode == "cluster" or runner.settings.dry_run
        body = {"ready": ready, "functions": served, "cluster": mode, "dry_run": runner.settings.dry_run}
        if not ready:
            body["reason"] = "no Kubernetes API configured and DRY_RUN=false"
        return JSONResponse(body, status_code=200 if ready else 503)

    @app.get("/metrics")
    def prom() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    @app.post("/")
    async def receive(request: Request) -> Response:
        try:
            body = await read_body(request, max_body)
        except BodyTooLarge as e:
            return _reject(413, "too-large", str(e))
        try:
            event = ce.from_http(dict(request.headers), body)
            data = ce.data_of(event)
        except ce.CloudEventError as e:
            return _reject(400, "malformed", str(e))
        if event.get_type() != TRIGGER:
            return _reject(400, "wrong-type", f"expected type {TRIGGER}, got {event.get_type()!r}")
        if not isinstance(data, dict):
            return _reject(400, "malformed", "trigger data must be a JSON object")
        attrs = event.get_attributes()
        name = data.get("lambda_function") or attrs.get("lambdafunction")
        ext = attrs.get("lambdafunction")
        if ext and data.get("lambda_function") and ext != data["lambda_function"]:
            return _reject(400, "malformed", f"extension lambdafunction={ext!r} disagrees with "
                           f"data.lambda_function={data['lambda_function']!r}")
        if not name or name not in served:
            why = "no lambda_function given" if not name else (
                f"unknown function {name!r}" if name not in catalog.function_names()
                else f"this service serves only {', '.join(served)}")
            return _reject(404, "unknown-function", why)
        params = data.get("parameters")
        if params is not None and not isinstance(params, dict):
            return _reject(422, "invalid-parameters", "parameters must be a JSON object")
        try:
            settings = with_overrides(runner.settings, request.query_params)
            # A trigger that does not say is treated as dry-run (the safe side); one that says
            # something other than a boolean is refused, never executed.
            dry_run = True if data.get("dry_run") is None else parse_flag(data["dry_run"], "dry_run")
        except SettingsError as e:
            return _reject(400, "malformed", str(e))
        try:
            result = await run_in_threadpool(
                runner.run, name, params or {}, dry_run=dry_run, event_id=event.get_id(),
                correlation_id=attrs.get("correlationid") or data.get("correlation_id"), settings=settings)
        except catalog.UnknownFunction as e:
            return _reject(404, "unknown-function", str(e))
        except catalog.InvalidParameters as e:
            return _reject(422, "invalid-parameters", str(e))
        headers, payload = ce.to_binary(result_event(event, result))
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
    """``agent-sre serve-function``'s app from the settings; SettingsError names one that cannot be used."""
    server, fs = load(ServerSettings, env), load(FunctionSettings, env)
    return create_app(fs.function, runner=Runner.from_env(env), sink=fs.k_sink or fs.result_sink,
                      max_body=server.max_body_bytes)


def __getattr__(name: str) -> Any:
    # `uvicorn agent_sre.functions.app:app` builds the app from the settings on first access.
    if name == "app":
        globals()["app"] = app_from_env()
        return globals()["app"]
    raise AttributeError(name)
