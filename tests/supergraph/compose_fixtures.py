"""Subgraph sets for the composition tests, each exercising a group of Federation 2 features."""

from __future__ import annotations


def _link(version: str, *imports: str) -> str:
    names = ", ".join(f'"{name}"' for name in imports)
    return (
        f'extend schema @link(url: "https://specs.apollo.dev/federation/{version}", '
        f"import: [{names}])\n"
    )


_FED = _link(
    "v2.9",
    "@key",
    "@shareable",
    "@external",
    "@requires",
    "@provides",
    "@override",
    "@inaccessible",
    "@tag",
    "@interfaceObject",
    "@extends",
)

ENTITIES = {
    "accounts": _FED
    + """
type Query { me: User, user(id: ID!): User, organizations: [Organization!]! }
type User @key(fields: "id") @key(fields: "email") {
  id: ID!
  email: String!
  name: String @shareable
  organization: Organization
  address: Address
}
type Organization @key(fields: "id") { id: ID! name: String! }
type Address @shareable { street: String city: String }
""",
    "orders": _FED
    + """
type Query { orders: [Order!]! }
type Order @key(fields: "id customer { id }") {
  id: ID!
  customer: User!
  lines: [OrderLine!]!
  shippedTo: Address
}
type OrderLine @key(fields: "order { id customer { id } } position") {
  order: Order!
  position: Int!
  sku: String
}
type User @key(fields: "id") { id: ID! name: String @shareable orders: [Order!]! }
type Address @shareable { street: String city: String }
type Organization @key(fields: "id", resolvable: false) { id: ID! }
""",
    "reviews-v2": _FED
    + """
type User @key(fields: "id") { id: ID! reviewCount: Int! }
""",
}

REQUIRES_PROVIDES = {
    "products": _FED
    + """
type Query { products: [Product!]! product(upc: String!): Product }
type Product @key(fields: "upc") {
  upc: String!
  name: String!
  price: Int
  weight: Int
  dimensions: Dimensions
}
type Dimensions @shareable { width: Int height: Int depth: Int }
""",
    "shipping": _FED
    + """
extend type Product @key(fields: "upc") {
  upc: String! @external
  weight: Int @external
  dimensions: Dimensions @external
  shippingEstimate: Int @requires(fields: "weight dimensions { width height }")
  fragile: Boolean @requires(fields: "upc weight")
}
type Dimensions @shareable { width: Int height: Int depth: Int }
""",
    "reviews": _FED
    + """
type Query { topReviews(first: Int = 5): [Review!]! }
type Review @key(fields: "id") {
  id: ID!
  body: String
  product: Product @provides(fields: "name")
  author: Author
}
type Author @key(fields: "id") @extends { id: ID! @external handle: String }
extend type Product @key(fields: "upc") {
  upc: String! @external
  name: String! @external
  reviews: [Review!]!
}
""",
    "authors": _FED
    + """
type Author @key(fields: "id") { id: ID! displayName: String }
""",
}

OVERRIDE = {
    "legacy": _FED
    + """
type Query { account(id: ID!): Account }
type Account @key(fields: "id") {
  id: ID!
  balance: Int
  currency: String
  plan: String @shareable
  history: [String]
}
""",
    "billing": _FED
    + """
type Account @key(fields: "id") {
  id: ID!
  "The balance, now owned by billing."
  balance: Int @override(from: "legacy")
  currency: String @override(from: "legacy", label: "percent(25)")
  plan: String @shareable @override(from: "legacy")
  invoices: [Invoice!]!
}
type Invoice { number: String! total: Int! }
""",
    "history": _FED
    + """
type Account @key(fields: "id") {
  id: ID!
  history: [String] @override(from: "legacy", label: "history-migration")
}
""",
}

INTERFACES = {
    "catalog": _FED
    + """
type Query { media: [Media!]! node(id: ID!): Node @shareable }
interface Node { id: ID! }
interface Media implements Node @key(fields: "id") { id: ID! title: String! }
type Book implements Media & Node @key(fields: "id") { id: ID! title: String! isbn: String }
type Movie implements Media & Node @key(fields: "id") { id: ID! title: String! minutes: Int }
""",
    "ratings": _FED
    + """
type Query { topRated: [Media!]! }
type Media @key(fields: "id") @interfaceObject { id: ID! averageRating: Float ratingCount: Int! }
""",
    "people": _FED
    + """
type Query { node(id: ID!): Node @shareable }
interface Node { id: ID! }
type Person implements Node @key(fields: "id") { id: ID! name: String }
""",
}

TYPES = {
    "inventory": _FED
    + '''
"""
Things a store sells.
Two lines, with "quotes".
"""
type Query {
  search(term: String!, kind: ItemKind = BOOK, filter: SearchFilter): [SearchResult!]! @shareable
  stock(sku: ID!): Stock
  """Everything in stock, newest first."""
  newest(limit: Int = 10 @deprecated(reason: "Use pagination")): [Stock!]!
}
type Mutation { restock(input: RestockInput!): Stock }
union SearchResult = Stock | Warehouse
type Stock @key(fields: "sku") {
  sku: ID!
  count: Int!
  genre: Genre!
  updatedAt: DateTime
  legacyCode: String @deprecated(reason: "Use sku")
  oldCode: String @deprecated
}
type Warehouse @shareable { name: String! city: String }
enum ItemKind { BOOK MOVIE GAME @deprecated(reason: "not sold any more") }
"Output only: the supergraph gets every value."
enum Genre { DRAMA COMEDY }
enum Color { RED GREEN BLUE }
input SearchFilter { inStock: Boolean! = true color: Color minCount: Int }
input RestockInput { sku: ID! count: Int! note: String }
"An ISO-8601 date and time."
scalar DateTime @specifiedBy(url: "https://www.rfc-editor.org/rfc/rfc3339")
type Palette @shareable { colors: [Color!]! }
''',
    "stores": _FED
    + """
type Query {
  search(term: String!, kind: ItemKind, filter: SearchFilter): [SearchResult!]! @shareable
  palette: Palette
}
union SearchResult = Store | Warehouse
type Store @key(fields: "id") { id: ID! name: String genres: [Genre!] }
type Warehouse @shareable { name: String! city: String }
enum ItemKind { BOOK MOVIE MUSIC }
enum Genre { DRAMA HORROR }
enum Color { RED GREEN BLUE }
input SearchFilter { inStock: Boolean color: Color nearCity: String }
scalar DateTime
type Palette @shareable { colors: [Color!]! }
""",
}

CONTRACTS = {
    "public": """extend schema
  @link(
    url: "https://specs.apollo.dev/federation/v2.9"
    import: ["@key", { name: "@tag", as: "@label" }, "@inaccessible", "@composeDirective"]
  )
  @link(url: "https://example.com/cache/v1.0", import: ["@cacheControl"])
  @composeDirective(name: "@cacheControl")
directive @cacheControl(maxAge: Int) on FIELD_DEFINITION | OBJECT
directive @trace on FIELD | QUERY
schema { query: RootQuery mutation: RootMutation subscription: RootSubscription }
type RootQuery {
  catalog: [Item!]! @label(name: "public") @cacheControl(maxAge: 60)
  internalStats: Stats @inaccessible
}
type RootMutation { rename(id: ID!, name: String!): Item }
type RootSubscription { itemChanged(id: ID!): Item }
type Item @key(fields: "id") @label(name: "public") {
  id: ID!
  name: String @label(name: "public")
  costPrice: Int @inaccessible
  status(verbose: Boolean @inaccessible): Status
}
type Stats { count: Int }
enum Status { ACTIVE RETIRED @inaccessible }
""",
    "search": _link("v2.9", "@key", "@shareable")
    + """
  @link(url: "https://example.com/cache/v1.2", import: ["@cacheControl"])
  @federation__composeDirective(name: "@cacheControl")
directive @cacheControl(maxAge: Int) on FIELD_DEFINITION | OBJECT
directive @trace on FIELD | QUERY
type Query { find(text: String!): [Item!]! @federation__tag(name: "search") }
type Item @key(fields: "id") @cacheControl(maxAge: 30) { id: ID! rank: Float @federation__inaccessible }
""",
}

VERSIONS = {
    "old": _link("v2.0", "@key", "@shareable", "@external", "@provides")
    + """
type Query { widgets: [Widget] @provides(fields: "label") }
type Widget @key(fields: "id") { id: ID! label: String @external size: Int }
""",
    "newer": _link("v2.5", "@key", "@shareable")
    + """
type Widget @key(fields: "id") { id: ID! label: String @shareable colour: String }
""",
    "strawberry": '''schema @link(url: "https://specs.apollo.dev/federation/v2.3", import: ["@key", "@shareable"]) {
  query: Query
}

type Query {
  _entities(representations: [_Any!]!): [_Entity]!
  _service: _Service!
  gadget(id: ID!): Gadget
}

"""A gadget, served by a Strawberry subgraph."""
type Gadget @key(fields: "id") {
  id: ID!
  widget: Widget
}

type Widget @key(fields: "id") {
  id: ID!
}

scalar _Any

union _Entity = Gadget | Widget

type _Service {
  sdl: String!
}
''',
}

# The shape Reelgraph's own graph grows into: auth owns `User`, video extends it.
REELGRAPH_VIDEO = (
    _link("v2.9", "@key", "@shareable", "@external", "@requires")
    + """
type Query { video(id: ID!): Video, videos(first: Int = 20, after: String): VideoConnection! }
type Video @key(fields: "id") {
  id: ID!
  title: String!
  owner: User!
  status: VideoStatus!
  durationSeconds: Int
}
enum VideoStatus { UPLOADING PROCESSING READY FAILED }
type VideoConnection { edges: [VideoEdge!]! pageInfo: PageInfo! }
type VideoEdge { cursor: String! node: Video! }
type PageInfo @shareable {
  hasNextPage: Boolean!
  hasPreviousPage: Boolean!
  startCursor: String
  endCursor: String
}
type User @key(fields: "id") {
  id: ID!
  handle: String! @external
  videos(first: Int = 20): VideoConnection!
  channelUrl: String @requires(fields: "handle")
}
"""
)

REFERENCE_SETS: dict[str, dict[str, str]] = {
    "entities": ENTITIES,
    "requires-provides": REQUIRES_PROVIDES,
    "override": OVERRIDE,
    "interfaces": INTERFACES,
    "types": TYPES,
    "contracts": CONTRACTS,
    "versions": VERSIONS,
}
