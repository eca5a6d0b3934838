"""The router remembers operations that passed the limits, per list-size variables: a cached
pass never lets a larger `first:` through."""

from __future__ import annotations

from pathlib import Path

import pytest

from supergraph.edge.limits import OperationLimits
from supergraph.execute import Fetcher
from supergraph.pipeline import RequestError, Router

SUPERGRAPH = Path(__file__).resolve().parents[1] / "federation" / "testbed" / "supergraph.graphql"
QUERY = "query Q($n: Int, $id: ID!) { books(first: $n) { title } book(id: $id) { title } }"


def test_a_cached_pass_depends_on_the_list_size_variables() -> None:
    router = Router(SUPERGRAPH.read_text(), Fetcher({}), limits=OperationLimits(max_cost=50))
    prepared = router.prepare(QUERY, "Q")
    assert prepared.size_variables == ("n",)
    router.check_limits(prepared, "Q", {"n": 10, "id": "b1"})
    router.check_limits(prepared, "Q", {"n": 10, "id": "b2"})  # other ids share the pass
    assert router.within_limits.hits == 1
    with pytest.raises(RequestError) as exceeded:
        router.check_limits(prepared, "Q", {"n": 100, "id": "b1"})
    assert exceeded.value.errors[0]["extensions"]["code"] == "COST_LIMIT_EXCEEDED"
    with pytest.raises(RequestError):  # and a refusal is never cached as a pass
        router.check_limits(prepared, "Q", {"n": 100, "id": "b1"})
