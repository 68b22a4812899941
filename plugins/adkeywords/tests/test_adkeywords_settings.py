"""Configuration mistakes stop start-up with the key; a compliance keyword can never be configured."""

from __future__ import annotations

import pytest

from smsconnector.config import load_config, plugin_settings
from smsconnector.errors import ConfigError
from smsconnector.testing import BRAND_NUMBER
from smsconnector.testing.entrypoints import start_up_refusal
from smsconnector_adkeywords import settings
from smsconnector_adkeywords.keywords import COMPLIANCE_KEYWORDS

PIZZA = {"keyword": "PIZZA", "number": BRAND_NUMBER, "campaign": "spring", "reply": "Here is 10% off: PIZZA10"}


def load(*keywords: dict[str, object], **section: object) -> list[object]:
    config = load_config(env={}, overrides={
        "numbers": [{"number": BRAND_NUMBER, "provider": "simulator", "skill": "support"}],
        "plugins": {"adkeywords": {"keywords": list(keywords), **section}}})
    return settings.keywords_of(config, plugin_settings(config, "adkeywords", settings.Settings))


@pytest.mark.parametrize("keyword", [*COMPLIANCE_KEYWORDS, "stop", "Stop-All", "opt-out", "Arrêt", " help! "])
def test_a_compliance_keyword_is_refused(keyword):
    with pytest.raises(ConfigError) as refused:
        load({**PIZZA, "keyword": keyword})

    assert refused.value.key == "plugins.adkeywords.keywords.0.keyword"
    assert refused.value.reason.startswith(f"'{keyword}' is the compliance keyword '")
    assert "answered by compliance and can never be ad keywords" in refused.value.reason


@pytest.mark.parametrize(("keyword", "clash"), [("PIZZA STOP", "STOP"), ("yes pizza", "YES"),
                                                ("Pizza opt out", "OPT OUT")])
def test_a_keyword_containing_a_compliance_keyword_is_refused(keyword, clash):
    with pytest.raises(ConfigError, match=f"contains the compliance keyword '{clash}'"):
        load(PIZZA, {**PIZZA, "keyword": keyword})


@pytest.mark.parametrize(("keywords", "section", "key", "reason"), [
    ([{**PIZZA, "number": "+15555550199"}], {}, "plugins.adkeywords.keywords.0.number",
     "+15555550199 is not one of the configured [[numbers]]"),
    ([{**PIZZA, "number": "front desk"}], {}, "plugins.adkeywords.keywords.0.number", "front desk is not one of"),
    ([PIZZA, {**PIZZA, "keyword": "pizza!", "campaign": "summer"}], {}, "plugins.adkeywords.keywords.1.keyword",
     f"'pizza!' is already keyword 0 on {BRAND_NUMBER}"),
    ([{**PIZZA, "keyword": "!!!"}], {}, "plugins.adkeywords.keywords.0.keyword", "'!!!' has no letters or digits"),
    ([{k: v for k, v in PIZZA.items() if k != "reply"}], {}, "plugins.adkeywords.keywords.0.reply", "Field required"),
    ([{**PIZZA, "reply": "x" * 1601}], {}, "plugins.adkeywords.keywords.0.reply", "at most 1600 characters"),
    ([{**PIZZA, "match": "fuzzy"}], {}, "plugins.adkeywords.keywords.0.match", "'exact' or 'first_word'"),
    ([PIZZA], {"match": "anywhere"}, "plugins.adkeywords.match", "'exact' or 'first_word'"),
    ([{**PIZZA, "reply_class": "compliance"}], {}, "plugins.adkeywords.keywords.0.reply_class", "'conversational'"),
])
def test_a_wrong_value_names_its_key(keywords, section, key, reason):
    with pytest.raises(ConfigError) as refused:
        load(*keywords, **section)

    assert refused.value.key == key
    assert reason in refused.value.reason


def test_each_keyword_takes_the_plugin_wide_match_and_the_numbers_skill_unless_it_says_otherwise():
    first, second = load(PIZZA, {**PIZZA, "keyword": "Deal", "skill": "sales", "match": "exact"}, match="first_word")

    assert (first.match, first.skill, second.match, second.skill) == ("first_word", "support", "exact", "sales")


def test_the_same_keyword_may_serve_two_numbers(make_app):
    other = "+15555550111"
    app = make_app(numbers=[{"number": BRAND_NUMBER, "provider": "simulator"},
                            {"number": other, "provider": "simulator"}],
                   plugins={"adkeywords": {"keywords": [PIZZA, {**PIZZA, "number": other}]}}, migrate=False)

    assert [k.number for k in app.plugin("adkeywords").matcher.keywords] == [BRAND_NUMBER, other]


def test_the_host_refuses_to_start_with_a_stop_keyword(make_app):
    refused = start_up_refusal(make_app, "adkeywords", {"keywords": [{**PIZZA, "keyword": "STOP"}]})

    assert refused.key == "plugins.adkeywords.keywords.0.keyword"
