"""Prometheus: the metric families and the isolated collectors behind /metrics."""
