"""A subgraph's `@link`s, and the local names they give to federation directives."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from graphql import (
    ConstDirectiveNode,
    DocumentNode,
    ListValueNode,
    ObjectValueNode,
    SchemaDefinitionNode,
    SchemaExtensionNode,
    StringValueNode,
)

from supergraph.compose import specs


class LinkError(ValueError):
    """A `@link` that cannot be understood; `code` is the Apollo/Guild error code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class LinkImport:
    name: str
    alias: str | None = None

    @property
    def is_directive(self) -> bool:
        return self.name.startswith("@")

    @property
    def local_name(self) -> str:
        return self.alias or self.name


@dataclass(frozen=True)
class Link:
    identity: str
    name: str | None
    version: str | None
    imports: tuple[LinkImport, ...] = ()

    @property
    def url(self) -> str:
        return "/".join(part for part in (self.identity, self.version) if part)


def parse_link_url(url: str) -> tuple[str, str | None, str | None]:
    """`https://specs.apollo.dev/federation/v2.3` → (identity, name, version)."""
    parts_of = urlsplit(url)
    if not parts_of.scheme or not parts_of.netloc:
        return url, None, None
    origin = f"{parts_of.scheme}://{parts_of.netloc}"
    parts = [part for part in parts_of.path.split("/") if part]
    if not parts:
        return origin, None, None
    last = parts[-1]
    is_version = re.match(r"^v\d+", last, re.IGNORECASE) is not None
    if len(parts) >= 2 and is_version:
        return "/".join([origin, *parts[:-1]]), parts[-2], last
    if is_version:
        return origin, None, last
    return "/".join([origin, *parts]), last, None


def _imports(value: object) -> tuple[LinkImport, ...]:
    if not isinstance(value, ListValueNode):
        raise LinkError("INVALID_LINK_DIRECTIVE_USAGE", "Invalid import binding: expected a list")
    imports: list[LinkImport] = []
    for item in value.values:
        if isinstance(item, StringValueNode):
            imports.append(LinkImport(item.value))
            continue
        if isinstance(item, ObjectValueNode):
            fields = {f.name.value: f.value for f in item.fields}
            name, alias = fields.get("name"), fields.get("as")
            if isinstance(name, StringValueNode):
                renamed = alias.value if isinstance(alias, StringValueNode) else None
                if renamed is not None and renamed.startswith("@") != name.value.startswith("@"):
                    raise LinkError(
                        "INVALID_LINK_DIRECTIVE_USAGE",
                        f"Invalid import binding: {name.value} and {renamed} must be of the "
                        "same kind",
                    )
                imports.append(LinkImport(name.value, renamed))
                continue
        raise LinkError("INVALID_LINK_DIRECTIVE_USAGE", "Invalid import binding")
    return tuple(imports)


def link_of(directive: ConstDirectiveNode) -> Link | None:
    arguments = {arg.name.value: arg.value for arg in directive.arguments or ()}
    url = arguments.get("url")
    if not isinstance(url, StringValueNode):
        return None
    identity, name, version = parse_link_url(url.value)
    imported = arguments.get("import")
    return Link(identity, name, version, _imports(imported) if imported is not None else ())


def links_of(document: DocumentNode) -> list[Link]:
    """Every `@link` on the schema definition or its extensions, checked like The Guild does."""
    links: list[Link] = []
    seen: set[str] = set()
    for definition in document.definitions:
        if not isinstance(definition, SchemaDefinitionNode | SchemaExtensionNode):
            continue
        for directive in definition.directives or ():
            if directive.name.value != "link":
                continue
            link = link_of(directive)
            if link is None:
                continue
            if link.identity in seen:
                raise LinkError(
                    "INVALID_LINK_DIRECTIVE_USAGE",
                    f"Duplicate inclusion of feature {link.identity}",
                )
            seen.add(link.identity)
            if link.version and not re.match(r"^v\d+\.\d+", link.version):
                raise LinkError(
                    "INVALID_LINK_IDENTIFIER",
                    f"Expected a version string (of the form v1.2), got {link.version}",
                )
            links.append(link)
    return links


@dataclass(frozen=True)
class FederationNames:
    """How one subgraph spells the federation directives: imports, renames, `federation__`."""

    version: str
    # Local directive name (no "@") → federation directive name.
    directives: dict[str, str] = field(default_factory=dict)
    # Imported (possibly renamed) local names of federation types.
    types: frozenset[str] = frozenset()
    imports: tuple[LinkImport, ...] = ()

    def canonical(self, directive_name: str) -> str | None:
        return self.directives.get(directive_name)

    def local(self, canonical: str) -> str:
        """The name this subgraph applies `canonical` by (the import name if imported)."""
        for local, name in self.directives.items():
            if name == canonical and not local.startswith("federation__"):
                return local
        return f"federation__{canonical}"


def federation_names(links: Sequence[Link]) -> FederationNames | None:
    """The federation names of a subgraph, or None when it does not link Federation 2."""
    link = next((link for link in links if link.identity == specs.FEDERATION_IDENTITY), None)
    if link is None or link.version is None:
        return None
    version = link.version
    if version not in specs.FEDERATION_VERSIONS:
        raise LinkError(
            "UNKNOWN_FEDERATION_LINK_VERSION",
            f"Invalid version {version} for the federation feature in @link directive on schema",
        )
    offered = specs.directives_in(version)
    offered_types = specs.types_in(version)
    directives = {f"federation__{name}": name for name in offered}
    types: set[str] = set()
    for imported in link.imports:
        bare = imported.name.removeprefix("@")
        if imported.is_directive and bare in offered:
            directives[imported.local_name.removeprefix("@")] = bare
        elif not imported.is_directive and bare in offered_types:
            types.add(imported.local_name)
        else:
            raise LinkError(
                "INVALID_LINK_DIRECTIVE_USAGE", f'Cannot import unknown element "{imported.name}".'
            )
    return FederationNames(version, directives, frozenset(types), link.imports)
