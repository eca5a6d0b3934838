"""The router's request pipeline: parse → validate → plan → execute → shape.

Documents are parsed and validated once per distinct text; plans and compiled response
shapes once per (document, operation name). Everything after that is per request."""

from __future__ import annotations

import copy
import hashlib
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from graphql import (
    ArgumentNode,
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    GraphQLError,
    GraphQLSchema,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    VariableNode,
    execute,
    parse,
    validate,
    visit,
)
from graphql.execution.values import VariableValues, get_variable_values
from graphql.language import Visitor

from supergraph.cache import LRUCache
from supergraph.edge.errors import EdgeError
from supergraph.edge.limits import OperationLimits
from supergraph.execute import (
    ExecutionState,
    Fetcher,
    OutSelection,
    PlanExecutor,
    ResponseShaper,
    compile_operation,
)
from supergraph.execute.executor import absorb_root
from supergraph.execute.fetcher import UploadPart
from supergraph.model import Supergraph, build_api_schema, load_supergraph
from supergraph.plan import (
    FetchNode,
    PlanningError,
    PlanNode,
    QueryPlan,
    SequenceNode,
    plan_operation,
    print_plan,
)
from supergraph.plan.planner import INTROSPECTION_ROOT_FIELDS
from supergraph.selections import from_ast
from supergraph.subscriptions.upstream import subscribe_upstream


class RequestError(Exception):
    """The request is not something that can be executed; no subgraph was called."""

    def __init__(self, errors: list[dict[str, Any]], status: int = 400) -> None:
        super().__init__(errors[0]["message"] if errors else "bad request")
        self.errors = errors
        self.status = status


@dataclass(frozen=True)
class Prepared:
    digest: str
    # Variables the operation's limits depend on (list sizes from `first`/`last`).
    size_variables: tuple[str, ...]
    document: DocumentNode
    operation: OperationDefinitionNode
    plan: QueryPlan
    shape: OutSelection
    root_type: str
    introspection: DocumentNode | None


def _error(
    message: str, code: str, locations: list[dict[str, int]] | None = None
) -> dict[str, Any]:
    error: dict[str, Any] = {"message": message, "extensions": {"code": code}}
    if locations:
        error["locations"] = locations
    return error


def _graphql_error(error: GraphQLError, code: str) -> dict[str, Any]:
    locations = [{"line": loc.line, "column": loc.column} for loc in error.locations or ()]
    return _error(error.message, code, locations)


class Router:
    def __init__(
        self,
        supergraph_sdl: str,
        fetcher: Fetcher,
        *,
        introspection: bool = True,
        document_cache_size: int = 1000,
        limits: OperationLimits | None = None,
        plan_cache_size: int = 1000,
    ) -> None:
        self.supergraph: Supergraph = load_supergraph(supergraph_sdl)
        self.api_schema: GraphQLSchema = build_api_schema(supergraph_sdl)
        self.fetcher = fetcher
        self.executor = PlanExecutor(fetcher)
        self.introspection = introspection
        # Production defaults apply to every router unless told otherwise.
        self.limits = limits if limits is not None else OperationLimits()
        # Operations (with their list-size variables) that passed the limits already.
        self.within_limits: LRUCache[tuple[object, ...], bool] = LRUCache(plan_cache_size)
        self.documents: LRUCache[str, DocumentNode] = LRUCache(document_cache_size)
        self.plans: LRUCache[tuple[str, str | None], Prepared] = LRUCache(plan_cache_size)

    # --- preparing ------------------------------------------------------------------------

    def document(self, query: str) -> tuple[str, DocumentNode]:
        digest = hashlib.sha256(query.encode()).hexdigest()
        cached = self.documents.get(digest)
        if cached is not None:
            return digest, cached
        try:
            self.limits.check_text(query)  # before parsing: no huge AST for a huge document
        except EdgeError as error:
            raise RequestError(error.body()["errors"], status=error.status) from None
        try:
            document = parse(query)
        except GraphQLError as error:
            raise RequestError([_graphql_error(error, "GRAPHQL_PARSE_FAILED")]) from None
        errors = validate(self.api_schema, document)
        if errors:
            raise RequestError([_graphql_error(e, "GRAPHQL_VALIDATION_FAILED") for e in errors])
        if not self.introspection and _uses_introspection(document):
            raise RequestError([_error("Introspection is disabled.", "INTROSPECTION_DISABLED")])
        self.documents.put(digest, document)
        return digest, document

    def prepare(self, query: str, operation_name: str | None) -> Prepared:
        digest, document = self.document(query)
        cached = self.plans.get((digest, operation_name))
        if cached is not None:
            return cached
        operation = _select_operation(document, operation_name)
        fragments = {
            d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
        }
        try:
            plan = plan_operation(self.supergraph, document, operation_name)
        except PlanningError as error:
            raise RequestError([_error(str(error), "QUERY_PLANNING_FAILED")], status=500) from None
        selections = from_ast(operation.selection_set, fragments)
        shape = compile_operation(self.api_schema, operation, selections)
        root = self.api_schema.get_root_type(operation.operation)
        assert root is not None
        prepared = Prepared(
            digest=digest,
            size_variables=_size_variables(document),
            document=document,
            operation=operation,
            plan=plan,
            shape=shape,
            root_type=root.name,
            introspection=_introspection_document(document, operation)
            if plan.local_root_fields
            else None,
        )
        self.plans.put((digest, operation_name), prepared)
        return prepared

    def check_limits(
        self, prepared: Prepared, operation_name: str | None, variables: Mapping[str, Any] | None
    ) -> None:
        """Depth, aliases, root fields and cost of this operation with these variables."""
        sizes = tuple(repr((variables or {}).get(name)) for name in prepared.size_variables)
        key = (prepared.digest, operation_name, sizes)
        if self.within_limits.get(key):
            return
        try:
            self.limits.check_document(
                self.api_schema, prepared.document, operation_name, variables
            )
        except EdgeError as error:
            raise RequestError(error.body()["errors"], status=error.status) from None
        self.within_limits.put(key, True)

    # --- executing ------------------------------------------------------------------------

    async def execute(
        self,
        query: str,
        variables: Mapping[str, Any] | None = None,
        operation_name: str | None = None,
        *,
        headers: Mapping[str, str] | None = None,
        allow_mutations: bool = True,
        include_plan: bool = False,
    ) -> dict[str, Any]:
        prepared = self.prepare(query, operation_name)
        self.check_limits(prepared, operation_name, variables)
        kind = prepared.operation.operation
        if kind == OperationType.SUBSCRIPTION:
            raise RequestError(
                [_error("Subscriptions are served over WebSocket or SSE.", "BAD_REQUEST")]
            )
        if kind == OperationType.MUTATION and not allow_mutations:
            raise RequestError(
                [_error("Mutations cannot be sent with GET.", "BAD_REQUEST")], status=405
            )
        body = await self._run(prepared, variables, headers or {}, operation_name)
        if include_plan:
            body["extensions"] = {"queryPlan": print_plan(prepared.plan)}
        return body

    async def subscribe(
        self,
        query: str,
        variables: Mapping[str, Any] | None = None,
        operation_name: str | None = None,
        *,
        headers: Mapping[str, str] | None = None,
    ) -> AsyncIterator[dict[str, Any]]:
        """Every response of an operation sent over a subscription transport: one per event
        for a subscription, a single one for a query or mutation."""
        prepared = self.prepare(query, operation_name)
        self.check_limits(prepared, operation_name, variables)
        sent = headers or {}
        if prepared.operation.operation != OperationType.SUBSCRIPTION:
            yield await self._run(prepared, variables, sent, operation_name)
            return
        raw, coerced = self._variables(prepared, variables)
        root, rest = _split_subscription(prepared.plan.node)
        endpoint = self.fetcher.endpoints[root.service]
        root_variables = {k: raw[k] for k in root.variable_names if k in raw}
        events = subscribe_upstream(
            endpoint.url, root.operation, root_variables, headers=sent, service=root.service
        )
        async for event in events:
            state = ExecutionState(variables=raw, headers=sent)
            absorb_root(state, event.get("data"), event.get("errors") or [])
            await self.executor.run(rest, state)
            yield self._shape(prepared, state, coerced.coerced, {}, list(state.errors))

    async def execute_upload(
        self,
        query: str,
        variables: Mapping[str, Any] | None,
        operation_name: str | None,
        files: Sequence[UploadPart],
        *,
        headers: Mapping[str, str],
    ) -> dict[str, Any]:
        """A GraphQL multipart request: the files go, streamed, to the subgraph that owns the
        first mutation field; the rest of the plan runs as usual."""
        prepared = self.prepare(query, operation_name)
        self.check_limits(prepared, operation_name, variables)
        if prepared.operation.operation != OperationType.MUTATION:
            raise RequestError([_error("Files can only be sent with a mutation.", "BAD_REQUEST")])
        raw = dict(variables or {})
        placeholders = copy.deepcopy(raw)
        for part in files:
            for path in part.paths:
                _set_variable_path(placeholders, path, f"<upload {part.key}>")
        _, coerced = self._variables(prepared, placeholders)
        root, rest = _split_first_fetch(prepared.plan.node)
        used = {path.split(".")[1] for part in files for path in part.paths}
        if not used <= set(root.variable_names):
            raise RequestError(
                [_error("Files must be arguments of the first mutation field.", "BAD_REQUEST")]
            )
        root_variables = {k: raw.get(k) for k in root.variable_names}
        response = await self.fetcher.fetch_multipart(
            root.service, root.operation, root_variables, files, headers=headers
        )
        state = ExecutionState(variables=raw, headers=headers)
        absorb_root(state, response.data, response.errors, failed=response.failed)
        await self.executor.run(rest, state)
        return self._shape(prepared, state, coerced.coerced, {}, list(state.errors))

    def _variables(
        self, prepared: Prepared, variables: Mapping[str, Any] | None
    ) -> tuple[dict[str, Any], VariableValues]:
        raw = dict(variables or {})
        coerced = get_variable_values(
            self.api_schema, prepared.operation.variable_definitions or (), raw
        )
        if isinstance(coerced, list):
            raise RequestError([_graphql_error(e, "BAD_USER_INPUT") for e in coerced])
        return raw, coerced

    async def _run(
        self,
        prepared: Prepared,
        variables: Mapping[str, Any] | None,
        headers: Mapping[str, str],
        operation_name: str | None,
    ) -> dict[str, Any]:
        raw, coerced = self._variables(prepared, variables)
        state = ExecutionState(variables=raw, headers=headers)
        await self.executor.run(prepared.plan.node, state)
        local: dict[str, Any] = {}
        errors = list(state.errors)
        if prepared.introspection is not None:
            result = execute(
                self.api_schema,
                prepared.introspection,
                variable_values=raw,
                operation_name=operation_name,
            )
            local = dict(result.data or {})  # type: ignore[union-attr]
            errors += [dict(e.formatted) for e in result.errors or ()]  # type: ignore[union-attr]
        return self._shape(prepared, state, coerced.coerced, local, errors)

    def _shape(
        self,
        prepared: Prepared,
        state: ExecutionState,
        coerced: Mapping[str, Any],
        local: Mapping[str, Any],
        errors: list[dict[str, Any]],
    ) -> dict[str, Any]:
        if state.root_failed:
            state.error_paths.append([])
        shaper = ResponseShaper(coerced, state.error_paths, local)
        data = shaper.shape(state.data, prepared.shape, prepared.root_type)
        errors = errors + shaper.errors
        body: dict[str, Any] = {"data": data}
        if errors:
            body["errors"] = errors
        return body


def _set_variable_path(variables: dict[str, Any], path: str, value: Any) -> None:
    """Put `value` where a multipart `map` path (`variables.files.0`) points."""
    parts = path.split(".")
    if len(parts) < 2 or parts[0] != "variables":
        raise RequestError([_error(f"Unsupported upload path {path!r}.", "BAD_REQUEST")])
    target: Any = variables
    keys: list[str | int] = [int(p) if p.isdigit() else p for p in parts[1:]]
    try:
        for key in keys[:-1]:
            target = target[key]
        target[keys[-1]] = value
    except (KeyError, IndexError, TypeError):
        raise RequestError(
            [_error(f"Upload path {path!r} matches no variable.", "BAD_REQUEST")]
        ) from None


def _split_first_fetch(node: PlanNode | None) -> tuple[FetchNode, PlanNode | None]:
    if isinstance(node, FetchNode):
        return node, None
    if isinstance(node, SequenceNode) and isinstance(node.nodes[0], FetchNode):
        rest = node.nodes[1:]
        return node.nodes[0], rest[0] if len(rest) == 1 else SequenceNode(rest)
    raise RequestError(
        [_error("Files must be sent to a single root mutation field.", "BAD_REQUEST")]
    )


def _split_subscription(node: PlanNode | None) -> tuple[FetchNode, PlanNode | None]:
    """A subscription's plan: the root fetch becomes the upstream subscription; whatever
    follows it runs once per event."""
    if isinstance(node, FetchNode):
        return node, None
    if isinstance(node, SequenceNode) and isinstance(node.nodes[0], FetchNode):
        rest = node.nodes[1:]
        return node.nodes[0], rest[0] if len(rest) == 1 else SequenceNode(rest)
    raise RequestError([_error("A subscription must have exactly one root field.", "BAD_REQUEST")])


def _select_operation(document: DocumentNode, name: str | None) -> OperationDefinitionNode:
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if name is None:
        if len(operations) == 1:
            return operations[0]
        raise RequestError(
            [
                _error(
                    "Must provide operation name if query contains multiple operations.",
                    "GRAPHQL_VALIDATION_FAILED",
                )
            ]
        )
    for operation in operations:
        if operation.name and operation.name.value == name:
            return operation
    raise RequestError([_error(f"Unknown operation named '{name}'.", "GRAPHQL_VALIDATION_FAILED")])


def _size_variables(document: DocumentNode) -> tuple[str, ...]:
    """Variables passed as `first` or `last` anywhere in the document."""
    names: set[str] = set()

    class _Sizes(Visitor):
        def enter_argument(self, node: ArgumentNode, *_: object) -> None:
            if node.name.value in ("first", "last") and isinstance(node.value, VariableNode):
                names.add(node.value.name.value)

    visit(document, _Sizes())
    return tuple(sorted(names))


def _uses_introspection(document: DocumentNode) -> bool:
    def walk(selection_set: SelectionSetNode | None) -> bool:
        if selection_set is None:
            return False
        for node in selection_set.selections:
            if isinstance(node, FieldNode) and node.name.value in INTROSPECTION_ROOT_FIELDS:
                return True
            if walk(getattr(node, "selection_set", None)):
                return True
        return False

    return any(walk(getattr(d, "selection_set", None)) for d in document.definitions)


def _introspection_document(
    document: DocumentNode, operation: OperationDefinitionNode
) -> DocumentNode:
    """The operation cut down to its introspection root fields, for graphql-core to answer."""
    fields = tuple(
        s
        for s in operation.selection_set.selections
        if isinstance(s, FieldNode) and s.name.value in INTROSPECTION_ROOT_FIELDS
    )
    trimmed = OperationDefinitionNode(
        operation=operation.operation,
        name=operation.name,
        variable_definitions=operation.variable_definitions,
        directives=operation.directives,
        selection_set=SelectionSetNode(selections=fields),
    )
    fragments = tuple(d for d in document.definitions if isinstance(d, FragmentDefinitionNode))
    return DocumentNode(definitions=(trimmed, *fragments))


__all__ = ["Prepared", "RequestError", "Router"]
