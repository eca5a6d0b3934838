"""The shared kernel: settings, databases, the event bus, storage, tokens, errors and logging.

Every subgraph and the media worker build on these pieces; none of them knows GraphQL
except `graphql.py`, which maps domain errors and the request context onto Strawberry.
"""
