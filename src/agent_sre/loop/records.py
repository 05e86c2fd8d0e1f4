"""What the closed loop keeps: outcomes, the ledger per alert class, approvals and open watches.

These pydantic models are the wire schema of the loop's HTTP API and the rows of its stores
(``store.py``: SQLite or Redis, beside the gate's state).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

Mode = Literal["execute", "dry_run", "suggest"]
# verified: the alert resolved within its decay window after the fix; ineffective: it did not, or
# the target did not recover; failed: the function failed or refused; unverified: no signal either
# way. rejected: a person turned the suggestion down (not an attempt, but it counts against trust).
OutcomeKind = Literal["verified", "ineffective", "failed", "unverified", "rejected"]
OUTCOMES: tuple[str, ...] = ("verified", "ineffective", "failed", "unverified", "rejected")
BAD = ("ineffective", "failed", "rejected")
ApprovalStatus = Literal["pending", "approved", "rejected", "expired", "withdrawn", "refused"]


class OutcomeRecord(BaseModel):
    """One remediated step's effect; ``id`` (correlation id and step) makes recording idempotent."""

    id: str
    alert_class: str
    alertname: str
    function: str
    outcome: OutcomeKind
    reason: str = ""
    correlation_id: str | None = None
    target: str | None = None
    ts: float
    seconds: float | None = None  # from the action to the verified resolution
    details: dict[str, Any] = Field(default_factory=dict)


class ClassStats(BaseModel):
    """The ledger of one alert class (runbook entry or alertname, and the function)."""

    alert_class: str
    alertname: str = ""
    function: str = ""
    attempts: int = 0
    verified: int = 0
    ineffective: int = 0
    failed: int = 0
    unverified: int = 0
    rejected: int = 0
    streak: int = 0  # verified outcomes in a row since the last failed, ineffective or rejected one
    pin: Mode | None = None
    last: OutcomeRecord | None = None

    def counted(self, rec: OutcomeRecord) -> "ClassStats":
        """These stats with ``rec`` counted (the one rule both stores follow)."""
        up = self.model_copy(deep=True)
        up.alertname, up.function = up.alertname or rec.alertname, up.function or rec.function
        setattr(up, rec.outcome, getattr(up, rec.outcome) + 1)
        if rec.outcome != "rejected":
            up.attempts += 1
        if rec.outcome == "verified":
            up.streak += 1
        elif rec.outcome in BAD:
            up.streak = 0
        up.last = rec
        return up


class Approval(BaseModel):
    """A suggestion waiting for a person: the step the gate held back in suggest mode, with all
    it needs to pass through the gate again when approved."""

    id: str
    alert_class: str
    alertname: str
    function: str
    parameters: dict[str, Any]
    step: int = 0
    correlation_id: str
    fingerprint: str
    alert: dict[str, Any]
    decision: dict[str, Any]
    observed: dict[str, Any] | None = None  # the previous step's result, for a later step
    created: float
    expires: float
    status: ApprovalStatus = "pending"
    by: str | None = None
    note: str | None = None  # why it was rejected, refused or withdrawn
    resolved_at: float | None = None


class Watch(BaseModel):
    """A remediated alert inside its decay window: re-fires are suppressed until ``deadline``,
    and its outcome is decided by then."""

    id: str  # the outcome id it will decide
    alert_class: str
    alertname: str
    function: str
    target: str | None = None
    correlation_id: str
    fingerprint: str
    alert: dict[str, Any]
    decision: dict[str, Any]
    started: float
    deadline: float
    window: dict[str, Any] = Field(default_factory=dict)
    status: Literal["open", "closed"] = "open"
    outcome: OutcomeKind | None = None
    suppressed: int = 0
