"""An exported model directory: what it holds and how it is checked before use. No torch here, so
a server reads a model with ONNX Runtime alone.

- ``config.json``: format and version, the model config, the caller's ``extra`` (tokenizer vocabulary,
  catalog hash, label space, threshold...), the parameter count and the sha256 of every file below.
- ``model.safetensors``: the weights, for PyTorch (training, evaluation, ``TRM_BACKEND=torch``).
- ``model.onnx``: the same weights as an ONNX graph (``trm/onnx.py``), for serving without PyTorch.
  Exports written before the graph existed lack it (and its checksum); those load with PyTorch only.

The export is one unit: a missing or mismatching file makes the whole directory unusable, whichever
backend would read it, so a corrupt volume is caught the same way everywhere.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .config import TRMConfig

FORMAT = "agent-sre-trm"
FORMAT_VERSION = 1
CONFIG = "config.json"
WEIGHTS = "model.safetensors"
GRAPH = "model.onnx"
# config.json key holding each file's checksum
CHECKSUMS = {WEIGHTS: "weights_sha256", GRAPH: "onnx_sha256"}


class ModelLoadError(RuntimeError):
    """An exported model directory is missing, incomplete, corrupt or inconsistent."""


@dataclass(frozen=True)
class Exported:
    path: Path
    cfg: TRMConfig
    extra: dict[str, Any]
    meta: dict[str, Any]  # the whole config.json

    @property
    def has_graph(self) -> bool:
        return CHECKSUMS[GRAPH] in self.meta


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def write_config(out: Path, cfg: TRMConfig, extra: dict[str, Any], **fields: Any) -> None:
    """Write config.json last, atomically: it appears only once the files it describes are complete.
    ``fields``: further keys (checksums, parameter count, versions)."""
    meta = {"format": FORMAT, "format_version": FORMAT_VERSION, "model": cfg.to_dict(), "extra": extra, **fields}
    tmp = out / (CONFIG + ".tmp")
    tmp.write_text(json.dumps(meta, indent=2, sort_keys=True))
    tmp.replace(out / CONFIG)


def read(model_dir: str | Path) -> Exported:
    """Read and check an export; raises ModelLoadError with the specific reason."""
    d = Path(model_dir)
    if not d.is_dir():
        raise ModelLoadError(f"model directory {d} does not exist (missing {CONFIG})")
    cfg_path = d / CONFIG
    for p in (cfg_path, d / WEIGHTS):
        if not p.is_file():
            raise ModelLoadError(f"missing {p.name} in {d}")
    try:
        meta = json.loads(cfg_path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ModelLoadError(f"{cfg_path} is not valid JSON: {e}") from e
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ModelLoadError(f"{cfg_path} is not an {FORMAT} export")
    if meta.get("format_version") != FORMAT_VERSION:
        raise ModelLoadError(f"unsupported export format_version {meta.get('format_version')!r}")
    try:
        cfg = TRMConfig.from_dict(meta["model"])
    except (KeyError, TypeError, ValueError) as e:
        raise ModelLoadError(f"bad model config in {cfg_path}: {e}") from e
    for name, key in CHECKSUMS.items():
        if name == GRAPH and key not in meta:
            continue  # an export from before the graph: PyTorch only
        p = d / name
        if not p.is_file():
            raise ModelLoadError(f"missing {name} in {d}")
        if meta[key] != sha256(p):
            raise ModelLoadError(f"{p} does not match the checksum in {CONFIG} (corrupt or replaced)")
    extra = meta.get("extra", {})
    return Exported(d, cfg, extra if isinstance(extra, dict) else {}, meta)
