"""Errors as clients see them: a stable `extensions.code` for every error, nothing internal
revealed, partial data kept; unexpected failures logged server-side with their traceback."""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

import httpx
import pytest
import strawberry
from starlette.requests import HTTPConnection

from subgraphs.kernel.errors import (
    BadUserInput,
    Conflict,
    Forbidden,
    Internal,
    NotFound,
    RateLimited,
    Unauthenticated,
)
from subgraphs.kernel.graphql import INTERNAL_MESSAGE, subgraph_schema
from subgraphs.kernel.http import GraphQLEndpoint, service_app

SECRET = "secret detail /etc/passwd"


@strawberry.type
class Video:
    title: str

    @strawberry.field
    def owner(self) -> str:
        raise Forbidden("Only the owner may see this.")

    @strawberry.field
    async def storage_path(self) -> str | None:
        raise RuntimeError(SECRET)


@strawberry.type
class Query:
    @strawberry.field
    def fine(self) -> str:
        return "fine"

    @strawberry.field
    def unauthenticated(self) -> str | None:
        raise Unauthenticated("Access token has expired.", reason="TOKEN_EXPIRED")

    @strawberry.field
    def forbidden(self) -> str | None:
        raise Forbidden("You are not allowed to do this.")

    @strawberry.field
    def not_found(self) -> str | None:
        raise NotFound("No such video.")

    @strawberry.field
    def bad_user_input(self) -> str | None:
        raise BadUserInput("Title is too long.", field="title")

    @strawberry.field
    def conflict(self) -> str | None:
        raise Conflict("That handle is taken.")

    @strawberry.field
    def rate_limited(self) -> str | None:
        raise RateLimited("Too many attempts.", retry_after=42)

    @strawberry.field
    def internal(self) -> str | None:
        raise Internal("Transcoding is unavailable.")

    @strawberry.field
    def unexpected(self) -> str | None:
        raise RuntimeError(SECRET)

    @strawberry.field
    async def unexpected_async(self) -> str | None:
        raise KeyError(SECRET)

    @strawberry.field
    def video(self) -> Video | None:
        return Video(title="Cats")

    @strawberry.field
    def double(self, n: int) -> int:
        return 2 * n


schema = subgraph_schema(query=Query)


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async def context(connection: HTTPConnection) -> dict[str, Any]:
        return {"connection": connection}

    app = service_app(graphql=GraphQLEndpoint(schema, context))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://subgraph.test"
    ) as client:
        yield client


async def post(
    http: httpx.AsyncClient, query: str, variables: dict[str, Any] | None = None
) -> tuple[httpx.Response, dict[str, Any]]:
    response = await http.post("/graphql", json={"query": query, "variables": variables or {}})
    body: dict[str, Any] = response.json()
    return response, body


def by_path(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {".".join(map(str, error["path"])): error for error in body["errors"]}


@pytest.mark.parametrize(
    ("field", "message", "extensions"),
    [
        (
            "unauthenticated",
            "Access token has expired.",
            {"code": "UNAUTHENTICATED", "reason": "TOKEN_EXPIRED"},
        ),
        ("forbidden", "You are not allowed to do this.", {"code": "FORBIDDEN"}),
        ("notFound", "No such video.", {"code": "NOT_FOUND"}),
        ("badUserInput", "Title is too long.", {"code": "BAD_USER_INPUT", "field": "title"}),
        ("conflict", "That handle is taken.", {"code": "CONFLICT"}),
        ("rateLimited", "Too many attempts.", {"code": "RATE_LIMITED", "retryAfter": 42}),
        ("internal", "Transcoding is unavailable.", {"code": "INTERNAL"}),
    ],
)
async def test_each_domain_error_maps_to_its_code_and_keeps_its_message(
    http: httpx.AsyncClient, field: str, message: str, extensions: dict[str, Any]
) -> None:
    response, body = await post(http, f"{{ {field} }}")

    assert response.status_code == 200
    assert body["data"] == {field: None}
    (error,) = body["errors"]
    assert error["message"] == message
    assert error["extensions"] == extensions
    assert error["path"] == [field]


async def test_an_unexpected_error_becomes_internal_and_reveals_nothing(
    http: httpx.AsyncClient,
) -> None:
    response, body = await post(http, "{ unexpected unexpectedAsync video { storagePath } }")

    errors = by_path(body)
    assert set(errors) == {"unexpected", "unexpectedAsync", "video.storagePath"}
    for error in errors.values():
        assert error["message"] == INTERNAL_MESSAGE == "Internal server error."
        assert error["extensions"] == {"code": "INTERNAL"}
    assert SECRET not in response.text
    assert "/etc/passwd" not in response.text
    assert "RuntimeError" not in response.text
    assert "KeyError" not in response.text
    assert "Traceback" not in response.text


async def test_partial_data_is_kept_for_the_fields_that_worked(http: httpx.AsyncClient) -> None:
    _, body = await post(
        http, "{ fine notFound unexpected rateLimited video { title storagePath } }"
    )

    assert body["data"] == {
        "fine": "fine",
        "notFound": None,
        "unexpected": None,
        "rateLimited": None,
        "video": {"title": "Cats", "storagePath": None},
    }
    assert {path: e["extensions"]["code"] for path, e in by_path(body).items()} == {
        "notFound": "NOT_FOUND",
        "unexpected": "INTERNAL",
        "rateLimited": "RATE_LIMITED",
        "video.storagePath": "INTERNAL",
    }


async def test_a_domain_error_on_a_non_null_field_nulls_its_parent_and_keeps_its_code(
    http: httpx.AsyncClient,
) -> None:
    _, body = await post(http, "{ fine video { title owner } }")

    assert body["data"] == {"fine": "fine", "video": None}
    (error,) = body["errors"]
    assert error["path"] == ["video", "owner"]
    assert error["extensions"] == {"code": "FORBIDDEN"}


async def test_a_syntax_error_is_graphql_parse_failed(http: httpx.AsyncClient) -> None:
    _, body = await post(http, "{ fine ")

    assert body.get("data") is None
    assert [e["extensions"]["code"] for e in body["errors"]] == ["GRAPHQL_PARSE_FAILED"]
    assert body["errors"][0]["message"].startswith("Syntax Error")


async def test_an_unknown_field_is_graphql_validation_failed(http: httpx.AsyncClient) -> None:
    _, body = await post(http, "{ fine noSuchField }")

    assert body.get("data") is None
    (error,) = body["errors"]
    assert error["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    assert "noSuchField" in error["message"]


@pytest.mark.parametrize(
    "variables",
    [{"n": "not a number"}, {}, {"n": None}, {"n": 2**40}],
    ids=["wrong-type", "missing", "null", "out-of-range"],
)
async def test_a_bad_variable_value_is_bad_user_input(
    http: httpx.AsyncClient, variables: dict[str, Any]
) -> None:
    _, body = await post(http, "query Double($n: Int!) { double(n: $n) }", variables)

    assert body.get("data") is None
    (error,) = body["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert "$n" in error["message"]


async def test_a_good_variable_value_executes(http: httpx.AsyncClient) -> None:
    _, body = await post(http, "query Double($n: Int!) { double(n: $n) }", {"n": 21})

    assert body == {"data": {"double": 42}}


async def test_an_unexpected_error_is_logged_server_side_with_its_traceback(
    http: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG):
        await post(http, "{ fine unexpected }")

    problems = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(problems) == 1
    (record,) = problems
    assert record.name == "reelgraph.graphql"
    assert record.levelno == logging.ERROR
    assert record.exc_info is not None
    assert record.exc_info[0] is RuntimeError
    assert str(record.exc_info[1]) == SECRET
    assert getattr(record, "path", None) == ["unexpected"]
    # The traceback points at the resolver that raised.
    assert "def unexpected" in caplog.text or "in unexpected" in caplog.text


async def test_domain_errors_are_not_logged(
    http: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG):
        _, body = await post(
            http,
            "{ unauthenticated forbidden notFound badUserInput conflict rateLimited internal }",
        )

    assert len(body["errors"]) == 7
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []
    assert not [r for r in caplog.records if r.name.startswith(("reelgraph.graphql", "strawberry"))]


async def test_errors_are_mapped_when_executing_the_schema_directly() -> None:
    result = await schema.execute("{ fine conflict unexpected }")

    assert result.data == {"fine": "fine", "conflict": None, "unexpected": None}
    assert result.errors is not None
    assert sorted((e.message, (e.extensions or {})["code"]) for e in result.errors) == [
        ("Internal server error.", "INTERNAL"),
        ("That handle is taken.", "CONFLICT"),
    ]


@strawberry.type
class Subscription:
    @strawberry.subscription
    async def refused(self) -> AsyncGenerator[int, None]:
        raise Forbidden("Not your stream.", reason="PRIVATE")
        yield 0  # pragma: no cover - makes this an async generator

    @strawberry.subscription
    async def counts_then_fails(self) -> AsyncGenerator[int | None, None]:
        yield 1
        raise RuntimeError(SECRET)


async def test_errors_of_streamed_subscription_results_get_codes_too(
    caplog: pytest.LogCaptureFixture,
) -> None:
    streaming = subgraph_schema(query=Query, subscription=Subscription)

    refused = [r async for r in await streaming.subscribe("subscription { refused }")]
    assert [(e.message, e.extensions) for r in refused for e in r.errors or ()] == [
        ("Not your stream.", {"code": "FORBIDDEN", "reason": "PRIVATE"})
    ]
    results = [r async for r in await streaming.subscribe("subscription { countsThenFails }")]
    assert results[0].data == {"countsThenFails": 1}
    (error,) = results[1].errors or ()
    assert (error.message, error.extensions) == (INTERNAL_MESSAGE, {"code": "INTERNAL"})
    # The unexpected failure is logged here, with its traceback, and never sent.
    logged = [r for r in caplog.records if r.name == "reelgraph.graphql"]
    assert len(logged) == 1 and logged[0].exc_info is not None
    assert SECRET in str(logged[0].exc_info[1])
