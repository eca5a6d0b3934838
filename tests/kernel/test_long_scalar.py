"""The `Long` scalar: exact 64-bit integers in and out, never floats or booleans."""

from __future__ import annotations

import strawberry

from subgraphs.kernel.graphql import subgraph_schema
from subgraphs.kernel.types import Long


@strawberry.type
class Query:
    @strawberry.field
    def echo(self, value: Long) -> Long:
        return value

    @strawberry.field
    def big(self) -> Long:
        return Long(2**62)


schema = subgraph_schema(query=Query)


def _run(
    query: str, variables: dict[str, object] | None = None
) -> strawberry.types.ExecutionResult:
    return schema.execute_sync(query, variable_values=variables)


def test_safe_integers_are_json_numbers_and_larger_ones_strings() -> None:
    assert _run("{ echo(value: 5000000000) }").data == {"echo": 5_000_000_000}
    assert _run("{ echo(value: -9007199254740991) }").data == {"echo": -(2**53 - 1)}
    assert _run("{ big }").data == {"big": str(2**62)}


def test_variables_accept_integers_and_decimal_strings() -> None:
    query = "query Q($v: Long!) { echo(value: $v) }"
    assert _run(query, {"v": 2**40}).data == {"echo": 2**40}
    assert _run(query, {"v": "123"}).data == {"echo": 123}
    assert _run(query, {"v": str(2**63 - 1)}).data == {"echo": str(2**63 - 1)}


def test_floats_booleans_and_out_of_range_values_are_refused() -> None:
    query = "query Q($v: Long!) { echo(value: $v) }"
    for bad in (1.5, 2.0, True, "1.5", "1e3", " 12", str(2**63), 2**63, -(2**63), "", None):
        result = _run(query, {"v": bad})
        assert result.errors, bad
        assert result.data is None
    for literal in ("1.5", "true", '"x"', "9223372036854775808"):
        assert _run(f"{{ echo(value: {literal}) }}").errors, literal
