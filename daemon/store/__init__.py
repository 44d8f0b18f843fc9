"""The durable event log in SQLite and its snapshots (the start-up restore is in `pipeline`)."""
