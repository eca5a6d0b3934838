"""Alembic environment for the auth database."""

from subgraphs.auth.models import metadata
from subgraphs.kernel.migrations import run_env

run_env(metadata)
