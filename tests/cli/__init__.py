"""CLI, worker and demo tests (issue 6)."""
