"""Database backends of the scheduler (``sqlite3``: SQLite with the fork gate)."""
