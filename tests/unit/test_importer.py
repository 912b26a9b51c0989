"""Imports: every bad row reported with line, field and reason; every good row kept."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from watchdog.importer import detect_format, parse_file

ROW: dict[str, Any] = {
    "provider": "flitt", "order_id": "A-1", "amount": 1820, "currency": "GEL",
    "authorized_at": "2026-11-20T10:00:00+04:00",
}


def _row(**changes: Any) -> dict[str, Any]:
    return dict(ROW, **changes)


def _jsonl(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _rejections(parsed: Any) -> list[tuple[int, str]]:
    return [(r.line, r.field) for r in parsed.rejections]


def test_jsonl_keeps_every_good_row_and_reports_every_bad_one(tmp_path: Path) -> None:
    path = _jsonl(tmp_path / "in.jsonl", [
        json.dumps(_row(order_id="A-1")),                       # 1 good
        json.dumps(_row(order_id="A-2", amount=-5)),            # 2 amount
        "",                                                     # 3 blank: skipped
        json.dumps(_row(order_id="A-3", currency="gel")),       # 4 currency
        "{not json",                                            # 5 invalid JSON
        json.dumps(_row(order_id="A-4")),                       # 6 good
        json.dumps([ROW]),                                      # 7 not an object
        json.dumps(_row(order_id="A-1")),                       # 8 duplicate of line 1
        json.dumps(_row(order_id="A-5", colour="red")),         # 9 unknown field
        json.dumps(_row(order_id="A-6", authorized_at="2026-11-20")),  # 10 date only
        json.dumps(_row(order_id="A-7", amount=18.2)),          # 11 float
        json.dumps(_row(order_id="A-8")),                       # 12 good
    ])
    parsed = parse_file(path)
    assert [(line, r.order_id) for line, r in parsed.records] == [(1, "A-1"), (6, "A-4"), (12, "A-8")]
    assert _rejections(parsed) == [
        (2, "amount"), (4, "currency"), (5, "(line)"), (7, "(line)"), (8, "order_id"),
        (9, "colour"), (10, "authorized_at"), (11, "amount"),
    ]
    reasons = {r.line: r.reason for r in parsed.rejections}
    assert "not valid JSON" in reasons[5]
    assert "JSON object" in reasons[7]
    assert "duplicate of line 1" in reasons[8]
    assert str(parsed.rejections[0]).startswith("line 2: amount: ")


def test_the_same_order_id_at_another_provider_is_not_a_duplicate(tmp_path: Path) -> None:
    path = _jsonl(tmp_path / "in.jsonl", [
        json.dumps(_row()), json.dumps(_row(provider="clearpay", currency="GBP")),
    ])
    parsed = parse_file(path)
    assert len(parsed.records) == 2
    assert parsed.rejections == []


def test_a_jsonl_line_with_a_unicode_line_separator_stays_one_line(tmp_path: Path) -> None:
    """Regression: str.splitlines() split a record at U+2028 / U+0085 (legal unescaped in
    JSON strings), rejecting a good row and shifting every later line number."""
    path = tmp_path / "in.jsonl"
    first = json.dumps(_row(order_id="A-1", reference="two\u2028lines\x85here"),
                       ensure_ascii=False)
    path.write_text(first + "\r\n" + json.dumps(_row(order_id="A-2", amount=0)) + "\r\n",
                    encoding="utf-8")
    parsed = parse_file(path)
    # One rejection per line, at the right line numbers; the separators themselves are
    # refused in free text (issue 17: they forge lines on operator screens and pages).
    assert parsed.records == []
    assert _rejections(parsed) == [(1, "reference"), (2, "amount")]


def test_csv_keeps_good_rows_and_reports_bad_ones(tmp_path: Path) -> None:
    path = tmp_path / "in.csv"
    path.write_text(
        "provider,order_id,amount,currency,authorized_at,capture_amount,reference\n"
        "flitt,C-1,1820,GEL,2026-11-20T10:00:00+04:00,,\n"            # 2 good
        "flitt,C-2,18.20,GEL,2026-11-20T10:00:00+04:00,,\n"           # 3 amount
        "flitt,C-3,1820,GEL,2026-11-20T10:00:00,,\n"                  # 4 naive
        'clearpay,C-4,5000,GBP,2026-11-20T10:00:00Z,6000,"a, b"\n'    # 5 capture_amount
        "flitt,C-1,1820,GEL,2026-11-20T10:00:00+04:00,,\n"            # 6 duplicate
        "flitt,C-5,1820,GEL,2026-11-20T10:00:00+04:00,,,extra\n"      # 7 too many values
        "paypal,C-6,1820,GEL,2026-11-20T10:00:00+04:00,,\n"           # 8 provider
        'clearpay,C-7,5000,GBP,2026-11-20T10:00:00Z,4000,"a, b"\n',   # 9 good
        encoding="utf-8",
    )
    parsed = parse_file(path)
    assert [(line, r.order_id) for line, r in parsed.records] == [(2, "C-1"), (9, "C-7")]
    assert parsed.records[1][1].reference == "a, b"
    assert parsed.records[1][1].capture_amount == 4000
    assert _rejections(parsed) == [
        (3, "amount"), (4, "authorized_at"), (5, "capture_amount"), (6, "order_id"),
        (7, "(line)"), (8, "provider"),
    ]


def test_csv_with_a_byte_order_mark_and_crlf(tmp_path: Path) -> None:
    path = tmp_path / "excel.csv"
    path.write_bytes(
        "\ufeffprovider,order_id,amount,currency,authorized_at\r\n"
        "smartpay,S-1,1000,JPY,2026-11-20T10:00:00+09:00\r\n".encode()
    )
    parsed = parse_file(path)
    assert [line for line, _ in parsed.records] == [2]
    assert parsed.rejections == []


def test_csv_unknown_column_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "in.csv"
    path.write_text(
        "provider,order_id,amount,currency,authorized_at,secret_key\n"
        "flitt,C-1,1820,GEL,2026-11-20T10:00:00+04:00,abc\n",
        encoding="utf-8",
    )
    parsed = parse_file(path)
    assert parsed.records == []
    assert _rejections(parsed) == [(1, "secret_key")]
    assert "unknown column" in parsed.rejections[0].reason


def test_csv_repeated_column_is_rejected(tmp_path: Path) -> None:
    """Regression: csv.DictReader kept the last of two ``amount`` columns silently."""
    path = tmp_path / "in.csv"
    path.write_text(
        "provider,order_id,amount,currency,authorized_at,amount\n"
        "flitt,C-1,1820,GEL,2026-11-20T10:00:00+04:00,99\n",
        encoding="utf-8",
    )
    parsed = parse_file(path)
    assert parsed.records == []
    assert _rejections(parsed) == [(1, "amount")]


def test_csv_missing_required_column_rejects_each_row(tmp_path: Path) -> None:
    path = tmp_path / "in.csv"
    path.write_text("provider,order_id,amount,authorized_at\n"
                    "flitt,C-1,1820,2026-11-20T10:00:00+04:00\n"
                    "flitt,C-2,1820,2026-11-20T10:00:00+04:00\n", encoding="utf-8")
    parsed = parse_file(path)
    assert _rejections(parsed) == [(2, "currency"), (3, "currency")]


def test_empty_files_have_nothing(tmp_path: Path) -> None:
    for name in ("empty.csv", "empty.jsonl"):
        (tmp_path / name).write_text("", encoding="utf-8")
        parsed = parse_file(tmp_path / name)
        assert (parsed.records, parsed.rejections) == ([], [])


def test_a_file_that_is_not_utf8_is_one_rejection(tmp_path: Path) -> None:
    path = tmp_path / "latin1.csv"
    path.write_bytes("provider,order_id\nflitt,caf\xe9\n".encode("latin-1"))
    parsed = parse_file(path)
    assert parsed.records == []
    assert _rejections(parsed) == [(0, "(file)")]


@pytest.mark.parametrize(("name", "explicit", "fmt"), [
    ("a.csv", None, "csv"), ("a.CSV", None, "csv"), ("a.jsonl", None, "jsonl"),
    ("a.txt", None, "jsonl"), ("a.txt", "csv", "csv"), ("a.csv", "jsonl", "jsonl"),
])
def test_detect_format(name: str, explicit: str | None, fmt: str) -> None:
    assert detect_format(Path(name), explicit) == fmt


def test_explicit_format_overrides_the_extension(tmp_path: Path) -> None:
    path = _jsonl(tmp_path / "rows.csv", [json.dumps(ROW)])
    assert len(parse_file(path, "jsonl").records) == 1
