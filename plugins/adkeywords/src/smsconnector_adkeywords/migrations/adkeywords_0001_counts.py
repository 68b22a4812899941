"""Ad keyword counts: matches per brand number, keyword and campaign.

Revision ID: adkeywords_0001
Revises:
Create Date: 2026-11-27
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "adkeywords_0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = ("adkeywords",)
depends_on: str | Sequence[str] | None = "0001"


def upgrade() -> None:
    op.create_table(
        "adkeyword_counts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("brand_number", sa.String(length=20), nullable=False),
        sa.Column("keyword", sa.String(length=100), nullable=False),
        sa.Column("campaign", sa.String(length=100), nullable=False),
        sa.Column("matches", sa.Integer(), nullable=False),
        sa.Column("first_matched_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_matched_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("brand_number", "keyword", "campaign", name="uq_adkeyword_counts_key"),
    )


def downgrade() -> None:
    op.drop_table("adkeyword_counts")
