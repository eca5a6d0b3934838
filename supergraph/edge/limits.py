"""Operation limits: document size and tokens on the raw text, then depth, aliases, root fields
and estimated cost on the parsed operation; each exceeded limit is an `EdgeError`."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, fields
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLInterfaceType,
    GraphQLList,
    GraphQLNamedType,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    SelectionNode,
    SelectionSetNode,
    ValueNode,
    VariableNode,
    get_named_type,
    get_nullable_type,
    validate,
)
from graphql.validation import MaxIntrospectionDepthRule

from supergraph.edge.errors import EdgeError

ENV_PREFIX = "REELGRAPH_LIMIT_"

# The arguments whose value is the number of items a list field returns.
SLICING_ARGUMENTS = ("first", "last")

# One GraphQL lexical token: block string, string, spread, punctuator, name, number; or a
# comment, which is matched so its text is skipped but not counted. Unterminated strings end
# where they stop, so every position matches at most once and the scan stays linear.
_LEXEME = re.compile(
    r'"""(?:\\"""|[^"]|"(?!""))*+(?:""")?'
    r'|"(?:[^"\\\n\r]|\\[^\n\r])*+"?'
    r"|\.\.\."
    r"|[!$&()\[\]{}:=@|]"
    r"|[_A-Za-z][_0-9A-Za-z]*+"
    r"|-?[0-9]++(?:\.[0-9]++)?(?:[eE][+-]?[0-9]++)?"
    r"|#[^\n\r]*+"
)


def count_tokens(text: str, stop_after: int | None = None) -> int:
    """The lexical tokens of a GraphQL document, as graphql-core's lexer counts them (comments,
    whitespace and commas are not tokens), without building any AST. Counting stops once
    `stop_after` is passed, so the result is then `stop_after + 1`."""
    count = 0
    for match in _LEXEME.finditer(text):
        if text[match.start()] == "#":
            continue
        count += 1
        if stop_after is not None and count > stop_after:
            break
    return count


@dataclass(frozen=True)
class OperationMeasures:
    """What the limits look at in one operation, fragments expanded."""

    depth: int
    aliases: int
    root_fields: int
    cost: int
    introspection: bool


@dataclass(frozen=True)
class OperationLimits:
    """Each limit is on when positive; 0 turns it off. `default_list_size` is at least 1."""

    max_depth: int = 15
    max_aliases: int = 30
    max_root_fields: int = 20
    max_document_bytes: int = 64 * 1024
    max_tokens: int = 5000
    max_cost: int = 10_000
    default_list_size: int = 20

    def __post_init__(self) -> None:
        for field in fields(self):
            value = getattr(self, field.name)
            if not isinstance(value, int) or value < 0:
                raise ValueError(f"{field.name} must be a non-negative integer, not {value!r}")
        if self.default_list_size < 1:
            raise ValueError("default_list_size must be at least 1")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> OperationLimits:
        """`REELGRAPH_LIMIT_<FIELD>` for each field, e.g. `REELGRAPH_LIMIT_MAX_DEPTH=10`."""
        env = os.environ if environ is None else environ
        values: dict[str, int] = {}
        for field in fields(cls):
            name = ENV_PREFIX + field.name.upper()
            raw = env.get(name, "").strip()
            if not raw:
                continue
            try:
                values[field.name] = int(raw)
            except ValueError:
                raise ValueError(f"{name} must be an integer, not {raw!r}") from None
        return cls(**values)

    # --- on the raw text, before parsing ----------------------------------------------------

    def check_text(self, query: str) -> None:
        """Reject a document that is too large or has too many tokens, before it is parsed."""
        if self.max_document_bytes:
            size = len(query)
            # A character is one to four UTF-8 bytes: short texts need no encoding.
            if size * 4 > self.max_document_bytes:
                size = len(query.encode("utf-8", "surrogatepass"))
            if size > self.max_document_bytes:
                raise _exceeded(
                    "DOCUMENT_TOO_LARGE",
                    f"The document is {size} bytes; the limit is {self.max_document_bytes}.",
                    self.max_document_bytes,
                    size,
                )
        if self.max_tokens:
            # Within the size limit the full count is cheap and makes the message exact;
            # without one, stop as soon as the limit is passed.
            stop_after = None if self.max_document_bytes else self.max_tokens
            tokens = count_tokens(query, stop_after)
            if tokens > self.max_tokens:
                actual = f"more than {self.max_tokens}" if stop_after is not None else tokens
                raise _exceeded(
                    "MAX_TOKENS_EXCEEDED",
                    f"The document has {actual} tokens; the limit is {self.max_tokens}.",
                    self.max_tokens,
                    tokens,
                )

    # --- on the parsed document -------------------------------------------------------------

    def check_document(
        self,
        schema: GraphQLSchema,
        document: DocumentNode,
        operation_name: str | None,
        variables: Mapping[str, Any] | None,
    ) -> None:
        """Reject the selected operation when it is too deep, uses too many aliases or root
        fields, or its estimated cost is too high. An operation that cannot be selected is
        left for the pipeline to report."""
        if not (self.max_depth or self.max_aliases or self.max_root_fields or self.max_cost):
            return
        operation = select_operation(document, operation_name)
        if operation is None:
            return
        measures = measure(schema, document, operation, variables, self.default_list_size)
        if self.max_depth and measures.depth > self.max_depth:
            raise _exceeded(
                "MAX_DEPTH_EXCEEDED",
                f"The operation is {measures.depth} fields deep; the limit is {self.max_depth}.",
                self.max_depth,
                measures.depth,
            )
        # Introspection is exempt from depth and cost; graphql-core's rule bounds it instead,
        # by how deeply it nests the lists that can cycle through the schema.
        if (
            self.max_depth
            and measures.introspection
            and validate(schema, document, [MaxIntrospectionDepthRule])
        ):
            raise EdgeError(
                "MAX_DEPTH_EXCEEDED",
                "The introspection nests `fields`, `interfaces`, `possibleTypes` or "
                "`inputFields` 3 or more levels deep; the limit is 2.",
                extensions={"limit": 2},
            )
        if self.max_aliases and measures.aliases > self.max_aliases:
            raise _exceeded(
                "MAX_ALIASES_EXCEEDED",
                f"The operation uses {measures.aliases} aliases; the limit is {self.max_aliases}.",
                self.max_aliases,
                measures.aliases,
            )
        if self.max_root_fields and measures.root_fields > self.max_root_fields:
            raise _exceeded(
                "MAX_ROOT_FIELDS_EXCEEDED",
                f"The operation selects {measures.root_fields} root fields; "
                f"the limit is {self.max_root_fields}.",
                self.max_root_fields,
                measures.root_fields,
            )
        if self.max_cost and measures.cost > self.max_cost:
            raise _exceeded(
                "COST_LIMIT_EXCEEDED",
                f"The operation's estimated cost is {measures.cost}; the limit is {self.max_cost}.",
                self.max_cost,
                measures.cost,
            )


def _exceeded(code: str, message: str, limit: int, actual: int) -> EdgeError:
    return EdgeError(code, message, status=400, extensions={"limit": limit, "actual": actual})


def select_operation(
    document: DocumentNode, operation_name: str | None
) -> OperationDefinitionNode | None:
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if operation_name is None:
        return operations[0] if len(operations) == 1 else None
    for operation in operations:
        if operation.name is not None and operation.name.value == operation_name:
            return operation
    return None


# --- measuring --------------------------------------------------------------------------------


@dataclass
class _Frame:
    """A selection set being measured; its totals are per one occurrence of its parent."""

    selections: Iterator[SelectionNode]
    parent_type: GraphQLNamedType | None
    # The slice (`first`/`last`) of the enclosing connection field, for its list children.
    inherited: int | None
    counted: bool
    # How the finished totals fold into the frame below: a field (with its list size), or a
    # fragment (memoised under `fragment_key`) or inline fragment, which add no depth.
    field: FieldNode | None = None
    size: int = 1
    fragment_key: tuple[str, int | None, bool] | None = None
    depth: int = 0
    aliases: int = 0
    cost: int = 0


def measure(
    schema: GraphQLSchema,
    document: DocumentNode,
    operation: OperationDefinitionNode,
    variables: Mapping[str, Any] | None,
    default_list_size: int,
) -> OperationMeasures:
    """Depth, aliases, root fields and cost of `operation`, with named and inline fragments
    expanded where they are used (the definitions in docs/limits.md).

    Each named fragment is measured once per context and reused, so a document that spreads
    fragments exponentially is measured in linear time; a fragment spread inside itself (an
    invalid document) is skipped rather than followed."""
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    slices = _SliceValues(operation, variables or {})
    memo: dict[tuple[str, int | None, bool], tuple[int, int, int]] = {}
    active: set[str] = set()
    introspection = False

    root = _Frame(
        iter(operation.selection_set.selections),
        schema.get_root_type(operation.operation),
        inherited=None,
        counted=True,
    )
    stack = [root]
    while True:
        frame = stack[-1]
        node = next(frame.selections, None)
        if node is None:
            if len(stack) == 1:
                break
            stack.pop()
            below = stack[-1]
            if frame.field is not None:
                own = 1 if frame.counted else 0
                below.depth = max(below.depth, own + frame.depth)
                below.aliases += (1 if frame.field.alias else 0) + frame.aliases
                below.cost += own + frame.size * frame.cost
            else:
                below.depth = max(below.depth, frame.depth)
                below.aliases += frame.aliases
                below.cost += frame.cost
            if frame.fragment_key is not None:
                memo[frame.fragment_key] = (frame.depth, frame.aliases, frame.cost)
                active.discard(frame.fragment_key[0])
            continue

        if isinstance(node, FieldNode):
            name = node.name.value
            counted = frame.counted and not name.startswith("__")
            if name in ("__schema", "__type"):
                introspection = True
            parent = frame.parent_type
            definition = (
                parent.fields.get(name)
                if isinstance(parent, GraphQLObjectType | GraphQLInterfaceType)
                else None
            )
            if node.selection_set is None:
                frame.depth = max(frame.depth, 1 if counted else 0)
                frame.aliases += 1 if node.alias else 0
                frame.cost += 1 if counted else 0
                continue
            own_slice = slices.of(node)
            size, inherited = 1, own_slice
            if definition is not None and isinstance(
                get_nullable_type(definition.type), GraphQLList
            ):
                size = next(
                    s for s in (own_slice, frame.inherited, default_list_size) if s is not None
                )
                inherited = None
            stack.append(
                _Frame(
                    iter(node.selection_set.selections),
                    get_named_type(definition.type) if definition is not None else None,
                    inherited=inherited,
                    counted=counted,
                    field=node,
                    size=size,
                )
            )
        elif isinstance(node, InlineFragmentNode):
            condition = node.type_condition
            stack.append(
                _Frame(
                    iter(node.selection_set.selections),
                    schema.get_type(condition.name.value) if condition else frame.parent_type,
                    inherited=frame.inherited,
                    counted=frame.counted,
                )
            )
        elif isinstance(node, FragmentSpreadNode):
            name = node.name.value
            key = (name, frame.inherited, frame.counted)
            if key in memo:
                depth, aliases, cost = memo[key]
                frame.depth = max(frame.depth, depth)
                frame.aliases += aliases
                frame.cost += cost
                continue
            fragment = fragments.get(name)
            if fragment is None or name in active:
                continue
            active.add(name)
            stack.append(
                _Frame(
                    iter(fragment.selection_set.selections),
                    schema.get_type(fragment.type_condition.name.value),
                    inherited=frame.inherited,
                    counted=frame.counted,
                    fragment_key=key,
                )
            )

    return OperationMeasures(
        depth=root.depth,
        aliases=root.aliases,
        root_fields=len(_root_response_keys(operation.selection_set, fragments)),
        cost=root.cost,
        introspection=introspection,
    )


def _root_response_keys(
    selection_set: SelectionSetNode, fragments: Mapping[str, FragmentDefinitionNode]
) -> set[str]:
    """The distinct response keys at the root: fields selected twice under one key merge."""
    keys: set[str] = set()
    seen: set[str] = set()
    pending = [selection_set]
    while pending:
        for node in pending.pop().selections:
            if isinstance(node, FieldNode):
                keys.add((node.alias or node.name).value)
            elif isinstance(node, InlineFragmentNode):
                pending.append(node.selection_set)
            elif isinstance(node, FragmentSpreadNode):
                fragment = fragments.get(node.name.value)
                if fragment is not None and node.name.value not in seen:
                    seen.add(node.name.value)
                    pending.append(fragment.selection_set)
    return keys


class _SliceValues:
    """The `first`/`last` a field is sent: a literal, or a variable's value or default."""

    def __init__(self, operation: OperationDefinitionNode, variables: Mapping[str, Any]) -> None:
        self.variables = variables
        self.defaults: dict[str, ValueNode | None] = {
            d.variable.name.value: d.default_value for d in operation.variable_definitions or ()
        }

    def of(self, field: FieldNode) -> int | None:
        sizes = [
            size
            for argument in field.arguments or ()
            if argument.name.value in SLICING_ARGUMENTS
            and (size := self._value(argument.value)) is not None
        ]
        return max(sizes) if sizes else None

    def _value(self, node: ValueNode) -> int | None:
        if isinstance(node, VariableNode):
            name = node.name.value
            if name in self.variables:
                return _as_size(self.variables[name])
            default = self.defaults.get(name)
            return self._value(default) if default is not None else None
        if isinstance(node, IntValueNode):
            return _as_size(int(node.value))
        return None


def _as_size(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return max(value, 0) if isinstance(value, int) else None


__all__ = [
    "SLICING_ARGUMENTS",
    "OperationLimits",
    "OperationMeasures",
    "count_tokens",
    "measure",
    "select_operation",
]
