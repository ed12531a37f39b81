"""YAML data files (rules, hardware profiles) read safely, with the line of every key kept so that
validation errors can say file:line. Only plain mappings, lists and scalars: no tags, no Python."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from autofuse.errors import AutofuseError

# libyaml's parser when PyYAML was built with it (several times faster); the same nodes either way.
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_PLAIN_TAGS = {yaml.MappingNode: "tag:yaml.org,2002:map", yaml.SequenceNode: "tag:yaml.org,2002:seq"}


class LineMap(dict):
    """A mapping that remembers its own line, the line of each key and each value's YAML node."""

    line: int = 0
    key_lines: dict[Any, int]
    value_nodes: dict[Any, yaml.Node]


def read_yaml(path: Path, error: type[AutofuseError], what: str) -> Any:
    """The file's content; `error` (naming file:line) for unreadable files, bad YAML, tags and
    duplicate keys. `what` names the file in messages ("rule file", "hardware profile")."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise error(f"{path}: cannot read {what} ({getattr(exc, 'strerror', None) or exc})") from None
    loader = _LOADER(text)
    try:
        root = loader.get_single_node()
        return None if root is None else _construct(root, loader, path, error)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise error(f"{where}: not valid YAML: {getattr(exc, 'problem', None) or exc}") from None
    finally:
        loader.dispose()


def _construct(node: yaml.Node, loader: yaml.SafeLoader, path: Path, error: type[AutofuseError]) -> Any:
    expected = _PLAIN_TAGS.get(type(node))
    if expected is not None and node.tag != expected:
        raise error(f"{path}:{node.start_mark.line + 1}: not valid YAML: unsupported YAML tag {node.tag}")
    if isinstance(node, yaml.MappingNode):
        result = LineMap()
        result.line = node.start_mark.line + 1
        result.key_lines, result.value_nodes = {}, {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node)
            line = key_node.start_mark.line + 1
            if key in result:
                raise error(f"{path}:{line}: duplicate key '{key}'")
            value = _construct(value_node, loader, path, error)
            if isinstance(value, LineMap):
                value.line = line  # a nested mapping is "at" its key, e.g. `memory:`
            result[key] = value
            result.key_lines[key] = line
            result.value_nodes[key] = value_node
        return result
    if isinstance(node, yaml.SequenceNode):
        return [_construct(item, loader, path, error) for item in node.value]
    return loader.construct_object(node)
