"""Turns a validated operation into a `QueryPlan`.

Fields are placed in the fetch of the subgraph that already holds their parent object when it
can resolve them; otherwise a dependent `_entities` fetch is opened on another subgraph, and
the key (plus any `@requires` fields) needed to build its representations is planned into
the parent's context first. Groups of fetches are then ordered by their dependencies.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from graphql import (
    DirectiveNode,
    DocumentNode,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    OperationDefinitionNode,
    get_named_type,
    is_abstract_type,
    print_ast,
)
from graphql.language import FragmentDefinitionNode

from supergraph.model import Supergraph
from supergraph.plan.nodes import (
    FetchNode,
    FlattenNode,
    ParallelNode,
    Path,
    PlanNode,
    QueryPlan,
    SequenceNode,
)
from supergraph.selections import (
    Field,
    InlineFragment,
    Selection,
    copy_selection,
    from_ast,
    merge_into,
    print_selections,
    variables_in,
)

INTROSPECTION_ROOT_FIELDS = frozenset({"__schema", "__type"})


class PlanningError(Exception):
    """The operation cannot be planned against this supergraph."""


@dataclass(eq=False)
class Group:
    id: int
    graph: str
    parent_type: str | None  # None for a root fetch
    path: Path
    selections: list[Selection] = field(default_factory=list)
    requires: list[Selection] = field(default_factory=list)
    depends_on: set[Group] = field(default_factory=set)
    representation_typename: str | None = None


@dataclass(frozen=True)
class Context:
    group: Group
    path: Path
    provided: tuple[Selection, ...] | None = None
    conditions: tuple[DirectiveNode, ...] = ()
    injected: bool = False
    # The client's fields at this object level, by response key: fields the router adds for
    # its own needs must not take one of these keys for something else.
    reserved: Mapping[str, Field] | None = None


def plan_operation(
    supergraph: Supergraph, document: DocumentNode, operation_name: str | None = None
) -> QueryPlan:
    operation = _operation(document, operation_name)
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    return _Planner(supergraph, operation, fragments).plan()


def _operation(document: DocumentNode, name: str | None) -> OperationDefinitionNode:
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if name is None:
        if len(operations) != 1:
            raise PlanningError(
                "Must provide operation name if query contains multiple operations."
            )
        return operations[0]
    for operation in operations:
        if operation.name and operation.name.value == name:
            return operation
    raise PlanningError(f"Unknown operation named '{name}'.")


def _list_depth(type_: GraphQLOutputType) -> int:
    depth = 0
    while True:
        if isinstance(type_, GraphQLNonNull):
            type_ = type_.of_type
        elif isinstance(type_, GraphQLList):
            depth += 1
            type_ = type_.of_type
        else:
            return depth


class _Planner:
    def __init__(
        self,
        supergraph: Supergraph,
        operation: OperationDefinitionNode,
        fragments: dict[str, FragmentDefinitionNode],
    ) -> None:
        self.sg = supergraph
        self.schema = supergraph.schema
        self.operation = operation
        self.fragments = fragments
        self.groups: list[Group] = []
        self.entity_groups: dict[tuple[object, ...], Group] = {}
        # Groups whose representation requirements are being planned: they cannot supply
        # their own requirements, so jumps made meanwhile must go elsewhere.
        self.building: set[Group] = set()

    # --- entry ----------------------------------------------------------------------------

    def plan(self) -> QueryPlan:
        kind = self.operation.operation.value
        root_type = self.schema.get_root_type(self.operation.operation)
        if root_type is None:
            raise PlanningError(f"The schema has no {kind} type.")
        selections = from_ast(self.operation.selection_set, self.fragments)
        reserved = _client_keys(selections)
        local: list[str] = []
        roots: list[Group] = []
        for selection, conditions in self._root_fields(root_type.name, selections, ()):
            if selection.name in INTROSPECTION_ROOT_FIELDS or selection.name == "__typename":
                local.append(selection.response_key)
                continue
            graph = self._root_graph(root_type.name, selection)
            if kind == "mutation":
                # Mutation fields run in order: only consecutive fields share a fetch.
                group = roots[-1] if roots and roots[-1].graph == graph else None
            else:
                group = next((g for g in roots if g.graph == graph), None)
            if group is None:
                group = self._new_group(graph, None, ())
                roots.append(group)
            target = self._conditional_target(group.selections, conditions)
            self._add_local(
                Context(group, (), reserved=reserved), root_type.name, selection, target
            )
        node = self._assemble(roots, sequential_roots=kind == "mutation")
        return QueryPlan(node=node, operation_kind=kind, local_root_fields=tuple(local))

    def _root_fields(
        self, root: str, selections: list[Selection], conditions: tuple[DirectiveNode, ...]
    ) -> list[tuple[Field, tuple[DirectiveNode, ...]]]:
        result: list[tuple[Field, tuple[DirectiveNode, ...]]] = []
        for selection in selections:
            if isinstance(selection, Field):
                result.append((selection, conditions))
            elif selection.type_condition in (None, root):
                result += self._root_fields(
                    root, selection.selections, conditions + selection.directives
                )
        return result

    def _root_graph(self, root: str, selection: Field) -> str:
        graphs = self.sg.types[root].field_graphs(selection.name)
        if not graphs:
            raise PlanningError(f"No subgraph resolves {root}.{selection.name}.")
        # A shareable root field: take the graph that resolves most of what is asked below.
        field_type = self._field_type(root, selection.name)
        if len(graphs) == 1 or selection.selections is None:
            return graphs[0]
        child = get_named_type(field_type).name
        return max(graphs, key=lambda g: self._local_score(child, selection.selections or [], g))

    # --- selection sets -------------------------------------------------------------------

    def _plan_set(
        self, ctx: Context, parent: str, selections: list[Selection], target: list[Selection]
    ) -> set[Group]:
        parent_type = self.schema.type_map[parent]
        if is_abstract_type(parent_type):
            return self._plan_abstract(ctx, parent, selections, target)
        used: set[Group] = set()
        for selection in selections:
            if isinstance(selection, Field):
                used |= self._plan_field(ctx, parent, selection, target)
            elif self._fragment_applies(selection.type_condition, parent):
                inner = self._conditional_target(target, selection.directives)
                sub = Context(
                    ctx.group,
                    ctx.path,
                    ctx.provided,
                    ctx.conditions + selection.directives,
                    ctx.injected,
                    ctx.reserved,
                )
                used |= self._plan_set(sub, parent, selection.selections, inner)
        return used

    def _plan_field(
        self, ctx: Context, parent: str, selection: Field, target: list[Selection]
    ) -> set[Group]:
        if selection.name == "__typename":
            self._field_in(target, selection, ctx)
            return {ctx.group}
        meta = self.sg.types[parent]
        graphs = meta.field_graphs(selection.name)
        graph = ctx.group.graph
        source = meta.source(selection.name, graph)
        needs_entity = source is not None and source.requires is not None
        if (graph in graphs and not needs_entity) or self._provided(ctx, selection):
            return self._add_local(ctx, parent, selection, target)
        if graphs:
            return self._jump(
                ctx, parent, selection, target, self._choose_graph(ctx, parent, graphs)
            )
        return self._via_interface_object(ctx, parent, selection, target)

    def _add_local(
        self, ctx: Context, parent: str, selection: Field, target: list[Selection]
    ) -> set[Group]:
        placed = self._field_in(target, selection, ctx)
        used = {ctx.group}
        if selection.selections is None:
            return used
        field_type = self._field_type(parent, selection.name)
        child = get_named_type(field_type).name
        source = self.sg.types[parent].source(selection.name, ctx.group.graph)
        if source is not None and source.provides is not None:
            provided: tuple[Selection, ...] | None = source.provides
        else:
            provided = self._narrow(ctx.provided, selection.name)
        path = ctx.path + (placed.response_key,) + ("@",) * _list_depth(field_type)
        if ctx.injected:
            client = (ctx.reserved or {}).get(placed.response_key)
            child_reserved = _client_keys(client.selections or []) if client is not None else None
        else:
            child_reserved = _client_keys(selection.selections)
        child_ctx = Context(ctx.group, path, provided, (), ctx.injected, child_reserved)
        assert placed.selections is not None
        return used | self._plan_set(child_ctx, child, selection.selections, placed.selections)

    def _plan_abstract(
        self, ctx: Context, parent: str, selections: list[Selection], target: list[Selection]
    ) -> set[Group]:
        graph = ctx.group.graph
        meta = self.sg.types[parent]
        in_graph = meta.graphs.get(graph)
        if in_graph is not None and in_graph.is_interface_object:
            return self._plan_interface_object(ctx, parent, selections, target)
        used: set[Group] = {ctx.group}
        self._field_in(target, Field("__typename"), ctx)
        selections, used_by_jumps = self._jump_interface_fields(ctx, parent, selections, target)
        used |= used_by_jumps
        if self._simple(parent, selections, graph, ctx.provided):
            for selection in selections:
                if isinstance(selection, Field):
                    used |= self._plan_field(ctx, parent, selection, target)
                    continue
                condition = selection.type_condition or parent
                if condition != parent and graph not in self.sg.types[condition].graphs:
                    continue  # this subgraph never returns that type
                fragment = self._fragment_in(target, selection.type_condition, selection.directives)
                sub = Context(
                    ctx.group,
                    ctx.path,
                    ctx.provided,
                    ctx.conditions + selection.directives,
                    ctx.injected,
                    ctx.reserved,
                )
                used |= self._plan_set(sub, condition, selection.selections, fragment.selections)
            return used
        for concrete in self.sg.possible_types(parent, graph):
            sub_selections = self._collect_for_type(selections, concrete)
            if not sub_selections:
                continue
            fragment = self._fragment_in(target, concrete, ())
            sub = Context(
                ctx.group,
                (*ctx.path, f"|{concrete}"),
                self._narrow_fragment(ctx.provided, concrete),
                ctx.conditions,
                ctx.injected,
                ctx.reserved,
            )
            used |= self._plan_set(sub, concrete, sub_selections, fragment.selections)
        return used

    def _jump_interface_fields(
        self, ctx: Context, parent: str, selections: list[Selection], target: list[Selection]
    ) -> tuple[list[Selection], set[Group]]:
        """Fields of an interface that another subgraph resolves for the interface as a whole
        (an @interfaceObject or an entity interface) are fetched once for every object,
        rather than once per concrete type. Returns the selections left to plan."""
        meta = self.sg.types[parent]
        if meta.kind != "interface":
            return selections, set()
        graph = ctx.group.graph
        remaining: list[Selection] = []
        used: set[Group] = set()
        for selection in selections:
            if (
                not isinstance(selection, Field)
                or selection.name == "__typename"
                or graph in meta.field_graphs(selection.name)
                or self._provided(ctx, selection)
            ):
                remaining.append(selection)
                continue
            owner = next(
                (
                    g
                    for g in meta.field_graphs(selection.name)
                    if meta.resolvable_keys(g)
                    and (source := meta.source(selection.name, g)) is not None
                    and source.requires is None
                    and self._choose_key(parent, g, graph) is not None
                    and self._resolvable_in(
                        parent, list(self._choose_key(parent, g, graph) or ()), graph
                    )
                ),
                None,
            )
            if owner is None:
                remaining.append(selection)
                continue
            info = meta.graphs[owner]
            typename = parent if info.is_interface_object else None
            group = self._entity_group(ctx, parent, owner, target, representation_typename=typename)
            inner = self._conditional_target(group.selections, ctx.conditions)
            used |= {group} | self._add_local(
                Context(group, ctx.path, reserved=ctx.reserved), parent, selection, inner
            )
        return remaining, used

    def _plan_interface_object(
        self, ctx: Context, parent: str, selections: list[Selection], target: list[Selection]
    ) -> set[Group]:
        """`parent` is an interface this subgraph only knows as an @interfaceObject: the real
        type, type conditions and fields it lacks come from a subgraph that owns the interface."""
        graph = ctx.group.graph
        meta = self.sg.types[parent]
        used: set[Group] = {ctx.group}
        remote: list[Selection] = []
        for selection in selections:
            if isinstance(selection, Field) and (
                # Representations name the interface anyway: its __typename will do.
                (selection.name == "__typename" and ctx.injected)
                or (
                    selection.name != "__typename"
                    and (
                        graph in meta.field_graphs(selection.name) or self._provided(ctx, selection)
                    )
                )
            ):
                used |= self._plan_field(ctx, parent, selection, target)
            else:
                remote.append(selection)
        if not remote:
            return used
        owners = [
            g
            for g, info in meta.graphs.items()
            if not info.is_interface_object and any(k.resolvable for k in info.keys)
        ]
        if not owners:
            raise PlanningError(f"No subgraph can resolve the concrete type of {parent}.")
        group = self._entity_group(ctx, parent, owners[0], target, representation_typename=parent)
        inner = self._conditional_target(group.selections, ctx.conditions)
        group_ctx = Context(group, ctx.path, reserved=ctx.reserved)
        self._field_in(inner, Field("__typename"), group_ctx)
        return used | {group} | self._plan_set(group_ctx, parent, remote, inner)

    # --- jumps between subgraphs ----------------------------------------------------------

    def _jump(
        self, ctx: Context, parent: str, selection: Field, target: list[Selection], graph: str
    ) -> set[Group]:
        representation_typename = None
        info = self.sg.types[parent].graphs.get(graph)
        if info is not None and info.is_interface_object:
            representation_typename = parent
        group = self._entity_group(ctx, parent, graph, target, representation_typename)
        used = {group}
        source = self.sg.types[parent].source(selection.name, graph)
        if source is not None and source.requires is not None:
            requires = [copy_selection(s) for s in source.requires]
            deps = self._plan_set(
                Context(ctx.group, ctx.path, ctx.provided, ctx.conditions, True, ctx.reserved),
                parent,
                requires,
                target,
            )
            deps.discard(group)
            group.depends_on |= deps
            merge_into(group.requires, requires)
            used |= deps
        inner = self._conditional_target(group.selections, ctx.conditions)
        group_ctx = Context(group, ctx.path, reserved=ctx.reserved)
        return used | self._add_local(group_ctx, parent, selection, inner)

    def _via_interface_object(
        self, ctx: Context, parent: str, selection: Field, target: list[Selection]
    ) -> set[Group]:
        """A field an object type only has through an interface some subgraph extends as an
        @interfaceObject: fetch it from that subgraph, naming the interface."""
        parent_type = self.schema.type_map[parent]
        interfaces = parent_type.interfaces if isinstance(parent_type, GraphQLObjectType) else []
        for interface in interfaces:
            meta = self.sg.types.get(interface.name)
            if meta is None:
                continue
            for graph in meta.field_graphs(selection.name):
                info = meta.graphs.get(graph)
                if info is None or not any(k.resolvable for k in info.keys):
                    continue
                group = self._entity_group(
                    ctx, parent, graph, target, representation_typename=interface.name
                )
                inner = self._conditional_target(group.selections, ctx.conditions)
                group_ctx = Context(group, ctx.path, reserved=ctx.reserved)
                return {group} | self._add_local(group_ctx, interface.name, selection, inner)
        raise PlanningError(f"No subgraph resolves {parent}.{selection.name}.")

    def _entity_group(
        self,
        ctx: Context,
        parent: str,
        graph: str,
        target: list[Selection],
        representation_typename: str | None = None,
    ) -> Group:
        cache_key = (ctx.group.id, graph, ctx.path, parent, representation_typename, id(target))
        group = self.entity_groups.get(cache_key)
        if group is not None and group not in self.building:
            return group
        if group is not None:
            raise PlanningError(
                f"Cannot build representations of {parent} for subgraph "
                f"{self.sg.graphs[graph].name}: its key is only reachable through itself."
            )
        key_owner = representation_typename or parent
        key = self._choose_key(key_owner, graph, ctx.group.graph)
        if key is None:
            raise PlanningError(
                f"Subgraph {self.sg.graphs[graph].name} has no resolvable key for {key_owner}."
            )
        entity_type = representation_typename or parent
        group = self._new_group(graph, entity_type, ctx.path)
        group.representation_typename = representation_typename
        self.entity_groups[cache_key] = group
        requires: list[Selection] = [Field("__typename"), *(copy_selection(s) for s in key)]
        self.building.add(group)
        try:
            deps = self._plan_set(
                Context(ctx.group, ctx.path, ctx.provided, ctx.conditions, True, ctx.reserved),
                parent,
                requires,
                target,
            )
        finally:
            self.building.discard(group)
        deps.discard(group)
        group.depends_on |= deps | {ctx.group}
        group.requires = requires
        return group

    def _choose_key(
        self, type_name: str, graph: str, from_graph: str
    ) -> tuple[Selection, ...] | None:
        keys = self.sg.types[type_name].resolvable_keys(graph)
        if not keys:
            return None
        for key in keys:
            if self._resolvable_in(type_name, list(key.selections), from_graph):
                return key.selections
        return keys[0].selections

    def _choose_graph(self, ctx: Context, parent: str, graphs: list[str]) -> str:
        busy = {
            g.graph
            for key, g in self.entity_groups.items()
            if g in self.building and key[2] == ctx.path and key[3] == parent
        }
        existing = [
            g.graph
            for key, g in self.entity_groups.items()
            if key[0] == ctx.group.id
            and key[2] == ctx.path
            and key[3] == parent
            and g not in self.building
        ]
        for graph in existing:
            if graph in graphs:
                return graph
        graphs = [g for g in graphs if g not in busy] or graphs
        enterable = [g for g in graphs if self.sg.types[parent].resolvable_keys(g)]
        candidates = enterable or graphs
        for graph in candidates:
            key = self._choose_key(parent, graph, ctx.group.graph)
            if key is not None and self._resolvable_in(parent, list(key), ctx.group.graph):
                return graph
        return candidates[0]

    # --- helpers --------------------------------------------------------------------------

    def _new_group(self, graph: str, parent_type: str | None, path: Path) -> Group:
        group = Group(len(self.groups), graph, parent_type, path)
        self.groups.append(group)
        return group

    def _field_type(self, parent: str, name: str) -> GraphQLOutputType:
        parent_type = self.schema.type_map[parent]
        fields = getattr(parent_type, "fields", {})
        if name not in fields:
            raise PlanningError(f"Cannot query field '{name}' on type '{parent}'.")
        return fields[name].type  # type: ignore[no-any-return]

    def _field_in(self, target: list[Selection], selection: Field, ctx: Context) -> Field:
        """The field in `target` this selection lands on, adding it if it is not there."""
        injected = ctx.injected
        if injected and selection.alias is None and ctx.reserved is not None:
            client = ctx.reserved.get(selection.response_key)
            if client is not None and not client.same_field(selection):
                # The client uses this response key for something else: give the field the
                # router needs a private alias (the requires selection keeps it).
                selection.alias = f"__rg_{selection.name}"
        for existing in target:
            if not isinstance(existing, Field) or existing.response_key != selection.response_key:
                continue
            if existing.same_field(selection):
                return existing
            if injected:
                # The client already uses this response key for something else: give the
                # field the router needs a private alias (the requires selection keeps it).
                selection.alias = f"__rg_{selection.name}"
                return self._field_in(target, selection, ctx)
        placed = Field(
            selection.name,
            selection.alias,
            selection.arguments,
            selection.directives,
            [] if selection.selections is not None else None,
        )
        target.append(placed)
        return placed

    def _fragment_in(
        self,
        target: list[Selection],
        type_condition: str | None,
        directives: tuple[DirectiveNode, ...],
    ) -> InlineFragment:
        printed = " ".join(print_ast(d) for d in directives)
        for existing in target:
            if (
                isinstance(existing, InlineFragment)
                and existing.type_condition == type_condition
                and " ".join(print_ast(d) for d in existing.directives) == printed
            ):
                return existing
        fragment = InlineFragment(type_condition, [], directives)
        target.append(fragment)
        return fragment

    def _conditional_target(
        self, target: list[Selection], conditions: tuple[DirectiveNode, ...]
    ) -> list[Selection]:
        if not conditions:
            return target
        return self._fragment_in(target, None, conditions).selections

    def _fragment_applies(self, condition: str | None, parent: str) -> bool:
        if condition is None or condition == parent:
            return True
        condition_type = self.schema.type_map.get(condition)
        parent_type = self.schema.type_map[parent]
        if condition_type is None or not is_abstract_type(condition_type):
            return False
        return self.schema.is_sub_type(condition_type, parent_type)

    def _collect_for_type(self, selections: list[Selection], concrete: str) -> list[Selection]:
        """The selections that apply when the runtime type is `concrete`, fragments flattened
        (fragments with @skip/@include stay, as condition-only wrappers)."""
        result: list[Selection] = []
        for selection in selections:
            if isinstance(selection, Field):
                result.append(selection)
            elif self._fragment_applies(selection.type_condition, concrete):
                inner = self._collect_for_type(selection.selections, concrete)
                if selection.directives:
                    result.append(InlineFragment(None, inner, selection.directives))
                else:
                    result.extend(inner)
        return result

    def _simple(
        self,
        parent: str,
        selections: list[Selection],
        graph: str,
        provided: tuple[Selection, ...] | None,
    ) -> bool:
        """Whether this subgraph resolves every field of an abstract selection itself."""
        for selection in selections:
            if isinstance(selection, Field):
                if selection.name == "__typename":
                    continue
                meta = self.sg.types[parent]
                source = meta.source(selection.name, graph)
                local = graph in meta.field_graphs(selection.name) and not (
                    source and source.requires
                )
                if not local and not _provides(provided, selection.name):
                    return False
            else:
                condition = selection.type_condition or parent
                if condition != parent and graph not in self.sg.types[condition].graphs:
                    continue
                if not self._simple(
                    condition,
                    selection.selections,
                    graph,
                    self._narrow_fragment(provided, condition),
                ):
                    return False
        return True

    def _resolvable_in(self, parent: str, selections: list[Selection], graph: str) -> bool:
        for selection in selections:
            if isinstance(selection, InlineFragment):
                if not self._resolvable_in(
                    selection.type_condition or parent, selection.selections, graph
                ):
                    return False
                continue
            if selection.name == "__typename":
                continue
            if graph not in self.sg.types[parent].field_graphs(selection.name):
                return False
            if selection.selections:
                child = get_named_type(self._field_type(parent, selection.name)).name
                if not is_abstract_type(self.schema.type_map[child]) and not self._resolvable_in(
                    child, selection.selections, graph
                ):
                    return False
        return True

    def _local_score(self, parent: str, selections: list[Selection], graph: str) -> int:
        score = 0
        for selection in selections:
            if isinstance(selection, Field) and selection.name != "__typename":
                meta = self.sg.types.get(parent)
                if meta is not None and graph in meta.field_graphs(selection.name):
                    score += 1
        return score

    def _provided(self, ctx: Context, selection: Field) -> bool:
        return _provides(ctx.provided, selection.name)

    def _narrow(
        self, provided: tuple[Selection, ...] | None, name: str
    ) -> tuple[Selection, ...] | None:
        if provided is None:
            return None
        for selection in provided:
            if isinstance(selection, Field) and selection.name == name:
                return tuple(selection.selections or ())
        return None

    def _narrow_fragment(
        self, provided: tuple[Selection, ...] | None, concrete: str
    ) -> tuple[Selection, ...] | None:
        if provided is None:
            return None
        result: list[Selection] = []
        for selection in provided:
            if isinstance(selection, Field):
                result.append(selection)
            elif selection.type_condition in (None, concrete):
                result.extend(selection.selections)
        return tuple(result)

    # --- assembling the plan --------------------------------------------------------------

    def _assemble(self, roots: list[Group], *, sequential_roots: bool) -> PlanNode | None:
        groups = [g for g in self.groups if g.selections]
        if not groups:
            return None
        levels: dict[int, int] = {}

        def level(group: Group) -> int:
            if group.id not in levels:
                deps = [d for d in group.depends_on if d is not group and d.selections]
                levels[group.id] = 0 if not deps else 1 + max(level(d) for d in deps)
            return levels[group.id]

        dependents = [g for g in groups if g.parent_type is not None]

        def leveled(members: list[Group]) -> list[PlanNode]:
            by_level: dict[int, list[Group]] = {}
            for group in members:
                by_level.setdefault(level(group), []).append(group)
            return [_parallel([self._fetch_node(g) for g in by_level[d]]) for d in sorted(by_level)]

        steps: list[PlanNode] = []
        if sequential_roots:
            # Each mutation field completes, entity fetches included, before the next runs.
            order = {g.id: i for i, g in enumerate(roots)}
            owned: dict[int, list[Group]] = {}
            for group in dependents:
                owned.setdefault(self._owning_root(group, order), []).append(group)
            for root in roots:
                if root.selections:
                    steps.append(self._fetch_node(root))
                steps += leveled(owned.get(root.id, []))
        else:
            root_nodes = [self._fetch_node(g) for g in roots if g.selections]
            if root_nodes:
                steps.append(_parallel(root_nodes))
            steps += leveled(dependents)
        return steps[0] if len(steps) == 1 else SequenceNode(tuple(steps))

    def _owning_root(self, group: Group, order: dict[int, int]) -> int:
        """The last root fetch a dependent group (transitively) waits for."""
        seen: set[int] = set()
        stack = [group]
        best: tuple[int, int] | None = None
        while stack:
            current = stack.pop()
            if current.id in seen:
                continue
            seen.add(current.id)
            if current.id in order and (best is None or order[current.id] > best[0]):
                best = (order[current.id], current.id)
            stack.extend(current.depends_on)
        assert best is not None, "a dependent fetch always descends from a root fetch"
        return best[1]

    def _names_interface_object(self, group: Group) -> bool:
        """An @interfaceObject subgraph answers with the interface's name as `__typename`:
        that must not overwrite the concrete type already in the response."""
        typename = group.representation_typename
        if typename is None:
            return False
        info = self.sg.types[typename].graphs.get(group.graph)
        return bool(info and info.is_interface_object)

    def _fetch_node(self, group: Group) -> PlanNode:
        graph = self.sg.graphs[group.graph]
        used = variables_in(group.selections)
        definitions = [
            d for d in self.operation.variable_definitions or () if d.variable.name.value in used
        ]
        name = ""
        if self.operation.name:
            name = f"{self.operation.name.value}__{graph.name.replace('-', '_')}__{group.id}"
        var_defs = [print_ast(d) for d in definitions]
        if group.parent_type is None:
            kind = self.operation.operation.value
            header = f"{kind} {name}" if name else kind
            if var_defs:
                header += "(" + ",".join(var_defs) + ")"
            operation = header + print_selections(group.selections)
        else:
            kind = "query"
            header = f"query {name}" if name else "query"
            header += "(" + ",".join(["$representations:[_Any!]!", *var_defs]) + ")"
            entity = InlineFragment(group.parent_type, group.selections)
            operation = (
                header
                + "{_entities(representations:$representations)"
                + print_selections([entity])
                + "}"
            )
        fetch = FetchNode(
            service=graph.name,
            operation=operation,
            operation_kind=kind,
            variable_names=tuple(d.variable.name.value for d in definitions),
            requires=tuple(group.requires) if group.parent_type is not None else None,
            representation_typename=group.representation_typename,
            entity_type=group.parent_type,
            drops_typename=self._names_interface_object(group),
            id=group.id,
        )
        if group.parent_type is None:
            return fetch
        return FlattenNode(group.path, fetch)


def _parallel(nodes: list[PlanNode]) -> PlanNode:
    return nodes[0] if len(nodes) == 1 else ParallelNode(tuple(nodes))


def _provides(provided: tuple[Selection, ...] | None, name: str) -> bool:
    return provided is not None and any(isinstance(s, Field) and s.name == name for s in provided)


def _client_keys(selections: list[Selection]) -> dict[str, Field]:
    """The client's fields at one object level (fragments flattened), by response key."""
    keys: dict[str, Field] = {}
    for selection in selections:
        if isinstance(selection, Field):
            keys.setdefault(selection.response_key, selection)
        else:
            for key, value in _client_keys(selection.selections).items():
                keys.setdefault(key, value)
    return keys
