"""Revocations in plain words are acted on (the FCC's reasonable-means standard); other uses of the words are not."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smsconnector.config import load_config
from smsconnector_compliance.keywords import Classifier
from smsconnector_compliance.settings import Policy, load

from .compliance_helpers import Pipeline

BRAND = "+15555550100"
CONFIRMATION = "(555) 555-0100: You are unsubscribed and will receive no more messages. Reply START to resubscribe."

MUST_OPT_OUT = [
    "No, stop", "No STOP", "NO STOP!!", "Nope, stop", "no no no stop", "No thanks, stop", "Not interested, stop",
    "Not interested. Unsubscribe", "STOP, I'm not interested", "stop stop", "STOP STOP STOP", "Stop!!! Stop!!!",
    "STOP ALL STOP ALL", "I said stop", "I said STOP", "i told you to stop", "Stop it", "Stop it already", "Quit it",
    "stop it stop it", "Stop this", "please stop texting me", "unsubscribe me", "Unsubscribe me please",
    "Who is this? Stop", "wrong number stop", "Seriously. STOP.", "No stop texting me",
    "Not interested stop texting me", "no! opt-out", "Non, arrêt", "Arrête ça",
]
#: the text, and whether the agent still gets a note (it mentions an opt-out word without being an opt-out)
MUST_NOT_OPT_OUT = [
    ("don't stop the service", True), ("what time does the bus stop", True), ("can I stop by tomorrow?", True),
    ("Is there a stop near you?", True), ("I'll stop by later", True), ("how do I stop it from crashing", True),
    ("Stop, wait, I meant Tuesday", True), ("STOP 12345", True), ("No, don't stop", True),
    ("No need to stop texting me", True), ("I can't stop laughing", True), ("when does the sale end?", True),
    ("Cancel my appointment", True), ("stopped working", False), ("my phone stopped working", False),
    ("nonstop deals", False), ("No", False), ("No thanks", False), ("I said yes", False),
]


@pytest.fixture(scope="module")
def classifier() -> Classifier:
    return Policy(load({}), load_config(env={})).rules(BRAND).classifier


@pytest.mark.parametrize("text", MUST_OPT_OUT)
def test_a_revocation_in_plain_words_opts_out(classifier: Classifier, text: str) -> None:
    found = classifier.classify(text)

    assert (found.kind, found.tier, found.flag) == ("opt_out", 2, None)


@pytest.mark.parametrize(("text", "flagged"), MUST_NOT_OPT_OUT, ids=[t for t, _ in MUST_NOT_OPT_OUT])
def test_another_use_of_the_words_does_not_opt_out_and_the_agent_is_told_when_unsure(
        classifier: Classifier, text: str, flagged: bool) -> None:
    found = classifier.classify(text)

    assert found.kind is None
    assert (found.flag is not None) == flagged, found.flag


#: every text of both tables, and whether it opts out
VERDICTS = {**dict.fromkeys(MUST_OPT_OUT, True), **{t: False for t, _ in MUST_NOT_OPT_OUT}}
TEXTS = sorted(VERDICTS)
_CLASSIFIER = Policy(load({}), load_config(env={})).rules(BRAND).classifier


def _opts_out(text: str) -> bool:
    return _CLASSIFIER.classify(text).kind == "opt_out"


@given(st.sampled_from(TEXTS), st.randoms(use_true_random=False))
def test_the_casing_never_changes_the_verdict(text: str, rnd: Any) -> None:
    recased = "".join(c.upper() if rnd.random() < 0.5 else c.lower() for c in text)

    assert _opts_out(recased) == VERDICTS[text]


_SPACES = st.text(alphabet=" \t\u00a0\u2003", min_size=1, max_size=4)
_NOISE = st.text(alphabet=" \t\u00a0!?.…,;:\"'*~()🛑🙏😡👍", max_size=6)


@given(st.sampled_from(TEXTS), st.data())
def test_surrounding_punctuation_emoji_and_extra_whitespace_never_change_the_verdict(text: str, data: Any) -> None:
    words = text.split(" ")
    spaced = "".join(w + (data.draw(_SPACES) if i < len(words) - 1 else "") for i, w in enumerate(words))
    noisy = data.draw(_NOISE) + spaced + data.draw(_NOISE)

    assert _opts_out(noisy) == VERDICTS[text]


@given(st.sampled_from(TEXTS), st.sampled_from(["please {}", "{} please", "Please, {}", "{}!!!", "{} pls!!!",
                                                "{} thanks"]))
def test_politeness_and_exclamation_marks_never_change_the_verdict(text: str, form: str) -> None:
    assert _opts_out(form.format(text)) == VERDICTS[text]


@given(st.sampled_from(MUST_OPT_OUT), st.sampled_from(["{0} {0}", "{0}. {0}", "{0}\n{0}", "{0}!! {0}!!"]))
def test_saying_a_revocation_twice_still_revokes(text: str, form: str) -> None:
    assert _opts_out(form.format(text))


def test_the_lists_are_configuration_and_replace_the_built_in_ones() -> None:
    classifier = Policy(load({"keywords": {"en": {"commands": ["knock it off"], "lead_ins": ["ugh"]}}}),
                        load_config(env={})).rules(BRAND).classifier

    assert classifier.classify("Ugh, knock it off!").kind == "opt_out"
    assert classifier.classify("Stop it").kind is None  # the built-in commands were replaced
    assert classifier.classify("No STOP").kind is None and classifier.classify("No STOP").flag is not None


def test_with_phrases_off_a_plain_words_revocation_is_only_flagged() -> None:
    found = Policy(load({"phrases": False}), load_config(env={})).rules(BRAND).classifier.classify("No STOP")

    assert found.kind is None and found.flag is not None


def test_a_plain_words_revocation_has_the_effect_and_confirmation_of_stop(make_app: Any, db: Any) -> None:
    app = make_app(numbers=[{"number": BRAND, "provider": "simulator"}])
    pipe = Pipeline(app)

    async def main() -> list[Any]:
        await pipe.receive("No STOP", consumer="+13055550001", to=BRAND)
        await pipe.receive("STOP", consumer="+13055550002", to=BRAND)
        await pipe.receive("can I stop by tomorrow?", consumer="+13055550003", to=BRAND)
        await pipe.drain()
        await pipe.queue("Hello", consumer="+13055550001", frm=BRAND)
        await pipe.drain()
        out = [await pipe.outbound(n) for n in ("+13055550001", "+13055550002", "+13055550003")]
        await pipe.close()
        return out

    plain, keyword, other = asyncio.run(main())

    assert [(m.body, m.status != "refused") for m in plain] == [(CONFIRMATION, True), ("Hello", False)]
    assert [m.body for m in keyword] == [CONFIRMATION]
    assert other == []
    assert db.rows("SELECT consumer_number, method, matched, tier FROM compliance_ledger WHERE action = 'opt_out' "
                   "ORDER BY consumer_number") == [
        {"consumer_number": "+13055550001", "method": "phrase", "matched": "STOP", "tier": 2},
        {"consumer_number": "+13055550002", "method": "keyword", "matched": "STOP", "tier": 1}]
