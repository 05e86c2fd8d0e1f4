"""The remediation functions' CloudEvents HTTP app (one app, one or all functions).

    FUNCTION=pod-restart uvicorn agent_sre.functions.app:app     # serve one function
    uvicorn agent_sre.functions.app:app                          # serve all (FUNCTION unset)

POST / takes a ``io.homelab.agent-sre.lambda.trigger`` CloudEvent (binary or structured mode) and
answers 200 with the result event in binary mode (Knative reply semantics); the result is also
POSTed to ``K_SINK`` (Knative SinkBinding) or ``RESULT_SINK`` when set.  Malformed events, other
types, unknown or not-served functions and invalid parameters are refused with 4xx and a reason.
Query parameters ``with_source`` / ``force`` override the Flux settings per subscription.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import httpx
from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from .. import catalog
from . import metrics
from .registry import handlers, parse_bool
from .results import TRIGGER, from_http, result_event, to_binary
from .runner import Runner

log = logging.getLogger(__name__)


def _reject(status: int, reason: str, message: str) -> JSONResponse:
    metrics.REJECTED.labels(reason).inc()
    return JSONResponse({"error": reason, "message": message}, status_code=status)


def create_app(function: str | None = None, *, runner: Runner | None = None, sink: str | None = None) -> FastAPI:
    function = function if function is not None else (os.environ.get("FUNCTION") or None)
    if function is not None:
        catalog.get(function)  # fail at start-up on a name the catalog does not declare
    served = [function] if function else sorted(handlers())
    sink = sink if sink is not None else (os.environ.get("K_SINK") or os.environ.get("RESULT_SINK") or None)
    app = FastAPI(title="agent-sre remediation functions", version="0.1.0")
    app.state.runner = runner
    app.state.served = served
    app.state.sink = sink

    def get_runner() -> Runner:
        if app.state.runner is None:
            app.state.runner = Runner.from_env()
        return app.state.runner

    @app.get("/healthz")
    def healthz() -> dict[str, Any]:
        return {"status": "ok"}

    @app.get("/readyz")
    def readyz() -> JSONResponse:
        r = get_runner()
        mode = r.cluster_mode()
        ready = mode == "cluster" or r.settings.dry_run
        body = {"ready": ready, "functions": served, "cluster": mode, "dry_run": r.settings.dry_run}
        if not ready:
            body["reason"] = "no Kubernetes API configured and DRY_RUN=false"
        return JSONResponse(body, status_code=200 if ready else 503)

    @app.get("/metrics")
    def prom() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    @app.post("/")
    async def receive(request: Request) -> Response:
        body = await request.body()
        try:
            event = from_http(dict(request.headers), body)
        except Exception as e:  # the SDK raises several types; all mean "not a CloudEvent"
            return _reject(400, "malformed", f"not a valid CloudEvent: {e}")
        if event.get_type() != TRIGGER:
            return _reject(400, "wrong-type", f"expected type {TRIGGER}, got {event.get_type()!r}")
        data = event.get_data()
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
        correlation_id = attrs.get("correlationid") or data.get("correlation_id")
        r = get_runner()
        settings = r.settings.with_overrides(dict(request.query_params))
        # A trigger that does not say is treated as dry-run (the safe side).
        dry = data.get("dry_run")
        dry_run = True if dry is None else parse_bool(dry)
        try:
            result = await run_in_threadpool(
                r.run, name, params or {}, dry_run=dry_run, event_id=event.get_id(),
                correlation_id=correlation_id, settings=settings)
        except catalog.UnknownFunction as e:
            return _reject(404, "unknown-function", str(e))
        except catalog.InvalidParameters as e:
            return _reject(422, "invalid-parameters", str(e))
        reply = result_event(name, result, trigger_id=event.get_id(), correlation_id=correlation_id)
        headers, payload = to_binary(reply)
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


def __getattr__(name: str) -> Any:
    # `uvicorn agent_sre.functions.app:app` builds the app from the environment on first access.
    if name == "app":
        globals()["app"] = create_app()
        return globals()["app"]
    raise AttributeError(name)
