"""A priced video's media needs a playback session: the owner prices it through billing, video
learns the price from billing's event, and from then on its stream (playlists, segments,
storyboard) opens only with a live playback token, or for the owner and admins. Tokens stop
granting when heartbeats stop or stop moving, when the session ends (by the viewer, for lack
of funds, with the account, on a price change), and never open another video. Everything
through our router, as clients do."""

from __future__ import annotations

import asyncio
import re
import time

from jose import jwt

from tests.paid.conftest import DEADLINE, SESSION_TTL, Paid
from tests.video.conftest import codes, eventually

VARIANT = "hls/90p/index.m3u8"
SEGMENT = "hls/90p/segment_00000.ts"
STREAM_PATHS = ("hls/master.m3u8", VARIANT, SEGMENT, "storyboard.vtt", "storyboard.jpg")
DELETE_ACCOUNT = "mutation D($p: String!) { deleteAccount(password: $p) }"
UPDATE = (
    "mutation U($id: ID!, $v: Visibility!) { updateVideo(id: $id, input: {visibility: $v}) { id } }"
)


def _token_of(url: str) -> str:
    match = re.search(r"/media/[^/]+/([^/]+)/", url)
    assert match, url
    return match.group(1)


def _expiry(token: str) -> int:
    return int(jwt.get_unverified_claims(token)["exp"])


async def _refused(paid: Paid, url: str) -> str:
    """The body of a refusal, checked to be a short plain 403 (no trace, nothing leaked)."""
    response = await paid.get(url)
    assert response.status_code == 403, (url, response.status_code, response.text[:200])
    assert "Traceback" not in response.text and len(response.text) < 200, response.text
    assert response.headers["cache-control"] == "no-store"
    return response.text


async def _refused_with(paid: Paid, url: str, reason: str) -> None:
    """Poll until the URL is refused; the refusal must say `reason`."""

    async def refused() -> bool:
        return await paid.status(url) == 403

    await eventually(refused, f"{url} was never refused")
    assert reason in await _refused(paid, url)


async def test_video_learns_the_price_and_only_sessions_owners_and_admins_get_the_stream(
    paid: Paid,
) -> None:
    owner, viewer, admin = await paid.register(), await paid.register("VIEWER"), await paid.admin()
    video_id = await paid.ready_video(owner)
    free = await paid.video(video_id, viewer)
    assert free is not None and _token_of(free["hlsUrl"]) == "public"
    assert await paid.status(free["hlsUrl"]) == 200

    await paid.wait_access(video_id, owner, "OWNER")
    await paid.set_price(owner, video_id, 10)

    # Anyone but the owner and admins: no stream URLs, and the public ones stop working.
    for who in (None, viewer):
        seen = await paid.video(video_id, who)
        assert seen is not None and seen["hlsUrl"] is None and seen["storyboard"] is None
        # The poster stays a preview that listings show.
        assert await paid.status(seen["thumbnailUrl"]) == 200
    for path in STREAM_PATHS:
        assert "playback session" in await _refused(paid, paid.media(video_id, "public", path))

    # The owner and admins keep their (signed) URLs, stream and storyboard alike.
    for who in (owner, admin):
        seen = await paid.video(video_id, who)
        assert seen is not None and seen["hlsUrl"], seen
        token = _token_of(seen["hlsUrl"])
        assert token != "public"
        for path in STREAM_PATHS:
            assert await paid.status(paid.media(video_id, token, path)) == 200
        assert await paid.status(seen["storyboard"]["vttUrl"]) == 200

    # Billing's answer agrees with the gate.
    assert (await paid.access(video_id))["access"] == {
        "canWatch": False,
        "reason": "SIGN_IN_REQUIRED",
    }
    assert (await paid.access(video_id, viewer))["access"] == {
        "canWatch": False,
        "reason": "INSUFFICIENT_FUNDS",
    }
    assert (await paid.access(video_id, admin))["access"] == {"canWatch": True, "reason": "ADMIN"}
    assert codes(await paid.bill(_start_query(), {"v": video_id}, viewer)) == ["INSUFFICIENT_FUNDS"]
    await paid.deposit(viewer, 100)
    assert (await paid.access(video_id, viewer))["access"] == {
        "canWatch": True,
        "reason": "FUNDS_AVAILABLE",
    }

    # The owner's own session is free, and its token opens the stream too.
    own = await paid.start(owner, video_id)
    assert own["chargedMinutes"] == 0
    assert await paid.status(paid.media(video_id, own["playbackToken"], SEGMENT)) == 200


def _start_query() -> str:
    return "mutation S($v: ID!) { startPlayback(videoId: $v) { id } }"


async def test_a_playback_token_opens_this_video_only_with_ranges(paid: Paid) -> None:
    owner, viewer = await paid.register(), await paid.register("VIEWER")
    video_id = await paid.priced_video(owner, 10)
    other = await paid.ready_video(owner)  # free
    await paid.wait_access(other, viewer, "FREE")
    await paid.deposit(viewer, 1_000)
    session = await paid.start(viewer, video_id)
    token = session["playbackToken"]

    master = await paid.get(paid.media(video_id, token, "hls/master.m3u8"))
    assert master.status_code == 200, master.text
    assert master.headers["cache-control"].startswith("private")
    variant_path = next(line for line in master.text.splitlines() if line.endswith(".m3u8"))
    variant = await paid.get(paid.media(video_id, token, f"hls/{variant_path}"))
    assert variant.status_code == 200
    segments = [line for line in variant.text.splitlines() if line.endswith(".ts")]
    assert len(segments) >= 10
    for segment in segments:
        assert await paid.status(paid.media(video_id, token, f"hls/90p/{segment}")) == 200
    whole = await paid.get(paid.media(video_id, token, SEGMENT))
    ranged = await paid.get(paid.media(video_id, token, SEGMENT), range="bytes=100-199")
    assert ranged.status_code == 206
    assert ranged.headers["content-range"] == f"bytes 100-199/{len(whole.content)}"
    assert ranged.content == whole.content[100:200]
    head = await paid.http.head(paid.media(video_id, token, SEGMENT))
    assert head.status_code == 200
    assert head.headers["content-length"] == str(len(whole.content))
    assert await paid.status(paid.media(video_id, token, "storyboard.vtt")) == 200

    # Another video's token (here a free one's), a forged one, and tokens that are not
    # playback tokens at all.
    other_token = (await paid.start(viewer, other))["playbackToken"]
    assert await paid.status(paid.media(other, other_token, SEGMENT)) == 200
    assert "another video" in await _refused(paid, paid.media(video_id, other_token, SEGMENT))
    header, claims, signature = token.split(".")
    forged = [
        f"{header}.{claims}.{signature[:-6]}AAAAAA",
        f"{header}.{other_token.split('.')[1]}.{signature}",
        "eyJhbGciOiJub25lIiwidHlwIjoicGxheWJhY2srand0In0." + claims + ".",
        "eyJ.not.atoken",
        "eyJhbGciOiJFUzI1NiJ9.e30.c2ln",
        viewer.token,  # the viewer's access token: an ES256 JWT, but not a playback token
    ]
    for bad in forged:
        await _refused(paid, paid.media(video_id, bad, SEGMENT))
    # A refusal says nothing about whether the video exists.
    missing = "00000000-0000-4000-8000-000000000000"
    assert "another video" in await _refused(paid, paid.media(missing, token, SEGMENT))

    # Through the router, the session carries its ready-made URLs (video adds them).
    routed = await paid.router.execute(
        "mutation S($v: ID!) { startPlayback(videoId: $v) "
        "{ id playbackToken hlsUrl storyboard { vttUrl imageUrl } } }",
        {"v": video_id},
        token=viewer.token,
    )
    assert "errors" not in routed, routed
    started = routed["data"]["startPlayback"]
    assert started["hlsUrl"] == paid.media(video_id, started["playbackToken"], "hls/master.m3u8")
    assert started["storyboard"]["vttUrl"].endswith("/storyboard.vtt")
    for url in (started["hlsUrl"], started["storyboard"]["vttUrl"]):
        assert await paid.status(url) == 200
    beat = await paid.router.execute(
        "mutation H($s: ID!) { playbackHeartbeat(sessionId: $s, positionSeconds: 0) "
        "{ playbackToken hlsUrl } }",
        {"s": started["id"]},
        token=viewer.token,
    )
    assert "errors" not in beat, beat
    assert (
        _token_of(beat["data"]["playbackHeartbeat"]["hlsUrl"])
        == (beat["data"]["playbackHeartbeat"]["playbackToken"])
    )


async def test_heartbeats_keep_a_long_playback_going_and_a_stopped_session_lapses(
    paid: Paid,
) -> None:
    owner, viewer = await paid.register(), await paid.register("VIEWER")
    video_id = await paid.priced_video(owner, 1)
    await paid.deposit(viewer, 10_000)
    session = await paid.start(viewer, video_id)
    first = newest = session["playbackToken"]
    began = time.monotonic()
    # Play past the first token's expiry, heartbeating and always using the newest token.
    while time.time() <= _expiry(first) + 1:
        beat = await paid.heartbeat(viewer, session["id"], time.monotonic() - began)
        assert "errors" not in beat, beat
        newest = beat["data"]["playbackHeartbeat"]["playbackToken"]
        assert await paid.status(paid.media(video_id, newest, SEGMENT)) == 200
        await asyncio.sleep(1)
    assert _expiry(newest) > _expiry(first)
    assert "expired" in await _refused(paid, paid.media(video_id, first, SEGMENT))
    assert await paid.status(paid.media(video_id, newest, SEGMENT)) == 200

    # Heartbeats stop: the newest token lapses within the session TTL.
    url = paid.media(video_id, newest, SEGMENT)

    async def lapsed() -> bool:
        return await paid.status(url) == 403

    await eventually(lapsed, "the token outlived its session", timeout=SESSION_TTL + DEADLINE)
    ended = await paid.events(
        "billing.playback.ended",
        lambda p: p["sessionId"] == session["id"],
        timeout=DEADLINE,
    )
    assert [e["reason"] for e in ended] == ["EXPIRED"]


async def test_a_client_stuck_at_position_zero_is_cut_off_when_its_first_token_lapses(
    paid: Paid,
) -> None:
    owner, viewer = await paid.register(), await paid.register("VIEWER")
    video_id = await paid.priced_video(owner, 1)
    await paid.deposit(viewer, 1_000)
    session = await paid.start(viewer, video_id)
    first = session["playbackToken"]
    # It pays the first minute, then reports position 0 for ever, hoping to stream the rest
    # on that one minute: no heartbeat extends its token, so the media stops at its expiry.
    newest = first
    while time.time() < _expiry(first) - 1:
        beat = await paid.heartbeat(viewer, session["id"], 0)
        assert "errors" not in beat, beat
        assert beat["data"]["playbackHeartbeat"]["chargedMinutes"] == 1
        newest = beat["data"]["playbackHeartbeat"]["playbackToken"]
        assert _expiry(newest) == _expiry(first)
        await asyncio.sleep(0.5)
    url = paid.media(video_id, newest, SEGMENT)

    async def lapsed() -> bool:
        return await paid.status(url) == 403

    await eventually(lapsed, "the token outlived its session", timeout=SESSION_TTL + DEADLINE)

    # The token's `exp` is whole seconds, at or before the session's expiry: soon after, the
    # session is over too, and heartbeats (still at 0) are refused.
    async def refused() -> bool:
        late = await paid.heartbeat(viewer, session["id"], 0)
        return codes(late) == ["SESSION_ENDED"]

    await eventually(refused, "the session outlived its token")
    ended = await paid.events(
        "billing.playback.ended", lambda p: p["sessionId"] == session["id"], timeout=DEADLINE
    )
    # Every minute its token granted (SESSION_TTL seconds, a minute each here) is paid.
    assert [(e["reason"], e["chargedMinutes"]) for e in ended] == [("EXPIRED", SESSION_TTL)]


async def test_a_session_started_free_stops_granting_once_the_video_is_priced(
    paid: Paid,
) -> None:
    owner, viewer = await paid.register(), await paid.register("VIEWER")
    video_id = await paid.ready_video(owner)
    await paid.wait_access(video_id, viewer, "FREE")
    session = await paid.start(viewer, video_id)
    assert session["chargedMinutes"] == 0
    url = paid.media(video_id, session["playbackToken"], SEGMENT)
    assert await paid.status(url) == 200
    await paid.set_price(owner, video_id, 10)
    # Its heartbeats would keep it going for free: it ends instead, and its token with it.
    beat = await paid.heartbeat(viewer, session["id"], 3)
    assert codes(beat) == ["SESSION_ENDED"], beat
    assert beat["errors"][0]["extensions"]["reason"] == "PRICE_CHANGED"
    await _refused_with(paid, url, "session has ended")
    ended = await paid.events(
        "billing.playback.ended", lambda p: p["sessionId"] == session["id"], timeout=DEADLINE
    )
    assert [e["reason"] for e in ended] == ["PRICE_CHANGED"]


async def test_ending_the_session_cuts_its_token_off_before_it_expires(paid: Paid) -> None:
    owner, viewer = await paid.register(), await paid.register("VIEWER")
    video_id = await paid.priced_video(owner, 10)
    await paid.deposit(viewer, 1_000)
    session = await paid.start(viewer, video_id)
    url = paid.media(video_id, session["playbackToken"], SEGMENT)
    assert await paid.status(url) == 200
    await paid.end(viewer, session["id"])
    # Video learns of the end from billing.playback.ended: refused as ended, not as expired.
    await _refused_with(paid, url, "session has ended")


async def test_running_out_of_funds_ends_the_session_and_its_media(paid: Paid) -> None:
    owner, viewer = await paid.register(), await paid.register("VIEWER")
    video_id = await paid.priced_video(owner, 25)
    await paid.deposit(viewer, 100)  # the smallest deposit: four minutes
    session = await paid.start(viewer, video_id)
    token = session["playbackToken"]
    began = time.monotonic()
    deadline = began + DEADLINE
    while True:
        # The player claims to be ahead; billing charges as the wall clock allows.
        beat = await paid.heartbeat(viewer, session["id"], time.monotonic() - began + 5)
        if codes(beat):
            break
        token = beat["data"]["playbackHeartbeat"]["playbackToken"]
        assert await paid.status(paid.media(video_id, token, SEGMENT)) == 200
        assert time.monotonic() < deadline, "the wallet never ran out"
        await asyncio.sleep(0.5)
    assert codes(beat) == ["INSUFFICIENT_FUNDS"], beat
    await _refused_with(paid, paid.media(video_id, token, SEGMENT), "session has ended")
    assert (await paid.access(video_id, viewer))["access"] == {
        "canWatch": False,
        "reason": "INSUFFICIENT_FUNDS",
    }


async def test_a_deleted_account_s_sessions_stop_granting(paid: Paid) -> None:
    owner, viewer = await paid.register(), await paid.register("VIEWER")
    video_id = await paid.priced_video(owner, 10)
    await paid.deposit(viewer, 1_000)
    session = await paid.start(viewer, video_id)
    url = paid.media(video_id, session["playbackToken"], SEGMENT)
    assert await paid.status(url) == 200
    body = await paid.auth.execute(DELETE_ACCOUNT, {"p": viewer.password}, token=viewer.token)
    assert body["data"] == {"deleteAccount": True}, body
    await _refused_with(paid, url, "session has ended")


async def test_a_session_opened_before_the_video_went_private_stops_opening_it(
    paid: Paid,
) -> None:
    owner, viewer = await paid.register(), await paid.register("VIEWER")
    video_id = await paid.priced_video(owner, 10)
    await paid.deposit(viewer, 1_000)
    theirs = await paid.start(viewer, video_id)
    own = await paid.start(owner, video_id)
    url = paid.media(video_id, theirs["playbackToken"], SEGMENT)
    assert await paid.status(url) == 200
    body = await paid.q(UPDATE, {"id": video_id, "v": "PRIVATE"}, owner)
    assert "errors" not in body, body
    # Like a missing video: a private video's existence never leaks.
    response = await paid.get(url)
    assert response.status_code == 404, response.text
    assert await paid.status(paid.media(video_id, "public", SEGMENT)) == 404
    assert await paid.status(paid.media(video_id, own["playbackToken"], SEGMENT)) == 200


async def test_a_price_set_back_to_zero_makes_the_video_free_again(paid: Paid) -> None:
    owner, viewer = await paid.register(), await paid.register("VIEWER")
    video_id = await paid.priced_video(owner, 10)
    assert await paid.status(paid.media(video_id, "public", SEGMENT)) == 403
    await paid.set_price(owner, video_id, 0)
    seen = await paid.video(video_id, viewer)
    assert seen is not None and _token_of(seen["hlsUrl"]) == "public"
    for path in STREAM_PATHS:
        assert await paid.status(paid.media(video_id, "public", path)) == 200
    assert (await paid.access(video_id))["access"] == {"canWatch": True, "reason": "FREE"}
