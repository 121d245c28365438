"""``python -m cowork`` runs the CLI."""

from cowork.cli import main

main()
