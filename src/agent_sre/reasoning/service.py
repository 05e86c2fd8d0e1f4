"""trm-reasoning: the TRM as an HTTP service (``agent-sre serve-reasoning``).

* ``POST /v1/decide`` — one alert → one decision object; an Alertmanager webhook or a list → ``{"decisions"}``.
* ``POST /v1/decide/batch`` — a list of alerts, ``{"alerts": [...]}`` or a webhook → ``{"decisions": [...]}``.
* ``GET /healthz`` (process alive), ``GET /readyz`` (model loaded; 503 with the reason otherwise),
  ``GET /metrics`` (Prometheus), ``GET /v1/model`` (what is loaded), ``/docs`` + ``/openapi.json``.

A decision object: ``{alertname, status, lambda_function, parameters, plan, reasoning, confidence, method,
iterations, q_halt, abstained, reason}``; ``abstained`` is true when the model's answer should not be used
(confidence under the threshold, invalid output, resolved alert) and ``reason`` says why.

Concurrent requests' alerts are batched (``batching.Batcher``, one worker thread) into shared forward
passes. A missing or corrupt model never crashes the process: readiness fails with the loader's message,
decide endpoints answer 503, and the load is retried (at most every ``RELOAD_INTERVAL_S``) until it works.

Settings: ``TRMSettings`` (MODEL_PATH, default the packaged model; TRM_THRESHOLD, default the model's;
TRM_BACKEND, TORCH_THREADS, DEVICE), ``ReasoningSettings`` (BATCH_MAX, BATCH_WAIT_MS, QUEUE_MAX,
RELOAD_INTERVAL_S), MAX_BODY_BYTES (default 1 MiB) and READ_TIMEOUT_SECONDS.
"""

from __future__ import annotations

import asyncio
import logging
import time
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Callable

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from pydantic import BaseModel, Field

from ..alerts import Alert, IntakeError, parse_json_bytes
from ..batching import Batcher, Overloaded
from ..http_body import BodyError, read_body
from ..decision import Method, PlanStep
from ..settings import ReasoningSettings, ServerSettings, TRMSettings, load
from ..trm.infer import default_model_path
from .engine import Engine, TRMEngine, Verdict

log = logging.getLogger(__name__)

RESOLVED = "alert is resolved: resolved alerts never trigger a remediation"
MAX_BODY = 1 << 20  # about 1,500 alerts; MAX_BODY_BYTES overrides


# ---------------------------------------------------------------------------- API documents


class DecisionOut(BaseModel):
    alertname: str
    status: str
    lambda_function: str | None = None
    parameters: dict[str, Any] = Field(default_factory=dict)
    plan: list[PlanStep] = Field(default_factory=list)
    reasoning: str = ""
    confidence: float = 0.0
    method: Method = Method.TRM
    iterations: int | None = Field(None, description="ACT supervision steps the model used")
    q_halt: float | None = Field(None, description="halting head probability at the step it stopped")
    abstained: bool = Field(False, description="true: do not use this answer (see reason)")
    reason: str | None = None


class BatchOut(BaseModel):
    decisions: list[DecisionOut]


_ALERT_EXAMPLE = {"status": "firing", "labels": {"alertname": "PodCrashLoopBackOff", "namespace": "media",
                                                 "pod": "jellyfin-5c8-abcde"},
                  "annotations": {"summary": "jellyfin is crash looping"}}
_BODY_DOC = {"requestBody": {"required": True, "content": {"application/json": {
    "schema": {"description": "an Alertmanager alert, a list of alerts, {\"alerts\": [...]} or an Alertmanager "
                              "webhook (version 4)", "type": ["object", "array"]},
    "example": _ALERT_EXAMPLE}}}}


def verdict_doc(alert: Alert, v: Verdict | BaseException | None) -> dict[str, Any]:
    doc: dict[str, Any] = {"alertname": alert.name, "status": alert.status, "lambda_function": None,
                           "parameters": {}, "plan": [], "reasoning": "", "confidence": 0.0,
                           "method": Method.TRM.value, "iterations": None, "q_halt": None,
                           "abstained": True, "reason": None}
    if v is None:  # resolved
        doc.update(method=Method.NONE.value, abstained=False, confidence=1.0, reasoning=RESOLVED)
        return doc
    if isinstance(v, BaseException):
        doc["reason"] = f"failed ({type(v).__name__}: {v})"
        return doc
    d = v.decision
    if d is not None:
        doc.update(lambda_function=d.lambda_function, parameters=d.parameters,
                   plan=[s.model_dump(mode="json") for s in d.plan], reasoning=d.reasoning)
    doc.update(confidence=round(float(v.confidence), 6), iterations=v.iterations,
               q_halt=None if v.q_halt is None else round(float(v.q_halt), 6),
               abstained=v.abstain is not None, reason=v.abstain)
    return doc


# ---------------------------------------------------------------------------- model holder


class ModelHolder:
    """Loads the engine off the event loop; remembers why it failed; retries no more often than
    ``reload_interval_s``."""

    def __init__(self, loader: Callable[[], Engine], describe: str, reload_interval_s: float = 10.0):
        self.loader = loader
        self.describe = describe
        self.reload_interval_s = reload_interval_s
        self.engine: Engine | None = None
        self.error: str | None = "model not loaded yet"
        self.loaded_at: float | None = None
        self._tried_at = 0.0
        self._lock = asyncio.Lock()

    async def ensure(self, force: bool = False) -> bool:
        if self.engine is not None:
            return True
        if not force and time.monotonic() - self._tried_at < self.reload_interval_s:
            return False
        async with self._lock:
            if self.engine is not None:
                return True
            self._tried_at = time.monotonic()
            try:
                engine = await asyncio.to_thread(self.loader)
            except Exception as e:  # noqa: BLE001 - a bad model must never take the process down
                self.error = f"{type(e).__name__}: {e}"
                log.error("model from %s not loaded: %s", self.describe, self.error)
                return False
            self.engine, self.error, self.loaded_at = engine, None, time.time()
            log.info("model loaded from %s", self.describe)
            return True


def create_app(engine: Engine | None = None, *, model_dir: str | Path | None = None,
               loader: Callable[[], Engine] | None = None, threshold: float | None = None,
               max_batch: int | None = None, max_wait_ms: float | None = None, max_queue: int | None = None,
               reload_interval_s: float | None = None) -> FastAPI:
    """The service. Give an ``engine`` (tests, benchmarks), a ``loader``, or a ``model_dir`` (default
    ``MODEL_PATH`` / the packaged model) loaded with ``TRMEngine`` at start-up. Arguments left out come
    from the settings."""
    rs = load(ReasoningSettings)
    server = load(ServerSettings)
    max_body, read_timeout = server.body_limit(MAX_BODY), server.read_timeout_seconds
    max_batch = int(max_batch if max_batch is not None else rs.batch_max)
    max_wait_ms = max_wait_ms if max_wait_ms is not None else rs.batch_wait_ms
    max_queue = int(max_queue if max_queue is not None else rs.queue_max)
    reload_interval_s = reload_interval_s if reload_interval_s is not None else rs.reload_interval_s

    if engine is not None:
        holder = ModelHolder(lambda: engine, "the given engine", reload_interval_s)
    elif loader is not None:
        holder = ModelHolder(loader, "the given loader", reload_interval_s)
    else:
        md = Path(model_dir) if model_dir else default_model_path()

        def _load() -> Engine:
            if md is None:
                raise FileNotFoundError("no model: MODEL_PATH is unset and no model is packaged")
            return TRMEngine.load(md, threshold)

        holder = ModelHolder(_load, str(md) if md else "MODEL_PATH (unset)", reload_interval_s)

    reg = CollectorRegistry()
    m_req = Counter("trm_reasoning_requests_total", "HTTP requests", ["endpoint", "code"], registry=reg)
    m_lat = Histogram("trm_reasoning_request_seconds", "Request latency", ["endpoint"], registry=reg,
                      buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5))
    m_batch = Histogram("trm_reasoning_batch_size", "Alerts per forward pass", registry=reg,
                        buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256))
    m_fwd = Histogram("trm_reasoning_forward_seconds", "Time of one batched forward pass + decode", registry=reg,
                      buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5))
    m_steps = Histogram("trm_reasoning_halting_steps", "ACT supervision steps used per alert", registry=reg,
                        buckets=tuple(range(1, 17)))
    m_out = Counter("trm_reasoning_decisions_total", "Per-alert outcomes", ["outcome"], registry=reg)
    m_ready = Gauge("trm_reasoning_model_ready", "1 when the model is loaded", registry=reg)
    m_queue = Gauge("trm_reasoning_queue_depth", "Alerts waiting for a forward pass", registry=reg)

    def run_batch(alerts: list[Alert]) -> list[Verdict | BaseException]:
        assert holder.engine is not None
        return list(holder.engine.decide_batch(alerts))

    batcher: Batcher[Alert, Verdict | BaseException] = Batcher(
        run_batch, max_size=max_batch, size=lambda _alert: 1, max_wait_s=max_wait_ms / 1000, max_queue=max_queue,
        on_batch=lambda n, dt: (m_batch.observe(n), m_fwd.observe(dt)), name="trm-forward")
    m_queue.set_function(lambda: batcher.queued)
    m_ready.set_function(lambda: 1.0 if holder.engine is not None else 0.0)

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        await holder.ensure(force=True)
        yield
        batcher.close()

    app = FastAPI(title="trm-reasoning", version="0.1.0", lifespan=lifespan,
                  description="The Tiny Recursive Model as a service: alerts in, remediation decisions out, "
                              "micro-batched into shared forward passes.")
    app.state.holder, app.state.batcher = holder, batcher

    def _err(endpoint: str, code: int, reason: str, t0: float) -> JSONResponse:
        m_req.labels(endpoint, str(code)).inc()
        m_lat.labels(endpoint).observe(time.perf_counter() - t0)
        return JSONResponse({"error": reason}, status_code=code)

    async def _decide(request: Request, endpoint: str, batch: bool) -> Response:
        t0 = time.perf_counter()
        try:
            body = await read_body(request, max_body, read_timeout)
        except BodyError as e:
            refused = _err(endpoint, e.status, str(e), t0)
            refused.headers.update(e.headers)
            return refused
        try:
            alerts = parse_json_bytes(body)
        except IntakeError as e:
            return _err(endpoint, 400, str(e), t0)
        if not await holder.ensure():
            return _err(endpoint, 503, f"model not ready: {holder.error}", t0)
        firing = [a for a in alerts if a.firing]
        try:
            futs = batcher.put_many(firing) if firing else []
        except Overloaded as e:
            return _err(endpoint, 503, str(e), t0)
        # one result per alert; a failed forward pass is that alert's result (reported per alert)
        results = await asyncio.gather(*(asyncio.wrap_future(f) for f in futs), return_exceptions=True)
        it = iter(results)
        docs = []
        for a in alerts:
            v = next(it) if a.firing else None
            doc = verdict_doc(a, v)
            if v is None:
                m_out.labels("resolved").inc()
            elif isinstance(v, BaseException):
                m_out.labels("error").inc()
            else:
                if v.iterations is not None:
                    m_steps.observe(v.iterations)
                m_out.labels("abstained" if doc["abstained"] else
                             ("decided" if doc["lambda_function"] else "no_action")).inc()
            docs.append(doc)
        single = not batch and len(alerts) == 1 and b'"alerts"' not in body and not body.lstrip().startswith(b"[")
        m_req.labels(endpoint, "200").inc()
        m_lat.labels(endpoint).observe(time.perf_counter() - t0)
        return JSONResponse(docs[0] if single else {"decisions": docs})

    @app.post("/v1/decide", summary="Decide for one alert (or an Alertmanager webhook / list)",
              responses={200: {"model": DecisionOut, "description": "one alert → a decision; several → "
                                                                     "{decisions: [...]} (BatchOut)"},
                         400: {"description": "not an alert"}, 503: {"description": "model not ready / overloaded"}},
              openapi_extra=_BODY_DOC)
    async def decide(request: Request) -> Response:
        return await _decide(request, "decide", batch=False)

    @app.post("/v1/decide/batch", summary="Decide for many alerts in one request",
              responses={200: {"model": BatchOut}, 400: {"description": "not alerts"},
                         503: {"description": "model not ready / overloaded"}},
              openapi_extra=_BODY_DOC)
    async def decide_batch(request: Request) -> Response:
        return await _decide(request, "decide_batch", batch=True)

    @app.get("/healthz", summary="Liveness: the process serves HTTP")
    async def healthz() -> dict[str, Any]:
        return {"status": "ok"}

    @app.get("/readyz", summary="Readiness: the model is loaded (503 with the reason otherwise)")
    async def readyz() -> Response:
        if await holder.ensure():
            return JSONResponse({"status": "ready", "model": getattr(holder.engine, "info", {})})
        return JSONResponse({"status": "not ready", "model": holder.describe, "reason": holder.error},
                            status_code=503)

    @app.get("/v1/model", summary="What is loaded, and the batching settings")
    async def model_info() -> dict[str, Any]:
        s = batcher.stats
        return {"ready": holder.engine is not None, "error": holder.error, "source": holder.describe,
                "info": getattr(holder.engine, "info", {}),
                "batching": {"max_batch": max_batch, "max_wait_ms": max_wait_ms, "max_queue": max_queue,
                             "batches": s.batches, "alerts": s.items, "largest": s.max_seen}}

    @app.get("/metrics", summary="Prometheus metrics")
    async def metrics() -> Response:
        return Response(generate_latest(reg), media_type=CONTENT_TYPE_LATEST)

    return app


def app_from_env() -> FastAPI:
    return create_app(model_dir=load(TRMSettings).model_path)
