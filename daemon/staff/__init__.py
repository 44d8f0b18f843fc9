"""The plan's staff procedures: complaints (4.2) and the information-system outage (4.3)."""
