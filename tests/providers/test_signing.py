"""Flitt signatures: the documented example and independently computed vectors."""

from __future__ import annotations

import hashlib

from watchdog.providers.flitt.signing import (
    flitt_signature,
    flitt_signature_string,
    verify_flitt_signature,
)
from watchdog.secrets import Secret

DOC_PARAMS = {"merchant_id": 1549901, "order_id": "TestOrder2", "order_desc": "Test payment",
              "currency": "GEL", "amount": 1000, "server_callback_url": "http://myshop/callback/"}
DOC_STRING = "test|1000|GEL|1549901|Test payment|TestOrder2|http://myshop/callback/"


def _sha1(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()  # noqa: S324 (Flitt wire format)


def test_docs_worked_example() -> None:
    assert flitt_signature_string(DOC_PARAMS, "test") == DOC_STRING
    assert flitt_signature(DOC_PARAMS, "test") == _sha1(DOC_STRING)
    assert flitt_signature(DOC_PARAMS, Secret("test")) == _sha1(DOC_STRING)


def test_empty_and_absent_values_are_skipped_zero_is_kept() -> None:
    params = {"b": "", "a": 0, "c": None, "d": "x", "signature": "old",
              "response_signature_string": "**|x"}
    assert flitt_signature(params, "s3") == _sha1("s3|0|x")


def test_order_is_by_parameter_name_not_insertion() -> None:
    params = {"zeta": "1", "alpha": "2", "Mid": "3"}
    assert flitt_signature(params, "k") == _sha1("k|3|2|1")  # byte order: upper case first


def test_lowercase_hex() -> None:
    sig = flitt_signature({"a": "b"}, "k")
    assert sig == sig.lower()
    assert len(sig) == 40


def test_response_signature_verification() -> None:
    response = {"order_id": "o-1", "merchant_id": 1549901, "capture_status": "captured",
                "response_status": "success", "amount": 0, "empty": "",
                "response_signature_string": "**********|0|captured|1549901|o-1|success"}
    response["signature"] = _sha1("test|0|captured|1549901|o-1|success")
    assert verify_flitt_signature(response, "test")
    assert verify_flitt_signature(response, Secret("test"))
    assert not verify_flitt_signature(response, "other")
    assert not verify_flitt_signature({**response, "capture_status": "hold"}, "test")
    assert not verify_flitt_signature({k: v for k, v in response.items() if k != "signature"},
                                      "test")
