"""Question intent, section cues, red-flag symptoms and recommendation-strength markers for the composer.

Keyword cues only (product vocabulary, not clinical content): which kind of question was asked, which
answer section a quoted statement belongs to, and which questions make a patient answer lead with
emergency advice. Imports only ``models``.
"""

from __future__ import annotations

import re

from medcite.models import Intent

__all__ = [
    "ANAPHORIC",
    "CHOICE",
    "INTENT_CUES",
    "MODERATE",
    "INTENT_HEADINGS",
    "INTENT_SECTIONS",
    "OFF_TOPIC_SECTIONS",
    "POPULATION",
    "PRIMARY_SECTION",
    "RED_FLAG_PHRASES",
    "SECTION_CUES",
    "SECTION_ORDER",
    "STRONG",
    "TIME_CUE",
    "TIME_WINDOW_CUE",
    "TIMING_QUESTION",
    "classify_intent",
    "drop_denied_red_flags",
    "SELF_HARM_PHRASES",
    "has_red_flag",
    "has_self_harm",
]

RED_FLAG_PHRASES: tuple[str, ...] = (
    "chest pain", "chest pressure", "chest tightness", "crushing chest", "stroke", "face drooping",
    "facial droop", "slurred speech", "sudden weakness", "sudden numbness", "worst headache",
    "thunderclap headache", "suicidal", "suicide", "kill myself", "self-harm", "overdose", "anaphylaxis",
    "throat swelling", "swollen throat", "severe allergic", "trouble breathing", "difficulty breathing",
    "can't breathe", "cannot breathe", "shortness of breath", "severe bleeding", "heavy bleeding",
    "vomiting blood", "coughing up blood", "blood in stool", "black stool", "unconscious", "fainted",
    "seizure", "stiff neck", "confusion",
    # Lay ways of saying the same (what patients type): heart attack, stroke, self-harm, anaphylaxis, bleeding.
    "heart attack", "face is drooping", "drooping face", "arm is weak", "arm weakness", "leg is weak",
    "slurred", "can't speak", "cannot speak", "trouble speaking", "end my life", "take my own life", "end it all",
    "want to die", "better off dead", "hurt myself", "harm myself", "throat is swelling", "throat is closing",
    "tongue is swelling", "lips are swelling", "can't swallow", "worst headache of my life", "sudden severe headache",
    "passed out", "passing out", "won't stop bleeding", "bleeding heavily", "blue lips", "choking",
)  # fmt: skip
"""Symptom phrases that make a patient answer lead with emergency advice (matched case-insensitively)."""

# Question cues for intent, checked in this order (the first match wins; 'overview' when none matches).
INTENT_CUES: tuple[tuple[Intent, re.Pattern[str]], ...] = (
    # "Which drugs reduce mortality ...?" asks for treatments, whatever outcome it names.
    (
        "treatment",
        re.compile(
            r"^\W*(which|what)\s+(drugs?|medications?|medicines?|treatments?|therap(y|ies)|agents?|antibiotics?)\b",
            re.I,
        ),
    ),
    ("adverse_effects", re.compile(r"side[- ]effect|adverse|toxicit|harms?\b|risks? of (taking|using)", re.I)),
    ("dosing", re.compile(r"\bdos(e|es|ing|age)\b|how much|\bmg\b|titrat", re.I)),
    ("monitoring", re.compile(r"monitor|follow[- ]?up|how often|reassess", re.I)),
    ("prevention", re.compile(r"prevent|prophyla|reduce (the )?risk|vaccin", re.I)),
    ("prognosis", re.compile(r"prognos|mortality|survival|life expectancy|outcome|recurrence rate", re.I)),
    (
        "diagnosis",
        re.compile(r"diagnos|\btests?\b|testing|work[- ]?up|criteria|evaluat|assess|screen|imaging|confirm", re.I),
    ),
    (
        "treatment",
        re.compile(
            r"treat|therap|manag|first[- ]line|second[- ]line|drug|medication|antibiotic|antimicrobial|regimen"
            r"|prescri|initiat|\bstart|\bgive|\bgiven|\buse\b|indicated|agent|choice|option",
            re.I,
        ),
    ),
)

# Statement cues for sections, checked in this order on the statement, then on its passage heading.
SECTION_CUES: tuple[tuple[str, re.Pattern[str]], ...] = (
    (
        "Pitfalls",
        re.compile(
            r"contraindicat|\bavoid|not recommended|\bnot be (used|given|performed|routinely)|\bdo not\b"
            r"|should not|\bharm\b|class iii|against\b|pitfall",
            re.I,
        ),
    ),
    (
        "Special populations",
        re.compile(
            r"pregnan|breastfe|lactat|child|pediatric|paediatric|infant|neonat|older adult|elderly|aged (≥|>)"
            r"|renal impairment|hepatic impairment|kidney disease|\bckd\b|egfr|cirrho|immunocomprom|special population",
            re.I,
        ),
    ),
    (
        "Dosing",
        re.compile(r"\b\d+(\.\d+)?\s?(mg|mcg|µg|g|units?|mL|mmol|mEq|IU)\b|/kg\b|\bdos(e|es|ing|age)\b|regimen", re.I),
    ),
    ("Treatment failure", re.compile(r"refractory|ineffective|fail|second[- ]line|inadequate response|escalat", re.I)),
    ("Monitoring", re.compile(r"monitor|follow[- ]?up|reassess|re-evaluat|recheck", re.I)),
    ("Adverse effects", re.compile(r"adverse|side effect|toxicit|bleeding risk", re.I)),
    ("Prevention", re.compile(r"prevent|prophyla|vaccin", re.I)),
    ("Prognosis", re.compile(r"prognos|mortality|survival", re.I)),
    (
        "Diagnostic approach",
        re.compile(
            r"diagnos|criteria|\btest|imaging|culture|biomarker|\bscore\b|screen|assessment|evaluat|definition"
            r"|defined as",
            re.I,
        ),
    ),
)

SECTION_ORDER: dict[Intent, tuple[str, ...]] = {
    "treatment": (
        "Diagnostic approach", "Treatment", "Dosing", "Monitoring", "Treatment failure", "Special populations",
        "Pitfalls",
    ),
    "diagnosis": ("Diagnostic approach", "Monitoring", "Treatment", "Special populations", "Pitfalls"),
    "dosing": ("Dosing", "Treatment", "Monitoring", "Treatment failure", "Special populations", "Pitfalls"),
    "monitoring": ("Monitoring", "Treatment", "Dosing", "Treatment failure", "Special populations", "Pitfalls"),
    "prevention": ("Prevention", "Treatment", "Dosing", "Monitoring", "Special populations", "Pitfalls"),
    "prognosis": ("Prognosis", "Diagnostic approach", "Treatment", "Monitoring", "Special populations", "Pitfalls"),
    "adverse_effects": ("Adverse effects", "Pitfalls", "Monitoring", "Dosing", "Special populations", "Treatment"),
    "overview": (
        "Key points", "Diagnostic approach", "Treatment", "Dosing", "Monitoring", "Prevention", "Prognosis",
        "Treatment failure", "Special populations", "Pitfalls", "Adverse effects",
    ),
}  # fmt: skip
PRIMARY_SECTION: dict[Intent, str] = {
    "treatment": "Treatment",
    "diagnosis": "Diagnostic approach",
    "dosing": "Dosing",
    "monitoring": "Monitoring",
    "prevention": "Prevention",
    "prognosis": "Prognosis",
    "adverse_effects": "Adverse effects",
    "overview": "Key points",
}

# Sections whose statements also answer a question of each intent (besides its primary section).
INTENT_SECTIONS: dict[Intent, tuple[str, ...]] = {
    "treatment": ("Treatment", "Dosing", "Treatment failure", "Special populations"),
    "dosing": ("Dosing", "Treatment", "Special populations"),
    "diagnosis": ("Diagnostic approach", "Monitoring"),
    "monitoring": ("Monitoring", "Diagnostic approach", "Adverse effects"),
    "prevention": ("Prevention", "Treatment", "Dosing"),
    "prognosis": ("Prognosis", "Diagnostic approach"),
    "adverse_effects": ("Adverse effects", "Pitfalls", "Monitoring"),
}
# Sections a bottom line should not come from unless the question asks for them.
OFF_TOPIC_SECTIONS = frozenset({"Pitfalls", "Diagnostic approach", "Monitoring", "Prognosis"})
# Passage headings that mark a guideline's own section for a question's intent.
INTENT_HEADINGS: dict[Intent, re.Pattern[str]] = {
    "treatment": re.compile(r"treat|therap|manag|regimen|pharmaco|antibiotic|empiric|first[- ]line|GDMT", re.I),
    "dosing": re.compile(r"dos(e|ing|age)|regimen", re.I),
    "diagnosis": re.compile(r"diagnos|criteria|test|evaluat|assess|work[- ]?up|imaging", re.I),
    "monitoring": re.compile(r"monitor|follow[- ]?up", re.I),
    "prevention": re.compile(r"prevent|prophyla|screen|vaccin", re.I),
}

# Words that name a special population: a statement about one answers a question that names it, not another.
POPULATION = re.compile(
    r"pregnan|postpartum|perinatal|breastfe|lactat|\bchild|adolescen|pediatric|paediatric|\binfant|neonat|newborn"
    r"|older adult|elderly|geriatric|\baged? (?:≥|>=|>)\s?\d|renal impairment|hepatic impairment|kidney disease"
    r"|\bckd\b|dialysis|cirrho|immunocomprom|frail",
    re.I,
)

# "When should alteplase be given ...?" asks for a time or a time window.
TIMING_QUESTION = re.compile(r"^\W*(when\b|how (soon|long|quickly)\b|within how)", re.I)
TIME_CUE = re.compile(r"\b\d+(\.\d+)?\s*(h|hr|hrs|hours?|min|minutes?|days?|weeks?)\b|\bwithin\b", re.I)
TIME_WINDOW_CUE = re.compile(r"\bwindows?\b|\btiming\b|\bonset\b|\btime to\b|\bdoor-to", re.I)

# Recommendation-strength markers as guidelines write them (GRADE, ACC/AHA classes, "first-line").
STRONG = re.compile(
    r"strongly recommend|\bfirst[- ]line\b|\(strong\b|strong recommendation|\bclass i\b(?![iv])|\bclass 1\b"
    r"|\bgrade a\b|\b1a\b|\brecommends\b|\bis recommended\b|\bare recommended\b",
    re.I,
)
MODERATE = re.compile(r"recommend|suggest|conditional|preferred|class iia|\bshould\b|\bindicated\b", re.I)
ANAPHORIC = re.compile(r"^(it|this|these|those|they|such|both|not|however|also|but|and|or)\b", re.I)
CHOICE = re.compile(r"first[- ]line|preferred|drug of choice|treatment of choice", re.I)


def classify_intent(question: str) -> Intent:
    """Return what a question asks for, from keyword cues ('overview' when no cue matches)."""
    for intent, cue in INTENT_CUES:
        if cue.search(question):
            return intent
    return "overview"


# A red-flag phrase preceded (within three words) by one of these is denied, not reported: "I am not
# having chest pain", "no shortness of breath", "denies suicidal thoughts".
_NEGATION_BEFORE = re.compile(
    r"(?:\b(?:no|not|never|without|denies|deny|denied|negative for|free of|absence of|ruled out)|n't)"
    r"(?:\W+\w+){0,3}\W*$",
    re.I,
)


def _red_flag_spans(question: str) -> list[tuple[int, int, bool]]:
    """``(start, end, negated)`` of each red-flag phrase in the question."""
    lowered = question.lower()
    spans = []
    for phrase in RED_FLAG_PHRASES:
        start = lowered.find(phrase)
        while start != -1:
            negated = bool(_NEGATION_BEFORE.search(lowered[max(0, start - 40) : start]))
            spans.append((start, start + len(phrase), negated))
            start = lowered.find(phrase, start + 1)
    return spans


SELF_HARM_PHRASES: tuple[str, ...] = (
    "suicidal", "suicide", "kill myself", "self-harm", "end my life", "take my own life", "end it all", "want to die",
    "better off dead", "hurt myself", "harm myself", "overdose",
)  # fmt: skip
"""Red-flag phrases of self-harm: a patient's question naming one gets the emergency advice and no library
content (abstention), whatever the library holds."""


def has_self_harm(question: str) -> bool:
    """Whether the question reports self-harm or suicidal thoughts (a ``SELF_HARM_PHRASES`` phrase, not denied)."""
    return any(
        not negated and question.lower()[start:end] in SELF_HARM_PHRASES
        for start, end, negated in _red_flag_spans(question)
    )


def has_red_flag(question: str) -> bool:
    """Whether the question reports a red-flag symptom of ``RED_FLAG_PHRASES`` (case-insensitive), not denied."""
    return any(not negated for _, _, negated in _red_flag_spans(question))


def drop_denied_red_flags(question: str) -> str:
    """Return the question without the red-flag phrases it denies ("not having chest pain, just gout" -> gout).

    A denied symptom must not steer retrieval toward its emergency care.
    """
    text = question
    for start, end, negated in sorted(_red_flag_spans(question), reverse=True):
        if negated:
            text = text[:start] + " " + text[end:]
    return " ".join(text.split())
