"""Alerts: the pure rule engine, the plan's messages, the durable outbox and the channels that
send (WeCom robots, SMS, webhooks, Alertmanager)."""
