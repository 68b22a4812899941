"""The NANP area-code table that :mod:`.location` reads, built from ``phonenumbers``' geocoder and time-zone data.

Importing the geocoder loads the place names of every country in every language (about 100 MB and a third of a
second), which no web or worker process should pay for a few hundred answers. They are computed here instead and
shipped as ``areacodes.json``: for every area code that has a geographic number, the states (``null`` when an
exchange's description names none: Canada, the Caribbean and the Pacific territories) and the zones that
phonenumbers gives any of its exchanges, both sorted. Scanning the 800 exchanges of every area code takes about
20 s. Refresh the file after upgrading phonenumbers; a test fails until it matches the installed version::

    python -m smsconnector_compliance.areacodes
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TypedDict

import phonenumbers
from phonenumbers import PhoneNumber, geocoder
from phonenumbers import timezone as number_zones

from .location import AREA_CODE_FILE, NON_GEOGRAPHIC, state_of

#: The command that writes the table, also recorded in the file.
COMMAND = "python -m smsconnector_compliance.areacodes"
#: The area codes scanned, and the exchanges (the three digits after the area code) scanned in each.
_AREA_CODES = range(200, 1000)
_EXCHANGES = range(200, 1000)


class Row(TypedDict):
    """What an area code covers."""

    states: list[str] | None  #: ``None`` when an exchange's description names no state
    zones: list[str]


def scan(npa: int) -> Row | None:
    """The states and zones phonenumbers gives the exchanges of an area code; ``None`` when none is geographic."""
    samples = [PhoneNumber(country_code=1, national_number=(npa * 1000 + exchange) * 10_000)
               for exchange in _EXCHANGES]
    if all(phonenumbers.number_type(sample) in NON_GEOGRAPHIC for sample in samples):
        return None  # unassigned, or toll-free and the like: locate() never looks these up
    zones: set[str] = set()
    states: set[str] = set()
    unknown = False
    for sample in samples:
        zones.update(number_zones.time_zones_for_geographical_number(sample))
        state = state_of(geocoder.description_for_valid_number(sample, "en"))
        if state is None:
            unknown = True
        else:
            states.add(state)
    zones.discard(number_zones.UNKNOWN_TIMEZONE)
    return Row(states=None if unknown else sorted(states), zones=sorted(zones))


def build() -> dict[str, Row]:
    """The table from the installed phonenumbers, keyed by area code."""
    return {str(npa): row for npa in _AREA_CODES if (row := scan(npa)) is not None}


def render(table: dict[str, Row]) -> str:
    """The file's text: JSON with one line per area code, so that a refresh reads as a short diff."""
    rows = ",\n".join(f"    {json.dumps(npa)}: {json.dumps(row)}" for npa, row in table.items())
    return f'{{\n  "generated_by": {json.dumps(COMMAND)},\n  "area_codes": {{\n{rows}\n  }}\n}}\n'


def main() -> None:
    """Write the table beside this module, in the source tree of an editable install."""
    table = build()
    path = Path(__file__).with_name(AREA_CODE_FILE)
    path.write_text(render(table), encoding="utf-8")
    print(f"{len(table)} area codes from phonenumbers {phonenumbers.__version__} written to {path}")


if __name__ == "__main__":
    main()
