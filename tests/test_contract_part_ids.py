"""The contract suite's per-part receipts, for a provider that ids each part: a provider that keeps every part's
id passes, one that answers a long message with its first part's id alone fails, saying what to return."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from smsconnector.testing import postgres_available

TESTS = ("test_a_long_message_is_delivered_once_every_part_is", "test_a_failed_part_fails_the_message_with_its_code")


def test_per_part_receipts_pass_for_a_provider_that_keeps_its_part_ids_and_fail_for_one_that_does_not(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeconftest('pytest_plugins = ["smsconnector.testing"]')
    pytester.makepyfile(test_pieces="from part_ids_provider import *  # noqa: F403\n")
    pytester.makeini(f"[pytest]\npythonpath = {Path(__file__).parent}\n")

    # In a process of its own: run in this one, the suite would import the installed plugins a second time.
    run = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-v", "-k", " or ".join(TESTS))

    output = run.stdout.str()
    outcomes = dict(re.findall(r"^test_pieces\.py::(\S+) (PASSED|FAILED|SKIPPED)", output, flags=re.M))
    expected = {}
    for database in ("sqlite", "postgres"):
        unavailable = database == "postgres" and postgres_available() is not None
        expected |= {f"TestPieces::{t}[{database}]": "SKIPPED" if unavailable else "PASSED" for t in TESTS}
        expected |= {f"TestForgetfulPieces::{t}[{database}]": "SKIPPED" if unavailable else "FAILED" for t in TESTS}
    assert outcomes == expected, output[-3000:]
    failed = sum(outcome == "FAILED" for outcome in outcomes.values())
    assert output.count("its send must return SendResult.of_parts(part_ids)") >= failed, output[-3000:]
