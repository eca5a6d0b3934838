"""Who sees which video: PUBLIC and UNLISTED READY videos by anyone with the id, PRIVATE and
unfinished ones by their owner and admins only; hidden is null (through `_entities` too),
exactly like missing. Only owners and admins change or delete a video."""

from __future__ import annotations

from typing import Any

from tests.video.conftest import Api, Person, codes

ENTITIES = """
query E($reps: [_Any!]!) {
  _entities(representations: $reps) { ... on Video { id title hlsUrl failureReason } }
}
"""
USER_VIDEOS = """
query U($id: ID!, $first: Int, $after: String) {
  _entities(representations: [{__typename: "User", id: $id}]) {
    ... on User { videos(first: $first, after: $after) {
      totalCount edges { cursor node { id status visibility } }
      pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
    } }
  }
}
"""
UPDATE = """
mutation U($id: ID!, $input: UpdateVideoInput!) {
  updateVideo(id: $id, input: $input) { id title description tags visibility category { id } }
}
"""
DELETE = "mutation D($id: ID!) { deleteVideo(id: $id) }"


async def _videos(api: Api) -> tuple[Person, dict[str, str]]:
    """One owner's videos in every visibility and state (made once per stack)."""
    if "visibility:videos" not in api.stack.cache:
        owner = await api.register()
        made = {
            "public": await api.ready_video(owner, visibility="PUBLIC"),
            "unlisted": await api.ready_video(owner, visibility="UNLISTED"),
            "private": await api.ready_video(owner, visibility="PRIVATE"),
            "processing": await api.processing_video(owner, visibility="PUBLIC"),
        }
        api.stack.cache["visibility:videos"] = (owner, made)
    result: tuple[Person, dict[str, str]] = api.stack.cache["visibility:videos"]
    return result


async def _entities(api: Api, ids: list[str], who: Person | None) -> list[Any]:
    body = await api.q(ENTITIES, {"reps": [{"__typename": "Video", "id": i} for i in ids]}, who)
    assert "errors" not in body, body
    entities: list[Any] = body["data"]["_entities"]
    return entities


async def test_each_viewer_sees_exactly_what_the_rules_allow(api: Api) -> None:
    owner, made = await _videos(api)
    stranger = await api.register("VIEWER")
    admin = await api.admin()
    missing = "00000000-0000-4000-8000-000000000000"
    expected = {
        "owner": {"public", "unlisted", "private", "processing"},
        "admin": {"public", "unlisted", "private", "processing"},
        "stranger": {"public", "unlisted"},
        "anonymous": {"public", "unlisted"},
    }
    people: dict[str, Person | None] = {
        "owner": owner,
        "admin": admin,
        "stranger": stranger,
        "anonymous": None,
    }
    for name, who in people.items():
        seen = {kind for kind, video_id in made.items() if await api.video(video_id, who)}
        assert seen == expected[name], name
        # Through the router's entity fetch too: hidden and missing are both null.
        ids = [*made.values(), missing]
        entities = await _entities(api, ids, who)
        visible = {kind for kind, entity in zip(made, entities, strict=False) if entity}
        assert visible == expected[name], name
        assert entities[-1] is None
    assert await api.video("not-a-uuid", owner) is None


async def test_private_media_urls_are_only_handed_to_those_allowed(api: Api) -> None:
    owner, made = await _videos(api)
    (entity,) = await _entities(api, [made["private"]], owner)
    assert "/public/" not in entity["hlsUrl"]
    (public,) = await _entities(api, [made["unlisted"]], None)
    assert "/public/" in public["hlsUrl"]


async def test_user_videos_lists_everything_for_the_owner_and_public_ready_for_others(
    api: Api,
) -> None:
    owner, made = await _videos(api)
    admin = await api.admin()
    stranger = await api.register("VIEWER")

    async def listed(who: Person | None) -> set[str]:
        body = await api.q(USER_VIDEOS, {"id": owner.id, "first": 50}, who)
        assert "errors" not in body, body
        return {e["node"]["id"] for e in body["data"]["_entities"][0]["videos"]["edges"]}

    everything = set(made.values())
    assert everything <= await listed(owner)
    assert everything <= await listed(admin)
    assert (await listed(stranger)) & everything == {made["public"]}
    assert (await listed(None)) & everything == {made["public"]}

    first = await api.q(USER_VIDEOS, {"id": owner.id, "first": 2}, owner)
    page = first["data"]["_entities"][0]["videos"]
    assert page["pageInfo"]["hasNextPage"] is True
    after = await api.q(
        USER_VIDEOS, {"id": owner.id, "first": 50, "after": page["pageInfo"]["endCursor"]}, owner
    )
    rest = after["data"]["_entities"][0]["videos"]
    ids = [e["node"]["id"] for e in page["edges"] + rest["edges"]]
    assert len(ids) == len(set(ids)) == rest["totalCount"]


async def test_only_owners_and_admins_edit_and_delete(api: Api) -> None:
    owner = await api.register()
    stranger = await api.register()
    admin = await api.admin()
    public = await api.ready_video(owner)
    private = await api.ready_video(owner, visibility="PRIVATE")
    change = {"title": "Hijacked"}

    # A stranger can see the public one (FORBIDDEN) but not the private one (NOT_FOUND).
    assert codes(await api.q(UPDATE, {"id": public, "input": change}, stranger)) == ["FORBIDDEN"]
    assert codes(await api.q(UPDATE, {"id": private, "input": change}, stranger)) == ["NOT_FOUND"]
    assert codes(await api.q(DELETE, {"id": public}, stranger)) == ["FORBIDDEN"]
    assert codes(await api.q(DELETE, {"id": private}, stranger)) == ["NOT_FOUND"]
    assert codes(await api.q(DELETE, {"id": public})) == ["UNAUTHENTICATED"]
    assert (await api.video(public, owner) or {})["title"] != "Hijacked"

    by_admin = await api.q(UPDATE, {"id": private, "input": {"title": "Moderated"}}, admin)
    assert by_admin["data"]["updateVideo"]["title"] == "Moderated"
    assert (await api.q(DELETE, {"id": public}, admin))["data"] == {"deleteVideo": True}
    assert await api.video(public, owner) is None
