"""Import authorizations from JSON Lines or CSV: keep every good row, report every bad one."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from watchdog.errors import ValidationError
from watchdog.registration import FIELDS, NewAuthorization, validate_record


@dataclass(frozen=True, slots=True)
class Rejection:
    """One rejected row: where, which field, why."""

    line: int
    field: str
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.field}: {self.reason}"


@dataclass
class ParsedFile:
    """Valid records with their line numbers, and every rejection."""

    records: list[tuple[int, NewAuthorization]] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)


def detect_format(path: Path, explicit: str | None = None) -> str:
    """``jsonl`` or ``csv`` from the explicit choice or the file extension."""
    if explicit:
        return explicit
    return "csv" if path.suffix.lower() == ".csv" else "jsonl"


def _jsonl_rows(text: str) -> Iterator[tuple[int, dict[str, Any] | Rejection]]:
    # Split on "\n" only: str.splitlines() also breaks at U+2028, U+0085, \x1c..., which JSON
    # allows unescaped inside strings, and would cut a good record in two and shift line numbers.
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            yield number, Rejection(number, "(line)", f"not valid JSON: {exc.msg}")
            continue
        if not isinstance(value, dict):
            yield number, Rejection(number, "(line)", "each line must be a JSON object")
            continue
        yield number, value


def _csv_rows(text: str) -> Iterator[tuple[int, dict[str, Any] | Rejection]]:
    reader = csv.DictReader(io.StringIO(text))
    if reader.fieldnames is None:
        return
    unknown = [name for name in reader.fieldnames if name not in FIELDS]
    if unknown:
        yield 1, Rejection(1, unknown[0], f"unknown column (known: {', '.join(FIELDS)})")
        return
    repeated = sorted({name for name in reader.fieldnames if reader.fieldnames.count(name) > 1})
    if repeated:  # csv.DictReader would silently keep the last value of a repeated column
        yield 1, Rejection(1, repeated[0], "column appears more than once in the header")
        return
    for row in reader:
        line = reader.line_num
        if None in row:
            yield line, Rejection(line, "(line)", "more values than header columns")
            continue
        yield line, {k: v for k, v in row.items() if v not in (None, "")}


def parse_file(path: Path, fmt: str | None = None) -> ParsedFile:
    """Validate every row of ``path``; nothing is stored here."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        return ParsedFile(rejections=[Rejection(0, "(file)", f"not UTF-8 text: {exc.reason}")])
    rows = _csv_rows(text) if detect_format(path, fmt) == "csv" else _jsonl_rows(text)
    parsed = ParsedFile()
    seen: dict[tuple[str, str, str], int] = {}
    for number, value in rows:
        if isinstance(value, Rejection):
            parsed.rejections.append(value)
            continue
        try:
            record = validate_record(value)
        except ValidationError as exc:
            parsed.rejections.append(Rejection(number, exc.field, exc.reason))
            continue
        key = (record.provider.value, record.account, record.order_id)
        if key in seen:
            parsed.rejections.append(
                Rejection(number, "order_id", f"duplicate of line {seen[key]} in this file")
            )
            continue
        seen[key] = number
        parsed.records.append((number, record))
    return parsed
