"""CLI, worker and demo tests."""
