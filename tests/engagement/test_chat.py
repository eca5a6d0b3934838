"""Live chat on one engagement process: sending, the last 100 messages, moderation (delete,
ban, slow mode) by the stream's owner and admins, and the chat and presence subscriptions."""

from __future__ import annotations

import uuid
from contextlib import AsyncExitStack
from typing import Any

from tests.engagement.stack import Account, Stack, eventually
from tests.support.ws import Subscription, subscribe

SEND = """
mutation S($s: ID!, $b: String!) {
  sendChatMessage(streamId: $s, body: $b) { id body createdAt author { id } stream { id } }
}
"""
HISTORY = (
    "query H($s: ID!, $n: Int!) { chatMessages(streamId: $s, last: $n) { id body author { id } } }"
)
DELETE = "mutation D($id: ID!) { deleteChatMessage(id: $id) }"
BAN = """
mutation B($s: ID!, $u: ID!, $d: Int) {
  banFromChat(streamId: $s, userId: $u, durationSeconds: $d) { stream { id } user { id } until }
}
"""
UNBAN = "mutation U($s: ID!, $u: ID!) { unbanFromChat(streamId: $s, userId: $u) }"
SLOW = "mutation M($s: ID!, $n: Int!) { setSlowMode(streamId: $s, seconds: $n) { id chatSlowModeSeconds } }"
ADDED = "subscription A($s: ID!) { chatMessageAdded(streamId: $s) { id body author { id } stream { id } } }"
DELETED = "subscription D($s: ID!) { chatMessageDeleted(streamId: $s) { id stream { id } } }"
VIEWERS = "subscription V($s: ID!) { viewerCountChanged(streamId: $s) }"
STREAM = """
query L($s: ID!) {
  _entities(representations: [{__typename: "LiveStream", id: $s}]) { ... on LiveStream { viewerCount chatSlowModeSeconds } }
}
"""


async def send(stack: Stack, who: Account, stream: str, body: str) -> dict[str, Any]:
    message: dict[str, Any] = (await stack.ok(SEND, {"s": stream, "b": body}, as_=who))[
        "sendChatMessage"
    ]
    return message


async def history(stack: Stack, stream: str, last: int = 100) -> list[str]:
    rows = (await stack.ok(HISTORY, {"s": stream, "n": last}))["chatMessages"]
    return [row["body"] for row in rows]


async def first_event(stack: Stack, subscription: Subscription, probe: Any) -> dict[str, Any]:
    """The subscription has no ready signal: send probes until one arrives."""
    for _ in range(60):
        await probe()
        try:
            return await subscription.next(timeout=1)
        except TimeoutError:
            continue
    raise AssertionError("the subscription never delivered")


async def test_send_and_read_back_the_last_hundred(stack: Stack) -> None:
    owner, viewer = await stack.account(), await stack.account()
    stream = await stack.stream(owner)
    sent = await send(stack, viewer, stream, "  hello chat  ")
    assert sent["body"] == "hello chat" and sent["author"] == {"id": viewer.id}
    assert sent["stream"] == {"id": stream}
    for n in range(104):
        await send(stack, viewer if n % 2 else owner, stream, f"m{n}")
    bodies = await history(stack, stream)
    assert bodies == [f"m{n}" for n in range(4, 104)]  # only the last 100 stay
    assert await history(stack, stream, last=3) == ["m101", "m102", "m103"]


async def test_chat_input_is_checked(stack: Stack) -> None:
    owner, viewer = await stack.account(), await stack.account()
    stream = await stack.stream(owner)
    for body in ("", "   ", "x" * 501, "two\nlines", "nul\x00"):
        assert await stack.fails(SEND, {"s": stream, "b": body}, as_=viewer) == "BAD_USER_INPUT"
    assert (await send(stack, viewer, stream, "x" * 500))["body"] == "x" * 500
    assert await stack.fails(SEND, {"s": stream, "b": "hi"}) == "UNAUTHENTICATED"
    assert await stack.fails(SEND, {"s": str(uuid.uuid4()), "b": "hi"}, as_=viewer) == "NOT_FOUND"
    assert await stack.fails(SEND, {"s": "stream", "b": "hi"}, as_=viewer) == "BAD_USER_INPUT"
    for last in (0, 101):
        assert await stack.fails(HISTORY, {"s": stream, "n": last}) == "BAD_USER_INPUT"
    assert await stack.fails(HISTORY, {"s": str(uuid.uuid4()), "n": 5}) == "NOT_FOUND"


async def test_owner_and_admins_delete_messages(stack: Stack) -> None:
    owner, viewer, other = await stack.account(), await stack.account(), await stack.account()
    admin = await stack.admin()
    stream = await stack.stream(owner)
    first = await send(stack, viewer, stream, "first")
    second = await send(stack, viewer, stream, "second")
    await send(stack, viewer, stream, "third")

    # Not the author, not another viewer: moderation is the owner's and admins'.
    assert await stack.fails(DELETE, {"id": first["id"]}, as_=viewer) == "FORBIDDEN"
    assert await stack.fails(DELETE, {"id": first["id"]}, as_=other) == "FORBIDDEN"
    assert await stack.fails(DELETE, {"id": first["id"]}) == "UNAUTHENTICATED"
    assert (await stack.ok(DELETE, {"id": first["id"]}, as_=owner))["deleteChatMessage"] is True
    assert (await stack.ok(DELETE, {"id": second["id"]}, as_=admin))["deleteChatMessage"] is True
    assert await history(stack, stream) == ["third"]
    assert await stack.fails(DELETE, {"id": str(uuid.uuid4())}, as_=owner) == "NOT_FOUND"
    assert await stack.fails(DELETE, {"id": "x"}, as_=owner) == "BAD_USER_INPUT"


async def test_bans_refuse_sends_until_they_end(stack: Stack) -> None:
    owner, troll, viewer = await stack.account(), await stack.account(), await stack.account()
    stream = await stack.stream(owner)
    other_stream = await stack.stream(owner)

    ban = (await stack.ok(BAN, {"s": stream, "u": troll.id}, as_=owner))["banFromChat"]
    assert ban == {"stream": {"id": stream}, "user": {"id": troll.id}, "until": None}
    body = await stack.execute(SEND, {"s": stream, "b": "let me in"}, as_=troll)
    assert body["errors"][0]["extensions"] == {"code": "FORBIDDEN", "reason": "BANNED_FROM_CHAT"}
    await send(stack, viewer, stream, "fine")
    await send(stack, troll, other_stream, "a ban is per room")
    assert (await stack.ok(UNBAN, {"s": stream, "u": troll.id}, as_=owner))["unbanFromChat"] is True
    assert (await stack.ok(UNBAN, {"s": stream, "u": troll.id}, as_=owner))[
        "unbanFromChat"
    ] is False
    await send(stack, troll, stream, "back")

    # A timed ban ends by itself.
    timed = (await stack.ok(BAN, {"s": stream, "u": troll.id, "d": 1}, as_=owner))["banFromChat"]
    assert timed["until"] is not None
    assert await stack.fails(SEND, {"s": stream, "b": "x"}, as_=troll) == "FORBIDDEN"
    await eventually(
        lambda: stack.execute(SEND, {"s": stream, "b": "after the ban"}, as_=troll),
        lambda b: "errors" not in b,
        what="the timed ban to end",
    )

    assert await stack.fails(BAN, {"s": stream, "u": viewer.id}, as_=troll) == "FORBIDDEN"
    assert await stack.fails(UNBAN, {"s": stream, "u": troll.id}, as_=viewer) == "FORBIDDEN"
    assert await stack.fails(BAN, {"s": stream, "u": owner.id}, as_=owner) == "BAD_USER_INPUT"
    for duration in (0, -5, 10**9):
        assert (
            await stack.fails(BAN, {"s": stream, "u": troll.id, "d": duration}, as_=owner)
            == "BAD_USER_INPUT"
        )
    assert await stack.fails(BAN, {"s": stream, "u": "who"}, as_=owner) == "BAD_USER_INPUT"
    assert await stack.fails(UNBAN, {"s": stream, "u": "who"}, as_=owner) == "BAD_USER_INPUT"
    assert await stack.fails(UNBAN, {"s": stream, "u": troll.id}) == "UNAUTHENTICATED"
    assert await stack.fails(BAN, {"s": str(uuid.uuid4()), "u": troll.id}, as_=owner) == "NOT_FOUND"
    admin = await stack.admin()
    await stack.ok(BAN, {"s": stream, "u": viewer.id, "d": 60}, as_=admin)
    assert await stack.fails(SEND, {"s": stream, "b": "x"}, as_=viewer) == "FORBIDDEN"


async def test_slow_mode_sets_the_per_user_rate(stack: Stack) -> None:
    owner, viewer = await stack.account(), await stack.account()
    stream = await stack.stream(owner)
    slow = (await stack.ok(SLOW, {"s": stream, "n": 60}, as_=owner))["setSlowMode"]
    assert slow == {"id": stream, "chatSlowModeSeconds": 60}
    seen = (await stack.ok(STREAM, {"s": stream}))["_entities"][0]
    assert seen["chatSlowModeSeconds"] == 60

    await send(stack, viewer, stream, "one")
    body = await stack.execute(SEND, {"s": stream, "b": "two"}, as_=viewer)
    error = body["errors"][0]
    assert (
        error["extensions"]["code"] == "RATE_LIMITED"
        and 55 <= error["extensions"]["retryAfter"] <= 60
    )
    # The owner is not held to slow mode.
    await send(stack, owner, stream, "owner one")
    await send(stack, owner, stream, "owner two")
    await stack.ok(SLOW, {"s": stream, "n": 0}, as_=owner)
    await send(stack, viewer, stream, "two")

    assert await stack.fails(SLOW, {"s": stream, "n": 5}, as_=viewer) == "FORBIDDEN"
    assert await stack.fails(SLOW, {"s": stream, "n": 5}) == "UNAUTHENTICATED"
    for seconds in (-1, 3601):
        assert await stack.fails(SLOW, {"s": stream, "n": seconds}, as_=owner) == "BAD_USER_INPUT"
    assert await stack.fails(SLOW, {"s": str(uuid.uuid4()), "n": 5}, as_=owner) == "NOT_FOUND"


async def test_subscribers_receive_messages_and_deletions(stack: Stack) -> None:
    owner, viewer = await stack.account(), await stack.account()
    stream = await stack.stream(owner)
    async with (
        subscribe(stack.gql.url, ADDED, {"s": stream}) as added,
        subscribe(stack.gql.url, DELETED, {"s": stream}) as deleted,
    ):
        probe = await first_event(stack, added, lambda: send(stack, owner, stream, "probe"))
        assert probe["data"]["chatMessageAdded"]["body"] == "probe"
        # Probes already on their way arrive before anything sent after them.
        message = await send(stack, viewer, stream, "hello")
        while (event := (await added.next())["data"]["chatMessageAdded"])["body"] == "probe":
            pass
        assert event == {
            "id": message["id"],
            "body": "hello",
            "author": {"id": viewer.id},
            "stream": {"id": stream},
        }

        removed = await first_event(
            stack, deleted, lambda: stack.ok(DELETE, {"id": message["id"]}, as_=owner)
        )
        assert removed["data"]["chatMessageDeleted"] == {
            "id": message["id"],
            "stream": {"id": stream},
        }


async def test_subscribing_to_an_unknown_stream_is_not_found(stack: Stack) -> None:
    for query in (ADDED, DELETED, VIEWERS):
        async with subscribe(stack.gql.url, query, {"s": str(uuid.uuid4())}) as subscription:
            message = await subscription.message()
        errors = message["payload"]["errors"] if message["type"] == "next" else message["payload"]
        assert errors[0]["extensions"]["code"] == "NOT_FOUND", message


async def test_viewer_count_follows_who_is_watching(stack: Stack) -> None:
    owner, alice, bob = await stack.account(), await stack.account(), await stack.account()
    stream = await stack.stream(owner)

    async with subscribe(stack.gql.url, VIEWERS, {"s": stream}, token=alice.token) as first:
        assert (await first.next())["data"]["viewerCountChanged"] == 1
        async with subscribe(stack.gql.url, VIEWERS, {"s": stream}, token=bob.token) as second:
            assert (await second.next())["data"]["viewerCountChanged"] == 2
            assert (await first.next())["data"]["viewerCountChanged"] == 2
            # Alice in a second tab is still one viewer; someone signed out is one more.
            async with subscribe(stack.gql.url, VIEWERS, {"s": stream}, token=alice.token) as tab:
                assert (await tab.next())["data"]["viewerCountChanged"] == 2
                async with subscribe(stack.gql.url, VIEWERS, {"s": stream}) as anonymous:
                    assert (await anonymous.next())["data"]["viewerCountChanged"] == 3
                    assert (await first.next())["data"]["viewerCountChanged"] == 3
                count = (await stack.ok(STREAM, {"s": stream}))["_entities"][0]["viewerCount"]
                assert count in (2, 3)  # the anonymous viewer is leaving
                assert (await first.next())["data"]["viewerCountChanged"] == 2
        # Bob's connection closed: he stops counting.
        assert (await first.next())["data"]["viewerCountChanged"] == 1
    await eventually(
        lambda: stack.ok(STREAM, {"s": stream}),
        lambda d: d["_entities"][0]["viewerCount"] == 0,
        what="nobody watching",
    )


async def test_signed_out_sockets_from_one_address_count_as_five_viewers_at_most(
    stack: Stack,
) -> None:
    owner, member = await stack.account(), await stack.account()
    stream = await stack.stream(owner)
    async with AsyncExitStack() as sockets:
        seen = []
        for _ in range(7):  # all from this machine's address
            tab = await sockets.enter_async_context(
                subscribe(stack.gql.url, VIEWERS, {"s": stream})
            )
            seen.append((await tab.next())["data"]["viewerCountChanged"])
        assert seen == [1, 2, 3, 4, 5, 5, 5]
        async with subscribe(stack.gql.url, VIEWERS, {"s": stream}, token=member.token) as signed:
            assert (await signed.next())["data"]["viewerCountChanged"] == 6
        count = (await stack.ok(STREAM, {"s": stream}))["_entities"][0]["viewerCount"]
        assert count in (5, 6)  # the signed-in viewer is leaving
    await eventually(
        lambda: stack.ok(STREAM, {"s": stream}),
        lambda d: d["_entities"][0]["viewerCount"] == 0,
        what="nobody watching",
    )
