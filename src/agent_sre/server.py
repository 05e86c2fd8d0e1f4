"""The agent's HTTP service: Alertmanager webhooks and CloudEvents in, trigger CloudEvents out; the
closed loop's API (``/api``, agent_sre.loop.api) and page (``/ui``, agent_sre.loop.ui) beside them."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from collections import Counter as Tally
from contextlib import asynccontextmanager
from typing import Any, Mapping

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, generate_latest
from starlette.concurrency import run_in_threadpool

from . import ce
from .agent import Agent, Outcome
from .alerts import ALERT_RESOLVED, ALERT_TYPES, IntakeError, parse_json_bytes, parse_payload, status_from_event_type
from .batching import IntakeBatcher
from .events import RESULT_TYPES
from .http_body import BodyError, read_body
from .loop import api as loop_api
from .loop import ui as loop_ui
from .loop.loop import LoopError
from .settings import (AgentKeySettings, AgentSettings, IncidentSettings, LoopSettings, ServerSettings,
                       SettingsError, StateSettings, load)
from .signing import Refused, Trust, key_setting, ring_setting

log = logging.getLogger(__name__)

MAX_BODY = 16 << 20  # an Alertmanager webhook of 10,000+ alerts; MAX_BODY_BYTES overrides


def _bad(status: int, reason: str, headers: Mapping[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": reason}, status_code=status, headers=dict(headers or {}))


class Answer:
    """The answer to one intake request, bounded whatever its size: counts over every alert, and the
    first ``keep`` outcomes in full (``outcomes_omitted`` says how many more there were)."""

    def __init__(self, keep: int):
        self.keep = keep
        self.accepted = 0
        self.outcomes: list[dict[str, Any]] = []
        self.counts: dict[str, Tally] = {"method": Tally(), "function": Tally(), "gate": Tally(), "events": Tally()}
        self.errors = 0

    def add(self, outs: list[Outcome]) -> None:
        for o in outs:
            self.accepted += 1
            if len(self.outcomes) < self.keep:
                self.outcomes.append(o.summary())
            self.counts["method"][o.decision.method.value] += 1
            self.counts["function"][o.decision.lambda_function or "none"] += 1
            v = o.verdict
            self.counts["gate"]["none" if v is None else "allowed" if v.allowed else
                                "duplicate" if v.duplicate else "refused"] += 1
            for e in o.events:
                self.counts["events"][e.get_type().rsplit(".", 1)[-1]] += 1
            self.errors += o.error is not None

    def doc(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"accepted": self.accepted, "outcomes": self.outcomes,
                               "summary": {**{k: dict(v) for k, v in self.counts.items()}, "errors": self.errors}}
        if self.accepted > len(self.outcomes):
            doc["outcomes_omitted"] = self.accepted - len(self.outcomes)
        return doc


class _PerMinute:
    """A token bucket: ``n`` per minute, bursts of up to ``n``; ``take`` returns 0 or the seconds to wait."""

    def __init__(self, n: int):
        self.n, self.tokens, self.at = n, float(n), time.monotonic()

    def take(self) -> float:
        now = time.monotonic()
        self.tokens = min(self.n, self.tokens + (now - self.at) * self.n / 60)
        self.at = now
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) * 60 / self.n


DEAD_LETTER_DATA_MAX = 2048  # bytes of a dead letter's data kept in the audit; larger data is digested


def dead_letter_record(attrs: Mapping[str, Any], data: Any) -> dict[str, Any]:
    """What the audit keeps of a dead letter, a few KB at most: its attributes (values cut at 256
    characters), its data when small, else the data's size, SHA-256 and first bytes."""
    event = {str(k)[:64]: (v if len(v) <= 256 else v[:256] + "...")
             for k, v in ((k, str(v)) for k, v in list(attrs.items())[:32])}
    record: dict[str, Any] = {"event": event, "error_dest": event.get("knativeerrordest"),
                              "error_code": event.get("knativeerrorcode")}
    raw = json.dumps(data, default=str, ensure_ascii=False)
    if len(raw) <= DEAD_LETTER_DATA_MAX:
        record["data"] = data
    else:
        record.update(data_bytes=len(raw.encode()), data_sha256=hashlib.sha256(raw.encode()).hexdigest(),
                      data_preview=raw[:DEAD_LETTER_DATA_MAX // 4])
    return record


def create_app(agent: Agent, auth_token: str | None = None, *, settings: AgentSettings | None = None,
               server: ServerSettings | None = None) -> FastAPI:
    """The HTTP service. ``auth_token`` (default ``settings.auth_token``): when set, intake requests need
    ``Authorization: Bearer <token>`` (Alertmanager: ``http_config.authorization.credentials``). With
    an outbox the agent's delivery worker runs for the app's lifetime; a 202 is only sent once the
    alerts are committed. ``settings`` and ``server`` default to the settings' defaults.

    Bounds: a body over MAX_BODY_BYTES gets 413, one not in within READ_TIMEOUT_SECONDS 408; a
    request's alerts go through the agent INTAKE_CHUNK at a time (memory does not grow with the
    request) and its answer holds at most ANSWER_OUTCOMES_MAX outcomes; /dead-letter takes
    DEAD_LETTER_MAX_BYTES per event and records DEAD_LETTER_PER_MINUTE (then 429)."""
    settings = settings or AgentSettings()
    server = server or ServerSettings()
    auth_token = auth_token if auth_token is not None else settings.auth_token
    max_body, read_timeout = server.body_limit(MAX_BODY), server.read_timeout_seconds
    chunk = settings.intake_chunk
    dead_rate = _PerMinute(settings.dead_letter_per_minute)

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
    batcher = IntakeBatcher(agent.handle_alerts, max_alerts=chunk, concurrency=settings.intake_concurrency)
    app.add_exception_handler(LoopError, loop_api.loop_error)
    app.include_router(loop_ui.router(agent, auth_token))
    if agent.loop is not None:
        app.include_router(loop_api.router(agent.loop, auth_token))

    expected = f"Bearer {auth_token}".encode() if auth_token else None

    def _unauthorized(request: Request) -> JSONResponse | None:
        """401 when AUTH_TOKEN is set and the request does not carry it."""
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

    async def _read(request: Request, auth: bool = True, limit: int = max_body) -> bytes | JSONResponse:
        denied = _unauthorized(request) if auth else None
        if denied is not None:
            return denied
        try:
            return await read_body(request, limit, read_timeout)
        except BodyError as e:
            refused.labels("too_large" if e.status == 413 else "timeout").inc()
            return _bad(e.status, str(e), e.headers)

    def _refusal(e: Refused) -> JSONResponse:
        refused.labels(e.reason).inc()
        return JSONResponse({"error": e.reason, "message": e.message}, status_code=e.status)

    async def _alerts(alerts: list) -> JSONResponse:
        # One chunk at a time: each is accepted, decided, gated and committed before the next, so
        # what is held in memory is one chunk's outcomes and the bounded answer.
        answer = Answer(settings.answer_outcomes_max)
        for i in range(0, len(alerts), chunk):
            part = alerts[i:i + chunk]
            for a in part:
                received.labels(a.status).inc()
            outcomes = await batcher.submit(part)
            for o in outcomes:
                decided.labels(o.decision.method.value, o.decision.lambda_function or "none").inc()
            answer.add(outcomes)
        return JSONResponse(answer.doc(), status_code=202)

    @app.post("/", summary="CloudEvent (binary or structured) or Alertmanager webhook")
    async def intake(request: Request) -> Response:
        # Result events come from the functions through the broker, which sends no bearer token:
        # they authenticate by their signature. Everything else needs AUTH_TOKEN when it is set.
        body = await _read(request, auth=False)
        if isinstance(body, JSONResponse):
            return body
        headers = dict(request.headers)
        event, error = None, None
        if ce.is_cloudevent(headers):
            try:
                event = ce.from_http(headers, body)
            except ce.CloudEventError as e:
                error = str(e)
        if event is not None and event.get_type() in RESULT_TYPES:
            try:
                out = await run_in_threadpool(agent.handle_result, event)
            except Refused as e:
                return _refusal(e)
            except ce.CloudEventError as e:
                refused.labels("malformed").inc()
                return _bad(400, str(e))
            return JSONResponse({"accepted": 1, "known": out is not None}, status_code=202)
        denied = _unauthorized(request)
        if denied is not None:
            return denied
        if event is None and error is None:
            return await _webhook_body(body)
        try:
            if error is not None:
                raise IntakeError(error)
            etype = event.get_type()
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
        # Knative's dead-letter delivery carries no bearer token: the original event (a trigger
        # the agent signed, a result a function signed) plus knativeerror* extensions, which the
        # signature does not cover. Signed by a trusted key, or with the bearer token: recorded
        # (audit log, metric, log line), never acted on. Bounded: small events only, a rate, and a
        # record of a few KB each (``dead_letter_record``).
        body = await _read(request, auth=False, limit=settings.dead_letter_max_bytes)
        if isinstance(body, JSONResponse):
            return body
        try:
            event = ce.from_http(dict(request.headers), body)
        except ce.CloudEventError as e:
            if _unauthorized(request) is not None:
                refused.labels("unsigned").inc()
                return _bad(401, "not a signed CloudEvent, and no bearer token")
            return _bad(400, str(e))
        try:
            await run_in_threadpool(agent.authenticate, event, dead_letter=True)
        except Refused as e:
            if expected is None or _unauthorized(request) is not None:
                return _refusal(e)
        except ce.CloudEventError as e:
            return _bad(400, str(e))
        wait = dead_rate.take()
        if wait:
            refused.labels("dead_letter_rate").inc()
            return _bad(429, f"more than {settings.dead_letter_per_minute} dead letters a minute; retry later",
                        {"retry-after": str(max(1, round(wait)))})
        attrs = {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in event.get_attributes().items()}
        try:
            data = ce.data_of(event)
        except ce.CloudEventError:
            data = None
        record = dead_letter_record(attrs, data)
        dead.labels(str(attrs.get("type", "unknown"))[:100]).inc()
        log.error("dead letter: %s %s (dest %s, code %s)", record["event"].get("type"), record["event"].get("id"),
                  record["error_dest"], record["error_code"])
        if agent.audit is not None:
            corr = data.get("correlation_id") if isinstance(data, dict) else attrs.get("correlationid")
            corr = None if corr is None else str(corr)[:64]
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
        if agent.incidents is not None:
            # alerts waiting out a settle window are pending in the inbox too: work not done yet
            doc["incidents"] = agent.incidents.stats(agent.clock())
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
        agent.metrics.outbox_lag.set(agent.outbox.stats()["oldest_pending_event_age_s"])
        return Response(generate_latest(registry) + generate_latest(agent.metrics.registry),
                        media_type=CONTENT_TYPE_LATEST)

    return app


def agent_from_env(env: Mapping[str, str] | None = None, chain: Any = None) -> Agent:
    """The production agent from the settings in ``env`` (default ``os.environ``): the policy
    (``POLICY_PATH`` or the packaged one; ``DRY_RUN``, default true, replaces its mode unless it
    says suggest), gate and loop state (``REDIS_URL``, else SQLite), durable outbox and audit log,
    broker (``BROKER_URL``), the closed loop (``LoopSettings``) and keys: with a broker the agent
    signs with ``AGENT_SIGNING_KEY`` and accepts results signed by ``FUNCTION_PUBLIC_KEYS`` (both
    required); without one the embedded broker's in-memory pair is used. Raises SettingsError
    naming a setting that cannot be used."""
    from . import audit, outbox, policy, state
    from .broker import from_url
    from .chain.chain import Chain
    from .gate import Gate
    from .loop import Loop, open_loop_store

    st, ag, keys = load(StateSettings, env), load(AgentSettings, env), load(AgentKeySettings, env)
    lp, inc = load(LoopSettings, env), load(IncidentSettings, env)
    pol = policy.configured(env, dry_run=ag.dry_run)
    signing_key = key_setting("AGENT_SIGNING_KEY", keys.agent_signing_key) if keys.agent_signing_key else None
    trust, own = None, None
    if ag.broker_url:
        for var, value, why in (("AGENT_SIGNING_KEY", signing_key, "the functions refuse unsigned triggers"),
                                ("FUNCTION_PUBLIC_KEYS", keys.function_public_keys,
                                 "without them no result event can be trusted")):
            if value is None:
                raise SettingsError(f"{var} is unset but BROKER_URL is set: {why}")
        trust = Trust(signing_key, ring_setting("FUNCTION_PUBLIC_KEYS", keys.function_public_keys),
                      keys.trigger_max_age_s)
        own = ring_setting("AGENT_PUBLIC_KEYS", keys.agent_public_keys) if keys.agent_public_keys else None
    try:
        hmac_key = audit.load_key(keys.audit_hmac_key) if keys.audit_hmac_key else None
    except (OSError, ValueError) as e:
        raise SettingsError(f"AUDIT_HMAC_KEY={str(keys.audit_hmac_key)!r}: {e}") from None
    if hmac_key is None:
        if pol.mode == "execute":
            raise SettingsError("AUDIT_HMAC_KEY is unset but the gate would execute: the audit log of a "
                                "remediating agent must be tamper-evident (keys generate writes one)")
        log.warning("AUDIT_HMAC_KEY is unset: the audit chain is plain SHA-256 (mode %s)", pol.mode)
    if ag.outbox_retention_seconds < pol.dedup_seconds:
        # A delivered trigger forgotten inside the dedup window would be sent again when the gate
        # re-enqueues it for a duplicate alert, and a function that forgot its id would act twice.
        raise SettingsError(f"OUTBOX_RETENTION_SECONDS={ag.outbox_retention_seconds:g} is shorter than the "
                            f"policy's dedup_seconds ({pol.dedup_seconds:g})")
    retry = outbox.Retry(ag.retry_base_seconds, ag.retry_max_seconds, ag.retry_max_attempts)
    box = outbox.Outbox(st.outbox_path, lease_s=ag.outbox_lease_seconds, retention_s=ag.outbox_retention_seconds)
    log_ = audit.Audit(st.audit_path, key=hmac_key, signer=signing_key, max_bytes=st.audit_max_bytes,
                       keep=st.audit_keep or None)
    loop = Loop(open_loop_store(st), policy=pol, settings=lp, audit=log_)
    agent = Agent(chain=chain or Chain(), broker=from_url(ag.broker_url),
                  gate=Gate(policy=pol, state=state.open_store(st)), outbox=box, audit=log_, retry=retry,
                  delivery_concurrency=ag.delivery_concurrency, trust=trust, own_keys=own, loop=loop,
                  incidents=incident_desk(inc))
    if agent.incidents is not None and lp.alertmanager_url:
        from .incidents.alertmanager import AlertmanagerFeed

        agent.feeds.append(AlertmanagerFeed(lp.alertmanager_url, inc.alertmanager_poll_seconds, agent.sync_incidents))
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
    from . import policy

    check_intake_auth(policy.configured(env, dry_run=ag.dry_run).mode, ag.auth_token)  # the most basic door first
    agent = agent_from_env(env, chain)
    return create_app(agent, auth_token=ag.auth_token, settings=ag, server=server)
