"""Alerts: the outbox, one module per sink, the sender, routing and settings.

The alerts themselves are rows written by ``watchdog.alerts.outbox`` in the same
transaction as the state change; ``watchdog.alerts.sender.deliver_pending``
delivers them later, so a sink that is down delays delivery, never a scan pass.
"""
