"""Realistic instance values for generated alerts: app, namespace, pod, PVC and node names.

Pools are written for this project (homelab and generic service names); a share of names is
synthesised from syllables so the model learns to copy values it has never seen.
"""

from __future__ import annotations

import random

APPS = """nextcloud gitea forgejo vaultwarden jellyfin immich paperless-ngx photoprism bookstack outline
mealie tandoor linkding miniflux freshrss wallabag uptime-kuma gatus adguard pihole unifi zigbee2mqtt
esphome node-red influxdb postgres mariadb redis valkey rabbitmq nats kafka zookeeper elasticsearch
opensearch kibana grafana loki tempo mimir thanos victoria-metrics traefik ingress-nginx cert-manager
external-dns cloudflared tailscale authelia authentik dex oauth2-proxy vault harbor registry drone
woodpecker renovate sealed-secrets external-secrets longhorn rook-ceph velero syncthing filebrowser
seafile qbittorrent sabnzbd lidarr prowlarr bazarr overseerr tautulli navidrome audiobookshelf
calibre-web kavita komga changedetection healthchecks ntfy gotify synapse mastodon ghost wordpress
frontend backend worker scheduler gateway payments checkout search notifications billing inventory
orders users reporting api-server web-ui docs-site metrics-proxy chartmuseum podinfo echo-server
whoami home-assistant octoprint scrypted shinobi invidious searxng libreddit excalidraw hedgedoc
stirling-pdf docuseal penpot plausible umami matomo keda kyverno falco trivy-operator goldilocks
descheduler reloader spegel dragonfly memcached clickhouse cockroachdb etcd-backup""".split()

NAMESPACES = """default home homelab infra infrastructure observability logging storage databases db
security auth networking network ingress dev staging prod production platform services selfhosted
automation home-automation downloads ci gitops team-a team-b payments shop identity messaging
streaming photos documents finance iot cluster-addons system-upgrade edge public internal
sandbox experiments""".split()

CONTROLLER_NAMESPACES = ["flux-system"]
MONITORING_NAMESPACES = ["observability", "prometheus", "metrics", "kube-prometheus", "monitor",
                         "telemetry", "prom", "obs", "o11y", "cattle-monitoring-system"]

_SAFE = "bcdfghjklmnpqrstvwxz2456789"
_C = "bcdfghjklmnprstvwz"
_V = "aeiou"


def syllable_name(rng: random.Random) -> str:
    n = rng.choice((2, 2, 3, 3, 4))
    w = "".join(rng.choice(_C) + rng.choice(_V) + (rng.choice(_C) if rng.random() < 0.3 else "") for _ in range(n))
    r = rng.random()
    if r < 0.15:
        w += "-" + rng.choice(["api", "db", "web", "app", "svc", "worker", "ui", "proxy", "server", "cache"])
    elif r < 0.22:
        w += str(rng.randint(1, 9))
    return w


def app(rng: random.Random, synth: float = 0.35) -> str:
    return syllable_name(rng) if rng.random() < synth else rng.choice(APPS)


def namespace(rng: random.Random, app_name: str | None = None, synth: float = 0.2) -> str:
    r = rng.random()
    if app_name and r < 0.2 and len(app_name) <= 63:
        return app_name
    if r < 0.2 + synth:
        return syllable_name(rng)[:30]
    return rng.choice(NAMESPACES)


def rand_str(rng: random.Random, n: int) -> str:
    return "".join(rng.choice(_SAFE) for _ in range(n))


def pod(rng: random.Random, app_name: str) -> tuple[str, str]:
    """(pod name, owner kind)"""
    r = rng.random()
    if r < 0.6:
        return f"{app_name}-{rand_str(rng, rng.choice((8, 9, 10)))}-{rand_str(rng, 5)}", "deployment"
    if r < 0.85:
        return f"{app_name}-{rng.randint(0, 3)}", "statefulset"
    return f"{app_name}-{rand_str(rng, 5)}", "daemonset"


def pvc(rng: random.Random, app_name: str) -> str:
    pat = rng.choice(["data-{a}-0", "data-{a}-{i}", "{a}-config", "{a}-storage", "{a}", "storage-{a}-0",
                      "{a}-pvc", "{a}-cache", "{a}-library", "data-{a}-postgresql-0", "{a}-volume",
                      "export-{a}", "{a}-media", "{a}-db-data", "www-{a}-0", "{a}-datadir"])
    return pat.format(a=app_name, i=rng.randint(0, 2))


def node(rng: random.Random) -> str:
    pat = rng.choice(["node-{i}", "k3s-{w}-{i}", "worker-{i}", "{w}", "talos-{s}", "nuc-{i}", "pi{i}",
                      "ip-10-0-{i}-{j}.ec2.internal", "control-plane-{i}"])
    return pat.format(i=rng.randint(1, 9), j=rng.randint(1, 250), w=syllable_name(rng), s=rand_str(rng, 3))


def instance(rng: random.Random, port: int | None = None) -> str:
    port = port or rng.choice([8080, 9100, 9090, 10250, 8443, 9093, 3000, 8000])
    return f"10.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}:{port}"
