"""The one error type edge features raise: it becomes a GraphQL error response with a stable
`extensions.code`, an HTTP status and any headers (e.g. `Retry-After`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class EdgeError(Exception):
    def __init__(
        self,
        code: str,
        message: str,
        *,
        status: int = 400,
        headers: Mapping[str, str] | None = None,
        extensions: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        self.headers = dict(headers or {})
        self.extensions = dict(extensions or {})

    def body(self) -> dict[str, Any]:
        return {
            "errors": [
                {"message": self.message, "extensions": {"code": self.code, **self.extensions}}
            ]
        }
