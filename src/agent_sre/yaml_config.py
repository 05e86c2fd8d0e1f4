"""YAML for the operator's own files (policy, runbook): a mapping key written twice is an error.

PyYAML keeps the last of two equal keys silently, so ``mode: execute`` followed further down by
``mode: dry_run`` would load as dry_run, and a second ``functions:`` block would drop the first one
whole: for files that decide what may act on a cluster, that fails open. This loader refuses such
a file and names the key and both lines.
"""

from __future__ import annotations

from typing import Any

import yaml
from yaml import YAMLError

__all__ = ["YAMLError", "load"]


class _Loader(yaml.SafeLoader):
    pass


def _mapping(loader: _Loader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":  # `<<: *anchor` merges; the anchor's keys may repeat
            continue
        key = loader.construct_object(key_node, deep=True)
        try:
            first = seen.get(key)
        except TypeError:  # an unhashable key: SafeLoader's own error says so below
            continue
        if first is not None:
            raise yaml.constructor.ConstructorError(
                "while reading a mapping", node.start_mark,
                f"key {key!r} appears twice (lines {first + 1} and {key_node.start_mark.line + 1}); "
                "the second would silently replace the first", key_node.start_mark)
        seen[key] = key_node.start_mark.line
    return loader.construct_mapping(node)


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)


def load(text: str) -> Any:
    """Like ``yaml.safe_load``, but a key repeated in one mapping raises ``yaml.YAMLError``."""
    return yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass
