"""Which labels the alerts of a PromQL expression carry, from a small parser that follows the
engine's label semantics.

``infer_labels(expr)`` returns an ``Inferred``: the label names of the result series, whether
further unnamed labels may appear (``open``), the metric names used and the label matchers written.

* a selector carries its matchers' labels plus the metric's usual labels when the metric is a
  well-known one (``KNOWN_METRICS``: kube-state-metrics, kubelet, Flux, ``up``), and is "open"
  otherwise;
* aggregations keep exactly their ``by (...)`` labels, or drop their ``without (...)`` labels;
* one-to-one binary operations keep the left side's labels, only the ``on (...)`` labels, or the
  left side's minus ``ignoring (...)``; ``group_left/right (...)`` add labels from the other side;
  ``and``/``unless`` keep the left side, ``or`` either side;
* ``label_replace``/``label_join`` add their destination label, ``histogram_quantile`` drops
  ``le``, ``absent`` keeps only equality-matched labels, ``vector``/``time`` carry none.

``Inferred.values()`` lists the values the matchers allow, so an example alert of a rule can use
values a real one would have (e.g. ``reason="CrashLoopBackOff"``). To teach the parser a metric's
labels, add it to ``KNOWN_METRICS``. Syntax it cannot read raises ``PromQLError``.

``lookback_seconds(expr)`` is how far back the expression reads: its longest range (``[5m]``,
a subquery's ``[1h:1m]`` plus the ranges inside it) with its ``offset`` — how long an alert can
keep firing after the condition it watches has cleared (the closed loop's decay window).

``infer_labels(expr, scrape=True)`` also gives each selector the labels a scraped series carries
beyond its matchers (``exporters.scraped_labels``: the exporter's own labels and the scrape
target's ``job``, ``instance``, ``namespace``, ``pod``, ...), so aggregations keep or drop them as
the engine would; that is what a real alert of the rule delivers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from .exporters import scraped_labels

# --------------------------------------------------------------------------- known metrics

_TARGET = ("job", "instance")
KNOWN_METRICS: dict[str, tuple[str, ...]] = {
    # Flux controllers (scraped from flux-system: the object's namespace becomes exported_namespace).
    "gotk_reconcile_condition": ("kind", "name", "exported_namespace", "namespace", "type", "status", "pod", *_TARGET),
    "gotk_reconcile_duration_seconds": ("kind", "name", "exported_namespace", "namespace", "pod", *_TARGET),
    "gotk_suspend_status": ("kind", "name", "exported_namespace", "namespace", "pod", *_TARGET),
    "gotk_resource_info": ("customresource_group", "customresource_kind", "customresource_version",
                           "name", "exported_namespace", "ready", "suspended", "revision", *_TARGET),
    # kube-state-metrics (scraped with honor_labels: the object's own namespace).
    "kube_pod_container_status_waiting_reason": ("namespace", "pod", "uid", "container", "reason", *_TARGET),
    "kube_pod_container_status_waiting": ("namespace", "pod", "uid", "container", *_TARGET),
    "kube_pod_container_status_restarts_total": ("namespace", "pod", "uid", "container", *_TARGET),
    "kube_pod_container_status_terminated_reason": ("namespace", "pod", "uid", "container", "reason", *_TARGET),
    "kube_pod_status_phase": ("namespace", "pod", "uid", "phase", *_TARGET),
    "kube_pod_status_ready": ("namespace", "pod", "uid", "condition", *_TARGET),
    "kube_pod_info": ("namespace", "pod", "uid", "node", "created_by_kind", "created_by_name", "host_ip", "pod_ip", *_TARGET),
    "kube_pod_owner": ("namespace", "pod", "uid", "owner_kind", "owner_name", "owner_is_controller", *_TARGET),
    "kube_deployment_status_replicas_available": ("namespace", "deployment", *_TARGET),
    "kube_deployment_spec_replicas": ("namespace", "deployment", *_TARGET),
    "kube_statefulset_status_replicas_ready": ("namespace", "statefulset", *_TARGET),
    "kube_daemonset_status_number_unavailable": ("namespace", "daemonset", *_TARGET),
    "kube_persistentvolumeclaim_status_phase": ("namespace", "persistentvolumeclaim", "phase", *_TARGET),
    "kube_persistentvolumeclaim_info": ("namespace", "persistentvolumeclaim", "storageclass", "volumename", *_TARGET),
    # kubelet volume stats.
    "kubelet_volume_stats_available_bytes": ("namespace", "persistentvolumeclaim", "node", *_TARGET),
    "kubelet_volume_stats_capacity_bytes": ("namespace", "persistentvolumeclaim", "node", *_TARGET),
    "kubelet_volume_stats_used_bytes": ("namespace", "persistentvolumeclaim", "node", *_TARGET),
    "kubelet_volume_stats_inodes_free": ("namespace", "persistentvolumeclaim", "node", *_TARGET),
    "kubelet_volume_stats_inodes": ("namespace", "persistentvolumeclaim", "node", *_TARGET),
    # Scrape health (Kubernetes service discovery adds the target's namespace/pod/service).
    "up": ("job", "instance", "namespace", "pod", "service", "endpoint"),
}


# --------------------------------------------------------------------------- PromQL labels


class PromQLError(ValueError):
    """An expression the parser cannot read; the message quotes it."""


@dataclass
class Labels:
    """What an expression's result series carry."""

    labels: set[str] = field(default_factory=set)
    open: bool = False  # may carry further labels we cannot name
    scalar: bool = False
    metrics: list[str] = field(default_factory=list)
    matchers: list[tuple[str, str, str]] = field(default_factory=list)  # (label, op, value)
    copies: list[tuple[str, str, str, str]] = field(default_factory=list)  # label_replace arguments

    def copy(self, **kw: Any) -> "Labels":
        d = dict(labels=set(self.labels), open=self.open, scalar=self.scalar,
                 metrics=list(self.metrics), matchers=list(self.matchers), copies=list(self.copies))
        d.update(kw)
        return Labels(**d)


@dataclass(frozen=True)
class Inferred:
    """What ``infer_labels`` found: sorted label names, whether more may appear, metric names in
    order of use, and every matcher as ``(label, op, value)``."""

    labels: list[str]
    open: bool
    metrics: list[str]
    matchers: list[tuple[str, str, str]]
    # label_replace(v, dst, replacement, src, regex) as (dst, replacement, src, regex), innermost first
    copies: list[tuple[str, str, str, str]] = field(default_factory=list)

    def values(self) -> dict[str, list[str]]:
        """Values a label certainly or possibly has: equality matchers, and the alternatives of a
        plain alternation regex (``kind=~"A|B"``)."""
        out: dict[str, list[str]] = {}
        for label, op, value in self.matchers:
            if label not in self.labels:
                continue
            if op == "=":
                vals = [value]
            elif op == "=~" and re.fullmatch(r"[A-Za-z0-9_.\-/]+(\|[A-Za-z0-9_.\-/]+)*", value):
                vals = value.split("|")
            else:
                continue
            cur = out.setdefault(label, [])
            cur.extend(v for v in vals if v not in cur)
        return out


_TOKEN = re.compile(r"""
    (?P<ws>\s+|\#[^\n]*)
  | (?P<str>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`)
  | (?P<num>0[xX][0-9a-fA-F]+|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?(?:[a-zA-Z]+\d*)*)
  | (?P<ident>[a-zA-Z_:][a-zA-Z0-9_:.]*)
  | (?P<op>=~|!~|==|!=|>=|<=|[-+*/%^<>=(){}\[\],@:])
""", re.VERBOSE)

_AGGREGATIONS = {"sum", "min", "max", "avg", "count", "stddev", "stdvar", "group", "quantile",
                 "topk", "bottomk", "count_values", "limitk", "limit_ratio"}
_KEEP_ALL_AGG = {"topk", "bottomk", "limitk", "limit_ratio"}
_SCALAR_FUNCS = {"scalar", "time", "pi"}
_NO_LABEL_FUNCS = {"vector"}
_DATE_FUNCS = {"minute", "hour", "day_of_week", "day_of_month", "day_of_year", "days_in_month", "month", "year"}
_PRECEDENCE = {"or": 1, "and": 2, "unless": 2, "==": 3, "!=": 3, "<=": 3, "<": 3, ">=": 3, ">": 3,
               "+": 4, "-": 4, "*": 5, "/": 5, "%": 5, "atan2": 5, "^": 6}
_RIGHT_ASSOC = {"^"}


def _tokens(expr: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos = 0
    while pos < len(expr):
        m = _TOKEN.match(expr, pos)
        if not m:
            raise PromQLError(f"unexpected character {expr[pos]!r} at {pos} in {expr!r}")
        pos = m.end()
        kind = m.lastgroup
        if kind == "ws":
            continue
        out.append((kind, m.group()))  # type: ignore[arg-type]
    return out


def _unquote(s: str) -> str:
    if s[0] == "`":
        return s[1:-1]
    body = s[1:-1]
    return re.sub(r"\\(.)", lambda m: {"n": "\n", "t": "\t"}.get(m.group(1), m.group(1)), body)


_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400, "y": 365 * 86400}


def duration_seconds(text: str) -> float:
    """A Prometheus duration (``5m``, ``1h30m``, ``90s``, ``250ms``) in seconds; PromQLError if it is not one."""
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|[smhdwy])", text.strip())
    if not parts or "".join(n + u for n, u in parts) != text.strip():
        raise PromQLError(f"not a duration: {text!r}")
    return sum(float(n) * _UNITS[u] for n, u in parts)


class _Parser:
    def __init__(self, expr: str, scrape: bool = False):
        self.expr = expr
        self.scrape = scrape
        self.toks = _tokens(expr)
        self.i = 0
        self.lookback = 0.0  # the longest range (+ offset) read so far

    # ---- token helpers
    def peek(self, k: int = 0) -> tuple[str, str] | None:
        j = self.i + k
        return self.toks[j] if j < len(self.toks) else None

    def next(self) -> tuple[str, str]:
        t = self.peek()
        if t is None:
            raise PromQLError(f"unexpected end of expression in {self.expr!r}")
        self.i += 1
        return t

    def accept(self, value: str) -> bool:
        t = self.peek()
        if t is not None and t[1].lower() == value and t[0] in ("op", "ident"):
            self.i += 1
            return True
        return False

    def expect(self, value: str) -> None:
        if not self.accept(value):
            t = self.peek()
            raise PromQLError(f"expected {value!r}, got {t[1] if t else 'end'!r} in {self.expr!r}")

    def label_list(self) -> list[str]:
        self.expect("(")
        out: list[str] = []
        while not self.accept(")"):
            kind, v = self.next()
            if kind == "str":
                v = _unquote(v)
            elif kind != "ident":
                raise PromQLError(f"expected a label name, got {v!r} in {self.expr!r}")
            out.append(v)
            self.accept(",")
        return out

    # ---- grammar
    def parse(self) -> Labels:
        r = self.binary(0)
        if self.peek() is not None:
            raise PromQLError(f"unexpected {self.peek()[1]!r} in {self.expr!r}")  # type: ignore[index]
        return r

    def _binop(self) -> str | None:
        t = self.peek()
        if t is None:
            return None
        v = t[1].lower() if t[0] == "ident" else t[1]
        if t[0] == "op" and v in _PRECEDENCE:
            return v
        if t[0] == "ident" and v in ("and", "or", "unless", "atan2"):
            return v
        return None

    def binary(self, min_prec: int) -> Labels:
        left = self.unary()
        while True:
            op = self._binop()
            if op is None or _PRECEDENCE[op] < min_prec:
                return left
            self.next()
            self.accept("bool")
            on: list[str] | None = None
            ignoring: list[str] | None = None
            group: tuple[str, list[str]] | None = None
            if self.accept("on"):
                on = self.label_list()
            elif self.accept("ignoring"):
                ignoring = self.label_list()
            for side in ("group_left", "group_right"):
                if self.accept(side):
                    extra = self.label_list() if (self.peek() or ("", ""))[1] == "(" else []
                    group = (side, extra)
            prec = _PRECEDENCE[op]
            right = self.binary(prec if op in _RIGHT_ASSOC else prec + 1)
            left = _combine(op, left, right, on, ignoring, group)

    def unary(self) -> Labels:
        if self.accept("-") or self.accept("+"):
            return self.unary()
        return self.postfix(self.primary())

    def postfix(self, v: Labels) -> Labels:
        inner, back = self.lookback, 0.0  # ranges read inside this operand, and its own lookback
        while True:
            t = self.peek()
            if t is None or not (t[1] in ("[", "@") or (t[0] == "ident" and t[1].lower() == "offset")):
                self.lookback = max(self.lookback, back)
                return v
            if t[1] == "[":  # range `[5m]` or subquery `[1h:1m]` (which adds to the ranges inside it)
                self.next()
                body = []
                while (tok := self.next())[1] != "]":
                    body.append(tok[1])
                text = "".join(body)
                rng = duration_seconds(text.split(":", 1)[0]) if text.split(":", 1)[0] else 0.0
                back += rng + (inner if ":" in text else 0.0)
                continue
            if t[0] == "ident" and t[1].lower() == "offset":
                self.next()
                neg = self.accept("-")
                off = duration_seconds(self.next()[1])
                back += 0.0 if neg else off
                continue
            if t[1] == "@":
                self.next()
                if self.peek() and self.peek()[0] == "ident":  # start() / end()
                    self.next()
                    self.expect("(")
                    self.expect(")")
                else:
                    self.accept("-")
                    self.next()

    def primary(self) -> Labels:
        kind, v = self.next()
        if v == "(":
            inner = self.binary(0)
            self.expect(")")
            return inner
        if kind == "num" or (kind == "ident" and v.lower() in ("inf", "nan")):
            return Labels(scalar=True)
        if kind == "str":
            return Labels(scalar=True)
        if v == "{":
            return self.selector(None)
        if kind != "ident":
            raise PromQLError(f"unexpected {v!r} in {self.expr!r}")
        name = v
        low = name.lower()
        nxt = self.peek()
        if low in _AGGREGATIONS and nxt is not None and (nxt[1] == "(" or nxt[1].lower() in ("by", "without")):
            return self.aggregation(low)
        if nxt is not None and nxt[1] == "(":
            return self.call(name)
        if nxt is not None and nxt[1] == "{":
            self.next()
            return self.selector(name)
        return self.selector_done(name, [])

    def selector(self, name: str | None) -> Labels:
        matchers: list[tuple[str, str, str]] = []
        while not self.accept("}"):
            k_kind, label = self.next()
            if k_kind == "str":  # {"metric_name"} (UTF-8 selectors)
                name = _unquote(label)
                self.accept(",")
                continue
            _, op = self.next()
            _, val = self.next()
            matchers.append((label, op, _unquote(val)))
            self.accept(",")
        for label, op, val in matchers:
            if label == "__name__" and op == "=":
                name = val
        return self.selector_done(name, [m for m in matchers if m[0] != "__name__"])

    def selector_done(self, name: str | None, matchers: list[tuple[str, str, str]]) -> Labels:
        known = KNOWN_METRICS.get(name or "")
        labels = set(known or ()) | {m[0] for m in matchers}
        if self.scrape:
            labels |= scraped_labels(name)
        # A matcher like label="" selects series *without* the label.
        labels -= {m[0] for m in matchers if m[1] == "=" and m[2] == ""}
        return Labels(labels=labels, open=known is None, metrics=[name] if name else [], matchers=matchers)

    def aggregation(self, op: str) -> Labels:
        by: list[str] | None = None
        without: list[str] | None = None
        if self.accept("by"):
            by = self.label_list()
        elif self.accept("without"):
            without = self.label_list()
        self.expect("(")
        args = [self.binary(0)]
        while self.accept(","):
            args.append(self.binary(0))
        self.expect(")")
        if by is None and without is None:
            if self.accept("by"):
                by = self.label_list()
            elif self.accept("without"):
                without = self.label_list()
        inner = args[-1]
        extra: set[str] = set()
        if op == "count_values" and len(args) == 2:
            extra = {_param_str(self.expr, args[0])} - {""}
        if op in _KEEP_ALL_AGG:
            out = inner.copy(scalar=False)
            if by is not None:
                pass  # topk by (...) still returns whole series
            return out
        if by is not None:
            return inner.copy(labels=set(by) | extra, open=False, scalar=False)
        if without is not None:
            return inner.copy(labels=(inner.labels - set(without)) | extra, scalar=False)
        return inner.copy(labels=extra, open=False, scalar=False)

    def call(self, name: str) -> Labels:
        self.expect("(")
        args: list[Labels] = []
        raw: list[str] = []
        if not self.accept(")"):
            while True:
                t = self.peek()
                raw.append(_unquote(t[1]) if t and t[0] == "str" else "")
                args.append(self.binary(0))
                if self.accept(")"):
                    break
                self.expect(",")
        low = name.lower()
        vec = next((a for a in args if not a.scalar), None)
        if low in _SCALAR_FUNCS:
            return Labels(scalar=True, metrics=_metrics(args))
        if low in _NO_LABEL_FUNCS:
            return Labels(metrics=_metrics(args))
        if low in _DATE_FUNCS and vec is None:
            return Labels(metrics=_metrics(args))
        if low in ("absent", "absent_over_time"):
            inner = args[0] if args else Labels()
            eq = {m[0] for m in inner.matchers if m[1] == "=" and m[2] != ""}
            return inner.copy(labels=eq, open=False, matchers=[m for m in inner.matchers if m[1] == "="])
        if low == "label_replace" and vec is not None and len(raw) >= 2:
            out = vec.copy(labels=vec.labels | ({raw[1]} - {""}))
            if len(raw) >= 5 and raw[1]:
                out.copies.append((raw[1], raw[2], raw[3], raw[4]))
            return out
        if low == "label_join" and vec is not None and len(raw) >= 2:
            return vec.copy(labels=vec.labels | ({raw[1]} - {""}))
        if low == "histogram_quantile" and vec is not None:
            return vec.copy(labels=vec.labels - {"le"})
        if vec is None:
            return Labels(scalar=True, metrics=_metrics(args))
        merged = vec.copy()
        merged.metrics = _metrics(args)
        return merged


def _metrics(args: list[Labels]) -> list[str]:
    out: list[str] = []
    for a in args:
        out.extend(m for m in a.metrics if m not in out)
    return out


def _param_str(expr: str, _: Labels) -> str:
    m = re.search(r"count_values\s*(?:(?:by|without)\s*\([^)]*\)\s*)?\(\s*(\"[^\"]*\"|'[^']*')", expr)
    return _unquote(m.group(1)) if m else ""


def _combine(op: str, left: Labels, right: Labels, on: list[str] | None, ignoring: list[str] | None,
             group: tuple[str, list[str]] | None) -> Labels:
    metrics = left.metrics + [m for m in right.metrics if m not in left.metrics]
    matchers = left.matchers + right.matchers
    copies = left.copies + right.copies
    if left.scalar and right.scalar:
        return Labels(scalar=True, metrics=metrics)
    if right.scalar:
        return left.copy(metrics=metrics, matchers=matchers, copies=copies)
    if left.scalar:
        return right.copy(metrics=metrics, matchers=matchers, copies=copies)
    if op in ("and", "unless"):
        return left.copy(metrics=metrics, matchers=matchers, copies=copies)
    if op == "or":
        return Labels(labels=left.labels | right.labels, open=left.open or right.open,
                      metrics=metrics, matchers=matchers, copies=copies)
    if group is not None:
        side, extra = group
        many, one = (left, right) if side == "group_left" else (right, left)
        return many.copy(labels=many.labels | set(extra) | set(on or ()), metrics=metrics, matchers=matchers, copies=copies)
    if on is not None:
        return Labels(labels=set(on), open=False, metrics=metrics, matchers=matchers, copies=copies)
    if ignoring is not None:
        return left.copy(labels=left.labels - set(ignoring), metrics=metrics, matchers=matchers, copies=copies)
    return left.copy(metrics=metrics, matchers=matchers, copies=copies)


def infer_labels(expr: str, scrape: bool = False) -> Inferred:
    """Labels the alerts of ``expr`` carry (before the rule's own labels and ``alertname``); with
    ``scrape``, every selector also carries its exporter's and scrape target's labels."""
    r = _Parser(expr, scrape).parse()
    labels = sorted(r.labels - {"__name__"})
    return Inferred(labels=labels, open=r.open, metrics=r.metrics, matchers=r.matchers, copies=r.copies)


def lookback_seconds(expr: str) -> float:
    """How far back ``expr`` reads (see the module docstring); 0 for an instant expression."""
    p = _Parser(expr)
    p.parse()
    return p.lookback
