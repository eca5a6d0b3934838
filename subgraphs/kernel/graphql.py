"""Strawberry glue shared by the subgraphs: the request context, the viewer, and the one place
where domain errors become GraphQL errors with a stable `extensions.code`."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

import strawberry
from graphql import GraphQLError
from starlette.requests import HTTPConnection
from strawberry.extensions import SchemaExtension
from strawberry.schema.config import StrawberryConfig
from strawberry.types import ExecutionContext

from subgraphs.kernel.errors import DomainError, Forbidden, Unauthenticated
from subgraphs.kernel.proxies import TrustedProxies, client_ip
from subgraphs.kernel.tokens import AccessClaims, TokenVerifier, bearer_token
from subgraphs.kernel.types import SCALARS

log = logging.getLogger("reelgraph.graphql")

INTERNAL_MESSAGE = "Internal server error."
C = TypeVar("C", bound="RequestContext")


@dataclass
class RequestContext:
    """Per-request state every resolver sees as `info.context`."""

    connection: HTTPConnection
    client_ip: str
    _viewer: AccessClaims | None = None
    _auth_error: Unauthenticated | None = None
    loaders: dict[str, Any] = field(default_factory=dict)

    @property
    def viewer(self) -> AccessClaims | None:
        """The verified bearer, None when anonymous. A bad token fails every use of it."""
        if self._auth_error is not None:
            raise self._auth_error
        return self._viewer

    def require_viewer(self) -> AccessClaims:
        viewer = self.viewer
        if viewer is None:
            raise Unauthenticated("You must be signed in.")
        return viewer

    def require_role(self, *roles: str) -> AccessClaims:
        viewer = self.require_viewer()
        if viewer.role not in roles:
            raise Forbidden("You are not allowed to do this.")
        return viewer


async def build_context(
    cls: type[C],
    connection: HTTPConnection,
    verifier: TokenVerifier,
    trusted_proxies: TrustedProxies,
    **fields: Any,
) -> C:
    context = cls(connection=connection, client_ip=client_ip(connection, trusted_proxies), **fields)
    try:
        token = bearer_token(connection.headers.get("authorization"))
        if token is not None:
            context._viewer = await verifier.verify(token)
    except Unauthenticated as error:
        context._auth_error = error
    return context


_VARIABLE_ERROR = re.compile(r"Variable '\$")


def _is_unexpected(error: GraphQLError) -> bool:
    """Raised by our code but not a DomainError: a bug, whatever stage it surfaced at (a
    subscription's generator fails outside any field path)."""
    original = error.original_error
    if isinstance(original, DomainError):
        return False
    if error.path is not None:
        return True
    # Before execution only variable coercion carries the scalar's own exception.
    return original is not None and not _VARIABLE_ERROR.match(error.message)


def to_client_error(error: GraphQLError) -> GraphQLError:
    """Give every error a code; replace unexpected ones with a message that reveals nothing."""
    original = error.original_error
    if original is None and "code" in (error.extensions or {}):
        # Already a client error (streamed results pass through here twice).
        return error
    if isinstance(original, DomainError):
        extensions = {"code": original.code, **original.extensions}
        message = original.message
    elif not _is_unexpected(error):
        # Raised before execution: syntax, validation, or variable coercion.
        message = error.message
        if message.startswith("Syntax Error"):
            code = "GRAPHQL_PARSE_FAILED"
        elif _VARIABLE_ERROR.match(message):
            code = "BAD_USER_INPUT"
        else:
            code = "GRAPHQL_VALIDATION_FAILED"
        extensions = {**(error.extensions or {}), "code": code}
    else:
        message = INTERNAL_MESSAGE
        extensions = {"code": "INTERNAL"}
    return GraphQLError(
        message,
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
        extensions=extensions,
    )


class ErrorCodes(SchemaExtension):
    """Maps every error in a result to a client-safe error with `extensions.code`: the one
    result of an operation, or each result a subscription streams."""

    _streamed: Any = None

    def on_operation(self) -> Iterator[None]:
        yield
        result = self.execution_context.result
        errors = getattr(result, "errors", None)
        if result is not None and errors and result is not self._streamed:
            result.errors = [to_client_error(e) for e in errors]

    def on_stream_result(self, result: Any) -> Iterator[None]:
        errors = getattr(result, "errors", None)
        if errors:
            result.errors = [to_client_error(e) for e in errors]
        self._streamed = result
        yield


class Schema(strawberry.federation.Schema):
    """A federation subgraph schema whose unexpected errors are logged with their traceback,
    while expected domain errors are not logged at all."""

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        for error in errors:
            if _is_unexpected(error):
                original = error.original_error
                log.error(
                    "unexpected error in resolver",
                    exc_info=(type(original), original, original.__traceback__)
                    if original
                    else None,
                    extra={"path": error.path},
                )


def subgraph_schema(
    *,
    query: type,
    mutation: type | None = None,
    subscription: type | None = None,
    types: Iterable[type] = (),
) -> Schema:
    return Schema(
        query=query,
        mutation=mutation,
        subscription=subscription,
        types=list(types),
        extensions=[ErrorCodes],
        federation_version="2.9",
        config=StrawberryConfig(scalar_map=SCALARS),
    )
