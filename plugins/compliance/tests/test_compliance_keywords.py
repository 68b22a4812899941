"""Reading consumer texts as opt-out, opt-in or HELP: the cases COMPLIANCE.md collects, as one table."""

from __future__ import annotations

import string
import unicodedata
from dataclasses import dataclass

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smsconnector.config import load_config
from smsconnector_compliance import keywords
from smsconnector_compliance.keywords import Classifier
from smsconnector_compliance.settings import Policy, load

BRAND = "+15555550100"


@dataclass(frozen=True)
class Case:
    text: str
    kind: str | None  #: opt_out, opt_in, help, or None
    tier: int | None = None
    language: str | None = None
    flagged: bool = False  #: a note for the agent although nothing is acted on


CASES = [
    # Tier 1: Twilio's defaults, the FCC per-se words, STOP ALL, in any case and punctuation.
    Case("STOP", "opt_out", 1, "en"),
    Case("stop", "opt_out", 1, "en"),
    Case("sToP", "opt_out", 1, "en"),
    Case("Stop.", "opt_out", 1, "en"),
    Case("  STOP!!!  ", "opt_out", 1, "en"),
    Case("\"Stop\"", "opt_out", 1, "en"),
    Case("stop 🛑", "opt_out", 1, "en"),
    Case("🙏 STOP 🙏", "opt_out", 1, "en"),
    Case("ＳＴＯＰ", "opt_out", 1, "en"),  # full-width letters, NFKC
    Case("STOPALL", "opt_out", 1, "en"),
    Case("STOP ALL", "opt_out", 1, "en"),
    Case("Stop   all", "opt_out", 1, "en"),
    Case("UNSUBSCRIBE", "opt_out", 1, "en"),
    Case("Unsubscribe.", "opt_out", 1, "en"),
    Case("cancel", "opt_out", 1, "en"),
    Case("END", "opt_out", 1, "en"),
    Case("quit!", "opt_out", 1, "en"),
    Case("REVOKE", "opt_out", 1, "en"),
    Case("OPTOUT", "opt_out", 1, "en"),
    Case("opt out", "opt_out", 1, "en"),
    Case("Opt-Out", "opt_out", 1, "en"),
    Case("S.T.O.P.", "opt_out", 1, "en"),
    # French (Canadian carriers require ARRET and AIDE), accents folded.
    Case("ARRET", "opt_out", 1, "fr"),
    Case("Arrêt", "opt_out", 1, "fr"),
    Case("ARRÊT.", "opt_out", 1, "fr"),
    Case("arrete", "opt_out", 1, "fr"),
    Case("AIDE", "help", 1, "fr"),
    Case("aide ?", "help", 1, "fr"),
    # Opt-in and HELP.
    Case("START", "opt_in", 1, "en"),
    Case("Yes", "opt_in", 1, "en"),
    Case("unstop", "opt_in", 1, "en"),
    Case("HELP", "help", 1, "en"),
    Case("Help?", "help", 1, "en"),
    Case("info", "help", 1, "en"),
    # Tier 2: phrases and keywords among filler words.
    Case("Please stop texting me", "opt_out", 2, "en"),
    Case("stop texting me please", "opt_out", 2, "en"),
    Case("Can you stop messaging me?", "opt_out", 2, "en"),
    Case("unsubscribe me", "opt_out", 2, "en"),
    Case("Please remove me from your list", "opt_out", 2, "en"),
    Case("No more texts!!", "opt_out", 2, "en"),
    Case("Don't text me anymore", "opt_out", 2, "en"),
    Case("dont text me", "opt_out", 2, "en"),
    Case("Do not contact me again", "opt_out", 2, "en"),
    Case("Stop please", "opt_out", 2, "en"),
    Case("STOP PLEASE", "opt_out", 2, "en"),
    Case("please cancel", "opt_out", 2, "en"),
    Case("Stop. Thank you", "opt_out", 2, "en"),  # p2pu/learning-circles #593
    Case("ok stop now thanks", "opt_out", 2, "en"),
    Case("Hi, how do I unsubscribe?", "opt_out", 2, "en"),
    Case("I don't know who you are but stop texting me", "opt_out", 2, "en"),
    Case("Arrêtez de m'écrire svp", "opt_out", 2, "fr"),
    Case("Je ne veux plus recevoir vos messages", "opt_out", 2, "fr"),
    Case("arret svp merci", "opt_out", 2, "fr"),
    # Negations: not an opt-out, but the agent sees the note.
    Case("Don't stop", None, flagged=True),
    Case("Please don't stop texting me, I love the deals", None, flagged=True),
    Case("I don't want you to stop texting me", None, flagged=True),
    Case("Never stop sending me coupons", None, flagged=True),
    Case("N'arrêtez pas de m'écrire", None, flagged=True),
    # Ambiguous: an opt-out word with an object; the agent asks.
    Case("Cancel my appointment", None, flagged=True),
    Case("I need to cancel my order", None, flagged=True),
    Case("we have got to STOP this bill", None, flagged=True),  # ProgressiveCoders/Spoke #1016
    Case("STOP 12345", None, flagged=True),  # medic/cht-core #476: a command with an argument
    Case("I'll stop by the store tomorrow", None, flagged=True),
    Case("What time do you end today?", None, flagged=True),
    # Ordinary messages.
    Case("Hi, is my order on its way?", None),
    Case("Thanks!", None),
    Case("help me with my order", None),
    Case("", None),
    Case("🛑🛑", None),
    Case("stopped by earlier, nobody was there", None),
]


@pytest.fixture(scope="module")
def classifier() -> Classifier:
    policy = Policy(load({}), load_config(env={}, overrides={"numbers": [{"number": BRAND, "provider": "simulator"}]}))
    return policy.rules(BRAND, "simulator").classifier


@pytest.mark.parametrize("case", CASES, ids=[c.text or "<empty>" for c in CASES])
def test_classification(classifier: Classifier, case: Case) -> None:
    found = classifier.classify(case.text)

    assert (found.kind, found.tier) == (case.kind, case.tier)
    if case.language:
        assert found.language == case.language
    assert (found.flag is not None) == case.flagged, found.flag


def test_the_table_covers_at_least_forty_cases() -> None:
    assert len(CASES) >= 40
    assert {c.kind for c in CASES} == {"opt_out", "opt_in", "help", None}


def test_phrases_can_be_turned_off_leaving_exact_keywords() -> None:
    policy = Policy(load({"phrases": False}), load_config(env={}))
    classifier = policy.rules(BRAND).classifier

    assert classifier.classify("Stop.").kind == "opt_out"
    assert classifier.classify("please stop texting me").kind is None
    assert classifier.classify("please stop texting me").flag is not None  # still shown to the agent


def test_accent_folding_can_be_turned_off() -> None:
    policy = Policy(load({"fold_accents": False}), load_config(env={}))

    assert policy.rules(BRAND).classifier.classify("ARRÊT").kind is None
    assert policy.rules(BRAND).classifier.classify("ARRET").kind == "opt_out"


def test_keyword_lists_are_configurable_per_number_and_language() -> None:
    other = "+15555550199"
    policy = Policy(load({
        "keywords": {"en": {"opt_out": ["STOP", "BASTA"]}},
        "numbers": {other: {"languages": ["fr"], "keywords": {"fr": {"help": ["SOS"]}}}},
    }), load_config(env={}))

    assert policy.rules(BRAND).classifier.classify("basta").kind == "opt_out"
    assert policy.rules(BRAND).classifier.classify("quit").kind is None  # the list was replaced
    assert policy.rules(other).classifier.classify("SOS").kind == "help"
    assert policy.rules(other).classifier.classify("AIDE").kind is None
    assert policy.rules(other).classifier.classify("STOP").language == "fr"


def test_yes_does_not_opt_back_in_on_a_toll_free_number() -> None:
    toll_free = "+18005550100"
    policy = Policy(load({}), load_config(env={}))

    assert policy.rules(toll_free).classifier.classify("YES").kind is None
    assert policy.rules(toll_free).classifier.classify("UNSTOP").kind == "opt_in"
    assert policy.rules(BRAND).classifier.classify("YES").kind == "opt_in"


def _normalize_slowly(text: str) -> str:
    """The normalization as COMPLIANCE.md states it, with no shortcut for ASCII texts."""
    text = unicodedata.normalize("NFKC", text).casefold()
    decomposed = unicodedata.normalize("NFKD", text)
    text = unicodedata.normalize("NFC", "".join(c for c in decomposed if not unicodedata.combining(c)))
    return keywords._OTHER_APOSTROPHE.sub("", keywords._ELISION.sub(r"\1 ", text))


@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=60) | st.text(alphabet=string.printable, max_size=60))
def test_the_fast_paths_read_a_text_exactly_as_the_definitions_do(text: str) -> None:
    normalized = keywords.normalize(text)

    assert normalized == _normalize_slowly(text)
    assert keywords.compact(text) == "".join(c for c in text if c.isalnum())
    assert keywords.compact(normalized) == keywords.compact(keywords.core(normalized))
