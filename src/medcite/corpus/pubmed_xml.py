"""Ingest adapter for PubMed/MEDLINE XML: NLM baseline/update files and E-utilities efetch responses.

Corpus stage: turns ``MedlineCitationSet`` (2016 DTD, bare ``MedlineCitation``
records) and ``PubmedArticleSet`` (``PubmedArticle``, ``PubmedBookArticle``,
``DeleteCitation``) files into ``Document``/``SkippedRecord``/``Deletion``
records, streaming with ``lxml.etree.iterparse`` so a 30,000-record baseline
file never sits in memory. Element names and meanings follow NLM's DTDs
(https://dtd.nlm.nih.gov/ncbi/pubmed/out/pubmed_250101.dtd and
https://www.nlm.nih.gov/bsd/licensee/elements_descriptions.html). Imports only
``models`` and ``corpus`` helpers; never ``store``.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from lxml import etree

from medcite.corpus import Record
from medcite.corpus._io import open_bytes
from medcite.corpus._pubmed import RETRACTED_PUBLICATION, evidence_type_from_publication_types, notice_type
from medcite.models import Deletion, Document, Section, SkippedRecord, SourceKind

__all__ = ["iter_pubmed_xml", "read_pubmed_xml"]

PROVENANCE = "PubMed/MEDLINE record (NLM)"
PUBMED_URL = "https://pubmed.ncbi.nlm.nih.gov/{pmid}/"
NO_TITLE = "[No title available]"
"""What PubMed itself displays for a record without any title."""
PUBLISHER_PLACEHOLDER = "Abstract available from the publisher."
"""NLM's stand-in text for an OtherAbstract it does not carry; dropped."""

_RECORD_TAGS = ("MedlineCitation", "PubmedArticle", "PubmedBookArticle", "DeleteCitation")
_PUBMED_ROOTS = frozenset({"MedlineCitationSet", "PubmedArticleSet", "PubmedBookArticleSet"})
_HEAD_BYTES = 2048

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_YEAR_RE = re.compile(r"(?<!\d)([12]\d{3})(?!\d)")
_PMCID_RE = re.compile(r"^\s*(PMC\d+)")
_DOI_PREFIX_RE = re.compile(r"^(?:doi:\s*|https?://(?:dx\.)?doi\.org/)", re.IGNORECASE)
_END_PUNCTUATION = frozenset(".,;:!?")

# CommentsCorrections RefType (DTD) -> metadata key listing the linked PMIDs.
_LINK_KEYS = {
    "RetractionIn": "retraction_in",
    "RetractionOf": "retraction_of",
    "ErratumIn": "erratum_in",
    "ErratumFor": "erratum_for",
    "ExpressionOfConcernIn": "expression_of_concern_in",
    "ExpressionOfConcernFor": "expression_of_concern_for",
    "RetractionAndReplacementIn": "retraction_and_replacement_in",
    "RetractionAndReplacementOf": "retraction_and_replacement_of",
}

# Root elements of files that are not PubMed XML -> what to tell the user.
_OTHER_ROOTS = {
    "pmc-articleset": "PMC full text (JATS) from an efetch of db=pmc; ingest it with kind 'pmc'",
    "article": "a JATS full-text article; ingest it with kind 'pmc'",
    "eSearchResult": "an E-utilities esearch response (PMIDs only, no abstracts); "
    "fetch the records with efetch (db=pubmed, retmode=xml) and ingest that",
    "eSummaryResult": "an E-utilities esummary response (no abstracts); "
    "fetch the records with efetch (db=pubmed, retmode=xml) and ingest that",
    "eSpellResult": "an E-utilities espell response, which holds no records",
    "eLinkResult": "an E-utilities elink response (links only); fetch the linked PMIDs with efetch",
    "eInfoResult": "an E-utilities einfo response, which holds no records",
    "Document": "a MedQuAD document; ingest it with kind 'medquad'",
}


def read_pubmed_xml(path: Path) -> Iterator[Record]:
    """Read one PubMed/MEDLINE XML file (``.xml`` or ``.xml.gz``) into documents.

    Accepts NLM baseline and update files (``MedlineCitationSet``, 2016 DTD;
    ``PubmedArticleSet``, pubmed_190101.dtd and later) and saved efetch
    responses. See ``iter_pubmed_xml`` for what each record becomes.

    Args:
        path: The file; gzip content is detected by its magic bytes.

    Returns:
        An iterator of ``Document`` (one per citation, in file order),
        ``Deletion`` (one per ``DeleteCitation`` block) and ``SkippedRecord``
        (one per bad record, plus one with ``record=None`` when the file is
        unreadable, empty, truncated, malformed or not PubMed XML; everything
        read before the fault is yielded first). Nothing is raised for bad input.
    """
    source = str(path)
    try:
        stream = open_bytes(path)
    except OSError as exc:
        yield SkippedRecord(source=source, reason=f"The file could not be opened ({exc}); check the path.")
        return
    with stream:
        yield from iter_pubmed_xml(stream, source)


def iter_pubmed_xml(stream: BinaryIO, source: str, *, kind: SourceKind = "pubmed-xml") -> Iterator[Record]:
    """Parse PubMed/MEDLINE XML from any binary stream (a file, an efetch response body).

    Streams with ``lxml.etree.iterparse`` (no DTD loading, no entity
    resolution, no network), clearing each record once converted. Each
    ``MedlineCitation``/``PubmedArticle``/``PubmedBookArticle`` becomes a
    ``Document`` with ``doc_id='pmid:<PMID>'``; one ``Section`` per
    ``AbstractText`` (heading = its ``Label``, category = ``NlmCategory``),
    or a single untitled section holding the title when there is no abstract,
    so the record stays searchable. Retracted papers get ``is_retracted=True``
    and ``metadata['retraction_in']``; notices get ``metadata['notice']`` and
    the PMIDs they concern (``retraction_of``, ``erratum_for``, ...).

    Args:
        stream: Binary XML (already decompressed); read to its end, not closed.
        source: Name used in every yielded ``SkippedRecord``/``Deletion`` (a path or a URL).
        kind: Source kind written on each ``Document`` (``'pubmed'`` for live E-utilities fetches).

    Returns:
        An iterator of ``Document``, ``Deletion`` and ``SkippedRecord`` in file
        order; a fault in the stream ends it with one ``SkippedRecord``
        (``record=None``) naming the line, after everything read before it.
        Nothing is raised for bad input.
    """
    reader = _HeadRecorder(stream)
    events = etree.iterparse(
        reader,
        events=("end",),
        tag=_RECORD_TAGS,
        resolve_entities=False,
        huge_tree=True,
        load_dtd=False,
        no_network=True,
        remove_comments=True,
    )
    n_records = 0
    last_pmid: str | None = None
    try:
        for _event, element in events:
            tag = element.tag
            parent = element.getparent()
            if tag == "MedlineCitation" and parent is not None and parent.tag == "PubmedArticle":
                continue  # handled with its PubmedArticle, which holds PubmedData
            if tag == "DeleteCitation":
                pmids = [text for text in (_text(p) for p in element.iterfind("PMID")) if text]
                if pmids:
                    yield Deletion(source=source, doc_ids=[f"pmid:{pmid}" for pmid in pmids])
            else:
                n_records += 1
                record = _convert_record(element, source, n_records, kind)
                if isinstance(record, Document):
                    last_pmid = record.pmid
                yield record
            _release(element)
    except etree.XMLSyntaxError as exc:
        yield _stream_fault(source, reader.head, n_records, last_pmid, _syntax_problem(exc))
        return
    except (EOFError, OSError, zlib.error) as exc:
        problem = (
            f"the compressed data ends early or is corrupt ({type(exc).__name__}: {exc}), "
            "so re-download the file from NLM"
        )
        yield _stream_fault(source, reader.head, n_records, last_pmid, problem)
        return
    root = events.root
    if root is not None and root.tag not in _PUBMED_ROOTS and n_records == 0:
        yield SkippedRecord(source=source, reason=_wrong_root(root))


class _HeadRecorder:
    """Pass reads through to a stream, keeping its first bytes to describe a file that is not PubMed XML."""

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        self.head = b""

    def read(self, size: int = -1) -> bytes:
        data = self._stream.read(size)
        if len(self.head) < _HEAD_BYTES:
            self.head += data[: _HEAD_BYTES - len(self.head)]
        return data


def _release(element: etree._Element) -> None:
    """Free a converted record and every earlier sibling, so memory stays flat."""
    element.clear()
    parent = element.getparent()
    if parent is not None:
        while element.getprevious() is not None:
            del parent[0]


# --- file-level faults -------------------------------------------------------------------------


def _syntax_problem(exc: etree.XMLSyntaxError) -> str:
    """Describe an lxml parse error with its line and column, and say how to fix it."""
    line, column = exc.position if exc.position else (0, 0)
    message = (exc.msg or str(exc)).split(", line ")[0]
    if "encoding" in message.lower() or "utf-8" in message.lower():
        return (
            f"the bytes at line {line}, column {column} are not valid in the file's declared encoding "
            f"({message}), so re-save the file as UTF-8"
        )
    return f"the XML is malformed at line {line}, column {column} ({message}), so repair or re-download the file"


def _stream_fault(source: str, head: bytes, n_records: int, last_pmid: str | None, problem: str) -> SkippedRecord:
    if n_records == 0:
        sniffed = _sniff(head)
        reason = sniffed or f"No PubMed record could be read because {problem}."
        return SkippedRecord(source=source, reason=reason)
    after = f" (last PMID read: {last_pmid})" if last_pmid else ""
    plural = "s" if n_records != 1 else ""
    return SkippedRecord(
        source=source,
        reason=f"Reading stopped after {n_records} record{plural}{after} because {problem}; "
        "the rest of the file was not read.",
    )


def _sniff(head: bytes) -> str | None:
    """Say what a file that failed before its first record seems to be, or None when it looks like XML."""
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if not text:
        return "The file is empty; it holds no PubMed records (was the download interrupted?)."
    if re.match(rb"PMID-\s*\d", text):
        return "The file is PubMed-format text (MEDLINE/.nbib), not XML; ingest it with kind 'medline'."
    if text.startswith(b"%PDF"):
        return "The file is a PDF, not PubMed XML; ingest it with kind 'files'."
    if text[:1] in (b"{", b"["):
        return "The file is JSON, not PubMed XML; PubMedQA files use kind 'pubmedqa'."
    if re.match(rb"(?i)<!doctype html|<html", text):
        return "The file is an HTML page, not PubMed XML (an error page?); local protocols use kind 'files'."
    if not text.startswith(b"<"):
        return "The file is not XML, so it is not PubMed/MEDLINE XML; check which kind of file it is."
    return None


def _wrong_root(root: etree._Element) -> str:
    tag = root.tag if isinstance(root.tag, str) else "?"
    name = etree.QName(tag).localname
    if name == "eFetchResult":
        error = _text(root)
        return f"The file is an E-utilities error response ({error or 'no detail'}); re-run the efetch request."
    what = _OTHER_ROOTS.get(name)
    if what:
        return f"The file is not PubMed XML (root element <{name}>): it is {what}."
    return (
        f"The file's root element is <{name}>, not <PubmedArticleSet> or <MedlineCitationSet>, "
        "so it is not PubMed/MEDLINE XML; check which kind of file it is."
    )


# --- one record ----------------------------------------------------------------------------------


def _convert_record(element: etree._Element, source: str, n: int, kind: SourceKind) -> Document | SkippedRecord:
    """Convert a MedlineCitation, PubmedArticle or PubmedBookArticle element."""
    if element.tag == "PubmedBookArticle":
        citation, pubmed_data = element.find("BookDocument"), element.find("PubmedBookData")
    elif element.tag == "PubmedArticle":
        citation, pubmed_data = element.find("MedlineCitation"), element.find("PubmedData")
    else:
        citation, pubmed_data = element, None
    pmid = _text(citation.find("PMID")) if citation is not None else ""
    if citation is None or not pmid:
        return SkippedRecord(
            source=source,
            record=f"record {n}",
            reason=f"The {element.tag} at line {element.sourceline} has no PMID, so it cannot be "
            "identified or cited; fix or remove it.",
        )
    try:
        return _document(citation, pubmed_data, pmid, kind)
    except ValueError as exc:  # pydantic ValidationError is a ValueError
        summary = " ".join(str(exc).split())[:300]
        return SkippedRecord(
            source=source,
            record=pmid,
            reason=f"The record at line {element.sourceline} has values medcite cannot store ({summary}).",
        )


def _document(citation: etree._Element, pubmed_data: etree._Element | None, pmid: str, kind: SourceKind) -> Document:
    """Build the Document from a MedlineCitation (+ PubmedData) or a BookDocument (+ PubmedBookData).

    A BookDocument (GeneReviews, StatPearls chapters) keeps the Article-level
    elements directly inside it, so it serves as both citation and article.
    """
    article = citation.find("Article")
    if article is None:
        article = citation  # BookDocument
    metadata: dict[str, object] = {}
    languages = _texts(article.iterfind("Language"))
    if len(languages) > 1:
        metadata["languages"] = languages
    title = _display_title(article.find("ArticleTitle"), article.find("VernacularTitle"), languages, metadata)
    book_title = _text(article.find("Book/BookTitle"))
    if book_title:
        title = book_title if title == NO_TITLE else title
        metadata["book_title"] = book_title
        _put(metadata, "publisher", _text(article.find("Book/Publisher/PublisherName")))
    journal = _text(article.find("Journal/Title")) or _text(citation.find("MedlineJournalInfo/MedlineTA"))
    _put(metadata, "journal_abbreviation", _text(article.find("Journal/ISOAbbreviation")))
    _put(metadata, "volume", _text(article.find("Journal/JournalIssue/Volume")))
    _put(metadata, "issue", _text(article.find("Journal/JournalIssue/Issue")))
    _put(metadata, "pages", _text(article.find("Pagination/MedlinePgn")))
    pub_date = article.find("Journal/JournalIssue/PubDate")
    year, date_display = _publication_date(
        pub_date if pub_date is not None else article.find("Book/PubDate"),
        [article.find(path) for path in ("ArticleDate", "ContributionDate")]
        + [citation.find(path) for path in ("DateCompleted", "DateCreated")],
        metadata,
    )
    id_list = pubmed_data.find("ArticleIdList") if pubmed_data is not None else None
    doi, pii, pmcid = _identifiers(article.iterfind("ELocationID"), id_list, citation.iterfind("OtherID"))
    _put(metadata, "pii", pii)
    publication_types = _texts(article.iterfind("PublicationTypeList/PublicationType")) or _texts(
        article.iterfind("PublicationType")
    )
    comments = citation.iterfind("CommentsCorrectionsList/CommentsCorrections")
    is_retracted = _links_and_notices(comments, publication_types, metadata)
    mesh_terms = _mesh_terms(citation.iterfind("MeshHeadingList/MeshHeading"), metadata)
    _put(metadata, "copyright", _text(article.find("Abstract/CopyrightInformation")))

    sections = _abstract_sections(article.find("Abstract"), [])
    for other in citation.iterfind("OtherAbstract"):
        sections.extend(_abstract_sections(other, [_other_abstract_heading(other)]))
    metadata["has_abstract"] = bool(sections)
    if not sections:  # title-only record: keep it searchable
        sections.append(Section(heading_path=[], text=title))
    original = metadata.get("original_title")
    if isinstance(original, str) and original != title:
        sections.append(Section(heading_path=["Original title"], text=original))
    return Document(
        doc_id=f"pmid:{pmid}",
        kind=kind,
        external_id=pmid,
        title=title,
        journal=journal or None,
        year=year,
        date_display=date_display,
        authors=_authors(next((a for a in article.iterfind("AuthorList") if a.get("Type") != "editors"), None)),
        evidence_type=evidence_type_from_publication_types(publication_types),
        publication_types=publication_types,
        mesh_terms=mesh_terms,
        keywords=_texts(citation.iterfind("KeywordList/Keyword")),
        doi=doi,
        pmid=pmid,
        pmcid=pmcid,
        url=PUBMED_URL.format(pmid=pmid),
        language=languages[0] if languages else None,
        licence=None,
        provenance=PROVENANCE,
        is_retracted=is_retracted,
        metadata=metadata,
        sections=sections,
    )


# --- fields ----------------------------------------------------------------------------------------


def _display_title(
    title_el: etree._Element | None,
    vernacular_el: etree._Element | None,
    languages: list[str],
    metadata: dict[str, object],
) -> str:
    """Return the display title; translated titles lose their enclosing brackets (NLM puts them there)."""
    title = _text(title_el)
    vernacular = _text(vernacular_el)
    if vernacular:
        metadata["original_title"] = vernacular
    if title.strip("[]. ").lower() in ("not available", ""):
        return vernacular or NO_TITLE
    if "eng" not in languages:
        inner = _strip_enclosing_brackets(title)
        if inner is not None:
            metadata["title_translated"] = True
            return inner
    return title


def _strip_enclosing_brackets(title: str) -> str | None:
    """Return '[Whole title].' as 'Whole title.' when one bracket pair encloses it all, else None."""
    body, end = (title[:-1], ".") if title.endswith("].") else (title, "")
    if len(body) < 3 or body[0] != "[" or body[-1] != "]":
        return None
    depth = 0
    for index, char in enumerate(body):
        if char == "[":
            depth += 1
        elif char == "]":
            depth -= 1
            if depth == 0 and index != len(body) - 1:
                return None  # '[18F]FDG ... [x]' : the first bracket closes early
    inner = body[1:-1].strip()
    if end and inner.endswith((".", "?", "!", "…")):
        end = ""
    return inner + end


def _publication_date(
    pub_date: etree._Element | None, fallbacks: list[etree._Element | None], metadata: dict[str, object]
) -> tuple[int | None, str | None]:
    """Return (year, date as written) from a PubDate; no month or day is ever invented.

    PubDate holds either Year [Month|Season] [Day] or a free-text MedlineDate
    ('1998 Dec-1999 Jan'); the year of a MedlineDate is its first four-digit
    year, as PubMed's year facet uses. Without either, the year of the first
    fallback date (ArticleDate, DateCompleted, ...) is used and no display date is set.
    """
    year: int | None = None
    display: str | None = None
    if pub_date is not None:
        year_text = _text(pub_date.find("Year"))
        medline_date = _text(pub_date.find("MedlineDate"))
        if year_text:
            year = _year(year_text)
            month = _text(pub_date.find("Month"))
            season = _text(pub_date.find("Season"))
            day = _text(pub_date.find("Day"))
            if season:
                metadata["season"] = season
            parts = [year_text, _month_name(month) if month else season, day if month else ""]
            display = " ".join(part for part in parts if part)
        elif medline_date:
            display, year = medline_date, _year(medline_date)
    if year is None:
        for element in fallbacks:
            if element is not None:
                year = _year(_text(element.find("Year")))
                if year is not None:
                    break
    return year, display


def _year(text: str) -> int | None:
    match = _YEAR_RE.search(text)
    return int(match.group(1)) if match else None


def _month_name(month: str) -> str:
    """Return 'May' for '05' or '5' (PubMed's display form); text months are kept as written."""
    if month.isdigit() and 1 <= int(month) <= 12:
        return _MONTHS[int(month) - 1]
    return month


def _authors(author_list: etree._Element | None) -> list[str]:
    """Return 'LastName Initials [Suffix]' per Author, or the CollectiveName verbatim, in source order."""
    if author_list is None:
        return []
    authors: list[str] = []
    for author in author_list.iterfind("Author"):
        if author.get("ValidYN") == "N":
            continue  # NLM keeps misspelled names from errata with ValidYN="N"
        collective = _text(author.find("CollectiveName"))
        if collective:
            authors.append(collective)
            continue
        last = _text(author.find("LastName"))
        if not last:
            continue
        initials = _text(author.find("Initials"))
        if not initials:
            initials = "".join(word[0] for word in re.split(r"[\s\-.]+", _text(author.find("ForeName"))) if word)
        authors.append(" ".join(part for part in (last, initials, _text(author.find("Suffix"))) if part))
    return authors


def _identifiers(
    elocations: Iterator[etree._Element], id_list: etree._Element | None, other_ids: Iterator[etree._Element]
) -> tuple[str | None, str | None, str | None]:
    """Return (doi, pii, pmcid) of the record itself, never of a ReferenceList entry."""
    doi = pii = None
    for elocation in elocations:
        kind = elocation.get("EIdType")
        if elocation.get("ValidYN") == "N":
            continue
        if kind == "doi" and doi is None:
            doi = _clean_doi(_text(elocation))
        elif kind == "pii" and pii is None:
            pii = _text(elocation) or None
    pmcid = None
    for article_id in id_list.iterfind("ArticleId") if id_list is not None else ():
        id_type = article_id.get("IdType")
        if id_type == "doi" and doi is None:
            doi = _clean_doi(_text(article_id))
        elif id_type == "pii" and pii is None:
            pii = _text(article_id) or None
        elif id_type == "pmc" and pmcid is None:
            match = _PMCID_RE.match(_text(article_id))
            pmcid = match.group(1) if match else None
    if pmcid is None:
        for other_id in other_ids:  # 2016 MEDLINE files carry the PMCID as OtherID Source="NLM"
            match = _PMCID_RE.match(_text(other_id))
            if other_id.get("Source") == "NLM" and match:
                pmcid = match.group(1)
                break
    return doi, pii, pmcid


def _clean_doi(text: str) -> str | None:
    doi = _DOI_PREFIX_RE.sub("", text.strip()).strip()
    return doi or None


def _links_and_notices(
    comments: Iterator[etree._Element], publication_types: list[str], metadata: dict[str, object]
) -> bool:
    """Record retraction/erratum links and notice type in metadata; return whether the paper is retracted."""
    links: dict[str, list[str]] = {}
    for comment in comments:
        key = _LINK_KEYS.get(comment.get("RefType", ""))
        pmid = _text(comment.find("PMID"))
        if key and pmid and pmid not in links.setdefault(key, []):
            links[key].append(pmid)
    for key, pmids in links.items():
        if pmids:
            metadata[key] = pmids
    notice = notice_type(publication_types)
    if notice:
        metadata["notice"] = notice
    return RETRACTED_PUBLICATION in publication_types or bool(links.get("retraction_in"))


def _mesh_terms(headings: Iterator[etree._Element], metadata: dict[str, object]) -> list[str]:
    """Return MeSH descriptor names, '*' marking a major topic (descriptor or any qualifier major, as [majr]).

    Qualifiers go to ``metadata['mesh_qualifiers']`` as {descriptor: [qualifier, ...]} ('*' marks major).
    """
    terms: list[str] = []
    qualifiers: dict[str, list[str]] = {}
    for heading in headings:
        descriptor = heading.find("DescriptorName")
        name = _text(descriptor)
        if descriptor is None or not name:
            continue
        names = [_text(q) + ("*" if q.get("MajorTopicYN") == "Y" else "") for q in heading.iterfind("QualifierName")]
        is_major = descriptor.get("MajorTopicYN") == "Y" or any(n.endswith("*") for n in names)
        terms.append(name + ("*" if is_major else ""))
        if names:
            qualifiers[name] = names
    if qualifiers:
        metadata["mesh_qualifiers"] = qualifiers
    return terms


def _abstract_sections(abstract: etree._Element | None, heading_prefix: list[str]) -> list[Section]:
    """Return one Section per AbstractText with real text, in order: heading = Label, category = NlmCategory."""
    if abstract is None:
        return []
    sections = []
    for part in abstract.iterfind("AbstractText"):
        text = _text(part)
        if not text or text == PUBLISHER_PLACEHOLDER:
            continue
        label = (part.get("Label") or "").strip()
        sections.append(
            Section(
                heading_path=[*heading_prefix, label] if label else list(heading_prefix),
                text=text,
                category=part.get("NlmCategory") or None,
            )
        )
    return sections


def _other_abstract_heading(other: etree._Element) -> str:
    kind = (other.get("Type") or "").replace("-", " ")
    name = "Plain language summary" if kind == "plain language summary" else "Other abstract"
    language = other.get("Language")
    return f"{name} ({language})" if language and language != "eng" else name


# --- text helpers -----------------------------------------------------------------------------------


def _put(metadata: dict[str, object], key: str, value: str | None) -> None:
    if value:
        metadata[key] = value


def _texts(elements: Iterator[etree._Element]) -> list[str]:
    return [text for text in (_text(element) for element in elements) if text]


def _text(element: etree._Element | None) -> str:
    """Return element text in document order with whitespace runs collapsed to one space."""
    if element is None:
        return ""
    if len(element) == 0:
        text = element.text
        return " ".join(text.split()) if text else ""
    return " ".join(_raw_text(element).split())


def _raw_text(element: etree._Element) -> str:
    """Concatenate text, each child's text and tail; separate adjacent child elements that would glue.

    Inline markup inside a word stays joined ('m<sup>2</sup>' -> 'm2'), but two
    elements that touch with no whitespace between them ('<b>Female, 16</b><b>Final
    Diagnosis</b>') get a separator: '; ' between bold runs, else a space.
    """
    if len(element) == 0:
        return element.text or ""
    parts = [element.text or ""]
    previous: str | None = None  # tag of the previous child when nothing came after it yet
    for child in element:
        tag = child.tag
        if isinstance(tag, str):
            inner = _raw_text(child)
            left = parts[-1]
            if previous is not None and inner and left and not left[-1].isspace() and not inner[0].isspace():
                both_bold = previous == "b" and tag == "b"
                parts.append("; " if both_bold and left[-1] not in _END_PUNCTUATION else " ")
            parts.append(inner)
            previous = tag
        if child.tail:
            parts.append(child.tail)
            previous = None
    return "".join(parts)
