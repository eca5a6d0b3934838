"""GraphQL over SSE for clients that cannot use WebSockets: one POST (or GET) per operation,
answered as an event stream."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Mapping
from typing import Any

from starlette.responses import StreamingResponse

from supergraph.pipeline import RequestError, Router
from supergraph.subscriptions.protocols import sse
from supergraph.subscriptions.upstream import UpstreamError

log = logging.getLogger("reelgraph.subscriptions")


def stream_response(
    router: Router,
    query: str,
    variables: Mapping[str, Any] | None,
    operation_name: str | None,
    *,
    headers: Mapping[str, str],
    keep_alive: float = 15.0,
) -> StreamingResponse:
    async def events() -> AsyncIterator[bytes]:
        queue: asyncio.Queue[bytes | None] = asyncio.Queue()

        async def produce() -> None:
            try:
                async for result in router.subscribe(
                    query, variables, operation_name, headers=headers
                ):
                    await queue.put(sse.next_event(result))
            except RequestError as error:
                await queue.put(sse.next_event({"errors": error.errors}))
            except UpstreamError as error:
                await queue.put(
                    sse.next_event(
                        {"errors": [{"message": error.message, "extensions": {"code": error.code}}]}
                    )
                )
            except Exception:
                log.exception("subscription failed")
                await queue.put(
                    sse.next_event(
                        {
                            "errors": [
                                {
                                    "message": "Internal server error.",
                                    "extensions": {"code": "INTERNAL"},
                                }
                            ]
                        }
                    )
                )
            finally:
                await queue.put(None)

        producer = asyncio.create_task(produce())
        try:
            while True:
                try:
                    item = await asyncio.wait_for(queue.get(), keep_alive)
                except TimeoutError:
                    yield sse.keep_alive()
                    continue
                if item is None:
                    yield sse.complete_event()
                    return
                yield item
        finally:
            # The client went away (or the stream ended): close the upstream subscription.
            producer.cancel()
            await asyncio.gather(producer, return_exceptions=True)

    return StreamingResponse(
        events(),
        media_type=sse.MEDIA_TYPE,
        headers={"cache-control": "no-cache", "x-accel-buffering": "no"},
    )
