"""Feedback threads on an artifact or on the workspace (part of ``rt.blackboard``)."""

from __future__ import annotations

import builtins
from collections.abc import Iterable, Mapping
from typing import Any

from cowork.arguments import mapping_arg, string_list_arg, text_arg
from cowork.blackboard.feedback_store import FeedbackStore
from cowork.blackboard.records import Feedback, FeedbackComment, FeedbackSeverity, FeedbackStatus
from cowork.blackboard.store import BlackboardStore
from cowork.blackboard.validation import check_key, check_label
from cowork.errors import NotFound, ValidationError
from cowork.events.envelope import NewEvent
from cowork.ids import new_id
from cowork.jsondoc import validate_document
from cowork.kernel.service import TenantService, utcnow
from cowork.kernel.unit import UnitOfWork
from cowork.tenancy import validate_id
from cowork.workspaces.service import WorkspacesService

__all__ = ["FeedbackOps"]

MAX_BODY = 20_000
MAX_TAGS = 50


def _body(value: object, what: str = "body") -> str:
    return text_arg(value, what, MAX_BODY)


def _tags(values: Iterable[str]) -> list[str]:
    tags: list[str] = []
    for tag in string_list_arg(values, "tags"):
        check_label(tag, "tag", 64)
        if tag not in tags:
            tags.append(tag)
    if len(tags) > MAX_TAGS:
        raise ValidationError(f"at most {MAX_TAGS} tags per thread")
    return tags


class FeedbackOps(TenantService):
    async def add_feedback(
        self,
        workspace_id: str,
        *,
        actor: str,
        body: str,
        artifact_key: str | None = None,
        severity: FeedbackSeverity | str = FeedbackSeverity.MINOR,
        tags: Iterable[str] = (),
        metadata: Mapping[str, Any] | None = None,
    ) -> Feedback:
        """Open a thread on an artifact (``artifact_key``) or on the workspace (None).

        Emits ``feedback:added`` and ``workspace:feedback:added``, both carrying the target
        ``artifactKey``.
        """
        validate_id(workspace_id, "workspace_id")
        validate_id(actor, "actor")
        text = _body(body)
        if artifact_key is not None:
            check_key(artifact_key)
        level = _severity(severity)
        tag_list = _tags(tags)
        meta = validate_document(
            mapping_arg(metadata, "metadata"), what="metadata", max_bytes=64 * 1024
        )
        feedback_id = new_id()
        async with self._transaction() as ctx:
            await WorkspacesService(self._core, self._scope, bound=ctx).locked(
                ctx, workspace_id, share=True
            )
            if artifact_key is not None:
                entry = await BlackboardStore(ctx.tx, self._scope).entry(workspace_id, artifact_key)
                if entry is None or entry.deleted:
                    raise NotFound(f"no artifact {artifact_key!r} in workspace {workspace_id!r}")
            await self._feedback(ctx).insert(
                feedback_id=feedback_id,
                workspace_id=workspace_id,
                artifact_key=artifact_key,
                author_id=actor,
                body=text,
                severity=level,
                tags=tag_list,
                metadata=meta,
                now=utcnow(),
            )
            feedback = await self._load(ctx, feedback_id)
            payload = {
                "workspaceId": workspace_id,
                "artifactKey": artifact_key,
                "feedbackId": feedback_id,
                "actorId": actor,
                "severity": level.value,
                "status": feedback.status.value,
                "tags": tag_list,
            }
            await self._emit(
                ctx,
                [
                    NewEvent(
                        event_type=name,
                        aggregate_type="feedback",
                        aggregate_id=feedback_id,
                        payload=payload,
                    )
                    for name in ("feedback:added", "workspace:feedback:added")
                ],
            )
        return feedback

    async def get_feedback(self, workspace_id: str, feedback_id: str) -> Feedback | None:
        """The thread, or None if the workspace has no thread ``feedback_id``."""
        validate_id(workspace_id, "workspace_id")
        validate_id(feedback_id, "feedback_id")
        async with self._transaction(read_only=True) as ctx:
            feedback = await self._feedback(ctx).get(feedback_id)
        if feedback is None or feedback.workspace_id != workspace_id:
            return None
        return feedback

    async def list_feedback(
        self,
        workspace_id: str,
        *,
        artifact_key: str | None = None,
        status: FeedbackStatus | str | None = None,
    ) -> builtins.list[Feedback]:
        validate_id(workspace_id, "workspace_id")
        if artifact_key is not None:
            check_key(artifact_key)
        status_value = None if status is None else _status(status).value
        async with self._transaction(read_only=True) as ctx:
            return await self._feedback(ctx).list(
                workspace_id, artifact_key=artifact_key, status=status_value
            )

    async def update_feedback(
        self,
        workspace_id: str,
        feedback_id: str,
        *,
        actor: str,
        status: FeedbackStatus | str | None = None,
        severity: FeedbackSeverity | str | None = None,
        tags: Iterable[str] | None = None,
    ) -> Feedback:
        """Change a thread's status, severity or tags. A status change emits
        ``feedback:status:changed``; a severity or tag change emits ``feedback:updated`` (with
        the fields that changed, before and after). Nothing changed, nothing emitted."""
        validate_id(workspace_id, "workspace_id")
        validate_id(actor, "actor")
        new_status = None if status is None else _status(status)
        new_severity = None if severity is None else _severity(severity)
        new_tags = None if tags is None else _tags(tags)
        async with self._transaction() as ctx:
            current, row_version = await self._locked(ctx, workspace_id, feedback_id)
            updated = await self._save(
                ctx,
                current,
                row_version,
                status=new_status or current.status,
                severity=new_severity or current.severity,
                tags=new_tags if new_tags is not None else list(current.tags),
                comments=[c.to_json() for c in current.comments],
            )
            events: list[NewEvent] = []
            if new_status is not None and new_status is not current.status:
                events.append(
                    _thread_event(
                        "feedback:status:changed",
                        current,
                        actor,
                        **{"from": current.status.value, "to": new_status.value},
                    )
                )
            changes = _edits(current, updated)
            if changes:
                events.append(_thread_event("feedback:updated", current, actor, changes=changes))
            if events:
                await self._emit(ctx, events)
        return updated

    async def add_comment(
        self, workspace_id: str, feedback_id: str, *, actor: str, body: str
    ) -> Feedback:
        """Append a comment to a thread; emits ``feedback:comment:added``."""
        validate_id(workspace_id, "workspace_id")
        validate_id(actor, "actor")
        text = _body(body)
        async with self._transaction() as ctx:
            current, row_version = await self._locked(ctx, workspace_id, feedback_id)
            comment = FeedbackComment(
                comment_id=new_id(),
                actor=actor,
                body=text,
                created_at=utcnow().isoformat(),
            )
            updated = await self._save(
                ctx,
                current,
                row_version,
                status=current.status,
                severity=current.severity,
                tags=list(current.tags),
                comments=[*(c.to_json() for c in current.comments), comment.to_json()],
            )
            await self._emit(
                ctx,
                [
                    _thread_event(
                        "feedback:comment:added", current, actor, commentId=comment.comment_id
                    )
                ],
            )
        return updated

    def _feedback(self, ctx: UnitOfWork) -> FeedbackStore:
        return FeedbackStore(ctx.tx, self._scope)

    async def _locked(
        self, ctx: UnitOfWork, workspace_id: str, feedback_id: str
    ) -> tuple[Feedback, int]:
        validate_id(feedback_id, "feedback_id")
        found = await self._feedback(ctx).locked(feedback_id)
        if found is None or found[0].workspace_id != workspace_id:
            raise NotFound(
                f"no feedback thread {feedback_id!r} in workspace {workspace_id!r} "
                f"(tenant {self.tenant_id!r})"
            )
        return found

    async def _load(self, ctx: UnitOfWork, feedback_id: str) -> Feedback:
        feedback = await self._feedback(ctx).get(feedback_id)
        assert feedback is not None
        return feedback

    async def _save(
        self,
        ctx: UnitOfWork,
        current: Feedback,
        row_version: int,
        *,
        status: FeedbackStatus,
        severity: FeedbackSeverity,
        tags: builtins.list[str],
        comments: builtins.list[dict[str, Any]],
    ) -> Feedback:
        await self._feedback(ctx).update(
            current.feedback_id,
            status=status,
            severity=severity,
            tags=tags,
            comments=comments,
            now=utcnow(),
            row_version=row_version,
        )
        return await self._load(ctx, current.feedback_id)


def _thread_event(name: str, thread: Feedback, actor: str, **fields: Any) -> NewEvent:
    """An event about a change to ``thread`` made by ``actor``."""
    return NewEvent(
        event_type=name,
        aggregate_type="feedback",
        aggregate_id=thread.feedback_id,
        payload={
            "workspaceId": thread.workspace_id,
            "artifactKey": thread.artifact_key,
            "feedbackId": thread.feedback_id,
            **fields,
            "actorId": actor,
        },
    )


def _edits(before: Feedback, after: Feedback) -> dict[str, dict[str, Any]]:
    """The severity and tag changes between two states of a thread, as ``{field: {"from",
    "to"}}`` (status changes have their own event)."""
    changes: dict[str, dict[str, Any]] = {}
    if after.severity is not before.severity:
        changes["severity"] = {"from": before.severity.value, "to": after.severity.value}
    if after.tags != before.tags:
        changes["tags"] = {"from": list(before.tags), "to": list(after.tags)}
    return changes


def _severity(value: FeedbackSeverity | str) -> FeedbackSeverity:
    try:
        return FeedbackSeverity(value)
    except ValueError:
        allowed = ", ".join(s.value for s in FeedbackSeverity)
        raise ValidationError(f"severity must be one of {allowed}, got {value!r}") from None


def _status(value: FeedbackStatus | str) -> FeedbackStatus:
    try:
        return FeedbackStatus(value)
    except ValueError:
        allowed = ", ".join(s.value for s in FeedbackStatus)
        raise ValidationError(f"status must be one of {allowed}, got {value!r}") from None
