"""Ingest adapter for PubMed-format text exports (MEDLINE / ``.nbib``): file -> ``Document`` per PMID.

The format is NLM's "MEDLINE/PubMed data element (field) descriptions"
(https://www.nlm.nih.gov/bsd/mms/medlineelements.html): each line is a tag
left-justified in four columns, ``- ``, and a value; a value wraps onto
continuation lines indented by six spaces; an empty line ends a record. It is
what PubMed's "Save, format: PubMed" writes. This module parses the lines itself
rather than with ``Bio.Medline.parse`` (Biopython 1.88): Biopython does handle
edge case c15 (a whitespace-only continuation line inside an abstract), but it
keeps one list per tag, so the position of a collective author (``CN``) among the
``AU`` authors is lost, it turns a wrapped continuation of any list-valued tag
other than MH/AD (``CN``, ``OT``, ``RIN`` ...) into a separate value (two bogus
authors), and it raises ``KeyError`` on a continuation line before any tag.
Imports ``models`` and ``corpus._io``/``corpus._pubmed`` only; never ``store``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from medcite.corpus import Record
from medcite.corpus._io import decode_text, read_or_skip
from medcite.corpus._pubmed import RETRACTED_PUBLICATION, evidence_type_from_publication_types, notice_type
from medcite.models import Document, Section, SkippedRecord

__all__ = ["read_medline"]

_TAG_LINE = re.compile(r"^([A-Z][A-Z0-9]{1,3}) {0,3}-(?: (.*))?$")
"""A field line: tag (2-4 characters, left-justified in 4 columns), '-', a space and the value."""
_PARAGRAPH = "\x00"
"""Marker for a whitespace-only continuation line (a paragraph break inside a value; edge case c15)."""
_YEAR = re.compile(r"\b(1\d{3}|2\d{3})\b")
_PMID_REF = re.compile(r"PMID:\s*(\d+)")
_ARTICLE_ID = re.compile(r"^(?P<id>.+?)\s*\[(?P<type>[a-z-]+)\]$")
_SEASON = re.compile(r"\b(Spring|Summer|Fall|Autumn|Winter)\b")
_TRANSLATED_TITLE = re.compile(r"^\[(?P<title>.+)\](?P<end>[.?!]?)$", re.DOTALL)
# An abstract label: upper-case words then ': ', at the start or after the end of a sentence.
_LABEL = re.compile(r"(?:^|(?<=\n)|(?<=[.?!)\]] ))(?P<label>[A-Z][A-Z0-9 ,&/()'-]{2,80}?):\s+")
# Comment/correction tags (NLM field descriptions) -> metadata key listing the linked PMIDs;
# the keys are the pubmed-xml adapter's (CommentsCorrections RefType).
_LINK_TAGS = {
    "RIN": "retraction_in",
    "ROF": "retraction_of",
    "EIN": "erratum_in",
    "EFR": "erratum_for",
    "ECI": "expression_of_concern_in",
    "ECF": "expression_of_concern_for",
    "RRI": "retraction_and_replacement_in",
    "RRF": "retraction_and_replacement_of",
}
_METADATA_TAGS = (
    ("VI", "volume"),
    ("IP", "issue"),
    ("PG", "pages"),
    ("TA", "journal_abbreviation"),
    ("BTI", "book_title"),
    ("PB", "publisher"),
    ("CI", "copyright"),
)
_NLM_CATEGORIES = frozenset({"BACKGROUND", "OBJECTIVE", "METHODS", "RESULTS", "CONCLUSIONS"})

Fields = list[tuple[str, str]]


def read_medline(path: Path) -> Iterator[Record]:
    """Read a PubMed-format text export (``.nbib``/``.txt``) and yield one ``Document`` per record.

    Each record becomes ``Document(doc_id='pmid:<PMID>', kind='medline')`` with
    title (TI; a bracketed English translation loses its brackets), journal (JT,
    else TA), year (first 4-digit year of DP) and DP verbatim, authors in source
    order (AU as 'Family Initials', CN collective names verbatim in place), DOI
    (AID or LID ``[doi]``), PMCID, keywords (OT), publication types (PT) and
    the evidence type they imply, language (LA). MeSH terms and metadata keys
    follow the pubmed-xml adapter so both give the same record: descriptors
    with a trailing '*' when major, qualifiers in ``metadata['mesh_qualifiers']``;
    PT 'Retracted Publication' or a RIN field sets ``is_retracted``, and
    comment fields list linked PMIDs (RIN -> ``metadata['retraction_in']``,
    ROF -> ``retraction_of``, EFR -> ``erratum_for`` ...); notices set
    ``metadata['notice']``. A record without abstract gets its title as its
    only section. A structured abstract, whose labels .nbib writes inline
    ('BACKGROUND: ... METHODS: ...'), is split into one section per label
    (``heading_path=[LABEL]``); any other abstract is one untitled section.
    Paragraph breaks inside the abstract are kept as blank lines.

    Never raises on bad input: a record without PMID or title yields a
    ``SkippedRecord`` naming it ('record N' or the PMID); a file that cannot be
    read or decoded, is empty, or is not in MEDLINE format yields the records
    read so far and then one ``SkippedRecord`` with ``record=None``.

    Args:
        path: A MEDLINE-format text file (plain or gzip-compressed).

    Returns:
        An iterator of ``Document`` and ``SkippedRecord`` objects, in file order.
    """
    source = str(path)
    data = read_or_skip(path, empty_advice="export the records from PubMed again")
    if isinstance(data, SkippedRecord):
        yield data
        return
    try:
        text, _encoding = decode_text(data)
    except UnicodeDecodeError as error:
        yield SkippedRecord(
            source=source,
            reason=f"The file's text encoding could not be recognised ({error}); save it as UTF-8 and retry.",
        )
        return
    yield from _read_records(text, source)


def _read_records(text: str, source: str) -> Iterator[Record]:
    """Split the text into records of (tag, value) fields and turn each into a Document or SkippedRecord."""
    fields: Fields = []
    problem: str | None = None
    n_record = 0
    has_seen_tag = False
    for line_number, raw_line in enumerate(text.split("\n"), start=1):
        line = raw_line.rstrip("\r")
        match = _TAG_LINE.match(line)
        if match and match.group(1) == "PMID" and any(tag == "PMID" for tag, _ in fields):
            # A new PMID without an empty line in between: the separator line held stray spaces.
            n_record += 1
            yield _finish(fields, problem, source, n_record)
            fields, problem = [], None
        if match:
            has_seen_tag = True
            fields.append((match.group(1), (match.group(2) or "").strip()))
        elif not line:
            if fields or problem:
                n_record += 1
                yield _finish(fields, problem, source, n_record)
            fields, problem = [], None
        elif line[0] in " \t" and fields:
            tag, value = fields[-1]
            piece = line.strip() or _PARAGRAPH
            fields[-1] = (tag, f"{value} {piece}" if value else piece)
        elif not line.strip():
            continue  # whitespace-only line between records
        elif not has_seen_tag:
            yield SkippedRecord(
                source=source,
                reason=f"The file is not in MEDLINE/PubMed text format: line {line_number} does not start "
                "with a field tag such as 'PMID- '; choose the right source kind for it.",
            )
            return
        elif problem is None:
            problem = f"line {line_number} is neither a 'TAG - value' field nor an indented continuation"
    if fields or problem:
        n_record += 1
        yield _finish(fields, problem, source, n_record)


def _finish(fields: Fields, problem: str | None, source: str, n_record: int) -> Record:
    """Turn one record's fields into a Document, or a SkippedRecord saying what is missing."""
    pmid = _first(fields, "PMID")
    name = f"pmid:{pmid}" if pmid else f"record {n_record}"
    if problem is not None:
        return SkippedRecord(
            source=source, record=name, reason=f"The record is malformed: {problem}; export it from PubMed again."
        )
    if not pmid:
        return SkippedRecord(
            source=source,
            record=name,
            reason="The record has no PMID field, so it cannot be identified; export it from PubMed again.",
        )
    if not pmid.isdigit():
        return SkippedRecord(
            source=source,
            record=name,
            reason=f"The PMID {pmid!r} is not a number; export the record from PubMed again.",
        )
    try:
        return _document(fields, pmid)
    except ValueError as error:  # pydantic's ValidationError is a ValueError
        return SkippedRecord(source=source, record=name, reason=f"The record could not be converted: {error}")


def _document(fields: Fields, pmid: str) -> Document:
    """Build the Document for one record (raises ``ValueError`` when the record has no title)."""
    title_field = _first(fields, "TI") or _first(fields, "BTI") or _first(fields, "TT")
    if not title_field:
        raise ValueError("it has no title (TI, BTI or TT field).")
    metadata: dict[str, object] = {}
    title = _clean(title_field)
    translated = _TRANSLATED_TITLE.match(title)
    if translated and "eng" not in _all(fields, "LA"):
        title = translated.group("title").strip() + translated.group("end")
        metadata["title_translated"] = True
    original_title = _clean(_first(fields, "TT") or "")
    if original_title:
        metadata["original_title"] = original_title

    publication_types = _all(fields, "PT")
    date_display = _first(fields, "DP")
    year_match = _YEAR.search(date_display or "")
    for tag, key in _METADATA_TAGS:
        value = _first(fields, tag)
        if value:
            metadata[key] = _clean(value)
    doi = _first_article_id(fields, "doi")
    pii = _first_article_id(fields, "pii")
    if pii:
        metadata["pii"] = pii
    season = _SEASON.search(date_display or "")
    if season:
        metadata["season"] = season.group(1)

    for tag, key in _LINK_TAGS.items():
        pmids = _referenced_pmids(fields, tag)
        if pmids:
            metadata[key] = pmids
    is_retracted = RETRACTED_PUBLICATION in publication_types or bool(_all(fields, "RIN"))
    notice = notice_type(publication_types)
    if notice:
        metadata["notice"] = notice
    mesh_terms, mesh_qualifiers = _mesh_terms(_all(fields, "MH"))
    if mesh_qualifiers:
        metadata["mesh_qualifiers"] = mesh_qualifiers

    sections = _abstract_sections(_first(fields, "AB"))
    metadata["has_abstract"] = bool(sections)
    if not sections:  # title-only record: keep it searchable (as the pubmed-xml adapter does)
        sections.append(Section(heading_path=[], text=title))
    if original_title and original_title != title:
        sections.append(Section(heading_path=["Original title"], text=original_title))
    pmcid = _first(fields, "PMC")
    return Document(
        doc_id=f"pmid:{pmid}",
        kind="medline",
        external_id=pmid,
        title=title,
        journal=_clean(_first(fields, "JT") or _first(fields, "TA") or "") or None,
        year=int(year_match.group(1)) if year_match else None,
        date_display=_clean(date_display) if date_display else None,
        authors=_authors(fields),
        evidence_type=evidence_type_from_publication_types(publication_types),
        publication_types=publication_types,
        mesh_terms=mesh_terms,
        keywords=_all(fields, "OT"),
        doi=doi,
        pmid=pmid,
        pmcid=pmcid.strip() if pmcid else None,
        url=f"https://pubmed.ncbi.nlm.nih.gov/{pmid}/",
        language=_first(fields, "LA"),
        provenance="PubMed record (MEDLINE/PubMed text export)",
        is_retracted=is_retracted,
        metadata=metadata,
        sections=sections,
    )


def _mesh_terms(headings: list[str]) -> tuple[list[str], dict[str, list[str]]]:
    """Return MeSH descriptors as the pubmed-xml adapter writes them, plus their qualifiers.

    MH values look like '*Software' or 'Sequence Alignment/*methods' ('*' marks
    a major topic). A descriptor gets a trailing '*' when it or any of its
    qualifiers is major ('Software*', 'Sequence Alignment*'); qualifiers are
    returned per descriptor ('methods*').
    """
    terms: list[str] = []
    qualifiers: dict[str, list[str]] = {}
    for heading in headings:
        descriptor, *names = [part.strip() for part in heading.split("/")]
        is_major = descriptor.startswith("*") or any(name.startswith("*") for name in names)
        descriptor = descriptor.lstrip("*").strip()
        if not descriptor:
            continue
        terms.append(descriptor + ("*" if is_major else ""))
        if names:
            qualifiers[descriptor] = [name.lstrip("*") + ("*" if name.startswith("*") else "") for name in names]
    return terms, qualifiers


def _first(fields: Fields, tag: str) -> str | None:
    """Return the first value of ``tag`` (paragraph markers kept), or None."""
    return next((value for name, value in fields if name == tag and value), None)


def _all(fields: Fields, tag: str) -> list[str]:
    """Return every non-empty value of ``tag`` in order, whitespace-normalised."""
    return [_clean(value) for name, value in fields if name == tag and _clean(value)]


def _clean(value: str) -> str:
    """Join a field's lines into one line (paragraph markers become spaces)."""
    return " ".join(value.replace(_PARAGRAPH, " ").split())


def _first_article_id(fields: Fields, id_type: str) -> str | None:
    """Return the first AID/LID value tagged ``[id_type]`` (e.g. '10.1186/x [doi]' -> '10.1186/x')."""
    for tag, value in fields:
        if tag in ("LID", "AID"):
            match = _ARTICLE_ID.match(_clean(value))
            if match and match.group("type") == id_type:
                return match.group("id")
    return None


def _referenced_pmids(fields: Fields, tag: str) -> list[str]:
    """Return the PMIDs cited by comment/correction fields (RIN, ROF, EFR ...): '... PMID: 20137807'."""
    return [pmid for value in _all(fields, tag) for pmid in _PMID_REF.findall(value)]


def _authors(fields: Fields) -> list[str]:
    """Return AU and CN values in source order; fall back to FAU ('Family, Given') when there is no AU."""
    authors = [_clean(value) for tag, value in fields if tag in ("AU", "CN") and _clean(value)]
    if any(tag == "AU" for tag, _ in fields):
        return authors
    authors = []
    for tag, value in fields:
        if tag == "CN":
            authors.append(_clean(value))
        elif tag == "FAU":
            family, _, given = _clean(value).partition(",")
            initials = "".join(part[0] for part in re.split(r"[\s.-]+", given) if part)
            authors.append(f"{family.strip()} {initials}".strip())
    return [author for author in authors if author]


def _abstract_sections(abstract: str | None) -> list[Section]:
    """Split an abstract into sections at inline upper-case labels ('METHODS: ...'), else return one section.

    Labels count only when the abstract starts with one or has at least two;
    text before the first label becomes an untitled section. Paragraph breaks
    (whitespace-only continuation lines) become blank lines.
    """
    if not abstract:
        return []
    text = "\n\n".join(" ".join(part.split()) for part in abstract.split(_PARAGRAPH) if part.strip())
    labels = [match for match in _LABEL.finditer(text) if any(ch.isalpha() for ch in match.group("label"))]
    if not labels or (labels[0].start() > 0 and len(labels) < 2):
        return [Section(heading_path=[], text=text)]
    sections: list[Section] = []
    lead = text[: labels[0].start()].strip()
    if lead:
        sections.append(Section(heading_path=[], text=lead))
    for index, match in enumerate(labels):
        end = labels[index + 1].start() if index + 1 < len(labels) else len(text)
        body = text[match.end() : end].strip()
        label = match.group("label").strip()
        if body:
            category = label if label in _NLM_CATEGORIES else None
            sections.append(Section(heading_path=[label], text=body, category=category))
    return sections
