"""Where a recipient probably is: the time zones and the US state of a phone number, from ``phonenumbers``.

The state rules hang on the area code: Florida, Oklahoma and Connecticut presume that a number with one of their
area codes reaches a resident, and the plaintiffs in the quiet-hours suits plead that they live in their area
code's region. A mobile keeps its number when its holder moves, so the exchange says less than the area code.
For a NANP number (+1) the plugin therefore answers for the whole area code:

- its **states** are those that ``phonenumbers``' geocoder names for any exchange of the area code ("Connecticut",
  "Bridgeport, CT", "Washington State"): one for every US area code today, two where an exchange is listed in
  another state (201: New Jersey, one exchange in New York), so every state rule that may apply applies;
- its **zones** are every zone ``phonenumbers`` gives any of its exchanges, the number's own first: 850 is
  Central in Pensacola and Eastern in Tallahassee, 208 Mountain and Pacific. The send gate can use either the
  area code's zones (the default) or the number's own.

A description that names no state (the country alone, or nothing) leaves the state unknown: the gate then treats
the recipient as being in any state. Both answers come from data that ``phonenumbers`` keeps up to date with the
NANPA assignments (new area codes, overlays); nothing here is a hand-written list of area codes. Elsewhere than
NANP the number's own zones are used and no state is looked up.

Importing the geocoder would load the place names of every country in every language (about 100 MB and a third of
a second per process), so the area codes' answers are computed from it ahead of time and shipped as
``areacodes.json`` (see :mod:`smsconnector_compliance.areacodes`, which refreshes it); a test fails when the
file differs from what the installed ``phonenumbers`` gives. The file is read the first time a NANP number is
located (about 1 ms); the number's own zones come from ``phonenumbers.timezone``, whose data are small.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache, lru_cache
from importlib.resources import files

import holidays
import phonenumbers
from phonenumbers import PhoneNumberType
from phonenumbers import timezone as number_zones

#: US territories: the federal rules apply, and the territory is their "state" (``US-PR``), with no row built in.
US_TERRITORIES = frozenset({"PR", "VI", "GU", "AS", "MP"})
#: Numbers that say nothing about where their holder is; phonenumbers gives every zone of the country plan.
NON_GEOGRAPHIC = frozenset({PhoneNumberType.TOLL_FREE, PhoneNumberType.PREMIUM_RATE, PhoneNumberType.SHARED_COST,
                            PhoneNumberType.UAN, PhoneNumberType.PERSONAL_NUMBER, PhoneNumberType.VOICEMAIL,
                            PhoneNumberType.PAGER, PhoneNumberType.UNKNOWN})
#: US states, DC and territories by name and by code, as the ``holidays`` package knows them.
US_STATE_CODES = frozenset(holidays.US.subdivisions)
US_STATE_NAMES: dict[str, str] = dict(holidays.US.subdivisions_aliases)
#: The geocoder's own spellings of two names, which are not the states' names.
GEOCODER_SPELLINGS = {"Washington State": "WA", "Washington D.C.": "DC"}
#: Each NANP area code's states and zones, built from phonenumbers by ``python -m smsconnector_compliance.areacodes``
AREA_CODE_FILE = "areacodes.json"


def state_of(description: str) -> str | None:
    """The US state a geocoder description names: ``"Bridgeport, CT"``, ``"Connecticut"`` -> ``"CT"``.

    Used when the area-code table is built; nothing reads the geocoder at run time.
    """
    place, _, code = description.rpartition(", ")
    if place and code in US_STATE_CODES:
        return code
    return US_STATE_NAMES.get(description) or GEOCODER_SPELLINGS.get(description)


@dataclass(frozen=True, slots=True)
class Location:
    """A recipient's probable location; ``known`` is false for invalid and non-geographic numbers."""

    number: str
    zones: tuple[str, ...]  #: IANA names phonenumbers gives the number itself; empty when unknown
    area_zones: tuple[str, ...]  #: every zone of its area code, the number's own first (NANP); else ``zones``
    country: str | None  #: ISO region whose rules apply ("US" for US territories too)
    #: US state, "DC" or territory codes of the area code; ``()`` where none is looked up (outside the US);
    #: ``None`` when unknown: an invalid or non-geographic number, or an area code the geocoder places nowhere
    states: tuple[str, ...] | None
    known: bool

    @property
    def regions(self) -> tuple[str, ...]:
        """``("US-FL",)``: the keys of the state rows for the recipient's states; empty when none is known."""
        return tuple(f"{self.country}-{state}" for state in self.states or ())


@dataclass(frozen=True, slots=True)
class _AreaCode:
    zones: tuple[str, ...]
    states: tuple[str, ...] | None  #: ``None`` when an exchange's description names no state


#: An area code missing from the table: one with no geographic number when the table was built.
_NOWHERE = _AreaCode((), None)


@cache
def _area_codes() -> dict[int, _AreaCode]:
    """The shipped table of every zone and state that phonenumbers gives any exchange of a NANP area code."""
    table = json.loads(files(__package__).joinpath(AREA_CODE_FILE).read_text(encoding="utf-8"))
    return {int(npa): _AreaCode(tuple(row["zones"]), None if row["states"] is None else tuple(row["states"]))
            for npa, row in table["area_codes"].items()}


@lru_cache(maxsize=4096)
def locate(number: str) -> Location:
    """The zones, country and states of an E.164 number; unknown parts stay empty (states: ``None``)."""
    try:
        parsed = phonenumbers.parse(number)
    except phonenumbers.NumberParseException:
        return Location(number, (), (), None, None, False)
    region = phonenumbers.region_code_for_number(parsed) or phonenumbers.region_code_for_country_code(
        parsed.country_code or 0)
    country = "US" if region in US_TERRITORIES else (None if region in (None, "ZZ", "001") else region)
    if not phonenumbers.is_valid_number(parsed) or phonenumbers.number_type(parsed) in NON_GEOGRAPHIC:
        return Location(number, (), (), country, None, False)
    zones = tuple(z for z in number_zones.time_zones_for_number(parsed) if z != number_zones.UNKNOWN_TIMEZONE)
    if parsed.country_code != 1:
        return Location(number, zones, zones, country, (), bool(zones))
    area = _area_codes().get(int(str(parsed.national_number)[:3]), _NOWHERE)
    area_zones = tuple(dict.fromkeys((*zones, *area.zones)))
    if region in US_TERRITORIES:
        states: tuple[str, ...] | None = (region,)
    else:
        states = area.states if country == "US" else ()
    return Location(number, zones, area_zones, country, states, bool(zones))
