"""Talking to the API under test: the running server's handle and a valid registration body."""

from __future__ import annotations

from dataclasses import dataclass

import httpx
from sqlalchemy import Engine

from watchdog.clock import FrozenClock
from watchdog.config import Config


@dataclass
class Api:
    """A running API and what a test needs to talk to it."""

    url: str
    engine: Engine
    config: Config
    clock: FrozenClock
    write_token: str
    read_token: str
    client: httpx.Client

    def headers(self, token: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {token or self.write_token}"}

    def post(self, path: str, json: object, token: str | None = None) -> httpx.Response:
        return self.client.post(path, json=json, headers=self.headers(token))

    def get(self, path: str, token: str | None = None, **params: object) -> httpx.Response:
        return self.client.get(path, params=params, headers=self.headers(token or self.read_token))



def record(order_id: str = "ord-1", **overrides: object) -> dict[str, object]:
    """A valid registration body (clearpay, authorized an hour before the test clock)."""
    body: dict[str, object] = {
        "provider": "clearpay", "order_id": order_id, "amount": 10_000, "currency": "AUD",
        "authorized_at": "2026-11-20T11:00:00+00:00", "reference": "cart-42",
    }
    body.update(overrides)
    return body
