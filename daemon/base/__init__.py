"""Leaf utilities every layer may use: backoff, rate-limited logging, errors, ports."""
