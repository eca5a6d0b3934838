"""Apollo's persisted query manifest: read by the router for safelisting, and written from
`.graphql` files by `reelgraph persisted extract`."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from graphql import (
    DocumentNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLSchema,
    OperationDefinitionNode,
    SelectionSetNode,
    parse,
    print_ast,
    validate,
)

MANIFEST_FORMAT = "apollo-persisted-query-manifest"
OPERATION_TYPES = frozenset({"query", "mutation", "subscription"})
_FIELDS = ("id", "name", "type", "body")


class ManifestError(ValueError):
    """A manifest, or the documents it is built from, is not usable; the message says where."""


def document_hash(text: str) -> str:
    """The SHA-256 hex digest APQ hashes and our manifest ids are made of."""
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class PersistedOperation:
    id: str
    name: str
    type: str
    body: str


class Manifest:
    """The operations of one manifest, found by id or by the SHA-256 of their body."""

    def __init__(self, operations: Iterable[PersistedOperation]) -> None:
        self.operations = tuple(operations)
        self._by_id: dict[str, PersistedOperation] = {}
        self._by_hash: dict[str, PersistedOperation] = {}
        for operation in self.operations:
            if operation.id in self._by_id:
                raise ManifestError(f"operation id {operation.id!r} appears twice")
            self._by_id[operation.id] = operation
            self._by_hash.setdefault(document_hash(operation.body), operation)

    def __len__(self) -> int:
        return len(self.operations)

    def by_hash(self, digest: str) -> PersistedOperation | None:
        return self._by_hash.get(digest)

    def by_id(self, document_id: str) -> PersistedOperation | None:
        """A manifest id, or `sha256:<hex>` (GraphQL over HTTP's persisted documents) naming
        an operation by the hash of its body."""
        found = self._by_id.get(document_id)
        if found is None and document_id.startswith("sha256:"):
            found = self._by_hash.get(document_id.removeprefix("sha256:"))
        return found

    @classmethod
    def load(cls, path: Path) -> Manifest:
        try:
            data = json.loads(path.read_text())
        except OSError as error:
            raise ManifestError(f"{path}: cannot read the manifest ({error.strerror})") from None
        except json.JSONDecodeError as error:
            raise ManifestError(f"{path}: not JSON ({error})") from None
        return cls.from_json(data, source=str(path))

    @classmethod
    def from_json(cls, data: Any, *, source: str = "manifest") -> Manifest:
        if not isinstance(data, dict) or data.get("format") != MANIFEST_FORMAT:
            raise ManifestError(f"{source}: 'format' must be {MANIFEST_FORMAT!r}")
        if data.get("version") != 1:
            raise ManifestError(f"{source}: only manifest version 1 is supported")
        entries = data.get("operations")
        if not isinstance(entries, list):
            raise ManifestError(f"{source}: 'operations' must be a list")
        operations = []
        for index, entry in enumerate(entries):
            values: list[Any] = (
                [entry.get(key) for key in _FIELDS] if isinstance(entry, dict) else []
            )
            if not values or not all(isinstance(v, str) and v for v in values):
                raise ManifestError(
                    f"{source}: operations[{index}] needs string 'id', 'name', 'type' and 'body'"
                )
            operation = PersistedOperation(*values)
            if operation.type not in OPERATION_TYPES:
                raise ManifestError(f"{source}: operations[{index}] has type {operation.type!r}")
            operations.append(operation)
        try:
            return cls(operations)
        except ManifestError as error:
            raise ManifestError(f"{source}: {error}") from None

    def to_json(self) -> str:
        data = {
            "format": MANIFEST_FORMAT,
            "version": 1,
            "operations": [
                {"id": op.id, "name": op.name, "type": op.type, "body": op.body}
                for op in self.operations
            ],
        }
        return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


# --- building a manifest from .graphql files ------------------------------------------------


def extract_manifest(paths: Iterable[Path], api_schema: GraphQLSchema | None = None) -> Manifest:
    """One manifest operation per named operation in the `.graphql` files under `paths`,
    with the fragments it uses, sorted by name; validated against `api_schema` if given."""
    operations: dict[str, tuple[OperationDefinitionNode, Path]] = {}
    fragments: dict[str, tuple[FragmentDefinitionNode, Path]] = {}
    problems: list[str] = []
    for file in _graphql_files(paths):
        try:
            document = parse(file.read_text())
        except GraphQLError as error:
            problems.append(f"{file}: {error.message} {_where(error)}")
            continue
        for definition in document.definitions:
            if isinstance(definition, OperationDefinitionNode):
                if definition.name is None:
                    line = definition.loc.start_token.line if definition.loc else 1
                    problems.append(
                        f"{file}:{line}: anonymous operation; persisted operations need a name"
                    )
                    continue
                name = definition.name.value
                if name in operations:
                    problems.append(f"{file}: operation {name} is also in {operations[name][1]}")
                operations[name] = (definition, file)
            elif isinstance(definition, FragmentDefinitionNode):
                name = definition.name.value
                if name in fragments:
                    problems.append(f"{file}: fragment {name} is also in {fragments[name][1]}")
                fragments[name] = (definition, file)
            else:
                problems.append(f"{file}: only operations and fragments belong in a manifest")
    result = []
    for name in sorted(operations):
        operation, file = operations[name]
        used: dict[str, FragmentDefinitionNode] = {}
        missing = _collect_fragments(operation.selection_set, fragments, used)
        if missing:
            problems.append(f"{file}: {name} uses unknown fragment(s) {', '.join(sorted(missing))}")
            continue
        # The operation first, then its fragments by name: the same documents always print
        # to the same body, so the id (its hash) only changes when the operation does.
        document = DocumentNode(
            definitions=(operation, *(used[fragment] for fragment in sorted(used)))
        )
        if api_schema is not None:
            errors = validate(api_schema, document)
            problems.extend(f"{file}: {name}: {e.message}" for e in errors)
            if errors:
                continue
        body = print_ast(document)
        result.append(
            PersistedOperation(
                id=document_hash(body), name=name, type=operation.operation.value, body=body
            )
        )
    if problems:
        raise ManifestError("\n".join(problems))
    return Manifest(result)


def _graphql_files(paths: Iterable[Path]) -> Iterator[Path]:
    for path in paths:
        if path.is_dir():
            yield from sorted(path.rglob("*.graphql"))
        else:
            yield path


def _where(error: GraphQLError) -> str:
    locations = error.locations or ()
    return f"(line {locations[0].line})" if locations else ""


def _collect_fragments(
    selection_set: SelectionSetNode | None,
    known: dict[str, tuple[FragmentDefinitionNode, Path]],
    used: dict[str, FragmentDefinitionNode],
) -> set[str]:
    """Adds every fragment `selection_set` reaches, transitively, to `used`; returns the
    names it spreads that are not defined anywhere."""
    missing: set[str] = set()
    for selection in selection_set.selections if selection_set else ():
        if isinstance(selection, FragmentSpreadNode):
            name = selection.name.value
            if name in used:
                continue
            if name not in known:
                missing.add(name)
                continue
            used[name] = known[name][0]
            missing |= _collect_fragments(used[name].selection_set, known, used)
        else:
            missing |= _collect_fragments(getattr(selection, "selection_set", None), known, used)
    return missing
