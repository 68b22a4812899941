"""``[plugins.adkeywords]``: the keywords of each brand number, checked against compliance's before start-up."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field

from smsconnector.plugin import AGENT_TEXT_LIMIT, ConfigError, EntryPointSettings, configured_number

from .keywords import NAME, Keyword, Match, compliance_keyword, compliance_keyword_in, words

if TYPE_CHECKING:
    from smsconnector.config import Config


class KeywordSettings(BaseModel):
    """One ``[[plugins.adkeywords.keywords]]`` table."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    keyword: str = Field(min_length=1, max_length=100)
    #: the brand number the ad tells consumers to text; one of ``[[numbers]]``
    number: str
    campaign: str = Field(min_length=1, max_length=100)
    #: the auto-reply sent when the keyword matches
    reply: str = Field(min_length=1, max_length=AGENT_TEXT_LIMIT)
    #: the skill of the new conversation; the number's own skill when unset
    skill: str | None = Field(None, min_length=1, max_length=100)
    #: overrides the plugin-wide ``match`` for this keyword
    match: Match | None = None
    #: how compliance treats the auto-reply; an on-demand answer to the consumer's text is conversational
    reply_class: Literal["conversational", "informational", "marketing"] = "conversational"


class Settings(EntryPointSettings):
    """``[plugins.adkeywords]``."""

    #: "exact": the whole text is the keyword; "first_word": the text starts with it ("PIZZA please")
    match: Match = "exact"
    keywords: tuple[KeywordSettings, ...] = ()


def keywords_of(config: Config, settings: Settings) -> list[Keyword]:
    """The keywords ``[plugins.adkeywords]`` configures; a wrong one stops start-up naming its key."""
    keywords: list[Keyword] = []
    for index, entry in enumerate(settings.keywords):
        keywords.append(_keyword(config, settings, entry, f"plugins.{NAME}.keywords.{index}", keywords))
    return keywords


def _keyword(config: Config, settings: Settings, entry: KeywordSettings, key: str, earlier: list[Keyword]) -> Keyword:
    said = words(entry.keyword)
    if not said:
        raise ConfigError(f"{key}.keyword", f"'{entry.keyword}' has no letters or digits")
    exact = compliance_keyword(said)
    clash = exact or compliance_keyword_in(said)
    if clash is not None:
        what = "is" if exact else "contains"
        raise ConfigError(f"{key}.keyword", f"'{entry.keyword}' {what} the compliance keyword '{clash}': STOP, HELP, "
                                            "START and their synonyms are answered by compliance and can never be ad "
                                            "keywords")
    number = configured_number(config, entry.number, key=f"{key}.number")
    for index, other in enumerate(earlier):
        if (other.number, other.words) == (number.number, said):
            raise ConfigError(f"{key}.keyword", f"'{entry.keyword}' is already keyword {index} on {number.number}")
    return Keyword(words=said, number=number.number, skill=entry.skill or number.skill, campaign=entry.campaign,
                   reply=entry.reply, match=entry.match or settings.match, reply_class=entry.reply_class)
