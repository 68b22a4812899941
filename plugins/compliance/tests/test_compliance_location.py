"""Where a recipient is: the state and zones phonenumbers' data give a number, and what the gate does with them."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from smsconnector.config import load_config
from smsconnector_compliance.gate import window
from smsconnector_compliance.hours import next_opening
from smsconnector_compliance.location import Location, locate, state_of
from smsconnector_compliance.settings import Policy, load

BRAND = "+15555550100"
EASTERN, CENTRAL, MOUNTAIN, PACIFIC = "America/New_York", "America/Chicago", "America/Denver", "America/Los_Angeles"

#: number, where it is, its country, its area code's states, its own zones, its area code's zones
PLACES = [
    ("+12033351234", "Bridgeport, CT (203)", "US", ("CT",), (EASTERN,), (EASTERN,)),
    ("+18605550123", "Hartford, CT (860)", "US", ("CT",), (EASTERN,), (EASTERN,)),
    ("+13102601234", "Santa Monica, CA (310)", "US", ("CA",), (PACIFIC,), (PACIFIC,)),
    ("+17132221234", "Houston, TX (713)", "US", ("TX",), (CENTRAL,), (CENTRAL,)),
    ("+17182221234", "Brooklyn, NY (718)", "US", ("NY",), (EASTERN,), (EASTERN,)),
    ("+13055550142", "Miami, FL (305)", "US", ("FL",), (EASTERN,), (EASTERN,)),
    ("+18504441234", "Pensacola, FL (850)", "US", ("FL",), (CENTRAL,), (CENTRAL, EASTERN)),
    ("+18506441234", "Tallahassee, FL (850)", "US", ("FL",), (EASTERN,), (EASTERN, CENTRAL)),
    ("+14055551234", "Oklahoma (405)", "US", ("OK",), (CENTRAL,), (CENTRAL,)),
    ("+12065551234", "Seattle, 'Washington State' (206)", "US", ("WA",), (PACIFIC,), (PACIFIC,)),
    ("+12025551234", "'Washington D.C.' (202)", "US", ("DC",), (EASTERN,), (EASTERN,)),
    ("+12085550123", "Idaho (208)", "US", ("ID",), ("America/Boise", PACIFIC), ("America/Boise", PACIFIC, MOUNTAIN)),
    ("+12015551234", "New Jersey (201), one exchange listed in New York", "US", ("NJ", "NY"), (EASTERN,), (EASTERN,)),
    ("+17875551234", "Puerto Rico: a territory, its own row key", "US", ("PR",), ("America/Puerto_Rico",),
     ("America/Puerto_Rico",)),
    ("+17095550123", "Newfoundland: no state is looked up outside the US", "CA", (),
     ("America/Halifax", "America/St_Johns"), ("America/Halifax", "America/St_Johns")),
    ("+33612345678", "a French mobile", "FR", (), ("Europe/Paris",), ("Europe/Paris",)),
]


@pytest.mark.parametrize(("number", "where", "country", "states", "zones", "area_zones"), PLACES,
                         ids=[p[1] for p in PLACES])
def test_a_number_gets_the_state_and_zones_of_its_area_code(number: str, where: str, country: str,
                                                            states: tuple[str, ...], zones: tuple[str, ...],
                                                            area_zones: tuple[str, ...]) -> None:
    location = locate(number)

    assert (location.country, location.states, location.known) == (country, states, True)
    assert location.zones == zones
    assert location.area_zones == area_zones


@pytest.mark.parametrize(("number", "country"), [("+18005550123", "US"), ("+15555550123", "US"),
                                                 ("+447700900123", "GB"), ("not a number", None)])
def test_a_number_that_says_nothing_of_its_place_has_an_unknown_state(number: str, country: str | None) -> None:
    location = locate(number)

    assert (location.country, location.states, location.zones, location.known) == (country, None, (), False)


@pytest.mark.parametrize(("description", "state"), [
    ("Bridgeport, CT", "CT"), ("Connecticut", "CT"), ("Washington State", "WA"), ("Washington D.C.", "DC"),
    ("Puerto Rico", "PR"), ("Toronto, ON", None), ("Ontario", None), ("United States", None), ("", None),
])
def test_the_state_is_read_from_the_geocoder_description(description: str, state: str | None) -> None:
    assert state_of(description) == state


@pytest.fixture(scope="module")
def policy() -> Policy:
    return Policy(load({}), load_config(env={}))


def test_a_state_the_geocoder_does_not_name_gets_every_state_row_in_the_numbers_own_zone(policy: Policy) -> None:
    # No US area code has such an answer in today's data; a future one (a new overlay not geocoded yet) would.
    nowhere = Location("+13105550123", (PACIFIC,), (PACIFIC,), "US", None, True)
    applies = window(policy, policy.rules(BRAND), nowhere)
    assert applies is not None
    sunday = datetime(2026, 7, 19, 11, 0, tzinfo=ZoneInfo(PACIFIC))

    opening = next_opening(applies.week, applies.zones, sunday.astimezone(UTC))

    assert [z.key for z in applies.zones] == [PACIFIC]
    assert applies.week.describe() == "Mon-Sat 09:00-20:00; Sun 12:00-20:00"  # Connecticut, Texas and Florida
    assert opening.start == sunday.replace(hour=12)


def test_the_strictest_cap_applies_where_the_state_is_unknown_and_the_states_where_it_is_known(
        policy: Policy) -> None:
    assert policy.cap(locate("+18005550123")) == ("US-FL", 3)  # toll-free: could be anywhere
    assert policy.cap(locate("+14055551234")) == ("US-OK", 3)
    assert policy.cap(locate("+17132221234")) is None  # Texas has no cap
    assert Policy(load({"quiet_hours": {"unknown_location": "country"}}), load_config(env={})).cap(
        locate("+18005550123")) is None
