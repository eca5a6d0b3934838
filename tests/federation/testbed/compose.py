"""Compose the test bed's supergraph with `@theguild/federation-composition`.

`python -m tests.federation.testbed.compose` rewrites `supergraph.graphql`; `--check` exits 1
when the checked-in file is stale. Subgraph URLs in the file are placeholders
(`http://testbed/<name>`): `with_urls` swaps in the running subgraphs' URLs.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from .. import npm
from . import SUBGRAPHS
from .app import load

HERE = Path(__file__).resolve().parent
SUPERGRAPH_PATH = HERE / "supergraph.graphql"
COMPOSITION_VERSION = "0.27.0"
GRAPHQL_JS_VERSION = "16.11.0"
PLACEHOLDER_URL = "http://testbed/{name}"


def placeholder_url(name: str) -> str:
    return PLACEHOLDER_URL.format(name=name)


def subgraph_sdl(name: str) -> str:
    """What the subgraph answers to `{ _service { sdl } }`."""
    result = load(name).schema.execute_sync("{ _service { sdl } }")
    if result.errors or result.data is None:
        raise RuntimeError(f"{name}: {result.errors}")
    return str(result.data["_service"]["sdl"])


def subgraph_sdls() -> dict[str, str]:
    return {name: subgraph_sdl(name) for name in SUBGRAPHS}


def composition_dir() -> Path:
    return npm.ensure_installed(
        f"federation-composition-{COMPOSITION_VERSION}",
        {
            "dependencies": {
                "@theguild/federation-composition": COMPOSITION_VERSION,
                "graphql": GRAPHQL_JS_VERSION,
            }
        },
    )


def compose(sdls: Mapping[str, str] | None = None) -> str:
    sdls = subgraph_sdls() if sdls is None else sdls
    services = [{"name": n, "url": placeholder_url(n), "sdl": sdl} for n, sdl in sdls.items()]
    done = subprocess.run(
        [npm.node(), str(HERE / "compose.mjs"), str(composition_dir())],
        input=json.dumps(services),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"composition crashed:\n{done.stderr}")
    result = json.loads(done.stdout)
    if "errors" in result:
        raise RuntimeError("composition failed:\n" + "\n".join(result["errors"]))
    return str(result["supergraphSdl"]).rstrip("\n") + "\n"


def checked_in() -> str:
    return SUPERGRAPH_PATH.read_text()


def with_urls(supergraph_sdl: str, urls: Mapping[str, str]) -> str:
    """The supergraph with each placeholder URL replaced by the running subgraph's URL."""
    for name, url in urls.items():
        placeholder = f'url: "{placeholder_url(name)}"'
        if placeholder not in supergraph_sdl:
            raise ValueError(f"no {placeholder} in the supergraph")
        supergraph_sdl = supergraph_sdl.replace(placeholder, f'url: "{url}"')
    return supergraph_sdl


def router_url_env(urls: Mapping[str, str]) -> dict[str, str]:
    """`REELGRAPH_SUBGRAPH_<NAME>_URL` overrides pointing our router at the running test bed."""
    return {f"REELGRAPH_SUBGRAPH_{name.upper()}_URL": url for name, url in urls.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail if supergraph.graphql is stale")
    args = parser.parse_args(argv)
    fresh = compose()
    if args.check:
        if fresh != checked_in():
            print(f"{SUPERGRAPH_PATH} is stale; run python -m tests.federation.testbed.compose")
            return 1
        return 0
    SUPERGRAPH_PATH.write_text(fresh)
    print(f"wrote {SUPERGRAPH_PATH}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
