"""Alembic environment for the engagement database."""

from subgraphs.engagement.models import metadata
from subgraphs.kernel.migrations import run_env

run_env(metadata)
