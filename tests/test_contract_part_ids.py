"""The contract suite's per-part receipts, for a provider that ids each part: a provider that keeps every part's
id passes, one that answers a long message with its first part's id alone fails, saying what to return."""

from __future__ import annotations

from pathlib import Path

import pytest

from smsconnector.testing import postgres_available

TESTS = ("test_a_long_message_is_delivered_once_every_part_is", "test_a_failed_part_fails_the_message_with_its_code")


def test_per_part_receipts_pass_for_a_provider_that_keeps_its_part_ids_and_fail_for_one_that_does_not(
    pytester: pytest.Pytester,
) -> None:
    pytester.syspathinsert(Path(__file__).parent)
    pytester.makeconftest('pytest_plugins = ["smsconnector.testing"]')
    pytester.makepyfile(test_pieces="from part_ids_provider import *  # noqa: F403\n")

    # One run for both databases: a second run in this process would import the installed plugins again.
    run = pytester.inline_run("-p", "no:cacheprovider", "-k", " or ".join(TESTS))

    passed, skipped, failed = run.listoutcomes()
    outcomes = {r.nodeid.split("::", 1)[1]: r.outcome for r in passed + skipped + failed}
    expected = {}
    for database in ("sqlite", "postgres"):
        unavailable = database == "postgres" and postgres_available() is not None
        expected |= {f"TestPieces::{t}[{database}]": "skipped" if unavailable else "passed" for t in TESTS}
        expected |= {f"TestForgetfulPieces::{t}[{database}]": "skipped" if unavailable else "failed" for t in TESTS}
    assert outcomes == expected
    assert all("its send must return SendResult.of_parts(part_ids)" in str(r.longrepr) for r in failed)
