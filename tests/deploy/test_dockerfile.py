"""The Dockerfile, checked statically (no docker engine on CI machines): multi-stage, non-root,
the same torch pin as pyproject.toml, the image name the manifests use, the commands they run."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from tests.deploy.kustomize import build

REPO = Path(__file__).resolve().parents[2]


def instructions() -> list[tuple[str, str]]:
    text = (REPO / "Dockerfile").read_text()
    text = re.sub(r"\\\n", " ", text)
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            op, _, rest = line.partition(" ")
            out.append((op.upper(), rest.strip()))
    return out


def test_multi_stage_slim_python_311():
    ins = instructions()
    froms = [rest for op, rest in ins if op == "FROM"]
    assert len(froms) >= 2
    args = dict(re.match(r"(\w+)=(.*)", rest).groups() for op, rest in ins if op == "ARG" and "=" in rest)
    assert args["PYTHON_IMAGE"] == "python:3.11-slim"
    assert any("COPY --from=build" in f"{op} {rest}" for op, rest in ins)


def test_runs_as_non_root_numeric_user_matching_the_manifests():
    ins = instructions()
    last_from = max(i for i, (op, _) in enumerate(ins) if op == "FROM")
    users = [rest for op, rest in ins[last_from:] if op == "USER"]
    assert users, "final stage must set USER"
    uid = users[-1].split(":")[0]
    assert uid.isdigit() and int(uid) != 0
    for o in build(REPO / "deploy" / "overlays" / "cpu"):
        if o["kind"] == "Service" and o["apiVersion"].startswith("serving.knative.dev/"):
            sc = o["spec"]["template"]["spec"]["containers"][0]["securityContext"]
            assert sc["runAsUser"] == int(uid) and sc["runAsNonRoot"] is True


def test_torch_pin_matches_pyproject():
    deps = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    pin = next(d for d in deps if d.replace(" ", "").startswith("torch=="))
    version = pin.split("==")[1]
    ins = instructions()
    args = dict(re.match(r"(\w+)=(.*)", rest).groups() for op, rest in ins if op == "ARG" and "=" in rest)
    assert args["TORCH_VERSION"] == version
    assert args["TORCH_VARIANT"] == "cpu"
    assert any("download.pytorch.org/whl/${TORCH_VARIANT}" in rest for op, rest in ins if op == "RUN")


def test_entrypoint_is_the_cli_and_the_manifests_use_its_commands():
    ins = dict((op, rest) for op, rest in instructions())
    assert ins["ENTRYPOINT"] == '["agent-sre"]'
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    assert "agent-sre" in scripts
    from typer.main import get_command

    from agent_sre.cli import app

    commands = set(get_command(app).commands)
    used = set()
    for o in build(REPO / "deploy" / "overlays" / "cpu"):
        if o["kind"] == "Service" and o["apiVersion"].startswith("serving.knative.dev/"):
            used.add(o["spec"]["template"]["spec"]["containers"][0]["args"][0])
    assert used == {"serve", "serve-reasoning", "serve-function"}
    missing = used - commands
    assert not missing, f"CLI lacks {missing}"


def test_dockerignore_keeps_the_context_small():
    lines = [ln.strip() for ln in (REPO / ".dockerignore").read_text().splitlines() if ln.strip() and not ln.startswith("#")]
    assert lines[0] == "*"
    assert {"!pyproject.toml", "!src/"} <= set(lines)
