"""The app factory: ``/v1`` JSON API, OpenAPI at ``/v1/openapi.json``, docs at ``/v1/docs``
only with ``[api] docs = true`` (the Swagger page loads its scripts from a CDN)."""

from __future__ import annotations

from collections.abc import Iterable

from fastapi import APIRouter, FastAPI
from sqlalchemy import Engine

from watchdog import __version__
from watchdog.api.errors import (
    BODY_TIMEOUT,
    MAX_BODY_BYTES,
    BodyLimitMiddleware,
    install_error_handlers,
)
from watchdog.api.routes import ApiContext, router
from watchdog.clock import SYSTEM_CLOCK, Clock
from watchdog.config import Config

DESCRIPTION = """\
Register manual-capture authorizations, instruct captures and cancels, and read the
plan and the audit trail. Every request needs `Authorization: Bearer <token>`
(`expiry-watchdog tokens create --name NAME --scope read|write`); writes need a write
token and are audited as `api:<token name>`. Every rejection answers
`{"errors": [{"field": ..., "reason": ...}]}`.
"""


def create_app(
    engine: Engine, config: Config, clock: Clock = SYSTEM_CLOCK,
    extra_routers: Iterable[APIRouter] = (), *, max_body_bytes: int = MAX_BODY_BYTES,
    body_timeout: float = BODY_TIMEOUT,
) -> FastAPI:
    """The HTTP API on ``engine``; ``extra_routers`` (e.g. metrics/health) are mounted as given."""
    app = FastAPI(
        title="expiry-watchdog", version=__version__, description=DESCRIPTION,
        openapi_url="/v1/openapi.json", docs_url="/v1/docs" if config.api.docs else None,
        redoc_url=None,
    )
    app.state.watchdog = ApiContext(engine=engine, config=config, clock=clock)
    install_error_handlers(app)
    app.include_router(router)
    for extra in extra_routers:
        app.include_router(extra)
    app.add_middleware(BodyLimitMiddleware, limit=max_body_bytes, timeout=body_timeout)
    return app
