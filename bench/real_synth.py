"""Alerts as Alertmanager delivers them, synthesised from alerting rules (for ``bench/real_rules.py``).

Two layers:

* ``rule_alerts(rule)`` — the labels the rule's PromQL leaves (``collect.promql.infer_labels``), the
  rule's static labels, ``alertname`` and the rendered annotations;
* ``deliver(...)`` — what Prometheus adds on the way: the scrape target's labels for an expression that
  keeps them (``job``, ``instance`` and, under Kubernetes service discovery, ``namespace``, ``pod``,
  ``service``, ``container``, ``endpoint``, chosen by the exporter the metric comes from), the
  ``prometheus`` external label of the Prometheus Operator.

Values are drawn from pools of this module (not the training generator's), seeded by the rule, so the
same rule gives the same alerts. ``variants(alert, when_list, ...)`` adds one alert per label value a
rule can fire with (each alternative of a ``kind=~"A|B"`` matcher) and per case of the benchmark's
labels (``suspended="true"``, a Prometheus job), so conditional rules are scored on each case.
"""

from __future__ import annotations

import hashlib
import random
import re
from typing import Any

from agent_sre.collect.promql import KNOWN_METRICS, PromQLError, infer_labels
from agent_sre.collect.rules import AlertRule

APPS = """linkwarden audiobook paperclip homebox kanboard wikijs vikunja firefly joplin trilium
radarr sonarr readarr whisparr jackett flaresolverr unpackerr recyclarr autobrr cross-seed
minio garage seaweedfs nfs-provisioner snapshot-controller coredns metallb cilium-agent
emqx mosquitto frigate go2rtc double-take teslamate grocy babybuddy actual firefly-iii
weave-gitops capacitor echo-app blog shop-api orders-svc cart-svc auth-svc search-api
media-server photo-sync code-server atuin it-tools cyberchef omada unpoller""".split()
NAMESPACES = """media downloads home-automation selfhosted databases tools apps web public
identity storage backup dev-tools office network security finance games""".split()
NODES = ["k8s-0", "k8s-1", "k8s-2", "worker-01", "worker-02", "nas", "pve-01", "rpi-4"]
MONITORING = "monitoring"


def _rng(*parts: str) -> random.Random:
    return random.Random(int(hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:16], 16))


def _hex(r: random.Random, n: int) -> str:
    return "".join(r.choice("0123456789abcdef") for _ in range(n))


def _rs(r: random.Random, n: int) -> str:
    return "".join(r.choice("bcdfghjklmnpqrstvwxz2456789") for _ in range(n))


def _ip(r: random.Random, port: int) -> str:
    return f"10.42.{r.randint(0, 5)}.{r.randint(2, 250)}:{port}"


# --------------------------------------------------------------------------- exporter families

def _family(metrics: list[str], source: str) -> str:
    m = metrics[0] if metrics else ""
    kp = "kube-prometheus:" in source or source.startswith("prometheus-operator/")
    for prefix, fam in (("gotk_resource_info", "ksm-crs"), ("gotk_", "flux-controller"), ("flux_", "flux-operator"),
                        ("kube_", "ksm"), ("kubelet_volume_stats", "kubelet"), ("kubelet_", "kubelet"),
                        ("container_", "cadvisor"), ("node_", "node-exporter"), ("prometheus_", "prometheus"),
                        ("alertmanager_", "alertmanager"), ("probe_", "blackbox"), ("up", "up"),
                        ("apiserver_", "apiserver"), ("etcd_", "etcd"), ("certmanager_", "cert-manager")):
        if m == prefix or (prefix.endswith("_") and m.startswith(prefix)) or m.startswith(prefix + "_"):
            return fam + (":kp" if kp and fam in ("prometheus", "alertmanager", "ksm") else "")
    return "app"


def _scrape(fam: str, r: random.Random, metric: str) -> dict[str, str]:
    """The target labels a scrape of ``fam`` attaches (keys the series may override)."""
    kps = "kube-prometheus-stack"
    if fam.startswith("ksm") or fam == "ksm-crs":
        svc = "kube-state-metrics" if fam.endswith(":kp") else f"{kps}-kube-state-metrics"
        return {"job": "kube-state-metrics", "instance": _ip(r, 8080), "endpoint": "http", "service": svc,
                "namespace": MONITORING, "pod": f"{svc}-{_rs(r, 9)}-{_rs(r, 5)}", "container": "kube-state-metrics"}
    if fam == "flux-controller":
        ctrl = r.choice(["kustomize-controller", "helm-controller", "source-controller"])
        return {"job": "flux-system/flux-system", "instance": _ip(r, 8080), "endpoint": "http-prom",
                "namespace": "flux-system", "pod": f"{ctrl}-{_rs(r, 9)}-{_rs(r, 5)}", "container": "manager"}
    if fam == "flux-operator":
        return {"job": "flux-operator", "instance": _ip(r, 8080), "endpoint": "http-metrics", "service": "flux-operator",
                "namespace": "flux-system", "pod": f"flux-operator-{_rs(r, 9)}-{_rs(r, 5)}", "container": "manager"}
    if fam == "kubelet":
        node = r.choice(NODES)
        return {"job": "kubelet", "instance": f"192.168.1.{r.randint(10, 60)}:10250", "endpoint": "https-metrics",
                "metrics_path": "/metrics", "service": f"{kps}-kubelet", "node": node}
    if fam == "cadvisor":
        node = r.choice(NODES)
        return {"job": "kubelet", "instance": f"192.168.1.{r.randint(10, 60)}:10250", "endpoint": "https-metrics",
                "metrics_path": "/metrics/cadvisor", "service": f"{kps}-kubelet", "node": node}
    if fam == "node-exporter":
        return {"job": "node-exporter", "instance": r.choice(NODES), "endpoint": "http-metrics",
                "namespace": MONITORING, "pod": f"{kps}-prometheus-node-exporter-{_rs(r, 5)}",
                "container": "node-exporter", "service": f"{kps}-prometheus-node-exporter"}
    if fam.startswith("prometheus"):
        kp = fam.endswith(":kp")
        job = "prometheus-k8s" if kp else f"{kps}-prometheus"
        return {"job": job, "instance": _ip(r, 9090), "endpoint": "web" if kp else "http-web",
                "namespace": MONITORING, "pod": "prometheus-k8s-0" if kp else f"prometheus-{kps}-prometheus-0",
                "container": "prometheus", "service": job}
    if fam.startswith("alertmanager"):
        kp = fam.endswith(":kp")
        job = "alertmanager-main" if kp else f"{kps}-alertmanager"
        return {"job": job, "instance": _ip(r, 9093), "endpoint": "web" if kp else "http-web",
                "namespace": MONITORING, "pod": "alertmanager-main-0" if kp else f"alertmanager-{kps}-alertmanager-0",
                "container": "alertmanager", "service": job}
    if fam == "blackbox":
        return {"job": "blackbox-exporter", "instance": f"https://{r.choice(APPS)}.example.net"}
    if fam in ("apiserver", "etcd"):
        return {"job": fam, "instance": f"192.168.1.{r.randint(10, 60)}:{6443 if fam == 'apiserver' else 2379}"}
    if fam == "up":
        app = r.choice(APPS)
        return {"job": app, "instance": _ip(r, 8080), "namespace": r.choice(NAMESPACES),
                "pod": f"{app}-{_rs(r, 9)}-{_rs(r, 5)}", "service": app, "endpoint": "metrics",
                "container": app}
    # an application exporter running in the cluster
    exp = (metric.split("_")[0] or "app") + "-exporter"
    return {"job": exp, "instance": _ip(r, 9100 + r.randint(0, 99)), "namespace": r.choice(NAMESPACES),
            "pod": f"{exp}-{_rs(r, 9)}-{_rs(r, 5)}", "service": exp, "container": exp, "endpoint": "metrics"}


# --------------------------------------------------------------------------- series label values

_DEFAULTS: dict[str, list[str]] = {
    "severity": ["warning"], "reason": ["CrashLoopBackOff", "Error", "OOMKilled"],
    "phase": ["Pending", "Failed"], "condition": ["Ready", "False"], "status": ["false", "unknown"],
    "type": ["Ready", "simple"], "state": ["failed", "activating"], "ready": ["False", "Unknown"],
    "suspended": ["false"], "fstype": ["ext4", "xfs", "zfs"], "device": ["/dev/sda2", "nvme0n1", "/dev/md0"],
    "mountpoint": ["/", "/var/lib/longhorn", "/mnt/data"], "customresource_kind": ["Kustomization"],
    "kind": ["Kustomization"], "customresource_group": ["kustomize.toolkit.fluxcd.io"],
    "customresource_version": ["v1"], "verb": ["GET", "LIST"], "code": ["500", "503"],
    "quantile": ["0.99"], "mode": ["idle"], "controller": ["prometheus", "alertmanager"],
}


def _value(key: str, r: random.Random, app: str, ns: str) -> str:
    if key in _DEFAULTS:
        return r.choice(_DEFAULTS[key])
    if key in ("namespace", "exported_namespace", "customresource_namespace", "dest_namespace", "obj_namespace"):
        return ns
    if key in ("pod", "exported_pod"):
        return f"{app}-{_rs(r, 9)}-{_rs(r, 5)}" if r.random() < 0.6 else f"{app}-0"
    if key in ("name", "customresource_name", "deployment", "statefulset", "daemonset", "service", "container",
               "app", "obj_name", "application", "horizontalpodautoscaler", "cronjob"):
        return app
    if key == "persistentvolumeclaim":
        return r.choice([f"data-{app}-0", f"{app}-config", f"{app}-data"])
    if key == "persistentvolume":
        return f"pvc-{_hex(r, 8)}-{_hex(r, 4)}-{_hex(r, 4)}"
    if key == "job_name":
        return f"{app}-{r.randint(28000000, 29999999)}"
    if key == "node":
        return r.choice(NODES)
    if key == "instance":
        return _ip(r, 8080)
    if key == "uid":
        return f"{_hex(r, 8)}-{_hex(r, 4)}-{_hex(r, 4)}-{_hex(r, 4)}-{_hex(r, 12)}"
    if key == "revision":
        return f"refs/heads/main@sha1:{_hex(r, 40)}"
    if key in ("url", "target"):
        return f"https://{app}.example.net"
    if key == "image":
        return f"ghcr.io/example/{app}:1.{r.randint(0, 20)}.{r.randint(0, 9)}"
    if key == "id":
        return f"/docker/{_hex(r, 64)}"
    if key == "job":
        return app
    return r.choice(["a", "b", "main", "primary", "default", "0", "1"]) if len(key) <= 2 else f"{key.replace('_', '-')}-1"


def _matching(value_re: str, fallback: str) -> str:
    """A value a positive regex matcher accepts (its first plain alternative), else ``fallback``."""
    alts = value_re.split("|")
    for a in alts:
        if re.fullmatch(r"[A-Za-z0-9_.\-/:]+", a):
            return a
    m = re.fullmatch(r"\.\*([A-Za-z0-9_\-]+)\.\*", value_re)
    return f"x-{m.group(1)}" if m else fallback


def _avoid(op: str, value: str, cand: str) -> bool:
    if op == "!=":
        return cand == value
    if op == "!~":
        try:
            return re.fullmatch(value, cand) is not None
        except re.error:
            return False
    return False


# --------------------------------------------------------------------------- annotations

_TPL = re.compile(r"\{\{-?\s*(.*?)\s*-?\}\}", re.S)


def render(text: str, labels: dict[str, str], value: str = "42") -> str:
    """A small subset of Prometheus' template language: ``$labels.x`` / ``.Labels.x`` / ``index $labels "x"``,
    ``$value`` / ``.Value`` (pipelines dropped), ``$labels`` as Prometheus prints a map; other actions vanish."""
    def one(m: re.Match) -> str:
        expr = m.group(1).split("|")[0].strip()
        if expr.startswith("printf"):
            args = expr.split()[1:]
            expr = args[-1] if args else ""
        for pat in (r"\$labels\.(\w+)", r"\.Labels\.(\w+)", r'index\s+\$labels\s+"(\w+)"'):
            mm = re.fullmatch(pat, expr)
            if mm:
                return labels.get(mm.group(1), "")
        if expr in ("$value", ".Value"):
            return value
        if expr in ("$labels", ".Labels"):
            return "map[" + " ".join(f"{k}:{v}" for k, v in sorted(labels.items())) + "]"
        return ""
    return _TPL.sub(one, text)


# --------------------------------------------------------------------------- the rule's alerts


def rule_alerts(rule: AlertRule, *, external: dict[str, str] | None = None) -> dict[str, Any]:
    """One alert for ``rule`` as delivered (series labels + scrape labels + static labels + external
    labels + alertname; annotations rendered), and what it was built from (for ``variants``)."""
    r = _rng(rule.source, rule.group, rule.alert, rule.expr)
    try:
        inf = infer_labels(rule.expr)
        keys, open_, metrics, matchers = set(inf.labels), inf.open, inf.metrics, inf.matchers
    except PromQLError:
        keys, open_, metrics, matchers = {"job", "instance"}, True, [], []
    refs = set(re.findall(r"\$labels\.(\w+)", " ".join(rule.annotations.values())))
    if open_:  # an unknown metric, not aggregated: the labels its annotations name exist on it
        keys |= refs | {"job", "instance"}
    fam = _family(metrics, rule.source)
    app, ns = r.choice(APPS), r.choice(NAMESPACES)
    labels: dict[str, str] = {}
    scraped = "instance" in keys or open_
    scrape = _scrape(fam, r, metrics[0] if metrics else "") if scraped else {}
    honor = fam.startswith("ksm") and fam != "ksm-crs" or fam == "cadvisor"  # object's own namespace/pod
    keys.discard("cluster")  # single-cluster setups: `by (cluster, ...)` leaves no cluster label
    for k in sorted(keys):
        if k in scrape and not (honor and k in ("namespace", "pod", "container")):
            labels[k] = scrape[k]
        else:
            labels[k] = _value(k, r, app, ns)
    for k, v in scrape.items():
        if k not in labels:
            labels[k] = v
    eq_alts: dict[str, list[str]] = {}
    for k, op, v in matchers:
        if k not in labels:
            continue
        if op == "=" and v:
            labels[k] = v
        elif op == "=~":
            alts = [a for a in v.split("|") if re.fullmatch(r"[A-Za-z0-9_.\-/:]+", a)]
            if alts and len(alts) == len(v.split("|")):
                eq_alts[k] = alts
            labels[k] = _matching(v, labels[k])
        elif _avoid(op, v, labels[k]):
            pool = [x for x in _DEFAULTS.get(k, []) + ["other", "Unknown"] if not _avoid(op, v, x)]
            labels[k] = pool[0] if pool else labels[k] + "-x"
    labels.update({k: v for k, v in rule.labels.items() if "{{" not in v})
    labels.update(external if external is not None else {"prometheus": f"{MONITORING}/kube-prometheus-stack-prometheus"})
    labels["alertname"] = rule.alert
    return {"labels": labels, "alts": eq_alts, "annotations": dict(rule.annotations)}


def as_alert(labels: dict[str, str], annotations: dict[str, str], starts: str = "2026-03-01T10:00:00Z") -> dict[str, Any]:
    """An Alertmanager v4 webhook alert: labels, rendered annotations, firing."""
    return {"status": "firing", "labels": dict(labels),
            "annotations": {k: render(v, labels) for k, v in annotations.items()},
            "startsAt": starts, "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://prometheus.local/graph", "fingerprint": _hex(_rng(*sorted(labels.items()).__repr__()), 16)}


_PROM_JOBS = ["prometheus-k8s", "kube-prometheus-stack-prometheus", "prometheus"]


def _satisfy(labels: dict[str, str], when: dict[str, Any]) -> dict[str, str] | None:
    """``labels`` changed so that a case's ``when`` holds, or None when the alert cannot carry it
    (a key the rule's expression does not leave)."""
    out = dict(labels)
    for k, cond in when.items():
        if cond == "absent":
            out.pop(k, None)
        elif k not in labels:
            return None
        elif cond == "present":
            continue
        elif isinstance(cond, list):
            out[k] = cond[0]
        elif isinstance(cond, dict) and "regex" in cond:
            if re.fullmatch(cond["regex"], out[k]):
                continue
            cand = next((c for c in _PROM_JOBS + [_matching(cond["regex"], "")] if c and re.fullmatch(cond["regex"], c)), None)
            if cand is None:
                return None
            out[k] = cand
            if k == "job" and cand in _PROM_JOBS:  # the target is then Prometheus's own pod
                pod = "prometheus-k8s-0" if cand == "prometheus-k8s" else f"prometheus-{cand.removesuffix('-prometheus')}-prometheus-0"
                for key, v in (("pod", pod),
                               ("container", "prometheus"), ("service", cand), ("namespace", MONITORING)):
                    if key in out:
                        out[key] = v
    return out


def variants(built: dict[str, Any], cases: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    """The base alert, one per alternative of each ``=~"A|B"`` matcher, and one per labelled case."""
    base = built["labels"]
    seen: list[dict[str, str]] = [base]
    for k, alts in built["alts"].items():
        for v in alts[:8]:
            lab = {**base, k: v}
            if lab not in seen:
                seen.append(lab)
    for case in cases or []:
        when = case.get("when") or {}
        if not when:
            continue
        lab = _satisfy(base, when)
        if lab is not None and lab not in seen:
            seen.append(lab)
    return [as_alert(lab, built["annotations"]) for lab in seen]
