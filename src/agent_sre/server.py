"""The agent's HTTP service: Alertmanager webhooks and CloudEvents in, trigger CloudEvents out."""

from __future__ import annotations

import asyncio
import hmac
import logging
from contextlib import asynccontextmanager
from typing import Any, Mapping

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, generate_latest
from starlette.concurrency import run_in_threadpool

from . import ce
from .agent import Agent
from .alerts import ALERT_RESOLVED, ALERT_TYPES, IntakeError, parse_json_bytes, parse_payload, status_from_event_type
from .events import RESULT_TYPES
from .http_body import BodyTooLarge, read_body
from .settings import AgentSettings, IncidentSettings, ServerSettings, SettingsError, StateSettings, load

log = logging.getLogger(__name__)


def _bad(status: int, reason: str) -> JSONResponse:
    return JSONResponse({"error": reason}, status_code=status)


class IntakeBatcher:
    """Requests that arrive while the agent is busy are handled together in its next call: one
    inbox commit, one batched TRM pass, one audit write for all of them. Each request still gets its
    answer only after its own alerts are committed, and an idle agent adds no wait.

    Up to ``concurrency`` calls run at once (default 2): while one batch is in the model's forward
    pass (native code, the GIL released), the next is committed to the inbox and the previous one
    goes through the gate, so the CPU-bound model and the Python work overlap instead of taking
    turns. The gate and the outbox are safe for that (per-thread SQLite connections, atomic
    reservations)."""

    def __init__(self, handle, max_alerts: int = 256, concurrency: int = 2):
        self.handle = handle
        self.max_alerts = max_alerts
        self.concurrency = max(1, concurrency)
        self.queue: asyncio.Queue | None = None
        self.tasks: list[asyncio.Task] = []

    async def submit(self, alerts: list) -> list:
        if not self.tasks or any(t.done() for t in self.tasks):
            loop = asyncio.get_running_loop()
            for t in self.tasks:
                t.cancel()
            self.queue = asyncio.Queue()
            self.tasks = [loop.create_task(self._run(self.queue)) for _ in range(self.concurrency)]
        fut = asyncio.get_running_loop().create_future()
        await self.queue.put((alerts, fut))  # type: ignore[union-attr]
        return await fut

    async def _run(self, queue: asyncio.Queue) -> None:
        while True:
            items = [await queue.get()]
            n = len(items[0][0])
            while n < self.max_alerts and not queue.empty():
                item = queue.get_nowait()
                items.append(item)
                n += len(item[0])
            flat = [a for alerts, _ in items for a in alerts]
            try:
                outcomes = await run_in_threadpool(self.handle, flat)
            except Exception as e:  # noqa: BLE001 - every waiting request gets the error (a 500)
                for _, fut in items:
                    if not fut.done():
                        fut.set_exception(e)
                continue
            i = 0
            for alerts, fut in items:
                if not fut.done():
                    fut.set_result(outcomes[i:i + len(alerts)])
                i += len(alerts)


def create_app(agent: Agent, auth_token: str | None = None, *, max_body: int | None = None,
               intake_concurrency: int | None = None) -> FastAPI:
    """The HTTP service. ``auth_token``: when set, intake requests need ``Authorization: Bearer <token>``
    (Alertmanager: ``http_config.authorization.credentials``). With an outbox the agent's delivery
    worker runs for the app's lifetime; a 202 is only sent once the alerts are committed.
    ``max_body`` and ``intake_concurrency`` default to the settings' defaults."""
    max_body = max_body or ServerSettings().max_body_bytes
    intake_concurrency = intake_concurrency or AgentSettings().intake_concurrency

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
    batcher = IntakeBatcher(agent.handle_alerts, concurrency=intake_concurrency)

    expected = f"Bearer {auth_token}".encode() if auth_token else None

    def _unauthorized(request: Request) -> JSONResponse | None:
        if expected is None:
            return None
        given = request.headers.get("authorization", "")
        if not given:
            refused.labels("unauthorized").inc()
            return JSONResponse({"error": "missing Authorization: Bearer token"}, status_code=401,
                                headers={"WWW-Authenticate": "Bearer"})
        if not hmac.compare_digest(given.encode(), expected):
            refused.labels("unauthorized").inc()
            return JSONResponse({"error": "invalid bearer token"}, status_code=401,
                                headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
        return None

    async def _read(request: Request, auth: bool = True) -> bytes | JSONResponse:
        if auth and (denied := _unauthorized(request)) is not None:
            return denied
        try:
            return await read_body(request, max_body)
        except BodyTooLarge as e:
            refused.labels("too_large").inc()
            return _bad(413, str(e))

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

    @app.get("/incidents", summary="The firing alerts, their roles (alone, root, lead, symptom) and what was done")
    def incidents(request: Request) -> Response:
        # alert labels are as sensitive as the intake: the same bearer token
        if (denied := _unauthorized(request)) is not None:
            return denied
        if agent.incidents is None:
            return JSONResponse({"enabled": False, "alerts": []})
        return JSONResponse({"enabled": True, "settle_s": agent.incidents.settle_s,
                             "alerts": agent.incidents.snapshot(agent.clock())})

    @app.get("/metrics")
    def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return app


def agent_from_env(env: Mapping[str, str] | None = None, chain: Any = None) -> Agent:
    """The production agent from the settings in ``env`` (default ``os.environ``): the policy
    (``POLICY_PATH`` or the packaged one; ``DRY_RUN``, default true, replaces its mode unless it
    says suggest), gate state (``REDIS_URL``, else SQLite), durable outbox and audit log, broker
    (``BROKER_URL``). Raises SettingsError naming a setting that cannot be used."""
    from . import audit, outbox, policy, state
    from .broker import from_url
    from .chain.chain import Chain
    from .gate import Gate

    st, ag, inc = load(StateSettings, env), load(AgentSettings, env), load(IncidentSettings, env)
    try:
        pol = policy.load(ag.policy_path, dry_run=ag.dry_run)
    except (OSError, policy.PolicyError) as e:
        raise SettingsError(f"POLICY_PATH={str(ag.policy_path)!r}: {e}") from None
    retry = outbox.Retry(ag.retry_base_seconds, ag.retry_max_seconds, ag.retry_max_attempts)
    agent = Agent(chain=chain or Chain(), broker=from_url(ag.broker_url),
                  gate=Gate(policy=pol, state=state.open_store(st)), outbox=outbox.Outbox(st.outbox_path),
                  audit=audit.Audit(st.audit_path), retry=retry, delivery_concurrency=ag.delivery_concurrency,
                  incidents=incident_desk(inc))
    if agent.incidents is not None and inc.alertmanager_url:
        from .incidents.alertmanager import AlertmanagerFeed

        agent.feeds.append(AlertmanagerFeed(inc.alertmanager_url, inc.alertmanager_poll_seconds, agent.sync_incidents))
    return agent


def incident_desk(inc: IncidentSettings) -> Any:
    """The incident desk from its settings (None with INCIDENTS=false)."""
    if not inc.incidents:
        return None
    from .agent import needs_nothing
    from .incidents.desk import Desk

    cluster = None
    if inc.incident_kube:
        from .incidents.cluster import KubeFacts, load_api_client

        try:
            api = load_api_client(inc.kubeconfig)
        except Exception as e:  # noqa: BLE001 - a broken kubeconfig is a setting error
            raise SettingsError(f"KUBECONFIG={inc.kubeconfig!r}: {e}") from None
        if api is None:
            raise SettingsError("INCIDENT_KUBE=true needs a cluster: run in a pod (ServiceAccount) or set KUBECONFIG")
        cluster = KubeFacts(api)
    return Desk(settle_s=inc.incident_settle_seconds, release_s=inc.incident_release_seconds, cluster=cluster,
                stale_s=inc.incident_stale_seconds, needs_nothing=needs_nothing)


def check_intake_auth(mode: str, auth_token: str | None) -> None:
    """Execute mode needs an authenticated intake: anyone who can post alerts could otherwise make
    the agent act. Raises SettingsError; in dry-run or suggest mode only warns."""
    if auth_token:
        return
    if mode == "execute":
        raise SettingsError("AUTH_TOKEN is unset but the gate would execute (DRY_RUN=false or the policy's "
                            "mode: execute): set AUTH_TOKEN, or run in dry-run")
    log.warning("AUTH_TOKEN is unset: anyone who can reach the intake can post alerts (mode %s, nothing "
                "is executed)", mode)


def app_from_env(env: Mapping[str, str] | None = None, chain: Any = None) -> FastAPI:
    """``agent-sre serve``'s app; raises SettingsError (before anything listens) on a bad setting."""
    server, ag = load(ServerSettings, env), load(AgentSettings, env)
    agent = agent_from_env(env, chain)
    check_intake_auth(agent.gate.mode, ag.auth_token)
    return create_app(agent, auth_token=ag.auth_token, max_body=server.max_body_bytes,
                      intake_concurrency=ag.intake_concurrency)
