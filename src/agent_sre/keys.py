"""``agent-sre keys generate``: the key set of a deployment, and the Kubernetes Secrets that carry it.

Five Secrets in the ``agent-sre`` namespace, each mounted read-only where the settings point:

=================================  ======================  ==================================================
Secret (file in it)                setting                 mounted at (in the pods that need it)
=================================  ======================  ==================================================
agent-sre-agent-signing-key        AGENT_SIGNING_KEY       /var/run/secrets/agent-sre/agent-signing-key/
  (agent.pem)                                              agent.pem — the agent only
agent-sre-agent-public-keys        AGENT_PUBLIC_KEYS       /var/run/secrets/agent-sre/agent-public-keys/
  (current.pem, previous.pem)                              (the directory) — functions and agent
agent-sre-function-signing-key     FUNCTION_SIGNING_KEY    /var/run/secrets/agent-sre/function-signing-key/
  (function.pem)                                           function.pem — the functions only
agent-sre-function-public-keys     FUNCTION_PUBLIC_KEYS    /var/run/secrets/agent-sre/function-public-keys/
  (current.pem, previous.pem)                              (the directory) — the agent
agent-sre-audit-hmac-key           AUDIT_HMAC_KEY          /var/run/secrets/agent-sre/audit-hmac-key/
  (audit-hmac.key)                                         audit-hmac.key — agent and functions
=================================  ======================  ==================================================

``generate(out)`` writes the same files under ``out`` (the private ones mode 0600) and
``secrets-public.yaml`` / ``secrets-signing.yaml``. With ``previous`` (the folder of the set
in use) the public Secrets hold the new key as ``current.pem`` and the old one as
``previous.pem``, the audit key is kept, and ``secrets-public-final.yaml`` drops the old key:
apply the public Secrets, roll the pods, apply the signing Secrets, roll again, and once nothing
signed with the old key can still arrive, apply the final public Secrets.
"""

from __future__ import annotations

import base64
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

import yaml

from .signing import SigningKey, load_public, public_pem

NAMESPACE = "agent-sre"
MOUNT = "/var/run/secrets/agent-sre"


@dataclass(frozen=True)
class Secret:
    name: str
    setting: str
    files: tuple[str, ...]
    directory: bool  # the setting names the mounted directory (a key ring), not one file

    @property
    def mount(self) -> str:
        return f"{MOUNT}/{self.name.removeprefix('agent-sre-')}"

    @property
    def value(self) -> str:
        """What the setting is set to in a pod that mounts this Secret."""
        return self.mount if self.directory else f"{self.mount}/{self.files[0]}"


AGENT_SIGNING = Secret("agent-sre-agent-signing-key", "AGENT_SIGNING_KEY", ("agent.pem",), False)
AGENT_PUBLIC = Secret("agent-sre-agent-public-keys", "AGENT_PUBLIC_KEYS", ("current.pem", "previous.pem"), True)
FUNCTION_SIGNING = Secret("agent-sre-function-signing-key", "FUNCTION_SIGNING_KEY", ("function.pem",), False)
FUNCTION_PUBLIC = Secret("agent-sre-function-public-keys", "FUNCTION_PUBLIC_KEYS", ("current.pem", "previous.pem"),
                         True)
AUDIT_HMAC = Secret("agent-sre-audit-hmac-key", "AUDIT_HMAC_KEY", ("audit-hmac.key",), False)
SECRETS = (AGENT_SIGNING, AGENT_PUBLIC, FUNCTION_SIGNING, FUNCTION_PUBLIC, AUDIT_HMAC)
# Which Secrets each side mounts.
AGENT_MOUNTS = (AGENT_SIGNING, AGENT_PUBLIC, FUNCTION_PUBLIC, AUDIT_HMAC)
FUNCTION_MOUNTS = (FUNCTION_SIGNING, AGENT_PUBLIC, AUDIT_HMAC)


def _dir(out: Path, s: Secret) -> Path:
    return out / s.name.removeprefix("agent-sre-")


def path_of(out: str | os.PathLike, s: Secret) -> Path:
    """Where ``generate`` put what ``s.setting`` names (a file, or a directory for a key ring)."""
    d = _dir(Path(out), s)
    return d if s.directory else d / s.files[0]


def env(out: str | os.PathLike, mounts: tuple[Secret, ...]) -> dict[str, str]:
    """The settings of one side, pointing at the files ``generate`` wrote under ``out``."""
    return {s.setting: str(path_of(out, s)) for s in mounts}


def _write(path: Path, data: bytes, private: bool) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o644)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def _manifest(s: Secret, files: dict[str, bytes]) -> dict:
    return {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": {"name": s.name, "namespace": NAMESPACE,
                         "labels": {"app.kubernetes.io/part-of": "agent-sre"},
                         "annotations": {"agent-sre/setting": s.setting, "agent-sre/mount": s.mount}},
            "data": {k: base64.b64encode(v).decode() for k, v in files.items()}}


def _dump(path: Path, docs: list[dict]) -> None:
    _write(path, yaml.safe_dump_all(docs, sort_keys=False).encode(), private=True)


def generate(out: str | os.PathLike, previous: str | os.PathLike | None = None) -> dict[str, Path]:
    """Write a new key set under ``out`` (see the module docstring); returns what was written."""
    out = Path(out)
    agent, function = SigningKey.generate(), SigningKey.generate()
    old = Path(previous) if previous else None
    if old is not None:
        audit_key = path_of(old, AUDIT_HMAC).read_bytes()
        old_pub = {AGENT_PUBLIC: public_pem(load_public(path_of(old, AGENT_PUBLIC) / "current.pem")),
                   FUNCTION_PUBLIC: public_pem(load_public(path_of(old, FUNCTION_PUBLIC) / "current.pem"))}
    else:
        audit_key, old_pub = secrets.token_hex(32).encode() + b"\n", {}
    contents: dict[Secret, dict[str, bytes]] = {
        AGENT_SIGNING: {"agent.pem": agent.pem()},
        FUNCTION_SIGNING: {"function.pem": function.pem()},
        AUDIT_HMAC: {"audit-hmac.key": audit_key},
    }
    final: dict[Secret, dict[str, bytes]] = {AGENT_PUBLIC: {"current.pem": public_pem(agent.public)},
                                             FUNCTION_PUBLIC: {"current.pem": public_pem(function.public)}}
    for s, files in final.items():
        contents[s] = {**files, **({"previous.pem": old_pub[s]} if s in old_pub else {})}
    written: dict[str, Path] = {}
    for s, files in contents.items():
        for name, data in files.items():
            _write(_dir(out, s) / name, data, private=not s.directory)
        written[s.setting] = path_of(out, s)
    _dump(out / "secrets-public.yaml", [_manifest(s, contents[s]) for s in (AGENT_PUBLIC, FUNCTION_PUBLIC)])
    _dump(out / "secrets-signing.yaml", [_manifest(s, contents[s]) for s in (AGENT_SIGNING, FUNCTION_SIGNING,
                                                                             AUDIT_HMAC)])
    written["secrets-public.yaml"] = out / "secrets-public.yaml"
    written["secrets-signing.yaml"] = out / "secrets-signing.yaml"
    if old is not None:
        _dump(out / "secrets-public-final.yaml", [_manifest(s, final[s]) for s in (AGENT_PUBLIC, FUNCTION_PUBLIC)])
        written["secrets-public-final.yaml"] = out / "secrets-public-final.yaml"
    return written
