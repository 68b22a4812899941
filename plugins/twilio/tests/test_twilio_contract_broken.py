"""The contract suite catches a broken provider: copies of the Twilio plugin that each break one promise fail it,
where the intact plugin passes the same tests."""

from __future__ import annotations

from pathlib import Path

import pytest

#: each broken copy, and the contract test that must catch it (the intact plugin must pass all three)
CAUGHT_BY = {
    "TestSignatureRemoved": "test_every_forgery_is_refused_and_stores_nothing",
    "TestStatusBackwards": "test_a_status_never_moves_back",
    "TestDuplicateStored": "test_a_signed_inbound_message_retried_is_stored_once",
}


def test_each_broken_copy_fails_the_contract_test_for_its_promise(pytester: pytest.Pytester) -> None:
    pytester.syspathinsert(Path(__file__).parent)
    pytester.makeconftest('pytest_plugins = ["smsconnector.testing"]')
    pytester.makepyfile(test_broken="from broken_twilio import *  # noqa: F403\n")
    tests = " or ".join(CAUGHT_BY.values())
    broken = " or ".join(f"{copy} and {test}" for copy, test in CAUGHT_BY.items())

    run = pytester.inline_run("-p", "no:cacheprovider", "-k", f"sqlite and ({broken} or TestIntact and ({tests}))")

    passed, skipped, failed = run.listoutcomes()
    outcomes = {r.nodeid.split("::", 1)[1]: r.outcome for r in passed + skipped + failed}
    expected = {f"{copy}::{test}[sqlite]": "failed" for copy, test in CAUGHT_BY.items()}
    expected |= {f"TestIntact::{test}[sqlite]": "passed" for test in CAUGHT_BY.values()}
    assert outcomes == expected
