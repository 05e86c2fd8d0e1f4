"""Runs the stages in order; the first one that decides wins.

Order (``build_stages``): static annotations → runbook → TRM (in process, or the trm-reasoning
service with TRM_API_URL) → LLM (with LLM_URL) → no action. What the operator wrote down comes
first: the rule's own annotations, then the runbook, which decides every alert it names (its plan,
or no action with an escalation when no case fits); the models decide only the alerts nobody wrote
down. Resolved alerts get no action before any stage runs. A stage that abstains, proposes something the catalog rejects, or fails, is
recorded in ``Decision.fallthrough`` and the next stage is asked. Each stage call is bounded by its
own time budget (``stage_timeout``: a stage's ``timeout_s``); over budget it falls through.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any, Callable, Iterable

from ..alerts import Alert
from ..decision import Abstain, Decision, InvalidProposal, no_action
from ..settings import LLMSettings, TRMSettings, load
from .annotations import AnnotationStage
from .base import Stage
from .llm import LLMStage
from .rules import RuleStage
from .trm import RemoteTRM, TRMStage

log = logging.getLogger(__name__)

STRATEGIES = ("chain", "annotations", "trm", "llm", "rules")


def trm_stage() -> Stage:
    """The TRM stage: the trm-reasoning service when TRM_API_URL is set, else the in-process model."""
    url = (load(TRMSettings).trm_api_url or "").strip()
    return RemoteTRM(url) if url else TRMStage()


def build_stages(strategy: str = "chain") -> list[Stage]:
    """``chain``: annotations, the runbook, the TRM (unless USE_TRM=false), the LLM (only when LLM_URL
    is set). A single-stage strategy runs that stage alone (the LLM stage then abstains without LLM_URL)."""
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}; choose one of {', '.join(STRATEGIES)}")
    if strategy == "annotations":
        return [AnnotationStage()]
    if strategy == "trm":
        return [trm_stage()]
    if strategy == "llm":
        return [LLMStage()]
    if strategy == "rules":
        return [RuleStage()]
    stages: list[Stage] = [AnnotationStage(), RuleStage()]
    if load(TRMSettings).use_trm:
        stages.append(trm_stage())
    if load(LLMSettings).llm_url:
        stages.append(LLMStage())
    return stages


class StageTimeout(Abstain):
    """The stage did not answer within its time budget; the chain moved on without it."""


_POOL: ThreadPoolExecutor | None = None
_POOL_LOCK = threading.Lock()


def _pool() -> ThreadPoolExecutor:
    global _POOL
    with _POOL_LOCK:
        if _POOL is None:
            _POOL = ThreadPoolExecutor(max_workers=16, thread_name_prefix="chain-stage")
        return _POOL


def stage_timeout(stage: Stage) -> float | None:
    """Seconds a stage may take per call: its own ``timeout_s`` (the remote TRM and the LLM derive it
    from their HTTP timeouts, TRM_TIMEOUT_MS and LLM_TIMEOUT_MS), else none: an in-process stage runs
    local code whose cost the model's size bounds. A stage over budget is abandoned (its thread
    finishes in the background) and recorded as ``<name>: timed out after N ms``."""
    own = getattr(stage, "timeout_s", None)
    return float(own) if own else None


def _bounded(fn: Callable[..., Any], arg: Any, timeout: float | None) -> Any:
    if timeout is None:
        return fn(arg)
    fut = _pool().submit(fn, arg)
    try:
        return fut.result(timeout=timeout)
    except FutureTimeout:
        fut.cancel()
        log.warning("stage %s timed out after %.0f ms", getattr(fn, "name", getattr(fn, "__qualname__", fn)),
                    timeout * 1000)
        raise StageTimeout(f"timed out after {timeout * 1000:.0f} ms") from None


def _reason(stage: Stage, err: BaseException) -> str:
    if isinstance(err, Abstain):
        return f"{stage.name}: {err}"
    if isinstance(err, InvalidProposal):
        return f"{stage.name}: rejected proposal ({err})"
    return f"{stage.name}: failed ({type(err).__name__}: {err})"


class Chain:
    def __init__(self, stages: Iterable[Stage] | None = None, strategy: str = "chain"):
        self.stages = list(stages) if stages is not None else build_stages(strategy)

    def decide(self, alert: Alert) -> Decision:
        return self.decide_many([alert])[0]

    def decide_many(self, alerts: list[Alert]) -> list[Decision]:
        """Decide for many alerts; stages that can batch (the TRM) see all pending alerts at once."""
        out: list[Decision | None] = [None] * len(alerts)
        reasons: list[list[str]] = [[] for _ in alerts]
        pending = []
        for i, a in enumerate(alerts):
            if not a.firing:
                out[i] = no_action("alert is resolved: resolved alerts never trigger a remediation")
            else:
                pending.append(i)
        for stage in self.stages:
            if not pending:
                break
            batch_fn = getattr(stage, "batch", None)
            timeout = stage_timeout(stage)
            if batch_fn is not None and len(pending) > 1:
                try:
                    results = _bounded(batch_fn, [alerts[i] for i in pending], timeout)
                except Exception as e:  # noqa: BLE001 - a stage must never take the chain down
                    results = [e] * len(pending)
            else:
                results = []
                for i in pending:
                    try:
                        results.append(_bounded(stage, alerts[i], timeout))
                    except Exception as e:  # noqa: BLE001
                        results.append(e)
            still = []
            for i, r in zip(pending, results):
                if isinstance(r, Decision):
                    out[i] = r.model_copy(update={"fallthrough": reasons[i]})
                else:
                    if not isinstance(r, (Abstain, InvalidProposal)):
                        log.warning("stage %s failed on %s: %r", stage.name, alerts[i].name, r)
                    reasons[i].append(_reason(stage, r))
                    still.append(i)
            pending = still
        for i in pending:
            out[i] = no_action(
                "no stage found a safe remediation; escalate to a human", fallthrough=reasons[i]
            )
        return [d for d in out if d is not None]
