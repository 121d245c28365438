"""``cowork demo``: the whole system on the embedded SQLite default, with real operations."""
