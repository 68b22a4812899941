"""Keyword matching, case by case: forgiving of how people type, never of compliance keywords."""

from __future__ import annotations

import pytest

from smsconnector.config import load_config, plugin_settings
from smsconnector.testing import BRAND_NUMBER
from smsconnector_adkeywords import settings
from smsconnector_adkeywords.keywords import Matcher

OTHER_NUMBER = "+15555550111"
CONFIG = load_config(env={}, overrides={
    "numbers": [{"number": BRAND_NUMBER, "provider": "simulator", "skill": "support"},
                {"number": OTHER_NUMBER, "provider": "simulator", "skill": "sales"}],
    "plugins": {"adkeywords": {"match": "exact", "keywords": [
        {"keyword": "PIZZA", "number": BRAND_NUMBER, "campaign": "spring", "reply": "r"},
        {"keyword": "Free Pizza", "number": BRAND_NUMBER, "campaign": "spring", "reply": "r", "match": "first_word"},
        {"keyword": "deal", "number": BRAND_NUMBER, "campaign": "summer", "reply": "r", "match": "first_word"},
        {"keyword": "Café", "number": BRAND_NUMBER, "campaign": "summer", "reply": "r"},
        {"keyword": "TACO", "number": OTHER_NUMBER, "campaign": "tuesday", "reply": "r"},
    ]}},
})
MATCHER = Matcher(settings.keywords_of(CONFIG, plugin_settings(CONFIG, "adkeywords", settings.Settings)))

CASES = [
    # (label, text, number, keyword matched or None)
    ("exact", "PIZZA", BRAND_NUMBER, "PIZZA"),
    ("lower case", "pizza", BRAND_NUMBER, "PIZZA"),
    ("mixed case", "PiZzA", BRAND_NUMBER, "PIZZA"),
    ("surrounding spaces", "   pizza \n", BRAND_NUMBER, "PIZZA"),
    ("punctuation around", "Pizza!!!", BRAND_NUMBER, "PIZZA"),
    ("quotes and a full stop", '"pizza".', BRAND_NUMBER, "PIZZA"),
    ("emoji after", "pizza 🍕", BRAND_NUMBER, "PIZZA"),
    ("full-width letters", "ＰＩＺＺＡ", BRAND_NUMBER, "PIZZA"),
    ("accent folded", "CAFE", BRAND_NUMBER, "CAFE"),
    ("accent kept", "café", BRAND_NUMBER, "CAFE"),
    ("exact keyword inside a longer message", "I want a pizza please", BRAND_NUMBER, None),
    ("exact keyword first in a longer message", "pizza please", BRAND_NUMBER, None),
    ("first-word keyword first in a longer message", "Deal? yes I'm in", BRAND_NUMBER, "DEAL"),
    ("first-word keyword later in the message", "what is the deal", BRAND_NUMBER, None),
    ("two-word keyword, extra spaces and case", "free   PIZZA", BRAND_NUMBER, "FREE PIZZA"),
    ("two-word keyword then more words", "free pizza for me!", BRAND_NUMBER, "FREE PIZZA"),
    ("two-word keyword, hyphenated", "Free-Pizza", BRAND_NUMBER, "FREE PIZZA"),
    ("only half of a two-word keyword", "free", BRAND_NUMBER, None),
    ("glued together is another word", "pizzas", BRAND_NUMBER, None),
    ("keyword of another number", "TACO", BRAND_NUMBER, None),
    ("the other number's keyword there", "taco.", OTHER_NUMBER, "TACO"),
    ("a number without keywords", "PIZZA", "+15555550199", None),
    ("unknown word", "hello", BRAND_NUMBER, None),
    ("empty text (a picture)", "", BRAND_NUMBER, None),
    ("punctuation only", "?!", BRAND_NUMBER, None),
    ("STOP", "STOP", BRAND_NUMBER, None),
    ("stop, any case and punctuation", "stop.", BRAND_NUMBER, None),
    ("STOP ALL with a space", "Stop all", BRAND_NUMBER, None),
    ("OPT-OUT hyphenated", "opt-out", BRAND_NUMBER, None),
    ("ARRÊT with its accent", "Arrêt", BRAND_NUMBER, None),
    ("HELP", "help", BRAND_NUMBER, None),
    ("START", "Start", BRAND_NUMBER, None),
    ("a first-word keyword followed by STOP", "deal STOP", BRAND_NUMBER, None),
    ("a first-word keyword followed by unsubscribe", "deal, now unsubscribe me", BRAND_NUMBER, None),
    ("a first-word keyword followed by a non-opt-out compliance word", "deal yes", BRAND_NUMBER, "DEAL"),
]


@pytest.mark.parametrize(("text", "number", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_keyword_matching(text, number, expected):
    found = MATCHER.match(number, text)

    assert (found.label if found else None) == expected


def test_a_match_opens_a_conversation_for_the_skill_with_campaign_keyword_and_reply():
    routing = MATCHER.match(BRAND_NUMBER, "Free pizza!").routing()

    assert (routing.handled_by, routing.skill, routing.entry_point, routing.new_conversation) == (
        "adkeywords", "support", "adkeywords", True)  # no skill configured: the number's own
    assert dict(routing.context) == {"campaign": "spring", "keyword": "FREE PIZZA"}
    assert (routing.replies, routing.reply_class, routing.to_agent) == (("r",), "conversational", True)
