"""Composition: what each Federation 2 feature composes to, the issues each rule reports, the
checked-in supergraph, and agreement with The Guild's composition on varied subgraph sets."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner
from graphql import GraphQLObjectType, build_ast_schema, parse

from reelgraph import cli
from reelgraph.services import service_names
from subgraphs.auth.schema import schema as auth_schema
from subgraphs.kernel.settings import DEFAULT_PORTS
from supergraph.compose import CompositionError, CompositionIssue, SubgraphSource, compose

from .compose_fixtures import REELGRAPH_VIDEO, REFERENCE_SETS
from .compose_reference import ReferenceResult, reference_compose, supergraph_facts, url_of

REPO = Path(__file__).resolve().parents[2]
SCHEMA_DIR = REPO / "schema"
# The checked-in supergraph routes to the default service URLs.
DEFAULT_URLS: dict[str, str | None] = {
    "REELGRAPH_HOST": None,
    **{f"REELGRAPH_{name.upper()}_PORT": None for name in service_names()},
}


def fed(*imports: str, version: str = "v2.9") -> str:
    names = ", ".join(f'"@{name}"' for name in imports)
    return (
        f'extend schema @link(url: "https://specs.apollo.dev/federation/{version}", '
        f"import: [{names}])\n"
    )


FED = fed("key", "shareable", "external", "requires", "provides", "override", "inaccessible", "tag")


def composed(**sdls: str) -> str:
    return compose([SubgraphSource(name, url_of(name), sdl) for name, sdl in sdls.items()])


def issues_of(**sdls: str) -> list[CompositionIssue]:
    with pytest.raises(CompositionError) as raised:
        composed(**sdls)
    return raised.value.issues


def block(sdl: str, head: str) -> str:
    """The printed definition starting with `head` (e.g. "type User"), with its description."""
    for chunk in sdl.split("\n\n"):
        body = chunk.rsplit('"""\n', 1)[-1] if chunk.startswith('"""') else chunk
        if re.match(rf"{re.escape(head)}\b", body):
            return chunk
    raise AssertionError(f"{head} not in supergraph:\n{sdl}")


def auth_sdl() -> str:
    result = auth_schema.execute_sync("{ _service { sdl } }")
    assert result.data is not None
    return str(result.data["_service"]["sdl"])


# -- features -------------------------------------------------------------------------------------


def test_entity_keys_single_multiple_composite_and_nested_become_join_types() -> None:
    sdl = composed(
        users=FED
        + """
        type Query { user: User }
        type User @key(fields: "id") @key(fields: "email") { id: ID! email: String! }
        """,
        orders=FED
        + """
        type Query { order: Order }
        type Order @key(fields: "id owner { id }") { id: ID! owner: User! }
        type User @key(fields: "id") { id: ID! orders: [Order!] }
        """,
    )
    assert block(sdl, "type User") == (
        'type User @join__type(graph: ORDERS, key: "id") @join__type(graph: USERS, key: "id") '
        '@join__type(graph: USERS, key: "email") {\n'
        "  id: ID!\n"
        "  orders: [Order!] @join__field(graph: ORDERS)\n"
        "  email: String! @join__field(graph: USERS)\n"
        "}"
    )
    assert '@join__type(graph: ORDERS, key: "id owner { id }")' in block(sdl, "type Order")


def test_a_key_that_is_not_resolvable_is_marked_so() -> None:
    sdl = composed(
        a=FED + 'type Query { t: T } type T @key(fields: "id") { id: ID! x: Int }',
        b=FED + 'type Query { u: T } type T @key(fields: "id", resolvable: false) { id: ID! }',
    )
    assert '@join__type(graph: B, key: "id", resolvable: false)' in block(sdl, "type T")


def test_shareable_value_types_need_no_join_field_when_defined_everywhere() -> None:
    sdl = composed(
        a=FED + "type Query { a: Money } type Money @shareable { amount: Int currency: String }",
        b=FED + "type Query { b: Money } type Money { amount: Int @shareable currency: String "
        "@shareable }",
    )
    assert block(sdl, "type Money") == (
        "type Money @join__type(graph: A) @join__type(graph: B) {\n"
        "  amount: Int\n"
        "  currency: String\n"
        "}"
    )


def test_nullability_differences_give_the_nullable_type_and_per_graph_types() -> None:
    sdl = composed(
        a=FED + "type Query { a: P } type P @shareable { x: Int! }",
        b=FED + "type Query { b: P } type P @shareable { x: Int }",
    )
    assert (
        'x: Int @join__field(graph: A, type: "Int!") @join__field(graph: B, type: "Int")'
        in block(sdl, "type P")
    )


def test_external_requires_and_provides_are_recorded_with_their_field_sets() -> None:
    sdl = composed(
        products=FED
        + """
        type Query { products: [Product] }
        type Product @key(fields: "id") { id: ID! name: String weight: Int size: Size }
        type Size @shareable { w: Int h: Int }
        """,
        shipping=FED
        + """
        type Product @key(fields: "id") {
          id: ID!
          weight: Int @external
          size: Size @external
          estimate: Int @requires(fields: "weight size { w h }")
        }
        type Size @shareable { w: Int h: Int }
        """,
        reviews=FED
        + """
        type Query { review: Review }
        type Review { product: Product @provides(fields: "name") }
        type Product @key(fields: "id") { id: ID! name: String @external }
        """,
    )
    product = block(sdl, "type Product")
    assert (
        "weight: Int @join__field(graph: PRODUCTS) @join__field(graph: SHIPPING, external: true)"
        in product
    )
    assert 'estimate: Int @join__field(graph: SHIPPING, requires: "weight size{w h}")' in product
    assert (
        "name: String @join__field(graph: PRODUCTS) @join__field(graph: REVIEWS, external: true)"
        in product
    )
    assert 'product: Product @join__field(graph: REVIEWS, provides: "name")' in block(
        sdl, "type Review"
    )


def test_override_moves_a_field_and_a_label_marks_a_progressive_override() -> None:
    sdl = composed(
        old=FED + 'type Query { t: T } type T @key(fields: "id") { id: ID! a: Int b: Int }',
        new=FED + 'type T @key(fields: "id") { id: ID! a: Int @override(from: "old") '
        'b: Int @override(from: "old", label: "percent(10)") }',
    )
    t = block(sdl, "type T")
    assert 'a: Int @join__field(graph: NEW, override: "old")\n' in t
    assert (
        'b: Int @join__field(graph: NEW, override: "old", overrideLabel: "percent(10)") '
        '@join__field(graph: OLD, overrideLabel: "percent(10)")'
    ) in t


def test_inaccessible_and_tag_are_kept_and_link_their_specs() -> None:
    sdl = composed(
        a=fed("key", "inaccessible", "tag")
        + 'type Query { a: Int @tag(name: "public") secret: Int @inaccessible }'
    )
    assert '@link(url: "https://specs.apollo.dev/tag/v0.3")' in sdl
    assert '@link(url: "https://specs.apollo.dev/inaccessible/v0.2", for: SECURITY)' in sdl
    assert "directive @inaccessible on FIELD_DEFINITION" in sdl
    query = block(sdl, "type Query")
    assert 'a: Int @tag(name: "public")' in query
    assert "secret: Int @inaccessible" in query


def test_renamed_imports_and_federation_prefix_are_understood() -> None:
    sdl = composed(
        a='extend schema @link(url: "https://specs.apollo.dev/federation/v2.3", '
        'import: [{ name: "@key", as: "@id" }, { name: "@tag", as: "@label" }])\n'
        'type Query { t: T @label(name: "x") } type T @id(fields: "id") @federation__shareable '
        "{ id: ID! }"
    )
    assert '@join__type(graph: A, key: "id")' in block(sdl, "type T")
    assert 't: T @tag(name: "x")' in block(sdl, "type Query")


def test_entity_interfaces_and_interface_objects_compose() -> None:
    sdl = composed(
        catalog=fed("key", version="v2.3")
        + """
        type Query { media: [Media] }
        interface Media @key(fields: "id") { id: ID! title: String }
        type Book implements Media @key(fields: "id") { id: ID! title: String }
        """,
        ratings=fed("key", "interfaceObject", version="v2.3")
        + 'type Media @key(fields: "id") @interfaceObject { id: ID! stars: Int }',
    )
    media = block(sdl, "interface Media")
    assert '@join__type(graph: RATINGS, key: "id", isInterfaceObject: true)' in media
    assert "stars: Int @join__field(graph: RATINGS)" in media
    book = block(sdl, "type Book")
    assert '@join__implements(graph: CATALOG, interface: "Media")' in book
    assert "stars: Int @join__field\n" in book


def test_unions_merge_members_per_subgraph() -> None:
    sdl = composed(
        a=FED + "type Query { a: R @shareable } union R = X type X { x: Int }",
        b=FED + "type Query { a: R @shareable } union R = Y type Y { y: Int }",
    )
    assert block(sdl, "union R") == (
        "union R @join__type(graph: A) @join__type(graph: B) "
        '@join__unionMember(graph: A, member: "X") @join__unionMember(graph: B, member: "Y") '
        "= X | Y"
    )


def test_output_enums_take_every_value_and_input_enums_the_common_ones() -> None:
    sdl = composed(
        a=FED + "type Query { o: Out i(e: In): Int } enum Out { A B } enum In { A B }",
        b=FED + "type Query { p: Out j(e: In): Int } enum Out { B C } enum In { B C }",
    )
    assert re.findall(r"^  (\w+) ", block(sdl, "enum Out"), re.M) == ["A", "B", "C"]
    assert re.findall(r"^  (\w+) ", block(sdl, "enum In"), re.M) == ["B"]


def test_input_types_keep_common_fields_with_the_strictest_type() -> None:
    sdl = composed(
        a=FED + "type Query { a(f: F): Int } input F { x: Int! y: Int only: Int }",
        b=FED + "type Query { b(f: F): Int } input F { x: Int y: Int }",
    )
    assert block(sdl, "input F") == (
        "input F @join__type(graph: A) @join__type(graph: B) {\n"
        '  x: Int! @join__field(graph: A, type: "Int!") @join__field(graph: B, type: "Int")\n'
        "  y: Int\n"
        "}"
    )


def test_scalars_descriptions_deprecations_and_defaults_survive() -> None:
    sdl = composed(
        a=FED
        + '''
        "When"
        scalar Instant @specifiedBy(url: "https://example.com/instant")
        type Query {
          """Now, or later."""
          now(zone: String = "UTC"): Instant @deprecated(reason: "use clock")
        }
        '''
    )
    assert block(sdl, "scalar Instant") == (
        '"""\nWhen\n"""\nscalar Instant @join__type(graph: A) '
        '@specifiedBy(url: "https://example.com/instant")'
    )
    assert (
        '  """\n  Now, or later.\n  """\n'
        '  now(zone: String = "UTC"): Instant @deprecated(reason: "use clock")'
    ) in block(sdl, "type Query")


def test_renamed_root_types_become_query_mutation_and_subscription() -> None:
    sdl = composed(
        a=FED
        + "schema { query: Q mutation: M subscription: S }\n"
        + "type Q { a: Int } type M { b: Int } type S { c: Int }"
    )
    schema = block(sdl, "schema")
    assert "query: Query\n  mutation: Mutation\n  subscription: Subscription" in schema
    assert "type Query @join__type(graph: A)" in sdl
    assert "type Q " not in sdl


def test_subgraph_protocol_machinery_is_stripped() -> None:
    sdl = composed(auth=auth_sdl())
    for machinery in ("_entities", "_service", "_Any", "_Entity", "_Service", "federation__"):
        assert machinery not in sdl


def test_composed_directives_keep_their_definition_link_and_applications() -> None:
    sdl = composed(
        a=fed("key", "composeDirective")
        + '  @link(url: "https://example.com/cache/v1.0", import: ["@cache"])\n'
        '  @composeDirective(name: "@cache")\n'
        "directive @cache(ttl: Int) on FIELD_DEFINITION\n"
        "type Query { a: Int @cache(ttl: 5) }"
    )
    assert '@link(url: "https://example.com/cache/v1.0", import: ["@cache"])' in sdl
    assert "directive @cache(ttl: Int) on FIELD_DEFINITION" in sdl
    assert "a: Int @cache(ttl: 5)" in block(sdl, "type Query")


@pytest.mark.parametrize(
    ("version", "join"), [("v2.3", "v0.3"), ("v2.7", "v0.4"), ("v2.9", "v0.5")]
)
def test_the_join_spec_version_follows_the_highest_federation_version(
    version: str, join: str
) -> None:
    sdl = composed(
        a=fed("key", version="v2.0") + "type Query { a: Int }",
        b=fed("key", version=version) + "type Query { b: Int }",
    )
    assert f'@link(url: "https://specs.apollo.dev/join/{join}", for: EXECUTION)' in sdl


def test_graph_enum_values_are_constant_cased_sorted_and_unique() -> None:
    sdl = composed(
        **{
            "reviewsV2": FED + "type Query { a: Int }",
            "reviews_v2": FED + "type Query { b: Int }",
            "accounts": FED + "type Query { c: Int }",
        }
    )
    assert re.findall(r"^  (\w+) @join__graph", sdl, re.M) == [
        "ACCOUNTS",
        "REVIEWS_V2_1",
        "REVIEWS_V2_2",
    ]


def test_output_is_deterministic() -> None:
    sets = [dict(reversed(list(s.items()))) for s in REFERENCE_SETS.values()]
    for original, reordered in zip(REFERENCE_SETS.values(), sets, strict=True):
        assert composed(**original) == composed(**reordered)


# -- rules ---------------------------------------------------------------------------------------

KEYED_T = 'type Query { t: T } type T @key(fields: "id") { id: ID! }'

RULES: list[tuple[str, dict[str, str], str, tuple[str, ...], str | None]] = [
    (
        "incompatible field types",
        {
            "a": FED + "type Query { a: T } type T @shareable { x: Int }",
            "b": FED + "type Query { b: T } type T @shareable { x: String }",
        },
        "FIELD_TYPE_MISMATCH",
        ("a", "b"),
        "T.x",
    ),
    (
        "incompatible input field types",
        {
            "a": FED + "type Query { a(i: I): Int } input I { x: Int }",
            "b": FED + "type Query { b(i: I): Int } input I { x: [Int] }",
        },
        "FIELD_TYPE_MISMATCH",
        ("a", "b"),
        "I.x",
    ),
    (
        "non-shareable field in two subgraphs",
        {
            "a": FED + "type Query { a: T } type T { x: Int }",
            "b": FED + "type Query { b: T } type T { x: Int }",
        },
        "INVALID_FIELD_SHARING",
        ("a", "b"),
        "T.x",
    ),
    (
        "field only in a subgraph that cannot be entered",
        {
            "a": FED + KEYED_T,
            "b": FED + "type T { id: ID! @shareable age: Int }",
        },
        "SATISFIABILITY_ERROR",
        ("b",),
        "T.age",
    ),
    (
        "field only behind a key that is not resolvable",
        {
            "a": FED + KEYED_T,
            "b": FED + 'type T @key(fields: "id", resolvable: false) { id: ID! age: Int }',
        },
        "SATISFIABILITY_ERROR",
        ("b",),
        "T.age",
    ),
    (
        "external field nobody resolves",
        {
            "a": FED + KEYED_T,
            "b": FED
            + 'type T @key(fields: "id") { id: ID! w: Int @external x: Int @requires(fields: "w") }',
        },
        "EXTERNAL_MISSING_ON_BASE",
        ("b",),
        "T.w",
    ),
    (
        "key that does not parse",
        {"a": FED + 'type Query { t: T } type T @key(fields: "id {") { id: ID! }'},
        "KEY_INVALID_FIELDS",
        ("a",),
        "T",
    ),
    (
        "key on an unknown field",
        {"a": FED + 'type Query { t: T } type T @key(fields: "uuid") { id: ID! }'},
        "KEY_INVALID_FIELDS",
        ("a",),
        "T",
    ),
    (
        "key selecting a list",
        {"a": FED + 'type Query { t: T } type T @key(fields: "ids") { ids: [ID!]! }'},
        "KEY_FIELDS_SELECT_INVALID_TYPE",
        ("a",),
        "T",
    ),
    (
        "key selecting a field with arguments",
        {"a": FED + 'type Query { t: T } type T @key(fields: "id") { id(v: Int): ID! }'},
        "KEY_FIELDS_HAS_ARGS",
        ("a",),
        "T",
    ),
    (
        "requires on an unknown nested field",
        {
            "a": FED + 'type Query { t: T } type T @key(fields: "id") { id: ID! d: D }'
            " type D @shareable { w: Int }",
            "b": FED
            + 'type T @key(fields: "id") { id: ID! d: D @external x: Int @requires(fields: "d { h }") }'
            " type D @shareable { w: Int }",
        },
        "REQUIRES_INVALID_FIELDS",
        ("b",),
        "T.x",
    ),
    (
        "requires on a field the subgraph resolves itself",
        {
            "a": FED + 'type Query { t: T } type T @key(fields: "id") { id: ID! w: Int x: Int '
            '@requires(fields: "w") }'
        },
        "REQUIRES_FIELDS_MISSING_EXTERNAL",
        ("a",),
        "T.x",
    ),
    (
        "provides an unknown field",
        {
            "a": FED + 'type Query { t: T @provides(fields: "name") } type T @key(fields: "id") '
            "{ id: ID! }",
        },
        "PROVIDES_INVALID_FIELDS",
        ("a",),
        "Query.t",
    ),
    (
        "provides on a scalar field",
        {"a": FED + 'type Query { n: Int @provides(fields: "x") }'},
        "PROVIDES_ON_NON_OBJECT_FIELD",
        ("a",),
        "Query.n",
    ),
    (
        "unknown field type",
        {"a": FED + "type Query { a: Thing }"},
        "INVALID_GRAPHQL",
        ("a",),
        "Query.a",
    ),
    (
        "unknown argument type",
        {"a": FED + "type Query { a(by: Sort): Int }"},
        "INVALID_GRAPHQL",
        ("a",),
        "Query.a(by:)",
    ),
    (
        "enum used as input and output with different values",
        {
            "a": FED + "type Query { a(e: E): E } enum E { A B }",
            "b": FED + "type Query { b: E } enum E { A }",
        },
        "ENUM_VALUE_MISMATCH",
        ("a", "b"),
        "E.B",
    ),
    (
        "input enum with no common value",
        {
            "a": FED + "type Query { a(e: E): Int } enum E { A }",
            "b": FED + "type Query { b(e: E): Int } enum E { B }",
        },
        "EMPTY_MERGED_ENUM_TYPE",
        ("a", "b"),
        "E",
    ),
    (
        "type of two kinds",
        {
            "a": FED + "type Query { a: T } type T { x: Int }",
            "b": FED + "type Query { b: T } interface T { x: Int }",
        },
        "TYPE_KIND_MISMATCH",
        ("a", "b"),
        "T",
    ),
    (
        "override from itself",
        {"a": FED + 'type Query { a: Int @override(from: "a") }'},
        "OVERRIDE_FROM_SELF_ERROR",
        ("a",),
        "Query.a",
    ),
    (
        "argument types disagree",
        {
            "a": FED + "type Query { a(x: Int): Int @shareable }",
            "b": FED + "type Query { a(x: String): Int @shareable }",
        },
        "FIELD_ARGUMENT_TYPE_MISMATCH",
        ("a", "b"),
        "Query.a(x:)",
    ),
    (
        "unused external",
        {"a": FED + 'type Query { t: T } type T @key(fields: "id") { id: ID! x: Int @external }'},
        "EXTERNAL_UNUSED",
        ("a",),
        "T.x",
    ),
    (
        "federation directive used without importing it",
        {"a": fed("key") + "type Query { a: Int @shareable }"},
        "INVALID_GRAPHQL",
        ("a",),
        "Query.a",
    ),
    (
        "no query root anywhere",
        {"a": FED + "type T { x: Int }"},
        "NO_QUERIES",
        ("a",),
        None,
    ),
    (
        "federation 1 subgraph",
        {"a": "type Query { a: Int }"},
        "UNSUPPORTED_FEATURE",
        ("a",),
        None,
    ),
]


@pytest.mark.parametrize(
    ("sdls", "code", "subgraphs", "coordinate"),
    [pytest.param(*rule[1:], id=rule[0]) for rule in RULES],
)
def test_each_rule_names_its_code_subgraphs_and_coordinate(
    sdls: dict[str, str], code: str, subgraphs: tuple[str, ...], coordinate: str | None
) -> None:
    issues = issues_of(**sdls)
    assert [(i.code, i.subgraphs, i.coordinate) for i in issues] == [
        (code, subgraphs, coordinate)
    ], "\n".join(map(str, issues))


def test_every_issue_of_a_stage_is_reported_at_once() -> None:
    issues = issues_of(
        a=FED + 'type Query { t: T @provides(fields: "nope") } type T @key(fields: "uuid") '
        "{ id: ID! }",
        b=FED + "type Query { b: Missing }",
    )
    assert {(i.code, i.coordinate) for i in issues} == {
        ("PROVIDES_INVALID_FIELDS", "Query.t"),
        ("KEY_INVALID_FIELDS", "T"),
        ("INVALID_GRAPHQL", "Query.b"),
    }


def test_issue_messages_read_like_the_reference_ones() -> None:
    (issue,) = issues_of(
        a=FED + "type Query { a: T } type T @shareable { x: Int }",
        b=FED + "type Query { b: T } type T @shareable { x: String }",
    )
    assert issue.message == (
        'Type of field "T.x" is incompatible across subgraphs: it has type "Int" in subgraph '
        '"a" but type "String" in subgraph "b"'
    )


# -- against The Guild's composition ---------------------------------------------------------------


def _reference_sets() -> dict[str, dict[str, str]]:
    return {**REFERENCE_SETS, "reelgraph": {"auth": auth_sdl(), "video": REELGRAPH_VIDEO}}


@pytest.fixture(scope="module")
def reference() -> dict[str, ReferenceResult]:
    sets = _reference_sets()
    return dict(zip(sets, reference_compose(list(sets.values())), strict=True))


@pytest.mark.parametrize("name", [*REFERENCE_SETS, "reelgraph"])
def test_supergraph_matches_the_guilds_composition(
    name: str, reference: dict[str, ReferenceResult]
) -> None:
    expected = reference[name]
    assert expected.supergraph is not None, expected.errors
    ours = composed(**_reference_sets()[name])
    assert supergraph_facts(ours) == supergraph_facts(expected.supergraph)
    assert ours == expected.supergraph


def test_the_semantic_comparison_sees_a_missing_join_field(
    reference: dict[str, ReferenceResult],
) -> None:
    expected = reference["override"].supergraph
    assert expected is not None
    edited = expected.replace(' @join__field(graph: BILLING, override: "legacy")', "", 1)
    assert edited != expected
    assert supergraph_facts(edited) != supergraph_facts(expected)


def test_error_codes_match_the_guilds_composition() -> None:
    # Ours alone: Federation 1 subgraphs are refused, and (as Apollo does) list-typed keys.
    ours_only = {"UNSUPPORTED_FEATURE", "KEY_FIELDS_SELECT_INVALID_TYPE"}
    cases = [rule for rule in RULES if rule[2] not in ours_only]
    results = reference_compose([sdls for _, sdls, *_ in cases])
    for (name, sdls, *_), result in zip(cases, results, strict=True):
        assert {i.code for i in issues_of(**sdls)} == {code for code, _ in result.errors}, name


# -- the checked-in supergraph -----------------------------------------------------------------------


def test_checked_in_schema_is_up_to_date() -> None:
    result = CliRunner().invoke(
        cli.main, ["compose", "--check", "--out", str(SCHEMA_DIR)], env=DEFAULT_URLS
    )
    assert result.exit_code == 0, result.output


def test_check_names_the_stale_file(tmp_path: Path) -> None:
    shutil.copytree(SCHEMA_DIR, tmp_path, dirs_exist_ok=True)
    (tmp_path / "supergraph.graphql").write_text("type Query { stale: Int }\n")
    result = CliRunner().invoke(
        cli.main, ["compose", "--check", "--out", str(tmp_path)], env=DEFAULT_URLS
    )
    assert result.exit_code == 1
    assert f"{tmp_path / 'supergraph.graphql'} is stale" in result.output
    assert "auth.graphql" not in result.output


def test_compose_writes_each_subgraph_and_the_supergraph(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli.main, ["compose", "--out", str(tmp_path / "out")], env=DEFAULT_URLS
    )
    assert result.exit_code == 0, result.output
    assert (tmp_path / "out" / "auth.graphql").read_text() == auth_sdl() + "\n"
    assert (tmp_path / "out" / "supergraph.graphql").read_text() == (
        SCHEMA_DIR / "supergraph.graphql"
    ).read_text()


def test_from_urls_asks_each_running_service_for_its_sdl(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[str] = []
    services = {f"http://127.0.0.1:{DEFAULT_PORTS[name]}/graphql": name for name in service_names()}

    def post(url: str, **kwargs: object) -> httpx.Response:
        asked.append(url)
        assert kwargs["json"] == {"query": "{ _service { sdl } }"}
        body = {"data": {"_service": {"sdl": cli._in_process_sdl(services[url])}}}
        return httpx.Response(200, json=body, request=httpx.Request("POST", url))

    monkeypatch.setattr(httpx, "post", post)
    result = CliRunner().invoke(
        cli.main, ["compose", "--from-urls", "--out", str(tmp_path)], env=DEFAULT_URLS
    )
    assert result.exit_code == 0, result.output
    assert asked == list(services)
    assert asked[0] == "http://127.0.0.1:4001/graphql"
    assert (tmp_path / "supergraph.graphql").read_text() == (
        SCHEMA_DIR / "supergraph.graphql"
    ).read_text()


def test_from_urls_reports_a_service_that_is_down(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli.main,
        ["compose", "--from-urls", "--out", str(tmp_path)],
        env={"REELGRAPH_HOST": None, "REELGRAPH_AUTH_PORT": "9"},
    )
    assert result.exit_code == 1
    assert "cannot fetch the SDL of http://127.0.0.1:9/graphql" in result.output


def test_a_composition_failure_prints_every_issue_and_exits_non_zero(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cli, "_in_process_sdl", lambda name: FED + "type Query { a: Nope }")
    result = CliRunner().invoke(cli.main, ["compose", "--out", str(tmp_path)])
    assert result.exit_code == 1
    assert 'INVALID_GRAPHQL at Query.a [auth]: [auth] Unknown type "Nope".' in result.output
    assert not list(tmp_path.iterdir())


def test_the_product_supergraph_loads_in_graphql_core() -> None:
    schema = build_ast_schema(parse((SCHEMA_DIR / "supergraph.graphql").read_text()))
    query = schema.query_type
    assert isinstance(query, GraphQLObjectType)
    assert {"me", "user", "userByHandle", "users", "video", "videos"} <= set(query.fields)
    graphs = schema.get_type("join__Graph")
    assert graphs is not None
    assert list(getattr(graphs, "values", {})) == sorted(name.upper() for name in service_names())
    user = schema.get_type("User")
    assert user is not None and user.ast_node is not None
    joins = [d for d in user.ast_node.directives or () if d.name.value == "join__type"]
    assert joins and len(joins) == len(user.ast_node.directives or ())
