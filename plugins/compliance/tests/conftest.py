"""Fixtures for the compliance plugin's tests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from smsconnector.auth import token_digest
from smsconnector.messages import utcnow
from smsconnector.store.models import Agent

from .compliance_helpers import AGENT_TOKEN


@pytest.fixture
def make_agent(db: Any) -> Callable[[], tuple[int, str]]:
    """Create an agent row with a known token (the agent API is not needed for it): ``agent_id, token``."""
    def make() -> tuple[int, str]:
        with db.engine.begin() as conn:
            conn.execute(Agent.__table__.insert().values(  # type: ignore[attr-defined]
                name="Ada", status="online", max_concurrent=3, token_hash=token_digest(AGENT_TOKEN),
                created_at=utcnow()))
        return int(db.scalar("SELECT id FROM agents WHERE name = 'Ada'")), AGENT_TOKEN
    return make
