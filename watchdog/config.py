"""Configuration: one TOML file plus secrets from the environment, validated once at start.

Lookup order: ``--config PATH``, else ``$WATCHDOG_CONFIG``, else ``./watchdog.toml``;
with no file at all the embedded defaults apply. Every problem is reported as one
sentence naming the key.
"""

from __future__ import annotations

import datetime as dt
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from watchdog.accounts import DEFAULT_ACCOUNT, account_problem, secret_variable, where
from watchdog.alerts.settings import AlertSettings, parse_alert_settings
from watchdog.config_tables import boolean as _bool
from watchdog.config_tables import duration as _duration
from watchdog.config_tables import integer as _int
from watchdog.config_tables import number as _number
from watchdog.config_tables import only_keys as _only_keys
from watchdog.config_tables import string as _str
from watchdog.config_tables import table as _table
from watchdog.domain import OnDeadline, ProviderName
from watchdog.errors import ConfigError
from watchdog.secrets import Secret, read_secret

if TYPE_CHECKING:
    from watchdog.providers.spec import ProviderSpec

DEFAULT_CONFIG_FILE = "watchdog.toml"
DEFAULT_USER_AGENT = "expiry-watchdog/0.1"


@dataclass(frozen=True, slots=True)
class PolicySettings:
    """Lead times and default action; set globally, overridable per provider."""

    alert_lead: dt.timedelta = dt.timedelta(hours=48)
    capture_lead: dt.timedelta = dt.timedelta(hours=24)
    critical_lead: dt.timedelta = dt.timedelta(hours=6)
    safety_margin: dt.timedelta = dt.timedelta(minutes=15)
    on_deadline: OnDeadline = OnDeadline.CAPTURE
    sync_interval: dt.timedelta = dt.timedelta(hours=12)
    # Guard rails: an action budget per pass, an amount above which a capture waits for
    # `expiry-watchdog approve ID`, and plan-and-log-only mode.
    max_actions_per_pass: int | None = None
    max_capture_amount: int | None = None
    dry_run: bool = False
    # Business calendar: an automatic action due on a weekend or holiday (in the display
    # time zone) moves to the business day before, never later.
    avoid_weekends: bool = False
    holidays: tuple[dt.date, ...] = ()
    calendar_timezone: str = "UTC"


@dataclass(frozen=True, slots=True)
class ProviderSettings:
    """How to reach one provider and how hard to push it."""

    name: ProviderName
    base_url: str | None
    window: dt.timedelta
    connect_timeout: float
    read_timeout: float
    max_concurrency: int = 16
    rate_limit: float | None = None  # requests per second; None = unlimited
    retry_attempts: int = 3
    retry_backoff: float = 0.5  # seconds, doubled per attempt, honouring Retry-After
    enabled: bool = True
    user_agent: str = DEFAULT_USER_AGENT
    origin: str | None = None
    policy: PolicySettings = field(default_factory=PolicySettings)
    credentials: Mapping[str, Secret] = field(default_factory=dict)
    #: Which merchant account at the provider these settings are (``watchdog.accounts``).
    account: str = DEFAULT_ACCOUNT

    def credential(self, variable: str) -> Secret:
        """The named secret (by the provider's variable name), or a ConfigError saying, for
        this account, where to put it."""
        secret = self.credentials.get(variable)
        if secret is None:
            name = self.secret_name(variable)
            raise ConfigError(
                f"{where(self.name, self.account)}: credential {name} is not set; put it in "
                f"the environment or in $CREDENTIALS_DIRECTORY/{name}"
            )
        return secret

    def secret_name(self, variable: str) -> str:
        """The environment variable this account reads ``variable`` from."""
        return secret_variable(variable, self.name, self.account)

    @property
    def where(self) -> str:
        """This account's place in the configuration, for messages."""
        return where(self.name, self.account)


DEFAULT_LEASE = dt.timedelta(seconds=15)
"""``scheduler.lease``: a dead worker's rows are free this long after its last heartbeat."""


@dataclass(frozen=True, slots=True)
class SchedulerSettings:
    """How often the daemon scans and how a pass claims work."""

    scan_interval: dt.timedelta = dt.timedelta(minutes=5)
    misfire_grace: dt.timedelta = dt.timedelta(minutes=2)
    lease: dt.timedelta = DEFAULT_LEASE
    batch_size: int = 100
    concurrency: int = 64
    stop_timeout: dt.timedelta = dt.timedelta(seconds=60)


@dataclass(frozen=True, slots=True)
class ApiSettings:
    """The daemon's HTTP endpoint (API, /metrics, /healthz)."""

    host: str = "127.0.0.1"
    port: int = 8787
    enabled: bool = True
    # /v1/docs: the Swagger page loads its scripts from a CDN, so it is off unless asked for.
    docs: bool = False


@dataclass(frozen=True, slots=True)
class MetricsSettings:
    """The ``[metrics]`` table: where the daemon serves /metrics, /healthz, /readyz."""

    host: str = "127.0.0.1"
    port: int = 9787
    enabled: bool = True
    require_token: bool = False  # /metrics only with an API token (any scope)


@dataclass(frozen=True, slots=True)
class Config:
    """The validated, effective configuration."""

    database_url: str = "sqlite:///watchdog.db"
    policy: PolicySettings = field(default_factory=PolicySettings)
    scheduler: SchedulerSettings = field(default_factory=SchedulerSettings)
    api: ApiSettings = field(default_factory=ApiSettings)
    timezone: str = "UTC"
    providers: Mapping[ProviderName, ProviderSettings] = field(default_factory=dict)
    alerts: AlertSettings = field(default_factory=AlertSettings)
    metrics: MetricsSettings = field(default_factory=MetricsSettings)
    source: str = "<embedded defaults>"
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False)

    # Accounts by provider, as configured; a provider missing here (every provider section
    # without ``accounts``, or a Config built in code) is its one account ``default``,
    # whose settings are ``providers[name]``.
    accounts: Mapping[ProviderName, Mapping[str, ProviderSettings]] = field(
        default_factory=dict)

    def provider(self, name: ProviderName) -> ProviderSettings:
        """Settings for ``name`` (always present: defaults fill what the file leaves out)."""
        return self.providers[name]

    def accounts_of(self, name: ProviderName) -> Mapping[str, ProviderSettings]:
        """Every account of one provider, by account name (``{"default": ...}`` without
        ``accounts``)."""
        found = self.accounts.get(name)
        if found is not None:
            return found
        return {DEFAULT_ACCOUNT: self.providers[name]}

    def account(self, name: ProviderName, account: str = DEFAULT_ACCOUNT) -> ProviderSettings:
        """Settings of one account of a provider; ConfigError naming the known ones."""
        found = self.accounts_of(name)
        settings = found.get(account)
        if settings is None:
            raise ConfigError(
                f"providers.{name}: no account {account!r} is configured "
                f"(configured: {', '.join(found)})")
        return settings

    def all_accounts(self) -> list[ProviderSettings]:
        """Every account of every provider, in listing order."""
        return [s for name in self.providers for s in self.accounts_of(name).values()]

    def settings_of(
        self, name: ProviderName, account: str = DEFAULT_ACCOUNT
    ) -> ProviderSettings | None:
        """The settings an account plans with: its own, else its provider's (so a row of a
        removed account still plans); None for a provider the configuration lacks."""
        found = self.accounts.get(name, {}).get(account)
        return found or self.providers.get(name)

    def policy_for(self, name: ProviderName, account: str = DEFAULT_ACCOUNT) -> PolicySettings:
        """The policy in force for one provider account (the provider's when the account is
        not configured, so a row of a removed account still plans)."""
        return (self.settings_of(name, account) or self.providers[name]).policy

    @property
    def zone(self) -> ZoneInfo:
        """The operator's display time zone."""
        return ZoneInfo(self.timezone)


_POLICY_DURATIONS = (
    "alert_lead", "capture_lead", "critical_lead", "safety_margin", "sync_interval",
)
_TOP_LEVEL = {"database", "policy", "scheduler", "api", "providers", "display", "alerts", "metrics"}


def config_path(explicit: str | None, environ: Mapping[str, str] | None = None) -> Path | None:
    """Which file to read: explicit, else $WATCHDOG_CONFIG, else ./watchdog.toml if present."""
    env = os.environ if environ is None else environ
    if explicit:
        return Path(explicit)
    if env.get("WATCHDOG_CONFIG"):
        return Path(env["WATCHDOG_CONFIG"])
    default = Path(DEFAULT_CONFIG_FILE)
    return default if default.exists() else None


def load_config(
    explicit: str | None = None, environ: Mapping[str, str] | None = None
) -> Config:
    """Read, validate and return the effective configuration; raise ConfigError on any problem."""
    env = os.environ if environ is None else environ
    path = config_path(explicit, env)
    data: dict[str, Any] = {}
    source = "<embedded defaults>"
    if path is not None:
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"config file {path} does not exist") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
        except UnicodeDecodeError as exc:
            raise ConfigError(f"config file {path} is not UTF-8 text: {exc.reason}") from None
        except OSError as exc:
            raise ConfigError(f"config file {path} cannot be read: {exc.strerror}") from None
        source = str(path)
    config = parse_config(data, env)
    return replace(config, source=source)


def parse_config(data: Mapping[str, Any], environ: Mapping[str, str] | None = None) -> Config:
    """Validate a parsed TOML document into a Config."""
    from watchdog.providers import registry  # the provider modules import this one

    env = os.environ if environ is None else environ
    _only_keys(data, _TOP_LEVEL, "")
    database = _table(data, "database")
    _only_keys(database, {"url"}, "database")
    url = env.get("WATCHDOG_DATABASE_URL") or _str(database, "url", "database", "sqlite:///watchdog.db")
    display = _table(data, "display")
    _only_keys(display, {"timezone"}, "display")
    timezone = _str(display, "timezone", "display", "UTC")
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # "Europe" is a directory: OSError
        raise ConfigError(f"display.timezone: {timezone!r} is not an IANA time zone") from None
    policy = _policy(
        _table(data, "policy"), "policy", PolicySettings(calendar_timezone=timezone)
    )
    scheduler = _scheduler(_table(data, "scheduler"))
    api = _api(_table(data, "api"))
    providers_table = _table(data, "providers")
    specs = registry.specs()
    _only_keys(providers_table, {s.name.value for s in specs}, "providers")
    providers: dict[ProviderName, ProviderSettings] = {}
    accounts: dict[ProviderName, dict[str, ProviderSettings]] = {}
    for s in specs:
        table = dict(_table(providers_table, s.name.value, "providers"))
        named = table.pop("accounts", None)
        providers[s.name] = _provider(s, table, policy, env)
        if named is not None:
            accounts[s.name] = _accounts(s, table, named, policy, env)
    config = Config(
        database_url=url, policy=policy, scheduler=scheduler, api=api, timezone=timezone,
        providers=providers, alerts=parse_alert_settings(_table(data, "alerts"), env),
        metrics=parse_metrics_settings(_table(data, "metrics")), raw=dict(data),
        accounts=accounts,
    )
    _register_secrets(config)
    return config


def missing_credentials(config: Config) -> list[str]:
    """One sentence per secret an enabled account of an ``accounts`` table has not got,
    naming the account and the variable (``config check`` refuses such a configuration;
    a provider section without ``accounts`` may leave its keys unset, as before)."""
    problems = []
    for name, accounts in config.accounts.items():
        for settings in accounts.values():
            if not settings.enabled:
                continue
            for variable in registry_spec(name).secret_variables:
                if variable not in settings.credentials:
                    secret = settings.secret_name(variable)
                    problems.append(
                        f"{settings.where}: credential {secret} is not set; put it in the "
                        f"environment or in $CREDENTIALS_DIRECTORY/{secret}")
    return problems


def registry_spec(name: ProviderName) -> ProviderSpec:
    """The provider's spec (the registry imports this module, so it is imported late)."""
    from watchdog.providers import registry

    return registry.spec(name)


def _loopback(url: str) -> bool:
    """True when ``url``'s host is this machine (127.0.0.0/8, ::1, localhost)."""
    import ipaddress
    import urllib.parse

    host = urllib.parse.urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _register_secrets(config: Config) -> None:
    """Tell the log and error scrubber every secret this configuration holds."""
    from watchdog.dberrors import secrets_of
    from watchdog.logs import register_secrets

    register_secrets(*secrets_of(config.database_url))
    for provider in [*config.providers.values(), *config.all_accounts()]:
        register_secrets(*(s.reveal() for s in provider.credentials.values()))
    for sink in config.alerts.sinks:
        if sink.secret is not None:
            register_secrets(sink.secret.reveal())


def _accounts(
    spec: ProviderSpec, provider_table: Mapping[str, Any], named: Any,
    base_policy: PolicySettings, env: Mapping[str, str],
) -> dict[str, ProviderSettings]:
    """``[providers.<name>.accounts.<account>]``: each inherits what it does not set from
    the provider's section (its policy from the provider's policy)."""
    at = f"providers.{spec.name}.accounts"
    if not isinstance(named, Mapping):
        raise ConfigError(f"{at}: must be a table of accounts, got {type(named).__name__}")
    if not named:
        raise ConfigError(f"{at}: names no account; remove it or add "
                          f"[{at}.<account>]")
    found: dict[str, ProviderSettings] = {}
    variables: dict[str, str] = {}
    for account, table in named.items():
        problem = account_problem(account)
        if problem is not None:
            raise ConfigError(f"{at}.{account}: {problem}")
        if not isinstance(table, Mapping):
            raise ConfigError(f"{at}.{account}: must be a table, got {type(table).__name__}")
        if "accounts" in table:
            raise ConfigError(f"{at}.{account}.accounts: accounts do not nest")
        settings = _provider(spec, {**provider_table, **table}, base_policy, env,
                             account=account)
        for variable in spec.secret_variables:
            name = settings.secret_name(variable)
            if name in variables:
                raise ConfigError(
                    f"{at}.{account}: its secret {name} is also account "
                    f"{variables[name]!r}'s; rename one of the accounts")
            variables[name] = account
        found[account] = settings
    return found


def _provider(
    spec: ProviderSpec, table: Mapping[str, Any], base_policy: PolicySettings,
    env: Mapping[str, str], account: str = DEFAULT_ACCOUNT,
) -> ProviderSettings:
    name = spec.name
    where = f"providers.{name}"
    if account != DEFAULT_ACCOUNT:
        where = f"{where}.accounts.{account}"
    policy_keys = {"on_deadline", *_POLICY_DURATIONS, *_GUARD_RAILS}
    allowed = {
        "base_url", "window", "connect_timeout", "read_timeout", "max_concurrency", "rate_limit",
        "retry_attempts", "retry_backoff", "enabled", "user_agent", "origin", *policy_keys,
    }
    _only_keys(table, allowed, where)
    connect, read = spec.connect_timeout, spec.read_timeout
    window = _duration(table, "window", where, spec.rules.window)
    if window <= dt.timedelta(0):
        raise ConfigError(f"{where}.window: must be positive")
    base_url = table.get("base_url", spec.default_base_url)
    if base_url is not None and (
        not isinstance(base_url, str) or not base_url.startswith(("http://", "https://"))
    ):
        raise ConfigError(f"{where}.base_url: {base_url!r} is not an http(s) URL")
    if base_url is not None and base_url.startswith("http://") and not _loopback(base_url):
        raise ConfigError(
            f"{where}.base_url: {base_url!r} is plain http:// to a remote host, which would "
            "send the provider keys unencrypted; use https:// (http:// is allowed for "
            "loopback only)")
    credentials = {
        var: secret
        for var in spec.secret_variables
        if (secret := read_secret(secret_variable(var, name, account), env)) is not None
    }
    origin = table.get("origin")
    if origin is not None and (not isinstance(origin, str) or not origin):
        raise ConfigError(f"{where}.origin: must be a non-empty string")
    rate_limit = table.get("rate_limit")
    if rate_limit is not None and (not isinstance(rate_limit, int | float) or rate_limit <= 0):
        raise ConfigError(f"{where}.rate_limit: must be a positive number of requests per second")
    return ProviderSettings(
        name=name,
        base_url=base_url.rstrip("/") if base_url else None,
        window=window,
        connect_timeout=_number(table, "connect_timeout", where, connect),
        read_timeout=_number(table, "read_timeout", where, read),
        max_concurrency=_int(table, "max_concurrency", where, 16, minimum=1),
        rate_limit=float(rate_limit) if rate_limit is not None else None,
        retry_attempts=_int(table, "retry_attempts", where, 3, minimum=0),
        retry_backoff=_number(table, "retry_backoff", where, 0.5),
        enabled=_bool(table, "enabled", where, True),
        user_agent=_str(table, "user_agent", where, DEFAULT_USER_AGENT),
        origin=origin,
        policy=_policy({k: v for k, v in table.items() if k in policy_keys}, where, base_policy),
        credentials=credentials,
        account=account,
    )


_GUARD_RAILS = (
    "max_actions_per_pass", "max_capture_amount", "dry_run", "avoid_weekends", "holidays",
)


def _policy(table: Mapping[str, Any], where: str, base: PolicySettings) -> PolicySettings:
    _only_keys(table, {"on_deadline", *_POLICY_DURATIONS, *_GUARD_RAILS}, where)
    values: dict[str, Any] = {
        key: _duration(table, key, where, getattr(base, key)) for key in _POLICY_DURATIONS
    }
    for key in ("max_actions_per_pass", "max_capture_amount"):
        values[key] = (
            _int(table, key, where, 0, minimum=1) if key in table else getattr(base, key)
        )
    values["dry_run"] = _bool(table, "dry_run", where, base.dry_run)
    values["avoid_weekends"] = _bool(table, "avoid_weekends", where, base.avoid_weekends)
    values["holidays"] = _holidays(table, where, base.holidays)
    values["calendar_timezone"] = base.calendar_timezone
    raw = table.get("on_deadline", base.on_deadline.value)
    try:
        values["on_deadline"] = OnDeadline(raw)
    except ValueError:
        raise ConfigError(
            f"{where}.on_deadline: {raw!r} is not one of capture, cancel, alert"
        ) from None
    policy = PolicySettings(**values)
    if not policy.alert_lead >= policy.capture_lead >= dt.timedelta(0):
        raise ConfigError(
            f"{where}.alert_lead: must be at least capture_lead (warn before acting)"
        )
    if policy.critical_lead > policy.alert_lead:
        raise ConfigError(f"{where}.critical_lead: must not exceed alert_lead")
    if policy.capture_lead <= policy.safety_margin:
        # act_at would fall at or after the guard: every deadline capture/cancel would be
        # planned as "too late" and each authorization would expire instead.
        raise ConfigError(
            f"{where}.capture_lead: must exceed safety_margin, or nothing is ever captured in time"
        )
    return policy


def _scheduler(table: Mapping[str, Any]) -> SchedulerSettings:
    where = "scheduler"
    base = SchedulerSettings()
    _only_keys(table, {f.name for f in fields(SchedulerSettings)}, where)
    settings = SchedulerSettings(
        scan_interval=_duration(table, "scan_interval", where, base.scan_interval),
        misfire_grace=_duration(table, "misfire_grace", where, base.misfire_grace),
        lease=_duration(table, "lease", where, base.lease),
        batch_size=_int(table, "batch_size", where, base.batch_size, minimum=1),
        concurrency=_int(table, "concurrency", where, base.concurrency, minimum=1),
        stop_timeout=_duration(table, "stop_timeout", where, base.stop_timeout),
    )
    if settings.scan_interval <= dt.timedelta(0):
        raise ConfigError("scheduler.scan_interval: must be positive")
    if settings.lease < dt.timedelta(seconds=1):
        raise ConfigError(
            "scheduler.lease: must be at least 1s (a worker renews its heartbeat every third "
            "of a lease)"
        )
    return settings


def _api(table: Mapping[str, Any]) -> ApiSettings:
    _only_keys(table, {"host", "port", "enabled", "docs"}, "api")
    return ApiSettings(
        host=_str(table, "host", "api", "127.0.0.1"),
        port=_int(table, "port", "api", 8787, minimum=0, maximum=65535),
        enabled=_bool(table, "enabled", "api", True),
        docs=_bool(table, "docs", "api", False),
    )


def parse_metrics_settings(table: Mapping[str, Any]) -> MetricsSettings:
    """Validate the ``[metrics]`` table."""
    if not isinstance(table, Mapping):
        raise ConfigError(f"metrics: must be a table, got {type(table).__name__}")
    _only_keys(table, {"host", "port", "enabled", "require_token"}, "metrics")
    host = _str(table, "host", "metrics", "127.0.0.1")
    port = table.get("port", 9787)
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise ConfigError(f"metrics.port: must be an integer between 0 and 65535, got {port!r}")
    enabled = _bool(table, "enabled", "metrics", True)
    require_token = _bool(table, "require_token", "metrics", False)
    return MetricsSettings(host=host, port=port, enabled=enabled, require_token=require_token)


def _holidays(
    table: Mapping[str, Any], where: str, default: tuple[dt.date, ...]
) -> tuple[dt.date, ...]:
    if "holidays" not in table:
        return default
    raw = table["holidays"]
    if not isinstance(raw, list):
        raise ConfigError(f"{where}.holidays: must be a list of dates like \"2026-12-25\"")
    days = []
    for index, item in enumerate(raw):
        if isinstance(item, dt.date) and not isinstance(item, dt.datetime):
            days.append(item)
            continue
        try:
            days.append(dt.date.fromisoformat(str(item)))
        except ValueError:
            raise ConfigError(
                f"{where}.holidays[{index}]: {item!r} is not a date like 2026-12-25"
            ) from None
    return tuple(sorted(set(days)))
