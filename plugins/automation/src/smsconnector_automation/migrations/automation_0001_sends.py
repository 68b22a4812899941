"""Automated sends: each automated text with its reply policy and window.

Revision ID: automation_0001
Revises:
Create Date: 2026-11-27
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "automation_0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = ("automation",)
depends_on: str | Sequence[str] | None = "0001"


def upgrade() -> None:
    op.create_table(
        "automation_sends",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("message_id", sa.Integer(), nullable=False),
        sa.Column("consumer_number", sa.String(length=20), nullable=False),
        sa.Column("brand_number", sa.String(length=20), nullable=False),
        sa.Column("campaign", sa.String(length=100), nullable=False),
        sa.Column("message_class", sa.String(length=16), nullable=False),
        sa.Column("reply_policy", sa.String(length=16), nullable=False),
        sa.Column("skill", sa.String(length=100), nullable=True),
        sa.Column("context", sa.JSON(), nullable=False),
        sa.Column("reply_until", sa.DateTime(timezone=True), nullable=False),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["message_id"], ["messages.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("message_id"),
    )
    with op.batch_alter_table("automation_sends", schema=None) as batch_op:
        batch_op.create_index("ix_automation_sends_recipient", ["consumer_number", "brand_number", "message_id"],
                              unique=False)


def downgrade() -> None:
    with op.batch_alter_table("automation_sends", schema=None) as batch_op:
        batch_op.drop_index("ix_automation_sends_recipient")
    op.drop_table("automation_sends")
