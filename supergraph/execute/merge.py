"""Where entity fetches read their representations from and write their results to: paths in
the response tree, representation building, deep merging and error re-pathing."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from supergraph.selections import Field, Selection

ResponsePath = list[str | int]


def objects_at(data: Any, path: Sequence[str]) -> list[dict[str, Any]]:
    """Every object at a plan path (`@` walks list items, `|A,B` keeps those typenames)."""
    current: list[Any] = [data]
    for segment in path:
        following: list[Any] = []
        if segment == "@":
            for value in current:
                if isinstance(value, list):
                    following += [item for item in value if item is not None]
        elif segment.startswith("|"):
            types = set(segment[1:].split(","))
            following = [v for v in current if isinstance(v, dict) and v.get("__typename") in types]
        else:
            for value in current:
                if isinstance(value, dict):
                    child = value.get(segment)
                    if child is not None:
                        following.append(child)
        current = following
    return [value for value in current if isinstance(value, dict)]


def paths_of(data: Any, path: Sequence[str]) -> dict[int, ResponsePath]:
    """The concrete response path (list indexes filled in) of every object at a plan path,
    by object identity. Only needed when there are errors to re-path, so built lazily."""
    current: list[tuple[Any, ResponsePath]] = [(data, [])]
    for segment in path:
        following: list[tuple[Any, ResponsePath]] = []
        if segment == "@":
            for value, at in current:
                if isinstance(value, list):
                    following += [
                        (item, [*at, i]) for i, item in enumerate(value) if item is not None
                    ]
        elif segment.startswith("|"):
            types = set(segment[1:].split(","))
            following = [
                (v, at) for v, at in current if isinstance(v, dict) and v.get("__typename") in types
            ]
        else:
            for value, at in current:
                if isinstance(value, dict):
                    child = value.get(segment)
                    if child is not None:
                        following.append((child, [*at, segment]))
        current = following
    return {id(value): at for value, at in current if isinstance(value, dict)}


class _Missing(Exception):
    pass


def representation(
    obj: dict[str, Any], requires: Sequence[Selection], typename: str | None
) -> dict[str, Any] | None:
    """The `_entities` representation of an object, or None when its data is incomplete."""
    try:
        rep = _represent(obj, requires)
    except _Missing:
        return None
    if typename is not None:
        rep["__typename"] = typename
    return rep


def _represent(obj: dict[str, Any], selections: Sequence[Selection]) -> dict[str, Any]:
    rep: dict[str, Any] = {}
    for selection in selections:
        if isinstance(selection, Field):
            if selection.response_key not in obj:
                raise _Missing
            value = obj[selection.response_key]
            if selection.selections and value is not None:
                value = _represent_value(value, selection.selections)
            rep[selection.name] = value
        elif selection.type_condition is None or selection.type_condition == obj.get("__typename"):
            rep.update(_represent(obj, selection.selections))
    return rep


def _represent_value(value: Any, selections: Sequence[Selection]) -> Any:
    if isinstance(value, list):
        return [_represent_value(v, selections) if v is not None else None for v in value]
    if isinstance(value, dict):
        return _represent(value, selections)
    return value


def deep_merge(target: dict[str, Any], source: dict[str, Any]) -> None:
    for key, value in source.items():
        existing = target.get(key)
        if isinstance(existing, dict) and isinstance(value, dict):
            deep_merge(existing, value)
        elif isinstance(existing, list) and isinstance(value, list) and len(existing) == len(value):
            for i, (old, new) in enumerate(zip(existing, value, strict=True)):
                if isinstance(old, dict) and isinstance(new, dict):
                    deep_merge(old, new)
                else:
                    existing[i] = new
        else:
            target[key] = value


def client_error(error: dict[str, Any], path: ResponsePath | None) -> dict[str, Any]:
    """A subgraph error as the client sees it: its message and extensions, at a client path."""
    message = error.get("message")
    result: dict[str, Any] = {"message": message if isinstance(message, str) else "Subgraph error."}
    if path is not None:
        result["path"] = path
    extensions = error.get("extensions")
    if isinstance(extensions, dict) and extensions:
        result["extensions"] = extensions
    return result
