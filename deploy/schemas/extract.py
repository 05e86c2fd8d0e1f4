"""Regenerate the CRD schema excerpts in this folder from upstream CRD manifests.

Usage: python deploy/schemas/extract.py NAME=CRD_YAML[@VERSION] ...  (run from the repo root)

For each CRD manifest it keeps only the openAPIV3Schema of one served version (the storage
version unless @VERSION says otherwise) and writes ``<group>_<plural>_<version>.json`` holding
``{"apiVersion", "kind", "source", "schema"}``. The tests validate every rendered object of that
apiVersion/kind against ``schema`` with jsonschema.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import yaml

HERE = Path(__file__).parent


def extract(crd_path: str, version: str | None, source: str) -> Path:
    docs = [d for d in yaml.safe_load_all(Path(crd_path).read_text()) if d and d.get("kind") == "CustomResourceDefinition"]
    if len(docs) != 1:
        raise SystemExit(f"{crd_path}: expected one CustomResourceDefinition, found {len(docs)}")
    crd = docs[0]
    spec = crd["spec"]
    versions = spec["versions"]
    if version:
        chosen = next(v for v in versions if v["name"] == version)
    else:
        chosen = next(v for v in versions if v.get("storage"))
    out = HERE / f"{spec['group']}_{spec['names']['plural']}_{chosen['name']}.json"
    doc = {
        "apiVersion": f"{spec['group']}/{chosen['name']}",
        "kind": spec["names"]["kind"],
        "source": source,
        "schema": chosen["schema"]["openAPIV3Schema"],
    }
    out.write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n")
    return out


if __name__ == "__main__":
    for arg in sys.argv[1:]:
        source, _, rest = arg.partition("=")
        path, _, version = rest.partition("@")
        print(extract(path, version or None, source))
