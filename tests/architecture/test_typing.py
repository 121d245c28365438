"""The public API type-checks the way a user writes it (mypy --strict on a user's module):
`subscribe` tells an event handler from a transactional one by ``transactional=``, and a step's
``ctx.tx`` is the runtime's transaction with its services."""

from __future__ import annotations

import textwrap
from pathlib import Path

from mypy import api

USER_CODE = textwrap.dedent(
    """
    import cowork

    async def on_event(event: cowork.EventEnvelope) -> None: ...

    async def audit(event: cowork.EventEnvelope, tx: cowork.TransactionContext) -> None:
        await tx.events.publish("audit:written", {"for": event.event_id})

    async def step(ctx: cowork.ActionContext) -> dict[str, int]:
        await ctx.tx.blackboard.get("ws", "plan")
        return {"ok": 1}

    async def main(rt: cowork.Runtime) -> None:
        local = rt.events.subscribe("order:*", on_event)
        reveal_type(local)
        durable = await rt.events.subscribe("order:*", on_event, consumer_id="c1")
        reveal_type(durable)
        await rt.events.subscribe("order:*", audit, consumer_id="c2", transactional=True)
        rt.workflows.register_action("step", step)
        await rt.events.subscribe("order:*", audit, consumer_id="c3")  # a type error
    """
)


def test_the_public_api_types_a_users_code(tmp_path: Path) -> None:
    module = tmp_path / "user_code.py"
    module.write_text(USER_CODE)
    out, err, _ = api.run(
        [
            "--strict",
            "--no-error-summary",
            "--cache-dir",
            str(tmp_path / "mypy-cache"),
            str(module),
        ]
    )
    lines = [line.split(" ", 1)[1] for line in out.splitlines() if line.startswith(str(module))]
    notes = [line for line in lines if line.startswith("note: Revealed type")]
    errors = [line for line in lines if line.startswith("error:")]
    assert notes == [
        'note: Revealed type is "cowork.events.bus.LocalSubscription"',
        'note: Revealed type is "cowork.consumers.subscription.DurableSubscription"',
    ], out + err
    # Only the transactional handler subscribed without transactional=True is refused.
    assert len(errors) == 1, out + err
    assert '"subscribe"' in errors[0], out
    wrong = 1 + next(i for i, line in enumerate(USER_CODE.splitlines()) if '"c3"' in line)
    assert f"{module}:{wrong}: error:" in out, out
