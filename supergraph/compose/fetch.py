"""Ask a running subgraph for its SDL, the way a router does: `{ _service { sdl } }`."""

from __future__ import annotations

import httpx

SERVICE_SDL_QUERY = "{ _service { sdl } }"


class FetchError(RuntimeError):
    pass


def sdl_from_result(url: str, body: object) -> str:
    """The SDL in a GraphQL response body, or `FetchError` saying what came back instead."""
    data = body.get("data") if isinstance(body, dict) else None
    service = data.get("_service") if isinstance(data, dict) else None
    sdl = service.get("sdl") if isinstance(service, dict) else None
    if not isinstance(sdl, str):
        errors = body.get("errors") if isinstance(body, dict) else None
        raise FetchError(f"{url} did not return its SDL: {errors or body!r}")
    return sdl


def fetch_sdl(url: str, *, timeout: float = 10.0) -> str:
    try:
        response = httpx.post(url, json={"query": SERVICE_SDL_QUERY}, timeout=timeout)
        response.raise_for_status()
    except httpx.HTTPError as error:
        raise FetchError(f"cannot fetch the SDL of {url}: {error}") from error
    return sdl_from_result(url, response.json())
