"""Configuration: every bad key or value is a ConfigError naming the key; secrets never from the file."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from watchdog.config import ConfigError, load_config, parse_config
from watchdog.domain import OnDeadline, ProviderName
from watchdog.secrets import Secret

ROOT = Path(__file__).resolve().parents[2]


def test_embedded_defaults() -> None:
    config = parse_config({}, {})
    assert config.database_url == "sqlite:///watchdog.db"
    assert config.policy.alert_lead == dt.timedelta(hours=48)
    assert config.policy.capture_lead == dt.timedelta(hours=24)
    assert config.policy.critical_lead == dt.timedelta(hours=6)
    assert config.policy.safety_margin == dt.timedelta(minutes=15)
    assert config.policy.on_deadline is OnDeadline.CAPTURE
    assert set(config.providers) == set(ProviderName)
    assert config.provider(ProviderName.SMARTPAY).window == dt.timedelta(days=7)
    assert config.provider(ProviderName.CLEARPAY).window == dt.timedelta(days=13)
    assert config.provider(ProviderName.JPMMPS).base_url is None
    assert all(not p.credentials for p in config.providers.values())


def test_defaults_leave_a_day_of_provider_outage_before_the_guard() -> None:
    policy = parse_config({}, {}).policy
    assert policy.capture_lead - policy.safety_margin >= dt.timedelta(hours=23)


def test_values_are_read_and_provider_policy_inherits_the_global_one() -> None:
    config = parse_config({
        "policy": {"alert_lead": "3d", "capture_lead": "1d12h", "on_deadline": "alert"},
        "providers": {"flitt": {"window": "4d", "capture_lead": "36h", "on_deadline": "cancel"}},
        "display": {"timezone": "Asia/Tokyo"},
    }, {})
    assert config.policy.alert_lead == dt.timedelta(days=3)
    assert config.policy.capture_lead == dt.timedelta(hours=36)
    flitt = config.policy_for(ProviderName.FLITT)
    assert flitt.alert_lead == dt.timedelta(days=3)
    assert flitt.on_deadline is OnDeadline.CANCEL
    assert config.provider(ProviderName.FLITT).window == dt.timedelta(days=4)
    assert config.policy_for(ProviderName.SMARTPAY).on_deadline is OnDeadline.ALERT
    assert config.timezone == "Asia/Tokyo"


BAD: list[tuple[dict[str, Any], str]] = [
    ({"nonsense": 1}, "nonsense"),
    ({"policy": {"alert_lead": "soon"}}, "policy.alert_lead"),
    ({"policy": {"alert_lead": 48}}, "policy.alert_lead"),
    ({"policy": {"alert_lead": "-48h"}}, "policy.alert_lead"),
    ({"policy": {"alert_lead": ""}}, "policy.alert_lead"),
    ({"policy": {"capture_lead": 1.5}}, "policy.capture_lead"),
    ({"policy": {"safety_margin": ["15m"]}}, "policy.safety_margin"),
    ({"policy": {"alert_lead": "12h", "capture_lead": "24h"}}, "policy.alert_lead"),
    ({"policy": {"critical_lead": "72h"}}, "policy.critical_lead"),
    ({"policy": {"capture_lead": "10m", "critical_lead": "5m"}}, "policy.capture_lead"),
    ({"policy": {"capture_lead": "15m", "critical_lead": "5m"}}, "policy.capture_lead"),
    ({"policy": {"on_deadline": "explode"}}, "policy.on_deadline"),
    ({"policy": {"on_deadline": 1}}, "policy.on_deadline"),
    ({"policy": {"alert_leed": "48h"}}, "policy.alert_leed"),
    ({"policy": "48h"}, "policy"),
    ({"providers": {"flitt": {"window": "forever"}}}, "providers.flitt.window"),
    ({"providers": {"flitt": {"window": "0s"}}}, "providers.flitt.window"),
    ({"providers": {"flitt": {"window": 5}}}, "providers.flitt.window"),
    ({"providers": {"flitt": {"alert_lead": "1h"}}}, "providers.flitt.alert_lead"),
    ({"providers": {"flitt": {"on_deadline": "later"}}}, "providers.flitt.on_deadline"),
    ({"providers": {"flitt": {"secret_key": "abc"}}}, "providers.flitt.secret_key"),
    ({"providers": {"clearpay": {"merchant_id": "x"}}}, "providers.clearpay.merchant_id"),
    ({"providers": {"paypal": {}}}, "providers.paypal"),
    ({"providers": {"smartpay": {"base_url": "ftp://x"}}}, "providers.smartpay.base_url"),
    ({"providers": {"smartpay": {"base_url": 3}}}, "providers.smartpay.base_url"),
    ({"providers": {"smartpay": {"read_timeout": 0}}}, "providers.smartpay.read_timeout"),
    ({"providers": {"smartpay": {"read_timeout": True}}}, "providers.smartpay.read_timeout"),
    ({"providers": {"smartpay": {"max_concurrency": 0}}}, "providers.smartpay.max_concurrency"),
    ({"providers": {"smartpay": {"retry_attempts": "3"}}}, "providers.smartpay.retry_attempts"),
    ({"providers": {"smartpay": {"rate_limit": -1}}}, "providers.smartpay.rate_limit"),
    ({"providers": {"smartpay": {"enabled": "yes"}}}, "providers.smartpay.enabled"),
    ({"providers": {"smartpay": {"user_agent": ""}}}, "providers.smartpay.user_agent"),
    ({"providers": {"jpmmps": {"origin": 5}}}, "providers.jpmmps.origin"),
    ({"providers": {"smartpay": []}}, "providers.smartpay"),
    ({"display": {"timezone": "Mars/Olympus"}}, "display.timezone"),
    ({"display": {"timezone": "Europe"}}, "display.timezone"),
    ({"display": {"timezone": "../../etc/passwd"}}, "display.timezone"),
    ({"display": {"timezone": ""}}, "display.timezone"),
    ({"display": {"tz": "UTC"}}, "display.tz"),
    ({"database": {"url": ""}}, "database.url"),
    ({"database": {"password": "x"}}, "database.password"),
    ({"scheduler": {"scan_interval": "0s"}}, "scheduler.scan_interval"),
    ({"scheduler": {"batch_size": 0}}, "scheduler.batch_size"),
    ({"scheduler": {"lease": 300}}, "scheduler.lease"),
    ({"scheduler": {"lease": "0s"}}, "scheduler.lease"),
    ({"scheduler": {"jobstore": "memory"}}, "scheduler.jobstore"),
    ({"api": {"port": 70000}}, "api.port"),
    ({"api": {"port": "8787"}}, "api.port"),
    ({"api": {"debug": True}}, "api.debug"),
]


@pytest.mark.parametrize(("data", "key"), BAD, ids=[key for _, key in BAD])
def test_every_bad_value_names_its_key(data: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(data, {})
    assert str(info.value).startswith(f"{key}:"), str(info.value)


def test_a_secret_written_into_the_file_is_refused_without_echoing_it() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config({"providers": {"smartpay": {"secret_key": "sk_live_hunter2"}}}, {})
    assert "sk_live_hunter2" not in str(info.value)


def test_secrets_come_from_the_environment(tmp_path: Path) -> None:
    env = {"WATCHDOG_FLITT_MERCHANT_ID": "1549901", "WATCHDOG_FLITT_SECRET_KEY": " test \n"}
    flitt = parse_config({}, env).provider(ProviderName.FLITT)
    assert flitt.credential("WATCHDOG_FLITT_SECRET_KEY").reveal() == "test"
    assert "test" not in repr(flitt.credentials)


def test_secrets_come_from_the_systemd_credentials_directory(tmp_path: Path) -> None:
    (tmp_path / "WATCHDOG_SMARTPAY_SECRET_KEY").write_text("sk_test_file\n", encoding="utf-8")
    env = {"CREDENTIALS_DIRECTORY": str(tmp_path)}
    smartpay = parse_config({}, env).provider(ProviderName.SMARTPAY)
    assert smartpay.credential("WATCHDOG_SMARTPAY_SECRET_KEY") == Secret("sk_test_file")


def test_environment_beats_the_credentials_directory(tmp_path: Path) -> None:
    (tmp_path / "WATCHDOG_SMARTPAY_SECRET_KEY").write_text("from-file", encoding="utf-8")
    env = {"CREDENTIALS_DIRECTORY": str(tmp_path), "WATCHDOG_SMARTPAY_SECRET_KEY": "from-env"}
    smartpay = parse_config({}, env).provider(ProviderName.SMARTPAY)
    assert smartpay.credential("WATCHDOG_SMARTPAY_SECRET_KEY").reveal() == "from-env"


def test_a_missing_credential_says_where_to_put_it() -> None:
    smartpay = parse_config({}, {}).provider(ProviderName.SMARTPAY)
    with pytest.raises(ConfigError, match=r"providers\.smartpay.*CREDENTIALS_DIRECTORY"):
        smartpay.credential("WATCHDOG_SMARTPAY_SECRET_KEY")


def test_database_url_from_the_environment_wins() -> None:
    config = parse_config({"database": {"url": "sqlite:///file.db"}},
                          {"WATCHDOG_DATABASE_URL": "postgresql+psycopg://u:pw@h/db"})
    assert config.database_url == "postgresql+psycopg://u:pw@h/db"


# ------------------------------------------------------------------ lookup order


def _write(path: Path, alert_lead: str) -> Path:
    path.write_text(f'[policy]\nalert_lead = "{alert_lead}"\n', encoding="utf-8")
    return path


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_explicit_path_beats_env_and_cwd(in_tmp: Path) -> None:
    explicit = _write(in_tmp / "explicit.toml", "50h")
    env_file = _write(in_tmp / "env.toml", "60h")
    _write(in_tmp / "watchdog.toml", "70h")
    config = load_config(str(explicit), {"WATCHDOG_CONFIG": str(env_file)})
    assert (config.policy.alert_lead, config.source) == (dt.timedelta(hours=50), str(explicit))


def test_env_beats_cwd(in_tmp: Path) -> None:
    env_file = _write(in_tmp / "env.toml", "60h")
    _write(in_tmp / "watchdog.toml", "70h")
    config = load_config(None, {"WATCHDOG_CONFIG": str(env_file)})
    assert (config.policy.alert_lead, config.source) == (dt.timedelta(hours=60), str(env_file))


def test_cwd_file_beats_defaults(in_tmp: Path) -> None:
    _write(in_tmp / "watchdog.toml", "70h")
    config = load_config(None, {})
    assert config.policy.alert_lead == dt.timedelta(hours=70)
    assert config.source == "watchdog.toml"


def test_no_file_means_embedded_defaults(in_tmp: Path) -> None:
    config = load_config(None, {})
    assert config.source == "<embedded defaults>"
    assert config == parse_config({}, {})


def test_an_empty_watchdog_config_variable_is_ignored(in_tmp: Path) -> None:
    assert load_config(None, {"WATCHDOG_CONFIG": ""}).source == "<embedded defaults>"


@pytest.mark.parametrize(
    ("content", "expected"),
    [(None, "does not exist"), ("[policy\n", "not valid TOML"), (b"\xff\xfe[", "not UTF-8")],
)
def test_unreadable_files_are_config_errors(
    in_tmp: Path, content: str | bytes | None, expected: str
) -> None:
    path = in_tmp / "bad.toml"
    if isinstance(content, str):
        path.write_text(content, encoding="utf-8")
    elif isinstance(content, bytes):
        path.write_bytes(content)
    with pytest.raises(ConfigError, match=expected):
        load_config(str(path), {})


def test_a_directory_as_config_is_a_config_error(in_tmp: Path) -> None:
    """Regression: IsADirectoryError escaped as a traceback instead of a ConfigError."""
    with pytest.raises(ConfigError, match="cannot be read"):
        load_config(str(in_tmp), {})


def test_a_bad_value_in_a_file_names_the_key(in_tmp: Path) -> None:
    path = in_tmp / "w.toml"
    path.write_text('[providers.flitt]\nwindow = "5 days"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"^providers\.flitt\.window: "):
        load_config(str(path), {})


def test_the_shipped_example_configuration_is_valid() -> None:
    example = ROOT / "deploy" / "watchdog.example.toml"
    config = load_config(str(example), {})
    assert config.policy == parse_config({}, {}).policy
