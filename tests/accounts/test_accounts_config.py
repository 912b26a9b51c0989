"""Accounts in the configuration (issue 19): inheritance, the implicit ``default`` account,
the secrets naming rule (environment and systemd credentials), ``config check`` naming a
missing secret by account."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from pathlib import Path

import pytest

from watchdog.accounts import DEFAULT_ACCOUNT, parse_account, secret_variable
from watchdog.config import ConfigError, missing_credentials, parse_config
from watchdog.domain import ProviderName
from watchdog.errors import ValidationError

pytestmark = pytest.mark.slow  # runs the CLI as a process

FLITT = ProviderName("flitt")
TWO_SHOPS = {
    "policy": {"alert_lead": "3d"},
    "providers": {"flitt": {
        "base_url": "http://127.0.0.1:9/flitt", "window": "7d", "rate_limit": 5,
        "capture_lead": "30h",
        "accounts": {
            "ge-shop": {"window": "4d", "rate_limit": 1},
            "am-shop": {"base_url": "http://127.0.0.1:9/am", "max_concurrency": 2},
        },
    }},
}
ENV = {
    "WATCHDOG_FLITT_GE_SHOP_MERCHANT_ID": "1001", "WATCHDOG_FLITT_GE_SHOP_SECRET_KEY": "ge-key",
    "WATCHDOG_FLITT_AM_SHOP_MERCHANT_ID": "2002", "WATCHDOG_FLITT_AM_SHOP_SECRET_KEY": "am-key",
}


def test_accounts_inherit_what_they_do_not_set_from_the_provider_section() -> None:
    config = parse_config(TWO_SHOPS, ENV)
    ge, am = config.account(FLITT, "ge-shop"), config.account(FLITT, "am-shop")
    assert (ge.window, ge.rate_limit, ge.base_url) == (
        dt.timedelta(days=4), 1.0, "http://127.0.0.1:9/flitt")
    assert (am.window, am.rate_limit, am.base_url, am.max_concurrency) == (
        dt.timedelta(days=7), 5.0, "http://127.0.0.1:9/am", 2)
    for account in (ge, am):  # policy: the global one, then the provider's, then the account's
        assert account.policy.alert_lead == dt.timedelta(days=3)
        assert account.policy.capture_lead == dt.timedelta(hours=30)
    assert list(config.accounts_of(FLITT)) == ["ge-shop", "am-shop"]
    assert ge.credential("WATCHDOG_FLITT_SECRET_KEY").reveal() == "ge-key"
    assert am.credential("WATCHDOG_FLITT_SECRET_KEY").reveal() == "am-key"


def test_a_provider_without_accounts_is_the_default_account_as_before() -> None:
    config = parse_config({"providers": {"flitt": {"window": "5d"}}},
                          {"WATCHDOG_FLITT_SECRET_KEY": "k", "WATCHDOG_FLITT_MERCHANT_ID": "1"})
    accounts = config.accounts_of(FLITT)
    assert list(accounts) == [DEFAULT_ACCOUNT]
    assert accounts[DEFAULT_ACCOUNT] is config.provider(FLITT)
    assert config.provider(FLITT).window == dt.timedelta(days=5)
    assert config.provider(FLITT).credential("WATCHDOG_FLITT_SECRET_KEY").reveal() == "k"
    assert config.accounts == {}
    assert missing_credentials(parse_config({}, {})) == []


def test_secrets_naming_rule() -> None:
    assert secret_variable("WATCHDOG_FLITT_SECRET_KEY", "flitt", "ge-shop") == (
        "WATCHDOG_FLITT_GE_SHOP_SECRET_KEY")
    assert secret_variable("WATCHDOG_JPMMPS_AUTHENTICATION_KEY", "jpmmps", "brand-2") == (
        "WATCHDOG_JPMMPS_BRAND_2_AUTHENTICATION_KEY")
    assert secret_variable("WATCHDOG_FLITT_SECRET_KEY", "flitt", "default") == (
        "WATCHDOG_FLITT_SECRET_KEY")


def test_secrets_come_from_systemd_credentials_too(tmp_path: Path) -> None:
    (tmp_path / "WATCHDOG_FLITT_GE_SHOP_SECRET_KEY").write_text("ge-from-file\n")
    env = {"CREDENTIALS_DIRECTORY": str(tmp_path), "WATCHDOG_FLITT_GE_SHOP_MERCHANT_ID": "1"}
    config = parse_config(TWO_SHOPS, env)
    ge = config.account(FLITT, "ge-shop")
    assert ge.credential("WATCHDOG_FLITT_SECRET_KEY").reveal() == "ge-from-file"


def test_a_missing_secret_is_named_by_account() -> None:
    env = {k: v for k, v in ENV.items() if k != "WATCHDOG_FLITT_AM_SHOP_SECRET_KEY"}
    config = parse_config(TWO_SHOPS, env)
    (problem,) = missing_credentials(config)
    assert "providers.flitt.accounts.am-shop" in problem
    assert "WATCHDOG_FLITT_AM_SHOP_SECRET_KEY" in problem
    with pytest.raises(ConfigError, match=r"accounts\.am-shop: credential "
                                          r"WATCHDOG_FLITT_AM_SHOP_SECRET_KEY is not set"):
        config.account(FLITT, "am-shop").credential("WATCHDOG_FLITT_SECRET_KEY")


def test_config_check_names_the_missing_secret_by_account(tmp_path: Path) -> None:
    path = tmp_path / "w.toml"
    path.write_text('[providers.flitt]\nbase_url = "http://127.0.0.1:9"\n'
                    '[providers.flitt.accounts.ge-shop]\nwindow = "4d"\n')
    env = {"PATH": "/usr/bin:/bin", "WATCHDOG_FLITT_GE_SHOP_MERCHANT_ID": "1"}
    result = subprocess.run([sys.executable, "-m", "watchdog", "--config", str(path),
                             "config", "check"], capture_output=True, text=True, env=env,
                            check=False)
    assert result.returncode == 1
    assert "providers.flitt.accounts.ge-shop" in result.stderr
    assert "WATCHDOG_FLITT_GE_SHOP_SECRET_KEY" in result.stderr
    env["WATCHDOG_FLITT_GE_SHOP_SECRET_KEY"] = "s3cret-ge"
    result = subprocess.run([sys.executable, "-m", "watchdog", "--config", str(path),
                             "config", "check"], capture_output=True, text=True, env=env,
                            check=False)
    assert result.returncode == 0, result.stderr
    shown = subprocess.run([sys.executable, "-m", "watchdog", "--config", str(path),
                            "config", "show"], capture_output=True, text=True, env=env,
                           check=True).stdout
    assert "WATCHDOG_FLITT_GE_SHOP_SECRET_KEY" in shown and "s3cret-ge" not in shown


@pytest.mark.parametrize(("table", "key"), [
    ({"accounts": {"GE_shop": {}}}, "providers.flitt.accounts.GE_shop"),
    ({"accounts": {"ge": {"windw": "1d"}}}, "providers.flitt.accounts.ge.windw"),
    ({"accounts": {"ge": {"window": "-1d"}}}, "providers.flitt.accounts.ge.window"),
    ({"accounts": {}}, "providers.flitt.accounts"),
    ({"accounts": "ge"}, "providers.flitt.accounts"),
])
def test_bad_account_config_names_the_key(table: dict[str, object], key: str) -> None:
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        parse_config({"providers": {"flitt": table}}, {})


def test_account_names_in_registrations() -> None:
    assert parse_account(None) == parse_account("") == DEFAULT_ACCOUNT
    assert parse_account(" ge-shop ") == "ge-shop"
    with pytest.raises(ValidationError) as raised:
        parse_account("GE SHOP")
    assert raised.value.field == "account"
