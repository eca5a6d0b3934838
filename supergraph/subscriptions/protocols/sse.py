"""GraphQL over Server-Sent Events, the graphql-sse protocol's distinct connections mode:
one HTTP request per operation, answered with a stream of `next` events and one `complete`."""

from __future__ import annotations

from typing import Any

import orjson

MEDIA_TYPE = "text/event-stream"


def event(name: str, data: Any | None = None) -> bytes:
    body = orjson.dumps(data).decode() if data is not None else ""
    return f"event: {name}\ndata: {body}\n\n".encode()


def next_event(payload: dict[str, Any]) -> bytes:
    return event("next", payload)


def complete_event() -> bytes:
    return event("complete")


def keep_alive() -> bytes:
    # A comment line: ignored by clients, keeps proxies from timing the stream out.
    return b":\n\n"
