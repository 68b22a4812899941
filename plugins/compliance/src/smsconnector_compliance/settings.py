"""``[plugins.compliance]``: every policy choice, validated, and what it resolves to for one brand number."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import phonenumbers
from pydantic import BaseModel, ConfigDict, Field, field_validator

from smsconnector.plugin import ConfigError, InvalidNumber, MessageClass, plugin_settings, to_e164

from .hours import Rule, zone
from .keywords import KINDS, Classifier, Kind, Vocabulary
from .languages import BUILTIN, ENGLISH, PROVIDER_KEYWORDS
from .location import Location, locate

if TYPE_CHECKING:
    from smsconnector.config import Config

NAME = "compliance"
T = TypeVar("T")

ConsentLevel = Literal["none", "exchange", "express", "written"]

#: The windows the plugin knows; see README "Quiet hours" for the sources and what is unverified.
RULES: dict[str, Rule] = {
    "US": Rule(hours="08:00-21:00", label="US federal, 47 CFR 64.1200(c)(1)"),
    "US-FL": Rule(hours="08:00-20:00", label="Florida, Fla. Stat. 501.616(6)"),
    "US-OK": Rule(hours="08:00-20:00", label="Oklahoma, 15 O.S. 775C"),
    "US-MD": Rule(hours="08:00-20:00", label="Maryland, Stop the Spam Calls Act"),
    "US-WA": Rule(hours="08:00-20:00", label="Washington, RCW 19.158.040(2)"),
    "US-CT": Rule(hours="09:00-20:00", label="Connecticut, SB 1058"),
    "US-TX": Rule(hours="09:00-21:00", sun="12:00-21:00", label="Texas, SB 140"),
    "CA": Rule(hours="09:00-21:30", sat="10:00-18:00", sun="10:00-18:00", label="Canada, CRTC telemarketing rules"),
    "FR": Rule(hours="08:00-21:30", sun="closed", holidays="FR", label="France, af2m Charte Business Messaging"),
    "IN": Rule(hours="09:00-21:00", label="India, TRAI TCCCPR 2018"),
}


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ConsentPolicy(_Model):
    """What each message class needs: none < exchange < express < written."""

    conversational: ConsentLevel = "exchange"
    informational: ConsentLevel = "express"
    marketing: ConsentLevel = "written"
    #: how long after the consumer's last text an "exchange" lasts
    exchange_hours: float = Field(168.0, gt=0)


class LanguageOverride(_Model):
    """Replaces parts of a keyword language; unset keys keep the built-in (or English) value."""

    opt_out: tuple[str, ...] | None = None
    opt_in: tuple[str, ...] | None = None
    help: tuple[str, ...] | None = None
    phrases: tuple[str, ...] | None = None
    commands: tuple[str, ...] | None = None
    lead_ins: tuple[str, ...] | None = None
    negations: tuple[str, ...] | None = None
    conjunctions: tuple[str, ...] | None = None
    fillers: tuple[str, ...] | None = None
    contact_fallback: str | None = None
    opt_out_reply: str | None = None
    opt_in_reply: str | None = None
    help_reply: str | None = None

    @field_validator("opt_out_reply", "opt_in_reply", "help_reply")
    @classmethod
    def _placeholders(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                value.format(brand="", contact="")
            except (KeyError, IndexError, ValueError) as exc:
                raise ValueError(f"only {{brand}} and {{contact}} may be used: {exc}") from None
        return value


class ProviderOverride(_Model):
    """How a provider treats keywords itself."""

    #: the provider answers (and blocks on) its own keywords, so we must not answer them too
    handles_keywords: bool | None = None
    opt_out: tuple[str, ...] | None = None
    opt_in: tuple[str, ...] | None = None
    help: tuple[str, ...] | None = None
    #: send or status error codes that mean "this consumer opted out with the provider" (Twilio 21610)
    opt_out_error_codes: tuple[str, ...] | None = None


class QuietHours(_Model):
    """When messages of ``classes`` may be sent, in the recipient's local time."""

    classes: tuple[MessageClass, ...] = ("marketing",)
    #: "exclusive": [08:00, 21:00) -- 21:00:00 is already outside; "inclusive": 21:00:00 itself is allowed
    end: Literal["exclusive", "inclusive"] = "exclusive"
    #: countries whose rule applies (keys of ``rules`` without a state)
    regions: tuple[str, ...] = ("US", "CA", "FR", "IN")
    #: apply the US state rows (US-FL...) too, to consented marketing as well (the conservative reading)
    states: bool = True
    #: a NANP number's zones: every zone of its "area_code" (850 is Central and Eastern), or the "number"'s own
    #: (phonenumbers' answer for its exchange: Pensacola Central, Tallahassee Eastern)
    zones: Literal["area_code", "number"] = "area_code"
    #: several zones for one number: "all" must be inside the window, or "first" (phonenumbers' first zone)
    several_zones: Literal["all", "first"] = "all"
    #: unknown or non-geographic number, or a state the geocoder does not name: the "strictest" rules of the
    #: country (its rule, every state's row and the smallest state cap), or the "country" rule alone; an
    #: unknown location also takes the brand's zone
    unknown_location: Literal["strictest", "country"] = "strictest"
    #: a window closing sooner than this counts as closed: the message waits for the next one
    min_validity_seconds: int = Field(60, ge=1)
    #: windows by region ("US", "US-TX", "FR"), replacing the built-in row of the same key
    rules: dict[str, Rule] = {}


class Caps(_Model):
    """How many messages of ``classes`` one consumer may get from one brand per rolling window."""

    classes: tuple[MessageClass, ...] = ("marketing",)
    window_hours: float = Field(24.0, gt=0)
    #: by region of the recipient's area code; FL 501.616(6), OK 775C, MD SB 90 say 3 per 24 hours
    limits: dict[str, int] = {"US-FL": 3, "US-OK": 3, "US-MD": 3}


class NumberPolicy(_Model):
    """Settings for one brand number; unset keys take the plugin-wide value."""

    brand_name: str | None = None
    #: customer care contact for HELP replies: a toll-free number or URL
    contact: str | None = None
    languages: tuple[str, ...] | None = None
    keywords: dict[str, LanguageOverride] = {}
    #: the brand's zone, used when the recipient's is unknown
    time_zone: str | None = None
    provider_handles_keywords: bool | None = None
    #: the brand's own window, intersected with the legal ones
    quiet_hours: Rule | None = None


class Settings(_Model):
    """The whole ``[plugins.compliance]`` section."""

    #: keyword languages matched, in order; the first that knows a keyword answers in its language
    languages: tuple[str, ...] = ("en", "fr")
    #: tier 2: opt-out phrases, and commands with lead-ins and filler words ("please stop texting me", "No STOP")
    phrases: bool = True
    #: how many words before a keyword or phrase a negation cancels it ("don't stop"); 0 ignores negations
    negation_window: int = Field(5, ge=0, le=10)
    fold_accents: bool = True
    #: an opt-out covers every number of the brand ("brand", when the host's number has a ``brand``) or one number
    opt_out_scope: Literal["brand", "number"] = "brand"
    #: answer HELP from an opted-out consumer (short-code practice) or not (toll-free practice, the default)
    help_when_opted_out: bool = False
    #: a text from an opted-out consumer that is not a keyword: "route" it to the agent with a note, or "store" it
    after_opt_out: Literal["route", "store"] = "route"
    #: an opt-in (START) restores the consents recorded before the opt-out; otherwise new consent is needed
    opt_in_restores_consent: bool = False
    #: the brand's zone when neither the number's settings nor the brand number itself give one
    default_time_zone: str = "America/New_York"
    consent: ConsentPolicy = ConsentPolicy()
    keywords: dict[str, LanguageOverride] = {}
    providers: dict[str, ProviderOverride] = {}
    quiet_hours: QuietHours = QuietHours()
    caps: Caps = Caps()
    numbers: dict[str, NumberPolicy] = {}

    @field_validator("numbers")
    @classmethod
    def _e164_keys(cls, value: dict[str, NumberPolicy]) -> dict[str, NumberPolicy]:
        try:
            return {to_e164(k): v for k, v in value.items()}
        except InvalidNumber as exc:
            raise ValueError(str(exc)) from None

    @field_validator("default_time_zone")
    @classmethod
    def _zone(cls, value: str) -> str:
        if zone(value) is None:
            raise ValueError(f"unknown time zone '{value}'")
        return value


def load(section: dict[str, Any]) -> Settings:
    """Validate the section; :class:`ConfigError` names the first wrong key."""
    settings = plugin_settings(section, NAME, Settings)
    for number, policy in settings.numbers.items():
        if policy.time_zone is not None and zone(policy.time_zone) is None:
            raise ConfigError(f"plugins.{NAME}.numbers.{number}.time_zone", f"unknown time zone '{policy.time_zone}'")
    for language in {*settings.languages, *(lang for p in settings.numbers.values() for lang in p.languages or ())}:
        if language not in BUILTIN and language not in settings.keywords:
            raise ConfigError(f"plugins.{NAME}.languages", f"no keywords for language '{language}': add "
                              f"[plugins.{NAME}.keywords.{language}]")
    return settings


@dataclass(frozen=True, slots=True)
class ProviderKeywords:
    handles_keywords: bool
    keywords: dict[Kind, frozenset[str]]
    opt_out_error_codes: frozenset[str]

    def answered(self, text: str) -> Kind | None:
        """The provider's keyword this text is, as the provider matches: the whole body, trimmed, any case."""
        body = text.strip().casefold()
        for kind, words in self.keywords.items():
            if body in words:
                return kind
        return None


@dataclass(frozen=True, slots=True)
class NumberRules:
    """Everything the plugin decides for one brand number, resolved once."""

    number: str
    scope: str  #: what an opt-out covers: ``brand:<name>`` or ``number:<e164>``
    brand: str
    classifier: Classifier
    replies: dict[str, dict[Kind, str]]  #: language -> kind -> text, rendered
    default_language: str
    provider_handles_keywords: bool
    provider_keywords: ProviderKeywords
    time_zone: str
    window: Rule | None

    def reply(self, kind: Kind, language: str | None) -> str:
        return self.replies.get(language or self.default_language, self.replies[self.default_language])[kind]

    @property
    def help_texts(self) -> frozenset[str]:
        return frozenset(texts["help"] for texts in self.replies.values())


class Policy:
    """The validated settings plus the host's numbers; resolves and caches per-number rules."""

    def __init__(self, settings: Settings, host: Config) -> None:
        self.settings = settings
        self.host = host
        self._rules: dict[tuple[str, str | None], NumberRules] = {}

    def rules(self, number: str, provider: str | None = None) -> NumberRules:
        key = (number, provider)
        if key not in self._rules:
            self._rules[key] = self._resolve(number, provider)
        return self._rules[key]

    def provider(self, name: str | None) -> ProviderKeywords:
        base: dict[str, Any] = dict(PROVIDER_KEYWORDS.get(name or "", {}))
        override = self.settings.providers.get(name or "")
        if override is not None:
            base.update(override.model_dump(exclude_none=True))
        return ProviderKeywords(
            handles_keywords=bool(base.get("handles_keywords", False)),
            keywords={k: frozenset(w.strip().casefold() for w in base.get(k, ())) for k in KINDS},
            opt_out_error_codes=frozenset(base.get("opt_out_error_codes", ())),
        )

    @cached_property
    def windows(self) -> dict[str, Rule]:
        return {**RULES, **self.settings.quiet_hours.rules}

    def state_rows(self, location: Location, table: Mapping[str, T]) -> list[tuple[str, T]]:
        """The rows of ``table`` (windows or caps by ``"US-FL"``) for the states the recipient may be in.

        Its area code's states; when its state is unknown, every state row of its country (``unknown_location =
        "strictest"``) or none (``"country"``).
        """
        if location.states is not None:
            return [(region, table[region]) for region in location.regions if region in table]
        if self.settings.quiet_hours.unknown_location != "strictest" or location.country is None:
            return []
        return [(key, row) for key, row in table.items() if key.startswith(location.country + "-")]

    def cap(self, location: Location) -> tuple[str, int] | None:
        """The region whose cap applies to this recipient and its limit: the smallest of the rows that may apply."""
        limits = self.settings.caps.limits
        rows = self.state_rows(location, limits)
        if location.country is not None and location.country in limits:
            rows.append((location.country, limits[location.country]))
        return min(rows, key=lambda row: row[1], default=None)

    def _resolve(self, number: str, provider: str | None) -> NumberRules:
        s = self.settings
        own = s.numbers.get(number, NumberPolicy())
        host_number = self.host.number(number)
        host_brand = host_number.brand if host_number else None
        scope = f"brand:{host_brand}" if s.opt_out_scope == "brand" and host_brand else f"number:{number}"
        brand = own.brand_name or host_brand or _national(number)
        languages = own.languages or s.languages
        toll_free = _is_toll_free(number)
        vocabularies: list[Vocabulary] = []
        replies: dict[str, dict[Kind, str]] = {}
        for language in languages:
            overrides = s.keywords.get(language), own.keywords.get(language)
            pack = _pack(language, *overrides)
            if toll_free and language == "en" and not _sets_opt_in(*overrides):
                # On toll-free numbers only START and UNSTOP lift the carrier's block; YES does not [S4].
                pack["opt_in"] = [k for k in pack["opt_in"] if k.upper() != "YES"]
            vocabularies.append(Vocabulary.build(
                language, opt_out=pack["opt_out"], opt_in=pack["opt_in"], help=pack["help"], phrases=pack["phrases"],
                negations=pack["negations"], fillers=pack["fillers"], conjunctions=pack["conjunctions"],
                commands=pack["commands"], lead_ins=pack["lead_ins"], fold_accents=s.fold_accents))
            contact = own.contact or pack["contact_fallback"]
            replies[language] = {kind: pack[f"{kind}_reply"].format(brand=brand, contact=contact) for kind in KINDS}
        providers = self.provider(provider)
        handles = own.provider_handles_keywords
        return NumberRules(
            number=number, scope=scope, brand=brand,
            classifier=Classifier(vocabularies, phrases=s.phrases, negation_window=s.negation_window,
                                  fold_accents=s.fold_accents),
            replies=replies, default_language=languages[0],
            provider_handles_keywords=providers.handles_keywords if handles is None else handles,
            provider_keywords=providers, time_zone=own.time_zone or _own_zone(number) or s.default_time_zone,
            window=own.quiet_hours,
        )


def _pack(language: str, *overrides: LanguageOverride | None) -> dict[str, Any]:
    pack = {**ENGLISH, "opt_out": [], "opt_in": [], "help": [], "phrases": [], "commands": [], "lead_ins": [],
            "negations": [], "conjunctions": [], "fillers": [], **BUILTIN.get(language, {})}
    for override in overrides:
        if override is not None:
            pack.update(override.model_dump(exclude_none=True))
    return pack


def _sets_opt_in(*overrides: LanguageOverride | None) -> bool:
    return any(o is not None and o.opt_in is not None for o in overrides)


def _national(number: str) -> str:
    try:
        return phonenumbers.format_number(phonenumbers.parse(number), phonenumbers.PhoneNumberFormat.NATIONAL)
    except phonenumbers.NumberParseException:
        return number


def _is_toll_free(number: str) -> bool:
    try:
        return phonenumbers.number_type(phonenumbers.parse(number)) == phonenumbers.PhoneNumberType.TOLL_FREE
    except phonenumbers.NumberParseException:
        return False


def _own_zone(number: str) -> str | None:
    """The brand number's own zone when it has exactly one."""
    zones = locate(number).zones
    return zones[0] if len(zones) == 1 else None
