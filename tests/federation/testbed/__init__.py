"""A small bookshop made of five Federation 2.9 subgraphs, used only to test routers.

`SUBGRAPHS` names them in a fixed order; `serve.py` runs one as a process.
"""

SUBGRAPHS: tuple[str, ...] = ("accounts", "catalog", "inventory", "reviews", "media")
