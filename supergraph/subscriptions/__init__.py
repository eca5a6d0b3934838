"""Subscriptions through the router: clients speak graphql-transport-ws or GraphQL over SSE;
the router subscribes to the owning subgraph over graphql-transport-ws and resolves the
fields other subgraphs own for every event."""
