"""`python -m tests.supergraph.failing.serve stable|flaky --port N [--mode M]`."""

from __future__ import annotations

import argparse

import uvicorn

from tests.supergraph.failing.apps import create_app


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("name", choices=["stable", "flaky", "events"])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--mode", default="ok", choices=["ok", "slow", "malformed", "http500"])
    args = parser.parse_args()
    uvicorn.run(
        create_app(args.name, args.mode), host="127.0.0.1", port=args.port, log_level="warning"
    )


if __name__ == "__main__":
    main()
