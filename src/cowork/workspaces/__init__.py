"""Workspaces: lifecycle, members and metadata."""

from cowork.workspaces.records import Workspace, WorkspaceStatus

__all__ = ["Workspace", "WorkspaceStatus"]
