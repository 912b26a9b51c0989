"""The effective configuration as plain data, secrets masked (``config show``)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy.engine import make_url

from watchdog.config import Config, PolicySettings
from watchdog.domain import ProviderName
from watchdog.durations import format_duration
from watchdog.secrets import MASK


def _policy(policy: PolicySettings) -> dict[str, Any]:
    return {
        "alert_lead": format_duration(policy.alert_lead),
        "capture_lead": format_duration(policy.capture_lead),
        "critical_lead": format_duration(policy.critical_lead),
        "safety_margin": format_duration(policy.safety_margin),
        "sync_interval": format_duration(policy.sync_interval),
        "on_deadline": policy.on_deadline.value,
        "dry_run": policy.dry_run,
        "max_actions_per_pass": policy.max_actions_per_pass,
        "max_capture_amount": policy.max_capture_amount,
        "avoid_weekends": policy.avoid_weekends,
        "holidays": [day.isoformat() for day in policy.holidays],
    }


def effective_config(config: Config) -> dict[str, Any]:
    """Every setting in force; credentials shown only as set/unset."""

    def dur(value: dt.timedelta) -> str:
        return format_duration(value)

    return {
        "source": config.source,
        "database": {"url": make_url(config.database_url).render_as_string(hide_password=True)},
        "policy": _policy(config.policy),
        "scheduler": {
            "scan_interval": dur(config.scheduler.scan_interval),
            "misfire_grace": dur(config.scheduler.misfire_grace),
            "lease": dur(config.scheduler.lease),
            "batch_size": config.scheduler.batch_size,
            "concurrency": config.scheduler.concurrency,
            "stop_timeout": dur(config.scheduler.stop_timeout),
        },
        "api": {"host": config.api.host, "port": config.api.port, "enabled": config.api.enabled},
        "display": {"timezone": config.timezone},
        "providers": {
            name.value: {
                "base_url": p.base_url,
                "window": dur(p.window),
                "enabled": p.enabled,
                "connect_timeout": p.connect_timeout,
                "read_timeout": p.read_timeout,
                "max_concurrency": p.max_concurrency,
                "rate_limit": p.rate_limit,
                "retry_attempts": p.retry_attempts,
                "retry_backoff": p.retry_backoff,
                **_policy(p.policy),
                "credentials": dict.fromkeys(p.credentials, MASK),
                **_accounts(config, name),
            }
            for name, p in config.providers.items()
        },
    }


def _accounts(config: Config, name: ProviderName) -> dict[str, Any]:
    """``accounts`` of a provider with an ``accounts`` table: each one's effective settings,
    its secrets by the variable it reads them from, masked."""
    accounts = config.accounts.get(name)
    if accounts is None:
        return {}
    return {"accounts": {
        account: {
            "base_url": a.base_url, "window": format_duration(a.window), "enabled": a.enabled,
            "max_concurrency": a.max_concurrency, "rate_limit": a.rate_limit,
            **_policy(a.policy),
            "credentials": {a.secret_name(v): MASK for v in a.credentials},
        }
        for account, a in accounts.items()
    }}
