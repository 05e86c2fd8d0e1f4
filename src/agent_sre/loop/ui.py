"""``/ui``: the agent's page for people — recent alerts and decisions, outcomes per alert class,
and pending approvals with approve and reject buttons.

Rendered on the server (Jinja2 templates in ``templates/``), no JavaScript, no build step.

Authentication: with ``AUTH_TOKEN`` set, ``/ui`` shows a sign-in form; the token signs a session
cookie (``HttpOnly``, ``SameSite=Strict``, path ``/ui``, 12 hours; ``Secure`` over HTTPS).
Without ``AUTH_TOKEN`` (the agent then never executes, see server.check_intake_auth) anyone who
can reach the page gets a session, as anyone can post alerts.

Every form that changes something (approve, reject, sign out) is safe against cross-site request
forgery: it carries a token derived from the session (an HMAC that a page on another site cannot
compute), the cookie is ``SameSite=Strict``, and a request whose ``Origin`` names another host is
refused. Approving runs ``Loop.decide`` exactly as the API and the CLI do.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, quote, urlsplit

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from .. import audit as audit_log
from .loop import LoopError

if TYPE_CHECKING:
    from ..agent import Agent

COOKIE = "agent_sre_ui"
SESSION_SECONDS = 12 * 3600
MAX_FORM = 8192

templates = Jinja2Templates(directory=str(Path(__file__).with_name("templates")))


def _when(ts: float | None) -> str:
    if not ts:
        return "-"
    return datetime.fromtimestamp(float(ts), timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def _left(ts: float | None) -> str:
    if not ts:
        return "-"
    s = float(ts) - time.time()
    if s <= 0:
        return "now"
    return f"in {s / 60:.0f} min" if s >= 90 else f"in {s:.0f} s"


templates.env.filters["when"] = _when
templates.env.filters["left"] = _left


class Sessions:
    """Signed session cookies and the CSRF tokens derived from them."""

    def __init__(self, auth_token: str | None):
        self.required = bool(auth_token)
        # Derived from the token: sessions survive a restart, and rotating the token ends them all.
        self.key = (hashlib.sha256(b"agent-sre-ui:" + auth_token.encode()).digest() if auth_token
                    else os.urandom(32))
        self.token = auth_token

    def _mac(self, what: str) -> str:
        return hmac.new(self.key, what.encode(), hashlib.sha256).hexdigest()

    def issue(self) -> str:
        body = f"{int(time.time())}.{secrets.token_hex(8)}"
        return f"{body}.{self._mac('session:' + body)}"

    def valid(self, cookie: str | None) -> bool:
        if not cookie or cookie.count(".") != 2:
            return False
        body, mac = cookie.rsplit(".", 1)
        if not hmac.compare_digest(mac, self._mac("session:" + body)):
            return False
        issued = body.split(".", 1)[0]
        return issued.isdigit() and time.time() - int(issued) < SESSION_SECONDS

    def csrf(self, cookie: str) -> str:
        return self._mac("csrf:" + cookie)

    def login(self, given: str) -> bool:
        return bool(self.token) and hmac.compare_digest(given.encode(), self.token.encode())


def _set_cookie(resp: Response, value: str, request: Request) -> None:
    resp.set_cookie(COOKIE, value, max_age=SESSION_SECONDS, path="/ui", httponly=True, samesite="strict",
                    secure=request.url.scheme == "https")


async def _form(request: Request) -> dict[str, str]:
    body = await request.body()
    if len(body) > MAX_FORM:
        raise LoopError(413, "form too large")
    try:
        pairs = parse_qs(body.decode("utf-8"), keep_blank_values=True, max_num_fields=20)
    except (UnicodeDecodeError, ValueError) as e:
        raise LoopError(400, f"not a form: {e}") from None
    return {k: v[0] for k, v in pairs.items()}


def _same_origin(request: Request) -> bool:
    origin = request.headers.get("origin")
    if origin is None:
        return True  # not sent (older browsers, same-origin GET-less clients): the CSRF token decides
    if origin == "null":
        return False  # a sandboxed or privacy-redirected request
    return urlsplit(origin).netloc == request.headers.get("host")


def router(agent: "Agent", auth_token: str | None) -> APIRouter:
    sessions = Sessions(auth_token)
    r = APIRouter(prefix="/ui", include_in_schema=False)

    def page(request: Request, cookie: str, message: str | None = None, status: int = 200) -> HTMLResponse:
        return templates.TemplateResponse(request, "dashboard.html", {**_view(agent), "csrf": sessions.csrf(cookie),
                                          "message": message, "auth": sessions.required}, status_code=status)

    def login_page(request: Request, error: str | None = None, status: int = 200) -> HTMLResponse:
        return templates.TemplateResponse(request, "login.html", {"error": error}, status_code=status)

    async def _guarded(request: Request) -> tuple[str, dict[str, str]]:
        """The session cookie and the form of a state-changing request, or LoopError."""
        cookie = request.cookies.get(COOKIE)
        if not sessions.valid(cookie):
            raise LoopError(401, "not signed in (or the session ended): open /ui again")
        form = await _form(request)
        if not _same_origin(request) or not hmac.compare_digest(form.get("csrf", ""), sessions.csrf(cookie)):
            raise LoopError(403, "this form did not come from the agent's page (CSRF check failed)")
        return cookie, form

    @r.get("", response_class=HTMLResponse)
    def dashboard(request: Request, msg: str | None = None) -> Response:
        cookie = request.cookies.get(COOKIE)
        if sessions.valid(cookie):
            return page(request, cookie, msg)
        if sessions.required:
            return login_page(request)
        cookie = sessions.issue()
        resp = page(request, cookie, msg)
        _set_cookie(resp, cookie, request)
        return resp

    @r.post("/login")
    async def login(request: Request) -> Response:
        form = await _form(request)
        if not sessions.required:
            return RedirectResponse("/ui", status_code=303)
        if not sessions.login(form.get("token", "")):
            return login_page(request, "That is not the agent's token.", 401)
        resp = RedirectResponse("/ui", status_code=303)
        _set_cookie(resp, sessions.issue(), request)
        return resp

    @r.post("/logout")
    async def logout(request: Request) -> Response:
        await _guarded(request)
        resp = RedirectResponse("/ui", status_code=303)
        resp.delete_cookie(COOKIE, path="/ui")
        return resp

    @r.post("/approvals/{approval_id}/{answer}")
    async def answer(request: Request, approval_id: str, answer: str) -> Response:
        if answer not in ("approve", "reject"):
            raise LoopError(404, f"no such answer {answer!r}")
        cookie, form = await _guarded(request)
        if agent.loop is None:
            raise LoopError(404, "the closed loop is off")
        reason = form.get("reason", "").strip() or None
        if answer == "reject" and not reason:
            return page(request, cookie, "Say why you reject it.", 422)
        try:
            a = await run_in_threadpool(agent.loop.decide, approval_id, answer == "approve", "ui", reason)
        except LoopError as e:
            return page(request, cookie, str(e), e.status)
        done = f"{a.id}: {a.status}" + (f" ({a.note})" if a.note else "")
        return RedirectResponse(f"/ui?msg={quote(done)}", status_code=303)

    return r


def _view(agent: "Agent") -> dict[str, Any]:
    loop = agent.loop
    decisions, results = [], []
    if agent.audit is not None:
        for rec in audit_log.tail(agent.audit.path, 25, kinds={"decision"}):
            d = rec.get("data") or {}
            decisions.append({"time": rec.get("ts"), "alertname": rec.get("alertname"),
                              "decision": d.get("decision") or {}, "verdict": d.get("verdict")})
        for rec in audit_log.tail(agent.audit.path, 15, kinds={"result"}):
            d = rec.get("data") or {}
            results.append({"time": rec.get("ts"), "alertname": rec.get("alertname"), "function": d.get("function"),
                            "status": d.get("status"), "message": d.get("message"), "dry_run": d.get("dry_run"),
                            "request": (d.get("details") or {}).get("request")})
    view: dict[str, Any] = {"mode": agent.gate.mode, "decisions": decisions, "results": results, "loop": loop is not None,
                            "pending": [], "answered": [], "classes": [], "outcomes": [], "promote_after": None}
    if loop is not None:
        view.update(pending=loop.store.approvals(status="pending"),
                    answered=[a for a in loop.store.approvals(limit=30) if a.status != "pending"][:10],
                    classes=loop.classes(), outcomes=loop.store.outcomes(limit=15),
                    promote_after=loop.autonomy.promote_after)
    return view
