"""Alembic environment for the video database."""

from subgraphs.kernel.migrations import run_env
from subgraphs.video.models import metadata
from subgraphs.video.search import SEARCH_TABLE

run_env(metadata, unmanaged=[SEARCH_TABLE])
