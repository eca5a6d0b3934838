"""Runs a query plan: fetches in sequence and in parallel, entity results merged into one
response tree, subgraph errors re-pathed to the client's paths."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from supergraph.execute.fetcher import Fetcher
from supergraph.execute.merge import (
    ResponsePath,
    client_error,
    deep_merge,
    objects_at,
    paths_of,
    representation,
)
from supergraph.plan import FetchNode, FlattenNode, ParallelNode, PlanNode, SequenceNode


@dataclass
class ExecutionState:
    variables: Mapping[str, Any]
    headers: Mapping[str, str]
    data: dict[str, Any] = field(default_factory=dict)
    errors: list[dict[str, Any]] = field(default_factory=list)
    # Response paths where a fetch failed or a subgraph reported an error.
    error_paths: list[ResponsePath] = field(default_factory=list)
    root_failed: bool = False


def absorb_root(
    state: ExecutionState,
    data: Any,
    errors: list[Any],
    *,
    failed: bool = False,
) -> None:
    """A root response (a fetch, an upload, a subscription event) into the response tree:
    its data merged, its errors kept at their paths, which the client's paths equal."""
    if isinstance(data, dict):
        deep_merge(state.data, data)
    if failed or not isinstance(data, dict):
        # Its errors already explain every field it should have answered.
        state.root_failed = True
    for error in errors:
        if not isinstance(error, dict):
            continue
        path = error.get("path")
        client_path = path if isinstance(path, list) and path else None
        state.errors.append(client_error(error, client_path))
        state.error_paths.append(client_path or [])


class PlanExecutor:
    def __init__(self, fetcher: Fetcher) -> None:
        self.fetcher = fetcher

    async def run(self, node: PlanNode | None, state: ExecutionState) -> None:
        if node is None:
            return
        if isinstance(node, SequenceNode):
            for child in node.nodes:
                await self.run(child, state)
        elif isinstance(node, ParallelNode):
            await asyncio.gather(*(self.run(child, state) for child in node.nodes))
        elif isinstance(node, FlattenNode):
            await self._entities(node, state)
        else:
            await self._root(node, state)

    async def _root(self, node: FetchNode, state: ExecutionState) -> None:
        variables = {k: state.variables[k] for k in node.variable_names if k in state.variables}
        response = await self.fetcher.fetch(
            node.service,
            node.operation,
            variables,
            headers=state.headers,
            dedupable=node.operation_kind == "query",
        )
        absorb_root(state, response.data, response.errors, failed=response.failed)

    async def _entities(self, flatten: FlattenNode, state: ExecutionState) -> None:
        node = flatten.node
        assert node.requires is not None
        targets = objects_at(state.data, flatten.path)
        if not targets:
            return
        representations: list[dict[str, Any]] = []
        owners: list[list[dict[str, Any]]] = []
        index: dict[bytes, int] = {}
        for obj in targets:
            rep = representation(obj, node.requires, node.representation_typename)
            if rep is None:
                continue
            key = orjson.dumps(rep, option=orjson.OPT_SORT_KEYS)
            position = index.get(key)
            if position is None:
                index[key] = position = len(representations)
                representations.append(rep)
                owners.append([])
            owners[position].append(obj)
        if not representations:
            return
        variables: dict[str, Any] = {"representations": representations}
        variables.update(
            {k: state.variables[k] for k in node.variable_names if k in state.variables}
        )
        response = await self.fetcher.fetch(
            node.service, node.operation, variables, headers=state.headers
        )
        drop_typename = node.drops_typename
        entities = (response.data or {}).get("_entities")
        if isinstance(entities, list):
            for position, entity in enumerate(entities[: len(owners)]):
                if not isinstance(entity, dict):
                    continue
                if drop_typename:
                    entity = {k: v for k, v in entity.items() if k != "__typename"}
                for obj in owners[position]:
                    deep_merge(obj, entity)
        failed = response.failed or (entities is None and not response.errors)
        if not failed and not response.errors:
            return
        paths = paths_of(state.data, flatten.path)
        owner_paths = [[paths.get(id(obj), []) for obj in group] for group in owners]
        if failed:
            state.error_paths += [p for group in owner_paths for p in group]
        for error in response.errors:
            self._entity_error(error, owner_paths, state, failed=response.failed)

    def _entity_error(
        self,
        error: dict[str, Any],
        owners: list[list[ResponsePath]],
        state: ExecutionState,
        *,
        failed: bool,
    ) -> None:
        path = error.get("path")
        if (
            isinstance(path, list)
            and len(path) >= 2
            and path[0] == "_entities"
            and isinstance(path[1], int)
            and 0 <= path[1] < len(owners)
        ):
            for owner_path in owners[path[1]]:
                client_path = [*owner_path, *path[2:]]
                state.errors.append(client_error(error, client_path))
                state.error_paths.append(client_path)
            return
        first = owners[0][0] if owners and owners[0] else None
        state.errors.append(client_error(error, first if failed else None))
        for group in owners:
            state.error_paths += group
