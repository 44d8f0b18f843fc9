"""The pure core: hall state driven by events and event time, and the working-day calendar."""
