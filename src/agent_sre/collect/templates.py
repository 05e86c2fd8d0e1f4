"""Prometheus alert templates (Go ``text/template``) rendered the way Prometheus renders them.

``render(text, labels, value, external_labels)`` expands an annotation or label template for one
alert: ``{{ $labels.x }}``, ``{{ .Labels.x }}``, ``{{ $value }}``, ``{{ .Value }}``,
``{{ $externalLabels.x }}``, ``{{ $labels }}`` (printed as Go prints a map), pipelines with
``humanize``, ``humanize1024``, ``humanizePercentage``, ``humanizeDuration``,
``humanizeTimestamp``, ``printf``, ``title``/``toUpper``/``toLower``, ``reReplaceAll``,
``stripPort``, ``stripDomain``, ``index``, ``len``, comparisons, ``if``/``else``/``with``/``end``,
comments and the ``{{-``/``-}}`` whitespace trims.

What needs a live Prometheus (``query``, ``range`` over its results) or defines templates raises
``TemplateError``: the caller leaves such an annotation out rather than show it half-rendered.
"""

from __future__ import annotations

import math
import re
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any, Callable


class TemplateError(ValueError):
    """A template this renderer cannot expand (unsupported action or function, bad syntax)."""


# --------------------------------------------------------------------------- Go value printing


def go_float(v: float) -> str:
    """``fmt.Sprint(float64)``: the shortest digits, exponent form below 1e-4 and from 1e6 (``%g``)."""
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    if v == 0:
        return "0"
    sign, digits, exp = Decimal(repr(float(v))).normalize().as_tuple()
    ds = "".join(map(str, digits))
    point = len(ds) + int(exp)  # position of the decimal point
    e = point - 1
    neg = "-" if sign else ""
    if e < -4 or e >= 6:
        mant = ds[0] + ("." + ds[1:] if len(ds) > 1 else "")
        return f"{neg}{mant}e{'+' if e >= 0 else '-'}{abs(e):02d}"
    if point <= 0:
        return f"{neg}0.{'0' * -point}{ds}"
    if point >= len(ds):
        return f"{neg}{ds}{'0' * (point - len(ds))}"
    return f"{neg}{ds[:point]}.{ds[point:]}"


def go_str(v: Any) -> str:
    if v is None:
        return "<no value>"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return go_float(v)
    if isinstance(v, dict):
        return "map[" + " ".join(f"{k}:{go_str(v[k])}" for k in sorted(v)) + "]"
    return str(v)


def _g4(v: float) -> str:
    """Go's ``%.4g``."""
    s = f"{v:.4g}"
    return re.sub(r"e([+-])(\d)$", r"e\g<1>0\2", s)


def _num(v: Any) -> float:
    if isinstance(v, bool):
        raise TemplateError("expected a number, got a boolean")
    if isinstance(v, (int, float)):
        return float(v)
    try:
        return float(str(v))
    except ValueError:
        raise TemplateError(f"expected a number, got {v!r}") from None


def humanize(v: Any) -> str:
    x = _num(v)
    if x == 0 or math.isnan(x) or math.isinf(x):
        return _g4(x)
    if abs(x) >= 1:
        prefix = ""
        for p in ("k", "M", "G", "T", "P", "E", "Z", "Y"):
            if abs(x) < 1000:
                break
            prefix, x = p, x / 1000
        return _g4(x) + prefix
    prefix = ""
    for p in ("m", "u", "n", "p", "f", "a", "z", "y"):
        if abs(x) >= 1:
            break
        prefix, x = p, x * 1000
    return _g4(x) + prefix


def humanize1024(v: Any) -> str:
    x = _num(v)
    if abs(x) <= 1 or math.isnan(x) or math.isinf(x):
        return _g4(x)
    prefix = ""
    for p in ("ki", "Mi", "Gi", "Ti", "Pi", "Ei", "Zi", "Yi"):
        if abs(x) < 1024:
            break
        prefix, x = p, x / 1024
    return _g4(x) + prefix


def humanize_duration(v: Any) -> str:
    x = _num(v)
    if math.isnan(x) or math.isinf(x):
        return _g4(x)
    if x == 0:
        return _g4(x) + "s"
    if abs(x) >= 1:
        sign = "-" if x < 0 else ""
        x = abs(x)
        d = int(x)
        s, m, h, days = d % 60, (d // 60) % 60, (d // 3600) % 24, d // 86400
        if days:
            return f"{sign}{days}d {h}h {m}m {s}s"
        if h:
            return f"{sign}{h}h {m}m {s}s"
        if m:
            return f"{sign}{m}m {s}s"
        return f"{sign}{_g4(x)}s"
    prefix = ""
    for p in ("m", "u", "n", "p", "f", "a", "z", "y"):
        if abs(x) >= 1:
            break
        prefix, x = p, x * 1000
    return f"{_g4(x)}{prefix}s"


def humanize_timestamp(v: Any) -> str:
    x = _num(v)
    if math.isnan(x) or math.isinf(x):
        return _g4(x)
    t = datetime.fromtimestamp(x, tz=timezone.utc)
    return t.strftime("%Y-%m-%d %H:%M:%S.%f").rstrip("0").rstrip(".") + " +0000 UTC"


_VERB = re.compile(r"%([-+# 0]*)(\d+|\*)?(?:\.(\d+))?([a-zA-Z%])")


def printf(fmt: Any, *args: Any) -> str:
    """Go's ``fmt.Sprintf`` for the verbs alert templates use (%s %v %d %f %g %e %x %q %t %%)."""
    out, i, pos = [], 0, 0
    fmt = go_str(fmt)
    for m in _VERB.finditer(fmt):
        out.append(fmt[pos:m.start()])
        pos = m.end()
        flags, width, prec, verb = m.group(1), m.group(2) or "", m.group(3), m.group(4)
        if verb == "%":
            out.append("%")
            continue
        if i >= len(args):
            out.append(f"%!{verb}(MISSING)")
            continue
        a = args[i]
        i += 1
        spec = f"%{flags}{width}" + (f".{prec}" if prec is not None else "")
        if verb in ("s", "v"):
            out.append((spec + "s") % go_str(a))
        elif verb == "q":
            out.append((spec + "s") % ('"' + go_str(a).replace("\\", "\\\\").replace('"', '\\"') + '"'))
        elif verb == "t":
            out.append((spec + "s") % go_str(a))
        elif verb in ("d", "x", "X", "o", "b"):
            x = _num(a)
            if verb == "b":
                out.append(format(int(x), "b"))
            else:
                out.append((spec + verb) % int(x))
        elif verb in ("f", "F", "e", "E", "g", "G"):
            s = (spec + verb) % _num(a)
            out.append(re.sub(r"([eE][+-])(\d)$", r"\g<1>0\2", s))
        else:
            raise TemplateError(f"printf verb %{verb} is not supported")
    out.append(fmt[pos:])
    return "".join(out)


def _strip_port(v: Any) -> str:
    s = go_str(v)
    if s.startswith("["):
        end = s.find("]")
        return s[1:end] if end > 0 else s
    host, sep, port = s.rpartition(":")
    return host if sep and ":" not in host and port.isdigit() else s


def _strip_domain(v: Any) -> str:
    s = go_str(v)
    host, port = s, ""
    if ":" in s and not s.startswith("["):
        host, _, port = s.rpartition(":")
    if re.fullmatch(r"[\d.]+", host):
        return s
    short = host.split(".", 1)[0]
    return short + (":" + port if port else "")


def _truth(v: Any) -> bool:
    if v is None:
        return False
    if isinstance(v, (str, dict, list)):
        return len(v) > 0
    if isinstance(v, (int, float)):
        return v != 0
    return bool(v)


def _cmp(op: Callable[[Any, Any], bool]) -> Callable[..., bool]:
    def f(a: Any, b: Any) -> bool:
        if isinstance(a, (int, float)) or isinstance(b, (int, float)):
            return op(_num(a), _num(b))
        return op(go_str(a), go_str(b))
    return f


def _index(m: Any, *keys: Any) -> Any:
    for k in keys:
        if not isinstance(m, dict):
            raise TemplateError("index of a value that is not a map")
        m = m.get(go_str(k), "")
    return m


FUNCTIONS: dict[str, Callable[..., Any]] = {
    "humanize": humanize, "humanize1024": humanize1024, "humanizePercentage": lambda v: _g4(_num(v) * 100) + "%",
    "humanizeDuration": humanize_duration, "humanizeTimestamp": humanize_timestamp,
    "printf": printf, "print": lambda *a: "".join(go_str(x) for x in a),
    "title": lambda v: re.sub(r"\b([a-z])", lambda m: m.group(1).upper(), go_str(v)),
    "toUpper": lambda v: go_str(v).upper(), "toLower": lambda v: go_str(v).lower(),
    "reReplaceAll": lambda pat, repl, s: re.sub(pat, re.sub(r"\$(\d+)|\$\{(\d+)\}", lambda m: "\\" + (m.group(1) or m.group(2)), go_str(repl)), go_str(s)),
    "match": lambda pat, s: re.search(go_str(pat), go_str(s)) is not None,
    "stripPort": _strip_port, "stripDomain": _strip_domain,
    "safeHtml": go_str, "html": go_str, "js": go_str, "urlquery": go_str,
    "index": _index, "len": lambda v: len(v) if isinstance(v, (str, dict, list)) else 0,
    "eq": lambda a, *bs: any(_cmp(lambda x, y: x == y)(a, b) for b in bs), "ne": _cmp(lambda x, y: x != y),
    "lt": _cmp(lambda x, y: x < y), "le": _cmp(lambda x, y: x <= y),
    "gt": _cmp(lambda x, y: x > y), "ge": _cmp(lambda x, y: x >= y),
    "not": lambda v: not _truth(v),
    "and": lambda *a: next((x for x in a if not _truth(x)), a[-1]),
    "or": lambda *a: next((x for x in a if _truth(x)), a[-1]),
}
NEEDS_PROMETHEUS = {"query", "first", "value", "label", "sortByLabel", "args", "tmpl", "template",
                    "externalURL", "pathPrefix", "graphLink", "tableLink", "strvalue", "parseDuration",
                    "toTime", "toDuration", "now"}


# --------------------------------------------------------------------------- lexing and parsing

_ACTION = re.compile(r"\{\{(-\s)?(.*?)(\s-)?\}\}", re.S)
_ARG = re.compile(r"""\s*(?:
    (?P<str>"(?:[^"\\]|\\.)*"|`[^`]*`)
  | (?P<num>-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)
  | (?P<var>\$[A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+)*)
  | (?P<field>(?:\.[A-Za-z0-9_]+)+|\.)
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<pipe>\|)
  | (?P<open>\()
  | (?P<close>\))
)""", re.X)


_ASSIGN = re.compile(r"\$[A-Za-z0-9_]*\s*:?=[^=]")


def _lex(src: str) -> list[tuple[str, str]]:
    toks, pos = [], 0
    src = src.strip()
    while pos < len(src):
        m = _ARG.match(src, pos)
        if not m or m.end() == pos:
            raise TemplateError(f"cannot read {src[pos:pos + 20]!r} in {{{{ {src} }}}}")
        pos = m.end()
        toks.append((m.lastgroup, m.group(m.lastgroup)))  # type: ignore[arg-type]
    return toks


class _Scope:
    def __init__(self, labels: dict[str, str], value: float, external: dict[str, str]):
        self.vars = {"$labels": labels, "$value": value, "$externalLabels": external,
                     "$": {"Labels": labels, "Value": value, "ExternalLabels": external}}
        self.dot: Any = self.vars["$"]


def _lookup(base: Any, path: list[str], what: str) -> Any:
    for p in path:
        if not isinstance(base, dict):
            raise TemplateError(f"{what}: .{p} of a value that is not a map")
        base = base.get(p, None)
        if base is None:
            return ""  # a missing label renders empty, as Prometheus' map lookup does
    return base


def _pipeline(toks: list[tuple[str, str]], scope: _Scope) -> Any:
    cmds: list[list[tuple[str, str]]] = [[]]
    depth = 0
    for t in toks:
        if t[0] == "pipe" and depth == 0:
            cmds.append([])
            continue
        depth += t[0] == "open"
        depth -= t[0] == "close"
        cmds[-1].append(t)
    result: Any = None
    for n, cmd in enumerate(cmds):
        if not cmd:
            raise TemplateError("empty command in pipeline")
        result = _command(cmd, scope, [] if n == 0 else [result])
    return result


def _operand(toks: list[tuple[str, str]], i: int, scope: _Scope) -> tuple[Any, int]:
    kind, v = toks[i]
    if kind == "str":
        return (v[1:-1] if v[0] == "`" else re.sub(r"\\(.)", lambda m: {"n": "\n", "t": "\t"}.get(m.group(1), m.group(1)), v[1:-1])), i + 1
    if kind == "num":
        return float(v), i + 1
    if kind == "var":
        name, *path = v.split(".")
        if name not in scope.vars:
            raise TemplateError(f"undefined variable {name}")
        return _lookup(scope.vars[name], path, v), i + 1
    if kind == "field":
        path = [p for p in v.split(".") if p]
        return _lookup(scope.dot, path, v), i + 1
    if kind == "open":
        depth, j = 1, i + 1
        while j < len(toks) and depth:
            depth += toks[j][0] == "open"
            depth -= toks[j][0] == "close"
            j += 1
        if depth:
            raise TemplateError("unclosed parenthesis")
        return _pipeline(toks[i + 1:j - 1], scope), j
    if kind == "ident":
        if v in ("true", "false"):
            return v == "true", i + 1
        if v == "nil":
            return None, i + 1
        return _call(v, [], scope), i + 1
    raise TemplateError(f"unexpected {v!r}")


def _call(name: str, args: list[Any], scope: _Scope) -> Any:
    if name in NEEDS_PROMETHEUS:
        raise TemplateError(f"{name} needs a running Prometheus")
    fn = FUNCTIONS.get(name)
    if fn is None:
        raise TemplateError(f"function {name!r} is not supported")
    try:
        return fn(*args)
    except TemplateError:
        raise
    except (TypeError, ValueError, re.error, OverflowError) as e:
        raise TemplateError(f"{name}: {e}") from None


def _command(cmd: list[tuple[str, str]], scope: _Scope, piped: list[Any]) -> Any:
    if cmd[0][0] == "ident" and cmd[0][1] not in ("true", "false", "nil"):
        args, i = [], 1
        while i < len(cmd):
            a, i = _operand(cmd, i, scope)
            args.append(a)
        return _call(cmd[0][1], args + piped, scope)
    value, i = _operand(cmd, 0, scope)
    if i != len(cmd) or piped:
        raise TemplateError("a value cannot take arguments")
    return value


# --------------------------------------------------------------------------- execution


def _parse(text: str) -> list[Any]:
    """Text and actions as a tree: strings, ("out", toks), ("if"/"with", [(cond, body)...], else)."""
    parts: list[Any] = []
    pos = 0
    for m in _ACTION.finditer(text):
        parts.append(("text", text[pos:m.start()], bool(m.group(1))))
        parts.append(("act", m.group(2).strip(), bool(m.group(3))))
        pos = m.end()
    parts.append(("text", text[pos:], False))
    # Apply the trim markers: {{- trims the text before, -}} the text after.
    items: list[Any] = []
    trim_next = False
    for kind, body, flag in parts:
        if kind == "text":
            if trim_next:
                body = body.lstrip()
            if flag:
                body = body.rstrip()
            items.append(body)
            trim_next = False
        else:
            items.append(("act", body))
            trim_next = flag
    tree, rest = _block(items, 0, top=True)
    return tree


def _block(items: list[Any], i: int, top: bool = False) -> tuple[list[Any], int]:
    out: list[Any] = []
    while i < len(items):
        it = items[i]
        if isinstance(it, str):
            if it:
                out.append(it)
            i += 1
            continue
        body = it[1]
        if body.startswith("/*"):
            i += 1
            continue
        word = body.split(None, 1)[0] if body else ""
        if word in ("end", "else"):
            if top:
                raise TemplateError(f"unexpected {{{{ {body} }}}}")
            return out, i
        if word in ("if", "with"):
            node, i = _branch(items, i)
            out.append(node)
            continue
        if word in ("range", "define", "template", "block", "break", "continue") or _ASSIGN.match(body):
            raise TemplateError(f"{{{{ {body} }}}} is not supported")
        out.append(("out", _lex(body)))
        i += 1
    if not top:
        raise TemplateError("missing {{ end }}")
    return out, i


def _branch(items: list[Any], i: int) -> tuple[Any, int]:
    body = items[i][1]
    kind, cond = body.split(None, 1) if " " in body else (body, "")
    if not cond:
        raise TemplateError(f"{kind} without a condition")
    arms: list[tuple[str, list[tuple[str, str]], list[Any]]] = []
    default: list[Any] = []
    cur_kind, cur_cond = kind, _lex(cond)
    i += 1
    while True:
        block, i = _block(items, i)
        if i >= len(items):
            raise TemplateError("missing {{ end }}")
        arms.append((cur_kind, cur_cond, block))
        word = items[i][1].split()
        i += 1
        if word[0] == "end":
            break
        # else / else if ... / else with ...
        if len(word) > 1 and word[1] in ("if", "with"):
            cur_kind, cur_cond = word[1], _lex(items[i - 1][1].split(None, 2)[2])
            continue
        default, i = _block(items, i)
        if i >= len(items) or items[i][1].split()[0] != "end":
            raise TemplateError("missing {{ end }} after {{ else }}")
        i += 1
        break
    return ("branch", arms, default), i


def _exec(tree: list[Any], scope: _Scope, out: list[str]) -> None:
    for node in tree:
        if isinstance(node, str):
            out.append(node)
        elif node[0] == "out":
            out.append(go_str(_pipeline(node[1], scope)))
        else:
            _, arms, default = node
            for kind, cond, block in arms:
                v = _pipeline(cond, scope)
                if _truth(v):
                    saved = scope.dot
                    if kind == "with":
                        scope.dot = v
                    _exec(block, scope, out)
                    scope.dot = saved
                    break
            else:
                _exec(default, scope, out)


def render(text: str, labels: dict[str, str], value: float = 1.0,
           external_labels: dict[str, str] | None = None) -> str:
    """``text`` expanded for an alert with these (series) labels and value; raises TemplateError."""
    if "{{" not in text:
        return text
    scope = _Scope(dict(labels), float(value), dict(external_labels or {}))
    out: list[str] = []
    _exec(_parse(text), scope, out)
    return "".join(out)
