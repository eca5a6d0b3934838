"""Shared fixtures: real PostgreSQL and Redis on this machine, and per-test data dirs."""

from __future__ import annotations

import os

import pytest

POSTGRES_URL = os.environ.get(
    "REELGRAPH_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
REDIS_URL = os.environ.get("REELGRAPH_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture(scope="session")
def postgres_url() -> str:
    return POSTGRES_URL


@pytest.fixture(scope="session")
def redis_url() -> str:
    return REDIS_URL
