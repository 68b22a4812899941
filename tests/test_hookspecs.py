"""The hook contract is the project's public face: every hook documented, with its result policy."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

import smsconnector
from smsconnector import hookspecs

SPECS = [(name, fn) for name, fn in vars(hookspecs).items()
         if name.startswith("smsconnector_") and inspect.isfunction(fn)]
DOCS = (Path(__file__).parents[1] / "docs" / "hooks.md").read_text()
POLICIES = ("Stops at the first non-None result", "All results are collected", "All implementations are called")


@pytest.mark.parametrize(("name", "spec"), SPECS, ids=[n for n, _ in SPECS])
def test_hook_states_its_result_policy_and_colour(name, spec):
    doc = inspect.getdoc(spec) or ""
    assert any(policy in doc for policy in POLICIES), f"{name} does not say how results are combined"
    assert re.search(r"Synchronous|awaitable|awaited", doc), f"{name} does not say whether it may be async"


@pytest.mark.parametrize(("name", "spec"), SPECS, ids=[n for n, _ in SPECS])
def test_hook_is_documented_with_its_exact_signature(name, spec):
    heading = f"## `{name}({', '.join(inspect.signature(spec).parameters)})`"
    assert heading in DOCS.splitlines(), f"docs/hooks.md lacks the heading {heading}"


def test_docs_list_the_hooks_in_pipeline_order():
    documented = re.findall(r"^## `(smsconnector_\w+)\(", DOCS, flags=re.M)
    assert documented == [name for name, _ in SPECS]


def test_firstresult_hooks_are_the_dispatch_and_decision_stages():
    firstresult = {name for name, spec in SPECS
                   if getattr(spec, "smsconnector_spec", {}).get("firstresult")}
    assert firstresult == {"smsconnector_webhook_methods", "smsconnector_receive", "smsconnector_normalize",
                           "smsconnector_segment_policy", "smsconnector_route", "smsconnector_send",
                           "smsconnector_find_sent"}


def test_public_names_are_pinned():
    assert sorted(smsconnector.__all__) == [
        "ConfigError", "ConsentSignal", "DeliveryStatus", "Forbidden", "InboundMessage", "InvalidNumber",
        "Malformed", "Media", "MessageRejected", "OutboundMessage", "PermanentSendError", "PluginError",
        "Received", "RequestRejected", "RetryableSendError", "Routing", "SegmentInfo", "SegmentPolicy",
        "SendError", "SendResult", "SmsConnectorError", "StatusUpdate", "Unauthenticated", "Verdict",
        "WebhookRequest", "hookimpl", "to_e164", "to_sender",
    ]
    for name in smsconnector.__all__:
        assert getattr(smsconnector, name) is not None
