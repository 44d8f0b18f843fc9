"""The durable event log in SQLite, snapshots and start-up restore."""
