"""The README names every setting twice, side by side: its environment variable and its
config-file key (taken from the settings' specification in ``cowork.config``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from cowork.config import _SPECS

README = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("key", sorted(_SPECS))
def test_the_readme_shows_the_variable_beside_the_key(key: str) -> None:
    variable = _SPECS[key].env[0]
    beside = (f"| `{variable}` | `{key}` |", f"| `{variable}` / `{key}` |")
    assert any(form in README for form in beside), f"README: {variable} beside {key}"


def test_the_alias_is_listed_as_environment_only() -> None:
    for variable in (v for spec in _SPECS.values() for v in spec.env[1:]):
        assert f"| `{variable}` | – |" in README
