"""The operation corpus over the federation test bed, and how to compare two routers' answers.

Each operation is one file `operations/<name>.graphql`. Leading `# key: value` comment lines
carry its metadata (GraphQL ignores them, so the file is sent as it is):

    # features: entity-join key-composite      (space-separated tags, see FEATURES)
    # variables: {"id": "b3"}                  (JSON; absent = no variables sent)
    # operationName: Second                    (absent = none sent)
    # hive-differs: <why>                      (Hive Gateway's answer is wrong here)

`expected/<name>.json` is the hand-reviewed correct answer: `data` (absent when the response
must have no `data` entry) and `errors` (messages and paths, for the reader; only their
presence and number are compared). For most operations it is what Hive Gateway answered; for
`hive-differs` operations it is the correct answer that Hive Gateway fails to give.

Run every operation against a fresh test bed (`hive.reset_testbed` before each one): the
mutations change state.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

HERE = Path(__file__).resolve().parent
OPERATIONS_DIR = HERE / "operations"
EXPECTED_DIR = HERE / "expected"

FEATURES: frozenset[str] = frozenset(
    {
        "alias",
        "alias-key-field",
        "custom-scalar",
        "entity-batching",
        "entity-interface",
        "entity-join",
        "enum",
        "error-field",
        "field-arguments",
        "fragment-inline",
        "fragment-named",
        "inaccessible",
        "input-object",
        "interface",
        "interface-object",
        "introspection",
        "invalid",
        "key-composite",
        "key-multiple",
        "key-nested",
        "key-resolvable-false",
        "key-single",
        "mutation",
        "mutation-order",
        "nested-lists",
        "null-propagation",
        "operation-name",
        "override",
        "partial-errors",
        "provides",
        "repeated-entities",
        "requires",
        "requires-nested",
        "root",
        "scalar",
        "shareable",
        "skip-include",
        "slow",
        "typename",
        "union",
        "variable-defaults",
        "variables",
    }
)

_META_KEYS = {"features", "variables", "operationName", "hive-differs"}


@dataclass(frozen=True)
class Operation:
    name: str
    query: str
    variables: dict[str, Any] | None = None
    operation_name: str | None = None
    features: tuple[str, ...] = ()
    hive_differs: str | None = None
    path: Path = field(default=Path(), compare=False)

    @property
    def is_mutation(self) -> bool:
        body = "\n".join(
            line for line in self.query.splitlines() if not line.lstrip().startswith("#")
        )
        return body.lstrip().startswith("mutation")

    def request_body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"query": self.query}
        if self.variables is not None:
            body["variables"] = self.variables
        if self.operation_name is not None:
            body["operationName"] = self.operation_name
        return body

    @property
    def expected_path(self) -> Path:
        return EXPECTED_DIR / f"{self.name}.json"

    def expected(self) -> dict[str, Any]:
        loaded: dict[str, Any] = json.loads(self.expected_path.read_text())
        return loaded


def parse_operation(path: Path) -> Operation:
    text = path.read_text()
    meta: dict[str, str] = {}
    for line in text.splitlines():
        if not line.startswith("#"):
            break
        key, sep, value = line[1:].strip().partition(":")
        if sep and key.strip() in _META_KEYS:
            meta[key.strip()] = value.strip()
    features = tuple(meta.get("features", "").split())
    unknown = set(features) - FEATURES
    if unknown:
        raise ValueError(f"{path.name}: unknown features {sorted(unknown)}")
    return Operation(
        name=path.stem,
        query=text,
        variables=json.loads(meta["variables"]) if "variables" in meta else None,
        operation_name=meta.get("operationName"),
        features=features,
        hive_differs=meta.get("hive-differs"),
        path=path,
    )


def load_operations() -> list[Operation]:
    """Every corpus operation, sorted by name."""
    return [parse_operation(p) for p in sorted(OPERATIONS_DIR.glob("*.graphql"))]


def execute(
    client: httpx.Client, url: str, operation: Operation, headers: dict[str, str] | None = None
) -> dict[str, Any]:
    """POST the operation; return the JSON body whatever the HTTP status."""
    response = client.post(
        url,
        json=operation.request_body(),
        headers={
            "accept": "application/graphql-response+json, application/json",
            **(headers or {}),
        },
    )
    try:
        body: dict[str, Any] = response.json()
    except ValueError as exc:
        raise AssertionError(
            f"{operation.name}: HTTP {response.status_code}: {response.text}"
        ) from exc
    return body


def summarize(response: dict[str, Any]) -> dict[str, Any]:
    """What an expected file keeps of a response: data (if present) and errors' message/path."""
    kept: dict[str, Any] = {}
    if "data" in response:
        kept["data"] = response["data"]
    errors = response.get("errors") or []
    if errors:
        kept["errors"] = [
            {k: e[k] for k in ("message", "path") if k in e} for e in errors if isinstance(e, dict)
        ]
    return kept


def _same_json(a: Any, b: Any) -> bool:
    """JSON equality where 4 == 4.0 (JavaScript routers print whole floats as integers)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same_json(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same_json(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


def _first_difference(a: Any, b: Any, path: str = "data") -> str:
    if isinstance(a, dict) and isinstance(b, dict):
        if list(a) != list(b) and a.keys() != b.keys():
            return f"{path}: keys {sorted(a)} != {sorted(b)}"
        for k in a:
            if not _same_json(a[k], b[k]):
                return _first_difference(a[k], b[k], f"{path}.{k}")
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return f"{path}: {len(a)} items != {len(b)} items"
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            if not _same_json(x, y):
                return _first_difference(x, y, f"{path}[{i}]")
    return f"{path}: {json.dumps(a)[:300]} != {json.dumps(b)[:300]}"


def compare(
    ours: dict[str, Any], theirs: dict[str, Any], *, error_count: bool = False
) -> str | None:
    """None when both responses have the same `data` (including whether the entry is present
    at all) and both have errors or both have none; otherwise what differs. With
    `error_count`, the number of errors must match too."""
    if ("data" in ours) != ("data" in theirs):
        return f"data present: ours {'data' in ours}, theirs {'data' in theirs}"
    if "data" in ours and not _same_json(ours["data"], theirs["data"]):
        return _first_difference(ours["data"], theirs["data"])
    ours_errors = ours.get("errors") or []
    theirs_errors = theirs.get("errors") or []
    if bool(ours_errors) != bool(theirs_errors):
        return (
            f"errors present: ours {len(ours_errors)}, theirs {len(theirs_errors)}: "
            + json.dumps(ours_errors or theirs_errors)[:500]
        )
    if error_count and len(ours_errors) != len(theirs_errors):
        return f"error count: ours {len(ours_errors)}, theirs {len(theirs_errors)}"
    return None
