"""The pure core: hall state driven by events and event time, the one processing path,
the alert views."""
