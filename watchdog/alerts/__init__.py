"""Alert delivery: one module per sink, the outbox sender, routing and settings.

The alerts themselves are rows written by ``watchdog.alerting`` in the same
transaction as the state change; ``watchdog.alerts.sender.deliver_pending``
delivers them later, so a sink that is down delays delivery, never a scan pass.
"""
