"""The graphql-transport-ws protocol (the `graphql-ws` library's): message types, close
codes and message validation, shared by the client-facing server and the upstream client."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

SUBPROTOCOL = "graphql-transport-ws"

CONNECTION_INIT = "connection_init"
CONNECTION_ACK = "connection_ack"
PING = "ping"
PONG = "pong"
SUBSCRIBE = "subscribe"
NEXT = "next"
ERROR = "error"
COMPLETE = "complete"

# Close codes the protocol defines.
INTERNAL_ERROR = 4500
BAD_REQUEST = 4400
UNAUTHORIZED = 4401
FORBIDDEN = 4403
INIT_TIMEOUT = 4408
SUBSCRIBER_ALREADY_EXISTS = 4409
TOO_MANY_INIT_REQUESTS = 4429


class ProtocolError(Exception):
    """The peer broke the protocol; the connection closes with `code`."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


@dataclass(frozen=True)
class Subscribe:
    id: str
    query: str
    variables: dict[str, Any] | None
    operation_name: str | None
    extensions: dict[str, Any] | None


def parse_message(raw: Any) -> dict[str, Any]:
    if not isinstance(raw, dict) or not isinstance(raw.get("type"), str):
        raise ProtocolError(BAD_REQUEST, "Invalid message received")
    return raw


def parse_subscribe(message: dict[str, Any]) -> Subscribe:
    operation_id = message.get("id")
    payload = message.get("payload")
    if not isinstance(operation_id, str) or not operation_id or not isinstance(payload, dict):
        raise ProtocolError(BAD_REQUEST, "Invalid subscribe message")
    query = payload.get("query")
    variables = payload.get("variables")
    operation_name = payload.get("operationName")
    extensions = payload.get("extensions")
    if not isinstance(query, str) and not (
        isinstance(extensions, dict) and "persistedQuery" in extensions
    ):
        raise ProtocolError(BAD_REQUEST, "Subscribe payload needs a query")
    if variables is not None and not isinstance(variables, dict):
        raise ProtocolError(BAD_REQUEST, "Subscribe variables must be an object")
    if operation_name is not None and not isinstance(operation_name, str):
        raise ProtocolError(BAD_REQUEST, "Subscribe operationName must be a string")
    return Subscribe(
        operation_id, query if isinstance(query, str) else "", variables, operation_name, extensions
    )


def next_message(operation_id: str, payload: dict[str, Any]) -> dict[str, Any]:
    return {"type": NEXT, "id": operation_id, "payload": payload}


def error_message(operation_id: str, errors: list[dict[str, Any]]) -> dict[str, Any]:
    return {"type": ERROR, "id": operation_id, "payload": errors}


def complete_message(operation_id: str) -> dict[str, Any]:
    return {"type": COMPLETE, "id": operation_id}
