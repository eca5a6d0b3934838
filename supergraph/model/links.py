"""`@link` resolution: which local names a supergraph uses for each linked feature's
directives and types (`@join__type`, or `@j__type` under `as: "j"`, or an imported name)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from graphql import DocumentNode, SchemaDefinitionNode, SchemaExtensionNode
from graphql.utilities import value_from_ast_untyped

_FEATURE_URL = re.compile(
    r"^(?P<base>.*/(?P<name>[A-Za-z_][A-Za-z0-9_-]*))/v(?P<version>\d+\.\d+)$"
)


@dataclass(frozen=True)
class Feature:
    url: str
    name: str
    version: tuple[int, int]
    prefix: str
    # Element name in the spec (e.g. "@inaccessible", "@type", "Import") → local name.
    imports: dict[str, str] = field(default_factory=dict)

    def directive(self, spec_name: str) -> str:
        """The local name of one of the feature's directives, without the `@`."""
        imported = self.imports.get("@" + spec_name)
        if imported:
            return imported.lstrip("@")
        if spec_name == self.name:
            return self.prefix
        return f"{self.prefix}__{spec_name}"

    def owns_name(self, name: str) -> bool:
        """Whether a directive or type name (without `@`) belongs to this feature."""
        return (
            name == self.prefix
            or name.startswith(self.prefix + "__")
            or name in {v.lstrip("@") for v in self.imports.values()}
        )


def linked_features(document: DocumentNode) -> dict[str, Feature]:
    """Features linked on the schema definition, keyed by spec name (`join`, `link`, …)."""
    features: dict[str, Feature] = {}
    for definition in document.definitions:
        if not isinstance(definition, SchemaDefinitionNode | SchemaExtensionNode):
            continue
        for directive in definition.directives or ():
            args = {
                a.name.value: value_from_ast_untyped(a.value) for a in directive.arguments or ()
            }
            url = args.get("url") or args.get("feature")  # `feature:` is the old @core form
            if not isinstance(url, str):
                continue
            match = _FEATURE_URL.match(url)
            if not match:
                continue
            name = match["name"]
            major, minor = (int(p) for p in match["version"].split("."))
            imports: dict[str, str] = {}
            for item in args.get("import") or ():
                if isinstance(item, str):
                    imports[item] = item
                elif isinstance(item, dict) and "name" in item:
                    imports[item["name"]] = item.get("as") or item["name"]
            prefix = args.get("as") or name
            features[name] = Feature(url, name, (major, minor), str(prefix), imports)
    if "link" not in features:
        # Even a supergraph that only says @link(url: ".../join/…") uses @link itself.
        features["link"] = Feature("https://specs.apollo.dev/link/v1.0", "link", (1, 0), "link")
    return features
