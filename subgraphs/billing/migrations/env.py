"""Alembic environment for the billing database."""

from subgraphs.billing.models import metadata
from subgraphs.kernel.migrations import run_env

run_env(metadata)
