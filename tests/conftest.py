"""Fixtures of the host's tests."""

from __future__ import annotations

from typing import Any

import pytest


@pytest.fixture
def app_defaults() -> dict[str, Any]:
    """These tests exercise sending mechanics, not consent.

    When the compliance plugin is installed too (the integration environment), its default rule -- a
    consumer must have texted before a conversational reply -- would refuse replies these tests send to
    numbers that never texted. Consent is the compliance plugin's own tests' subject.
    """
    return {"plugins": {"compliance": {"consent": {"conversational": "none"}}}}

