"""Reading a consumer's text as an opt-out, an opt-in or a HELP request.

Every text is normalized first: NFKC, case-folded, accents folded, apostrophes resolved; punctuation (``.,!?;:``,
new lines) splits it into clauses; emoji, symbols and runs of spaces are dropped with the words kept.

Tier 1: the whole text is a keyword ("Stop.", "sToP 🛑", "opt-out", "ARRÊT").

Tier 2 (opt-out only), in plain words, as the FCC's "reasonable means" standard asks:

- a **phrase** anywhere in a clause ("please stop texting me", "I don't know who you are but stop texting me"),
  unless a negation comes a few words before it ("don't stop texting me"); a lead-in at the start of the clause
  is not a negation ("No stop texting me", "Not interested stop texting me");
- a text whose every clause, once filler words are dropped ("please", "thanks", "now"), is made of **commands**
  (the opt-out keywords and short revocations such as "stop it", "quit it", each as often as the consumer likes:
  "stop stop", "STOP STOP STOP") and **lead-ins** ("no", "not interested", "I said", "wrong number"), with at least
  one command: "No STOP", "No, stop", "I said stop", "Not interested, stop", "Who is this? Stop". A word that is
  none of these makes the text something else ("what time does the bus stop", "STOP 12345", "Stop, wait").

A text that merely mentions an opt-out word ("cancel my appointment", "don't stop the service", "can I stop by
tomorrow?") is not an opt-out: it is flagged so that an agent can ask. Every list is per language and can be
extended in configuration.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

Kind = Literal["opt_out", "opt_in", "help"]
KINDS: tuple[Kind, ...] = ("opt_out", "opt_in", "help")

_APOSTROPHES = "'’ʼ‘`´"
_CLAUSE_BREAK = re.compile(r"[.!?;:,\n\r¡¿…]+")
_WORD = re.compile(r"[^\W_]+")
# An apostrophe after one letter (or "qu") is a French elision: "m'écrire" is two words, "don't" is one.
_ELISION = re.compile(rf"\b([^\W\d_]|qu)[{_APOSTROPHES}]")
_OTHER_APOSTROPHE = re.compile(rf"[{_APOSTROPHES}]")
_NOT_ALNUM = re.compile(r"[\W_]+")  # \w is str.isalnum() plus the underscore


def normalize(text: str, *, fold_accents: bool = True) -> str:
    """NFKC, case-folded, accents folded (``ARRÊT`` -> ``arret``), apostrophes resolved."""
    text = unicodedata.normalize("NFKC", text).casefold()
    if fold_accents and not text.isascii():  # ASCII has no accents to fold
        decomposed = unicodedata.normalize("NFKD", text)
        text = unicodedata.normalize("NFC", "".join(c for c in decomposed if not unicodedata.combining(c)))
    if _OTHER_APOSTROPHE.search(text) is None:  # most texts: nothing to resolve, and the substitutions cost
        return text
    return _OTHER_APOSTROPHE.sub("", _ELISION.sub(r"\1 ", text))


def core(normalized: str) -> str:
    """The text without surrounding punctuation, symbols and emoji, with runs of spaces collapsed."""
    start, end = 0, len(normalized)
    while start < end and not normalized[start].isalnum():
        start += 1
    while end > start and not normalized[end - 1].isalnum():
        end -= 1
    return " ".join(normalized[start:end].split())


def compact(text: str) -> str:
    """Letters and digits only: ``stop all``, ``stop-all`` and ``s.t.o.p all`` all become ``stopall``."""
    return _NOT_ALNUM.sub("", text)


def words(text: str) -> tuple[str, ...]:
    return tuple(_WORD.findall(text))


def _find(haystack: Sequence[str], needle: Sequence[str]) -> int:
    n, first, whole = len(needle), needle[0], tuple(needle)
    for i in range(len(haystack) - n + 1):
        if haystack[i] == first and tuple(haystack[i:i + n]) == whole:  # the cheap test first
            return i
    return -1


@dataclass(frozen=True, slots=True)
class Vocabulary:
    """One language's lists, normalized once."""

    language: str
    keywords: dict[Kind, dict[str, str]]  #: kind -> compact form -> the keyword as configured
    phrases: tuple[tuple[tuple[str, ...], str], ...]  #: (words, as configured), longest first
    #: whole-clause revocations besides the keywords ("stop it"), as (words, as configured)
    commands: tuple[tuple[tuple[str, ...], str], ...]
    #: words that may come with a command without changing it ("no", "i said"), as words
    lead_ins: tuple[tuple[str, ...], ...]
    negations: tuple[tuple[str, ...], ...]
    conjunctions: frozenset[str]  #: words that end a negation's reach
    fillers: frozenset[str]
    #: every opt-out keyword as words, to notice a mention ("cancel my appointment")
    opt_out_terms: tuple[tuple[tuple[str, ...], str], ...]
    #: the phrases by their first word, and the phrases and terms (:attr:`mentions`) by theirs, as positions in
    #: those lists: a clause is compared with those starting with one of its words (most texts have none)
    phrase_starts: dict[str, tuple[int, ...]]
    mention_starts: dict[str, tuple[int, ...]]

    @property
    def mentions(self) -> tuple[tuple[tuple[str, ...], str], ...]:
        """The phrases, then the opt-out keywords as words: what a mention of opting out is looked for as."""
        return (*self.phrases, *self.opt_out_terms)

    @classmethod
    def build(cls, language: str, *, opt_out: Iterable[str], opt_in: Iterable[str], help: Iterable[str],
              phrases: Iterable[str], negations: Iterable[str], fillers: Iterable[str],
              conjunctions: Iterable[str] = (), commands: Iterable[str] = (), lead_ins: Iterable[str] = (),
              fold_accents: bool = True) -> Vocabulary:
        def norm(s: str) -> str:
            return core(normalize(s, fold_accents=fold_accents))

        lists: dict[Kind, Iterable[str]] = {"opt_out": opt_out, "opt_in": opt_in, "help": help}
        keywords: dict[Kind, dict[str, str]] = {
            kind: {compact(norm(k)): k for k in items if compact(norm(k))} for kind, items in lists.items()
        }
        phrase_words = sorted({(words(norm(p)), p) for p in phrases if words(norm(p))}, key=lambda x: -len(x[0]))
        terms = sorted({(words(norm(k)), k) for k in keywords["opt_out"].values()}, key=lambda x: -len(x[0]))
        return cls(
            language=language, keywords=keywords, phrases=tuple(phrase_words),
            commands=tuple((w, c) for w, c in ((words(norm(c)), c) for c in commands) if w),
            lead_ins=tuple(w for w in (words(norm(lead)) for lead in lead_ins) if w),
            negations=tuple(w for w in (words(norm(n)) for n in negations) if w),
            conjunctions=frozenset(w for c in conjunctions for w in words(norm(c))),
            fillers=frozenset(w for f in fillers for w in words(norm(f))), opt_out_terms=tuple(terms),
            phrase_starts=_starts(phrase_words), mention_starts=_starts([*phrase_words, *terms]),
        )


def _starts(entries: Sequence[tuple[tuple[str, ...], str]]) -> dict[str, tuple[int, ...]]:
    starts: dict[str, list[int]] = {}
    for position, (entry, _) in enumerate(entries):
        starts.setdefault(entry[0], []).append(position)
    return {word: tuple(positions) for word, positions in starts.items()}


def _candidates(clause: Sequence[str], starts: dict[str, tuple[int, ...]]) -> list[int]:
    """The positions, in order, of the entries whose first word is in ``clause``."""
    found = [position for word in set(clause) for position in starts.get(word, ())]
    return sorted(found) if len(found) > 1 else found


@dataclass(frozen=True, slots=True)
class Classification:
    """What a text says, and how sure we are."""

    kind: Kind | None
    tier: int | None = None  #: 1 exact keyword, 2 phrase or keyword with filler words
    language: str | None = None
    matched: str | None = None  #: the keyword or phrase as configured
    flag: str | None = None  #: a note for the agent when a text looks like an opt-out but is not acted on


NOTHING = Classification(None)


class Classifier:
    """Classifies texts against the vocabularies of one brand number, in its language order."""

    def __init__(self, vocabularies: Sequence[Vocabulary], *, phrases: bool = True, negation_window: int = 5,
                 fold_accents: bool = True) -> None:
        self.vocabularies = tuple(vocabularies)
        self.phrases = phrases
        self.negation_window = negation_window
        self.fold_accents = fold_accents
        self._fillers = frozenset().union(*(v.fillers for v in self.vocabularies))
        #: what a clause may be made of, by compact form: a command (language, as configured), or a lead-in (None)
        self._units: dict[str, tuple[str, str] | None] = {}
        for vocabulary in self.vocabularies:
            for key, configured in vocabulary.keywords["opt_out"].items():
                self._units.setdefault(key, (vocabulary.language, configured))
            for command, configured in vocabulary.commands:
                key = "".join(w for w in command if w not in self._fillers)
                if key:
                    self._units.setdefault(key, (vocabulary.language, configured))
        self._lead_ins = sorted({tuple(w for w in lead if w not in self._fillers) for v in self.vocabularies
                                 for lead in v.lead_ins} - {()}, key=len, reverse=True)
        for lead in self._lead_ins:
            self._units.setdefault("".join(lead), None)
        self._longest = max(map(len, self._units), default=0)

    def classify(self, text: str) -> Classification:
        normalized = normalize(text, fold_accents=self.fold_accents)
        key = compact(normalized)  # the same as of its core: compact drops what core trims
        if not key:
            return NOTHING
        for vocabulary in self.vocabularies:
            for kind in KINDS:
                if key in vocabulary.keywords[kind]:
                    return Classification(kind, 1, vocabulary.language, vocabulary.keywords[kind][key])
        clauses = [w for w in (words(c) for c in _CLAUSE_BREAK.split(normalized)) if w]
        if self.phrases:
            found = self._phrase(clauses) or self._commands(clauses)
            if found is not None:
                return found
        return self._mention(clauses)

    def _lead_in_end(self, clause: Sequence[str], vocabulary: Vocabulary) -> int:
        """Where the lead-ins that start a clause end ("no", "i said", with filler words among them); a longer
        negation at the same place wins ("no need to")."""
        kept = [i for i, w in enumerate(clause) if w not in self._fillers]
        rest = tuple(clause[i] for i in kept)
        used = 0
        while True:
            lead = next((lead for lead in self._lead_ins if rest[used:used + len(lead)] == lead), None)
            if lead is None or any(len(n) > len(lead) and rest[used:used + len(n)] == n for n in vocabulary.negations):
                return kept[used - 1] + 1 if used else 0
            used += len(lead)

    def _negated(self, before: Sequence[str], vocabulary: Vocabulary) -> bool:
        """A negation among the last ``negation_window`` words before a match, after the last conjunction and
        after the lead-ins that start the clause ("No stop texting me" is not negated)."""
        before = before[self._lead_in_end(before, vocabulary):]
        window = list(before[-self.negation_window:]) if self.negation_window > 0 else []
        for i in range(len(window) - 1, -1, -1):
            if window[i] in vocabulary.conjunctions:
                window = window[i + 1:]
                break
        return any(_find(window, negation) >= 0 for negation in vocabulary.negations)

    def _phrase(self, clauses: list[tuple[str, ...]]) -> Classification | None:
        for vocabulary in self.vocabularies:
            for clause in clauses:
                for position in _candidates(clause, vocabulary.phrase_starts):
                    phrase, configured = vocabulary.phrases[position]
                    at = _find(clause, phrase)
                    if at >= 0 and not self._negated(clause[:at], vocabulary):
                        return Classification("opt_out", 2, vocabulary.language, configured)
        return None

    def _commands(self, clauses: list[tuple[str, ...]]) -> Classification | None:
        """Every clause is commands and lead-ins (with filler words), or nothing else; one command at least."""
        found: tuple[str, str] | None = None
        for clause in clauses:
            reading = self._read(tuple(w for w in clause if w not in self._fillers))
            if reading is None:
                return None
            found = found or reading or None
        if found is None:
            return None
        return Classification("opt_out", 2, *found)

    def _read(self, clause: Sequence[str]) -> tuple[str, str] | tuple[()] | None:
        """Split a clause into units: the first command as (language, as configured), ``()`` when it holds lead-ins
        alone (or nothing), ``None`` when some words are no unit. A unit may span words ("s t o p", "opt out")."""
        reach: list[tuple[str, str] | tuple[()] | None] = [()] + [None] * len(clause)
        for start in range(len(clause)):
            so_far = reach[start]
            if so_far is None:
                continue
            joined = ""
            for end in range(start, len(clause)):
                joined += clause[end]
                if len(joined) > self._longest:
                    break
                if joined not in self._units:
                    continue
                unit = self._units[joined]
                after = so_far or unit or ()
                if reach[end + 1] is None or (not reach[end + 1] and after):
                    reach[end + 1] = after
        return reach[-1]

    def _mention(self, clauses: list[tuple[str, ...]]) -> Classification:
        """Flag a text that mentions an opt-out word or phrase without being an opt-out."""
        for vocabulary in self.vocabularies:
            mentions = vocabulary.mentions
            for clause in clauses:
                for position in _candidates(clause, vocabulary.mention_starts):
                    term, configured = mentions[position]
                    at = _find(clause, term)
                    if at < 0:
                        continue
                    if self._negated(clause[:at], vocabulary):
                        return Classification(None, language=vocabulary.language, matched=configured, flag=(
                            f"Not treated as an opt-out: '{configured}' appears negated. "
                            "If the consumer wants no more messages, mark them opted out."))
                    return Classification(None, language=vocabulary.language, matched=configured, flag=(
                        f"Possible opt-out, not acted on: the message mentions '{configured}'. "
                        "Ask whether the consumer wants to stop receiving messages."))
        return NOTHING
