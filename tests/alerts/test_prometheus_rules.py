"""deploy/prometheus/alerts.yml is valid for promtool, and the dead-man's switch fires."""

from __future__ import annotations

import subprocess
from pathlib import Path

RULES = Path(__file__).resolve().parents[2] / "deploy" / "prometheus" / "alerts.yml"
PROMTOOL = "/usr/bin/promtool"

UNIT_TEST = f"""\
rule_files:
  - {RULES}
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      - series: expiry_watchdog_last_successful_pass_timestamp_seconds
        values: "0x30"
      - series: expiry_watchdog_database_up
        values: "1x30"
    alert_rule_test:
      - eval_time: 10m
        alertname: ExpiryWatchdogStale
        exp_alerts: []
      - eval_time: 20m
        alertname: ExpiryWatchdogStale
        exp_alerts:
          - exp_labels:
              severity: critical
            exp_annotations:
              summary: "expiry-watchdog: no successful scan pass for 20m 0s"
              description: "Nothing captures, cancels or pages before deadlines while passes fail (dead-man's switch)."
              next_steps: "systemctl status expiry-watchdog (or expiry-watchdog-scan.timer); expiry-watchdog check"
  - interval: 1m
    input_series:
      - series: up
        values: "1x30"
    alert_rule_test:
      - eval_time: 15m
        alertname: ExpiryWatchdogMetricsAbsent
        exp_alerts:
          - exp_labels:
              severity: critical
            exp_annotations:
              summary: expiry-watchdog metrics are not being scraped
              description: "No expiry_watchdog_* series for 10 minutes; the process serving /metrics is down or unreachable."
              next_steps: "systemctl status expiry-watchdog; curl http://127.0.0.1:9787/healthz"
"""


def test_promtool_check_rules() -> None:
    result = subprocess.run([PROMTOOL, "check", "rules", str(RULES)], capture_output=True,
                            text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout + result.stderr


def test_dead_mans_switch_and_absent(tmp_path: Path) -> None:
    test_file = tmp_path / "alerts_test.yml"
    test_file.write_text(UNIT_TEST)
    result = subprocess.run([PROMTOOL, "test", "rules", str(test_file)], capture_output=True,
                            text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
