"""An engagement test stack: real auth and engagement processes on one bus, accounts made
through auth, and video's events published on the bus the way the video service will."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from subgraphs.kernel.bus import open_bus
from tests.support.processes import Environment, GraphQLClient, ServiceProcess, error_codes

T = TypeVar("T")

REGISTER = """
mutation R($input: RegisterInput!) { register(input: $input) { accessToken user { id handle } } }
"""
ANALYTICS = "query A($v: ID!) { videoAnalytics(videoId: $v) { views retention } }"


@dataclass
class Account:
    id: str
    token: str
    handle: str


@contextmanager
def running_services(
    env: Environment, engagement_env: dict[str, str] | None = None, replicas: int = 1
) -> Iterator[tuple[ServiceProcess, list[ServiceProcess]]]:
    """Auth and `replicas` engagement processes verifying tokens against it.

    Auth and the first replica start side by side (engagement fetches keys when a token
    first arrives); further replicas start once the first has migrated the database.
    """
    auth = ServiceProcess("auth", env).launch()
    jwks = {"REELGRAPH_JWKS_URL": f"{auth.url}/.well-known/jwks.json"}
    engagements: list[ServiceProcess] = []
    try:
        for n in range(replicas):
            replica = ServiceProcess("engagement", env, env={**jwks, **(engagement_env or {})})
            engagements.append(replica)
            replica.launch()
            if n == 0:
                auth.wait_healthy()
            replica.wait_healthy()
        yield auth, engagements
    finally:
        codes = [(p, p.stop()) for p in engagements]
        auth_code = auth.stop()
    for process, code in codes:
        assert code in (0, -9), process.log()
    assert auth_code == 0, auth.log()


async def eventually(
    attempt: Callable[[], Awaitable[T]],
    done: Callable[[T], bool],
    *,
    timeout: float = 30.0,
    what: str = "condition",
) -> T:
    """Retry `attempt` until `done` says so: events reach engagement a moment later."""
    deadline = time.monotonic() + timeout
    while True:
        result = await attempt()
        if done(result):
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached within {timeout}s; last: {result!r}")
        await asyncio.sleep(0.05)


_admins: dict[str, Account] = {}


class Stack:
    """Clients for one running stack, and the helpers tests build their world with."""

    def __init__(self, env: Environment, auth_url: str, engagement_url: str) -> None:
        self.env = env
        self.auth = GraphQLClient(f"{auth_url}/graphql")
        self.gql = GraphQLClient(f"{engagement_url}/graphql")

    async def close(self) -> None:
        await self.auth.close()
        await self.gql.close()

    async def execute(
        self, query: str, variables: dict[str, Any] | None = None, *, as_: Account | None = None
    ) -> dict[str, Any]:
        return await self.gql.execute(query, variables, token=as_.token if as_ else None)

    async def ok(
        self, query: str, variables: dict[str, Any] | None = None, *, as_: Account | None = None
    ) -> dict[str, Any]:
        body = await self.execute(query, variables, as_=as_)
        assert "errors" not in body, body
        data: dict[str, Any] = body["data"]
        return data

    async def fails(
        self,
        query: str,
        variables: dict[str, Any] | None = None,
        *,
        as_: Account | None = None,
    ) -> str:
        """The one error code the operation answers with."""
        body = await self.execute(query, variables, as_=as_)
        codes = error_codes(body)
        assert len(codes) == 1, body
        assert "Traceback" not in str(body)
        return codes[0]

    # --- the world ----------------------------------------------------------------------

    async def admin(self) -> Account:
        """An admin account, made once per stack (promoting one takes a CLI run)."""
        key = str(self.env.data_dir)
        if key not in _admins:
            _admins[key] = await self.account("ADMIN")
        return _admins[key]

    async def account(self, role: str | None = None) -> Account:
        tag = uuid.uuid4().hex[:10]
        body = await self.auth.execute(
            REGISTER,
            {
                "input": {
                    "email": f"e_{tag}@example.com",
                    "password": "correct horse battery",
                    "handle": f"e_{tag}",
                    "displayName": f"Viewer {tag}",
                }
            },
        )
        assert "errors" not in body, body
        result = body["data"]["register"]
        account = Account(result["user"]["id"], result["accessToken"], result["user"]["handle"])
        if role is not None:
            account = await self.promote(account, role)
        return account

    async def promote(self, account: Account, role: str) -> Account:
        """Give an account a role the way an operator does, and sign it in again."""
        from tests.support.processes import run_cli

        result = await asyncio.to_thread(
            run_cli, self.env, "auth", "set-role", account.handle, role
        )
        assert result.returncode == 0, result.stderr
        body = await self.auth.execute(
            'mutation L($e: String!) { login(email: $e, password: "correct horse battery") '
            "{ accessToken } }",
            {"e": f"e_{account.handle[2:]}@example.com"},
        )
        assert "errors" not in body, body
        promoted = Account(account.id, body["data"]["login"]["accessToken"], account.handle)
        if role == "ADMIN":
            # Engagement trusts an admin token once auth's event says the role changed too.
            await eventually(
                lambda: self.execute("{ platformStats { users } }", as_=promoted),
                lambda body: "errors" not in body,
                what="admin role known to engagement",
            )
        return promoted

    async def publish(self, topic: str, payload: dict[str, Any]) -> None:
        """Publish an event as its owning service would (video's, until video lands)."""
        bus = open_bus(self.env.settings())
        try:
            await bus.publish(topic, payload)
        finally:
            await bus.close()

    async def video(
        self,
        owner: Account,
        *,
        visibility: str = "PUBLIC",
        ready: bool = True,
        duration: float = 120.0,
        title: str = "A video",
    ) -> str:
        """A video as the video service announces it, once engagement has taken it in."""
        video_id = str(uuid.uuid4())
        base = {"videoId": video_id, "ownerId": owner.id, "title": title, "visibility": visibility}
        await self.publish(
            "video.created",
            {**base, "status": "PROCESSING", "createdAt": datetime.now(UTC).isoformat()},
        )
        if ready:
            await self.publish(
                "video.ready",
                {
                    **base,
                    "durationSeconds": duration,
                    "publishedAt": datetime.now(UTC).isoformat(),
                },
            )
        # The owner sees their video's analytics once engagement knows it; the retention
        # points exist once it knows the duration (from video.ready).
        await eventually(
            lambda: self.execute(ANALYTICS, {"v": video_id}, as_=owner),
            lambda body: (
                "errors" not in body
                and (not ready or len(body["data"]["videoAnalytics"]["retention"]) == 20)
            ),
            what=f"video {video_id} known to engagement",
        )
        return video_id

    async def stream(self, owner: Account, *, title: str = "Live now") -> str:
        """A live stream (a chat room) as the video service announces it."""
        stream_id = str(uuid.uuid4())
        await self.publish(
            "video.stream.created", {"streamId": stream_id, "ownerId": owner.id, "title": title}
        )
        await eventually(
            lambda: self.execute(
                "query C($s: ID!) { chatMessages(streamId: $s, last: 1) { id } }", {"s": stream_id}
            ),
            lambda body: "errors" not in body,
            what=f"stream {stream_id} known to engagement",
        )
        return stream_id

    async def known(self, account: Account, by: Account) -> None:
        """Wait until engagement has taken in `account`'s registration (follow needs it)."""
        await eventually(
            lambda: self.execute(
                "mutation F($u: ID!) { follow(userId: $u) { id } }", {"u": account.id}, as_=by
            ),
            lambda body: "errors" not in body,
            what=f"user {account.id} known to engagement",
        )
        await self.ok(
            "mutation U($u: ID!) { unfollow(userId: $u) { id } }", {"u": account.id}, as_=by
        )
