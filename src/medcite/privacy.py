"""Scrub personal identifiers from a typed question before it is stored, logged or published.

Covers the HIPAA Safe Harbor identifier kinds that occur in typed questions (45 CFR 164.514(b)(2)):
names, dates more specific than a year, ages over 89, telephone and fax numbers, e-mail addresses,
medical record, account and other identifying numbers, street addresses and ZIP codes, URLs and IP
addresses. Telephone numbers are found with ``phonenumbers`` (Google's libphonenumber); personal
names with the first- and family-name lists that ship in ``faker`` (no model download) plus cue
words ("my patient", "Mr", "named"); the fixed-format kinds with regular expressions. Medical
eponyms ("Parkinson disease", "Graves' disease") are kept. Imports nothing from medcite, and
nothing here touches the network.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from dataclasses import dataclass, field

import phonenumbers

__all__ = ["REDACTION_KINDS", "ScrubResult", "scrub_question"]

REDACTION_KINDS: dict[str, str] = {
    "name": "[name]",
    "date": "[date]",
    "age": "[age over 89]",
    "phone": "[phone]",
    "email": "[e-mail]",
    "record_number": "[record number]",
    "address": "[address]",
    "url": "[URL]",
    "ip_address": "[IP address]",
}
"""Identifier kind -> the placeholder that replaces it in the scrubbed text."""


@dataclass(frozen=True)
class ScrubResult:
    """A scrubbed question and what was removed from it (kinds only, never the removed text)."""

    text: str
    kinds: list[str] = field(default_factory=list)

    @property
    def is_redacted(self) -> bool:
        """True when at least one identifier was replaced."""
        return bool(self.kinds)

    @property
    def searchable(self) -> str:
        """The scrubbed text with the placeholders left out (what retrieval should read), spaces collapsed."""
        text = self.text
        for placeholder in REDACTION_KINDS.values():
            text = text.replace(placeholder, " ")
        text = re.sub(r"\s+([,;:.?!)])", r"\1", " ".join(text.split()))
        return re.sub(r"^[\s,;:.()-]+", "", text)


_MONTHS = (
    r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|"
    r"sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\.?"
)
_PATTERNS: list[tuple[str, re.Pattern[str]]] = [
    ("email", re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b")),
    ("url", re.compile(r"\b(?:https?://|www\.)[^\s<>\"']+", re.IGNORECASE)),
    (
        "ip_address",
        re.compile(r"\b(?:\d{1,3}\.){3}\d{1,3}\b|\b(?:[0-9a-f]{1,4}:){2,7}[0-9a-f]{1,4}\b", re.IGNORECASE),
    ),
    (
        "record_number",
        re.compile(
            r"\b(?:mrn|medical record(?: number| no\.?)?|record(?: number| no\.?| #)|account(?: number| no\.?| #)?|"
            r"acct\.?|patient id|member id|policy(?: number| no\.?)?|ssn|social security(?: number)?|"
            r"health plan(?: number)?|nhs(?: number| no\.?)?)\s*(?:is|:|#|=)?\s*[A-Z0-9][A-Z0-9-]{3,}\b",
            re.IGNORECASE,
        ),
    ),
    ("record_number", re.compile(r"\b\d{3}-\d{2}-\d{4}\b")),  # US social security number layout
    (
        "date",
        re.compile(
            rf"\b(?:\d{{1,2}}(?:st|nd|rd|th)?\s+(?:of\s+)?{_MONTHS},?\s+\d{{4}}|{_MONTHS}\s+\d{{1,2}}(?:st|nd|rd|th)?"
            rf"(?:,?\s+\d{{4}})?|\d{{1,2}}(?:st|nd|rd|th)?\s+(?:of\s+)?{_MONTHS}"
            r"|\d{4}-\d{1,2}-\d{1,2}|\d{1,2}[/.-]\d{1,2}[/.-]\d{2,4})\b",
            re.IGNORECASE,
        ),
    ),
    (
        "age",
        re.compile(
            r"\b(?:9\d|1[0-4]\d)(?:\s*|-)(?:years?|yrs?|y)(?:[\s-]*old|\b)|\b(?:aged?|age of)\s+(?:9\d|1[0-4]\d)\b"
            r"|\b(?:9\d|1[0-4]\d)(?:\s*|-)?(?:yo|y/o)\b",
            re.IGNORECASE,
        ),
    ),
    (
        "address",
        re.compile(
            r"\b\d{1,6}\s+(?:[A-Z][\w'-]*\s+){1,4}(?:street|st|avenue|ave|road|rd|boulevard|blvd|lane|ln|drive|dr|"
            r"court|ct|place|pl|way|terrace|close|crescent|square|sq|highway|hwy)\b\.?"
            r"(?:,?\s+(?:apt|apartment|unit|suite|#)\s*\w+)?",
            re.IGNORECASE,
        ),
    ),
    ("address", re.compile(r"\b(?:zip(?:\s*code)?|postcode)\s*:?\s*\d{5}(?:-\d{4})?\b", re.IGNORECASE)),
]

# Cue words after which a capitalised word is a person's name whatever it is ("my patient Kowalczyk").
_NAME_CUE = re.compile(
    r"\b(?:(?:mr|mrs|ms|miss|mx|dr|prof)\.?|patient|my (?:patient|client|son|daughter|husband|wife|mother|father|"
    r"friend|partner|brother|sister)|(?:my )?name is|named|called|i am|i'm|this is)\s+"
    r"((?:[A-Z][a-z'’-]+)(?:\s+[A-Z][a-z'’-]+){0,2})"
)
# A capitalised word followed by one of these is an eponym or a place, not a person.
_EPONYM_NEXT = re.compile(
    r"^(?:'s|’s|'|’)?\s*(?:disease|syndrome|sign|palsy|test|criteria|score|scale|classification|procedure|"
    r"operation|reflex|phenomenon|law|lymphoma|sarcoma|tumou?r|fracture|disorder|ulcer|maneuver|manoeuvre|"
    r"rule|staging|type|equation|formula|index|catheter|node|contracture|cyst|hernia|neuroma|anomaly)\b",
    re.IGNORECASE,
)
_CAPITALISED = re.compile(r"\b[A-Z][a-z'’-]+\b")
# Capitalised words the name lists contain that are also ordinary words at the start of a question.
_COMMON_WORDS = frozenset(
    "Will Can May June April August Grant Faith Hope Joy Page Rose Young Long Black White Brown Green Gray Grey "
    "Hill Wood King Price Bell Stone Mark Bill Sue Art Guy Case Best Rich Ward Cook Major Early Love Summer Dawn "
    "Chance Frank Rich Sharp Strong Short Small Little Reed Lane Field Banks Power Chase Cash Hunt Parks Holiday "
    "Christian Major Golden Person Day Street Law Miles Wells Rivers".split()
)


@functools.cache
def _name_lists() -> tuple[frozenset[str], frozenset[str]]:
    from faker.providers.person.en_US import Provider as Person

    first = {*Person.first_names, *Person.first_names_female, *Person.first_names_male}
    last = set(Person.last_names)
    return frozenset(first), frozenset(last)


def _phone_spans(text: str) -> list[tuple[int, int]]:
    matcher = phonenumbers.PhoneNumberMatcher(text, "US", leniency=phonenumbers.Leniency.POSSIBLE)
    spans = []
    for match in matcher:
        digits = re.sub(r"\D", "", match.raw_string)
        if len(digits) >= 7:
            end = match.end
            if match.raw_string.count("(") > match.raw_string.count(")") and text[end : end + 1] == ")":
                end += 1  # "(555-201-7788)": the matcher leaves the closing bracket out
            spans.append((match.start, end))
    return spans


def _is_eponym(text: str, end: int) -> bool:
    return bool(_EPONYM_NEXT.match(text[end:]))


def _name_spans(text: str) -> list[tuple[int, int]]:
    first, last = _name_lists()
    spans: list[tuple[int, int]] = []
    for match in _NAME_CUE.finditer(text):
        if not _is_eponym(text, match.end(1)):
            spans.append(match.span(1))
    words = list(_CAPITALISED.finditer(text))
    for i, word in enumerate(words):
        token = word.group().rstrip("'’")
        if token in _COMMON_WORDS or _is_eponym(text, word.end()):
            continue
        following = words[i + 1] if i + 1 < len(words) else None
        if token in first:
            is_pair = following is not None and text[word.end() : following.start()] == " "
            if is_pair and following is not None and not _is_eponym(text, following.end()):
                spans.append((word.start(), following.end()))  # "John Smith"
            else:
                spans.append(word.span())  # "John"
        elif token in last and _after_name(text, word.start(), first):
            spans.append(word.span())
    return spans


def _after_name(text: str, start: int, first: frozenset[str]) -> bool:
    previous = re.search(r"([A-Z][a-z'’-]+)\s+$", text[:start])
    return previous is not None and previous.group(1) in first


def _merge(spans: list[tuple[int, int, str]]) -> list[tuple[int, int, str]]:
    merged: list[tuple[int, int, str]] = []
    for start, end, kind in sorted(spans, key=lambda span: (span[0], -span[1])):
        if merged and start < merged[-1][1]:
            if end > merged[-1][1]:
                merged[-1] = (merged[-1][0], end, merged[-1][2])
            continue
        merged.append((start, end, kind))
    return merged


def _valid_ip(candidate: str) -> bool:
    try:
        ipaddress.ip_address(candidate)
    except ValueError:
        return False
    return True


def scrub_question(text: str) -> ScrubResult:
    """Replace personal identifiers in a question with placeholders such as ``[name]`` and ``[phone]``.

    Deterministic and offline. Years alone ("in 2019"), ages up to 89 and clinical numbers such as
    doses ("500 mg") and lab values are kept: they are not Safe Harbor identifiers and the question
    needs them.

    Args:
        text: The question as typed (any length).

    Returns:
        The scrubbed text (whitespace as typed) and the sorted, distinct kinds removed (keys of
        ``REDACTION_KINDS``); an empty list when nothing was found.
    """
    spans: list[tuple[int, int, str]] = []
    for kind, pattern in _PATTERNS:
        for match in pattern.finditer(text):
            if kind == "ip_address" and not _valid_ip(match.group()):
                continue
            spans.append((match.start(), match.end(), kind))
    spans += [(start, end, "phone") for start, end in _phone_spans(text)]
    taken = _merge(spans)
    for start, end in _name_spans(text):
        if not any(start < t_end and t_start < end for t_start, t_end, _ in taken):
            spans.append((start, end, "name"))
    pieces: list[str] = []
    position = 0
    kinds: set[str] = set()
    for start, end, kind in _merge(spans):
        pieces += [text[position:start], REDACTION_KINDS[kind]]
        kinds.add(kind)
        position = end
    pieces.append(text[position:])
    return ScrubResult(text="".join(pieces), kinds=sorted(kinds))
