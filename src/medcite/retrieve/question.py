"""Question understanding: what a clinician's question asks, and the case it describes.

Clinicians type case vignettes ("66M, 45 min of right arm weakness now resolved, BP 152/88 ... Admit?"),
shorthand and fragments. ``parse_question`` separates what is asked (the intent, the form the answer should
take, the words to search for) from the case's findings: the patient's age and sex, and measurements
(``NumericFact``: a value with its unit and the words naming it, "HR 115", "eGFR 40", "HEART score 3"). Findings
steer which branch of a guideline applies (``numeric_conditions`` reads the thresholds and ranges a passage
states, ``fits`` tests a finding against one) instead of being words every passage must contain. Patterns here
are product language (how numbers, units and question forms are written), not clinical content. Imports
``models`` and ``intent`` only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

from medcite.intent import classify_intent
from medcite.models import Intent
from medcite.quote import is_table_rule, table_cells

__all__ = [
    "AnswerForm",
    "NumericCondition",
    "NumericFact",
    "QuestionFrame",
    "finding_spans",
    "fits",
    "numeric_conditions",
    "defined_term",
    "parse_question",
]

AnswerForm = Literal[
    "dose", "duration", "time", "threshold", "options", "yes_no", "actions", "definition", "explain"
]  # fmt: skip
"""The form an answer's bottom line should take: a dose (amount, route, frequency), a duration, a time or time
window, a threshold or target (a number), the recommended options (which drug, what regimen), a yes/no
recommendation with its condition, the actions to take (management steps), what a term means ('What is septic
shock?', ``defined_term``), or an explanation."""

_NUMBER = r"(?:\d+(?:[.,]\d+)?)"
_UNITS = (
    r"%|kg|g/dl|mg/dl|mmol/l|mmol/mol|mg|mcg|µg|units?|iu|mmhg|mm hg|bpm|/min|breaths?/min|ml/kg/h|ml/kg/hr"
    r"|ml/min(?:/1\.73\s?m2|/1\.73m²)?|ml|l/min|ppb|cells/(?:µl|mcl|ul)|mmol|meq/l|meq|ng/ml|pg/ml|g|"
    r"hours?|hrs?|h|minutes?|mins?|days?|weeks?|wks?|months?|years?|yrs?|°c|c"
)
_UNIT_ALIASES = {
    "hour": "h", "hours": "h", "hr": "h", "hrs": "h", "minute": "min", "minutes": "min", "mins": "min",
    "day": "d", "days": "d", "week": "wk", "weeks": "wk", "wks": "wk", "month": "mo", "months": "mo",
    "year": "y", "years": "y", "yrs": "y", "yr": "y", "unit": "units", "mm hg": "mmhg", "/min": "bpm",
    "breaths/min": "bpm", "breath/min": "bpm", "ml/kg/hr": "ml/kg/h", "µg": "mcg",
}  # fmt: skip
_QUESTION_WORD = re.compile(r"\b(what|which|when|how|why|who|whom|where)\b", re.I)
_TIME_UNITS = frozenset({"h", "min", "d", "wk", "mo", "y"})
_AGE_SEX = re.compile(
    r"(?<![\d.])(?:(?P<age>\d{1,3}(?:\.\d+)?)\s?(?:-?\s?(?P<span>year|yr|month|mo|week|wk|day)s?[- ]old"
    r"|\s?yo\b|\s?y/o\b|\s?y\.o\.)|\b(?P<age2>\d{1,3})\s?(?P<sex>[MF])\b)",
    re.I,
)
_AGE_SPAN_YEARS = {"year": 1.0, "yr": 1.0, "month": 1 / 12, "mo": 1 / 12, "week": 7 / 365.25, "wk": 7 / 365.25,
                   "day": 1 / 365.25}  # fmt: skip
_SEX_WORD = re.compile(r"\b(man|woman|male|female|boy|girl|gentleman|lady|mother|father|mom|dad|mum)\b", re.I)
_FEMALE = {"woman", "female", "girl", "lady", "mother", "mom", "mum"}
_VALUE = re.compile(
    rf"(?<![\w.])(?P<cmp>[<>≤≥]=?|=)?\s*(?P<value>{_NUMBER})(?:\s*/\s*(?P<second>{_NUMBER}))?"
    rf"(?:\s*(?P<unit>{_UNITS})(?![a-z]))?",
    re.I,
)
_NAME_WORD = re.compile(r"[A-Za-z][A-Za-z0-9\-]*")
_NAME_STOP = frozenset(
    "a an the of at to is was were are be been on in for with and or from by up down now about around than "
    "had has have gone went got his her their my our its day days hour hours h after before since last".split()
)

# Question forms, checked in order; the first match wins (product language, not clinical content).
_FORMS: tuple[tuple[AnswerForm, re.Pattern[str]], ...] = (
    ("dose", re.compile(r"\bdos(e|es|ing|age)\b|how much|\bregimen\b|\btitrat|\bhow many (mg|units|tablets)", re.I)),
    ("duration", re.compile(r"how long\b|\bduration\b|how many (days|weeks|months)|\bminimum wait|\bhold\b", re.I)),
    ("time", re.compile(r"^\W*when\b|\bwhen (to|should|do|can|is|are|does|will)\b|how (soon|fast|quickly)"
                        r"|\btiming\b|within how", re.I)),
    ("threshold", re.compile(r"\btarget\b|\bgoal\b|\bthreshold|\bcut-?off|\bbelow what|\babove what|\bcriteria\b"
                             r"|\bstage\b|\bwhat (score|level|value|number)|\blowest\b|\bhighest\b|\blimit\b", re.I)),
    ("options", re.compile(r"\bwhich\b|\bwhat (drug|medication|antibiotic|regimen|agent|inhaler|pressor|treatment"
                           r"|therapy|options?)|\bwhat (is|are) the (\w+[- ])?(treatment|therapy|management|regimen"
                           r"|drugs?|medications?|antibiotics?)|first[- ]line|\boptions?\b|\bnext (drug|step|agent)"
                           r"|\binitial\b|\bor\b", re.I)),
    ("actions", re.compile(r"\bhow (is|are|should|do) [\w\s,-]{0,60}(treated|managed|handled)\b|\bhow (do|should|to)\b"
                           r"|\bmanage|\bnext steps?\b|\bwhat (now|next|should)\b|\bwhat goes\b|\bapproach\b"
                           r"|\bwork-?up\b", re.I)),
    ("yes_no", re.compile(r"^\W*(should|can|could|do|does|is|are|must|would|will|may)\b", re.I)),
)  # fmt: skip


_DEFINITION = re.compile(
    r"^\W*(?:what(?:\s+is|\s+are|['’]s)\s+(?:an?\s+|the\s+)?(?P<what>[^?]{1,60}?)|define\s+(?P<define>[^?]{1,60}?)"
    r"|what\s+does\s+(?P<mean>[^?]{1,60}?)\s+mean)\s*[?.!]*\s*$",
    re.I,
)
_DEFINITION_MAX_WORDS = 4
_NOT_A_TERM = frozenset(
    "for of in on with without to after before during when if and or vs versus between my your his her their our "
    "best first usual normal right safest difference cause causes risk chance treatment therapy dose it this that "
    "there".split()
)  # question language, not clinical content: 'what is the best ...', 'what is the difference between ...'


def defined_term(text: str) -> str | None:
    """The term a definition question asks about ('What is septic shock?' -> 'septic shock'), else None.

    The question must be only 'what is/are [a|the] <term>', 'define <term>' or 'what does <term> mean', the term
    at most four words and none of them a preposition, conjunction or aspect word ('what is the treatment for
    gout' asks for a treatment, not a meaning).
    """
    match = _DEFINITION.match(text.strip())
    if match is None:
        return None
    term = next(group for group in match.groups() if group)
    words = term.split()
    if not words or len(words) > _DEFINITION_MAX_WORDS or any(w.lower() in _NOT_A_TERM for w in words):
        return None
    return " ".join(words)


@dataclass(frozen=True)
class NumericFact:
    """A measurement the question reports: value, unit and the words naming it ('eGFR 40', 'HEART score 3')."""

    name: str
    value: float
    unit: str | None = None
    second: float | None = None
    """The second number of a pair such as a blood pressure '152/88' (else None)."""


@dataclass(frozen=True)
class NumericCondition:
    """A threshold or range a text states: the values it admits (inclusive bounds) and the words naming it."""

    name: str
    low: float | None
    high: float | None
    unit: str | None = None
    low_inclusive: bool = True
    high_inclusive: bool = True


@dataclass(frozen=True)
class QuestionFrame:
    """What a question asks and the case it describes.

    ``focus`` is the question with the case's age/sex tokens and measured values removed (the words to search
    and cover); ``findings`` are the words naming measured values ("HR", "Hb"), which describe the case rather
    than what is asked; ``facts`` the measured values; ``age_years`` and ``sex`` the patient's, when stated.
    """

    text: str
    focus: str
    intent: Intent
    form: AnswerForm
    facts: tuple[NumericFact, ...] = ()
    findings: frozenset[str] = field(default_factory=frozenset)
    age_years: float | None = None
    sex: Literal["female", "male"] | None = None
    is_vignette: bool = False
    labels: tuple[tuple[str, str], ...] = ()
    """Named strata the question is in: ('group', 'b') for 'GOLD group B', ('class', '3') for 'NYHA class III'."""
    term: str = ""
    """The term a definition question (form 'definition') asks about: 'septic shock' (``defined_term``)."""


_LABEL = r"(?:[A-Z]|\d{1,2}[a-z]?|[IVX]{1,4}[ab]?)"
_STRATUM = re.compile(
    rf"\b(?P<word>group|class|stage|grade|type|track|step|category|tier|zone|phase)\s+(?P<first>{_LABEL})"
    rf"(?:\s*(?:-|–|to|or|/)\s*(?P<last>{_LABEL}))?(?![\w-])",
    re.I,
)
"""How guidelines and clinicians name strata (product language): a stratum word and its label."""
_ROMAN = {"i": 1, "ii": 2, "iii": 3, "iv": 4, "v": 5, "vi": 6}


def _label(raw: str) -> str:
    raw = raw.lower()
    stripped = raw.rstrip("ab") if raw.rstrip("ab") in _ROMAN else raw
    return str(_ROMAN[stripped]) + raw[len(stripped) :] if stripped in _ROMAN else raw


def stratum_labels(text: str) -> list[tuple[str, str]]:
    """The named strata a text states, outside parentheses (where guidelines put a recommendation's class).

    'GOLD group B' -> [('group', 'b')]; 'NYHA class III-IV' -> [('class', '3'), ('class', '4')]; roman numerals
    read as numbers; a numeric range counts every label in it. '(Class I, LOE A)' is not read.
    """
    labels: list[tuple[str, str]] = []
    for match in _STRATUM.finditer(re.sub(r"\([^()]*\)", " ", text)):
        word = match.group("word").lower()
        first = _label(match.group("first"))
        last = _label(match.group("last")) if match.group("last") else first
        if first.isdigit() and last.isdigit() and int(first) < int(last) <= int(first) + 6:
            labels += [(word, str(n)) for n in range(int(first), int(last) + 1)]
        else:
            labels += [(word, first), (word, last)] if last != first else [(word, first)]
    return list(dict.fromkeys(labels))


def _unit(raw: str | None) -> str | None:
    if not raw:
        return None
    unit = " ".join(raw.lower().split())
    return _UNIT_ALIASES.get(unit, unit)


def _float(raw: str) -> float:
    return float(raw.replace(",", "."))


def _name_before(text: str, start: int, *, max_words: int = 3) -> str:
    """Up to ``max_words`` naming words just before a value (stopping at punctuation), lower-cased."""
    window = text[max(0, start - 60) : start]
    window = re.sub(r"\(([^()]{1,20})\)(\s*(?:between\s*)?)$", r" \1\2", window)  # 'pressure (SBP) between'
    window = re.sub(r"\(\s*(?:[<>≤≥]=?)?\s*$", " ", window)  # 'adult patients (≥ 16 years)': named by what precedes
    window = re.split(r"[,;:()\[\]?!]|\.\s|—|–\s|\s-\s", window)[-1]
    words = [w for w in _NAME_WORD.findall(window) if w.lower() not in _NAME_STOP]
    return " ".join(words[-max_words:]).lower()


def finding_spans(text: str) -> list[tuple[int, int]]:
    """Character spans of a vignette's age/sex tokens and measured values ('55M', 'HR 115', 'BP 95/60')."""
    spans = [(m.start(), m.end()) for m in _AGE_SEX.finditer(text)]
    for match in _VALUE.finditer(text):
        if any(start <= match.start() < end for start, end in spans):
            continue
        spans.append((match.start("value"), match.end()))
    return sorted(spans)


def parse_question(question: str) -> QuestionFrame:
    """Read what a question asks and the case it describes.

    Args:
        question: The question as typed (identifiers already scrubbed).

    Returns:
        The ``QuestionFrame``: intent (``intent.classify_intent``), answer form, focus text, numeric facts,
        finding words, age and sex.
    """
    text = " ".join(question.split())
    age: float | None = None
    sex: Literal["female", "male"] | None = None
    # The patient is introduced first ('a 34-year-old mother of a 2-year-old'), and an age written out wins over
    # a number-and-letter token ('a 75-year-old woman with a 16F catheter').
    written = [m for m in _AGE_SEX.finditer(text) if m.group("age")]
    for match in written[:1] or [m for m in _AGE_SEX.finditer(text)][:1]:
        if match.group("age"):
            span = (match.group("span") or "year").lower()
            age = _float(match.group("age")) * _AGE_SPAN_YEARS[span]
        else:
            age = _float(match.group("age2"))
        if match.group("sex"):
            sex = "female" if match.group("sex").upper() == "F" else "male"
    if sex is None and age is not None:
        word = _SEX_WORD.search(text)
        if word:
            sex = "female" if word.group(1).lower() in _FEMALE else "male"
    facts: list[NumericFact] = []
    findings: set[str] = set()
    removed: list[tuple[int, int]] = [(m.start(), m.end()) for m in _AGE_SEX.finditer(text)]
    for match in _VALUE.finditer(text):
        if any(start <= match.start() < end for start, end in removed):
            continue
        value, unit = _float(match.group("value")), _unit(match.group("unit"))
        start = match.start()
        # A minus after a space is a sign ('T-score -2.0'); after a letter it joins a term ('CURB-65').
        negative = start >= 1 and text[start - 1] == "-" and (start < 2 or text[start - 2] in " (=<>≤≥")
        if negative:
            value, start = -value, start - 1
        name = _name_before(text, start)
        hyphenated = text[match.end() : match.end() + 1] == "-" or (text[max(0, start - 1)] == "-" and not negative)
        if hyphenated and unit is None:  # '10-yr', 'CURB-65', 'COVID-19': part of a term, not a value
            continue
        second = _float(match.group("second")) if match.group("second") else None
        facts.append(NumericFact(name=name, value=value, unit=unit, second=second))
        is_time = unit in _TIME_UNITS
        if name and not is_time and (unit is not None or match.group("cmp") or second or _is_measure_name(name)):
            findings.update(name.split()[-1:])
        removed.append((start if negative else match.start("value"), match.end()))
    focus = text
    for start, end in sorted(removed, reverse=True):
        focus = focus[:start] + " " + focus[end:]
    focus = " ".join(focus.split())
    form = next((form for form, cue in _FORMS if cue.search(text)), None)
    term = (defined_term(text) or "") if form is None else ""
    if term:
        form = "definition"
    if form is None:  # a fragment with no question word ("vitamin E for NASH in T2D?") asks whether to do it
        form = "explain" if _QUESTION_WORD.search(text) else "yes_no"
    return QuestionFrame(
        text=text,
        focus=focus or text,
        intent=classify_intent(text),
        form=form,
        facts=tuple(facts),
        findings=frozenset(findings),
        age_years=age,
        sex=sex,
        is_vignette=age is not None or sex is not None or len(facts) >= 2,
        labels=tuple(stratum_labels(text)),
        term=term,
    )


def _is_measure_name(name: str) -> bool:
    """A short all-capitals or mixed-case label ('HR', 'Hb', 'eGFR', 'SBP') names a measurement."""
    last = name.split()[-1] if name else ""
    return 1 < len(last) <= 6 and any(c.isupper() for c in last[1:] + last[:1]) if last else False


_CONDITION = re.compile(
    rf"\bbetween\s+(?P<blneg>-)?(?P<blow>{_NUMBER})\s*(?P<blunit>{_UNITS})?\s+and\s+(?P<bhneg>-)?(?P<bhigh>{_NUMBER})"
    rf"|(?P<low>{_NUMBER})\s*(?P<lunit>{_UNITS})?\s*(?:-|–|—|to)\s*(?:[<>≤≥]=?\s*)?(?P<high>{_NUMBER})"
    rf"|(?P<cmp>[<>≤≥]=?|=)\s*(?P<neg>-)?(?P<value>{_NUMBER})"
    rf"|\b(?P<word>at least|more than|greater than|less than|under|over|below|above|older than|younger than)\s+"
    rf"(?:age\s+)?(?P<wvalue>{_NUMBER})",
    re.I,
)
_UNIT_AFTER = re.compile(rf"\s*(?P<unit>{_UNITS})(?![a-z])", re.I)
_WORD_CMP = {
    "at least": ">=", "more than": ">", "greater than": ">", "over": ">", "above": ">", "older than": ">",
    "less than": "<", "under": "<", "below": "<", "younger than": "<",
}  # fmt: skip


def numeric_conditions(text: str) -> list[NumericCondition]:
    """Thresholds and ranges a text states ('≥ 7', '< 10%', '13-19', '7.5% to < 20.0%', 'older than 65').

    Ranges written in words count too ('between 150 and 220 mmHg').

    Returns:
        One ``NumericCondition`` per threshold or range, in text order; the name is up to three words before it.
        A range whose numbers are joined by a hyphen inside a term ('COVID-19') is not read.
    """
    conditions: list[NumericCondition] = []
    cleaned = text.replace("**", "").replace("≥", ">=").replace("≤", "<=").replace("--", "-")
    if "|" in cleaned:
        cleaned = _tables_as_text(cleaned)
    for match in _CONDITION.finditer(cleaned):
        after = _UNIT_AFTER.match(cleaned, match.end())
        unit = _unit(after.group("unit")) if after else None
        name = _name_before(cleaned, match.start())
        if match.group("blow") is not None:  # 'between 150 and 220 mmHg', 'between -1.0 and -2.5'
            low = -_float(match.group("blow")) if match.group("blneg") else _float(match.group("blow"))
            high = -_float(match.group("bhigh")) if match.group("bhneg") else _float(match.group("bhigh"))
            low, high = min(low, high), max(low, high)
            unit = unit or _unit(match.group("blunit"))
            conditions.append(NumericCondition(name=name, low=low, high=high, unit=unit))
        elif match.group("low") is not None:
            before = cleaned[max(0, match.start() - 1) : match.start()]
            if before.isalpha():  # 'CURB-65', 'G1-G5'
                continue
            low, high = _float(match.group("low")), _float(match.group("high"))
            unit = unit or _unit(match.group("lunit"))
            if low > high:
                continue
            conditions.append(NumericCondition(name=name, low=low, high=high, unit=unit))
        elif match.group("value") is not None:
            value, comparator = _float(match.group("value")), match.group("cmp")
            value = -value if match.group("neg") else value
            conditions.append(_bound(name, comparator, value, unit))
        else:
            comparator = _WORD_CMP[match.group("word").lower()]
            conditions.append(_bound(name, comparator, _float(match.group("wvalue")), unit))
    return conditions


_BARE_NUMBER = re.compile(rf"^\s*{_NUMBER}\s*$")


def _tables_as_text(text: str) -> str:
    """Table rows written as '<column header> <cell>' pairs, so a cell's value is named by its column.

    '| CAC Score | Clinical Action |' over '| 0 | Treatment ... withheld |' reads 'CAC Score = 0; Clinical Action
    Treatment ... withheld'; a range cell ('5-7' under 'Score') reads 'Score 5-7'. A block of lines holding '|'
    is a table whose first line is the header (a row quoted with its header as context is one too).
    """
    lines = text.split("\n")
    out: list[str] = []
    header: list[str] | None = None
    for line in lines:
        if "|" not in line:
            header = None
            out.append(line)
            continue
        if is_table_rule(line):
            continue
        cells = table_cells(line)
        if header is None:
            header = cells
            out.append(line)
            continue
        pairs = []
        for name, cell in zip(header, cells, strict=False):
            pairs.append(f"{name} = {cell}" if _BARE_NUMBER.match(cell) else f"{name} {cell}")
        out.append("; " + "; ".join(pairs))
    return "\n".join(out)


def _bound(name: str, comparator: str, value: float, unit: str | None) -> NumericCondition:
    if comparator in (">", ">="):
        return NumericCondition(name=name, low=value, high=None, unit=unit, low_inclusive=comparator == ">=")
    if comparator in ("<", "<="):
        return NumericCondition(name=name, low=None, high=value, unit=unit, high_inclusive=comparator == "<=")
    return NumericCondition(name=name, low=value, high=value, unit=unit)


def fits(fact: NumericFact, condition: NumericCondition) -> bool | None:
    """Whether a measured value meets a stated condition; None when they measure different things.

    Units must agree (both absent counts as agreeing). A percentage never meets a bare-number condition.
    """
    if (fact.unit or None) != (condition.unit or None):
        return None
    value = fact.value
    if condition.low is not None and (
        value < condition.low or (value == condition.low and not condition.low_inclusive)
    ):
        return False
    if condition.high is not None and (
        value > condition.high or (value == condition.high and not condition.high_inclusive)
    ):
        return False
    return True
