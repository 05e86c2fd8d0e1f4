"""The Dockerfile, checked statically (no docker engine on CI machines): multi-stage, non-root, a
runtime image (the default target) without torch and a training image with it, the same torch pin as
pyproject.toml's `train` extra, the commands the manifests run."""

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


def stages() -> dict[str, list[tuple[str, str]]]:
    """Instructions per stage name, in order (the last stage is the default target)."""
    out: dict[str, list[tuple[str, str]]] = {}
    name = None
    for op, rest in instructions():
        if op == "FROM":
            m = re.match(r"(\S+)(?:\s+AS\s+(\S+))?", rest, re.I)
            name = m.group(2) or m.group(1)
            out[name] = [(op, rest)]
        elif name is not None:
            out[name].append((op, rest))
    return out


def lineage(all_stages: dict, name: str) -> list[str]:
    """The stage, the stages it is built FROM, and those it COPYs --from, transitively."""
    seen, todo = [], [name]
    while todo:
        n = todo.pop()
        if n in seen or n not in all_stages:
            continue
        seen.append(n)
        for op, rest in all_stages[n]:
            if op == "FROM":
                todo.append(rest.split()[0])
            m = re.match(r"--from=(\S+)", rest) if op == "COPY" else None
            if m:
                todo.append(m.group(1))
    return seen


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
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert not any(d.replace(" ", "").startswith("torch") for d in project["dependencies"])  # runtime: no torch
    pin = next(d for d in project["optional-dependencies"]["train"] if d.replace(" ", "").startswith("torch=="))
    version = pin.split("==")[1]
    ins = instructions()
    args = dict(re.match(r"(\w+)=(.*)", rest).groups() for op, rest in ins if op == "ARG" and "=" in rest)
    assert args["TORCH_VERSION"] == version
    assert args["TORCH_VARIANT"] == "cpu"
    assert any("download.pytorch.org/whl/${TORCH_VARIANT}" in rest for op, rest in ins if op == "RUN")


def test_the_runtime_image_has_no_torch_and_the_training_image_has_it():
    all_stages = stages()
    runtime = list(all_stages)[-1]  # what `docker build .` builds
    runs = " ".join(rest for n in lineage(all_stages, runtime) for op, rest in all_stages[n] if op == "RUN")
    assert "torch==" not in runs and "[train]" not in runs
    assert "pip install ." in runs and "find_spec('torch')" in runs  # the build refuses a torch that slips in
    assert runtime != "train" and "train" in all_stages
    train_runs = " ".join(rest for n in lineage(all_stages, "train") for op, rest in all_stages[n] if op == "RUN")
    assert 'torch==${TORCH_VERSION}' in train_runs and '".[train]"' in train_runs
    for name in ("train", runtime):
        users = [rest for op, rest in all_stages[name] if op == "USER"]
        assert users and users[-1].split(":")[0].isdigit() and int(users[-1].split(":")[0]) != 0


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
