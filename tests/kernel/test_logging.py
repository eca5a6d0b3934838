"""Structured logs: one JSON object per line, the request id, and no secrets."""

from __future__ import annotations

import io
import logging
import secrets
import time
import uuid
from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from subgraphs.kernel.logging import REDACTED, JsonFormatter, redact, request_id_var

JWT = (
    "eyJhbGciOiJFUzI1NiIsInR5cCI6ImF0K2p3dCJ9"
    ".eyJzdWIiOiJ1MSIsInJvbGUiOiJBRE1JTiJ9"
    ".MEUCIQDf3kq9Zl_x-7Yw"
)


class Captured:
    """A logger whose records go through `JsonFormatter` into a buffer."""

    def __init__(self, logger: logging.Logger, stream: io.StringIO) -> None:
        self.logger = logger
        self.stream = stream

    def lines(self) -> list[str]:
        return self.stream.getvalue().splitlines()

    def entries(self) -> list[dict[str, Any]]:
        return [orjson.loads(line) for line in self.lines()]


@pytest.fixture
def captured() -> Iterator[Captured]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter("auth"))
    logger = logging.getLogger(f"reelgraph.test.{uuid.uuid4().hex}")
    logger.handlers[:] = [handler]
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    yield Captured(logger, stream)
    logger.handlers.clear()


def test_each_record_is_one_json_object_per_line_with_ts_level_service_and_msg(
    captured: Captured,
) -> None:
    before = time.time()
    captured.logger.info("user %s signed in", "u1")
    captured.logger.warning("two\nlines in one message")

    lines = captured.lines()
    assert len(lines) == 2
    first, second = (orjson.loads(line) for line in lines)
    assert first["msg"] == "user u1 signed in"
    assert first["level"] == "info"
    assert first["service"] == "auth"
    assert first["logger"] == captured.logger.name
    assert before - 1 <= first["ts"] <= time.time() + 1
    assert second["level"] == "warning"
    assert second["msg"] == "two\nlines in one message"


def test_request_id_from_the_context_variable_is_included(captured: Captured) -> None:
    captured.logger.info("outside a request")
    token = request_id_var.set("req-42")
    try:
        captured.logger.info("inside a request")
    finally:
        request_id_var.reset(token)

    outside, inside = captured.entries()
    assert "request_id" not in outside
    assert inside["request_id"] == "req-42"


def test_extra_fields_pass_through_and_secret_extras_are_masked(captured: Captured) -> None:
    captured.logger.info(
        "request",
        extra={
            "method": "POST",
            "status": 200,
            "duration_ms": 1.5,
            "password": "hunter2",
            "refresh_token": "opaque-refresh-value",
            "headers": {"Authorization": f"Bearer {JWT}", "accept": "application/json"},
        },
    )

    (entry,) = captured.entries()
    assert (entry["method"], entry["status"], entry["duration_ms"]) == ("POST", 200, 1.5)
    assert entry["password"] == REDACTED
    assert entry["refresh_token"] == REDACTED
    assert entry["headers"] == {"Authorization": REDACTED, "accept": "application/json"}
    raw = captured.stream.getvalue()
    for secret in ("hunter2", "opaque-refresh-value", JWT):
        assert secret not in raw


def test_tokens_in_the_message_text_are_masked(captured: Captured) -> None:
    captured.logger.warning("rejected header Bearer abc.def-ghi from %s; token was %s", "ip", JWT)

    (entry,) = captured.entries()
    assert "abc.def-ghi" not in entry["msg"]
    assert JWT not in entry["msg"]
    assert entry["msg"] == f"rejected header Bearer {REDACTED} from ip; token was {REDACTED}"


def test_an_exception_traceback_is_written_to_exc(captured: Captured) -> None:
    def fail() -> None:
        raise ValueError("disk on fire")

    try:
        fail()
    except ValueError:
        captured.logger.exception("relay failed")

    lines = captured.lines()
    assert len(lines) == 1  # the multi-line traceback stays inside the one JSON line
    entry = orjson.loads(lines[0])
    assert entry["level"] == "error"
    assert entry["msg"] == "relay failed"
    assert entry["exc"].startswith("Traceback (most recent call last):")
    assert "in fail" in entry["exc"]
    assert "ValueError: disk on fire" in entry["exc"]


def test_tokens_inside_an_exception_text_are_masked(captured: Captured) -> None:
    try:
        raise RuntimeError(f"could not verify {JWT}")
    except RuntimeError:
        captured.logger.exception("verify failed")

    (entry,) = captured.entries()
    assert "RuntimeError: could not verify" in entry["exc"]
    assert JWT not in entry["exc"]


@pytest.mark.parametrize(
    "key",
    [
        "password",
        "new_password",
        "Password",
        "token",
        "access_token",
        "refresh_token",
        "authorization",
        "Authorization",
        "secret",
        "client_secret",
        "s3_secret_access_key",
        "api_key",
        "cookie",
        "private_key",
        "jwt",
    ],
)
def test_redact_masks_secret_looking_keys(key: str) -> None:
    assert redact({key: "value-1", "user": "u1"}) == {key: REDACTED, "user": "u1"}


def test_redact_masks_secrets_in_nested_dicts_and_lists() -> None:
    value = {
        "input": {"email": "a@example.com", "password": "hunter2"},
        "sessions": [{"id": "s1", "refresh_token": "r1"}, {"id": "s2", "token": "r2"}],
        "tuple": ({"secret": "x"}, "plain"),
        "depth": {"a": {"b": [{"c": {"authorization": "Basic Zm9vOmJhcg=="}}]}},
    }

    assert redact(value) == {
        "input": {"email": "a@example.com", "password": REDACTED},
        "sessions": [{"id": "s1", "refresh_token": REDACTED}, {"id": "s2", "token": REDACTED}],
        "tuple": [{"secret": REDACTED}, "plain"],
        "depth": {"a": {"b": [{"c": {"authorization": REDACTED}}]}},
    }


def test_redact_masks_a_whole_secret_valued_subtree() -> None:
    assert redact({"credentials": {"user": "u", "pass": "p"}}) == {"credentials": REDACTED}


def test_redact_masks_bearer_tokens_and_jwts_in_free_text_but_keeps_other_text() -> None:
    text = f"Authorization: Bearer opaque_T0ken~+/= for user u1; forwarded {JWT} done"

    masked = redact(text)

    assert masked == (f"Authorization: Bearer {REDACTED} for user u1; forwarded {REDACTED} done")
    assert redact(["ok", f"Bearer {JWT}"]) == ["ok", f"Bearer {REDACTED}"]


def test_redact_masks_a_lowercase_bearer_scheme_too() -> None:
    # The auth scheme is case-insensitive (RFC 7235) and `bearer_token` accepts 'bearer x',
    # so a client's 'bearer <opaque token>' (say, a refresh token sent by mistake) must not
    # reach the logs either.
    opaque = secrets.token_urlsafe(32)

    assert redact(f"rejected header: bearer {opaque}") == f"rejected header: bearer {REDACTED}"
    assert redact(f"BEARER {opaque}") == f"BEARER {REDACTED}"


def test_redact_leaves_non_secret_values_untouched() -> None:
    value = {"count": 3, "ok": True, "none": None, "ratio": 0.5, "path": "/graphql"}

    assert redact(value) == value
