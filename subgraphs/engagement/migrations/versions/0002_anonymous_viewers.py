"""anonymous viewers: the client ids each client address has counting toward a video

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-05 21:20:13.215021
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "anonymous_viewers",
        sa.Column("video_id", sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
        sa.Column("address", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("viewer_key", sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
        sa.Column("last_seen_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("video_id", "address", "viewer_key"),
    )
    with op.batch_alter_table("anonymous_viewers", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_anonymous_viewers_last_seen_at"), ["last_seen_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("anonymous_viewers", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_anonymous_viewers_last_seen_at"))
    op.drop_table("anonymous_viewers")
