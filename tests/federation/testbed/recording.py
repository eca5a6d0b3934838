"""The per-process log of operations a test-bed subgraph executed (served at `/requests`)."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

from starlette.websockets import WebSocket
from strawberry.extensions import SchemaExtension

REQUEST_LOG: list[dict[str, Any]] = []


class RecordOperations(SchemaExtension):
    """Appends every operation the schema executes to `REQUEST_LOG`."""

    def on_operation(self) -> Iterator[None]:
        ctx = self.execution_context
        request = ctx.context.get("request") if isinstance(ctx.context, dict) else None
        REQUEST_LOG.append(
            {
                "query": ctx.query,
                # a copy: the _entities resolver pops __typename from the representations
                "variables": copy.deepcopy(ctx.variables),
                "operationName": ctx.operation_name,
                "transport": "ws" if isinstance(request, WebSocket) else "http",
            }
        )
        yield
