"""Ingest adapter for an institution's own documents (protocols): Markdown, HTML, PDF and plain text (corpus stage).

Each file becomes one ``Document`` with ``doc_id`` ``file:<first 16 hex digits
of the SHA-256 of its resolved absolute path>``, so re-ingesting the same path
updates the same document. Descriptive metadata (title, organization, year,
evidence type, URL, licence, authors) comes from a JSON sidecar
``<file name>.meta.json`` or, for Markdown and text, YAML front matter; the
sidecar wins where both give a field. This module imports ``models`` and
``corpus._io``; never ``store``.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import frontmatter
import lxml.html
import pypdf
import yaml  # type: ignore[import-untyped, unused-ignore]
from markdown_it import MarkdownIt
from markdown_it.token import Token

from medcite.corpus import Record
from medcite.corpus._io import decode_text, open_bytes
from medcite.models import EVIDENCE_TYPES, Document, Section, SkippedRecord

__all__ = ["METADATA_FIELDS", "SUFFIXES", "read_file"]

SUFFIXES: tuple[str, ...] = (".md", ".markdown", ".html", ".htm", ".pdf", ".txt")
"""File name endings ``read_file`` understands (case-insensitive)."""

METADATA_FIELDS: tuple[str, ...] = ("title", "organization", "year", "evidence_type", "url", "licence", "authors")
"""Sidecar / front matter keys mapped onto ``Document`` fields; other keys go to ``Document.metadata``."""

_HEADINGS = {"h1": 1, "h2": 2, "h3": 3, "h4": 4, "h5": 5, "h6": 6}
_DROPPED_XPATH = "//script|//style|//nav|//noscript|//template|//head|//comment()"
_BLOCK_HTML = frozenset(
    "address article aside blockquote body caption dd details dialog div dl dt fieldset figcaption figure "
    "footer form header hr html li main menu p section summary".split()
)
_Parsed = tuple[str | None, list[Section], list[tuple[str, str]]]
"""A parser's result: the document's own title, its sections, and (record, reason) per unreadable page."""
_XML_DECLARATION = re.compile(r"^\s*<\?xml[^>]*\?>")
_BLANK_LINES = re.compile(r"\n[ \t\r\f\v]*\n")


class _BadInput(Exception):
    """A file-level problem; ``str(exc)`` is the sentence for the SkippedRecord."""


@dataclass
class _Builder:
    """Collects sections in reading order under the current heading path."""

    headings: list[tuple[int, str]] = field(default_factory=list)
    paragraphs: list[str] = field(default_factory=list)
    sections: list[Section] = field(default_factory=list)
    first_h1: str | None = None

    @property
    def path(self) -> list[str]:
        return [text for _, text in self.headings]

    def heading(self, level: int, text: str) -> None:
        """Close the open text section and move to a heading of ``level`` (1-6)."""
        self.flush()
        while self.headings and self.headings[-1][0] >= level:
            self.headings.pop()
        if text:
            self.headings.append((level, text))
            if level == 1 and self.first_h1 is None:
                self.first_h1 = text

    def paragraph(self, text: str) -> None:
        """Add one paragraph (or list block) to the open text section."""
        if text.strip():
            self.paragraphs.append(text.strip("\n"))

    def block(self, text: str, kind: str) -> None:
        """Add a whole table or code block as its own section."""
        self.flush()
        if text.strip():
            self.sections.append(Section(heading_path=self.path, text=text.rstrip(), kind=kind))  # type: ignore[arg-type]

    def flush(self) -> None:
        """Close the open text section, if it has any text."""
        if self.paragraphs:
            self.sections.append(Section(heading_path=self.path, text="\n\n".join(self.paragraphs)))
            self.paragraphs = []


def read_file(path: Path) -> Iterator[Record]:
    """Read one local document (a protocol) as a Document.

    Formats: Markdown (CommonMark with GFM tables, parsed by markdown-it-py;
    sections follow headings, tables become ``kind='table'`` sections of
    ``| a | b |`` rows, fenced and indented code blocks ``kind='algorithm'``),
    HTML (lxml.html; sections follow ``h1``-``h6``; ``script``, ``style``,
    ``nav`` dropped; title from ``<title>`` or the first ``<h1>``), PDF (pypdf
    text per page, headed ``'Page N'``; title from the PDF info dictionary) and
    plain text (paragraphs separated by blank lines). Text encodings are
    detected with ``_io.decode_text``. Metadata: a sidecar ``<file>.meta.json``
    object and/or YAML front matter (Markdown, text) with the keys in
    ``METADATA_FIELDS``; ``evidence_type`` defaults to ``'protocol'``, the
    title to the document's own title, then the file stem. ``provenance`` is
    ``'Local document <file name>'`` and ``external_id`` the resolved path.

    Args:
        path: The file to read; its sidecar, if any, sits next to it.

    Yields:
        One ``Document``, or one ``SkippedRecord`` with ``record=None`` saying
        what to fix when the file cannot be used (unsupported type, unreadable
        or undecodable, bad sidecar JSON or front matter, an unknown
        evidence type, a PDF pypdf cannot parse, no extractable text). A PDF
        page that fails to extract yields a ``SkippedRecord`` for that page
        after the Document. Never raises on bad input.
    """
    suffix = path.suffix.lower()
    readers: dict[str, Callable[[bytes, dict[str, Any]], _Parsed]] = {
        ".md": _parse_markdown,
        ".markdown": _parse_markdown,
        ".html": _parse_html,
        ".htm": _parse_html,
        ".pdf": _parse_pdf,
        ".txt": _parse_text,
    }
    if suffix not in readers:
        yield _skip(path, None, f"Files ending in {suffix or '(no suffix)'} are not read; use {', '.join(SUFFIXES)}.")
        return
    try:
        with open_bytes(path) as handle:
            data = handle.read()
        meta: dict[str, Any] = {}
        own_title, sections, page_problems = readers[suffix](data, meta)
        meta.update(_read_sidecar(path))
        document = _build_document(path, own_title, sections, meta)
    except (OSError, EOFError) as exc:
        yield _skip(
            path, None, f"The file cannot be read ({type(exc).__name__}: {exc}); check it exists and is readable."
        )
        return
    except _BadInput as exc:
        yield _skip(path, None, str(exc))
        return
    yield document
    for record, reason in page_problems:
        yield _skip(path, record, reason)


def _build_document(path: Path, own_title: str | None, sections: list[Section], meta: dict[str, Any]) -> Document:
    """Validate the metadata and assemble the Document."""
    if not any(section.text.strip() for section in sections):
        raise _BadInput(
            "The file has no extractable text; for a scanned PDF run OCR first, otherwise add the text to the file."
        )
    evidence_type = meta.get("evidence_type", "protocol")
    if evidence_type not in EVIDENCE_TYPES:
        raise _BadInput(
            f"evidence_type {evidence_type!r} is not one of {', '.join(EVIDENCE_TYPES)}; "
            "fix the sidecar or front matter."
        )
    year = meta.get("year")
    if year is not None:
        try:
            year = int(str(year).strip())
        except ValueError:
            raise _BadInput(f"year {year!r} is not a four-digit year; fix the sidecar or front matter.") from None
        if not 1000 <= year <= 2999:
            raise _BadInput(f"year {year} is out of range; fix the sidecar or front matter.")
    authors = meta.get("authors") or []
    if isinstance(authors, str):
        authors = [authors]
    if not isinstance(authors, list) or not all(isinstance(a, str) for a in authors):
        raise _BadInput("authors must be a list of names (strings); fix the sidecar or front matter.")
    for key in ("title", "organization", "url", "licence"):
        if meta.get(key) is not None and not isinstance(meta[key], str):
            raise _BadInput(f"{key} must be a string; fix the sidecar or front matter.")
    resolved = path.resolve()
    extra = {key: _jsonable(value) for key, value in meta.items() if key not in METADATA_FIELDS}
    return Document(
        doc_id=f"file:{hashlib.sha256(str(resolved).encode('utf-8')).hexdigest()[:16]}",
        kind="files",
        external_id=str(resolved),
        title=(meta.get("title") or own_title or path.stem).strip(),
        organization=meta.get("organization") or None,
        year=year,
        authors=[a.strip() for a in authors if a.strip()],
        evidence_type=evidence_type,
        url=meta.get("url") or None,
        licence=meta.get("licence") or None,
        provenance=f"Local document {path.name}",
        metadata=extra,
        sections=sections,
    )


def _read_sidecar(path: Path) -> dict[str, Any]:
    """Return the sidecar ``<file>.meta.json`` object ({} when there is none)."""
    sidecar = path.with_name(path.name + ".meta.json")
    if not sidecar.exists():
        return {}
    try:
        meta = json.loads(decode_text(sidecar.read_bytes())[0])
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _BadInput(f"The metadata sidecar {sidecar.name} is not valid JSON ({exc}); fix or remove it.") from None
    if not isinstance(meta, dict):
        raise _BadInput(f"The metadata sidecar {sidecar.name} must hold a JSON object; fix or remove it.")
    return _normalise_keys(meta)


def _normalise_keys(meta: dict[Any, Any]) -> dict[str, Any]:
    """Accept the spelling 'license' for 'licence' and 'author' for 'authors'."""
    aliases = {"license": "licence", "author": "authors", "organisation": "organization"}
    return {aliases.get(str(key).lower(), str(key).lower()): value for key, value in meta.items()}


def _decode(data: bytes) -> str:
    """Decode text bytes or raise _BadInput."""
    try:
        return decode_text(data)[0]
    except UnicodeDecodeError:
        raise _BadInput("The file's text encoding cannot be recognised; save it as UTF-8.") from None


def _front_matter(text: str, meta: dict[str, Any]) -> str:
    """Strip YAML front matter into ``meta``; return the remaining text."""
    if not text.lstrip("\ufeff").startswith("---"):
        return text
    try:
        post = frontmatter.loads(text)
    except (yaml.YAMLError, ValueError) as exc:
        raise _BadInput(f"The YAML front matter cannot be parsed ({exc}); fix it or move it to a sidecar.") from None
    meta.update(_normalise_keys(dict(post.metadata)))
    return str(post.content)


def _words(text: str) -> str:
    """Collapse whitespace runs to single spaces."""
    return " ".join(text.split())


def _table_rows(rows: list[list[str]]) -> str:
    """Render rows of cell texts as Markdown table lines, a separator after the first row."""
    rows = [row for row in rows if any(row)]
    if not rows:
        return ""
    width = max(len(row) for row in rows)
    lines = []
    for index, row in enumerate(rows):
        cells = [cell.replace("|", "\\|") for cell in row] + [""] * (width - len(row))
        lines.append("| " + " | ".join(cells) + " |")
        if index == 0:
            lines.append("|" + " --- |" * width)
    return "\n".join(lines)


# --- Markdown -----------------------------------------------------------------------------------------


def _parse_markdown(data: bytes, meta: dict[str, Any]) -> _Parsed:
    """Parse Markdown into sections (CommonMark + GFM tables via markdown-it-py)."""
    text = _front_matter(_decode(data), meta)
    tokens = MarkdownIt("commonmark").enable("table").parse(text)
    builder = _Builder()
    index = 0
    while index < len(tokens):
        token = tokens[index]
        if token.type == "heading_open":
            builder.heading(int(token.tag[1]), _inline_text(tokens[index + 1]))
            index += 3
            continue
        if token.type in ("table_open", "bullet_list_open", "ordered_list_open", "blockquote_open"):
            end = _matching_close(tokens, index)
            if token.type == "table_open":
                builder.block(_markdown_table(tokens[index:end]), "table")
            elif token.type == "blockquote_open":
                for inner in tokens[index:end]:
                    if inner.type == "inline":
                        builder.paragraph(_inline_text(inner))
            else:
                builder.paragraph(_markdown_list(tokens[index:end]))
            index = end + 1
            continue
        if token.type in ("fence", "code_block"):
            builder.block(token.content, "algorithm")
        elif token.type == "inline":
            builder.paragraph(_inline_text(token))
        elif token.type == "html_block":
            builder.paragraph(_html_fragment_text(token.content))
        index += 1
    builder.flush()
    return builder.first_h1, builder.sections, []


def _matching_close(tokens: list[Token], start: int) -> int:
    """Return the index of the token closing ``tokens[start]`` (same level, nesting -1)."""
    opener = tokens[start]
    for index in range(start + 1, len(tokens)):
        if tokens[index].level == opener.level and tokens[index].nesting == -1:
            return index
    return len(tokens) - 1


def _inline_text(token: Token) -> str:
    """Return the plain text of an inline token (markup dropped, link text and image alt kept)."""
    parts: list[str] = []
    for child in token.children or []:
        if child.type in ("text", "code_inline", "html_inline"):
            parts.append(child.content if child.type != "html_inline" else "")
        elif child.type in ("softbreak", "hardbreak"):
            parts.append(" ")
        elif child.type == "image":
            parts.append(child.content)
    return _words("".join(parts))


def _markdown_table(tokens: list[Token]) -> str:
    """Render a markdown-it table token run as Markdown rows."""
    rows: list[list[str]] = []
    for token in tokens:
        if token.type == "tr_open":
            rows.append([])
        elif token.type == "inline" and rows:
            rows[-1].append(_inline_text(token))
    return _table_rows(rows)


def _markdown_list(tokens: list[Token]) -> str:
    """Render a (possibly nested) list token run as '- item' / '1. item' lines, indented by depth."""
    lines: list[str] = []
    counters: list[int | None] = []
    marker: str | None = None
    for token in tokens:
        if token.type == "bullet_list_open":
            counters.append(None)
        elif token.type == "ordered_list_open":
            counters.append(int(token.attrGet("start") or 1))
        elif token.type in ("bullet_list_close", "ordered_list_close"):
            counters.pop()
        elif token.type == "list_item_open":
            number = counters[-1]
            marker = "- " if number is None else f"{number}. "
            if number is not None:
                counters[-1] = number + 1
        elif token.type in ("inline", "fence", "code_block"):
            indent = "  " * (len(counters) - 1)
            body = _inline_text(token) if token.type == "inline" else token.content.rstrip()
            lines.append(f"{indent}{marker or '  '}{body}")
            marker = None
    return "\n".join(lines)


# --- HTML ---------------------------------------------------------------------------------------------


def _parse_html(data: bytes, meta: dict[str, Any]) -> _Parsed:
    """Parse HTML into sections (lxml.html): headings, paragraphs, lists, tables, <pre> blocks."""
    text = _XML_DECLARATION.sub("", _decode(data))
    if not text.strip():
        return None, [], []
    try:
        root: Any = lxml.html.document_fromstring(text)
    except Exception as exc:  # lxml raises ParserError/ValueError subclasses on unusable documents
        raise _BadInput(f"The HTML cannot be parsed ({exc}); check the file is an HTML page.") from None
    title_element = root.find(".//title")
    title = _words(title_element.text_content()) if title_element is not None else ""
    for element in root.xpath(_DROPPED_XPATH):
        element.drop_tree()
    builder = _Builder()
    buffer: list[str] = []
    _walk_html(root, builder, buffer)
    builder.paragraph(_words("".join(buffer)))
    builder.flush()
    return title or builder.first_h1, builder.sections, []


def _walk_html(element: Any, builder: _Builder, buffer: list[str]) -> None:
    """Add ``element``'s content in document order; ``buffer`` holds the open paragraph's text."""
    tag = element.tag if isinstance(element.tag, str) else ""
    if tag in _HEADINGS or tag in ("table", "pre", "ul", "ol", "br"):
        builder.paragraph(_words("".join(buffer)))
        buffer.clear()
        if tag in _HEADINGS:
            builder.heading(_HEADINGS[tag], _words(element.text_content()))
        elif tag == "table":
            caption = element.find("caption")
            rows = [
                [_words(cell.text_content()) for cell in row if cell.tag in ("td", "th")]
                for row in element.xpath("./tr|./thead/tr|./tbody/tr|./tfoot/tr")
            ]
            table = _table_rows(rows)
            if caption is not None and _words(caption.text_content()) and table:
                table = f"{_words(caption.text_content())}\n{table}"
            builder.block(table, "table")
        elif tag == "pre":
            builder.block(element.text_content(), "algorithm")
        elif tag in ("ul", "ol"):
            builder.paragraph("\n".join(_html_list_lines(element, 0)))
        return
    is_block = tag in _BLOCK_HTML
    if is_block:
        builder.paragraph(_words("".join(buffer)))
        buffer.clear()
    if element.text:
        buffer.append(element.text)
    for child in element:
        _walk_html(child, builder, buffer)
        if child.tail:
            buffer.append(child.tail)
    if is_block:
        builder.paragraph(_words("".join(buffer)))
        buffer.clear()


def _html_fragment_text(markup: str) -> str:
    """Return the visible text of an HTML fragment embedded in Markdown ('' if it cannot be parsed)."""
    try:
        fragment: Any = lxml.html.fragment_fromstring(markup, create_parent="div")
    except Exception:  # lxml raises ParserError/ValueError subclasses on fragments it cannot use
        return ""
    for element in fragment.xpath(_DROPPED_XPATH):
        element.drop_tree()
    return _words(fragment.text_content())


def _html_list_lines(element: Any, depth: int) -> list[str]:
    """Render an HTML <ul>/<ol> as '- item' / '1. item' lines; nested lists are indented."""
    lines: list[str] = []
    number = int(element.get("start") or 1) if element.tag == "ol" and (element.get("start") or "1").isdigit() else 1
    for item in element:
        if not isinstance(item.tag, str) or item.tag != "li":
            continue
        parts: list[str] = [item.text or ""]
        nested: list[str] = []
        for child in item:
            if child.tag in ("ul", "ol"):
                nested.extend(_html_list_lines(child, depth + 1))
            else:
                parts.append(child.text_content())
            parts.append(child.tail or "")
        marker = f"{number}. " if element.tag == "ol" else "- "
        number += 1
        text = _words("".join(parts))
        if text:
            lines.append("  " * depth + marker + text)
        lines.extend(nested)
    return lines


# --- PDF and plain text -------------------------------------------------------------------------------


def _parse_pdf(data: bytes, meta: dict[str, Any]) -> _Parsed:
    """Extract text per page with pypdf; one section per page headed 'Page N'."""
    try:
        reader = pypdf.PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise _BadInput("The PDF is password-protected; save an unprotected copy.")
        pages = list(reader.pages)
        info = reader.metadata
    except _BadInput:
        raise
    except Exception as exc:  # pypdf raises many types (PdfReadError, ValueError, KeyError...) on broken files
        raise _BadInput(f"The PDF cannot be parsed ({type(exc).__name__}: {exc}); re-export or repair it.") from None
    sections: list[Section] = []
    problems: list[tuple[str, str]] = []
    for number, page in enumerate(pages, start=1):
        try:
            text = page.extract_text() or ""
        except Exception as exc:  # one bad page must not lose the others
            problems.append((f"page {number}", f"Text extraction failed ({type(exc).__name__}); check this page."))
            continue
        paragraphs = _text_paragraphs(text)
        if paragraphs:
            sections.append(Section(heading_path=[f"Page {number}"], text="\n\n".join(paragraphs)))
    title = _words(str(info.title)) if info is not None and info.title else None
    if info is not None and info.author and "authors" not in meta:
        meta["authors"] = [_words(str(info.author))]
    return title, sections, problems


def _parse_text(data: bytes, meta: dict[str, Any]) -> _Parsed:
    """Split plain text into paragraphs at blank lines; one untitled section."""
    paragraphs = _text_paragraphs(_front_matter(_decode(data), meta))
    return None, ([Section(heading_path=[], text="\n\n".join(paragraphs))] if paragraphs else []), []


def _text_paragraphs(text: str) -> list[str]:
    """Split text at blank lines; inside a paragraph keep line breaks and collapse other whitespace."""
    paragraphs = []
    for block in _BLANK_LINES.split(text.replace("\r\n", "\n").replace("\r", "\n")):
        lines = [_words(line) for line in block.split("\n")]
        paragraph = "\n".join(line for line in lines if line)
        if paragraph:
            paragraphs.append(paragraph)
    return paragraphs


def _jsonable(value: Any) -> Any:
    """Make a front-matter value JSON-serialisable (dates become ISO strings)."""
    return json.loads(json.dumps(value, default=str))


def _skip(path: Path, record: str | None, reason: str) -> SkippedRecord:
    """Build a SkippedRecord for this file."""
    return SkippedRecord(source=str(path), record=record, reason=reason)
