"""Prometheus alerting rules as data: rule files and PrometheusRule manifests → ``AlertRule``.

* ``parse_rules(text, source)`` reads a plain Prometheus rule file (``groups:``), a
  prometheus-operator ``PrometheusRule`` manifest (``spec.groups``) or a ``kind: List`` of them,
  including multi-document YAML, and returns one ``AlertRule`` per alerting rule in file order.
  Recording rules and other Kubernetes objects are skipped; malformed groups raise ``RuleFileError``.
* ``load_rules(path)`` is ``parse_rules`` on a file; ``rule_files(dirs)`` lists the YAML files to read.
* ``rules_from_api(doc, source)`` reads the alerting rules of a Prometheus ``/api/v1/rules`` answer
  (the rules as Prometheus loaded them; ``for`` comes back in seconds).
* ``alert_labels(rule)`` names every label an alert of the rule carries: the labels of its
  expression (``promql.infer_labels``), the rule's own labels and ``alertname``.

Expressions are kept as written (stripped); templates in labels and annotations are not expanded.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import yaml

from .promql import infer_labels


@dataclass(frozen=True)
class AlertRule:
    """One alerting rule: its name, expression, group, the file (or ``source`` text) it came from, its
    ``for`` duration as written, and its own labels and annotations (values as strings, unexpanded)."""

    alert: str
    expr: str
    group: str
    source: str
    for_: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)


class RuleFileError(ValueError):
    """A rule file that is not YAML or whose groups are malformed; the message names the source."""


def _groups_of(doc: Any, where: str) -> list[dict[str, Any]]:
    if not isinstance(doc, dict):
        return []
    if doc.get("kind") == "PrometheusRule":
        spec = doc.get("spec") or {}
        groups = spec.get("groups") if isinstance(spec, dict) else None
    elif doc.get("kind") == "List" and isinstance(doc.get("items"), list):
        return [g for item in doc["items"] for g in _groups_of(item, where)]
    elif "kind" in doc:
        return []  # some other Kubernetes object in the same folder
    else:
        groups = doc.get("groups")
    if groups is None:
        return []
    if not isinstance(groups, list):
        raise RuleFileError(f"{where}: 'groups' must be a list")
    return groups


def parse_rules(text: str, source: str = "<text>") -> list[AlertRule]:
    """The alerting rules of a rule file or PrometheusRule manifest (one or more YAML documents)."""
    try:
        docs = list(yaml.safe_load_all(text))
    except yaml.YAMLError as e:
        raise RuleFileError(f"{source}: not YAML: {e}") from None
    out: list[AlertRule] = []
    for doc in docs:
        for g in _groups_of(doc, source):
            if not isinstance(g, dict):
                raise RuleFileError(f"{source}: a group must be a mapping")
            for r in g.get("rules") or []:
                if not isinstance(r, dict) or "alert" not in r:
                    continue
                if "expr" not in r:
                    raise RuleFileError(f"{source}: alert {r['alert']!r} has no expr")
                out.append(AlertRule(
                    alert=str(r["alert"]), expr=str(r["expr"]).strip(), group=str(g.get("name", "")),
                    source=source, for_=None if r.get("for") is None else str(r["for"]),
                    labels={str(k): str(v) for k, v in (r.get("labels") or {}).items()},
                    annotations={str(k): str(v) for k, v in (r.get("annotations") or {}).items()},
                ))
    return out


def rules_from_api(doc: Any, source: str) -> list[AlertRule]:
    """The alerting rules of a Prometheus ``GET /api/v1/rules`` answer, in the order listed."""
    groups = ((doc or {}).get("data") or {}).get("groups") if isinstance(doc, dict) else None
    if not isinstance(groups, list):
        raise RuleFileError(f"{source}: not a Prometheus rules answer (no data.groups)")
    out: list[AlertRule] = []
    for g in groups:
        for r in (g.get("rules") or []) if isinstance(g, dict) else []:
            if not isinstance(r, dict) or r.get("type") != "alerting" or "query" not in r:
                continue
            duration = r.get("duration")
            out.append(AlertRule(
                alert=str(r.get("name", "")), expr=str(r["query"]).strip(), group=str(g.get("name", "")),
                source=f"{source} {g.get('file', '')}".strip(), for_=f"{int(duration)}s" if duration else None,
                labels={str(k): str(v) for k, v in (r.get("labels") or {}).items()},
                annotations={str(k): str(v) for k, v in (r.get("annotations") or {}).items()},
            ))
    return out


def load_rules(path: str | Path) -> list[AlertRule]:
    """``parse_rules`` on the file at ``path`` (its path is the rules' ``source``)."""
    p = Path(path)
    return parse_rules(p.read_text(), str(p))


def rule_files(dirs: Iterable[str | Path]) -> list[Path]:
    """YAML files under each directory (recursively), or the path itself when it is a file."""
    out: list[Path] = []
    for d in dirs:
        d = Path(d)
        if d.is_file():
            out.append(d)
        elif d.is_dir():
            out.extend(sorted(p for p in d.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file()))
    return out


def alert_labels(rule: AlertRule) -> list[str]:
    """Every label an alert of ``rule`` carries: inferred series labels, rule labels, alertname."""
    inf = infer_labels(rule.expr)
    return sorted(set(inf.labels) | set(rule.labels) | {"alertname"})
