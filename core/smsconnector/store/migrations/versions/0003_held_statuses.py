"""Held status reports: callbacks that arrive before the send they report on is recorded.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "held_statuses",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("provider", sa.String(length=50), nullable=False),
        sa.Column("provider_message_id", sa.String(length=100), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("error_code", sa.String(length=32), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("sequence", sa.Integer(), nullable=True),
        sa.Column("total", sa.Integer(), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("held_statuses", schema=None) as batch_op:
        batch_op.create_index("ix_held_statuses_provider_id", ["provider", "provider_message_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_held_statuses_received_at"), ["received_at"], unique=False)
    with op.batch_alter_table("messages", schema=None) as batch_op:
        # The compliance gate asks "has this consumer texted this number lately?" before every send.
        batch_op.create_index("ix_messages_from_to_created", ["from_number", "to_number", "created_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_index("ix_messages_from_to_created")
    with op.batch_alter_table("held_statuses", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_held_statuses_received_at"))
        batch_op.drop_index("ix_held_statuses_provider_id")
    op.drop_table("held_statuses")
