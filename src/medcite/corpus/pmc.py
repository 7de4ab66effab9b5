"""Ingest adapter for PMC Open Access full text in JATS XML (``.nxml``): file -> one ``Document`` per article.

The format is the NISO JATS Archiving and Interchange Tag Set 1.x
(https://jats.nlm.nih.gov/archiving/tag-library/), as PMC distributes it; a
``<pmc-articleset>`` wrapper (E-utilities efetch from db=pmc) is read too.
Sections come out in reading order: abstracts, then the body, then back matter
(acknowledgements, appendices, notes); tables and figure captions become their
own sections. Imports ``models`` and ``corpus._io`` only; never ``store``.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from lxml import etree

from medcite.corpus import Record
from medcite.corpus._io import read_or_skip
from medcite.models import Document, EvidenceType, Section, SectionKind, SkippedRecord

__all__ = ["read_pmc"]

XLINK_HREF = "{http://www.w3.org/1999/xlink}href"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
PROVENANCE = "PMC Open Access full text (JATS)"
BODY_FALLBACK = "Body"
"""Heading for body-level text outside any titled <sec> (JATS allows paragraphs directly in <body>)."""

# Elements whose text never reaches a paragraph: binaries, references, footnote markers and
# floats (floats become sections of their own). xref ref-type 'fn'/'table-fn' are dropped separately.
_SKIP_IN_TEXT = frozenset(
    {
        "table-wrap",
        "table-wrap-group",
        "fig",
        "fig-group",
        "supplementary-material",
        "graphic",
        "inline-graphic",
        "media",
        "ref-list",
        "tex-math",
        "object-id",
        "label",
    }
)
# Elements after which a space is inserted so adjacent blocks or cells never glue together.
_BLOCK_BREAK = frozenset({"p", "title", "list-item", "td", "th", "term", "def", "caption", "break", "tr"})
_FOOTNOTE_XREFS = frozenset({"fn", "table-fn"})
_FLOATS = frozenset({"table-wrap", "table-wrap-group", "fig", "fig-group"})
_IGNORED_BLOCKS = frozenset(
    {"title", "label", "supplementary-material", "graphic", "media", "ref-list", "fn-group", "disp-formula"}
)
_CONTAINERS = {"sec": None, "boxed-text": "Box", "app": "Appendix", "glossary": "Glossary", "notes": "Notes"}
_BACK_CONTAINERS = {"ack": "Acknowledgements", "app-group": "Appendices", **_CONTAINERS}
# Date preference for the publication year: the electronic or print date first (JATS 1.0 pub-type
# and JATS 1.1+ date-type/publication-format spellings).
_DATE_PREFERENCE = ("epub", "ppub", "epub-ppub", "electronic", "print", "pub", "collection", "pmc-release")
_MONTHS = "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split()
_CC_LICENCE = re.compile(r"creativecommons\.org/(licenses|publicdomain)/([a-z-]+)/(\d+(?:\.\d+)?)", re.I)
_CC_MODIFIERS = (("NC", r"non-?commercial"), ("ND", r"no-?deriv"), ("SA", r"share-?alike"))
_EVIDENCE_PHRASES: tuple[tuple[EvidenceType, re.Pattern[str]], ...] = (
    ("systematic_review", re.compile(r"systematic (literature )?review", re.I)),
    ("meta_analysis", re.compile(r"meta-?analys[ie]s", re.I)),
    ("rct", re.compile(r"randomi[sz]ed,? (placebo-)?controlled trial", re.I)),
)
_NOTICE_ARTICLE_TYPES = {
    "correction": "erratum",
    "retraction": "retraction",
    "expression-of-concern": "expression_of_concern",
}
"""JATS article-types of notices about another paper, mapped to the notice names of ``corpus._pubmed``."""
_ARTICLE_TYPES: dict[str, EvidenceType] = {
    "systematic-review": "systematic_review",
    "review-article": "review",
    "case-report": "case_report",
}


def read_pmc(path: Path) -> Iterator[Record]:
    """Read a PMC Open Access JATS file and yield one ``Document`` per ``<article>``.

    Each article becomes ``Document(doc_id='pmc:PMC<n>', kind='pmc')`` with
    PMID, DOI and PMCID from ``article-meta``, the flattened article title,
    journal title, year (epub, then ppub, then other dates), authors
    ('Surname Initials'; ``collab`` names verbatim), keywords, licence ('CC BY
    4.0' when the licence URL is a Creative Commons one, else the licence text
    shortened), the PMC URL and an evidence type: a title or subject naming a
    systematic review, meta-analysis or randomised controlled trial wins (in
    that order), else ``article-type`` review-article -> 'review', case-report
    -> 'case_report', else 'other' (always 'other' for a correction, retraction
    or expression of concern, which also set ``metadata['notice']``). An article without a PMCID is skipped,
    because PMC documents are named by PMCID and a 'pmid:' id would collide
    with the PubMed record of the same paper.

    Sections: the abstract first (``['Abstract', <sub-section title>]``;
    other abstracts such as an 'Author Summary' under their own title), then
    body sections with the path of nested ``<sec><title>`` headings, then back
    matter. A ``<sec>`` without a title takes the title of its lone titled
    child section, else its parent's path, else 'Body'; body-level blocks
    outside any section go under 'Body', and a titled block (e.g. an
    abbreviations ``def-list``) gets its own section. Paragraphs are separated
    by blank lines; xref text stays inline and footnote markers are dropped.
    Every ``table-wrap`` (in body, back, ``floats-group`` or a
    ``table-wrap-group``) becomes a ``Section(kind='table')`` headed
    '<label>: <caption title>' with label and caption, then rows as Markdown
    lines (row spans are not expanded), then table footnotes; figure captions
    become text sections headed by the figure label. A float sitting in a
    section stays there; a float placed elsewhere follows the first section
    that cites it (else the end). References, graphics, formulas and
    supplementary files are skipped.

    Never raises on bad input: an article without PMCID yields a
    ``SkippedRecord``; an unreadable, empty, malformed or truncated file (no
    partial article is kept) yields one ``SkippedRecord`` with ``record=None``
    naming the line of the fault.

    Args:
        path: A ``.nxml``/``.xml`` file (plain or gzip-compressed) with an
            ``<article>`` or ``<pmc-articleset>`` root.

    Returns:
        An iterator of ``Document`` and ``SkippedRecord`` objects, in file order.
    """
    source = str(path)
    data = read_or_skip(path, empty_advice="download the article from PMC again")
    if isinstance(data, SkippedRecord):
        yield data
        return
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=True)
    try:
        root = etree.fromstring(data, parser)
    except etree.XMLSyntaxError as error:
        line, column = error.position if error.position else (error.lineno, 0)
        yield SkippedRecord(
            source=source,
            reason=f"The file is not well-formed XML at line {line}, column {column} ({error.msg}); "
            "it may be truncated: download the article from PMC again.",
        )
        return
    if root.tag == "article":
        articles = [root]
    elif root.tag == "pmc-articleset":
        articles = root.findall("article")
    else:
        articles = []
    if not articles:
        yield SkippedRecord(
            source=source,
            reason=f"The file has no JATS <article> (root element <{root.tag}>); choose the right source kind for it.",
        )
        return
    for n_article, article in enumerate(articles, start=1):
        yield _read_article(article, source, n_article)


def _read_article(article: etree._Element, source: str, n_article: int) -> Record:
    """Build the Document for one <article>, or a SkippedRecord when it cannot be identified."""
    meta = article.find("front/article-meta")
    if meta is None:
        meta = etree.Element("article-meta")
    ids = {(el.get("pub-id-type") or ""): _text(el) for el in meta.findall("article-id")}
    pmc_number = ids.get("pmcid") or ids.get("pmc") or ""
    pmc_number = pmc_number.upper().removeprefix("PMC").strip()
    if not pmc_number:
        return SkippedRecord(
            source=source,
            record=f"article {n_article}",
            reason="The article has no PMC id (article-id pub-id-type='pmc' or 'pmcid'); PMC documents are "
            "named by PMCID, so download the PMC version of the file or ingest it with another kind.",
        )
    pmcid = f"PMC{pmc_number}"
    try:
        return _document(article, meta, ids, pmcid)
    except ValueError as error:  # pydantic's ValidationError is a ValueError
        return SkippedRecord(source=source, record=pmcid, reason=f"The article could not be converted: {error}")


def _document(article: etree._Element, meta: etree._Element, ids: dict[str, str], pmcid: str) -> Document:
    """Fill a Document from article-meta and the article's abstract, body and back matter."""
    title = _text(meta.find("title-group/article-title")) or pmcid
    journal = _text(article.find("front/journal-meta/journal-title-group/journal-title")) or _text(
        article.find("front/journal-meta/journal-title")
    )
    year, date_display = _publication_date(meta)
    subjects = [_text(el) for el in meta.iterfind("article-categories//subject")]
    article_type = article.get("article-type") or ""
    keywords = list(dict.fromkeys(_text(el) for el in meta.iterfind("kwd-group/kwd") if _text(el)))
    metadata: dict[str, object] = {"article_type": article_type} if article_type else {}
    if subjects:
        metadata["subjects"] = subjects
    if article_type in _NOTICE_ARTICLE_TYPES:
        metadata["notice"] = _NOTICE_ARTICLE_TYPES[article_type]
    return Document(
        doc_id=f"pmc:{pmcid}",
        kind="pmc",
        external_id=pmcid,
        title=title,
        journal=journal or None,
        year=year,
        date_display=date_display,
        authors=_authors(meta),
        evidence_type=_evidence_type(article_type, [title, *subjects]),
        keywords=keywords,
        doi=ids.get("doi") or None,
        pmid=ids.get("pmid") or None,
        pmcid=pmcid,
        url=f"https://pmc.ncbi.nlm.nih.gov/articles/{pmcid}/",
        language=article.get(XML_LANG),
        licence=_licence(meta),
        provenance=PROVENANCE,
        metadata=metadata,
        sections=_SectionBuilder(article).build(meta),
    )


def _text(element: etree._Element | None) -> str:
    """Flatten an element's text in document order, dropping floats, binaries and footnote markers."""
    if element is None:
        return ""
    parts: list[str] = []
    _collect_text(element, parts)
    return " ".join("".join(parts).split())


def _collect_text(element: etree._Element, parts: list[str]) -> None:
    """Append the text of ``element`` and its descendants (each child's tail included) to ``parts``."""
    if element.text:
        parts.append(element.text)
    for child in element:
        tag = child.tag if isinstance(child.tag, str) else ""
        name = etree.QName(child).localname if tag else ""
        is_skipped = not tag or name in _SKIP_IN_TEXT or (name == "xref" and child.get("ref-type") in _FOOTNOTE_XREFS)
        if not is_skipped:
            _collect_text(child, parts)
        if name in _BLOCK_BREAK:
            parts.append(" ")
        if child.tail:
            parts.append(child.tail)


def _publication_date(meta: etree._Element) -> tuple[int | None, str | None]:
    """Return (year, display date) from the preferred pub-date that has a year."""
    dated = [el for el in meta.findall("pub-date") if _text(el.find("year"))[:4].isdigit()]

    def rank(element: etree._Element) -> int:
        kinds = (element.get("pub-type"), element.get("date-type"), element.get("publication-format"))
        found = [_DATE_PREFERENCE.index(kind) for kind in kinds if kind in _DATE_PREFERENCE]
        return min(found, default=len(_DATE_PREFERENCE))

    if not dated:
        return None, None
    best = min(dated, key=rank)
    year = _text(best.find("year"))[:4]
    month = _text(best.find("month"))
    parts = [year]
    if month.isdigit() and 1 <= int(month) <= 12:
        parts.append(_MONTHS[int(month) - 1])
    elif month or _text(best.find("season")):
        parts.append(month or _text(best.find("season")))
    if len(parts) == 2 and _text(best.find("day")).isdigit():
        parts.append(str(int(_text(best.find("day")))))
    return int(year), " ".join(parts)


def _authors(meta: etree._Element) -> list[str]:
    """Return author contributors in order: 'Surname Initials', or a collab name verbatim."""
    authors: list[str] = []
    for contrib in meta.iterfind("contrib-group/contrib"):
        if contrib.get("contrib-type", "author") != "author":
            continue
        name = contrib.find("name")
        if name is None:
            name = contrib.find("name-alternatives/name")
        collab = contrib.find("collab")
        if collab is None:
            collab = contrib.find("collab-alternatives/collab")
        if name is not None:
            surname = _text(name.find("surname"))
            given = name.find("given-names")
            initials = (given.get("initials") if given is not None else None) or _initials(_text(given))
            authors.append(f"{surname} {initials}".strip())
        elif collab is not None:
            # A collab may list its members in a nested contrib-group; keep only the group's own name.
            group = copy.deepcopy(collab)
            group.tail = None
            for members in group.findall(".//contrib-group"):
                parent = members.getparent()
                if parent is not None:
                    parent.remove(members)
            authors.append(_text(group))
        elif contrib.find("string-name") is not None:
            authors.append(_text(contrib.find("string-name")))
    return [author for author in authors if author]


def _initials(given_names: str) -> str:
    """Return initials of given names: 'Peter N.' -> 'PN', 'Jean-Pierre' -> 'JP', 'MA' -> 'MA'."""
    initials = []
    for part in re.split(r"[\s.\-]+", given_names):
        if not part:
            continue
        is_initials_already = part.isupper() and part.isalpha() and len(part) <= 3
        initials.append(part if is_initials_already else part[0].upper())
    return "".join(initials)


def _licence(meta: etree._Element) -> str | None:
    """Return a short licence name ('CC BY 4.0', 'CC0 1.0') or the licence text cut to its first sentence."""
    licence = meta.find("permissions/license")
    if licence is None:
        return None
    urls = [licence.get(XLINK_HREF) or ""]
    urls += [_text(el) for el in licence.iter("{*}license_ref")]
    urls += [el.get(XLINK_HREF) or "" for el in licence.iter("ext-link", "uri")]
    for url in urls:
        match = _CC_LICENCE.search(url)
        if match:
            kind, code, version = match.group(1).lower(), match.group(2).lower(), match.group(3)
            if kind == "publicdomain":
                return f"CC0 {version}" if code == "zero" else f"Public Domain Mark {version}"
            return f"CC {code.upper()} {version}"
    text = _text(licence)
    if re.search(r"Creative Commons Attribution", text, re.I):
        # A licence sentence without a URL: name the licence elements it spells out (no version is given).
        modifiers = [code for code, pattern in _CC_MODIFIERS if re.search(pattern, text, re.I)]
        return "CC " + "-".join(["BY", *modifiers])
    if not text:
        return next((url for url in urls if url), None)
    sentence = re.split(r"(?<=[.;])\s", text, maxsplit=1)[0]
    return sentence if len(sentence) <= 200 else sentence[:197].rsplit(" ", 1)[0] + "..."


def _evidence_type(article_type: str, texts: Iterable[str]) -> EvidenceType:
    """Return the evidence type from phrases in the title/subjects, else from the JATS article-type."""
    if article_type in _NOTICE_ARTICLE_TYPES:
        return "other"
    joined = " ".join(texts)
    for evidence_type, pattern in _EVIDENCE_PHRASES:
        if pattern.search(joined):
            return evidence_type
    return _ARTICLE_TYPES.get(article_type, "other")


def _heading(element: etree._Element) -> str:
    """Return an element's own <title> text without a trailing colon ('' when absent)."""
    return _text(element.find("title")).rstrip(": ").strip()


@dataclass
class _Part:
    """A section under construction, with the ids of the floats its text cites."""

    section: Section
    cited_ids: list[str] = field(default_factory=list)


class _SectionBuilder:
    """Walk one article's abstracts, body and back matter into Sections in reading order."""

    def __init__(self, article: etree._Element) -> None:
        self.article = article
        self.parts: list[_Part] = []
        self.tree = article.getroottree()
        self.placed: set[str] = set()  # tree paths of float elements already emitted in place

    def build(self, meta: etree._Element) -> list[Section]:
        """Return the article's sections: abstracts, body, back matter, then unplaced floats."""
        for abstract in meta.findall("abstract"):
            kind = abstract.get("abstract-type")
            heading = "Abstract" if kind in (None, "structured") else _heading(abstract) or f"Abstract ({kind})"
            self._walk(abstract, [heading])
        body = self.article.find("body")
        if body is not None:
            self._walk(body, [])
        back = self.article.find("back")
        if back is not None:
            for child in back:
                name = child.tag if isinstance(child.tag, str) else ""
                if name in _BACK_CONTAINERS:
                    self._container(child, [], _BACK_CONTAINERS[name] or "Back matter")
        return self._with_floats()

    def _walk(self, container: etree._Element, path: list[str], text_path: list[str] | None = None) -> None:
        """Emit ``container``'s blocks: its own text under ``text_path`` (default ``path``), children under ``path``."""
        paragraphs: list[str] = []
        cited: list[str] = []
        floats: list[etree._Element] = []
        own_path = text_path or path or [BODY_FALLBACK]

        def flush() -> None:
            if paragraphs:
                self.parts.append(_Part(Section(heading_path=own_path, text="\n\n".join(paragraphs)), cited[:]))
            paragraphs.clear()
            cited.clear()
            for element in floats:
                self._float(element, text_path or path)
            floats.clear()

        for child in container:
            name = child.tag if isinstance(child.tag, str) else ""
            if not name or name in _IGNORED_BLOCKS:
                continue
            if name in _FLOATS:
                floats.append(child)
                continue
            titled_list = name in ("list", "def-list") and _heading(child)
            if name in _CONTAINERS or titled_list:
                flush()
                if titled_list:
                    lines = _list_lines(child)
                    if lines:
                        heading_path = [*path, _heading(child)]
                        self.parts.append(_Part(Section(heading_path=heading_path, text=lines, kind="list")))
                else:
                    self._container(child, path, _CONTAINERS[name] or BODY_FALLBACK)
                continue
            text = _list_lines(child) if name in ("list", "def-list") else _text(child)
            if text:
                paragraphs.append(text)
                for xref in child.iter("xref"):
                    if xref.get("ref-type") in ("table", "fig"):
                        cited.extend((xref.get("rid") or "").split())
            floats.extend(el for el in child.iter(*_FLOATS) if el is not child and _is_outermost_float(el, child))
        flush()

    def _container(self, element: etree._Element, path: list[str], fallback: str) -> None:
        """Walk a sec/app/box/ack, working out its heading (never empty) as ``read_pmc`` describes."""
        heading = _heading(element)
        if heading:
            self._walk(element, [*path, heading])
            return
        titled_children = [sec for sec in element.findall("sec") if _heading(sec)]
        if len(titled_children) == 1 and not path:
            # An untitled wrapper around one titled section: its own text goes under that title.
            self._walk(element, path, text_path=[_heading(titled_children[0])])
            return
        self._walk(element, path, text_path=path or [fallback])

    def _float(self, element: etree._Element, path: list[str]) -> None:
        """Emit a table-wrap/fig (or each member of a group) as its own section under ``path``."""
        name = element.tag
        if name in ("table-wrap-group", "fig-group"):
            for member in element.iter("table-wrap", "fig"):
                self._float(member, path)
            return
        self.placed.add(self.tree.getpath(element))
        section = _float_section(element, path)
        if section is not None:
            self.parts.append(_Part(section))

    def _with_floats(self) -> list[Section]:
        """Insert floats not yet placed after the first section citing them; uncited ones go last."""
        pending = {
            el.get("id") or f"#{index}": el
            for index, el in enumerate(self.article.iter("table-wrap", "fig"))
            if self.tree.getpath(el) not in self.placed and not _inside(el, ("supplementary-material", "sub-article"))
        }
        sections: list[Section] = []
        for part in self.parts:
            sections.append(part.section)
            for rid in part.cited_ids:
                element = pending.pop(rid, None)
                if element is not None:
                    placed = _float_section(element, part.section.heading_path)
                    if placed is not None:
                        sections.append(placed)
        for element in pending.values():
            placed = _float_section(element, [])
            if placed is not None:
                sections.append(placed)
        return sections


def _is_outermost_float(element: etree._Element, stop: etree._Element) -> bool:
    """True when no other float lies between ``element`` and ``stop`` (so groups are emitted once)."""
    parent = element.getparent()
    while parent is not None and parent is not stop:
        if parent.tag in _FLOATS:
            return False
        parent = parent.getparent()
    return True


def _inside(element: etree._Element, tags: tuple[str, ...]) -> bool:
    """True when an ancestor of ``element`` has one of ``tags``."""
    return any(ancestor.tag in tags for ancestor in element.iterancestors())


def _float_section(element: etree._Element, path: list[str]) -> Section | None:
    """Return a table (kind='table', Markdown rows) or figure-caption section, or None when it has no text."""
    is_table = element.tag == "table-wrap"
    label = _text(element.find("label")).rstrip(".: ") or ("Table" if is_table else "Figure")
    caption = element.find("caption")
    caption_title = _text(caption.find("title")) if caption is not None else ""
    caption_text = _text(caption)
    short = caption_title or re.split(r"(?<=[.!?])\s", caption_text, maxsplit=1)[0]
    if len(short) > 150:
        short = short[:147].rsplit(" ", 1)[0] + "..."
    heading = f"{label}: {short.rstrip('.')}" if short else label
    lines = [f"{label}. {caption_text}".strip() if caption_text else label]
    kind: SectionKind = "text"
    if is_table:
        kind = "table"
        for table in element.iter("table"):
            lines.append("\n".join(_table_rows(table)))
        lines.extend(_text(foot) for foot in element.iter("table-wrap-foot") if _text(foot))
        if len(lines) == 1 and not caption_text:
            return None
    elif not caption_text:
        return None
    return Section(heading_path=[*path, heading], text="\n\n".join(line for line in lines if line), kind=kind)


def _table_rows(table: etree._Element) -> list[str]:
    """Return Markdown table lines ('| a | b |'); a separator follows the header rows; colspans pad cells."""
    rows: list[str] = []
    n_header_rows = len(table.findall("thead/tr"))
    for index, row in enumerate(table.iter("tr")):
        cells: list[str] = []
        for cell in row:
            if cell.tag not in ("td", "th"):
                continue
            cells.append(_text(cell).replace("|", "\\|"))
            span = cell.get("colspan") or "1"
            cells.extend([""] * (int(span) - 1 if span.isdigit() and 1 < int(span) <= 50 else 0))
        if any(cells):
            rows.append("| " + " | ".join(cells) + " |")
        if index + 1 == n_header_rows and rows:
            rows.append("|" + " --- |" * max(len(cells), 1))
    return rows


def _list_lines(element: etree._Element) -> str:
    """Return a list as '- item' lines or a def-list as 'term: definition' lines."""
    if element.tag == "def-list":
        items = element.findall("def-item")
        lines = [f"{_text(item.find('term'))}: {_text(item.find('def'))}".strip(": ") for item in items]
    else:
        lines = [f"- {_text(item)}" for item in element.findall("list-item") if _text(item)]
    return "\n".join(line for line in lines if line)
