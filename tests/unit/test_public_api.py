"""The public names: ``__all__`` lists what public signatures use, and a star-import never
shadows a builtin."""

from __future__ import annotations

import builtins

import cowork


def test_a_star_import_shadows_no_builtin() -> None:
    # ``from cowork import *`` binds exactly the names in ``__all__``.
    shadowed = sorted(n for n in cowork.__all__ if hasattr(builtins, n))
    assert shadowed == []
    assert cowork.open is cowork.runtime.open_runtime  # still there, by its full name


def test_every_name_in_all_resolves() -> None:
    for name in cowork.__all__:
        assert getattr(cowork, name) is not None, name


def test_the_types_of_public_signatures_are_exported() -> None:
    wanted = {
        "BlackboardService",
        "ConsumerInfo",
        "ConsumersService",
        "DurableSubscription",
        "EventsService",
        "MigrationReport",
        "Operator",
        "ParkedEvent",
        "SecretProvider",
        "SnapshotsService",
        "WorkflowsService",
        "WorkspacesService",
    }
    assert wanted <= set(cowork.__all__)
    runtime = cowork.Runtime
    for service in ("events", "consumers", "workspaces", "blackboard", "snapshots", "workflows"):
        returned = getattr(runtime, service).fget.__annotations__["return"]
        assert returned in cowork.__all__, f"rt.{service} returns {returned}, not exported"
