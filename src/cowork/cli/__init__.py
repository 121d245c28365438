"""The ``cowork`` command line."""

from cowork.cli.app import main

__all__ = ["main"]
