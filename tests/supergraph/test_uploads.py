"""GraphQL multipart uploads through the router: the files go, streamed, to the subgraph that
owns the mutation field, and the result is joined like any other."""

from __future__ import annotations

import json

import httpx


def _multipart(router: str, size: int, *, preflight: bool = True) -> httpx.Response:
    import hashlib
    import os

    payload = os.urandom(size)
    operations = {
        "query": "mutation M($f: Upload!) { store(file: $f) { filename size sha256 thing { name } } }",
        "variables": {"f": None},
    }
    files = {"0": ("clip.bin", payload, "application/octet-stream")}
    data = {"operations": json.dumps(operations), "map": json.dumps({"0": ["variables.f"]})}
    headers = {"apollo-require-preflight": "true"} if preflight else {}
    response = httpx.post(router, data=data, files=files, headers=headers, timeout=60)
    response.sha = hashlib.sha256(payload).hexdigest()  # type: ignore[attr-defined]
    return response


def test_uploads_pass_through_to_the_owning_subgraph(stack: dict[str, str]) -> None:
    response = _multipart(stack["router"], 8 * 1024 * 1024 + 3)
    assert response.status_code == 200, response.text
    stored = response.json()["data"]["store"]
    assert stored == {
        "filename": "clip.bin",
        "size": 8 * 1024 * 1024 + 3,
        "sha256": response.sha,
        "thing": {"name": "thing 1"},
    }  # type: ignore[attr-defined]


def test_uploads_need_a_preflight_header_and_a_well_formed_map(stack: dict[str, str]) -> None:
    refused = _multipart(stack["router"], 10, preflight=False)
    assert refused.status_code == 400
    assert refused.json()["errors"][0]["extensions"]["code"] == "BAD_REQUEST"
    bad_map = httpx.post(
        stack["router"],
        data={
            "operations": json.dumps(
                {
                    "query": "mutation M($f: Upload!) { store(file: $f) { size } }",
                    "variables": {"f": None},
                }
            ),
            "map": json.dumps({"0": ["variables.f"]}),
        },
        files={"1": ("x", b"x")},
        headers={"apollo-require-preflight": "true"},
    )
    assert bad_map.status_code == 400
