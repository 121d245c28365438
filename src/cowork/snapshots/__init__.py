"""Workspace snapshots: capture, list, restore (never rewriting history)."""

from cowork.snapshots.records import Snapshot

__all__ = ["Snapshot"]
