"""The inbox's lanes: what must be routed in arrival order, in a column of its own.

Routing found an entry's consumer by reading its JSON payload in SQL, which PostgreSQL refuses for text it
cannot hold (a ``\\u0000`` escape): one such entry stopped every pass. The lane is now written with the entry.
Entries still pending get theirs here, read in Python from the payload's text.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("inbox") as batch:
        batch.add_column(sa.Column("lane", sa.String(length=250), nullable=True))
    op.create_index("ix_inbox_pending_lane", "inbox", ["lane", "id"], sqlite_where=sa.text("processed_at IS NULL"),
                    postgresql_where=sa.text("processed_at IS NULL"))
    connection = op.get_bind()
    pending = connection.execute(sa.text(
        "SELECT id, kind, CAST(payload AS TEXT) AS payload FROM inbox WHERE processed_at IS NULL")).all()
    for entry_id, kind, payload in pending:
        try:
            data = json.loads(payload)
            lane = f"message:{data['from_number']}" if kind == "message" else f"status:{data['provider_message_id']}"
        except (TypeError, ValueError, KeyError):
            continue  # routing sets it aside as it always did: no lane only means no order to keep
        connection.execute(sa.text("UPDATE inbox SET lane = :lane WHERE id = :id"), {"lane": lane[:250], "id": entry_id})


def downgrade() -> None:
    op.drop_index("ix_inbox_pending_lane", table_name="inbox")
    with op.batch_alter_table("inbox") as batch:
        batch.drop_column("lane")
