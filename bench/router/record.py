"""Record the canned subgraph responses: `python -m bench.router.record`.

Starts the real test-bed subgraphs (`tests.federation.hive.run_testbed`), sends every
benchmark query once through our router and once through Hive Gateway, reads back from each
subgraph's `/requests` log the exact operations the gateway sent, and replays each one
against the same subgraph (the queries are read-only and the test bed is reset first, so the
replayed answer is the answer the gateway got). Writes to `bench/router/recordings/`:

- `subgraphs-reelgraph.json`, `subgraphs-hive.json`: `{subgraph, query, variables,
  operationName, response}` per subgraph request. Both are needed: Hive Gateway asks for
  fields our router never does (e.g. accounts `User.username`, which reviews `@provides`).
- `expected.json`: the client response to each benchmark query (our router's answer, checked
  equal to Hive Gateway's).
"""

from __future__ import annotations

import argparse
import json
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx

from bench.router.canned import RECORDINGS_DIR, build_store, check_store, load_exchanges
from bench.router.gateways import RunningGateway, hive_gateway, reelgraph_router
from bench.router.queries import QUERIES
from tests.federation.hive import free_port, reset_testbed, run_testbed, subgraph_requests
from tests.federation.testbed.compose import checked_in, with_urls


def _post(client: httpx.Client, url: str, body: Mapping[str, Any]) -> dict[str, Any]:
    response = client.post(url, json=body)
    response.raise_for_status()
    answer: dict[str, Any] = response.json()
    return answer


def _record_gateway(
    client: httpx.Client, gateway: RunningGateway, subgraphs: Mapping[str, str]
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    exchanges: list[dict[str, Any]] = []
    answers: dict[str, Any] = {}
    for query in QUERIES:
        reset_testbed(subgraphs)
        answer = _post(client, gateway.url, {"query": query.query})
        if answer.get("errors") or not answer.get("data"):
            raise RuntimeError(f"{gateway.label} {query.name}: {answer}")
        answers[query.name] = answer
        for name, url in subgraphs.items():
            for request in subgraph_requests(url):
                body = {
                    "query": request["query"],
                    "variables": request.get("variables") or {},
                    "operationName": request.get("operationName"),
                }
                response = _post(client, url, body)
                exchanges.append({"subgraph": name, **body, "response": response})
    return exchanges, answers


def record(directory: Path = RECORDINGS_DIR) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    with (
        tempfile.TemporaryDirectory(prefix="bench-record-") as tmp,
        run_testbed() as subgraphs,
        httpx.Client(timeout=30) as client,
    ):
        work = Path(tmp)
        sdl = with_urls(checked_in(), subgraphs)
        supergraph = work / "supergraph.graphql"
        supergraph.write_text(sdl)
        with reelgraph_router(
            supergraph, free_port(), dedupe=True, log=work / "router.log"
        ) as router:
            ours, expected = _record_gateway(client, router, subgraphs)
        with hive_gateway(sdl, free_port(), dedupe=True, fork=1, workdir=work) as gateway:
            theirs, hive_answers = _record_gateway(client, gateway, subgraphs)
    for name, answer in hive_answers.items():
        if answer != expected[name]:  # 2 == 2.0: JSON numbers compare by value
            raise RuntimeError(
                f"{name}: Hive Gateway and our router disagree on the real test bed:\n"
                f"hive: {json.dumps(answer)}\nours: {json.dumps(expected[name])}"
            )
    (directory / "subgraphs-reelgraph.json").write_text(json.dumps(ours, indent=1) + "\n")
    (directory / "subgraphs-hive.json").write_text(json.dumps(theirs, indent=1) + "\n")
    (directory / "expected.json").write_text(json.dumps(expected, indent=1) + "\n")
    exchanges = load_exchanges(directory)
    problems = check_store(build_store(exchanges), exchanges)
    if problems:
        raise RuntimeError(
            "recordings do not replay through the canned store:\n" + "\n".join(problems)
        )
    print(f"recorded {len(ours)} + {len(theirs)} subgraph exchanges into {directory}")


def load_expected(directory: Path = RECORDINGS_DIR) -> dict[str, dict[str, Any]]:
    expected: dict[str, dict[str, Any]] = json.loads((directory / "expected.json").read_text())
    return expected


def recordings_present(directory: Path = RECORDINGS_DIR) -> bool:
    return (directory / "expected.json").exists() and any(directory.glob("subgraphs-*.json"))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=RECORDINGS_DIR)
    args = parser.parse_args(argv)
    record(args.out)


if __name__ == "__main__":
    main()
