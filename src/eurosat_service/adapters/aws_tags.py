"""AWS spells tags three ways; these convert between them and a plain dict."""

from __future__ import annotations

from collections.abc import Iterable, Mapping


def key_value(tags: Mapping[str, str]) -> list[dict[str, str]]:
    """EC2 and IAM: ``[{"Key": k, "Value": v}]``."""
    return [{"Key": k, "Value": v} for k, v in tags.items()]


def ecs_tags(tags: Mapping[str, str]) -> list[dict[str, str]]:
    """ECS: ``[{"key": k, "value": v}]``."""
    return [{"key": k, "value": v} for k, v in tags.items()]


def as_dict(tags: Iterable[Mapping[str, str]] | None) -> dict[str, str]:
    """Either list spelling back to a dict."""
    out = {}
    for tag in tags or ():
        key = tag.get("Key", tag.get("key"))
        out[key] = tag.get("Value", tag.get("value", ""))
    return out
