"""Answer -> text: Markdown, JSON and a standalone HTML page, each a pure function of an ``Answer``.

Imports only ``models`` (and markdown-it-py, which turns quoted tables into HTML with raw HTML
disabled); never ``answer``, ``retrieve``, ``web`` or ``cli``.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence

from markdown_it import MarkdownIt

from medcite.models import EMERGENCY_SECTION, Answer, AnswerSection, Reference, Statement

__all__ = [
    "context_html",
    "passage_html",
    "plain_text",
    "render_html",
    "render_json",
    "render_markdown",
    "statement_html",
]

_LOCATOR_CHARS = 90
_QUOTED_CHARS = 400
"""A reference shows at most this many characters of the cited statement (a long list is cut)."""
REMOVED_NOTE = "removed from the library since; the passage is as it was quoted"
_LIST_ITEM = re.compile(r"^\s*(?:[-*+•]|\d{1,2}[.)])\s+")


def _marks(citations: list[int]) -> str:
    return f" [{', '.join(str(n) for n in citations)}]" if citations else ""


def _is_block(text: str) -> bool:
    return "\n" in text


def _inline(text: str) -> str:
    """Escape a leading character Markdown would read as a quote, heading or list marker ('> 1 prior flare')."""
    return "\\" + text if text[:1] in ">#+-*|" or re.match(r"\d+[.)]\s", text) else text


def _context_markdown(statement: Statement) -> str:
    """The statement's context as an italic lead ('*Colchicine for Acute Flare › Regimen:* '), or ''."""
    if not statement.context:
        return ""
    lead = " › ".join(" ".join(piece.replace("*", "").split()).rstrip(":") for piece in statement.context)
    return f"*{lead}:* "


def _row_markdown(statement: Statement) -> str | None:
    """A table row quoted under its header row, as 'Header: cell; ...' (None when it is not such a row)."""
    if not statement.context or " | " not in statement.text or _is_block(statement.text):
        return None
    header = statement.context[-1].split(" | ")
    cells = statement.text.split(" | ")
    if len(header) != len(cells) or len(cells) < 2:
        return None
    lead = Statement(text=statement.text, context=statement.context[:-1])
    pairs = "; ".join(
        f"{h.strip()}: {c.strip()}" if h.strip() else c.strip() for h, c in zip(header, cells, strict=True)
    )
    return f"- {_context_markdown(lead)}{_inline(pairs) if not lead.context else pairs}{_marks(statement.citations)}"


def _markdown_statement(statement: Statement) -> str:
    row = _row_markdown(statement)
    if row is not None:
        return row
    if not _is_block(statement.text):
        context = _context_markdown(statement)
        text = statement.text if context else _inline(statement.text)
        return f"- {context}{text}{_marks(statement.citations)}"
    if statement.context:
        lead = _context_markdown(statement).strip()
        body = "\n".join(f"  {line}" for line in statement.text.splitlines())
        if statement.text.lstrip().startswith("|") or not _LIST_ITEM.match(statement.text):
            fence = "" if statement.text.lstrip().startswith("|") else "  ```text\n"
            end = "" if not fence else "\n  ```"
            return f"- {lead}{_marks(statement.citations)}\n\n{fence}{body}{end}"
        return f"- {lead}{_marks(statement.citations)}\n{body}"
    body = statement.text
    if body.lstrip().startswith("|"):  # a table: Markdown renders it as one
        return f"-{_marks(statement.citations)}\n\n" + "\n".join(f"  {line}" for line in body.splitlines())
    if _LIST_ITEM.match(body):  # a list without a lead-in: each top-level item carries the citation
        return _cite_items(body, _marks(statement.citations))
    if all(line.lstrip()[:1] in "-*+0123456789" for line in body.splitlines()[1:]):  # a lead-in and its options
        first, *rest = body.splitlines()
        return f"- {_inline(first)}{_marks(statement.citations)}\n" + "\n".join(f"  {line}" for line in rest)
    # an algorithm (flow) block: keep its layout
    return (
        f"-{_marks(statement.citations)}\n\n  ```text\n"
        + "\n".join(f"  {line}" for line in body.splitlines())
        + "\n  ```"
    )


def _cite_items(body: str, marks: str) -> str:
    """A list's lines with ``marks`` after each top-level item (its nested lines included).

    So no bullet a reader sees looks uncited (a tester read the first items of a cited list as uncited).
    """
    lines = body.splitlines()
    starts = [i for i, line in enumerate(lines) if _LIST_ITEM.match(line) and not line[:1].isspace()]
    ends = {later - 1 for later in starts[1:]} | {len(lines) - 1}
    return "\n".join(line + marks if i in ends else line for i, line in enumerate(lines))


def _reference_line(reference: Reference, quoted: Sequence[str] = (), *, full: bool = False) -> str:
    """One reference of the list: its source, and the words of its passage the answer cites.

    ``quoted``: the texts of the answer's statements that cite it (each verbatim in the passage). Shown is the
    first of them (cut at ``_QUOTED_CHARS``), so a reader can check the statement without opening the passage;
    the passage's opening (``_LOCATOR_CHARS``) when none; the whole passage with ``full``.
    """
    parts = [f"{reference.n}. **{reference.type}.** {reference.title_sentence}"]
    if reference.removed:
        parts.append(f"({REMOVED_NOTE})")
    where = ", ".join(str(part) for part in (reference.source, reference.year) if part)
    if where:
        parts.append(f"{where}.")
    if reference.doi:
        parts.append(f"DOI: [{reference.doi}](https://doi.org/{reference.doi}).")
    if reference.pmid:
        parts.append(f"PMID: [{reference.pmid}](https://pubmed.ncbi.nlm.nih.gov/{reference.pmid}/).")
    passage = " ".join(reference.passage.replace("**", "").split())
    held = [" ".join(text.replace("**", "").split()) for text in quoted]
    held = [text for text in held if text and text in passage]
    snippet, limit = (passage, None) if full else (held[0], _QUOTED_CHARS) if held else (passage, _LOCATOR_CHARS)
    if limit is not None and len(snippet) > limit:
        snippet = snippet[:limit].rsplit(" ", 1)[0] + " …"
    if held and not full and not passage.startswith(snippet.removesuffix(" …")):
        snippet = "… " + snippet
    parts.append(f"Passage `{reference.passage_id}`: “{snippet}”")
    return " ".join(parts)


def _notes(answer: Answer) -> list[str]:
    """The notice and, for an LLM-composed answer, how its statements were verified (plain sentences)."""
    notes = [answer.notice] if answer.notice else []
    check = answer.verification
    if answer.composer == "llm" and check is not None:
        precision = check.estimated_citation_precision
        notes.append(
            f"Written by the language model {check.model} from the cited passages; {check.n_statements_kept} "
            f"statements were verified against them and {check.n_statements_dropped} unsupported ones removed"
            + (f" (estimated citation precision {precision:.0%})." if precision is not None else ".")
        )
    searched = answer.pubmed_search
    if searched is not None:
        tiers = ", ".join(f"{n} {label.lower()}" for label, n in searched.by_evidence.items() if n)
        notes.append(
            f"Searched PubMed on {searched.searched_on} for {searched.query}"
            + (f" (PubMed read it as {searched.translation})" if searched.translation else "")
            + f", {searched.relaxed}: {searched.found} records found, {len(searched.used)} added to the library"
            + (f" ({tiers})" if tiers else "")
            + ". These are research abstracts, not guidelines."
        )
    return notes


def _emergency_first(answer: Answer) -> tuple[list[AnswerSection], list[AnswerSection]]:
    """Split the sections into the emergency advice (shown first, before the bottom line) and the rest."""
    emergency = [section for section in answer.sections if section.title == EMERGENCY_SECTION]
    return emergency, [section for section in answer.sections if section.title != EMERGENCY_SECTION]


GUIDANCE_TYPES = ("Guideline", "Protocol", "Consumer health")
"""Reference types that are guidance, not research: a bottom line quoted from them carries no study label."""


def bottom_line_label(answer: Answer) -> str:
    """The bottom line's heading: 'Bottom line', labelled by its first source's study type and year.

    The label is given when that source is research ('Bottom line (RCT, 2015)', 'Bottom line (Systematic review,
    2023)'), not guidance; 'Not enough evidence' when the answer abstains.
    """
    if answer.abstained:
        return "Not enough evidence"
    citations = answer.bottom_line.citations
    if not citations or citations[0] > len(answer.references):
        return "Bottom line"
    source = answer.references[citations[0] - 1]
    if source.type in GUIDANCE_TYPES:
        return "Bottom line"
    return f"Bottom line ({source.type}, {source.year})" if source.year else f"Bottom line ({source.type})"


def render_markdown(answer: Answer, *, full_passages: bool = False) -> str:
    """Return the answer as Markdown: title, bottom line, sections, references, disclaimer.

    Each reference shows the statement of the answer its passage holds (``_reference_line``); ``full_passages``
    shows every cited passage whole.
    """
    lines = [f"# {answer.question}", ""]
    lines += [f"> **Note:** {text}" for text in _notes(answer)] + ([""] if _notes(answer) else [])
    emergency, sections = _emergency_first(answer)
    for section in emergency:  # emergency advice comes before anything else, the bottom line included
        lines += [f"## {section.title}", ""]
        lines += [_markdown_statement(statement) for statement in section.statements]
        lines.append("")
    label = bottom_line_label(answer)
    bottom = answer.bottom_line.text
    statements = answer.bottom_line.statements
    if len(statements) > 1 or (statements and (statements[0].context or "\n" in statements[0].text)):
        lines += [f"**{label}:**", ""]
        lines += [_markdown_statement(statement) for statement in statements]
        lines.append("")
    elif "\n" in bottom:
        lines += [f"**{label}**{_marks(answer.bottom_line.citations)}", "", bottom, ""]
    else:
        lines += [f"**{label}:** {bottom}{_marks(answer.bottom_line.citations)}", ""]
    for section in sections:
        lines += [f"## {section.title}", ""]
        lines += [_markdown_statement(statement) for statement in section.statements]
        lines.append("")
    if answer.references:
        lines += ["## Closest sources found" if answer.abstained else "## References", ""]
        quoted: dict[int, list[str]] = {}
        everything = [*answer.bottom_line.statements, *(s for section in answer.sections for s in section.statements)]
        for statement in everything:
            for n in statement.citations:
                quoted.setdefault(n, []).append(statement.text)
        lines += [
            _reference_line(reference, quoted.get(reference.n, ()), full=full_passages)
            for reference in answer.references
        ]
        lines.append("")
    if answer.reading_grade is not None:
        lines += [f"Reading grade (Flesch-Kincaid): {answer.reading_grade:g}", ""]
    lines += [f"> {answer.disclaimer}", ""]
    return "\n".join(lines)


def render_json(answer: Answer) -> str:
    """Return the answer as JSON (the documented contract: ``Answer``'s fields, indented by 2)."""
    return answer.model_dump_json(indent=2)


_MARKDOWN = MarkdownIt("js-default")  # raw HTML in quoted text is escaped, never passed through


def _html_citations(citations: list[int]) -> str:
    if not citations:
        return ""
    links = ", ".join(f'<a href="#ref-{n}" aria-label="reference {n}">{n}</a>' for n in citations)
    return f' <span class="cite">[{links}]</span>'


def statement_html(text: str) -> str:
    """Return a statement's text as safe HTML: escaped prose, a list or table as HTML, an algorithm as <pre>.

    Raw HTML in the text is escaped (markdown-it ``js-default`` preset), never passed through.
    """
    if not _is_block(text):
        return html.escape(text)
    if text.lstrip().startswith("|") or all(line.lstrip()[:1] in "-*+0123456789" for line in text.splitlines()[1:]):
        return _MARKDOWN.render(text)
    return f"<pre>{html.escape(text)}</pre>"


def passage_html(text: str) -> str:
    """Return a stored passage (Markdown: bold, lists, tables) as safe HTML; raw HTML in it is escaped."""
    return _MARKDOWN.render(text)


def plain_text(text: str) -> str:
    """Return text without Markdown bold markers and with whitespace runs collapsed (for inline previews)."""
    return " ".join(text.replace("**", "").split())


def context_html(context: list[str]) -> str:
    """A statement's context as a muted lead ('Heading › lead-in: '), escaped; '' when there is none."""
    if not context:
        return ""
    lead = " › ".join(html.escape(" ".join(piece.replace("*", "").split()).rstrip(":")) for piece in context)
    return f'<span class="context">{lead}:</span> '


def _html_statement(statement: Statement) -> str:
    return (
        f"<li>{context_html(statement.context)}{statement_html(statement.text)}"
        f"{_html_citations(statement.citations)}</li>"
    )


def _html_bottom_line(answer: Answer) -> str:
    label = html.escape(bottom_line_label(answer))
    statements = answer.bottom_line.statements
    if statements and not answer.abstained:
        items = "".join(_html_statement(statement) for statement in statements)
        return f"<div><strong>{label}:</strong><ul>{items}</ul></div>"
    text = answer.bottom_line.text
    body = _MARKDOWN.render(text) if "\n" in text else html.escape(text)
    return f"<div><strong>{label}:</strong> {body}{_html_citations(answer.bottom_line.citations)}</div>"


def render_html(answer: Answer) -> str:
    """Return the answer as a standalone, accessible HTML page (all text escaped; passages in full)."""
    e = html.escape
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{e(answer.question)} · medcite</title>",
        "<style>body{font-family:system-ui,sans-serif;max-width:48rem;margin:2rem auto;padding:0 1rem;"
        "line-height:1.5}.bottom{border-left:4px solid #2a6;padding:.5rem 1rem;background:#f3faf5}"
        "table{border-collapse:collapse}td,th{border:1px solid #999;padding:.2rem .4rem}"
        "blockquote{color:#333;background:#f6f6f6;padding:.5rem 1rem;margin:.3rem 0}"
        ".cite a{text-decoration:none}.context{color:#555;font-style:italic}"
        "footer{margin-top:2rem;font-size:.9rem;color:#444}</style>",
        "</head>",
        "<body>",
        "<main>",
        f"<h1>{e(answer.question)}</h1>",
        *(f'<p class="notice" role="note">{e(text)}</p>' for text in _notes(answer)),
        *(
            f'<section class="emergency" role="alert"><h2>{e(section.title)}</h2><ul>'
            + "".join(_html_statement(statement) for statement in section.statements)
            + "</ul></section>"
            for section in _emergency_first(answer)[0]
        ),
        f'<section class="bottom" aria-label="{"Not enough evidence" if answer.abstained else "Bottom line"}">',
        _html_bottom_line(answer),
        "</section>",
    ]
    for section in _emergency_first(answer)[1]:
        parts += [f"<section><h2>{e(section.title)}</h2>", "<ul>"]
        parts += [_html_statement(statement) for statement in section.statements]
        parts += ["</ul>", "</section>"]
    if answer.references:
        parts += [f"<section><h2>{'Closest sources found' if answer.abstained else 'References'}</h2>", "<ol>"]
        for reference in answer.references:
            where = ", ".join(e(str(part)) for part in (reference.source, reference.year) if part)
            link = f' <a href="{e(reference.url)}">{e(reference.url)}</a>' if reference.url else ""
            removed = f"({REMOVED_NOTE}) " if reference.removed else ""
            parts.append(
                f'<li id="ref-{reference.n}"><strong>{e(reference.type)}.</strong> '
                f"{e(reference.title_sentence)} {removed}"
                f"{where}.{link} <code>{e(reference.passage_id)}</code>"
                f"<blockquote>{passage_html(reference.passage)}</blockquote></li>"
            )
        parts += ["</ol>", "</section>"]
    if answer.reading_grade is not None:
        parts.append(f"<p>Reading grade (Flesch-Kincaid): {answer.reading_grade:g}</p>")
    follow = f" · follows up <code>{e(answer.follow_up_of)}</code>" if answer.follow_up_of else ""
    parts += [
        "</main>",
        f"<footer><p>{e(answer.disclaimer)}</p><p>Answer id: <code>{e(answer.id)}</code>{follow}</p></footer>",
        "</body>",
        "</html>",
        "",
    ]
    return "\n".join(parts)
