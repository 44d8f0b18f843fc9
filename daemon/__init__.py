"""hallwatch daemon: MQTT ingest, event store, hall state, metrics."""
