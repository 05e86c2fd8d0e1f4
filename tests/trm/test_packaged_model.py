"""The shipped model is an ensemble, and all of it is installed: the wheel ``pip install .`` builds
carries every member's files (config, ONNX graph, weights), and the packaged model loads with all its
members. A package-data pattern that missed ``member-1/`` would install a one-member model that
still loads, silently serving different answers."""
from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from agent_sre.trm import artifact
from agent_sre.trm.infer import load_predictor, packaged_model

ROOT = Path(__file__).resolve().parents[2]
MODEL = ROOT / "src" / "agent_sre" / "data" / "model"


def test_the_packaged_model_is_served_with_all_its_members():
    p = load_predictor(packaged_model())
    names = artifact.read(packaged_model()).extra.get("members") or []
    assert names and p.info["members"] == 1 + len(names) == 2


@pytest.mark.slow
def test_the_wheel_carries_every_member_of_the_packaged_model(tmp_path):
    # Build from a copy: setuptools writes build/ and *.egg-info into the tree it builds.
    shutil.copytree(ROOT / "src", tmp_path / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, tmp_path / name)
    out = tmp_path / "dist"
    p = subprocess.run([sys.executable, "-m", "pip", "wheel", str(tmp_path), "--no-deps", "--no-build-isolation",
                        "-w", str(out), "-q"], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-2000:]
    (wheel,) = out.glob("agent_sre-*.whl")
    packed = {n for n in zipfile.ZipFile(wheel).namelist() if n.startswith("agent_sre/data/model/")}
    shipped = {"agent_sre/data/model/" + f.relative_to(MODEL).as_posix() for f in MODEL.rglob("*") if f.is_file()}
    assert any("/member-1/" in n for n in shipped)
    assert packed == shipped
