"""Delivery parts keep each part's own provider id, for providers that id and report every part of a message.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("delivery_parts") as batch_op:
        batch_op.add_column(sa.Column("provider", sa.String(length=50), nullable=True))
        batch_op.add_column(sa.Column("provider_message_id", sa.String(length=100), nullable=True))
        batch_op.create_unique_constraint("uq_delivery_parts_provider_id", ["provider", "provider_message_id"])


def downgrade() -> None:
    with op.batch_alter_table("delivery_parts") as batch_op:
        batch_op.drop_constraint("uq_delivery_parts_provider_id", type_="unique")
        batch_op.drop_column("provider_message_id")
        batch_op.drop_column("provider")
