"""paid access: prices learned from billing, playback sessions billing ended

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-05 20:06:10.860600
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import subgraphs.kernel.db

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "ended_playback_sessions",
        sa.Column("session_id", sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
        sa.Column("video_id", sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
        sa.Column("reason", sqlmodel.sql.sqltypes.AutoString(length=24), nullable=False),
        sa.Column("recorded_at", subgraphs.kernel.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("session_id"),
    )
    with op.batch_alter_table("ended_playback_sessions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_ended_playback_sessions_recorded_at"), ["recorded_at"], unique=False
        )

    # Plain ADD COLUMNs (SQLite needs no table rebuild, which would trip the search triggers).
    with op.batch_alter_table("videos", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("price_per_minute", sa.BigInteger(), server_default="0", nullable=False)
        )
        batch_op.add_column(
            sa.Column("price_currency", sqlmodel.sql.sqltypes.AutoString(length=3), nullable=True)
        )
        batch_op.add_column(
            sa.Column("price_event_at", sa.Float(), server_default="0", nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("videos", schema=None) as batch_op:
        batch_op.drop_column("price_event_at")
        batch_op.drop_column("price_currency")
        batch_op.drop_column("price_per_minute")

    with op.batch_alter_table("ended_playback_sessions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ended_playback_sessions_recorded_at"))

    op.drop_table("ended_playback_sessions")
