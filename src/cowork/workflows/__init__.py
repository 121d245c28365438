"""Workflows: versioned definitions as data, correlated instances, a crash-resuming engine."""

from cowork.workflows.actions import ActionContext
from cowork.workflows.definition import (
    ActionStep,
    BranchCase,
    BranchStep,
    CompleteStep,
    FailStep,
    WaitStep,
    WorkflowDefinition,
)
from cowork.workflows.records import HistoryEntry, InstanceStatus, WorkflowInstance

__all__ = [
    "ActionContext",
    "ActionStep",
    "BranchCase",
    "BranchStep",
    "CompleteStep",
    "FailStep",
    "HistoryEntry",
    "InstanceStatus",
    "WaitStep",
    "WorkflowDefinition",
    "WorkflowInstance",
]
