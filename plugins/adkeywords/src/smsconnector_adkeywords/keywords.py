"""Forgiving keyword matching: case, accents, punctuation and spacing do not matter; compliance keywords never match."""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from smsconnector.plugin import MessageClass, Routing

NAME = "adkeywords"
Match = Literal["exact", "first_word"]
Words = tuple[str, ...]

#: STOP, HELP and START with their synonyms. The compliance plugin answers these, so no ad keyword may be one
#: (refused at start-up) and a text that is one is never claimed here, whether or not compliance is installed.
COMPLIANCE_KEYWORDS = ("STOP", "STOPALL", "STOP ALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT",
                       "OPT OUT", "START", "YES", "UNSTOP", "HELP", "INFO", "ARRET", "AIDE")
#: The ones that revoke consent: a text with one of these anywhere in it may be an opt-out ("PIZZA no, STOP"),
#: so it is left to compliance and the agents rather than answered with a campaign's auto-reply.
OPT_OUT_KEYWORDS = ("STOP", "STOPALL", "STOP ALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT",
                    "OPT OUT", "ARRET")


def words(text: str) -> Words:
    """Text as comparable words: accents and case folded, anything but letters and digits a separator."""
    decomposed = unicodedata.normalize("NFKD", text)
    kept = "".join(c if c.isalnum() else " " for c in decomposed if not unicodedata.combining(c))
    return tuple(kept.casefold().split())


_COMPLIANCE = {words(k): k for k in COMPLIANCE_KEYWORDS}
_OPT_OUT = frozenset(words(k) for k in OPT_OUT_KEYWORDS)
_LONGEST = max(len(w) for w in _COMPLIANCE)


def _windows(text: Words) -> Iterable[Words]:
    """Every run of one or two consecutive words: compliance keywords have at most two."""
    return (text[start:start + size] for start in range(len(text)) for size in range(1, _LONGEST + 1)
            if start + size <= len(text))


def compliance_keyword(text: Words) -> str | None:
    """The compliance keyword ``text`` is, if it is one."""
    return _COMPLIANCE.get(text)


def compliance_keyword_in(text: Words) -> str | None:
    """The first compliance keyword among ``text``'s words, if any."""
    return next((_COMPLIANCE[run] for run in _windows(text) if run in _COMPLIANCE), None)


def _mentions_opt_out(text: Words) -> bool:
    return any(run in _OPT_OUT for run in _windows(text))


@dataclass(frozen=True, slots=True)
class Keyword:
    """One configured keyword on one brand number."""

    words: Words
    number: str
    skill: str
    campaign: str
    reply: str
    match: Match = "exact"
    reply_class: MessageClass = "conversational"

    @property
    def label(self) -> str:
        """The keyword as reports show it: ``FREE PIZZA``."""
        return " ".join(self.words).upper()

    def matches(self, text: Words) -> bool:
        return text == self.words or (self.match == "first_word" and text[:len(self.words)] == self.words)

    def routing(self) -> Routing:
        """A new conversation for the campaign's skill, marked with campaign and keyword, and the auto-reply."""
        return Routing(handled_by=NAME, skill=self.skill, entry_point=NAME, new_conversation=True,
                       context={"campaign": self.campaign, "keyword": self.label}, replies=(self.reply,),
                       reply_class=self.reply_class)


class Matcher:
    """The keywords of every brand number, longest first so that ``FREE PIZZA`` wins over ``FREE``."""

    def __init__(self, keywords: Iterable[Keyword] = ()) -> None:
        self.keywords = tuple(keywords)
        self._by_number: dict[str, list[Keyword]] = {}
        for keyword in sorted(self.keywords, key=lambda k: -len(k.words)):
            self._by_number.setdefault(keyword.number, []).append(keyword)

    def match(self, number: str, text: str) -> Keyword | None:
        """The keyword ``text`` sent to ``number`` is, or ``None``."""
        candidates = self._by_number.get(number)
        if not candidates:
            return None
        said = words(text)
        if not said or compliance_keyword(said) or _mentions_opt_out(said):
            return None
        return next((k for k in candidates if k.matches(said)), None)
