"""Decoding of Stripe's form-encoded parameters (``items[0][price]=...``) into nested values.

The SDK flattens nested dicts as ``a[b]=v`` and lists as ``a[0]=v`` (always indexed), sends
booleans as ``true``/``false`` and unsets a value with an empty string. Query strings of GET
and DELETE requests use the same encoding.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl

_KEY = re.compile(r"^([^\[\]]+)((?:\[[^\[\]]*\])*)$")


def decode(raw: str) -> dict[str, Any]:
    """Nested dicts and lists from a form body or query string; later duplicates win."""
    root: dict[str, Any] = {}
    for key, value in parse_qsl(raw, keep_blank_values=True):
        match = _KEY.match(key)
        if match is None:
            root[key] = value
            continue
        parts = [match.group(1), *re.findall(r"\[([^\[\]]*)\]", match.group(2))]
        node = root
        for index, part in enumerate(parts):
            last = index == len(parts) - 1
            # ``expand[]=x`` (no index) appends, as Rack-style encoders send it.
            name = part if part != "" else str(len(node))
            if last:
                node[name] = value
            else:
                child = node.get(name)
                if not isinstance(child, dict):
                    child = {}
                    node[name] = child
                node = child
    return _listify(root)


def _listify(value: Any) -> Any:
    if isinstance(value, dict):
        converted = {key: _listify(item) for key, item in value.items()}
        if converted and all(key.isdigit() for key in converted):
            return [converted[key] for key in sorted(converted, key=int)]
        return converted
    return value


def as_bool(value: Any, param: str) -> bool:
    from .state import invalid

    if isinstance(value, bool):
        return value
    if value in ("true", "True", "1"):
        return True
    if value in ("false", "False", "0"):
        return False
    raise invalid(f"Invalid boolean: {value}", param)


def as_int(value: Any, param: str) -> int:
    from .state import invalid

    try:
        return int(value)
    except (TypeError, ValueError):
        raise invalid(f"Invalid integer: {value}", param) from None


def as_list(value: Any, param: str) -> list[Any]:
    from .state import invalid

    if value is None or value == "":
        return []
    if isinstance(value, list):
        return value
    if isinstance(value, str):
        return [value]
    raise invalid(f"Invalid array for {param}", param)


def as_dict(value: Any, param: str) -> dict[str, Any]:
    from .state import invalid

    if value is None or value == "":
        return {}
    if isinstance(value, dict):
        return value
    raise invalid(f"Invalid object for {param}", param)


def metadata(value: Any, current: dict[str, str] | None = None) -> dict[str, str]:
    """Stripe merges metadata on update; an empty string value removes a key, ``""`` clears all."""
    result = dict(current or {})
    if value == "":
        return {}
    for key, item in as_dict(value, "metadata").items():
        if item == "":
            result.pop(key, None)
        else:
            result[key] = str(item)
    return result
