"""Operation limits: size and tokens on the text, depth, aliases, root fields and cost on the
parsed operation, each with its own code."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from graphql import build_schema, get_introspection_query, parse
from graphql.language import Lexer, Source, TokenKind

from supergraph.edge.errors import EdgeError
from supergraph.edge.limits import (
    OperationLimits,
    OperationMeasures,
    count_tokens,
    measure,
    select_operation,
)
from supergraph.model import build_api_schema

SCHEMA = build_schema(
    """
    interface Node { id: ID! }
    type Query {
      me: User
      user(id: ID!): User
      videos(first: Int, last: Int): [Video!]!
      feed(first: Int, after: String): VideoConnection!
      search(text: String): [SearchResult!]!
      tags: [String!]!
    }
    type Mutation { like(id: ID!): Video }
    union SearchResult = User | Video
    type User implements Node {
      id: ID!
      handle: String!
      bestFriend: User
      friends(first: Int): [User!]!
      videos(first: Int): VideoConnection!
    }
    type Video implements Node {
      id: ID!
      title: String!
      owner: User!
      comments(first: Int, last: Int): [Comment!]!
    }
    type Comment { id: ID! text: String! author: User! }
    type VideoConnection { edges: [VideoEdge!]! nodes: [Video!]! pageInfo: PageInfo! }
    type VideoEdge { cursor: String! node: Video! }
    type PageInfo { hasNextPage: Boolean! }
    """
)

NO_LIMITS = OperationLimits(
    max_depth=0,
    max_aliases=0,
    max_root_fields=0,
    max_document_bytes=0,
    max_tokens=0,
    max_cost=0,
)


def measures(
    query: str, variables: dict[str, Any] | None = None, name: str | None = None
) -> OperationMeasures:
    document = parse(query)
    operation = select_operation(document, name)
    assert operation is not None
    return measure(SCHEMA, document, operation, variables, default_list_size=20)


def check(limits: OperationLimits, query: str, variables: dict[str, Any] | None = None) -> None:
    limits.check_text(query)
    limits.check_document(SCHEMA, parse(query), None, variables)


def rejected(
    limits: OperationLimits, query: str, variables: dict[str, Any] | None = None
) -> EdgeError:
    with pytest.raises(EdgeError) as caught:
        check(limits, query, variables)
    assert caught.value.status == 400
    return caught.value


def nested(levels: int) -> str:
    """A query `levels` fields deep: `me { bestFriend { bestFriend { … id } } }`."""
    return "{ me { " + "bestFriend { " * (levels - 2) + "id" + " }" * (levels - 2) + " } }"


def lexer_count(text: str) -> int:
    lexer = Lexer(Source(text))
    count = 0
    while lexer.advance().kind != TokenKind.EOF:
        count += 1
    return count


# --- configuration ----------------------------------------------------------------------------


def test_defaults_are_the_documented_production_limits() -> None:
    limits = OperationLimits.from_env({})
    assert limits == OperationLimits(
        max_depth=15,
        max_aliases=30,
        max_root_fields=20,
        max_document_bytes=65536,
        max_tokens=5000,
        max_cost=10000,
        default_list_size=20,
    )


def test_every_limit_is_read_from_its_environment_variable() -> None:
    limits = OperationLimits.from_env(
        {
            "REELGRAPH_LIMIT_MAX_DEPTH": "4",
            "REELGRAPH_LIMIT_MAX_ALIASES": "5",
            "REELGRAPH_LIMIT_MAX_ROOT_FIELDS": "6",
            "REELGRAPH_LIMIT_MAX_DOCUMENT_BYTES": "700",
            "REELGRAPH_LIMIT_MAX_TOKENS": "80",
            "REELGRAPH_LIMIT_MAX_COST": "900",
            "REELGRAPH_LIMIT_DEFAULT_LIST_SIZE": "3",
        }
    )
    assert limits == OperationLimits(4, 5, 6, 700, 80, 900, 3)


def test_zero_turns_a_limit_off() -> None:
    limits = OperationLimits.from_env({"REELGRAPH_LIMIT_MAX_DEPTH": "0"})
    check(limits, nested(40))
    with pytest.raises(EdgeError):
        check(OperationLimits(), nested(40))


@pytest.mark.parametrize(
    "environ",
    [
        {"REELGRAPH_LIMIT_MAX_DEPTH": "ten"},
        {"REELGRAPH_LIMIT_MAX_COST": "-1"},
        {"REELGRAPH_LIMIT_DEFAULT_LIST_SIZE": "0"},
    ],
)
def test_bad_settings_fail_at_startup(environ: dict[str, str]) -> None:
    with pytest.raises(ValueError, match=r"must be|at least"):
        OperationLimits.from_env(environ)


# --- document size and tokens -----------------------------------------------------------------


def test_document_size_is_measured_in_utf8_bytes() -> None:
    query = '{ user(id: "ééé") { id } }'  # 26 characters, 29 bytes
    check(OperationLimits(max_document_bytes=29), query)
    error = rejected(OperationLimits(max_document_bytes=28), query)
    assert error.code == "DOCUMENT_TOO_LARGE"
    assert error.message == "The document is 29 bytes; the limit is 28."
    assert error.extensions == {"limit": 28, "actual": 29}


def test_token_limit_just_under_and_just_over() -> None:
    query = "{ me { id handle } }"  # { me { id handle } } = 7 tokens
    check(OperationLimits(max_tokens=7), query)
    error = rejected(OperationLimits(max_tokens=6), query)
    assert error.code == "MAX_TOKENS_EXCEEDED"
    assert error.message == "The document has 7 tokens; the limit is 6."


def test_comments_commas_and_whitespace_are_not_tokens() -> None:
    query = "# a long comment { { { {\n{ me, { id,,, } }\n# another"
    assert count_tokens(query) == 6
    check(OperationLimits(max_tokens=6), query)


@pytest.mark.parametrize(
    "text",
    [
        get_introspection_query(descriptions=True),
        'query Q($a: Float = -12.5e+3, $b: [String!] = ["x\\"y", """block "" \\""" str"""]) '
        "{ user(id: $a) @skip(if: true) { ...F, ... on User { id } } }\n"
        '# comment with a quote "\nfragment F on User { handle }',
        '{ user(id: "🎬 \\u00e9") { id } }',
        '"""description""" type T { a: [Int!]! = [0, 1.5, -2e3] }',
    ],
)
def test_token_count_agrees_with_graphql_core_lexer(text: str) -> None:
    assert count_tokens(text) == lexer_count(text)


def test_hostile_megabyte_document_is_rejected_by_size_before_anything_else() -> None:
    query = "{ me { " + "id " * 350_000 + "} }"  # ~1 MB, ~350k tokens
    started = time.perf_counter()
    error = rejected(OperationLimits(), query)
    assert error.code == "DOCUMENT_TOO_LARGE"
    assert time.perf_counter() - started < 0.1


def test_hostile_100k_token_document_is_rejected_quickly_without_a_size_limit() -> None:
    query = "{ me { " + "id " * 100_000 + "} }"
    started = time.perf_counter()
    error = rejected(OperationLimits(max_document_bytes=0), query)
    assert error.code == "MAX_TOKENS_EXCEEDED"
    assert error.message == "The document has more than 5000 tokens; the limit is 5000."
    assert time.perf_counter() - started < 0.1


@pytest.mark.parametrize(
    "query",
    ['"""\\"""' * 100_000, '"\\"' * 100_000, '"' + "\\" * 200_000, "#" * 500_000],
)
@pytest.mark.timeout(10)
def test_unterminated_strings_and_comments_are_scanned_in_linear_time(query: str) -> None:
    started = time.perf_counter()
    count_tokens(query)
    assert time.perf_counter() - started < 0.5


# --- depth ------------------------------------------------------------------------------------


def test_depth_just_under_and_just_over() -> None:
    assert measures(nested(15)).depth == 15
    check(OperationLimits(), nested(15))
    error = rejected(OperationLimits(), nested(16))
    assert error.code == "MAX_DEPTH_EXCEEDED"
    assert error.message == "The operation is 16 fields deep; the limit is 15."


def test_depth_counts_fields_inside_fragments_but_not_the_fragments() -> None:
    query = """
    { me { ...Friends } }
    fragment Friends on User { friends { ... on User { friends { id } } } }
    """
    assert measures(query).depth == 4


def test_typename_and_introspection_add_no_depth() -> None:
    assert measures("{ me { friends { __typename } } }").depth == 2
    assert measures("{ __schema { types { fields { type { ofType { name } } } } } }").depth == 0


def test_standard_introspection_query_passes_the_default_limits() -> None:
    query = get_introspection_query(descriptions=True)
    check(OperationLimits(), query)


def test_introspection_cycling_through_the_schema_is_a_depth_error() -> None:
    query = "{ __schema { types { fields { type { fields { type { fields { name } } } } } } } }"
    error = rejected(OperationLimits(), query)
    assert error.code == "MAX_DEPTH_EXCEEDED"
    check(OperationLimits(max_depth=0), query)


# --- aliases ----------------------------------------------------------------------------------


def test_aliases_just_under_and_just_over() -> None:
    def query(count: int) -> str:
        return "{ " + " ".join(f"a{i}: me {{ id }}" for i in range(count)) + " }"

    check(OperationLimits(max_root_fields=0), query(30))
    error = rejected(OperationLimits(max_root_fields=0), query(31))
    assert error.code == "MAX_ALIASES_EXCEEDED"
    assert error.message == "The operation uses 31 aliases; the limit is 30."


def test_aliases_in_a_fragment_count_once_per_spread() -> None:
    query = """
    { me { ...Names friends { ...Names } } a: me { ...Names } }
    fragment Names on User { x: handle y: handle id }
    """
    assert measures(query).aliases == 2 + 2 + 2 + 1


def test_aliases_at_every_depth_count() -> None:
    assert measures("{ me { h: handle friends { i: id } } }").aliases == 2


# --- root fields ------------------------------------------------------------------------------


def test_root_fields_just_under_and_just_over() -> None:
    fields = ["me { id }", "tags", "videos { id }", "search { __typename }"]

    def query(count: int) -> str:
        return "{ " + " ".join(f"f{i}: {fields[i % 4]}" for i in range(count)) + " }"

    check(OperationLimits(max_aliases=0), query(20))
    error = rejected(OperationLimits(max_aliases=0), query(21))
    assert error.code == "MAX_ROOT_FIELDS_EXCEEDED"
    assert error.message == "The operation selects 21 root fields; the limit is 20."


def test_root_fields_are_distinct_response_keys_with_fragments_expanded() -> None:
    query = """
    query { me { id } me { handle } tags ...Root ... on Query { tags other: tags } }
    fragment Root on Query { me { id } feed { pageInfo { hasNextPage } } }
    """
    assert measures(query).root_fields == 4  # me, tags, other, feed


def test_root_fields_of_a_mutation_count_too() -> None:
    query = 'mutation { a: like(id: "1") { id } b: like(id: "2") { id } }'
    error = rejected(OperationLimits(max_root_fields=1), query)
    assert error.code == "MAX_ROOT_FIELDS_EXCEEDED"


# --- cost -------------------------------------------------------------------------------------


def test_every_field_costs_one() -> None:
    assert measures("{ me { id handle } tags }").cost == 4


def test_lists_multiply_their_selections_by_first() -> None:
    # videos 1 + 5 * (id 1 + owner 1 + handle 1)
    assert measures("{ videos(first: 5) { id owner { handle } } }").cost == 16


def test_lists_without_first_or_last_use_the_default_list_size() -> None:
    # videos 1 + 20 * (id 1 + comments 1 + 20 * text 1)
    assert measures("{ videos { id comments { text } } }").cost == 1 + 20 * (2 + 20)


def test_last_and_the_larger_of_first_and_last_count() -> None:
    assert measures("{ videos(last: 3) { id } }").cost == 4
    assert measures("{ videos(first: 2, last: 7) { id } }").cost == 8


def test_first_from_a_variable_is_honoured() -> None:
    query = "query Q($n: Int) { videos(first: $n) { id } }"
    assert measures(query, {"n": 50}).cost == 51
    assert measures(query, {}).cost == 21  # absent: default list size
    assert measures(query, {"n": None}).cost == 21
    assert measures("query Q($n: Int = 9) { videos(first: $n) { id } }", {}).cost == 10


def test_a_variable_first_can_push_the_cost_over_the_limit() -> None:
    query = "query Q($n: Int) { videos(first: $n) { id title } }"
    limits = OperationLimits(max_cost=1001)
    check(limits, query, {"n": 500})  # 1 + 500 * 2
    error = rejected(limits, query, {"n": 501})
    assert error.code == "COST_LIMIT_EXCEEDED"
    assert error.message == "The operation's estimated cost is 1003; the limit is 1001."
    assert error.extensions == {"limit": 1001, "actual": 1003}


def test_a_connections_first_sizes_its_edges_and_nodes() -> None:
    # feed 1 + edges 1 + 10 * (node 1 + id 1) + nodes 1 + 10 * id 1 + pageInfo 1 + hasNext 1
    query = "{ feed(first: 10) { edges { node { id } } nodes { id } pageInfo { hasNextPage } } }"
    assert measures(query).cost == 1 + 1 + 20 + 1 + 10 + 1 + 1


def test_a_connection_without_first_uses_the_default_list_size() -> None:
    assert measures("{ feed { edges { cursor } } }").cost == 1 + 1 + 20


def test_fragments_inside_a_connection_inherit_its_size() -> None:
    query = "{ feed(first: 3) { ...Edges } } fragment Edges on VideoConnection { edges { cursor } }"
    assert measures(query).cost == 1 + 1 + 3


def test_nested_lists_multiply() -> None:
    query = "{ videos(first: 10) { comments(first: 10) { author { friends(first: 10) { id } } } } }"
    # videos 1 + 10 * (comments 1 + 10 * (author 1 + friends 1 + 10 * id 1))
    assert measures(query).cost == 1 + 10 * (1 + 10 * (2 + 10))


def test_fragments_and_inline_fragments_are_expanded_for_cost() -> None:
    query = """
    { search { ... on Video { title } ...U } }
    fragment U on User { handle friends(first: 2) { id } }
    """
    # search 1 + 20 * (title 1 + handle 1 + friends 1 + 2 * id 1)
    assert measures(query).cost == 1 + 20 * 5


def test_introspection_and_typename_cost_nothing() -> None:
    assert measures("{ __typename me { __typename id } }").cost == 2
    assert measures(get_introspection_query()).cost == 0


def test_cost_just_under_and_just_over() -> None:
    query = "{ videos(first: 4999) { id } }"  # 5000
    check(OperationLimits(max_cost=5000), query)
    assert rejected(OperationLimits(max_cost=4999), query).code == "COST_LIMIT_EXCEEDED"


def test_cost_on_the_real_api_schema_follows_relay_connections() -> None:
    sdl = (Path(__file__).parents[2] / "schema" / "supergraph.graphql").read_text()
    api = build_api_schema(sdl)
    query = "{ users(first: 10) { edges { node { id handle } } pageInfo { hasNextPage } } }"
    document = parse(query)
    operation = select_operation(document, None)
    assert operation is not None
    # users 1 + edges 1 + 10 * (node 1 + id 1 + handle 1) + pageInfo 1 + hasNextPage 1
    assert measure(api, document, operation, None, 20).cost == 34


# --- documents the pipeline would reject, and hostile ones ----------------------------------


def test_recursive_named_fragments_terminate_without_validation() -> None:
    query = """
    { me { ...A } }
    fragment A on User { friends { ...B } }
    fragment B on User { id ...A }
    """
    result = measures(query)
    assert result.depth == 3
    NO_LIMITS.check_document(SCHEMA, parse(query), None, None)


def test_a_self_spreading_fragment_terminates() -> None:
    measures("{ me { ...A } } fragment A on User { id ...A }")


@pytest.mark.timeout(10)
def test_exponential_fragment_spreads_are_measured_quickly_and_rejected() -> None:
    fragments = ["fragment F0 on User { a: id }"] + [
        f"fragment F{i} on User {{ ...F{i - 1} friends {{ ...F{i - 1} }} }}" for i in range(1, 60)
    ]
    query = "{ me { ...F59 } } " + " ".join(fragments)
    started = time.perf_counter()
    result = measures(query)
    assert result.aliases == 2**59
    error = rejected(OperationLimits(max_depth=0, max_tokens=0), query)
    assert error.code == "MAX_ALIASES_EXCEEDED"
    assert time.perf_counter() - started < 0.5


def test_a_long_chain_of_fragments_does_not_recurse() -> None:
    chain = [f"fragment F{i} on User {{ bestFriend {{ ...F{i + 1} }} }}" for i in range(1500)]
    query = "{ me { ...F0 } } " + " ".join(chain) + " fragment F1500 on User { id }"
    assert measures(query).depth == 1502


def test_unknown_fields_and_fragments_are_measured_without_type_information() -> None:
    assert measures("{ nope { deeper { id } } me { ...Missing } }").depth == 3


def test_the_named_operation_is_the_one_measured() -> None:
    query = f"query Small {{ me {{ id }} }} query Deep {nested(20)}"
    document = parse(query)
    OperationLimits().check_document(SCHEMA, document, "Small", None)
    with pytest.raises(EdgeError):
        OperationLimits().check_document(SCHEMA, document, "Deep", None)
    # No operation can be selected: left for the pipeline to report.
    OperationLimits().check_document(SCHEMA, document, None, None)
    OperationLimits().check_document(SCHEMA, document, "Missing", None)
