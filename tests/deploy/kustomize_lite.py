"""A small kustomize renderer for the tests (no kubectl/kustomize binary on CI machines).

Supports the subset deploy/ uses, in kustomize's transformer order (patches, namespace, labels,
images), and refuses any other kustomization field so nothing is silently ignored:

* ``resources``: YAML files (multi-document) and directories holding a kustomization.yaml;
* ``patches``: JSON 6902 operation lists (add/replace/remove/test) or strategic-merge documents
  (maps merged, lists of named items merged by ``name``), inline or from ``path``, with ``target``
  selecting by group/version/kind/name/namespace;
* ``namespace``: set on every namespaced object;
* ``labels``: ``pairs`` added to ``metadata.labels`` (no selectors/templates);
* ``images``: ``newName``/``newTag``/``digest`` for containers and initContainers at ``spec`` and
  ``spec.template.spec``.

Duplicate objects (same group, kind, namespace and name) are an error, as in kustomize.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition",
                  "PersistentVolume", "StorageClass", "PriorityClass", "ClusterIssuer"}
ALLOWED_KEYS = {"apiVersion", "kind", "resources", "namespace", "labels", "images", "patches"}
KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")


class KustomizeError(ValueError):
    pass


def _kfile(d: Path) -> Path:
    for n in KUSTOMIZATION_FILES:
        if (d / n).is_file():
            return d / n
    raise KustomizeError(f"{d}: no kustomization.yaml")


def obj_id(o: dict[str, Any]) -> tuple[str, str, str, str]:
    group = o.get("apiVersion", "").rpartition("/")[0]
    md = o.get("metadata") or {}
    return (group, o.get("kind", ""), md.get("namespace", ""), md.get("name", ""))


def _read_docs(p: Path) -> list[dict[str, Any]]:
    docs = [d for d in yaml.safe_load_all(p.read_text()) if d is not None]
    for d in docs:
        if not isinstance(d, dict) or "apiVersion" not in d or "kind" not in d:
            raise KustomizeError(f"{p}: every document must be a Kubernetes object with apiVersion and kind")
    return docs


def build(path: str | Path) -> list[dict[str, Any]]:
    d = Path(path)
    kf = _kfile(d)
    k = yaml.safe_load(kf.read_text()) or {}
    unknown = set(k) - ALLOWED_KEYS
    if unknown:
        raise KustomizeError(f"{kf}: fields not supported by the test renderer: {sorted(unknown)}")
    objs: list[dict[str, Any]] = []
    for res in k.get("resources", []):
        rp = (d / res).resolve()
        if rp.is_dir():
            objs.extend(build(rp))
        elif rp.is_file():
            objs.extend(_read_docs(rp))
        else:
            raise KustomizeError(f"{kf}: resource {res!r} does not exist")
    seen: dict[tuple, int] = {}
    for o in objs:
        i = obj_id(o)
        if i in seen:
            raise KustomizeError(f"{kf}: duplicate object {i}")
        seen[i] = 1
    for patch in k.get("patches", []):
        _apply_patch(objs, patch, d, kf)
    if "namespace" in k:
        for o in objs:
            if o["kind"] not in CLUSTER_SCOPED:
                o.setdefault("metadata", {})["namespace"] = k["namespace"]
    for lab in k.get("labels", []):
        if set(lab) - {"pairs"}:
            raise KustomizeError(f"{kf}: labels options {sorted(set(lab) - {'pairs'})} not supported")
        for o in objs:
            o.setdefault("metadata", {}).setdefault("labels", {}).update(lab["pairs"])
    for img in k.get("images", []):
        for o in objs:
            _set_image(o, img)
    return objs


# --------------------------------------------------------------------------- images


def _split_image(image: str) -> tuple[str, str]:
    """(name, tag-or-digest suffix including its separator)."""
    if "@" in image:
        name, _, digest = image.partition("@")
        return name, "@" + digest
    slash = image.rfind("/")
    colon = image.rfind(":")
    if colon > slash:
        return image[:colon], image[colon:]
    return image, ""


def _set_image(o: dict[str, Any], img: dict[str, Any]) -> None:
    spec = o.get("spec") or {}
    pod_specs = [spec, ((spec.get("template") or {}).get("spec") or {})]
    for ps in pod_specs:
        for key in ("containers", "initContainers"):
            for c in ps.get(key) or []:
                name, suffix = _split_image(c.get("image", ""))
                if name != img["name"]:
                    continue
                new_name = img.get("newName", name)
                if "digest" in img:
                    suffix = "@" + img["digest"]
                elif "newTag" in img:
                    suffix = ":" + str(img["newTag"])
                c["image"] = new_name + suffix


# --------------------------------------------------------------------------- patches


def _matches(o: dict[str, Any], target: dict[str, Any]) -> bool:
    group, _, version = o["apiVersion"].rpartition("/")
    md = o.get("metadata") or {}
    checks = {"group": group, "version": version, "kind": o["kind"], "name": md.get("name"),
              "namespace": md.get("namespace")}
    for k, v in target.items():
        if k not in checks:
            raise KustomizeError(f"patch target field {k!r} not supported")
        if checks[k] != v:
            return False
    return True


def _apply_patch(objs: list[dict[str, Any]], patch: dict[str, Any], d: Path, kf: Path) -> None:
    if "path" in patch:
        text = (d / patch["path"]).read_text()
    elif "patch" in patch:
        text = patch["patch"]
    else:
        raise KustomizeError(f"{kf}: patch needs `path` or `patch`")
    body = yaml.safe_load(text)
    target = patch.get("target")
    if isinstance(body, list):
        if not target:
            raise KustomizeError(f"{kf}: a JSON 6902 patch needs a target")
        hit = [o for o in objs if _matches(o, target)]
        if not hit:
            raise KustomizeError(f"{kf}: patch target {target} matches nothing")
        for o in hit:
            for op in body:
                _json6902(o, op, kf)
        return
    if not isinstance(body, dict):
        raise KustomizeError(f"{kf}: patch is neither a list of operations nor an object")
    if not target:
        md = body.get("metadata") or {}
        target = {"kind": body.get("kind"), "name": md.get("name")}
    hit = [o for o in objs if _matches(o, target)]
    if not hit:
        raise KustomizeError(f"{kf}: patch target {target} matches nothing")
    for o in hit:
        merged = _smp(o, body)
        o.clear()
        o.update(merged)


def _pointer(path: str) -> list[str]:
    if not path.startswith("/"):
        raise KustomizeError(f"JSON pointer must start with '/': {path!r}")
    return [p.replace("~1", "/").replace("~0", "~") for p in path.split("/")[1:]]


def _walk(doc: Any, parts: list[str], path: str) -> Any:
    cur = doc
    for p in parts:
        if isinstance(cur, dict) and p in cur:
            cur = cur[p]
        elif isinstance(cur, list) and p.isdigit() and int(p) < len(cur):
            cur = cur[int(p)]
        else:
            raise KustomizeError(f"path {path!r} does not exist")
    return cur


def _json6902(o: dict[str, Any], op: dict[str, Any], kf: Path) -> None:
    kind = op.get("op")
    parts = _pointer(op["path"])
    parent = _walk(o, parts[:-1], op["path"])
    last = parts[-1]
    if kind == "test":
        if _walk(o, parts, op["path"]) != op["value"]:
            raise KustomizeError(f"{kf}: test failed at {op['path']}")
    elif kind in ("add", "replace"):
        value = copy.deepcopy(op["value"])
        if isinstance(parent, dict):
            if kind == "replace" and last not in parent:
                raise KustomizeError(f"{kf}: replace of missing {op['path']}")
            parent[last] = value
        elif isinstance(parent, list):
            if last == "-" and kind == "add":
                parent.append(value)
            elif last.isdigit() and int(last) <= len(parent) - (1 if kind == "replace" else 0):
                if kind == "add":
                    parent.insert(int(last), value)
                else:
                    parent[int(last)] = value
            else:
                raise KustomizeError(f"{kf}: bad list index in {op['path']}")
        else:
            raise KustomizeError(f"{kf}: cannot {kind} under a scalar at {op['path']}")
    elif kind == "remove":
        _walk(o, parts, op["path"])
        if isinstance(parent, dict):
            del parent[last]
        else:
            del parent[int(last)]
    else:
        raise KustomizeError(f"{kf}: JSON patch op {kind!r} not supported")


def _smp(base: Any, patch: Any) -> Any:
    if isinstance(base, dict) and isinstance(patch, dict):
        out = dict(base)
        for k, v in patch.items():
            if v is None:
                out.pop(k, None)
            elif k in out:
                out[k] = _smp(out[k], v)
            else:
                out[k] = copy.deepcopy(v)
        return out
    if isinstance(base, list) and isinstance(patch, list) and all(
            isinstance(x, dict) and "name" in x for x in base + patch):
        out = [copy.deepcopy(x) for x in base]
        index = {x["name"]: i for i, x in enumerate(out)}
        for item in patch:
            if item["name"] in index:
                out[index[item["name"]]] = _smp(out[index[item["name"]]], item)
            else:
                out.append(copy.deepcopy(item))
        return out
    return copy.deepcopy(patch)
