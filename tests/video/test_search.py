"""Listing and search over PUBLIC READY videos on both engines (SQLite FTS5, PostgreSQL
tsvector): every word must match, the last as a prefix, whatever the case and accents; user
input never acts as query syntax; unlisted, private and unfinished videos are never found.
Also Relay pagination, ordering, filters and typeahead suggestions, and cursors we never
issued refused as bad input."""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from tests.video.conftest import Api, Person, codes

VIDEOS = """
query V($first: Int, $after: String, $filter: VideoFilterInput, $order: VideoOrder!) {
  videos(first: $first, after: $after, filter: $filter, orderBy: $order) {
    totalCount
    edges { cursor node { id title createdAt } }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
  }
}
"""
SUGGEST = "query S($p: String!, $l: Int) { searchSuggestions(prefix: $p, limit: $l) }"

# (key, title, extra input): one owner's catalogue, made once per stack.
CATALOGUE: list[tuple[str, str, dict[str, Any]]] = [
    ("brulee", "Crème Brûlée at Home", {"categoryId": "howto-style", "tags": ["dessert"]}),
    ("salt", "Salt and Pepper Squid", {"categoryId": "howto-style", "tags": ["seafood"]}),
    ("lodz", "Walking through Łódź", {"categoryId": "travel-events", "tags": ["Poland"]}),
    ("quote", 'The "best" *star* trick', {"categoryId": "entertainment"}),
    ("garden", "Zen garden timelapse", {"description": "Raking gravel patiently.", "tags": []}),
    ("unlisted", "Crème caramel unlisted", {"visibility": "UNLISTED"}),
    ("private", "Crème anglaise private", {"visibility": "PRIVATE"}),
]


async def _catalogue(api: Api) -> tuple[Person, dict[str, str]]:
    if "search:catalogue" not in api.stack.cache:
        owner = await api.register()
        ids: dict[str, str] = {}
        # Created one by one, so creation order is well defined.
        for key, title, extra in CATALOGUE:
            ids[key] = await api.processing_video(owner, title=title, **extra)
        await asyncio.gather(*(api.finish_processing(v) for v in ids.values()))
        for video_id in ids.values():
            await api.wait_for_video(video_id, owner, lambda v: v["status"] == "READY")
        ids["processing"] = await api.processing_video(owner, title="Crème unfinished")
        api.stack.cache["search:catalogue"] = (owner, ids)
    result: tuple[Person, dict[str, str]] = api.stack.cache["search:catalogue"]
    return result


async def _search(api: Api, text: str, owner: Person, **filters: Any) -> set[str]:
    body = await api.q(
        VIDEOS,
        {
            "first": 100,
            "filter": {"search": text, "ownerId": owner.id, **filters},
            "order": "NEWEST",
        },
    )
    assert "errors" not in body, (text, body)
    return {e["node"]["id"] for e in body["data"]["videos"]["edges"]}


async def test_every_word_must_match_the_last_as_a_prefix_across_case_and_accents(
    api: Api,
) -> None:
    owner, ids = await _catalogue(api)
    brulee = {ids["brulee"]}
    for query in (
        "creme brulee",
        "CRÈME BRÛLÉE",
        "brulee creme",
        "crème brû",
        "home cre",
        "Creme, brulee!",
        "dessert",
    ):
        assert await _search(api, query, owner) == brulee, query
    assert await _search(api, "creme tart", owner) == set()
    assert await _search(api, "cre home", owner) == set()  # only the last word is a prefix
    assert await _search(api, "lodz", owner) == {ids["lodz"]}
    assert await _search(api, "ŁÓDŹ walk", owner) == {ids["lodz"]}
    assert await _search(api, "poland", owner) == {ids["lodz"]}
    assert await _search(api, "gravel patient", owner) == {ids["garden"]}


async def test_unlisted_private_and_unfinished_videos_are_never_found(api: Api) -> None:
    owner, ids = await _catalogue(api)
    found = await _search(api, "creme", owner)
    assert found == {ids["brulee"]}
    for key in ("unlisted", "private", "processing"):
        assert ids[key] not in found
    assert await _search(api, "caramel", owner) == set()
    assert await _search(api, "anglaise", owner) == set()
    # Not even for their owner: the listing is the public catalogue.
    body = await api.q(VIDEOS, {"filter": {"search": "anglaise"}, "order": "NEWEST"}, owner)
    assert body["data"]["videos"]["totalCount"] == 0


@pytest.mark.parametrize(
    "query",
    [
        '"foo*',
        "AND",
        "OR NOT",
        "NEAR(salt pepper)",
        "title:salt",
        "{title} : salt",
        "salt & pepper | !squid",
        "salt:*",
        "'; DROP TABLE videos; --",
        "\\",
        "*",
        '"',
        "^salt",
        "-salt",
        "(((",
        "\x00salt",
    ],
)
async def test_query_syntax_in_user_input_is_just_text(api: Api, query: str) -> None:
    owner, ids = await _catalogue(api)
    body = await api.q(
        VIDEOS,
        {"first": 100, "filter": {"search": query, "ownerId": owner.id}, "order": "NEWEST"},
    )
    assert "errors" not in body, (query, body)
    found = {e["node"]["id"] for e in body["data"]["videos"]["edges"]}
    words = "".join(c if c.isalnum() else " " for c in query.lower()).split()
    if words == ["and"]:
        assert found == {ids["salt"]}
    elif not words:
        assert found == set()
    assert ids["unlisted"] not in found and ids["private"] not in found
    # The table is still there, and still finds what it should.
    assert await _search(api, "salt pepper", owner) == {ids["salt"]}


async def test_quotes_and_stars_in_titles_are_found_as_words(api: Api) -> None:
    owner, ids = await _catalogue(api)
    assert await _search(api, '"best" *star*', owner) == {ids["quote"]}
    assert await _search(api, "best sta", owner) == {ids["quote"]}


async def test_filters_by_category_tags_and_owner(api: Api) -> None:
    owner, ids = await _catalogue(api)

    async def listed(**filters: Any) -> set[str]:
        body = await api.q(
            VIDEOS, {"first": 100, "filter": {"ownerId": owner.id, **filters}, "order": "NEWEST"}
        )
        assert "errors" not in body, body
        return {e["node"]["id"] for e in body["data"]["videos"]["edges"]}

    assert await listed(categoryId="howto-style") == {ids["brulee"], ids["salt"]}
    assert await listed(tags=["POLAND"]) == {ids["lodz"]}
    assert await listed(tags=["dessert", "seafood"]) == set()
    assert await listed(categoryId="howto-style", search="squid") == {ids["salt"]}
    assert await listed(categoryId="no-such-category") == set()
    everyone = await api.q(
        VIDEOS, {"first": 100, "filter": {"ownerId": str(uuid.uuid4())}, "order": "NEWEST"}
    )
    assert everyone["data"]["videos"]["totalCount"] == 0
    bad = await api.q(VIDEOS, {"filter": {"ownerId": "nope"}, "order": "NEWEST"})
    assert codes(bad) == ["BAD_USER_INPUT"]
    long = await api.q(VIDEOS, {"filter": {"search": "x" * 201}, "order": "NEWEST"})
    assert codes(long) == ["BAD_USER_INPUT"]


async def test_pages_follow_each_ordering_without_gaps_or_repeats(api: Api) -> None:
    owner, ids = await _catalogue(api)
    public = {ids[k] for k in ("brulee", "salt", "lodz", "quote", "garden")}

    async def walk(order: str) -> list[dict[str, Any]]:
        nodes: list[dict[str, Any]] = []
        after = None
        while True:
            body = await api.q(
                VIDEOS,
                {"first": 2, "after": after, "filter": {"ownerId": owner.id}, "order": order},
            )
            assert "errors" not in body, body
            page = body["data"]["videos"]
            assert page["totalCount"] == len(public)
            assert page["pageInfo"]["hasPreviousPage"] is (after is not None)
            nodes += [e["node"] for e in page["edges"]]
            if not page["pageInfo"]["hasNextPage"]:
                return nodes
            after = page["pageInfo"]["endCursor"]

    newest = await walk("NEWEST")
    oldest = await walk("OLDEST")
    by_title = await walk("TITLE")
    assert {n["id"] for n in newest} == public and len(newest) == len(public)
    assert [n["id"] for n in oldest] == [n["id"] for n in reversed(newest)]
    assert [n["id"] for n in oldest] == [
        ids[k] for k in ("brulee", "salt", "lodz", "quote", "garden")
    ]
    assert [n["title"] for n in by_title] == [
        "Crème Brûlée at Home",
        "Salt and Pepper Squid",
        'The "best" *star* trick',
        "Walking through Łódź",
        "Zen garden timelapse",
    ]

    first = await api.q(VIDEOS, {"first": 1, "filter": {"ownerId": owner.id}, "order": "TITLE"})
    cursor = first["data"]["videos"]["pageInfo"]["endCursor"]
    crossed = await api.q(VIDEOS, {"first": 1, "after": cursor, "order": "NEWEST"})
    assert codes(crossed) == ["BAD_USER_INPUT"]
    assert codes(await api.q(VIDEOS, {"after": "garbage!", "order": "NEWEST"})) == [
        "BAD_USER_INPUT"
    ]
    assert codes(await api.q(VIDEOS, {"first": 101, "order": "NEWEST"})) == ["BAD_USER_INPUT"]
    assert codes(await api.q(VIDEOS, {"first": -1, "order": "NEWEST"})) == ["BAD_USER_INPUT"]
    empty = await api.q(VIDEOS, {"first": 0, "filter": {"ownerId": owner.id}, "order": "NEWEST"})
    assert empty["data"]["videos"]["edges"] == []
    assert empty["data"]["videos"]["pageInfo"]["hasNextPage"] is True


async def test_suggestions_complete_public_titles(api: Api) -> None:
    _, ids = await _catalogue(api)
    # The catalogue's words are shared with other stacks' tests, so look for its own titles.
    suggestions = (await api.q(SUGGEST, {"p": "creme bru", "l": 20}))["data"]["searchSuggestions"]
    assert "Crème Brûlée at Home" in suggestions
    assert "Crème caramel unlisted" not in suggestions
    assert "Crème anglaise private" not in suggestions
    walking = (await api.q(SUGGEST, {"p": "walking thr"}))["data"]["searchSuggestions"]
    assert "Walking through Łódź" in walking
    # Suggestions come from titles only, not descriptions.
    assert (
        "Zen garden timelapse"
        not in (await api.q(SUGGEST, {"p": "gravel"}))["data"]["searchSuggestions"]
    )
    assert (await api.q(SUGGEST, {"p": "  ", "l": 5}))["data"]["searchSuggestions"] == []
    assert (await api.q(SUGGEST, {"p": '"*'}))["data"]["searchSuggestions"] == []
    assert codes(await api.q(SUGGEST, {"p": "a", "l": 0})) == ["BAD_USER_INPUT"]
    assert codes(await api.q(SUGGEST, {"p": "a", "l": 21})) == ["BAD_USER_INPUT"]
    one = (await api.q(SUGGEST, {"p": "c", "l": 1}))["data"]["searchSuggestions"]
    assert len(one) <= 1
    assert ids


async def test_categories_are_seeded_with_stable_ids(api: Api) -> None:
    body = await api.q("{ categories { id slug name } }")
    categories = body["data"]["categories"]
    assert 14 <= len(categories) <= 20
    assert {"id": "music", "slug": "music", "name": "Music"} in categories
    assert {"id": "other", "slug": "other", "name": "Other"} in categories
    assert len({c["id"] for c in categories}) == len(categories)


def _cursor(*values: Any) -> str:
    """A cursor crafted the way ours are made (base64url of a JSON list), with any values."""
    return base64.urlsafe_b64encode(json.dumps(list(values)).encode()).decode().rstrip("=")


SOME_ID = "00000000-0000-4000-8000-000000000000"
CRAFTED_CURSORS = [
    # A time without a zone (the finding's own cursor), and times at the calendar's ends.
    pytest.param(
        "NEWEST", "WyJORVdFU1QiLCIyMDI0LTAxLTAxVDAwOjAwOjAwIiwieCJd", id="naive-time-finding"
    ),
    pytest.param("NEWEST", _cursor("NEWEST", "2024-01-01T00:00:00", SOME_ID), id="naive-time"),
    pytest.param(
        "OLDEST", _cursor("OLDEST", "0001-01-01T00:00:00+01:00", SOME_ID), id="year-1-overflow"
    ),
    pytest.param(
        "OLDEST", _cursor("OLDEST", "9999-12-31T23:59:59-01:00", SOME_ID), id="year-9999-overflow"
    ),
    pytest.param("NEWEST", _cursor("NEWEST", "yesterday", SOME_ID), id="not-a-time"),
    # Keys of the wrong type (the finding's own TITLE cursor first), and integers too large.
    pytest.param("TITLE", "WyJUSVRMRSIsWzFdLCJ4Il0", id="title-list-finding"),
    pytest.param("TITLE", _cursor("TITLE", {"a": 1}, SOME_ID), id="title-object"),
    pytest.param("TITLE", _cursor("TITLE", 2**70, SOME_ID), id="title-huge-int"),
    pytest.param("TITLE", _cursor("TITLE", None, SOME_ID), id="title-null"),
    pytest.param("NEWEST", _cursor("NEWEST", 2**70, SOME_ID), id="time-huge-int"),
    pytest.param(
        "NEWEST", _cursor("NEWEST", ["2024-01-01T00:00:00+00:00"], SOME_ID), id="time-list"
    ),
    # A title key no title folds to: NUL (PostgreSQL refuses it in text), or too long.
    pytest.param("TITLE", _cursor("TITLE", "a\u0000b", SOME_ID), id="title-nul"),
    pytest.param("TITLE", _cursor("TITLE", "a" * 101, SOME_ID), id="title-too-long"),
    # Ids that are not ours, and orderings that are not.
    pytest.param("TITLE", _cursor("TITLE", "a", 2**70), id="id-huge-int"),
    pytest.param("TITLE", _cursor("TITLE", "a", [SOME_ID]), id="id-list"),
    pytest.param("NEWEST", _cursor("NEWEST", "2024-01-01T00:00:00+00:00", "x"), id="id-not-uuid"),
    pytest.param(
        "NEWEST", _cursor(["NEWEST"], "2024-01-01T00:00:00+00:00", SOME_ID), id="kind-list"
    ),
]


@pytest.mark.parametrize(("order", "cursor"), CRAFTED_CURSORS)
async def test_crafted_cursors_are_bad_input_on_every_connection(
    api: Api, order: str, cursor: str
) -> None:
    listed = await api.q(VIDEOS, {"first": 2, "after": cursor, "order": order})
    assert codes(listed) == ["BAD_USER_INPUT"], listed
    assert listed["errors"][0]["extensions"]["field"] == "after"
    if order == "NEWEST":
        # User.videos pages newest first with the same cursors.
        owner = await _owner(api)
        body = await api.q(
            'query U($id: ID!, $after: String) { _entities(representations: [{__typename: "User", '
            "id: $id}]) { ... on User { videos(first: 2, after: $after) { totalCount } } } }",
            {"id": owner.id, "after": cursor},
            owner,
        )
        assert codes(body) == ["BAD_USER_INPUT"], body


async def _owner(api: Api) -> Person:
    if "search:cursor-owner" not in api.stack.cache:
        api.stack.cache["search:cursor-owner"] = await api.register()
    owner: Person = api.stack.cache["search:cursor-owner"]
    return owner


async def test_a_cursor_in_any_time_zone_pages_from_the_same_instant(api: Api) -> None:
    owner, _ = await _catalogue(api)
    mine = {"ownerId": owner.id}
    first = await api.q(VIDEOS, {"first": 2, "filter": mine, "order": "NEWEST"})
    issued = first["data"]["videos"]["pageInfo"]["endCursor"]
    padded = issued + "=" * (-len(issued) % 4)
    kind, position, video_id = json.loads(base64.urlsafe_b64decode(padded))
    moment = datetime.fromisoformat(position).astimezone(timezone(timedelta(hours=-5)))
    shifted = _cursor(kind, moment.isoformat(), video_id)
    again = await api.q(VIDEOS, {"first": 2, "after": shifted, "filter": mine, "order": "NEWEST"})
    original = await api.q(VIDEOS, {"first": 2, "after": issued, "filter": mine, "order": "NEWEST"})
    assert "errors" not in again, again
    assert again["data"]["videos"]["edges"] == original["data"]["videos"]["edges"]
    assert again["data"]["videos"]["edges"], "the catalogue has more than two public videos"
