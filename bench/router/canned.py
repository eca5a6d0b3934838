"""Canned subgraphs: every test-bed subgraph answered from recorded responses, by one fast
asyncio HTTP server, so a benchmark measures the gateway and not the subgraphs.

Two gateways phrase subgraph operations differently (literals vs variables, aliased
`_entities`, extra key fields in representations, `__typename` sprinkled around), so the
server does not match query text. Instead the recordings are loaded into a `Store`: per
subgraph, the root fields' values and every entity seen, with each object's fields keyed
by *field name + arguments* (never by alias). A request is answered by parsing its
operation and projecting the stored values onto its selection set: aliases, fragments,
`__typename`, `@skip`/`@include`, variables and any number of representations are handled.
`_entities` representations are matched to stored entities of the same `__typename` whose
common fields are equal (so extra fields such as `priceCents` next to a key do not matter).
A field nobody recorded is a loud failure (HTTP 500 + a counted error), never a guess.

Each distinct request body is resolved once; after that the answer is a dict lookup on the
raw body bytes, so the hot path is: httptools parse, lookup, one `transport.write`.

    python -m bench.router.canned --port 4100 [--recordings DIR] [--supergraph FILE]

serves `http://127.0.0.1:PORT/<subgraph>/graphql` for every subgraph in the recordings, plus
`GET /__stats` (requests per subgraph, cache misses, errors), `POST /__reset` (zero the
stats) and `POST /__delay?ms=N` (answer every GraphQL request N ms late; to observe
in-flight deduplication).
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import json
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import httptools
import orjson
from graphql import (
    BooleanValueNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLSchema,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    VariableNode,
    build_schema,
    get_named_type,
    is_abstract_type,
    is_object_type,
    parse,
    value_from_ast_untyped,
)

HERE = Path(__file__).resolve().parent
RECORDINGS_DIR = HERE / "recordings"
ROOT = HERE.parents[1]
SUPERGRAPH = ROOT / "tests" / "federation" / "testbed" / "supergraph.graphql"
MAX_CACHED_BODIES = 4096

Json = Any
Obj = dict[str, Any]


class MissingRecording(LookupError):
    """The request asks for something no recording contains."""


# --- operations -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Operation:
    selection_set: SelectionSetNode
    fragments: Mapping[str, FragmentDefinitionNode]
    variables: dict[str, Any]


def parse_operation(
    query: str, variables: Mapping[str, Any] | None, operation_name: str | None
) -> Operation:
    document = parse(query)
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if operation_name is not None:
        operations = [o for o in operations if o.name and o.name.value == operation_name]
    if len(operations) != 1:
        raise MissingRecording(f"cannot pick one operation (name {operation_name!r})")
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    return Operation(operations[0].selection_set, fragments, dict(variables or {}))


def _included(node: FieldNode | InlineFragmentNode | FragmentSpreadNode, op: Operation) -> bool:
    for directive in node.directives or ():
        name = directive.name.value
        if name not in ("skip", "include"):
            continue
        arg = next((a for a in directive.arguments or () if a.name.value == "if"), None)
        if arg is None:
            continue
        if isinstance(arg.value, VariableNode):
            value = bool(op.variables.get(arg.value.name.value))
        elif isinstance(arg.value, BooleanValueNode):
            value = arg.value.value
        else:
            value = bool(value_from_ast_untyped(arg.value, op.variables))
        if (name == "skip" and value) or (name == "include" and not value):
            return False
    return True


def field_key(node: FieldNode, op: Operation) -> str:
    """A field's identity inside its object: its name plus its non-null arguments."""
    args = {
        a.name.value: value_from_ast_untyped(a.value, op.variables) for a in node.arguments or ()
    }
    args = {k: v for k, v in args.items() if v is not None}
    if not args:
        return node.name.value
    return node.name.value + orjson.dumps(args, option=orjson.OPT_SORT_KEYS).decode()


def collect_fields(
    selection_sets: Iterable[SelectionSetNode],
    op: Operation,
    applies: Any,
) -> dict[str, list[FieldNode]]:
    """Fields by response key, in order; `applies(type_condition)` decides fragments."""
    fields: dict[str, list[FieldNode]] = {}

    def walk(selection_set: SelectionSetNode) -> None:
        for node in selection_set.selections:
            if not _included(node, op):  # type: ignore[arg-type]
                continue
            if isinstance(node, FieldNode):
                key = node.alias.value if node.alias else node.name.value
                fields.setdefault(key, []).append(node)
            elif isinstance(node, InlineFragmentNode):
                condition = node.type_condition.name.value if node.type_condition else None
                if applies(condition):
                    walk(node.selection_set)
            elif isinstance(node, FragmentSpreadNode):
                fragment = op.fragments[node.name.value]
                if applies(fragment.type_condition.name.value):
                    walk(fragment.selection_set)

    for selection_set in selection_sets:
        walk(selection_set)
    return fields


def _sub_selections(nodes: Sequence[FieldNode]) -> list[SelectionSetNode]:
    return [n.selection_set for n in nodes if n.selection_set is not None]


# --- the store ----------------------------------------------------------------------------------


def deep_merge(into: Obj, new: Obj) -> Obj:
    for key, value in new.items():
        old = into.get(key)
        if isinstance(old, dict) and isinstance(value, dict):
            deep_merge(old, value)
        elif isinstance(old, list) and isinstance(value, list) and len(old) == len(value):
            into[key] = [
                deep_merge(o, v) if isinstance(o, dict) and isinstance(v, dict) else v
                for o, v in zip(old, value, strict=True)
            ]
        else:
            into[key] = value
    return into


def _same_entity(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    """Representations of one entity: same type, every field both carry is equal."""
    if a.get("__typename") != b.get("__typename"):
        return False
    common = (a.keys() & b.keys()) - {"__typename"}
    return bool(common) and all(a[k] == b[k] for k in common)


@dataclass
class SubgraphData:
    root: Obj = field(default_factory=dict)
    # (representation, fields) for every entity seen
    entities: list[tuple[Obj, Obj]] = field(default_factory=list)

    def add_entity(self, rep: Obj, obj: Obj) -> None:
        for known_rep, known in self.entities:
            if _same_entity(known_rep, rep):
                deep_merge(known_rep, copy.deepcopy(rep))
                deep_merge(known, obj)
                return
        self.entities.append((copy.deepcopy(rep), obj))

    def entity(self, rep: Mapping[str, Any]) -> Obj:
        found: Obj = {}
        matched = False
        for known_rep, known in self.entities:
            if _same_entity(known_rep, rep):
                deep_merge(found, copy.deepcopy(known))
                matched = True
        if not matched:
            raise MissingRecording(f"no recorded entity for representation {dict(rep)}")
        return found


class Store:
    """Recorded subgraph data, keyed by field name + arguments; answers any phrasing."""

    def __init__(self, schema: GraphQLSchema) -> None:
        self.schema = schema
        self.subgraphs: dict[str, SubgraphData] = {}

    # ingest -------------------------------------------------------------------------------

    def ingest(
        self,
        subgraph: str,
        query: str,
        variables: Mapping[str, Any] | None,
        operation_name: str | None,
        response: Mapping[str, Any],
    ) -> None:
        data = response.get("data")
        if not isinstance(data, dict):
            raise ValueError(f"{subgraph}: recorded response has no data: {response}")
        if response.get("errors"):
            raise ValueError(f"{subgraph}: recorded response has errors: {response['errors']}")
        op = parse_operation(query, variables, operation_name)
        target = self.subgraphs.setdefault(subgraph, SubgraphData())
        for key, nodes in collect_fields([op.selection_set], op, lambda _: True).items():
            node = nodes[0]
            if key not in data or node.name.value == "__typename":
                continue
            value = data[key]
            if node.name.value == "_entities":
                reps = next(
                    value_from_ast_untyped(a.value, op.variables)
                    for a in node.arguments or ()
                    if a.name.value == "representations"
                )
                for rep, item in zip(reps, value, strict=True):
                    if isinstance(item, dict):
                        target.add_entity(rep, self._canonical(item, _sub_selections(nodes), op))
            else:
                canonical = {
                    field_key(node, op): self._canonical(value, _sub_selections(nodes), op)
                }
                deep_merge(target.root, canonical)

    def _canonical(
        self, value: Json, selection_sets: list[SelectionSetNode], op: Operation
    ) -> Json:
        if value is None or not selection_sets:
            return value
        if isinstance(value, list):
            return [self._canonical(v, selection_sets, op) for v in value]
        out: Obj = {}
        for key, nodes in collect_fields(selection_sets, op, lambda _: True).items():
            if key not in value:
                continue
            name = nodes[0].name.value
            stored = "__typename" if name == "__typename" else field_key(nodes[0], op)
            out[stored] = self._canonical(value[key], _sub_selections(nodes), op)
        return out

    # answer -------------------------------------------------------------------------------

    def answer(self, subgraph: str, request: Mapping[str, Any]) -> Obj:
        target = self.subgraphs.get(subgraph)
        if target is None:
            raise MissingRecording(f"no recordings for subgraph {subgraph!r}")
        query = request.get("query")
        if not isinstance(query, str):
            raise MissingRecording("request has no query")
        op = parse_operation(query, request.get("variables"), request.get("operationName"))
        root = "Query"
        data: Obj = {}
        fields = collect_fields([op.selection_set], op, lambda c: c in (None, root))
        for key, nodes in fields.items():
            node = nodes[0]
            name = node.name.value
            if name == "__typename":
                data[key] = root
            elif name == "_entities":
                reps = next(
                    value_from_ast_untyped(a.value, op.variables)
                    for a in node.arguments or ()
                    if a.name.value == "representations"
                )
                data[key] = [
                    self._project(target.entity(rep), _sub_selections(nodes), op, rep["__typename"])
                    for rep in reps
                ]
            else:
                stored_key = field_key(node, op)
                if stored_key not in target.root:
                    raise MissingRecording(f"{subgraph}: no recorded root field {stored_key}")
                data[key] = self._project(
                    target.root[stored_key],
                    _sub_selections(nodes),
                    op,
                    self._field_type(root, name),
                )
        return {"data": data}

    def _field_type(self, parent: str | None, name: str) -> str | None:
        parent_type = self.schema.get_type(parent) if parent else None
        fields = getattr(parent_type, "fields", None)
        definition = fields.get(name) if fields else None
        return get_named_type(definition.type).name if definition else None

    def _applies(self, condition: str | None, typename: str | None) -> bool:
        if condition is None or condition == typename:
            return True
        abstract = self.schema.get_type(condition)
        concrete = self.schema.get_type(typename) if typename else None
        if abstract is None or concrete is None or not is_object_type(concrete):
            return False
        return is_abstract_type(abstract) and self.schema.is_sub_type(abstract, concrete)

    def _project(
        self,
        value: Json,
        selection_sets: list[SelectionSetNode],
        op: Operation,
        typename: str | None,
    ) -> Json:
        if value is None or not selection_sets:
            return value
        if isinstance(value, list):
            return [self._project(v, selection_sets, op, typename) for v in value]
        if not isinstance(value, dict):
            raise MissingRecording(f"expected an object of type {typename}, got {value!r}")
        actual = value.get("__typename", typename)
        out: Obj = {}
        fields = collect_fields(selection_sets, op, lambda c: self._applies(c, actual))
        for key, nodes in fields.items():
            name = nodes[0].name.value
            if name == "__typename":
                if actual is None:
                    raise MissingRecording("__typename of an object of unknown type")
                out[key] = actual
                continue
            stored_key = field_key(nodes[0], op)
            if stored_key not in value:
                raise MissingRecording(f"no recorded {actual}.{stored_key}")
            out[key] = self._project(
                value[stored_key], _sub_selections(nodes), op, self._field_type(actual, name)
            )
        return out


# --- recordings -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Exchange:
    """One subgraph request and the real subgraph's response to it."""

    subgraph: str
    query: str
    variables: dict[str, Any]
    operation_name: str | None
    response: dict[str, Any]

    def request(self) -> dict[str, Any]:
        return {
            "query": self.query,
            "variables": self.variables,
            "operationName": self.operation_name,
        }


def load_exchanges(directory: Path = RECORDINGS_DIR) -> list[Exchange]:
    exchanges: list[Exchange] = []
    for path in sorted(directory.glob("subgraphs-*.json")):
        for row in json.loads(path.read_text()):
            exchanges.append(
                Exchange(
                    subgraph=row["subgraph"],
                    query=row["query"],
                    variables=row.get("variables") or {},
                    operation_name=row.get("operationName"),
                    response=row["response"],
                )
            )
    if not exchanges:
        raise FileNotFoundError(f"no recordings in {directory} (run python -m bench.router.record)")
    return exchanges


def build_store(exchanges: Iterable[Exchange], supergraph_path: Path = SUPERGRAPH) -> Store:
    store = Store(build_schema(supergraph_path.read_text()))
    for ex in exchanges:
        store.ingest(ex.subgraph, ex.query, ex.variables, ex.operation_name, ex.response)
    return store


def check_store(store: Store, exchanges: Iterable[Exchange]) -> list[str]:
    """Replay every recorded request against the store; the differences (should be none)."""
    problems = []
    for ex in exchanges:
        try:
            got = store.answer(ex.subgraph, ex.request())
        except MissingRecording as error:
            problems.append(f"{ex.subgraph}: {error}")
            continue
        if got != ex.response:
            problems.append(f"{ex.subgraph}: {ex.query[:80]}: {got} != {ex.response}")
    return problems


# --- the HTTP server ----------------------------------------------------------------------------


def _http_response(status: bytes, body: bytes, content_type: bytes = b"application/json") -> bytes:
    return b"".join(
        (
            b"HTTP/1.1 ",
            status,
            b"\r\ncontent-type: ",
            content_type,
            b"\r\ncontent-length: ",
            str(len(body)).encode(),
            b"\r\n\r\n",
            body,
        )
    )


@dataclass
class Stats:
    requests: dict[str, int] = field(default_factory=dict)
    resolved: int = 0
    errors: int = 0
    last_error: str | None = None


class CannedApp:
    def __init__(self, store: Store) -> None:
        self.store = store
        self.paths = {f"/{name}/graphql".encode(): name for name in store.subgraphs}
        self.cache: dict[tuple[str, bytes], bytes] = {}
        self.stats = Stats()
        self.delay_s = 0.0

    def handle(self, method: bytes, url: bytes, body: bytes) -> bytes:
        path, _, query_string = url.partition(b"?")
        subgraph = self.paths.get(path)
        if subgraph is not None and method == b"POST":
            counts = self.stats.requests
            counts[subgraph] = counts.get(subgraph, 0) + 1
            cached = self.cache.get((subgraph, body))
            if cached is not None:
                return cached
            return self._resolve(subgraph, body)
        if path == b"/__stats":
            payload = {
                "requests": self.stats.requests,
                "resolved": self.stats.resolved,
                "errors": self.stats.errors,
                "last_error": self.stats.last_error,
            }
            return _http_response(b"200 OK", orjson.dumps(payload))
        if path == b"/__reset" and method == b"POST":
            self.stats = Stats()
            return _http_response(b"200 OK", b"{}")
        if path == b"/__delay" and method == b"POST":
            ms = query_string.partition(b"ms=")[2]
            self.delay_s = max(0.0, float(ms or 0) / 1000)
            return _http_response(b"200 OK", b"{}")
        if path == b"/health":
            return _http_response(b"200 OK", b"ok", b"text/plain")
        return _http_response(b"404 Not Found", b"{}")

    def _resolve(self, subgraph: str, body: bytes) -> bytes:
        self.stats.resolved += 1
        try:
            answer = self.store.answer(subgraph, orjson.loads(body))
        except (MissingRecording, orjson.JSONDecodeError, KeyError, TypeError) as error:
            self.stats.errors += 1
            self.stats.last_error = f"{subgraph}: {type(error).__name__}: {error}"
            message = {"errors": [{"message": f"canned subgraph: {error}"}]}
            return _http_response(b"500 Internal Server Error", orjson.dumps(message))
        response = _http_response(b"200 OK", orjson.dumps(answer))
        if len(self.cache) >= MAX_CACHED_BODIES:
            self.cache.clear()
        self.cache[(subgraph, body)] = response
        return response


class HttpConnection(asyncio.Protocol):
    def __init__(self, app: CannedApp) -> None:
        self.app = app
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.url = b""
        self.body: list[bytes] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            if self.transport is not None:
                self.transport.write(_http_response(b"400 Bad Request", b"{}"))
                self.transport.close()

    # httptools callbacks
    def on_message_begin(self) -> None:
        self.url = b""
        self.body = []

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        response = self.app.handle(self.parser.get_method(), self.url, b"".join(self.body))
        keep_alive = self.parser.should_keep_alive()
        if self.app.delay_s and self.url.endswith(b"/graphql"):
            transport.pause_reading()
            asyncio.get_running_loop().call_later(
                self.app.delay_s, self._send_later, transport, response, keep_alive
            )
            return
        transport.write(response)
        if not keep_alive:
            transport.close()

    @staticmethod
    def _send_later(transport: asyncio.Transport, response: bytes, keep_alive: bool) -> None:
        if transport.is_closing():
            return
        transport.write(response)
        if keep_alive:
            transport.resume_reading()
        else:
            transport.close()


async def serve(app: CannedApp, host: str, port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: HttpConnection(app), host, port, backlog=1024)
    print(f"canned subgraphs listening on http://{host}:{port}", flush=True)
    async with server:
        await server.serve_forever()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--recordings", type=Path, default=RECORDINGS_DIR)
    parser.add_argument("--supergraph", type=Path, default=SUPERGRAPH)
    args = parser.parse_args(argv)
    exchanges = load_exchanges(args.recordings)
    store = build_store(exchanges, args.supergraph)
    problems = check_store(store, exchanges)
    if problems:
        print("recordings do not replay:\n" + "\n".join(problems), file=sys.stderr)
        return 1
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvicorn[standard] brings it
        asyncio.run(serve(CannedApp(store), args.host, args.port))
    else:
        uvloop.run(serve(CannedApp(store), args.host, args.port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
