"""What every domain leans on: settings, database, messages, the idempotent handler core."""
