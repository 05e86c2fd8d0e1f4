"""The agent's HTTP service: Alertmanager webhooks and CloudEvents in, trigger CloudEvents out."""

from __future__ import annotations

import hmac
import logging
import os
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, generate_latest
from starlette.concurrency import run_in_threadpool

from . import ce
from .agent import Agent
from .alerts import ALERT_RESOLVED, ALERT_TYPES, IntakeError, parse_json_bytes, parse_payload, status_from_event_type
from .batching import IntakeBatcher
from .events import RESULT_TYPES

log = logging.getLogger(__name__)

MAX_BODY = int(os.environ.get("MAX_BODY_BYTES", str(1 << 20)))


def _bad(status: int, reason: str) -> JSONResponse:
    return JSONResponse({"error": reason}, status_code=status)


def create_app(agent: Agent, auth_token: str | None = None) -> FastAPI:
    """The HTTP service. ``auth_token``: when set, intake requests need ``Authorization: Bearer <token>``
    (Alertmanager: ``http_config.authorization.credentials``). With an outbox the agent's delivery
    worker runs for the app's lifetime; a 202 is only sent once the alerts are committed."""

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        agent.start()
        try:
            yield
        finally:
            agent.stop()

    app = FastAPI(title="agent-sre", version="0.1.0", lifespan=lifespan,
                  description="Alertmanager webhooks and CloudEvents in; remediation CloudEvents out.")
    registry = CollectorRegistry()
    received = Counter("agent_sre_alerts_received_total", "Alerts received", ["status"], registry=registry)
    decided = Counter("agent_sre_decisions_total", "Decisions", ["method", "function"], registry=registry)
    refused = Counter("agent_sre_intake_refused_total", "Requests refused", ["reason"], registry=registry)
    dead = Counter("agent_sre_dead_letters_total", "Events the broker dead-lettered", ["type"], registry=registry)
    app.state.agent = agent
    batcher = IntakeBatcher(agent.handle_alerts, concurrency=int(os.environ.get("INTAKE_CONCURRENCY", "2")))

    expected = f"Bearer {auth_token}".encode() if auth_token else None

    async def _read(request: Request, auth: bool = True) -> bytes | JSONResponse:
        if auth and expected is not None:
            given = request.headers.get("authorization", "")
            if not given:
                refused.labels("unauthorized").inc()
                return JSONResponse({"error": "missing Authorization: Bearer token"}, status_code=401,
                                    headers={"WWW-Authenticate": "Bearer"})
            if not hmac.compare_digest(given.encode(), expected):
                refused.labels("unauthorized").inc()
                return JSONResponse({"error": "invalid bearer token"}, status_code=401,
                                    headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
        length = request.headers.get("content-length")
        if length and length.isdigit() and int(length) > MAX_BODY:
            refused.labels("too_large").inc()
            return _bad(413, f"body of {length} bytes exceeds the limit of {MAX_BODY}")
        chunks, size = [], 0
        async for chunk in request.stream():  # chunked bodies too: stop reading past the limit
            size += len(chunk)
            if size > MAX_BODY:
                refused.labels("too_large").inc()
                return _bad(413, f"body exceeds the limit of {MAX_BODY} bytes")
            chunks.append(chunk)
        return b"".join(chunks)

    async def _alerts(alerts: list) -> JSONResponse:
        for a in alerts:
            received.labels(a.status).inc()
        outcomes = await batcher.submit(alerts)
        for o in outcomes:
            decided.labels(o.decision.method.value, o.decision.lambda_function or "none").inc()
        return JSONResponse({"accepted": len(alerts), "outcomes": [o.summary() for o in outcomes]},
                            status_code=202)

    @app.post("/", summary="CloudEvent (binary or structured) or Alertmanager webhook")
    async def intake(request: Request) -> Response:
        body = await _read(request)
        if isinstance(body, JSONResponse):
            return body
        headers = dict(request.headers)
        if not ce.is_cloudevent(headers):
            return await _webhook_body(body)
        try:
            event = ce.from_http(headers, body)
            etype = event.get_type()
            if etype in RESULT_TYPES:
                if not isinstance(ce.data_of(event), dict):
                    raise IntakeError("result CloudEvent data must be a JSON object")
                out = await run_in_threadpool(agent.handle_result, event)
                return JSONResponse({"accepted": 1, "known": out is not None}, status_code=202)
            if etype not in ALERT_TYPES:
                raise IntakeError(f"unsupported CloudEvent type {etype!r}; accepted: "
                                  f"{', '.join(ALERT_TYPES + RESULT_TYPES)}")
            default = status_from_event_type(etype)
            data = ce.data_of(event)
            if data is None:
                raise IntakeError("CloudEvent has no data; expected an alert or an Alertmanager group")
            alerts = parse_payload(data, default_status=default)
            if etype == ALERT_RESOLVED:  # a resolved event never carries anything to act on
                alerts = [a.model_copy(update={"status": "resolved"}) for a in alerts]
        except (ce.CloudEventError, IntakeError) as e:
            refused.labels("malformed").inc()
            return _bad(400, str(e))
        except UnicodeDecodeError as e:  # data_of on a body that is not UTF-8
            refused.labels("malformed").inc()
            return _bad(400, f"CloudEvent data is not UTF-8 JSON: {e}")
        return await _alerts(alerts)

    async def _webhook_body(body: bytes) -> Response:
        try:
            alerts = parse_json_bytes(body)
        except IntakeError as e:
            refused.labels("malformed").inc()
            return _bad(400, str(e))
        return await _alerts(alerts)

    @app.post("/webhook", summary="Alertmanager webhook (version 4)")
    async def webhook(request: Request) -> Response:
        body = await _read(request)
        if isinstance(body, JSONResponse):
            return body
        return await _webhook_body(body)

    @app.post("/dead-letter", summary="Knative dead-letter sink: events the broker gave up on")
    async def dead_letter(request: Request) -> Response:
        # Knative's dead-letter delivery carries no bearer token, so this route takes none; it only
        # records (audit log, metric, log line) and never acts on what it receives.
        body = await _read(request, auth=False)
        if isinstance(body, JSONResponse):
            return body
        try:
            event = ce.from_http(dict(request.headers), body)
        except ce.CloudEventError as e:
            return _bad(400, str(e))
        attrs = {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in event.get_attributes().items()}
        try:
            data = ce.data_of(event)
        except ce.CloudEventError:
            data = None
        record = {"event": attrs, "data": data, "error_dest": attrs.get("knativeerrordest"),
                  "error_code": attrs.get("knativeerrorcode")}
        dead.labels(str(attrs.get("type", "unknown"))).inc()
        log.error("dead letter: %s %s (dest %s, code %s)", attrs.get("type"), attrs.get("id"),
                  record["error_dest"], record["error_code"])
        if agent.audit is not None:
            corr = attrs.get("correlationid") or (data.get("correlation_id") if isinstance(data, dict) else None)
            await run_in_threadpool(agent.audit.append, "dead_letter", record, correlation_id=corr)
        return JSONResponse({"recorded": True, "id": attrs.get("id")}, status_code=202)

    @app.get("/healthz")
    def healthz() -> dict[str, Any]:
        return {"status": "ok"}

    @app.get("/readyz")
    def readyz() -> dict[str, Any]:
        doc: dict[str, Any] = {"status": "ready", "stages": [s.name for s in agent.chain.stages],
                               "broker": type(agent.broker).__name__, "mode": agent.gate.mode,
                               "auth": expected is not None}
        if agent.outbox is not None:
            doc["outbox"] = agent.outbox.stats()
        return doc

    @app.get("/metrics")
    def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return app


def agent_from_env(env: dict[str, str] | None = None, chain: Any = None) -> Agent:
    """The production agent: policy (POLICY_PATH / packaged, DRY_RUN overrides the mode), gate state
    (REDIS_URL, else SQLite in STATE_DIR), durable outbox and audit log (STATE_DIR), broker (BROKER_URL)."""
    from . import audit, outbox, policy, state
    from .broker import from_env
    from .chain.chain import Chain
    from .gate import Gate

    env = dict(os.environ if env is None else env)
    env.setdefault("DRY_RUN", "true")  # dry-run unless said otherwise
    pol = policy.load(env=env)
    gate = Gate(policy=pol, state=state.from_env(env))
    box = outbox.Outbox(outbox.path_from_env(env))
    return Agent(chain=chain or Chain(), broker=from_env(env.get("BROKER_URL")), gate=gate, outbox=box,
                 audit=audit.Audit(audit.path_from_env(env)), retry=outbox.Retry.from_env(env),
                 delivery_concurrency=int(env.get("DELIVERY_CONCURRENCY", "4")))


def app_from_env() -> FastAPI:
    return create_app(agent_from_env(), auth_token=os.environ.get("AUTH_TOKEN") or None)
