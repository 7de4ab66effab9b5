"""Query normalization: from a clinician's shorthand or a patient's message to search terms.

Three steps, each a pure function: ``query_terms`` drops conversational filler
and keeps content words (numbers, units and hyphenated terms intact);
``Vocabulary`` expands terms with their equivalents, read from vocabularies the
library carries (MedQuAD focus synonyms grouped by UMLS concept, guideline
registry topics) plus a hand-curated list of clinical abbreviations (shorthand
only, in both directions); ``fts_query`` turns terms into a safe FTS5 query.
Imports nothing from medcite but ``store`` (for the vocabulary records).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from medcite.store import Store

__all__ = ["ABBREVIATIONS", "STOPWORDS", "ExpandedQuery", "Vocabulary", "fts_query", "query_terms"]

# A term is a run of letters/digits, optionally joined by inner hyphens, dots, slashes or apostrophes
# ("COVID-19", "6.5", "Crohn's", "IL-6"); everything else separates terms.
_TERM = re.compile(r"\w+(?:[-.'’/:]\w+)*", re.UNICODE)

# English function words and conversational filler: product language, not clinical content. Words that
# carry meaning in a clinical question ("not", "no", "without", "after", "before", "during") are kept.
STOPWORDS = frozenset(
    """a about above actually again alright also am an and any anyone anything are aren't as at be because been
    being but by can can't could couldn't did didn't do does doesn't doing don't dont done each else even ever
    for from get gets getting give given gives giving go going chosen choose choosing got had has hasn't have
    haven't having he her here hers him his how i i'd i'll i'm i've id if im in into is isn't it it's its just
    know let like ll lot many may me might mine more most much must my myself need needs now of off ok okay on
    once one only or other our ours out over own please pls really regarding right said say says she should
    shouldn't so some something sure tell than thank thanks that that's the their theirs them then there there's
    these they they're thing things think this those though thru to too us ve very want wanted wants was wasn't
    way we well were weren't what what's whats when where which while who whom whose why will with would
    wouldn't yeah yes yet you you're your yours yourself yourselves itself himself herself themselves
    ourselves hi hello dear sir madam question questions info
    information wondering wonder and/or
    """.split()
)

ABBREVIATIONS: dict[str, tuple[str, ...]] = {
    # Clinicians' note-writing shorthand for common words (language, not clinical content).
    "abx": ("antibiotics",),
    "tx": ("treatment",),
    "dx": ("diagnosis",),
    "hx": ("history",),
    "sx": ("symptoms",),
    "pt": ("patient",),
    "pts": ("patients",),
    "rx": ("prescription",),
    "bx": ("biopsy",),
    "fx": ("fracture",),
    "meds": ("medications",),
    "yr": ("year",),
    "yrs": ("years",),
    "wk": ("week",),
    "wks": ("weeks",),
    "ACEi": ("ACE inhibitor",),
    "ACS": ("acute coronary syndrome",),
    "AF": ("atrial fibrillation",),
    "afib": ("atrial fibrillation",),
    "AKI": ("acute kidney injury",),
    "ARB": ("angiotensin receptor blocker",),
    "BP": ("blood pressure",),
    "CAD": ("coronary artery disease",),
    "CAP": ("community-acquired pneumonia",),
    "CHF": ("heart failure",),
    "CKD": ("chronic kidney disease",),
    "COPD": ("chronic obstructive pulmonary disease",),
    "CVA": ("stroke",),
    "DKA": ("diabetic ketoacidosis",),
    "DM": ("diabetes mellitus",),
    "DOAC": ("direct oral anticoagulant",),
    "DVT": ("deep vein thrombosis",),
    "GERD": ("gastroesophageal reflux disease",),
    "GI bleed": ("gastrointestinal bleeding",),
    "GIB": ("gastrointestinal bleeding",),
    "HF": ("heart failure",),
    "HFpEF": ("heart failure with preserved ejection fraction",),
    "HFrEF": ("heart failure with reduced ejection fraction",),
    "HHS": ("hyperosmolar hyperglycemic state",),
    "HTN": ("hypertension",),
    "ICH": ("intracerebral hemorrhage",),
    "MDD": ("major depressive disorder",),
    "MI": ("myocardial infarction",),
    "NAFLD": ("nonalcoholic fatty liver disease",),
    "NSAID": ("nonsteroidal anti-inflammatory drug",),
    "NSAIDs": ("nonsteroidal anti-inflammatory drugs",),
    "NSTEMI": ("non-ST-elevation myocardial infarction",),
    "PE": ("pulmonary embolism",),
    "RA": ("rheumatoid arthritis",),
    "SAH": ("subarachnoid hemorrhage",),
    "SGLT2": ("sodium-glucose cotransporter 2",),
    "SSRI": ("selective serotonin reuptake inhibitor",),
    "STEMI": ("ST-elevation myocardial infarction",),
    "T2DM": ("type 2 diabetes",),
    "T2D": ("type 2 diabetes",),
    "T1D": ("type 1 diabetes",),
    "TBI": ("traumatic brain injury",),
    "TIA": ("transient ischemic attack",),
    "tPA": ("alteplase",),
    "UGIB": ("upper gastrointestinal bleeding",),
    "ULT": ("urate-lowering therapy",),
    "UTI": ("urinary tract infection",),
    "VTE": ("venous thromboembolism",),
}
"""Hand-curated clinical shorthand (expanded in both directions); matched case-sensitively when all capitals."""

_MAX_EXPANSIONS = 4
_POSSESSIVE = re.compile(r"['’]s$", re.IGNORECASE)  # "colchicine's" -> "colchicine"; "Crohn's" -> "Crohn"
_MAX_SYNONYM_WORDS = 5
_ALTERNATIVE = re.compile(r"[A-Za-z][A-Za-z-]{2,}")


def query_terms(text: str) -> list[str]:
    """Return the content terms of a query, in order, without filler words or repeats.

    Case is kept (FTS5 folds it); a term is dropped when its lower-cased form
    is a stopword, unless it is written in capitals (an abbreviation such as "IS"
    is rare; "AF" and "MI" must survive). Words joined by slashes as alternatives, each of three letters or
    more ("dose/duration", "ACEi/ARB"), are separate terms; "mg/kg" and "and/or" stay whole.
    """
    terms: list[str] = []
    seen: set[str] = set()
    for match in _TERM.finditer(text):
        whole = _POSSESSIVE.sub("", match.group(0)).strip("'’")
        parts = whole.split("/")
        # Words given as alternatives ('dose/duration', 'ACEi/ARB') are separate terms; a unit ('mg/kg') is one.
        alternatives = len(parts) > 1 and all(_ALTERNATIVE.fullmatch(part) for part in parts)
        for term in parts if alternatives else [whole]:
            folded = term.lower()
            if not term or folded in seen or (folded in STOPWORDS and not (term.isupper() and len(term) > 1)):
                continue
            seen.add(folded)
            terms.append(term)
    return terms


def _phrase(term: str) -> str:
    return '"' + term.replace('"', '""') + '"'


def fts_query(terms: str | Iterable[str]) -> str | None:
    """Build a safe FTS5 MATCH expression: each term quoted (so FTS5 syntax in it is text), OR-joined.

    Quoting makes each term a phrase tokenised by the index's own tokenizer:
    "COVID-19" matches "covid 19", "0.6 mg" matches "0 6 mg", and bare AND, OR,
    NOT, NEAR, ``*``, ``:`` or parentheses are searched as text. An OR of terms
    ranks passages by BM25 instead of requiring every word.

    Args:
        terms: Terms (each becomes one phrase), or free text to split into terms.

    Returns:
        For example ``'"COVID-19" OR "vaccine"'``; None when there are no terms.
    """
    if isinstance(terms, str):
        terms = [match.group(0) for match in _TERM.finditer(terms)]
    phrases = [_phrase(term) for term in dict.fromkeys(terms) if term.strip() and _TERM.search(term)]
    return " OR ".join(phrases) if phrases else None


@dataclass(frozen=True)
class ExpandedQuery:
    """A normalised query: its own terms and the equivalents added from vocabularies."""

    text: str
    terms: list[str]
    expansions: list[str] = field(default_factory=list)

    def all_terms(self) -> list[str]:
        """Return the query's terms followed by the expansions."""
        return [*self.terms, *self.expansions]


def _unhyphenated(term: str) -> str | None:
    """A one-word term with its hyphens between letters dropped ('t-PA' -> 'tPA'), or None when it has none.

    Names are written with and without such hyphens ('t-PA'/'tPA', 'co-trimoxazole'/'cotrimoxazole'); the folded
    form lets a question's spelling find a set that holds the other. Only letters on both sides, so that
    'COVID-19' and 'CHA2DS2-VASc' keep their form.
    """
    if " " in term or "-" not in term:
        return None
    folded = re.sub(r"(?<=[A-Za-z])-(?=[A-Za-z])", "", term)
    return folded if folded != term and len(folded) >= 3 else None


class Vocabulary:
    """Equivalent terms (synonym sets) used to expand queries.

    Sets come from the library's vocabulary table (each MedQuAD page's focus
    and synonyms, including pages whose answers were removed; brand names
    written as "generic (Brand)" in consumer answers, brand -> generic only) and from
    ``ABBREVIATIONS`` (clinical shorthand, both ways). A term's equivalents are
    the other members of every set that contains it; sets are not chained, so
    one loosely related page cannot pull in a whole neighbourhood of terms.
    """

    def __init__(self, groups: Iterable[Iterable[str]] = ()) -> None:
        self._sets_of: dict[str, list[int]] = {}
        self._sets: list[list[str]] = []
        self._max_words = 1
        self._named: dict[str, set[str]] = {}
        self._members: dict[str, set[str]] = {}  # a drug class's names (lower case) -> member drugs
        self._agents: frozenset[str] | None = None
        for abbreviation, expansions in ABBREVIATIONS.items():
            self.add_group([abbreviation, *expansions], curated=True)
        for group in groups:
            self.add_group(group)

    def add_group(self, terms: Iterable[str], *, directed: bool = False, curated: bool = False) -> None:
        """Add a set of equivalent terms (terms of more than five words or with ' - ' qualifiers are left out).

        With ``directed`` only the first term expands to the others (a brand name to its generic name).
        With ``curated`` (the shorthand list) long spelled-out forms are kept too ("heart failure with
        reduced ejection fraction" for HFrEF).
        """
        clean = list(dict.fromkeys(" ".join(t.split()) for t in terms if t and t.strip()))
        if not curated:
            clean = [t for t in clean if len(t.split()) <= _MAX_SYNONYM_WORDS and " - " not in t]
        if len(clean) < 2:
            return
        index = len(self._sets)
        self._sets.append(clean)
        for term in clean[:1] if directed else clean:
            keys = {self._key(term)}
            folded = _unhyphenated(term)
            if folded:  # 't-PA' is also looked up as 'tPA', 'co-trimoxazole' as 'cotrimoxazole'
                keys.add(self._key(folded))
            for key in keys:
                self._sets_of.setdefault(key, []).append(index)
            self._max_words = max(self._max_words, len(term.split()))

    @staticmethod
    def _key(term: str) -> str:
        # Abbreviations in capitals stay case-sensitive ("PE" is not "pe"); other terms fold case.
        return term if term.isupper() and len(term) <= 6 else term.lower()

    def equivalents(self, term: str) -> list[str]:
        """Return the other terms of the sets containing ``term``: the most widely shared first."""
        sets = self._sets_of.get(self._key(term))
        if sets is None and not term.isupper():
            sets = self._sets_of.get(term.lower())
        if not sets:
            return []
        counts: dict[str, int] = {}
        spelling: dict[str, str] = {}
        own = self._key(term)
        for index in sets:
            for member in self._sets[index]:
                key = self._key(member)
                if key != own and key != term.lower():
                    counts[key] = counts.get(key, 0) + 1
                    spelling.setdefault(key, member)
        ordered = sorted(counts, key=lambda key: (-counts[key], len(key), key))
        return [spelling[key] for key in ordered]

    def expand(self, text: str, *, max_expansions: int = _MAX_EXPANSIONS) -> ExpandedQuery:
        """Normalise a query and add the equivalents of its words and phrases (up to 4 words long).

        Longer phrases win over their parts; at most a few expansions are added,
        the most widely shared first, so a query is not swamped by synonyms.
        """
        terms = query_terms(text)
        words = [m.group(0) for m in _TERM.finditer(text)]
        expansions: list[str] = []
        seen = {t.lower() for t in terms}
        position = 0
        while position < len(words):
            for size in range(min(self._max_words, len(words) - position), 0, -1):
                phrase = " ".join(words[position : position + size])
                found = self.equivalents(phrase)
                if found:
                    for term in found:
                        if term.lower() not in seen:
                            seen.add(term.lower())
                            expansions.append(term)
                    position += size
                    break
            else:
                position += 1
        return ExpandedQuery(text=text, terms=terms, expansions=expansions[:max_expansions])

    def members_of(self, term: str) -> list[str]:
        """Drugs of the class a term names ('antibiotics' -> amoxicillin, ...), sorted; [] for other terms."""
        found = set(self._members.get(term.lower(), ()))
        for equivalent in self.equivalents(term):
            found |= self._members.get(equivalent.lower(), set())
        return sorted(found)

    def names_of(self, kind: str) -> frozenset[str]:
        """Lower-cased terms of the concepts of one kind ('drug', 'mesh', 'abbr': the concept key's prefix)."""
        return frozenset(self._named.get(kind, ()))

    def agent_names(self) -> frozenset[str]:
        """Lower-cased names of single drugs: the 'drug' terms less those that name a class ('antibiotics')."""
        if self._agents is None:
            self._agents = frozenset(name for name in self.names_of("drug") if not self.members_of(name))
        return self._agents

    @classmethod
    def from_store(cls, store: Store) -> Vocabulary:
        """Build the vocabulary from the library's synonym sets (``Store.vocabulary_groups``)."""
        vocabulary = cls()
        class_names: dict[str, list[str]] = {}
        class_members: dict[str, list[str]] = {}
        for concept, terms in store.vocabulary_groups():
            if concept.startswith("class:"):
                class_members[concept.split(":", 1)[1]] = terms
                continue
            if concept.startswith("classname:"):
                class_names[concept.split(":", 1)[1]] = terms
            vocabulary.add_group(terms, directed=concept.startswith("brand:"))
            kind = concept.split(":", 1)[0] if ":" in concept else ""
            if kind in ("drug", "mesh", "abbr"):
                vocabulary._named.setdefault(kind, set()).update(t.lower() for t in terms)
        for name, members in class_members.items():
            for term in class_names.get(name, [name]):
                vocabulary._members.setdefault(term.lower(), set()).update(members)
                if term.lower().endswith("s"):  # 'antibiotics' names the class as 'antibiotic' does
                    vocabulary._members.setdefault(term.lower()[:-1], set()).update(members)
                else:
                    vocabulary._members.setdefault(term.lower() + "s", set()).update(members)
        return vocabulary
