"""The API over real HTTP (uvicorn on loopback), on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt

import httpx
from sqlalchemy import func, select

from tests.support.api import Api, record
from watchdog import audit, store
from watchdog.db import transaction
from watchdog.domain import State
from watchdog.models import AuditRow, Authorization


def _counts(api: Api) -> tuple[int, int]:
    with transaction(api.engine) as session:
        return (session.scalar(select(func.count()).select_from(Authorization)) or 0,
                session.scalar(select(func.count()).select_from(AuditRow)) or 0)


def _errors(response: httpx.Response) -> dict[str, str]:
    return {e["field"]: e["reason"] for e in response.json()["errors"]}


def test_register_then_identical_then_conflicting(api: Api) -> None:
    created = api.post("/v1/authorizations", record())
    assert created.status_code == 201
    body = created.json()
    auth = body["authorization"]
    assert auth["provider"] == "clearpay"
    assert auth["amount"] == 10_000
    assert auth["state"] == "authorized"
    assert body["timeline"]["deadline"] == "2026-12-03T11:00:00+00:00"  # Clearpay: 13 days
    assert body["timeline"]["deadline_source"] == "provider_window"

    again = api.post("/v1/authorizations", record())
    assert again.status_code == 200
    assert again.json() == body

    before = _counts(api)
    conflict = api.post("/v1/authorizations", record(amount=12_000, reference="other"))
    assert conflict.status_code == 409
    errors = _errors(conflict)
    assert set(errors) == {"amount", "reference"}
    assert "10000" in errors["amount"]
    assert "12000" in errors["amount"]
    assert _counts(api) == before

    rows = audit.query(api.engine, authorization_id=auth["id"])
    assert [(r.event, r.actor) for r in rows] == [("register:authorization:create", "api:merchant")]


def test_get_one_and_unknown(api: Api) -> None:
    auth_id = api.post("/v1/authorizations", record()).json()["authorization"]["id"]
    got = api.get(f"/v1/authorizations/{auth_id}")
    assert got.status_code == 200
    assert got.json()["authorization"]["order_id"] == "ord-1"
    missing = api.get("/v1/authorizations/999999")
    assert missing.status_code == 404
    assert list(_errors(missing)) == ["authorization_id"]
    bad = api.get("/v1/authorizations/abc")
    assert bad.status_code == 422
    assert list(_errors(bad)) == ["authorization_id"]


def test_rejections_name_the_field_and_change_nothing(api: Api) -> None:
    cases = {
        "authorized_at": record(authorized_at="2026-11-20T11:00:00"),  # naive
        "amount": record(amount=12.5),
        "currency": record(currency="aud"),
        "provider": record(provider="paypal"),
        "colour": record(colour="red"),
        "order_id": record(order_id="has space"),
        "expires_at": record(expires_at="2026-11-19T00:00:00Z"),
        "capture_amount": record(capture_amount=20_000),
        "reference": record(reference="nul\x00byte"),
    }
    before = _counts(api)
    for field, body in cases.items():
        response = api.post("/v1/authorizations", body)
        assert response.status_code == 422, (field, response.text)
        assert list(_errors(response)) == [field], response.text
    missing = {k: v for k, v in record().items() if k != "amount"}
    assert list(_errors(api.post("/v1/authorizations", missing))) == ["amount"]
    for raw in (b"{not json", b"[1, 2]", b"9" * 5000):
        response = api.client.post("/v1/authorizations", content=raw, headers=api.headers())
        assert response.status_code == 422
        assert list(_errors(response)) == ["body"]
    assert _counts(api) == before


def test_body_too_large_is_413(api: Api) -> None:
    big = record(reference="x" * (70 * 1024))
    response = api.post("/v1/authorizations", big)
    assert response.status_code == 413
    assert list(_errors(response)) == ["body"]
    assert _counts(api) == (0, 3)  # only the re-key row and the two token-creation rows


def test_authentication_and_scopes(api: Api) -> None:
    url = "/v1/authorizations"
    answers = [
        api.client.post(url, json=record()),
        api.client.post(url, json=record(), headers={"Authorization": "Bearer ew_" + "A" * 43}),
        api.client.post(url, json=record(), headers={"Authorization": "Bearer nonsense"}),
        api.client.post(url, json=record(), headers={"Authorization": "Basic dXNlcjpwdw=="}),
        api.client.get(url),
    ]
    for answer in answers:
        assert answer.status_code == 401
        assert answer.headers["www-authenticate"] == "Bearer"
    assert len({a.text for a in answers}) == 1  # nothing says which part was wrong

    read_write = api.post(url, record(), token=api.read_token)
    assert read_write.status_code == 403
    assert api.get(url).status_code == 200
    assert _counts(api)[0] == 0

    from watchdog import tokens

    tokens.revoke(api.engine, "merchant", "test", api.clock.now())
    revoked = api.post(url, record())
    assert revoked.status_code == 401
    assert revoked.text == answers[0].text
    assert _counts(api)[0] == 0


def test_list_filters_and_cursor_pagination(api: Api) -> None:
    ids = []
    for n in range(5):
        body = record(f"ord-{n}", provider="clearpay" if n % 2 else "smartpay",
                      currency="AUD" if n % 2 else "JPY")
        ids.append(api.post("/v1/authorizations", body).json()["authorization"]["id"])
    seen: list[int] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, object] = {"limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = api.get("/v1/authorizations", **params)
        assert page.status_code == 200
        seen += [item["id"] for item in page.json()["items"]]
        cursor = page.json()["next_cursor"]
        pages += 1
        if cursor is None:
            break
    assert seen == ids
    assert pages == 3

    clearpay = api.get("/v1/authorizations", provider="clearpay").json()["items"]
    assert [i["order_id"] for i in clearpay] == ["ord-1", "ord-3"]
    assert api.get("/v1/authorizations", state="captured").json()["items"] == []
    assert len(api.get("/v1/authorizations", state="authorized").json()["items"]) == 5
    # Smartpay (7 d window) alerts two days before 2026-11-27T11:00Z; Clearpay later.
    due = api.get("/v1/authorizations", due_before="2026-11-26T00:00:00+00:00").json()["items"]
    assert [i["provider"] for i in due] == ["smartpay"] * 3

    for param, value in [("limit", 0), ("limit", 501), ("limit", "x"), ("provider", "paypal"),
                         ("state", "lost"), ("due_before", "2026-11-26T00:00:00"),
                         ("due_before", "tomorrow"), ("cursor", "garbage!"),
                         ("cursor", "YTp4")]:
        response = api.get("/v1/authorizations", **{param: value})
        assert response.status_code == 422, (param, value, response.text)
        assert list(_errors(response)) == [param]


def test_capture_and_cancel_instructions(api: Api) -> None:
    auth_id = api.post("/v1/authorizations", record()).json()["authorization"]["id"]
    url = f"/v1/authorizations/{auth_id}"
    before = _counts(api)
    for body, field in [({"amount": 20_000, "when": "now"}, "amount"),
                        ({"amount": 0, "when": "now"}, "amount"),
                        ({"amount": "5", "when": "now"}, "amount"),
                        ({"amount": 5, "when": "later"}, "when"),
                        ({"amount": 5, "when": "now", "extra": 1}, "extra"),
                        ({"amount": 5}, "when")]:
        response = api.post(url + "/capture-instruction", body)
        assert response.status_code == 422, (body, response.text)
        assert list(_errors(response)) == [field]
    assert "exceeds the open amount 10000" in _errors(
        api.post(url + "/capture-instruction", {"amount": 20_000, "when": "now"}))["amount"]
    assert _counts(api) == before

    accepted = api.post(url + "/capture-instruction", {"amount": 4_000, "when": "now"})
    assert accepted.status_code == 202
    assert accepted.json()["instruction"] == "capture_now"
    assert accepted.json()["amount"] == 4_000
    assert accepted.json()["authorization"]["next_action_at"] == "2026-11-20T12:00:00+00:00"

    ready = api.post(url + "/capture-instruction", {"when": "deadline"})
    assert ready.status_code == 202
    assert ready.json()["amount"] == 10_000  # default: the open amount

    cancel = api.post(url + "/cancel", None)
    assert cancel.status_code == 202
    assert cancel.json()["instruction"] == "cancel_now"

    trail = api.get(url + "/audit")
    assert trail.status_code == 200
    events = [(r["event"], r["actor"]) for r in trail.json()["items"]]
    assert events == [
        ("register:authorization:create", "api:merchant"),
        ("instruct:capture_now:accept", "api:merchant"),
        ("instruct:capture_at_deadline:accept", "api:merchant"),
        ("instruct:cancel_now:accept", "api:merchant"),
    ]
    assert api.get("/v1/authorizations/424242/audit").status_code == 404
    assert api.post("/v1/authorizations/424242/cancel", None).status_code == 404


def test_instruction_on_in_flight_row_is_409(api: Api) -> None:
    auth_id = api.post("/v1/authorizations", record()).json()["authorization"]["id"]
    with transaction(api.engine) as session:  # a worker has sent the capture
        row = store.get(session, auth_id)
        store.guarded_update(session, row, [State.AUTHORIZED], {"state": State.CAPTURING.value})
    before = _counts(api)
    url = f"/v1/authorizations/{auth_id}"
    for response in (api.post(url + "/capture-instruction", {"when": "now"}),
                     api.post(url + "/cancel", None)):
        assert response.status_code == 409, response.text
        assert list(_errors(response)) == ["state"]
        assert "capturing" in response.text
    # The row is untouched; each refusal is audited with its reason (a race between an
    # instruction and an action in flight must leave a trail of why one lost).
    authorizations, audit_rows = _counts(api)
    assert (authorizations, audit_rows) == (before[0], before[1] + 2)
    trail = api.get(url + "/audit").json()
    refusals = [e for e in trail["items"]
                if e["event"].endswith(":refuse")]
    assert [e["event"] for e in refusals] == ["instruct:capture_now:refuse",
                                              "instruct:cancel_now:refuse"]


def test_plan(api: Api) -> None:
    api.post("/v1/authorizations", record(
        "soon", authorized_at="2026-11-14T12:00:00Z"))  # Clearpay deadline 2026-11-27 12:00Z
    plan = api.get("/v1/plan", horizon="7d")
    assert plan.status_code == 200
    body = plan.json()
    assert [e["what"] for e in body["entries"]] == ["alert", "capture", "critical", "deadline"]
    assert body["at_risk"] == [{"provider": "clearpay", "account": "default", "currency": "AUD",
                                "amount": 10_000}]
    assert api.get("/v1/plan").json()["horizon"] == "72h"
    assert api.get("/v1/plan", horizon="1h").json()["entries"] == []
    for bad in ("soon", "", "400d", "9" * 40 + "w"):
        response = api.get("/v1/plan", horizon=bad)
        assert response.status_code == 422, (bad, response.text)
        assert list(_errors(response)) == ["horizon"]


def test_openapi_document_and_docs(api: Api) -> None:
    doc = api.client.get("/v1/openapi.json")
    assert doc.status_code == 200
    paths = doc.json()["paths"]
    assert set(paths) == {
        "/v1/authorizations", "/v1/authorizations/{authorization_id}",
        "/v1/authorizations/{authorization_id}/capture-instruction",
        "/v1/authorizations/{authorization_id}/cancel",
        "/v1/authorizations/{authorization_id}/audit", "/v1/plan",
    }
    assert api.client.get("/v1/docs").status_code == 404  # off unless [api] docs = true
    unknown = api.client.get("/v2/nothing")
    assert unknown.status_code == 404
    assert "errors" in unknown.json()


def test_instants_are_utc(api: Api) -> None:
    body = api.post("/v1/authorizations", record(
        authorized_at="2026-11-20T20:00:00+09:00")).json()
    assert body["authorization"]["authorized_at"] == "2026-11-20T11:00:00+00:00"
    stored = dt.datetime.fromisoformat(body["authorization"]["deadline"])
    assert stored.utcoffset() == dt.timedelta(0)
