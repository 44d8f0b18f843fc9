"""The MQTT edge: ingest (store, then acknowledge) and what the daemon publishes back."""
