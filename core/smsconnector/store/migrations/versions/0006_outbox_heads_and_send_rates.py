"""The outbox by recipient, attempts marked before the provider call, and per-number pacing shared by processes.

``outbox.to_number`` (copied from the message) lets the sender claim only the head of each recipient's queue:
two messages to one consumer are then never in flight at once, in any process, and leave in queue order.
``outbox.attempted_at`` is set before a message is handed to the provider, so that after a crash the next
sender asks the provider whether it took it before sending it again. ``send_rates`` holds each throttled
sender number's next free sending slot, shared by every process.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.add_column(sa.Column("to_number", sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column("attempted_at", sa.DateTime(timezone=True), nullable=True))
    op.execute("UPDATE outbox SET to_number = (SELECT messages.to_number FROM messages "
               "WHERE messages.id = outbox.message_id)")
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.alter_column("to_number", existing_type=sa.String(length=20), nullable=False)
        batch_op.create_index("ix_outbox_to_number_id", ["to_number", "id"], unique=False)
    op.create_table(
        "send_rates",
        sa.Column("number", sa.String(length=20), nullable=False),
        sa.Column("next_free_at", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("number"),
    )


def downgrade() -> None:
    op.drop_table("send_rates")
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_index("ix_outbox_to_number_id")
        batch_op.drop_column("attempted_at")
        batch_op.drop_column("to_number")
