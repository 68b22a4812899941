"""Where a recipient probably is: the time zones and the US state of a phone number.

The legal hook of the state rules is the area code (Florida and Oklahoma presume that a number with their area
code reaches a resident), so the state comes from the NPA, not from the free-text geocoder. The time zones come
from ``phonenumbers``, which resolves some area codes by exchange (850 is Central in Pensacola, Eastern in
Tallahassee) and returns several zones where one area code spans several (208 Idaho, 709 Newfoundland).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import phonenumbers
from phonenumbers import PhoneNumberType
from phonenumbers import timezone as number_zones

#: US area codes by state (and DC), from the NANPA assignments as carried by phonenumbers' geocoding data.
_NPAS_BY_STATE = {
    "AK": "907",
    "AL": "205 251 256 334 659 938",
    "AR": "327 479 501 870",
    "AZ": "480 520 602 623 928",
    "CA": ("209 213 279 323 341 350 369 408 415 424 442 510 530 559 562 619 626 628 650 657 661 669 "
           "707 714 738 747 760 805 818 820 831 840 858 909 916 925 949 951"),
    "CO": "303 719 720 748 970 983",
    "CT": "475 860 959",
    "DC": "202 771",
    "DE": "302",
    "FL": "239 305 321 324 352 386 407 448 561 645 656 689 727 728 754 772 786 813 850 863 904 941 954",
    "GA": "229 404 470 478 678 706 762 770 912 943",
    "HI": "808",
    "IA": "319 515 563 641 712",
    "ID": "208 986",
    "IL": "217 224 309 312 331 447 464 618 630 708 730 773 779 815 847 872",
    "IN": "219 260 317 463 574 765 812 930",
    "KS": "316 620 785 913",
    "KY": "270 364 502 606 859",
    "LA": "225 318 337 504 985",
    "MA": "339 351 413 508 617 774 781 857 978",
    "MD": "227 240 301 410 443 667",
    "ME": "207",
    "MI": "231 248 269 313 517 586 616 734 810 906 947 989",
    "MN": "218 320 507 612 651 763 952",
    "MO": "235 314 417 557 573 636 660 816 975",
    "MS": "228 601 662 769",
    "MT": "406",
    "NC": "252 336 472 704 743 828 910 919 980 984",
    "ND": "701",
    "NE": "308 402 531",
    "NH": "603",
    "NJ": "201 551 609 640 732 848 856 862 908 973",
    "NM": "505 575",
    "NV": "702 725 775",
    "NY": "212 315 329 332 347 363 516 518 585 607 631 646 680 716 838 845 914 917 929 934",
    "OH": "216 220 234 283 326 330 380 419 440 513 567 614 740 937",
    "OK": "405 539 572 580 918",
    "OR": "458 503 541 971",
    "PA": "215 223 267 272 412 445 484 570 582 610 717 724 814 835 878",
    "RI": "401",
    "SC": "803 821 839 843 854 864",
    "SD": "605",
    "TN": "423 615 629 731 865 901 931",
    "TX": "210 214 254 281 325 346 361 409 430 432 469 512 682 726 737 806 817 830 832 903 915 936 940 945 956 972 979",
    "UT": "385 435 801",
    "VA": "276 434 540 571 686 703 757 804 826 948",
    "VT": "802",
    "WA": "206 253 360 425 509 564",
    "WI": "262 274 353 414 534 608 715 920",
    "WV": "304 681",
    "WY": "307",
}
NPA_STATE: dict[str, str] = {npa: state for state, npas in _NPAS_BY_STATE.items() for npa in npas.split()}

#: US territories: the federal rules apply; they have no state row.
US_TERRITORIES = frozenset({"PR", "VI", "GU", "AS", "MP"})
#: Numbers that say nothing about where their holder is; phonenumbers gives every zone of the country plan.
NON_GEOGRAPHIC = frozenset({PhoneNumberType.TOLL_FREE, PhoneNumberType.PREMIUM_RATE, PhoneNumberType.SHARED_COST,
                            PhoneNumberType.UAN, PhoneNumberType.PERSONAL_NUMBER, PhoneNumberType.VOICEMAIL,
                            PhoneNumberType.PAGER, PhoneNumberType.UNKNOWN})


@dataclass(frozen=True, slots=True)
class Location:
    """A recipient's probable location; ``known`` is false for invalid and non-geographic numbers."""

    number: str
    zones: tuple[str, ...]  #: IANA names; empty when unknown
    country: str | None  #: ISO region whose rules apply ("US" for US territories too)
    state: str | None  #: US state or "DC", from the area code
    known: bool

    @property
    def region(self) -> str | None:
        """``US-FL`` when the state is known, else the country."""
        return f"{self.country}-{self.state}" if self.country and self.state else self.country


@lru_cache(maxsize=4096)
def locate(number: str) -> Location:
    """The zones, country and state of an E.164 number; unknown parts stay empty."""
    try:
        parsed = phonenumbers.parse(number)
    except phonenumbers.NumberParseException:
        return Location(number, (), None, None, False)
    region = phonenumbers.region_code_for_number(parsed) or phonenumbers.region_code_for_country_code(
        parsed.country_code or 0)
    country = "US" if region in US_TERRITORIES else (None if region in (None, "ZZ", "001") else region)
    national = str(parsed.national_number)
    state = NPA_STATE.get(national[:3]) if parsed.country_code == 1 and region == "US" else None
    if not phonenumbers.is_valid_number(parsed) or phonenumbers.number_type(parsed) in NON_GEOGRAPHIC:
        return Location(number, (), country, state if phonenumbers.is_valid_number(parsed) else None, False)
    zones = tuple(z for z in number_zones.time_zones_for_number(parsed) if z != "Etc/Unknown")
    return Location(number, zones, country, state, bool(zones))
