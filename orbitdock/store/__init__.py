"""SQLite persistence: schema migrations and the write commands the persistence actor batches."""
