"""Run one test-bed subgraph: `python -m tests.federation.testbed.serve catalog --port 4101`."""

from __future__ import annotations

import argparse

import uvicorn

from . import SUBGRAPHS
from .app import create_app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("name", choices=SUBGRAPHS)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args(argv)
    uvicorn.run(
        create_app(args.name),
        host=args.host,
        port=args.port,
        log_level="warning",
        access_log=False,
        lifespan="off",
    )


if __name__ == "__main__":
    main()
