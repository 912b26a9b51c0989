"""Schemathesis fuzzes every operation of the OpenAPI document (positive and negative data).

For each generated request: without a token it is 401 and changes nothing; with a read token
a write is 403 and changes nothing; with a write token the answer is never a 500 and
conforms to the documented status codes, content types and schemas.
"""

from __future__ import annotations

import time

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.core.parameters import ParameterLocation
from sqlalchemy import Engine, func, select

from watchdog import service, tokens
from watchdog.api import create_app
from watchdog.clock import FrozenClock
from watchdog.config import Config
from watchdog.db import transaction
from watchdog.models import ApiToken, AuditRow, Authorization

CHECKS = [
    schemathesis.checks.not_a_server_error,
    schemathesis.checks.status_code_conformance,
    schemathesis.checks.content_type_conformance,
    schemathesis.checks.response_schema_conformance,
]


def _state(engine: Engine) -> tuple[int, int, int, int]:
    with transaction(engine) as session:
        def count(model: type) -> int:
            return session.scalar(select(func.count()).select_from(model)) or 0

        changed = session.scalar(select(func.count()).select_from(Authorization)
                                 .where(Authorization.instruction.is_not(None))) or 0
        return count(Authorization), count(AuditRow), count(ApiToken), changed


@pytest.fixture
def seeded(engine: Engine, config: Config, clock: FrozenClock) -> tuple[str, str]:
    """Two authorizations (ids 1, 2) so generated ids sometimes hit real rows."""
    for n, provider in enumerate(("clearpay", "flitt")):
        service.register(engine, config, {
            "provider": provider, "order_id": f"seed-{n}", "amount": 5000, "currency": "EUR"
            if provider == "flitt" else "AUD", "authorized_at": "2026-11-20T10:00:00Z",
        }, "test", clock)
    write = tokens.create(engine, "fuzz-write", tokens.Scope.WRITE, "test", clock.now())
    read = tokens.create(engine, "fuzz-read", tokens.Scope.READ, "test", clock.now())
    return write, read


def test_every_operation_survives_fuzzing(
    engine: Engine, config: Config, clock: FrozenClock, seeded: tuple[str, str],
) -> None:
    write, read = seeded
    app = create_app(engine, config, clock)
    schema = schemathesis.openapi.from_asgi("/v1/openapi.json", app)
    started = time.monotonic()
    operations = 0
    statuses: set[int] = set()

    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1
        strategy = st.one_of(operation.as_strategy(generation_mode=GenerationMode.POSITIVE),
                             operation.as_strategy(generation_mode=GenerationMode.NEGATIVE))

        @settings(max_examples=40, deadline=None, database=None, derandomize=True,
                  suppress_health_check=list(HealthCheck))
        @given(case=strategy)
        def run(case: schemathesis.Case) -> None:
            phase = case.meta.phase.data if case.meta is not None else None
            if getattr(phase, "parameter_location", None) == ParameterLocation.HEADER:
                # A negative case that mangles or drops the Authorization header itself.
                before = _state(engine)
                mangled = case.call()
                assert mangled.status_code in (401, 413), mangled.text
                assert _state(engine) == before
                return
            case.headers = {k: v for k, v in (case.headers or {}).items()
                            if k.lower() != "authorization"}
            before = _state(engine)
            for headers in ({}, {"Authorization": "Bearer ew_" + "x" * 43},
                            {"Authorization": "Bearer " + write[:-1] + "?"}):
                anonymous = case.call(headers=headers)
                assert anonymous.status_code in (401, 413), anonymous.text
            if case.operation.method.upper() == "POST":
                refused = case.call(headers={"Authorization": f"Bearer {read}"})
                assert refused.status_code in (403, 413), refused.text
            assert _state(engine) == before  # no write succeeded without a write token
            answer = case.call_and_validate(headers={"Authorization": f"Bearer {write}"},
                                            checks=CHECKS)
            statuses.add(answer.status_code)

        run()

    assert operations == 7
    assert {200, 201, 404, 422} <= statuses, statuses  # the fuzzer reached real work
    assert time.monotonic() - started < 60
