"""Compliance: the append-only consent ledger and the capped-send counter.

Revision ID: c0001
Revises:
Create Date: 2026-11-27
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "c0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = ("compliance",)
depends_on: str | Sequence[str] | None = "0001"

# The ledger is evidence: the database itself refuses to change or remove a row, whatever code runs.
_SQLITE_TRIGGERS = [
    f"""CREATE TRIGGER compliance_ledger_no_{op_name.lower()} BEFORE {op_name} ON compliance_ledger
    BEGIN SELECT RAISE(ABORT, 'compliance_ledger is append-only: {op_name} refused'); END"""
    for op_name in ("UPDATE", "DELETE")
]
_POSTGRES_TRIGGERS = [
    """CREATE FUNCTION compliance_ledger_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN RAISE EXCEPTION 'compliance_ledger is append-only: % refused', TG_OP; END $$""",
    """CREATE TRIGGER compliance_ledger_append_only BEFORE UPDATE OR DELETE ON compliance_ledger
    FOR EACH ROW EXECUTE FUNCTION compliance_ledger_append_only()""",
    """CREATE TRIGGER compliance_ledger_no_truncate BEFORE TRUNCATE ON compliance_ledger
    FOR EACH STATEMENT EXECUTE FUNCTION compliance_ledger_append_only()""",
]


def upgrade() -> None:
    op.create_table(
        "compliance_ledger",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("consumer_number", sa.String(length=20), nullable=False),
        sa.Column("scope", sa.String(length=120), nullable=False),
        sa.Column("brand_number", sa.String(length=20), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("consent_class", sa.String(length=16), nullable=True),
        sa.Column("method", sa.String(length=24), nullable=False),
        sa.Column("source", sa.String(length=300), nullable=True),
        sa.Column("consumer_action", sa.String(length=300), nullable=True),
        sa.Column("raw_text", sa.Text(), nullable=True),
        sa.Column("matched", sa.String(length=200), nullable=True),
        sa.Column("tier", sa.Integer(), nullable=True),
        sa.Column("language", sa.String(length=8), nullable=True),
        sa.Column("disclosure_text", sa.Text(), nullable=True),
        sa.Column("disclosure_hash", sa.String(length=64), nullable=True),
        sa.Column("campaign", sa.String(length=100), nullable=True),
        sa.Column("inbound_message_id", sa.Integer(), nullable=True),
        sa.Column("message_id", sa.Integer(), nullable=True),
        sa.Column("confirms_event_id", sa.Integer(), nullable=True),
        sa.Column("confirmation", sa.String(length=16), nullable=True),
        sa.Column("confirmation_text", sa.Text(), nullable=True),
        sa.Column("recipient_zones", sa.String(length=200), nullable=True),
        sa.Column("recorded_by", sa.String(length=50), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("confirms_event_id"),
    )
    op.create_index("ix_compliance_ledger_consumer", "compliance_ledger", ["consumer_number", "scope", "id"])
    op.create_table(
        "compliance_sends",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("message_id", sa.Integer(), nullable=False),
        sa.Column("consumer_number", sa.String(length=20), nullable=False),
        sa.Column("scope", sa.String(length=120), nullable=False),
        sa.Column("brand_number", sa.String(length=20), nullable=False),
        sa.Column("message_class", sa.String(length=16), nullable=False),
        sa.Column("region", sa.String(length=8), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("message_id"),
    )
    op.create_index("ix_compliance_sends_consumer", "compliance_sends", ["consumer_number", "scope", "sent_at"])
    dialect = op.get_bind().dialect.name
    for statement in _POSTGRES_TRIGGERS if dialect == "postgresql" else _SQLITE_TRIGGERS:
        op.execute(statement)


def downgrade() -> None:
    op.drop_index("ix_compliance_sends_consumer", table_name="compliance_sends")
    op.drop_table("compliance_sends")
    op.drop_index("ix_compliance_ledger_consumer", table_name="compliance_ledger")
    op.drop_table("compliance_ledger")  # its triggers go with it
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION compliance_ledger_append_only()")
