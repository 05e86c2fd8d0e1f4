"""The loop's HTTP API (JSON), served by the agent: what ``agent-sre approve/reject/pin`` and
scripts talk to.

    GET  /api/approvals[?status=pending]      approval requests, newest first
    GET  /api/approvals/{id}
    POST /api/approvals/{id}/approve          {"by": "alice", "reason": "..."}
    POST /api/approvals/{id}/reject           {"by": "alice", "reason": "..."}   (reason required)
    GET  /api/outcomes[?limit=50]             the ledger per class (with its mode) and recent outcomes
    POST /api/autonomy                        {"alert_class": "PodCrashLoopBackOff/pod-restart",
                                               "mode": "execute" | "dry_run" | "suggest" | null, "by": ...}

With ``AUTH_TOKEN`` set every route needs ``Authorization: Bearer <token>`` (a header browsers
never add by themselves, so these routes are not reachable by cross-site requests). Routes are
thin: the work is ``Loop.decide`` / ``Loop.pin``; a request that cannot be granted gets its
status (404 unknown, 409 no longer pending or refused) and ``{"error": why}``.
"""

from __future__ import annotations

import hmac
from typing import Any, Literal

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from .loop import Loop, LoopError


class Answer(BaseModel):
    model_config = ConfigDict(extra="forbid")
    by: str = Field("api", min_length=1, max_length=200, description="who answers (recorded in the audit log)")
    reason: str | None = Field(None, max_length=2000)


class Rejection(Answer):
    reason: str = Field(..., min_length=1, max_length=2000)


class Pin(BaseModel):
    model_config = ConfigDict(extra="forbid")
    alert_class: str = Field(..., min_length=3, max_length=300, pattern=r"^[^/]+/[a-z0-9-]+$")
    mode: Literal["execute", "dry_run", "suggest"] | None = None
    by: str = Field("api", min_length=1, max_length=200)


def bearer_guard(auth_token: str | None):
    """A dependency refusing requests without the bearer token (none needed when unset)."""
    expected = f"Bearer {auth_token}".encode() if auth_token else None

    def guard(request: Request) -> None:
        if expected is None:
            return
        given = request.headers.get("authorization", "").encode()
        if not given or not hmac.compare_digest(given, expected):
            raise LoopError(401, "missing or invalid Authorization: Bearer token")

    return guard


def router(loop: Loop, auth_token: str | None) -> APIRouter:
    r = APIRouter(prefix="/api", dependencies=[Depends(bearer_guard(auth_token))], tags=["closed loop"])

    @r.get("/approvals")
    def approvals(status: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        return [a.model_dump(mode="json") for a in loop.store.approvals(status=status, limit=min(limit, 1000))]

    @r.get("/approvals/{approval_id}")
    def approval(approval_id: str) -> dict[str, Any]:
        a = loop.store.get_approval(approval_id)
        if a is None:
            raise LoopError(404, f"no approval request {approval_id!r}")
        return a.model_dump(mode="json")

    @r.post("/approvals/{approval_id}/approve")
    async def approve(approval_id: str, body: Answer | None = None) -> dict[str, Any]:
        body = body or Answer()
        a = await run_in_threadpool(loop.decide, approval_id, True, body.by, body.reason)
        return a.model_dump(mode="json")

    @r.post("/approvals/{approval_id}/reject")
    async def reject(approval_id: str, body: Rejection) -> dict[str, Any]:
        a = await run_in_threadpool(loop.decide, approval_id, False, body.by, body.reason)
        return a.model_dump(mode="json")

    @r.get("/outcomes")
    def outcomes(limit: int = 50) -> dict[str, Any]:
        return {"classes": loop.classes(), "promote_after": loop.autonomy.promote_after,
                "outcomes": [o.model_dump(mode="json") for o in loop.store.outcomes(limit=min(limit, 1000))]}

    @r.post("/autonomy")
    async def pin(body: Pin) -> dict[str, Any]:
        s = await run_in_threadpool(loop.pin, body.alert_class, body.mode, body.by)
        return next((c for c in loop.classes() if c["alert_class"] == s.alert_class), s.model_dump(mode="json"))

    return r


async def loop_error(_request: Request, e: LoopError) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if e.status == 401 else None
    return JSONResponse({"error": str(e)}, status_code=e.status, headers=headers)
