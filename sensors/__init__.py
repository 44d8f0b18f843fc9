"""Device events: parsing and validation of the wire contract, and simulators."""
