"""Scrub personal identifiers from a typed question (or a reviewer's text) before it is stored, logged or published.

Covers the HIPAA Safe Harbor identifier kinds that occur in typed text (45 CFR 164.514(b)(2)):
names, dates more specific than a year, ages over 89 (in digits or words), telephone and fax
numbers, e-mail addresses, medical record, account, payment card and other identifying numbers,
street addresses with their town, state, ZIP code or UK postcode, URLs and IPv4/IPv6 addresses.
Telephone numbers are found with ``phonenumbers`` (Google's libphonenumber); card numbers and IBANs
are confirmed with ``stdnum`` (Luhn, ISO 13616 check digits); IP addresses with ``ipaddress``;
personal names with the first- and family-name lists that ship in ``faker`` (no model download):
capitalised first names and first+last pairs, lower-case first+last pairs ("robert johnson"), and
any name after a title or cue word ("Mr. Patel", "my husband robert"); common English words
(faker's lorem list) are never taken for lower-case names. Medical eponyms ("Parkinson disease",
"Graves' disease", "Crohn's") are kept. Control characters, escape sequences, bidi overrides and
zero-width characters are removed first (``clean_text``). Imports nothing from medcite, and
nothing here touches the network.
"""

from __future__ import annotations

import functools
import ipaddress
import re
import unicodedata
from dataclasses import dataclass, field

import phonenumbers
from stdnum import iban, luhn

__all__ = ["REDACTION_KINDS", "ScrubResult", "clean_text", "scrub_question"]

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
# Without a year, "may" is a month only as "May" ("PHQ-9 may have ...").
_MONTHS_WITHOUT_YEAR = _MONTHS.replace("|may|", "|(?-i:May|MAY)|")
# A number range in clinical text ("650-1000 mg", ">500-1000"), which phonenumbers would read as a local number.
_RANGE_CONTEXT = re.compile(
    r"\s*(?:mg|mcg|µg|g|kg|ml|l|kcal|mmol|mol|units?|iu|%|mm|cm|hours?|h|days?|weeks?|months?|years?|min|minutes?|"
    r"times|x|per)\b",
    re.IGNORECASE,
)
# Ages over 89 in words: "ninety", "ninety-five", "a hundred", "one hundred and two" ... "one hundred and forty-nine".
_UNITS = "one|two|three|four|five|six|seven|eight|nine"
_AGE_WORDS = (
    rf"(?:ninety(?:[\s-]+(?:{_UNITS}))?|(?:a|one)[\s-]+hundred(?:(?:\s+and)?[\s-]+(?:ten|eleven|twelve|"
    rf"(?:thir|four|fif|six|seven|eigh|nine)teen|(?:twenty|thirty|forty)(?:[\s-]+(?:{_UNITS}))?|{_UNITS}))?)"
)
_STREET = (
    r"(?i:\b\d{1,6}\s+(?:[A-Z][\w'-]*\s+){1,4}(?:street|st|avenue|ave|road|rd|boulevard|blvd|lane|ln|drive|dr|"
    r"court|ct|place|pl|way|terrace|close|crescent|square|sq|highway|hwy)\b\.?)"
)
_US_STATES = (
    "AL|AK|AZ|AR|CA|CO|CT|DE|DC|FL|GA|HI|ID|IL|IN|IA|KS|KY|LA|ME|MD|MA|MI|MN|MS|MO|MT|NE|NV|NH|NJ|NM|NY|NC|ND|OH|OK|"
    "OR|PA|PR|RI|SC|SD|TN|TX|UT|VT|VA|WA|WV|WI|WY"
)
_ZIP = r"\d{5}(?:-\d{4})?"
# UK postcodes (the Royal Mail format: outward code, space, inward code; letters C I K M O V never end one).
_UK_POSTCODE = r"(?:GIR 0AA|[A-PR-UWYZ][A-HK-Y]?\d[A-Z\d]? \d[ABD-HJLNP-UW-Z]{2})"
_PLACE = r"[A-Z][a-z]+(?:[ -][A-Z][a-z]+){0,2}"
# What may follow a street: a direction ("NW"), a flat number, then a town with a state, ZIP code or postcode.
_ADDRESS_TAIL = (
    r"(?:\s+(?:[NS][EW]?|[EW]|North|South|East|West)\b\.?)?"
    r"(?i:,?\s+(?:apt|apartment|unit|suite|flat|#)\s*\w+)?"
    rf"(?:(?:,?\s+{_PLACE})?,?\s+(?:(?:{_US_STATES})\b\.?(?:\s+{_ZIP}\b)?|{_PLACE}\s+{_ZIP}\b|{_ZIP}\b|"
    rf"{_UK_POSTCODE}\b)|,\s+{_PLACE}(?=[,.;)]|\s*$))?"
)
_PATTERNS: list[tuple[str, re.Pattern[str]]] = [
    ("email", re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b")),
    ("url", re.compile(r"\b(?:https?://|www\.)[^\s<>\"']+", re.IGNORECASE)),
    ("ip_address", re.compile(r"\b(?:\d{1,3}\.){3}\d{1,3}\b")),
    # IPv6 candidates (full, "::"-compressed, IPv4-embedded); ``ipaddress`` decides which are real addresses.
    (
        "ip_address",
        re.compile(r"(?<![\w:.])(?:[0-9a-f]{0,4}:){2,7}(?:(?:\d{1,3}\.){3}\d{1,3}|[0-9a-f]{1,4})?(?![\w:])", re.I),
    ),
    (
        "record_number",
        re.compile(
            r"\b(?:mrn|medical record(?: number| no\.?)?|record(?: number| no\.?| #)|account(?: number| no\.?| #)?|"
            r"acct\.?|patient id|member id|policy(?: number| no\.?)?|ssn|social security(?: number)?|"
            r"health plan(?: number)?|nhs(?: number| no\.?)?)\s*(?:is|:|#|=)?\s*(?=[A-Z-]*\d)[A-Z0-9][A-Z0-9-]{3,}\b",
            re.IGNORECASE,
        ),
    ),
    ("record_number", re.compile(r"\b\d{3}-\d{2}-\d{4}\b")),  # US social security number layout
    # Payment card numbers: 13-19 digits, bare or in groups; kept only when the Luhn check digit holds.
    (
        "card_number",
        re.compile(r"\b(?:\d{13,19}|\d{4}(?:([ -])\d{4}){2,3}(?:[ -]\d{1,4})?|\d{4}([ -])\d{6}\2\d{4,5})\b"),
    ),
    # IBANs (bank account numbers), kept only when the ISO 13616 check digits hold.
    ("iban", re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?\b")),
    (
        "date",
        re.compile(
            rf"\b(?:\d{{1,2}}(?:st|nd|rd|th)?\s+(?:of\s+)?{_MONTHS},?\s+\d{{4}}|{_MONTHS}\s+\d{{1,2}}(?:st|nd|rd|th)?"
            rf",?\s+\d{{4}}|{_MONTHS_WITHOUT_YEAR}\s+\d{{1,2}}(?:st|nd|rd|th)?"
            rf"|\d{{1,2}}(?:st|nd|rd|th)?\s+(?:of\s+)?{_MONTHS_WITHOUT_YEAR})\b"
            # numeric dates, but not decimals and ranges ("95% CI 0.57-0.87", "7.0-7.25")
            r"|(?<![\d.])(?:\d{4}-\d{1,2}-\d{1,2}|\d{1,2}(?P<sep>[/.-])\d{1,2}(?P=sep)\d{2,4})\b(?!\.\d)",
            re.IGNORECASE,
        ),
    ),
    (
        "age",
        re.compile(
            r"(?<![-–])\b(?:9\d|1[0-4]\d)(?:\s*|-)(?:years?|yrs?|y)(?:[\s-]*old|\b)"
            r"|\b(?:aged?|age of)\s+(?:9\d|1[0-4]\d)\b"
            r"|\b(?:9\d|1[0-4]\d)(?:\s*|-)?(?:yo|y/o)\b"
            rf"|\b{_AGE_WORDS}[\s-]+(?:years?|yrs?)[\s-]+old\b|\b(?:aged?|age of)\s+{_AGE_WORDS}\b",
            re.IGNORECASE,
        ),
    ),
    ("address", re.compile(_STREET + _ADDRESS_TAIL)),
    ("address", re.compile(r"\b(?:zip(?:\s*code)?|postcode)\s*:?\s*\d{5}(?:-\d{4})?\b", re.IGNORECASE)),
    ("address", re.compile(rf"\b(?:{_PLACE},?\s+)?(?:{_US_STATES})\s+{_ZIP}\b|\b{_UK_POSTCODE}\b")),
]
# Pattern names that are not kinds of their own: card numbers and IBANs are account numbers.
_KIND_OF = {"card_number": "record_number", "iban": "record_number"}

# ANSI/VT100 escape sequences (CSI "ESC [ ... m", OSC "ESC ] ... BEL", two-character ones): removed whole.
_ESCAPE_SEQUENCE = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)?|[@-Z\\-_])?")

# Cue words after which a person's name follows. Titles and the "my husband" kind also take lower-case
# words from the name lists ("my husband robert johnson", "mr patel"); the others capitalised words only.
_NAME_CUE = re.compile(
    r"\b(?:(?P<title>mr|mrs|ms|miss|mx|dr|prof)\b\.?|(?P<relation>(?:my|our|her|his) (?:patient|client|son|daughter|"
    r"husband|wife|mother|father|friend|partner|brother|sister|boyfriend|girlfriend|grandmother|grandfather|"
    r"grandson|granddaughter|neighbou?r)|named|called|(?:my )?name is)|(?-i:patient)|i am|i'm|this is)\s+",
    re.IGNORECASE,
)
# A word as names are written: letters, inner apostrophes (O'Brien), hyphenated parts (Garcia-Lopez), a possessive.
_WORD = re.compile(r"[^\W\d_](?:[^\W\d_]|['’](?=[^\W\d_]))*(?:-[^\W\d_](?:[^\W\d_]|['’](?=[^\W\d_]))*)*['’]?")
# A capitalised word followed by one of these is an eponym or a place, not a person.
_EPONYM_NEXT = re.compile(
    r"^(?:'s|’s|'|’)?\s*(?:disease|syndrome|sign|palsy|test|criteria|score|scale|classification|procedure|"
    r"operation|reflex|phenomenon|law|lymphoma|sarcoma|tumou?r|fracture|disorder|ulcer|maneuver|manoeuvre|"
    r"rule|staging|type|equation|formula|index|catheter|node|contracture|cyst|hernia|neuroma|anomaly|"
    r"thyroiditis|encephalopathy|o?esophagus|chorea|dementia|an(?:a)?emia|arteritis|neuropathy|ataxia|dystrophy|"
    r"psychosis|triad|crisis|colitis|cells?|bodies|body|et\.? al\b|study|trial|criterion|method|regimen)\b",
    re.IGNORECASE,
)
# Medical eponyms that the name lists also hold: never a name on their own, nor in a lower-case pair.
_EPONYMS = frozenset(
    "parkinson crohn graves hashimoto cushing addison wilson bell down hodgkin alzheimer huntington raynaud "
    "kawasaki marfan turner paget barrett sjogren guillain barre meniere tourette asperger duchenne becker "
    "wernicke korsakoff kaposi whipple reiter still behcet horner conn gilbert stevens johnson osler wegener "
    "fanconi burkitt ewing wilms charcot baker colles bennett murphy lyme kussmaul cheyne stokes virchow babinski "
    "trousseau chvostek romberg tinel phalen apgar wells gleason child pugh killip beck epley heimlich valsalva "
    "foley mallory weiss ellison budd chiari gaucher fabry pompe hunter hurler klinefelter noonan williams "
    "edwards patau lewy pick broca todd holmes adie argyll robertson weber miller fisher lambert eaton brooke "
    "parkland".split()
)
# Capitalised words the name lists contain that are also ordinary words at the start of a question.
_COMMON_WORDS = frozenset(
    "Will Can May June April August Grant Faith Hope Joy Page Rose Young Long Black White Brown Green Gray Grey "
    "Hill Wood King Price Bell Stone Mark Bill Sue Art Guy Case Best Rich Ward Cook Major Early Love Summer Dawn "
    "Chance Frank Rich Sharp Strong Short Small Little Reed Lane Field Banks Power Chase Cash Hunt Parks Holiday "
    "Christian Major Golden Person Day Street Law Miles Wells Rivers".split()
)


def _fold(word: str) -> str:
    """Lower-case ``word`` and drop its accents ("García" -> "garcia") and a possessive ending."""
    word = re.sub(r"['’]s?$", "", word)
    return unicodedata.normalize("NFKD", word).encode("ascii", "ignore").decode().lower()


@functools.cache
def _name_lists() -> tuple[frozenset[str], frozenset[str], frozenset[str], frozenset[str], frozenset[str]]:
    """Return the name lists and the ordinary words, loaded once.

    (US first names as written, US last names as written, folded first names, folded last names,
    folded ordinary words): faker's en_US, en_GB, en_IN, es_ES and es_MX person lists, and its en_US
    lorem words (the most common English words) plus ``_COMMON_WORDS``.
    """
    from importlib import import_module

    from faker.providers.lorem.en_US import Provider as Lorem

    persons = [import_module(f"faker.providers.person.{locale}").Provider for locale in _NAME_LOCALES]
    us = persons[0]
    first = {*us.first_names, *us.first_names_female, *us.first_names_male}
    folded_first: set[str] = set()
    folded_last: set[str] = set()
    for person in persons:
        for attribute in ("first_names", "first_names_female", "first_names_male"):
            folded_first.update(_fold(name) for name in getattr(person, attribute, ()))
        folded_last.update(_fold(name) for name in getattr(person, "last_names", ()))
    ordinary = {word.lower() for word in Lorem.word_list} | {word.lower() for word in _COMMON_WORDS}
    return (
        frozenset(first),
        frozenset(us.last_names),
        frozenset(folded_first),
        frozenset(folded_last),
        frozenset(ordinary),
    )


_NAME_LOCALES = ("en_US", "en_GB", "en_IN", "es_ES", "es_MX")


def clean_text(text: str) -> str:
    """Remove control characters, escape sequences, bidi overrides and zero-width characters; normalise whitespace.

    NUL, BEL and other C0/C1 controls, ANSI escape sequences ("ESC [31m") and every Unicode format
    character (category Cf: U+202E right-to-left override, U+200B zero-width space, U+FEFF, soft
    hyphens) are dropped; tabs and other spaces (U+00A0, U+2003, ...) become one plain space;
    CR LF, CR and U+2028/U+2029 become a newline (line breaks are kept for lists and tables). Runs of
    spaces inside a line become one, spaces at the end of lines go, and the whole text is stripped.
    The text is put in Unicode NFC form first.

    Args:
        text: Any text.

    Returns:
        The cleaned text (possibly empty).
    """
    text = _ESCAPE_SEQUENCE.sub("", unicodedata.normalize("NFC", text))
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    kept: list[str] = []
    for char in text:
        category = unicodedata.category(char)
        if char == "\n" or category in ("Zl", "Zp"):
            kept.append("\n")
        elif category == "Zs" or (category == "Cc" and char.isspace()):
            kept.append(" ")
        elif category not in ("Cc", "Cf", "Cs"):
            kept.append(char)
    text = re.sub(r"(?<=\S) {2,}", " ", "".join(kept))
    return re.sub(r" +\n", "\n", text).strip()


def _phone_spans(text: str) -> list[tuple[int, int]]:
    matcher = phonenumbers.PhoneNumberMatcher(text, "US", leniency=phonenumbers.Leniency.POSSIBLE)
    spans = []
    for match in matcher:
        digits = re.sub(r"\D", "", match.raw_string)
        if any(dash in match.raw_string for dash in ("–", "—", "--")):
            continue  # "650–1000", "130--139/80--89": ranges
        if re.match(r"[\w./]", text[max(0, match.start - 1) : match.start]):
            continue  # inside a longer token: "doi: 10.1182/bloodadvances.2021004734"
        if re.fullmatch(r"\d+\s*-\s*\d+", match.raw_string) and (
            text[max(0, match.start - 1) : match.start] in ("<", ">", "≤", "≥", "~")
            or _RANGE_CONTEXT.match(text, match.end)
        ):
            continue  # ">500-1000", "500-1000 kcal": ranges
        if len(digits) >= 7:
            end = match.end
            if match.raw_string.count("(") > match.raw_string.count(")") and text[end : end + 1] == ")":
                end += 1  # "(555-201-7788)": the matcher leaves the closing bracket out
            spans.append((match.start, end))
    return spans


def _is_eponym(text: str, end: int) -> bool:
    return bool(_EPONYM_NEXT.match(text[end:]))


def _is_capitalised(word: str) -> bool:
    return word[0].isupper() and not (len(word) > 1 and word.replace("-", "").replace("'", "").isupper())


def _listed(word: str, names: frozenset[str]) -> bool:
    """True when the folded word, or one part of a hyphenated word, is in ``names``."""
    folded = _fold(word)
    return folded in names or any(part in names for part in folded.split("-") if part)


def _name_spans(text: str) -> list[tuple[int, int]]:
    first, last, folded_first, folded_last, ordinary = _name_lists()
    words = list(_WORD.finditer(text))
    at = {word.start(): i for i, word in enumerate(words)}

    def adjacent(i: int) -> re.Match[str] | None:
        """The word after words[i] when only one space separates them."""
        if i + 1 < len(words) and text[words[i].end() : words[i + 1].start()] == " ":
            return words[i + 1]
        return None

    def is_lower_name(word: str, *, allow_eponym: bool = False) -> bool:
        folded = _fold(word)
        return (
            folded not in ordinary
            and (allow_eponym or folded not in _EPONYMS)
            and (_listed(word, folded_first) or _listed(word, folded_last))
        )

    spans: list[tuple[int, int]] = []
    for cue in _NAME_CUE.finditer(text):
        title = cue.group("title")
        if title is not None and len(title) > 1 and title.isupper():
            continue  # "MS", "MR", "DR": abbreviations (multiple sclerosis, mitral regurgitation), not titles
        takes_lower = title is not None or cue.group("relation") is not None
        i = at.get(cue.end())
        taken: list[re.Match[str]] = []
        while i is not None and len(taken) < 3:
            candidate = words[i].group()
            if not (_is_capitalised(candidate) or (takes_lower and is_lower_name(candidate, allow_eponym=bool(taken)))):
                break
            taken.append(words[i])
            following = adjacent(i)
            i = at[following.start()] if following is not None else None
        if taken and not _is_eponym(text, taken[-1].end()):
            spans.append((taken[0].start(), taken[-1].end()))
    for i, word in enumerate(words):
        token = re.sub(r"['’]s?$", "", word.group())
        if _is_eponym(text, word.end()) or any(part in _EPONYMS for part in _fold(token).split("-")):
            continue
        following = adjacent(i)
        if _is_capitalised(token) and token not in _COMMON_WORDS and (token in first or token.split("-")[0] in first):
            if following is not None and _is_capitalised(following.group()) and not _is_eponym(text, following.end()):
                spans.append((word.start(), following.end()))  # "John Smith", "Maria Garcia-Lopez"
            else:
                spans.append(word.span())  # "John"
        elif _is_capitalised(token) and token in last and _after_name(text, word.start(), first):
            spans.append(word.span())
        elif (
            following is not None
            and is_lower_name(token)
            and _listed(token, folded_first)
            and is_lower_name(following.group(), allow_eponym=True)
            and _listed(following.group(), folded_last)
            and not _is_eponym(text, following.end())
        ):
            end = following.end()
            third = adjacent(at[following.start()])  # a second family name: "maria garcia lopez"
            if third is not None and is_lower_name(third.group(), allow_eponym=True):
                if _listed(third.group(), folded_last) and not _is_eponym(text, third.end()):
                    end = third.end()
            spans.append((word.start(), end))  # "robert johnson", "ROBERT JOHNSON"
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


def _is_valid(kind: str, candidate: str) -> bool:
    """Check a candidate that only a checksum or a parser can confirm (IP addresses, card numbers, IBANs)."""
    if kind == "ip_address":
        try:
            ipaddress.ip_address(candidate)
        except ValueError:
            return False
        return True
    if kind == "card_number":
        return luhn.is_valid(re.sub(r"\D", "", candidate))
    if kind == "iban":
        return bool(iban.is_valid(candidate))
    return True


def scrub_question(text: str) -> ScrubResult:
    """Replace personal identifiers in a question with placeholders such as ``[name]`` and ``[phone]``.

    Deterministic and offline. The text is first cleaned (``clean_text``: control characters,
    escape sequences, bidi overrides and zero-width characters removed, whitespace normalised, line
    breaks kept). Years alone ("in 2019"), ages up to 89 and clinical numbers such as doses
    ("500 mg") and lab values are kept: they are not Safe Harbor identifiers and the question needs
    them. Also used for text that reviewers write (edited statements, notes, comments).

    Args:
        text: The question as typed (any length).

    Returns:
        The cleaned, scrubbed text and the sorted, distinct kinds removed (keys of
        ``REDACTION_KINDS``); an empty list when nothing was found.
    """
    text = clean_text(text)
    spans: list[tuple[int, int, str]] = []
    for kind, pattern in _PATTERNS:
        for match in pattern.finditer(text):
            if match.end() > match.start() and _is_valid(kind, match.group()):
                spans.append((match.start(), match.end(), _KIND_OF.get(kind, kind)))
            elif kind == "card_number" and re.search(r"[ -]\d{1,4}$", match.group()):
                shorter = re.sub(r"[ -]\d{1,4}$", "", match.group())  # "4111 1111 1111 1111 12 tablets"
                if len(re.sub(r"\D", "", shorter)) >= 13 and luhn.is_valid(re.sub(r"\D", "", shorter)):
                    spans.append((match.start(), match.start() + len(shorter), "record_number"))
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
