"""deploy/watchdog.example.toml is valid, complete and documented.

"Complete" is checked against docs/configuration.md, not against a list in this
test: every key the example sets (or shows commented out as `#key = value`) must
be a row of the "Configuration reference" table, and every row must appear in
the example. A key added to the app lands in both files or this fails. The
example with every optional line uncommented must still pass `config check`.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from tests.support.deploy import EXAMPLE_CONFIG, PROVIDERS, REPO, clean_env, run, watchdog_cli

pytestmark = pytest.mark.slow  # runs the installed `expiry-watchdog config check`

CONFIG_DOC = REPO / "docs" / "configuration.md"
_OPTIONAL = re.compile(r"^#([a-z_]+ = .*)$", re.M)


def _uncommented(text: str) -> str:
    return _OPTIONAL.sub(r"\1", text)


def _keys(data: dict[str, object], prefix: str = "") -> set[str]:
    keys: set[str] = set()
    for key, value in data.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict):
            keys |= _keys(value, f"{dotted}.")
        else:
            keys.add(dotted)
    return keys


def _normalise(key: str) -> str:
    for name in PROVIDERS:
        key = key.replace(f"providers.{name}.", "providers.<name>.")
    return key


def example_keys() -> set[str]:
    data = tomllib.loads(_uncommented(EXAMPLE_CONFIG.read_text(encoding="utf-8")))
    return {_normalise(k) for k in _keys(data)}


def documented_keys() -> set[str]:
    text = CONFIG_DOC.read_text(encoding="utf-8")
    assert "## Configuration reference" in text, f"{CONFIG_DOC} lost its reference section"
    section = text.split("## Configuration reference", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"^\| `([a-z_<>.]+)` \|", section, re.M))


def _check(config: Path) -> None:
    result = run([watchdog_cli(), "--config", config, "config", "check"], env=clean_env())
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("configuration OK")


def test_example_passes_config_check() -> None:
    _check(EXAMPLE_CONFIG)


def test_example_with_every_optional_line_enabled_passes_config_check(tmp_path: Path) -> None:
    text = EXAMPLE_CONFIG.read_text(encoding="utf-8")
    assert _OPTIONAL.search(text), "the example shows no optional settings any more"
    variant = tmp_path / "all.toml"
    variant.write_text(_uncommented(text), encoding="utf-8")
    _check(variant)


def test_every_example_key_is_documented() -> None:
    missing = example_keys() - documented_keys()
    assert not missing, f"keys in {EXAMPLE_CONFIG.name} but not in {CONFIG_DOC.name}: {missing}"


def test_every_documented_key_is_in_the_example() -> None:
    missing = documented_keys() - example_keys()
    assert not missing, f"keys in {CONFIG_DOC.name} but not in {EXAMPLE_CONFIG.name}: {missing}"


def test_example_configures_all_four_providers_and_holds_no_secret() -> None:
    text = EXAMPLE_CONFIG.read_text(encoding="utf-8")
    data = tomllib.loads(text)
    assert set(data["providers"]) == set(PROVIDERS)
    assert not re.search(r"sk_(live|test)_[A-Za-z0-9]", text)
    keys = _keys(tomllib.loads(_uncommented(text)))
    assert not [k for k in keys if re.search(r"secret|password|merchant|_key$", k)], keys
    assert "@" not in data["database"]["url"], "no credentials in the database URL"


def test_example_is_rejected_when_a_key_is_misspelt(tmp_path: Path) -> None:
    """config check is strict, so the checks above are not vacuous."""
    broken = tmp_path / "broken.toml"
    broken.write_text(EXAMPLE_CONFIG.read_text(encoding="utf-8").replace(
        "scan_interval =", "scan_intervall =", 1), encoding="utf-8")
    result = run([watchdog_cli(), "--config", broken, "config", "check"], env=clean_env())
    assert result.returncode == 1
    assert "scheduler.scan_intervall: unknown key" in result.stderr


_ALLOWED = re.compile(r"^error: (\S*?)\.?zz_probe: unknown key \(allowed here: ([^)]*)\)", re.M)


def _app_allowed_keys(tmp_path: Path, table: str) -> set[str] | None:
    """The keys the app itself accepts in ``table`` (from its own "unknown key" error),
    or None when the app does not restrict that table."""
    probe = tmp_path / "probe.toml"
    probe.write_text((f"[{table}]\n" if table else "") + "zz_probe = 1\n", encoding="utf-8")
    result = run([watchdog_cli(), "--config", probe, "config", "check"], env=clean_env())
    match = _ALLOWED.search(result.stderr)
    if result.returncode == 0 or match is None:
        assert result.returncode == 0, result.stderr
        return None
    return {k.strip() for k in match.group(2).split(",")}


def test_example_covers_every_key_the_app_accepts(tmp_path: Path) -> None:
    """Asks the real CLI which keys each table accepts (its strict-key error lists
    them), so a key added to the app must be added to the example (and, by the
    tests above, to docs/configuration.md). Tables the app does not validate
    strictly yet report nothing and so demand nothing."""
    top = _app_allowed_keys(tmp_path, "")
    assert top is not None and "providers" in top
    example = example_keys()
    missing: set[str] = set()
    for table in sorted(top - {"providers"}):
        allowed = _app_allowed_keys(tmp_path, table)
        missing |= {f"{table}.{k}" for k in allowed or ()} - example
    for name in PROVIDERS:
        allowed = _app_allowed_keys(tmp_path, f"providers.{name}")
        assert allowed, f"providers.{name} accepts no keys?"
        missing |= {f"providers.<name>.{k}" for k in allowed} - example
    assert not missing, f"the app accepts keys the example does not show: {sorted(missing)}"
