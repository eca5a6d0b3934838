"""Editing and deleting videos (storage emptied, events published, cleanup retried until it
succeeds), a deleted account taking its videos and streams with it (and creating or changing
nothing with its still-valid token), and live-stream metadata."""

from __future__ import annotations

import shutil
import subprocess
from typing import Any

import pytest

from tests.video.conftest import Api, Stack, codes, eventually

UPDATE = """
mutation U($id: ID!, $input: UpdateVideoInput!) {
  updateVideo(id: $id, input: $input) {
    id title description tags visibility category { id } status
  }
}
"""
DELETE = "mutation D($id: ID!) { deleteVideo(id: $id) }"
SEARCH = """
query S($search: String!, $owner: ID) {
  videos(filter: {search: $search, ownerId: $owner}) { totalCount edges { node { id title } } }
}
"""
CREATE_STREAM = """
mutation C($input: CreateLiveStreamInput!) {
  createLiveStream(input: $input) { id title status streamKey ingestUrl createdAt owner { id } }
}
"""
STREAM = "query S($id: ID!) { liveStream(id: $id) { id title status streamKey ingestUrl } }"


async def _stored(api: Api, video_id: str) -> list[str]:
    keys = [i.key async for i in api.storage.list(f"videos/{video_id}/")]
    return keys + [i.key async for i in api.storage.list(f"uploads/{video_id}/")]


async def test_an_owner_updates_a_video_and_search_follows(api: Api) -> None:
    owner = await api.register()
    video_id = await api.ready_video(owner, title="Original wording", tags=["old"])

    body = await api.q(
        UPDATE,
        {
            "id": video_id,
            "input": {
                "title": "Completely rephrased",
                "description": "Now with a description.",
                "categoryId": "comedy",
                "tags": ["new", "Shiny"],
                "visibility": "UNLISTED",
            },
        },
        owner,
    )

    assert "errors" not in body, body
    video = body["data"]["updateVideo"]
    assert video["title"] == "Completely rephrased"
    assert video["description"] == "Now with a description."
    assert video["category"] == {"id": "comedy"}
    assert video["tags"] == ["new", "Shiny"]
    assert video["visibility"] == "UNLISTED"
    updated = await api.events(
        "video.updated",
        lambda p: p["videoId"] == video_id,
        until=lambda f: any(p["title"] == "Completely rephrased" for p in f),
    )
    assert updated[-1] == {
        "videoId": video_id,
        "ownerId": owner.id,
        "title": "Completely rephrased",
        "visibility": "UNLISTED",
        "status": "READY",
    }
    # Public again, it is found by its new words only.
    await api.q(UPDATE, {"id": video_id, "input": {"visibility": "PUBLIC"}}, owner)
    found = await api.q(SEARCH, {"search": "rephrased", "owner": owner.id})
    assert [e["node"]["id"] for e in found["data"]["videos"]["edges"]] == [video_id]
    assert (await api.q(SEARCH, {"search": "wording", "owner": owner.id}))["data"]["videos"][
        "totalCount"
    ] == 0
    tagged = await api.q(SEARCH, {"search": "shiny", "owner": owner.id})
    assert tagged["data"]["videos"]["totalCount"] == 1


async def test_only_the_fields_sent_change(api: Api) -> None:
    owner = await api.register()
    video_id = await api.ready_video(owner, title="Keep me", tags=["a", "b"])
    body = await api.q(UPDATE, {"id": video_id, "input": {"description": "Only this."}}, owner)
    video = body["data"]["updateVideo"]
    assert (video["title"], video["tags"], video["description"]) == (
        "Keep me",
        ["a", "b"],
        "Only this.",
    )
    cleared = await api.q(UPDATE, {"id": video_id, "input": {"tags": None}}, owner)
    assert cleared["data"]["updateVideo"]["tags"] == []


@pytest.mark.parametrize(
    ("change", "code", "field"),
    [
        ({"title": ""}, "BAD_USER_INPUT", "title"),
        ({"title": None}, "BAD_USER_INPUT", "title"),
        ({"title": "t" * 101}, "BAD_USER_INPUT", "title"),
        ({"description": "d" * 5001}, "BAD_USER_INPUT", "description"),
        ({"categoryId": "nope"}, "BAD_USER_INPUT", "categoryId"),
        ({"categoryId": None}, "BAD_USER_INPUT", "categoryId"),
        ({"tags": ["x" * 31]}, "BAD_USER_INPUT", "tags"),
        ({"visibility": None}, "BAD_USER_INPUT", "visibility"),
    ],
)
async def test_bad_updates_are_refused_and_change_nothing(
    api: Api, change: dict[str, Any], code: str, field: str
) -> None:
    owner = await api.register()
    video_id = await api.processing_video(owner, title="Untouched")
    body = await api.q(UPDATE, {"id": video_id, "input": change}, owner)
    assert codes(body) == [code]
    assert body["errors"][0]["extensions"]["field"] == field
    assert (await api.video(video_id, owner) or {})["title"] == "Untouched"


async def test_updating_or_deleting_bad_or_unknown_ids(api: Api) -> None:
    owner = await api.register()
    assert codes(await api.q(DELETE, {"id": "not-an-id"}, owner)) == ["BAD_USER_INPUT"]
    unknown = "00000000-0000-4000-8000-000000000000"
    assert codes(await api.q(DELETE, {"id": unknown}, owner)) == ["NOT_FOUND"]
    change = {"id": unknown, "input": {"title": "x"}}
    assert codes(await api.q(UPDATE, change, owner)) == ["NOT_FOUND"]


async def test_deleting_a_video_removes_it_its_search_entry_and_all_its_media(api: Api) -> None:
    owner = await api.register()
    video_id = await api.ready_video(owner, title="Ephemeral footage")
    assert any(k.startswith("videos/") for k in await _stored(api, video_id))
    assert any(k.startswith("uploads/") for k in await _stored(api, video_id))

    assert (await api.q(DELETE, {"id": video_id}, owner))["data"] == {"deleteVideo": True}

    assert await api.video(video_id, owner) is None
    assert await _stored(api, video_id) == []
    found = await api.q(SEARCH, {"search": "ephemeral", "owner": owner.id})
    assert found["data"]["videos"]["totalCount"] == 0
    deleted = await api.events(
        "video.deleted", lambda p: p["videoId"] == video_id, until=lambda f: len(f) == 1
    )
    assert deleted == [{"videoId": video_id, "ownerId": owner.id}]
    assert codes(await api.q(DELETE, {"id": video_id}, owner)) == ["NOT_FOUND"]


async def test_storage_cleanup_is_retried_until_it_succeeds(api: Api, stack: Stack) -> None:
    if stack.storage_kind != "local" or shutil.which("chattr") is None:
        pytest.skip("needs local storage on a file system with immutable files")
    owner = await api.register()
    video_id = await api.ready_video(owner)
    segment = (
        stack.env.data_dir / "media" / "videos" / video_id / "hls" / "90p" / "segment_00000.ts"
    )
    if subprocess.run(["chattr", "+i", str(segment)], capture_output=True).returncode != 0:
        pytest.skip("this file system has no immutable files")
    try:
        assert (await api.q(DELETE, {"id": video_id}, owner))["data"] == {"deleteVideo": True}

        # The delete's own attempt and the video.deleted consumer's fail on the locked file…
        async def consumer_failed() -> bool:
            return any(
                "handler failed for video.deleted" in process.log()
                for process in stack.processes
                if process.name == "video"
            )

        await eventually(consumer_failed, "the cleanup consumer never ran")
        assert segment.exists()
    finally:
        subprocess.run(["chattr", "-i", str(segment)], check=True)

    # …and once storage works again, a retry of the video.deleted consumer finishes the job.
    async def emptied() -> bool:
        return await _stored(api, video_id) == []

    await eventually(emptied, "storage was never emptied after the failure", timeout=60)


async def test_a_deleted_account_takes_its_videos_streams_and_media(api: Api) -> None:
    owner = await api.register()
    video_ids = [
        await api.ready_video(owner),
        await api.processing_video(owner, visibility="PRIVATE"),
    ]
    stream = (await api.q(CREATE_STREAM, {"input": {"title": "Going away"}}, owner))["data"][
        "createLiveStream"
    ]

    # The real thing: auth deletes the account and publishes auth.user.deleted.
    gone = await api.auth.execute(
        "mutation D($p: String!) { deleteAccount(password: $p) }",
        {"p": owner.password},
        token=owner.token,
    )
    assert gone["data"] == {"deleteAccount": True}, gone

    admin = await api.admin()

    async def cleaned() -> bool:
        videos = [await api.video(v, admin) for v in video_ids]
        streams = (await api.q(STREAM, {"id": stream["id"]}))["data"]["liveStream"]
        stored = [await _stored(api, v) for v in video_ids]
        return videos == [None, None] and streams is None and stored == [[], []]

    await eventually(cleaned, "the deleted user's videos, streams or media remain")
    deleted = await api.events(
        "video.deleted",
        lambda p: p["ownerId"] == owner.id,
        until=lambda f: len(f) == 2,
    )
    assert {p["videoId"] for p in deleted} == set(video_ids)
    stream_deleted = await api.events(
        "video.stream.deleted", lambda p: p["streamId"] == stream["id"], until=bool
    )
    assert stream_deleted == [{"streamId": stream["id"], "ownerId": owner.id}]

    # The account's access token is still unexpired, but it creates nothing any more: a
    # video made now would outlive the account, owned by no one.
    assert codes(await api.create_upload(owner)) == ["UNAUTHENTICATED"]
    direct = (await api.upload_video(owner, b"\x00" * 2048)).json()
    assert codes(direct) == ["UNAUTHENTICATED"], direct
    streamed = await api.q(CREATE_STREAM, {"input": {"title": "Back?"}}, owner)
    assert codes(streamed) == ["UNAUTHENTICATED"]
    over_tus = await api.http.post(
        f"{api.video_url}/uploads",
        headers={
            "tus-resumable": "1.0.0",
            "authorization": f"Bearer {owner.token}",
            "upload-length": "10",
            "upload-metadata": "filename YS5tcDQ=,title dA==,categoryId bXVzaWM=",
        },
    )
    assert over_tus.status_code == 401
    listing = await api.q(
        'query U($id: ID!) { _entities(representations: [{__typename: "User", id: $id}]) '
        "{ ... on User { videos { totalCount } liveStreams { id } } } }",
        {"id": owner.id},
        admin,
    )
    assert listing["data"]["_entities"][0]["videos"]["totalCount"] == 0
    assert listing["data"]["_entities"][0]["liveStreams"] == []


async def test_a_deleted_admin_changes_no_one_s_video(api: Api) -> None:
    owner = await api.register()
    admin = await api.register("ADMIN")
    video_id = await api.processing_video(owner)
    gone = await api.auth.execute(
        "mutation D($p: String!) { deleteAccount(password: $p) }",
        {"p": admin.password},
        token=admin.token,
    )
    assert gone["data"] == {"deleteAccount": True}, gone

    async def refused() -> bool:
        # A change that changes nothing, until video has consumed auth.user.deleted.
        body = await api.q(UPDATE, {"id": video_id, "input": {"description": ""}}, admin)
        return codes(body) == ["UNAUTHENTICATED"]

    # The token itself stays valid for an hour (REELGRAPH_ACCESS_TOKEN_TTL in these tests).
    await eventually(refused, "a deleted admin's token still changes videos")
    taken = await api.q(UPDATE, {"id": video_id, "input": {"title": "Taken"}}, admin)
    assert codes(taken) == ["UNAUTHENTICATED"]
    assert codes(await api.q(DELETE, {"id": video_id}, admin)) == ["UNAUTHENTICATED"]
    video = await api.video(video_id, owner)
    assert video is not None and video["title"] == "Direct upload"


async def test_live_streams_are_created_rotated_and_deleted_by_their_owner(api: Api) -> None:
    owner = await api.register()
    stranger = await api.register()
    admin = await api.admin()
    viewer = await api.register("VIEWER")

    created = await api.q(CREATE_STREAM, {"input": {"title": "  Friday   night "}}, owner)
    stream = created["data"]["createLiveStream"]
    assert stream["title"] == "Friday night"
    assert stream["status"] == "OFFLINE"
    assert stream["streamKey"].startswith("live_") and len(stream["streamKey"]) > 20
    assert stream["ingestUrl"].startswith("rtmp://")
    assert stream["owner"] == {"id": owner.id}
    announced = await api.events(
        "video.stream.created", lambda p: p["streamId"] == stream["id"], until=bool
    )
    assert announced == [{"streamId": stream["id"], "ownerId": owner.id, "title": "Friday night"}]

    for who in (stranger, admin, None):
        seen = (await api.q(STREAM, {"id": stream["id"]}, who))["data"]["liveStream"]
        assert seen["title"] == "Friday night"
        assert seen["streamKey"] is None
    entity = await api.q(
        'query E($id: ID!) { _entities(representations: [{__typename: "LiveStream", id: $id}]) '
        "{ ... on LiveStream { id streamKey } } }",
        {"id": stream["id"]},
        owner,
    )
    assert entity["data"]["_entities"] == [{"id": stream["id"], "streamKey": stream["streamKey"]}]
    listed = await api.q(
        'query U($id: ID!) { _entities(representations: [{__typename: "User", id: $id}]) '
        "{ ... on User { liveStreams { id } } } }",
        {"id": owner.id},
    )
    assert listed["data"]["_entities"][0]["liveStreams"] == [{"id": stream["id"]}]

    rotate = "mutation R($id: ID!) { rotateStreamKey(id: $id) { streamKey } }"
    assert codes(await api.q(rotate, {"id": stream["id"]}, stranger)) == ["FORBIDDEN"]
    rotated = (await api.q(rotate, {"id": stream["id"]}, owner))["data"]["rotateStreamKey"]
    assert rotated["streamKey"] != stream["streamKey"]
    unknown = "00000000-0000-4000-8000-000000000000"
    assert codes(await api.q(rotate, {"id": unknown}, owner)) == ["NOT_FOUND"]
    assert codes(await api.q(rotate, {"id": "not-an-id"}, owner)) == ["BAD_USER_INPUT"]
    assert codes(await api.q(rotate, {"id": stream["id"]})) == ["UNAUTHENTICATED"]

    delete = "mutation D($id: ID!) { deleteLiveStream(id: $id) }"
    assert codes(await api.q(delete, {"id": stream["id"]}, stranger)) == ["FORBIDDEN"]
    assert codes(await api.q(delete, {"id": unknown}, owner)) == ["NOT_FOUND"]
    assert codes(await api.q(delete, {"id": "nope"}, owner)) == ["BAD_USER_INPUT"]
    assert (await api.q(delete, {"id": stream["id"]}, owner))["data"] == {"deleteLiveStream": True}
    assert (await api.q(STREAM, {"id": stream["id"]}))["data"]["liveStream"] is None
    assert await api.events(
        "video.stream.deleted", lambda p: p["streamId"] == stream["id"], until=bool
    ) == [{"streamId": stream["id"], "ownerId": owner.id}]

    assert codes(await api.q(CREATE_STREAM, {"input": {"title": "x"}}, viewer)) == ["FORBIDDEN"]
    assert codes(await api.q(CREATE_STREAM, {"input": {"title": " "}}, owner)) == ["BAD_USER_INPUT"]
    assert codes(await api.q(CREATE_STREAM, {"input": {"title": "x"}})) == ["UNAUTHENTICATED"]
