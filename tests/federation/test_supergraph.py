"""The checked-in test-bed supergraph is what The Guild's composition makes of the subgraphs."""

from __future__ import annotations

import pytest

from .testbed import SUBGRAPHS
from .testbed.compose import checked_in, compose, placeholder_url, subgraph_sdls, with_urls


def test_checked_in_supergraph_is_current() -> None:
    assert compose() == checked_in(), (
        "tests/federation/testbed/supergraph.graphql is stale: "
        "run .venv/bin/python -m tests.federation.testbed.compose"
    )


def test_supergraph_uses_placeholder_urls_only() -> None:
    sdl = checked_in()
    for name in SUBGRAPHS:
        assert f'url: "{placeholder_url(name)}"' in sdl
    assert "127.0.0.1" not in sdl


def test_with_urls_rewrites_every_subgraph() -> None:
    urls = {name: f"http://127.0.0.1:{4100 + i}/graphql" for i, name in enumerate(SUBGRAPHS)}
    rewritten = with_urls(checked_in(), urls)
    assert "http://testbed/" not in rewritten
    for url in urls.values():
        assert f'url: "{url}"' in rewritten
    with pytest.raises(ValueError, match="no url"):
        with_urls(rewritten, {"accounts": "http://127.0.0.1:1/graphql"})


@pytest.mark.parametrize(
    ("name", "directives"),
    [
        ("accounts", ['@key(fields: "id owner { id }")', "@inaccessible", "@shareable"]),
        (
            "catalog",
            [
                '@key(fields: "id") @key(fields: "isbn edition")',
                'interface Media @key(fields: "id")',
                '@key(fields: "id", resolvable: false)',
                "union SearchResult",
            ],
        ),
        (
            "inventory",
            ['@requires(fields: "dimensions { weight unit }")', '@requires(fields: "priceCents")'],
        ),
        (
            "reviews",
            ['@override(from: "catalog")', '@provides(fields: "username")', "union FeedItem"],
        ),
        ("media", ['type Media @key(fields: "id") @interfaceObject']),
    ],
)
def test_subgraph_sdl_declares_its_features(name: str, directives: list[str]) -> None:
    sdl = subgraph_sdls()[name]
    assert 'federation/v2.9"' in sdl
    for directive in directives:
        assert directive in sdl
