"""Every environment variable agent-sre reads, declared once, read one way.

Each group below is a pydantic model whose fields are settings: the field name upper-cased is the
variable (``dry_run`` → ``DRY_RUN``), the default is what an unset *or empty* variable means, and
the description is what ``--help`` prints. A command honours the groups it lists in ``COMMANDS``.

Reading fails closed: a value that does not parse (``DRY_RUN=enabled``, ``PORT=abc``) raises
``SettingsError`` naming the variable, and the command stops before it serves anything. Booleans
accept exactly true/false, 1/0, yes/no, on/off, in any case.

    from agent_sre.settings import AgentSettings, load
    s = load(AgentSettings)            # os.environ
    s = load(AgentSettings, {"DRY_RUN": "false"})   # any mapping (tests)
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal, Mapping, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

_TRUE = ("true", "1", "yes", "on")
_FALSE = ("false", "0", "no", "off")


class SettingsError(ValueError):
    """A setting that cannot be used; the message names the variable and what it accepts."""


def parse_flag(value: Any, name: str = "value") -> bool:
    """The one boolean reader: true/false/1/0/yes/no/on/off (any case); anything else is an error."""
    if isinstance(value, bool):
        return value
    v = str(value).strip().lower()
    if v in _TRUE:
        return True
    if v in _FALSE:
        return False
    raise SettingsError(f"{name}={value!r} is not a boolean; use one of {'/'.join(_TRUE + _FALSE)}")


def _flag(value: Any) -> bool:
    try:
        return parse_flag(value)
    except SettingsError as e:
        raise ValueError(str(e).split("=", 1)[-1]) from None


Flag = Annotated[bool, BeforeValidator(_flag)]


_DURATION = re.compile(r"-?\d+|-?(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+")


def _keep_alive(value: Any) -> str:
    """A Go duration (``30m``, ``1h30m``) or whole seconds (``-1``: for ever), as Ollama reads it."""
    v = str(value).strip()
    if not _DURATION.fullmatch(v):
        raise ValueError(f"{v!r} is not a duration like 30m, 24h or -1")
    return v


class _Group(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


LogLevel = Annotated[Literal["critical", "error", "warning", "info", "debug"], BeforeValidator(str.lower)]


class ServerSettings(_Group):
    host: str = Field("0.0.0.0", description="address to listen on")
    port: int = Field(8080, ge=1, le=65535, description="port to listen on")
    log_level: LogLevel = Field("info", description="log level")
    max_body_bytes: int | None = Field(None, ge=1024, description="largest request body accepted, in bytes (default: "
                                                                  "16 MiB for serve, 1 MiB for the other services)")
    read_timeout_seconds: float = Field(15.0, gt=0, description="a request whose head and body have not arrived "
                                                                "within this time is cut off (408)")

    def body_limit(self, default: int) -> int:
        return self.max_body_bytes or default


class StateSettings(_Group):
    state_dir: Path = Field(Path(".agent-sre"), description="where SQLite state, the outbox and the audit log live")
    state_db: Path | None = Field(None, description="gate state database (default STATE_DIR/state.db)")
    outbox_db: Path | None = Field(None, description="outbox database (default STATE_DIR/outbox.db)")
    audit_log: Path | None = Field(None, description="audit log (default STATE_DIR/audit.jsonl)")
    redis_url: str | None = Field(None, description="keep gate state in Redis instead of SQLite")
    audit_max_bytes: int = Field(64 << 20, ge=4096, description="the audit log is rotated when it grows past this "
                                                               "(the chain continues in the next file)")
    audit_keep: int = Field(8, ge=0, description="rotated audit files kept, oldest removed first (0: keep all)")

    @property
    def state_path(self) -> Path:
        return self.state_db or self.state_dir / "state.db"

    @property
    def outbox_path(self) -> Path:
        return self.outbox_db or self.state_dir / "outbox.db"

    @property
    def audit_path(self) -> Path:
        return self.audit_log or self.state_dir / "audit.jsonl"


class AgentSettings(_Group):
    dry_run: Flag = Field(True, description="true: functions write nothing; false: execute (the policy may be stricter)")
    broker_url: str | None = Field(None, description="Knative broker for trigger events (default: in-process broker)")
    auth_token: str | None = Field(None, description="bearer token intake requests must carry")
    intake_concurrency: int = Field(2, ge=1, description="agent calls in flight at once")
    delivery_concurrency: int = Field(4, ge=1, description="outbox delivery threads")
    retry_base_seconds: float = Field(1.0, gt=0, description="first delivery retry delay")
    retry_max_seconds: float = Field(300.0, gt=0, description="longest delivery retry delay")
    retry_max_attempts: int = Field(12, ge=1, description="delivery attempts before a dead letter")
    intake_chunk: int = Field(256, ge=1, description="alerts decided and committed together; a larger request "
                                                     "goes through in chunks of this size")
    answer_outcomes_max: int = Field(100, ge=0, description="per-alert outcomes in one HTTP answer (its counts "
                                                            "cover every alert)")
    outbox_lease_seconds: float = Field(30.0, gt=0, description="how long a claim on an accepted alert or an event "
                                                                "lasts; renewed while the agent works on it")
    outbox_retention_seconds: float = Field(14 * 86400, gt=0, description="delivered events, decided alerts and "
                                                                         "results are kept this long (at least the "
                                                                         "policy's dedup_seconds)")
    dead_letter_max_bytes: int = Field(64 << 10, ge=1024, description="largest dead-letter event accepted (bytes)")
    dead_letter_per_minute: int = Field(60, ge=1, description="dead letters recorded per minute; more get 429")


class LoopSettings(_Group):
    """The closed loop: verification, approvals, escalations that reach people."""

    alertmanager_url: str | None = Field(None, description="Alertmanager whose v2 API says whether a remediated "
                                                          "alert is still active (unset: only its resolved webhook)")
    prometheus_url: str | None = Field(None, description="Prometheus whose rules API gives each alert's decay window")
    verify_default_window_seconds: float = Field(900.0, gt=0, description="decay window when the alert's rule "
                                                                         "cannot be read")
    verify_grace_seconds: float = Field(60.0, ge=0, description="added to every decay window (scrape and "
                                                               "notification delays)")
    verify_group_interval_seconds: float | None = Field(None, gt=0, description="Alertmanager group_interval "
                                                      "(default: read from ALERTMANAGER_URL, else 300)")
    verify_poll_seconds: float = Field(10.0, gt=0, description="how often open verifications and approvals are checked")
    approval_ttl_seconds: float = Field(3600.0, gt=0, description="an approval request expires after this long")
    escalate_alertmanager_url: str | None = Field(None, description="post escalations to this Alertmanager's v2 API "
                                                                   "as alerts")
    slack_webhook_url: str | None = Field(None, description="Slack-compatible incoming webhook for approval "
                                                           "requests and escalations")
    external_url: str | None = Field(None, description="the agent's URL as people reach it (links in messages)")


class ClientSettings(_Group):
    """What the operator commands (approve, reject, pin) need to talk to a running agent."""

    agent_url: str = Field("http://127.0.0.1:8080", description="the agent's HTTP API")
    auth_token: str | None = Field(None, description="the agent's bearer token (its AUTH_TOKEN)")


class IncidentSettings(_Group):
    incidents: Flag = Field(True, description="decide each alert in the context of the others firing: act once on "
                                              "an incident's root, hold its symptoms, escalate once")
    incident_settle_seconds: float = Field(10.0, ge=0, description="a trigger or escalation for an alert that could "
                                           "be a symptom (a pod, a Flux object built from a source) waits this long "
                                           "for its root to arrive")
    incident_release_seconds: float = Field(30.0, ge=0, description="after a root resolves, its symptoms still "
                                            "firing are decided on their own this much later")
    incident_stale_seconds: float = Field(21600.0, gt=0, description="a firing alert not re-sent for this long "
                                          "leaves the incident view")
    incident_kube: Flag = Field(False, description="confirm links with the Kubernetes API (read-only: pods, Flux "
                                                   "objects), in-cluster or through KUBECONFIG")
    kubeconfig: str | None = Field(None, description="kubeconfig file for INCIDENT_KUBE outside a pod")
    alertmanager_poll_seconds: float = Field(15.0, gt=0, description="how often the incident view reads the active "
                                             "alerts from ALERTMANAGER_URL (its v2 API), when that is set")


class PolicySettings(_Group):
    policy_path: Path | None = Field(None, description="policy.yaml (default: the packaged policy)")


class RunbookSettings(_Group):
    runbook_path: Path | None = Field(None, description="runbook.yaml (default: the packaged runbook)")


class TRMSettings(_Group):
    use_trm: Flag = Field(True, description="put the TRM stage in the chain")
    model_path: Path | None = Field(None, description="exported TRM (default: the packaged model)")
    trm_api_url: str | None = Field(None, description="ask a trm-reasoning service instead of the in-process model")
    trm_timeout_ms: float = Field(2000, gt=0, description="time budget per call to TRM_API_URL (the remote TRM stage)")
    trm_connect_timeout_ms: float = Field(500, gt=0, description="connect timeout to TRM_API_URL")
    trm_backend: Literal["auto", "onnx", "torch"] = Field("auto", description="auto: ONNX Runtime when installed")
    trm_threshold: float | None = Field(None, ge=0, le=1, description="abstain below this confidence (default: the model's)")
    torch_threads: int = Field(1, ge=1, description="intra-op threads of the TRM forward pass")
    trm_batch_max: int = Field(64, ge=1, description="alerts per forward pass")
    device: str = Field("cpu", description="cpu, or cuda for the GPU variant (torch backend)")


class LLMSettings(_Group):
    llm_url: str | None = Field(None, description="Ollama or OpenAI-compatible endpoint; unset: no LLM stage")
    llm_model: str = Field("functiongemma:270m", description="model name")
    llm_api: Annotated[Literal["", "ollama", "openai"], BeforeValidator(str.lower)] = Field(
        "", description="wire format, ollama or openai (default: from the URL)")
    llm_api_key: str | None = Field(None, description="bearer token for the LLM endpoint")
    llm_connect_timeout_ms: float = Field(1000, gt=0, description="connect timeout")
    llm_timeout_ms: float = Field(10000, gt=0, description="read timeout")
    llm_breaker_failures: int = Field(3, ge=1, description="consecutive failures that open the circuit")
    llm_breaker_cooloff_s: float = Field(30, gt=0, description="seconds the circuit stays open")
    llm_keep_alive: Annotated[str, BeforeValidator(_keep_alive)] = Field(
        "30m", description="Ollama API: how long the model stays loaded after a call (e.g. 30m, 24h, -1: "
                           "for ever); Ollama unloads an idle model after 5m otherwise")
    llm_tool_choice: Literal["", "auto", "required", "none"] = Field(
        "", description="tool_choice sent to an OpenAI-compatible server (unset: not sent; servers not started "
                        "for tool choice refuse it)")
    llm_max_tokens: int = Field(256, ge=16, description="longest answer the model may write (a tool call needs "
                                                        "a few dozen tokens)")


class ReasoningSettings(_Group):
    batch_max: int = Field(64, ge=1, description="alerts per forward pass")
    batch_wait_ms: float = Field(2.0, ge=0, description="longest wait to fill a batch")
    queue_max: int = Field(4096, ge=1, description="alerts waiting before 503")
    reload_interval_s: float = Field(10, gt=0, description="retry interval for a model that failed to load")


class FunctionSettings(_Group):
    dry_run: Flag = Field(True, description="true: nothing is written (dryRun=All); false: act when the trigger says so")
    policy_path: Path | None = Field(None, description="policy.yaml, re-applied before acting (default: the packaged "
                                                       "policy)")
    function: str | None = Field(None, description="serve only this function (default: all)")
    kubeconfig: str | None = Field(None, description="kubeconfig file (unset: the ServiceAccount in a pod, else no "
                                                     "cluster and dry-run only)")
    state_dir: Path | None = Field(None, description="remember answered trigger ids (SQLite) and keep the audit "
                                                     "log here; required unless FUNCTION_LOCAL_MODE")
    idempotency_max: int = Field(10_000, ge=1, description="trigger ids remembered")
    k_sink: str | None = Field(None, description="also POST each result event here (Knative SinkBinding)")
    result_sink: str | None = Field(None, description="same as K_SINK, outside Knative")
    prometheus_url: str | None = Field(None, description="Prometheus for check-pvc-status usage")
    prometheus_timeout: float = Field(5.0, gt=0, description="seconds per Prometheus query")
    pvc_usage_threshold: float = Field(0.85, gt=0, le=1, description="used ratio reported unhealthy")
    flux_with_source: Flag = Field(False, description="reconcile the source first")
    flux_force: Flag = Field(False, description="HelmRelease: also request forceAt")
    flux_wait_seconds: float = Field(30.0, ge=0, description="how long to watch Ready after a reconcile request")
    flux_poll_seconds: float = Field(2.0, gt=0, description="Ready polling interval")
    verify_wait_seconds: float = Field(30.0, ge=0, description="how long pod-restart watches for a Ready replacement "
                                                             "or a complete rollout after acting")
    verify_poll_seconds: float = Field(2.0, gt=0, description="polling interval of that watch")
    pod_events: int = Field(5, ge=0, description="recent events reported per pod")
    kube_timeout: float = Field(10.0, gt=0, description="seconds per Kubernetes API request")


_MAX_AGE = Field(300.0, gt=0, description="seconds a signed trigger or result stays acceptable (signed at each "
                                          "delivery attempt)")


class AgentKeySettings(_Group):
    """The agent's keys (Kubernetes Secrets mounted under /var/run/secrets/agent-sre/)."""

    agent_signing_key: Path | None = Field(None, description="the agent's Ed25519 private key (PEM): signs triggers "
                                                             "and audit checkpoints; required with BROKER_URL")
    function_public_keys: str | None = Field(None, description="the functions' public keys (PEM files, comma-separated, "
                                                               "or a directory; at most two): results and dead "
                                                               "letters must be signed by one; required with BROKER_URL")
    agent_public_keys: str | None = Field(None, description="the agent's public keys (at most two): dead-lettered "
                                                            "triggers and audit checkpoints signed by a previous key")
    audit_hmac_key: Path | None = Field(None, description="key of the audit log's HMAC chain (at least 32 bytes); "
                                                          "required in execute mode")
    trigger_max_age_s: float = _MAX_AGE


class FunctionKeySettings(_Group):
    """The functions' keys (Kubernetes Secrets mounted under /var/run/secrets/agent-sre/)."""

    function_signing_key: Path | None = Field(None, description="the functions' Ed25519 private key (PEM): signs "
                                                                "result events; required unless FUNCTION_LOCAL_MODE")
    agent_public_keys: str | None = Field(None, description="the agent's public keys (PEM files, comma-separated, or "
                                                            "a directory; at most two): triggers must be signed by "
                                                            "one; required unless FUNCTION_LOCAL_MODE")
    audit_hmac_key: Path | None = Field(None, description="key of the functions' audit log chain (STATE_DIR/"
                                                          "functions-audit.jsonl)")
    function_local_mode: Literal["dry-run-only"] | None = Field(
        None, description="dry-run-only: serve without keys or STATE_DIR, unsigned triggers accepted, nothing "
                          "ever written (local experiments)")
    trigger_max_age_s: float = _MAX_AGE


class CollectSettings(_Group):
    prometheus_url: str | None = Field(None, description="Prometheus to read rules and active alerts from")
    alertmanager_url: str | None = Field(None, description="Alertmanager to read active alerts from")
    audit_log: Path | None = Field(None, description="an agent's audit log to read recorded outcomes from")


G = TypeVar("G", bound=_Group)


def env_name(field: str) -> str:
    return field.upper()


def load(group: type[G], env: Mapping[str, str] | None = None) -> G:
    """Read ``group`` from ``env`` (default ``os.environ``). Empty values count as unset."""
    env = os.environ if env is None else env
    values = {}
    for name in group.model_fields:
        raw = env.get(env_name(name))
        if raw is not None and raw.strip() != "":
            values[name] = raw.strip()
    try:
        return group.model_validate(values)
    except ValidationError as e:
        err = e.errors()[0]
        var = env_name(str(err["loc"][0])) if err["loc"] else group.__name__
        raw = values.get(str(err["loc"][0])) if err["loc"] else None
        raise SettingsError(f"{var}={raw!r}: {err['msg'].removeprefix('Value error, ')}") from None


# Which groups each command honours (its --help lists every one of their settings).
COMMANDS: dict[str, tuple[type[_Group], ...]] = {
    "serve": (ServerSettings, StateSettings, AgentSettings, AgentKeySettings, PolicySettings, LoopSettings,
              IncidentSettings,
              RunbookSettings, TRMSettings, LLMSettings),
    "serve-function": (ServerSettings, FunctionSettings, FunctionKeySettings),
    "serve-reasoning": (ServerSettings, TRMSettings, ReasoningSettings),
    "select": (RunbookSettings, TRMSettings, LLMSettings),
    "demo": (RunbookSettings, TRMSettings, LLMSettings),
    "preview": (PolicySettings, RunbookSettings, TRMSettings, LLMSettings),
    "history": (StateSettings, AgentKeySettings),
    "outbox": (StateSettings,),
    "outcomes": (StateSettings, PolicySettings),
    "approve": (ClientSettings,),
    "reject": (ClientSettings,),
    "pin": (ClientSettings,),
    "dataset collect": (CollectSettings,),
}


def describe(groups: tuple[type[_Group], ...]) -> list[tuple[str, str, str]]:
    """(VARIABLE, default, description) for every setting of ``groups``, in order, once each."""
    out, seen = [], set()
    for g in groups:
        for name, f in g.model_fields.items():
            var = env_name(name)
            if var in seen:
                continue
            seen.add(var)
            default = f.default
            shown = "unset" if default in (None, "") else (str(default).lower() if isinstance(default, bool)
                                                             else str(default))
            out.append((var, shown, f.description or ""))
    return out
