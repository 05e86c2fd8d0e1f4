"""`agent-sre dataset collect`: gather alert examples from where they really live.

Sources (each optional):

* rule directories: plain Prometheus rule files and PrometheusRule manifests;
* a running Prometheus: ``/api/v1/rules`` (alerting rules as loaded) and ``/api/v1/alerts``;
* a running Alertmanager: ``/api/v2/alerts``;
* the agent's audit log (JSON lines): outcomes of past decisions, joined on ``correlation_id``.

Every record has the dataset shape::

    {"alert": {"labels": {...}, "annotations": {...}, "status": "firing"},
     "expect": null | {"lambda_function": ..., "parameters": {...}},
     "meta": {"source": ..., "expr": ..., "inferred_labels": [...], ...}}

Rule records carry the labels whose values are known (``alertname``, the rule's labels, values
fixed by equality matchers) and list in ``meta.inferred_labels`` every label a real alert of the
rule carries (inferred from the expression by ``promql.infer_labels``), with ``meta.label_values``
giving values matchers allow, so a generator can fill them like a real alert. ``expect`` is only
set from an outcome of the closed loop (``from_audit_log``: verified → the decision, ineffective or
rejected → no action); everything else, dry-run results included, is left for labelling.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Iterable

import httpx

from .promql import PromQLError, infer_labels
from .rules import RuleFileError, load_rules, rule_files

log = logging.getLogger(__name__)

class CollectError(RuntimeError):
    pass


# --------------------------------------------------------------------------- records


def _rule_meta(expr: str, source: str, **extra: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {"source": source, "expr": expr}
    try:
        inf = infer_labels(expr)
        meta.update(inferred_labels=inf.labels, labels_open=inf.open, metrics=inf.metrics,
                    label_values=inf.values())
    except PromQLError as e:
        meta.update(inferred_labels=[], labels_open=True, metrics=[], label_values={},
                    inference_error=str(e))
    meta.update({k: v for k, v in extra.items() if v is not None})
    return meta


def rule_record(alert: str, expr: str, labels: dict[str, str], annotations: dict[str, str],
                source: str, **extra: Any) -> dict[str, Any]:
    meta = _rule_meta(expr, source, **extra)
    known = {"alertname": alert}
    for label, values in meta["label_values"].items():
        if len(values) == 1:
            known[label] = values[0]
    known.update({str(k): str(v) for k, v in labels.items()})
    meta["inferred_labels"] = sorted(set(meta["inferred_labels"]) | set(known))
    if annotations.get("lambda_function"):
        meta["static_function"] = annotations["lambda_function"]
    return {"alert": {"labels": known, "annotations": dict(annotations), "status": "firing"},
            "expect": None, "meta": meta}


def alert_record(labels: dict[str, Any], annotations: dict[str, Any], status: str, source: str,
                 expr: str | None, **extra: Any) -> dict[str, Any]:
    meta = _rule_meta(expr, source, **extra) if expr else {"source": source, "expr": None,
                                                            "inferred_labels": sorted(labels)}
    if expr:
        meta["inferred_labels"] = sorted(set(meta["inferred_labels"]) | set(labels))
    meta.update({k: v for k, v in extra.items() if v is not None})
    return {"alert": {"labels": {str(k): str(v) for k, v in labels.items()},
                      "annotations": {str(k): str(v) for k, v in (annotations or {}).items()},
                      "status": status},
            "expect": None, "meta": meta}


# --------------------------------------------------------------------------- sources


def from_rule_dirs(dirs: Iterable[str | Path]) -> list[dict[str, Any]]:
    out = []
    for path in rule_files(dirs):
        try:
            rules = load_rules(path)
        except RuleFileError as e:
            log.warning("skipping %s", e)
            continue
        for r in rules:
            out.append(rule_record(r.alert, r.expr, r.labels, r.annotations, "rule_file",
                                   file=str(path), group=r.group, **{"for": r.for_}))
    return out


def _get(client: httpx.Client, url: str) -> Any:
    try:
        r = client.get(url)
        r.raise_for_status()
        return r.json()
    except (httpx.HTTPError, ValueError) as e:
        raise CollectError(f"GET {url}: {e}") from None


def from_prometheus(url: str, client: httpx.Client) -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, str]]:
    """(rule records, alert records, alertname -> expr) from a running Prometheus."""
    base = url.rstrip("/")
    rules_doc = _get(client, f"{base}/api/v1/rules?type=alert")
    exprs: dict[str, str] = {}
    rules = []
    for g in rules_doc.get("data", {}).get("groups", []):
        for r in g.get("rules", []):
            if r.get("type") != "alerting":
                continue
            exprs.setdefault(r["name"], r["query"])
            rules.append(rule_record(r["name"], r["query"], r.get("labels") or {}, r.get("annotations") or {},
                                     "prometheus_rule", file=g.get("file"), group=g.get("name"),
                                     health=r.get("health"), state=r.get("state"),
                                     **{"for": _duration(r.get("duration"))}))
    alerts_doc = _get(client, f"{base}/api/v1/alerts")
    alerts = []
    for a in alerts_doc.get("data", {}).get("alerts", []):
        labels = a.get("labels") or {}
        alerts.append(alert_record(labels, a.get("annotations") or {}, "firing", "prometheus_alert",
                                   exprs.get(labels.get("alertname", "")), state=a.get("state"),
                                   activeAt=a.get("activeAt")))
    return rules, alerts, exprs


def _duration(seconds: Any) -> str | None:
    if not seconds:
        return None
    return f"{int(seconds)}s"


def from_alertmanager(url: str, client: httpx.Client, exprs: dict[str, str]) -> list[dict[str, Any]]:
    doc = _get(client, f"{url.rstrip('/')}/api/v2/alerts")
    out = []
    for a in doc if isinstance(doc, list) else []:
        labels = a.get("labels") or {}
        state = (a.get("status") or {}).get("state")
        rec = alert_record(labels, a.get("annotations") or {}, "firing", "alertmanager",
                           exprs.get(labels.get("alertname", "")), state=state,
                           fingerprint=a.get("fingerprint"), startsAt=a.get("startsAt"),
                           generatorURL=a.get("generatorURL"))
        for k in ("fingerprint", "startsAt", "endsAt", "generatorURL"):
            if a.get(k):
                rec["alert"][k] = a[k]
        out.append(rec)
    return out


def _read_jsonl(path: Path) -> Iterable[dict[str, Any]]:
    with path.open(errors="replace") as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                doc = json.loads(line)
            except ValueError:
                log.warning("%s:%d: not JSON, skipped", path, n)
                continue
            if isinstance(doc, dict):
                yield doc


def _alert_in(doc: Any) -> dict[str, Any] | None:
    if not isinstance(doc, dict):
        return None
    if isinstance(doc.get("labels"), dict) and doc["labels"].get("alertname"):
        return doc
    for k in ("alert", "data"):
        found = _alert_in(doc.get(k))
        if found:
            return found
    return None


def _call_in(doc: Any) -> tuple[str, dict[str, Any]] | None:
    """(function, parameters) named by a decision / trigger / result document."""
    if not isinstance(doc, dict):
        return None
    fn = doc.get("lambda_function") or doc.get("function")
    if isinstance(fn, str) and fn:
        params = doc.get("parameters")
        return fn, params if isinstance(params, dict) else {}
    for k in ("decision", "data"):
        found = _call_in(doc.get(k))
        if found:
            return found
    return None


# What an outcome of the closed loop teaches (agent_sre.loop): a verified fix shows the decision was
# right; an ineffective one, or a person rejecting it, that it was wrong. A failed function says
# nothing about the decision (RBAC, a missing object), nor does an unverified outcome.
LABELS = {"verified": "positive", "ineffective": "negative", "rejected": "negative"}


def _plan_of(decision: Any) -> list[dict[str, Any]]:
    steps = decision.get("plan") if isinstance(decision, dict) else None
    return [{"lambda_function": s.get("lambda_function"), "parameters": dict(s.get("parameters") or {})}
            for s in steps or [] if isinstance(s, dict)]


def from_audit_log(path: str | Path) -> list[dict[str, Any]]:
    """One record per alert occurrence that reached a function or a person (joined on
    ``correlation_id``), labelled by its outcome:

    * ``verified`` → a positive example: ``expect`` is the decision that led to it (``meta.label``
      ``positive``);
    * ``ineffective`` or ``rejected`` → a negative one: ``expect`` is no action (escalate: a person
      should decide), the decision that was wrong in ``meta.rejected`` (``meta.label`` ``negative``);
    * anything else — a failed function, an unverified outcome, no outcome yet and every dry-run
      result (nothing was changed, so nothing shows the decision right or wrong) — unlabelled
      (``expect`` null), with what happened in ``meta``.

    The same alert (labels and annotations) seen several times keeps its latest record. Lenient:
    unknown kinds and fields are ignored, the data may sit under ``data`` or at the top."""
    from ..trm.records import no_action_expect, record_key

    seen: dict[str, dict[str, Any]] = {}
    order: list[str] = []
    for rec in _read_jsonl(Path(path)):
        data = rec.get("data") if isinstance(rec.get("data"), dict) else rec
        corr = rec.get("correlation_id") or data.get("correlation_id")
        if not corr:
            continue
        if corr not in seen:
            seen[corr] = {}
            order.append(corr)
        st = seen[corr]
        alert = _alert_in(rec)
        if alert and "alert" not in st:
            st["alert"] = alert
        kind = rec.get("kind")
        if kind == "decision" and "decision" not in st and isinstance(data.get("decision"), dict):
            st["decision"] = data["decision"]
        if kind in ("decision", "event", "trigger") and "call" not in st:
            call = _call_in(data)
            if call:
                st["call"] = call
        if kind == "result":
            st["result"] = data
        if kind == "outcome":
            st["outcome"] = data
    latest: dict[str, dict[str, Any]] = {}
    for corr in order:
        st = seen[corr]
        if "result" not in st and "outcome" not in st:
            continue
        alert = st.get("alert")
        if not alert:
            log.info("audit outcome %s has no alert to join; skipped", corr)
            continue
        result, outcome = st.get("result") or {}, st.get("outcome") or {}
        decision = st.get("decision") or {}
        call = (decision.get("lambda_function"), decision.get("parameters") or {}) if decision.get("lambda_function") \
            else st.get("call")
        label = LABELS.get(outcome.get("outcome")) if call else None
        expect: dict[str, Any] | None = None
        if label == "positive":
            expect = {"lambda_function": call[0], "parameters": dict(call[1])}
            if len(_plan_of(decision)) > 1:
                expect["plan"] = _plan_of(decision)
        elif label == "negative":
            expect = no_action_expect()
        out = {
            "alert": {"labels": {str(k): str(v) for k, v in alert["labels"].items()},
                      "annotations": {str(k): str(v) for k, v in (alert.get("annotations") or {}).items()},
                      "status": "firing"},
            "expect": expect,
            "meta": {"source": "audit", "expr": None, "inferred_labels": sorted(alert["labels"]),
                     "correlation_id": corr, "label": label, "outcome": outcome.get("outcome"),
                     "reason": outcome.get("reason"), "result": result.get("status"),
                     "dry_run": result.get("dry_run"), "message": result.get("message"),
                     "function": call[0] if call else None},
        }
        if label == "negative":
            out["meta"]["rejected"] = {"lambda_function": call[0], "parameters": dict(call[1])}
        key = record_key(out)
        if key in latest:
            del latest[key]  # re-inserted below: the latest wins and keeps its place in time
        latest[key] = out
    return list(latest.values())


def record_alert(doc: Any) -> dict[str, Any] | None:
    """The alert of a dataset record (``{"alert": {...}, "expect": ...}``, what ``collect`` and
    ``dataset generate`` write), so ``select`` and ``preview`` read those files too."""
    if isinstance(doc, dict) and isinstance(doc.get("alert"), dict) and "expect" in doc:
        return doc["alert"]
    return None


# --------------------------------------------------------------------------- entry point


def _dedupe(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rules seen in files and in Prometheus, alerts seen in Prometheus and Alertmanager: keep one
    record each (the first; Alertmanager comes before Prometheus for alerts) and list the sources."""
    seen: dict[Any, dict[str, Any]] = {}
    out = []
    for r in records:
        src = r["meta"]["source"]
        if src in ("rule_file", "prometheus_rule"):
            # Prometheus prints expressions in its own formatting: compare what they mean to us.
            m = r["meta"]
            key = ("rule", r["alert"]["labels"]["alertname"], tuple(m.get("metrics", ())),
                   tuple(m.get("inferred_labels", ())), json.dumps(m.get("label_values", {}), sort_keys=True))
        elif src in ("alertmanager", "prometheus_alert"):
            key = ("alert", tuple(sorted(r["alert"]["labels"].items())))
        else:
            out.append(r)
            continue
        if key in seen:
            seen[key]["meta"].setdefault("seen_in", [seen[key]["meta"]["source"]]).append(src)
            continue
        seen[key] = r
        out.append(r)
    return out


def collect(rule_dirs: Iterable[str | Path] | None = None, prometheus_url: str | None = None,
            alertmanager_url: str | None = None, audit_log: str | Path | None = None,
            *, timeout: float = 10.0) -> list[dict[str, Any]]:
    """Records from every source given (see the module docstring)."""
    records: list[dict[str, Any]] = list(from_rule_dirs(rule_dirs or []))
    exprs: dict[str, str] = {}
    for rec in records:
        exprs.setdefault(rec["alert"]["labels"]["alertname"], rec["meta"]["expr"])
    with httpx.Client(timeout=timeout) as client:
        prom_alerts: list[dict[str, Any]] = []
        if prometheus_url:
            rules, prom_alerts, live = from_prometheus(prometheus_url, client)
            records += rules
            exprs.update(live)
        if alertmanager_url:
            records += from_alertmanager(alertmanager_url, client, exprs)
        records += prom_alerts
    if audit_log:
        records += from_audit_log(audit_log)
    return _dedupe(records)
