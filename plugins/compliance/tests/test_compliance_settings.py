"""Configuration: every wrong key stops start-up with its name; the plugin cannot be disabled."""

from __future__ import annotations

from typing import Any

import pytest

from smsconnector.errors import ConfigError, PluginError
from smsconnector.testing import BRAND_NUMBER


@pytest.mark.parametrize(("section", "key", "reason"), [
    ({"quiet_hours": {"end": "maybe"}}, "plugins.compliance.quiet_hours.end", "'exclusive' or 'inclusive'"),
    ({"quiet_hours": {"rules": {"US-FL": {"hours": "8-21"}}}}, "plugins.compliance.quiet_hours.rules.US-FL.hours",
     "is not HH:MM-HH:MM"),
    ({"quiet_hours": {"rules": {"FR": {"holidays": "XX"}}}}, "plugins.compliance.quiet_hours.rules.FR.holidays",
     "no public holidays are known for 'XX'"),
    ({"default_time_zone": "Mars/Olympus"}, "plugins.compliance.default_time_zone", "unknown time zone"),
    ({"numbers": {BRAND_NUMBER: {"time_zone": "Nowhere"}}}, f"plugins.compliance.numbers.{BRAND_NUMBER}.time_zone",
     "unknown time zone"),
    ({"numbers": {"not a number": {}}}, "plugins.compliance.numbers", "not a phone number"),
    ({"languages": ["en", "es"]}, "plugins.compliance.languages", "no keywords for language 'es'"),
    ({"keywords": {"en": {"help_reply": "{brand}: call {phone}"}}}, "plugins.compliance.keywords.en.help_reply",
     "only {brand} and {contact} may be used"),
    ({"opt_out_scope": "planet"}, "plugins.compliance.opt_out_scope", "'brand' or 'number'"),
    ({"consent": {"marketing": "maybe"}}, "plugins.compliance.consent.marketing", "'none', 'exchange'"),
    ({"negation_window": 99}, "plugins.compliance.negation_window", "less than or equal to 10"),
    ({"quit_words": ["STOP"]}, "plugins.compliance.quit_words", "Extra inputs are not permitted"),
])
def test_a_wrong_setting_names_its_key(make_app: Any, section: dict[str, Any], key: str, reason: str) -> None:
    with pytest.raises(PluginError) as failure:
        make_app(plugins={"compliance": section}, migrate=False)

    assert failure.value.plugin == "compliance"
    assert f"configuration {key}: " in str(failure.value) and reason in str(failure.value)


def test_the_plugin_cannot_be_disabled(make_app: Any) -> None:
    with pytest.raises(ConfigError, match="'compliance' keeps consumers safe and cannot be disabled"):
        make_app(plugins={"disabled": ["compliance"]}, migrate=False)


def test_a_new_language_needs_only_its_keywords_and_replies_in_english_until_translated(make_app: Any) -> None:
    app = make_app(migrate=False, plugins={"compliance": {
        "languages": ["en", "es"], "keywords": {"es": {"opt_out": ["ALTO", "BAJA"], "help": ["AYUDA"]}}}})
    rules = app.plugin("compliance").policy.rules(BRAND_NUMBER)

    assert rules.classifier.classify("Baja").language == "es"
    assert rules.reply("opt_out", "es") == rules.reply("opt_out", "en")


def test_numbers_without_a_brand_name_or_contact_are_reported_at_start_up(
        make_app: Any, caplog: pytest.LogCaptureFixture) -> None:
    make_app(migrate=False)

    assert any("has no brand_name or contact" in r.message for r in caplog.records)
