"""Session-wide test bed and Hive Gateway, shared by every module in tests/federation."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from .hive import free_port, reset_testbed, run_hive_gateway, run_testbed
from .testbed.compose import checked_in, with_urls


@dataclass(frozen=True)
class Gateway:
    """A router serving the test bed's supergraph, and the subgraphs behind it."""

    url: str
    subgraphs: dict[str, str]

    def reset(self) -> None:
        reset_testbed(self.subgraphs)


@pytest.fixture(scope="session")
def testbed() -> Iterator[dict[str, str]]:
    with run_testbed() as urls:
        yield urls


@pytest.fixture(scope="session")
def hive_gateway(testbed: dict[str, str]) -> Iterator[Gateway]:
    with run_hive_gateway(with_urls(checked_in(), testbed), free_port()) as url:
        yield Gateway(url=url, subgraphs=testbed)


@pytest.fixture(scope="session")
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=30) as client:
        yield client
