"""Recorded days: recording from the broker, offline replay through the core, scoring."""
