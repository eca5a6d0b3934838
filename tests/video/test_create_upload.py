"""createUpload and uploadVideo over GraphQL: who may upload, what is validated (with which
code), the size limit and the quota, and what reaches the bus and storage."""

from __future__ import annotations

import pytest

from tests.video.conftest import MAX_DIRECT, MAX_UPLOAD, QUOTA, Api, codes


async def test_a_creator_creates_an_upload_session_for_a_new_uploading_video(api: Api) -> None:
    creator = await api.register()

    session = await api.new_upload(
        creator,
        title="  My   first video ",
        description="About things.",
        tags=["Cats", "cooking", "CATS"],
        visibility="UNLISTED",
        categoryId="music",
        sizeBytes=12345,
    )

    video = session["video"]
    assert session["uploadUrl"] == f"{api.video_url}/uploads/{session['id']}"
    assert video["title"] == "My first video"
    assert video["status"] == "UPLOADING"
    assert video["visibility"] == "UNLISTED"
    assert video["tags"] == ["Cats", "cooking"]
    assert video["category"] == {"id": "music"}
    assert video["owner"] == {"id": creator.id}
    created = await api.events(
        "video.created", lambda p: p["videoId"] == video["id"], until=lambda f: len(f) == 1
    )
    assert created[0]["ownerId"] == creator.id
    assert created[0]["status"] == "UPLOADING"
    assert set(created[0]) == {"videoId", "ownerId", "title", "visibility", "status", "createdAt"}


async def test_sizes_beyond_two_gigabytes_are_accepted_as_long(api: Api, stack: object) -> None:
    admin = await api.admin()
    # Beyond 2^31 but over this stack's small limit: the Long reaches the limit check intact.
    body = await api.create_upload(admin, sizeBytes=str(5 * 2**31))
    assert codes(body) == ["UPLOAD_TOO_LARGE"]
    assert body["errors"][0]["extensions"]["limitBytes"] == MAX_UPLOAD


async def test_viewers_cannot_create_uploads_and_anonymous_users_must_sign_in(api: Api) -> None:
    viewer = await api.register("VIEWER")
    assert codes(await api.create_upload(viewer)) == ["FORBIDDEN"]
    assert codes(
        await api.q(
            'mutation { createUpload(input: {title: "t", categoryId: "music", filename: "a.mp4", sizeBytes: 1}) { id } }'
        )
    ) == ["UNAUTHENTICATED"]
    forged = await api.gql.execute(
        '{ video(id: "00000000-0000-0000-0000-000000000000") { id } }',
        token="eyJhbGciOiJFUzI1NiJ9.e30.c2ln",
    )
    assert codes(forged) == ["UNAUTHENTICATED"]


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"title": "   "}, "title"),
        ({"title": "x" * 101}, "title"),
        ({"title": "bad\x07title"}, "title"),
        ({"description": "d" * 5001}, "description"),
        ({"tags": [f"tag{i}" for i in range(16)]}, "tags"),
        ({"tags": ["t" * 31]}, "tags"),
        ({"tags": ["  "]}, "tags"),
        ({"categoryId": "no-such-category"}, "categoryId"),
        ({"filename": "notes.txt"}, "filename"),
        ({"filename": "noextension"}, "filename"),
        ({"filename": ""}, "filename"),
        ({"sizeBytes": 0}, "sizeBytes"),
        ({"sizeBytes": -5}, "sizeBytes"),
    ],
)
async def test_bad_input_is_refused_with_the_field_named(
    api: Api, overrides: dict[str, object], field: str
) -> None:
    creator = await api.register()
    body = await api.create_upload(creator, **overrides)
    assert codes(body) == ["BAD_USER_INPUT"], body
    assert body["errors"][0]["extensions"]["field"] == field
    assert body["data"] is None


async def test_malformed_values_fail_validation_before_any_resolver(api: Api) -> None:
    creator = await api.register()
    for size in ("12abc", 1.5, True, str(2**64)):
        body = await api.create_upload(creator, sizeBytes=size)
        assert codes(body) == ["BAD_USER_INPUT"], (size, body)
    body = await api.create_upload(creator, visibility="SECRET")
    assert codes(body) == ["BAD_USER_INPUT"]


async def test_the_size_limit_and_the_quota_are_checked_before_any_byte(api: Api) -> None:
    creator = await api.register()
    too_big = await api.create_upload(creator, sizeBytes=MAX_UPLOAD + 1)
    assert codes(too_big) == ["UPLOAD_TOO_LARGE"]

    # Reserved sizes count: two full-size uploads fit the quota, a third does not.
    first = await api.new_upload(creator, sizeBytes=MAX_UPLOAD)
    await api.new_upload(creator, sizeBytes=MAX_UPLOAD)
    over = await api.create_upload(creator, sizeBytes=QUOTA - 2 * MAX_UPLOAD + 1)
    assert codes(over) == ["QUOTA_EXCEEDED"]
    assert over["errors"][0]["extensions"]["quotaBytes"] == QUOTA
    fits = await api.create_upload(creator, sizeBytes=QUOTA - 2 * MAX_UPLOAD)
    assert "errors" not in fits, fits

    # Deleting a video frees its share.
    deleted = await api.q(
        "mutation D($id: ID!) { deleteVideo(id: $id) }", {"id": first["video"]["id"]}, creator
    )
    assert deleted["data"] == {"deleteVideo": True}
    assert "errors" not in await api.create_upload(creator, sizeBytes=MAX_UPLOAD)


async def test_a_direct_upload_stores_the_source_and_starts_processing(api: Api) -> None:
    creator = await api.register()
    data = b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 40

    response = await api.upload_video(
        creator, data, filename="holiday.MOV", title="Holiday", tags=["sea"]
    )

    body = response.json()
    assert "errors" not in body, body
    video = body["data"]["uploadVideo"]
    assert video["status"] == "PROCESSING"
    assert await api.storage.get(f"uploads/{video['id']}/source") == data
    jobs = await api.events(
        "media.transcode", lambda p: p["videoId"] == video["id"], until=lambda f: len(f) == 1
    )
    assert jobs == [
        {
            "videoId": video["id"],
            "sourceKey": f"uploads/{video['id']}/source",
            "outputPrefix": f"videos/{video['id']}/",
        }
    ]


async def test_direct_uploads_are_limited_typed_and_for_creators(api: Api) -> None:
    creator = await api.register()
    viewer = await api.register("VIEWER")

    too_big = await api.upload_video(creator, b"\x01" * (MAX_DIRECT + 1))
    assert too_big.json()["errors"][0]["extensions"]["code"] == "UPLOAD_TOO_LARGE"
    # Far beyond the limit: refused from Content-Length, before the body is read.
    huge = await api.upload_video(creator, b"\x01" * (MAX_DIRECT + 2 * 1024 * 1024))
    assert huge.status_code == 413
    assert huge.json()["errors"][0]["extensions"]["code"] == "UPLOAD_TOO_LARGE"

    not_media = await api.upload_video(creator, b"hello", filename="notes.txt")
    assert codes(not_media.json()) == ["BAD_USER_INPUT"]
    empty = await api.upload_video(creator, b"", filename="empty.mp4")
    assert codes(empty.json()) == ["BAD_USER_INPUT"]
    forbidden = await api.upload_video(viewer, b"\x00" * 100)
    assert codes(forbidden.json()) == ["FORBIDDEN"]
    anonymous = await api.upload_video(None, b"\x00" * 100)
    assert codes(anonymous.json()) == ["UNAUTHENTICATED"]
    listed = await api.q(
        'query U($id: ID!) { _entities(representations: [{__typename: "User", id: $id}]) '
        "{ ... on User { videos { totalCount } } } }",
        {"id": creator.id},
        creator,
    )
    assert listed["data"]["_entities"][0]["videos"]["totalCount"] == 0
