"""One attempt at an action step: its outcome, and what a failed one leads to (a retry after
a capped exponential backoff, or the instance failed after the step's last attempt)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from cowork.errors import ValidationError
from cowork.jsondoc import validate_document
from cowork.kernel.backoff import backoff_delay
from cowork.logs import describe_error
from cowork.workflows.actions import CompletionWrite
from cowork.workflows.changes import InstanceChanges
from cowork.workflows.definition import ActionStep
from cowork.workflows.records import WorkflowInstance

__all__ = ["Outcome", "action_result", "backoff_for", "log_attempt", "record_attempt"]

_log = logging.getLogger("cowork.workflows")
_MAX_RETRY_SECONDS = 86_400.0  # a day


@dataclass(frozen=True, slots=True)
class Outcome:
    attempt: int
    data: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    completions: tuple[CompletionWrite, ...] = ()


def action_result(action: str, result: object) -> dict[str, Any]:
    """What an action returned, as the data merged into the instance (a mapping or None)."""
    if result is None:
        return {}
    if not isinstance(result, Mapping):
        raise ValidationError(
            f"action {action!r} returned {type(result).__name__}; return a mapping or None"
        )
    data = dict(result)
    validate_document(data, what=f"result of action {action!r}", max_bytes=256 * 1024)
    return data


def record_attempt(transition: InstanceChanges, step: ActionStep, attempt: int, error: str) -> None:
    """A failed attempt: retry later with backoff, or fail the instance after the last."""
    if attempt >= step.max_attempts:
        transition.finish_failed(
            f"action {step.action!r} failed {attempt} times; last error: {error}",
            detail={"attempt": attempt},
        )
    else:
        transition.retry_later(error, backoff_for(step, attempt))


def backoff_for(step: ActionStep, attempt: int) -> float:
    """The delay before the retry after failed attempt ``attempt``: ``backoff_seconds``
    doubling, capped at a day."""
    return backoff_delay(attempt, initial=step.backoff_seconds, cap=_MAX_RETRY_SECONDS)


def log_attempt(instance: WorkflowInstance, step: ActionStep, attempt: int, error: object) -> None:
    _log.warning(
        "workflow %s instance %s: action %r failed (attempt %d/%d): %s",
        instance.workflow_id,
        instance.instance_id,
        step.action,
        attempt,
        step.max_attempts,
        describe_error(error) if isinstance(error, BaseException) else error,
    )
