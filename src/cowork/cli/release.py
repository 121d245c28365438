"""``cowork release-check [PATH]``: the production deliverable policy."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from cowork.cli import exit_codes
from cowork.cli.context import CliContext, pass_cli
from cowork.release_policy import check_tree


@click.command("release-check")
@click.argument("path", default=".", type=click.Path(file_okay=False, path_type=Path))
@pass_cli
def release_check_command(cli: CliContext, path: Path) -> None:
    """Check that a release tree holds code, docs and tests only (exit 1 if not)."""
    try:
        violations = check_tree(path)
    except FileNotFoundError as exc:
        raise click.BadParameter(str(exc)) from None
    if cli.as_json:
        cli.emit_json({"path": str(path), "violations": violations, "ok": not violations})
    elif violations:
        cli.table(
            f"{len(violations)} file(s) break the deliverable policy",
            ("path", "rule", "why"),
            ((v.path, v.rule, v.why) for v in violations),
        )
    else:
        cli.console.print(f"{path}: code, docs and tests only — OK")
    if violations:
        sys.exit(exit_codes.FAILURE)
