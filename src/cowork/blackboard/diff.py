"""Structural diff of two JSON documents, as JSON-pointer paths."""

from __future__ import annotations

from typing import Any

from cowork.blackboard.records import DiffChange

__all__ = ["json_diff"]


def _escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


def json_diff(old: Any, new: Any, path: str = "") -> list[DiffChange]:
    """Changes that turn ``old`` into ``new`` (objects by key, lists by index)."""
    if type(old) is not type(new):
        return [DiffChange(op="replace", path=path, old=old, new=new)]
    if isinstance(old, dict):
        changes: list[DiffChange] = []
        for key in old.keys() - new.keys():
            changes.append(DiffChange(op="remove", path=f"{path}/{_escape(key)}", old=old[key]))
        for key in new.keys() - old.keys():
            changes.append(DiffChange(op="add", path=f"{path}/{_escape(key)}", new=new[key]))
        for key in old.keys() & new.keys():
            changes.extend(json_diff(old[key], new[key], f"{path}/{_escape(key)}"))
        return sorted(changes, key=lambda c: c.path)
    if isinstance(old, list):
        changes = []
        for index in range(min(len(old), len(new))):
            changes.extend(json_diff(old[index], new[index], f"{path}/{index}"))
        for index in range(len(new), len(old)):
            changes.append(DiffChange(op="remove", path=f"{path}/{index}", old=old[index]))
        for index in range(len(old), len(new)):
            changes.append(DiffChange(op="add", path=f"{path}/{index}", new=new[index]))
        return changes
    if old != new:
        return [DiffChange(op="replace", path=path, old=old, new=new)]
    return []
