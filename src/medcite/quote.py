"""Quotable units of a passage with the context they depend on, and the verbatim test citations pass.

Statements in context: a passage cut into quotable units, each with the words it depends on.

A guideline passage is Markdown: prose paragraphs, (nested) lists under a lead-in line, tables with a header
row, and decision algorithms drawn with arrows. Quoted alone, a list item loses its lead-in ("... if any of
the following:"), a nested item its parent's label ("Men:"), a table cell its column headers, an algorithm step
the branch it sits on, and a sentence starting "These agents ..." the sentence it points back to. ``split_passage``
returns every quotable unit with that context, outermost first, so a reader sees which words are context and
which are the statement. Every unit text and every context piece is verbatim from the passage: only list
markers, arrows, table pipes at the ends of a row, Markdown bold markers and whitespace are trimmed, so
``normalise_quote(piece)`` occurs in ``normalise_quote(passage)``. Imports ``index`` (the sentence splitter) only.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from medcite.index import split_sentences

__all__ = [
    "ARROWS",
    "is_list_item",
    "is_option_list",
    "spans_verbatim",
    "split_units",
    "is_table_rule",
    "table_cells",
    "MAX_BLOCK_CHARS",
    "Piece",
    "UnitKind",
    "is_anaphoric",
    "normalise_quote",
    "split_passage",
]

UnitKind = Literal["sentence", "item", "list", "row", "table", "step", "algorithm"]

MAX_BLOCK_CHARS = 1400
"""Longer tables, lists or algorithm blocks are not quoted whole (their rows, items and steps still are)."""
MIN_WORDS = 3
"""A unit needs at least this many words to be quoted on its own (a bare label is context, not a statement)."""
MAX_LIST_ITEMS = 8
MAX_CONTEXT_STEPS = 3
"""An algorithm step keeps at most this many of its nearest ancestor steps as context."""
ARROWS = ("-->", "→")

_LIST_MARKER = re.compile(r"^(\s*)(?:[-*+•]|\d{1,2}[.)])\s+")
_ARROW_LEAD = re.compile(r"^\s*(?:-->|→)\s*")
_FENCE = re.compile(r"^\s*(```|~~~)")
_TABLE_RULE = re.compile(r"^\s*\|?[\s:|-]+\|?\s*$")
_FILLER = re.compile(r"^(see (above|below|table|figure|fig\.|section)|as above|as below|\[\d+(,\s*\d+)*\])", re.I)
_ANAPHORIC = re.compile(
    r"^(it|this|these|those|they|such|both|either|neither|however|also|but|thus|therefore|hence|then|in addition"
    r"|in contrast|in this|in these|for these|for this|for both|the choice among these|the same)\b",
    re.I,
)
_BOLD = "**"


def normalise_quote(text: str) -> str:
    """Return text as quotes are compared: Markdown bold markers removed, whitespace runs made one space."""
    return " ".join(text.replace(_BOLD, "").split())


def is_anaphoric(text: str) -> bool:
    """Whether a sentence leans on an earlier one ('These agents ...', 'However, ...', 'It ...')."""
    return bool(_ANAPHORIC.match(text.replace(_BOLD, "").lstrip()))


@dataclass(frozen=True)
class Piece:
    """A quotable unit of one passage and the verbatim context it depends on.

    ``text`` is verbatim (after ``normalise_quote``); lists, tables and algorithms quoted whole keep their line
    breaks. ``context`` holds, outermost first, the lead-in line of its list, its parent items, the header row of
    its table, its ancestor algorithm steps, or the sentence an anaphoric sentence points back to; the passage
    heading is not repeated here (it is the hit's ``section``). ``position`` is the unit's order in the passage.
    """

    text: str
    kind: UnitKind
    context: tuple[str, ...] = ()
    position: int = 0

    @property
    def is_block(self) -> bool:
        """Whether the unit is a whole list, table or algorithm (several lines)."""
        return self.kind in ("list", "table", "algorithm")


def _clean(text: str) -> str:
    """Trim a list marker, a leading arrow, bold markers and whitespace (what a quote may lose)."""
    text = _LIST_MARKER.sub("", text, count=1)
    text = _ARROW_LEAD.sub("", text, count=1)
    return normalise_quote(text)


def _block(lines: list[str]) -> str:
    return "\n".join(line.replace(_BOLD, "").rstrip() for line in lines if line.strip()).strip()


def _is_quotable(text: str) -> bool:
    words = text.split()
    return (
        len(words) >= MIN_WORDS
        and not _FILLER.match(text)
        and not text.rstrip().endswith(":")  # a lead-in or a label: context for what follows, not a statement
        and not (text.startswith("(") and text.rstrip(" .").endswith(")") and len(words) < 8)  # a bare grade label
    )


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _row_cells(line: str) -> str:
    """A table row as its cells joined by ' | ' (outer pipes and bold markers trimmed); verbatim after normalising."""
    return normalise_quote(line.strip().strip("|"))


def is_table_rule(line: str) -> bool:
    """Whether a line is a Markdown table's rule ('|---|:--|')."""
    return bool(_TABLE_RULE.match(line))


def table_cells(line: str) -> list[str]:
    """A table row's cells, trimmed (outer pipes and bold markers removed, as ``_row_cells``)."""
    return [cell.strip() for cell in _row_cells(line).split("|")]


def _table_units(lines: list[str], start: int) -> list[Piece]:
    units: list[Piece] = []
    header = ""
    body = lines
    if len(lines) >= 2 and _TABLE_RULE.match(lines[1]):
        header, body = _row_cells(lines[0]), lines[2:]
    for line in body:
        if _TABLE_RULE.match(line):
            continue
        row = _row_cells(line)
        if len([cell for cell in row.split("|") if cell.strip()]) and len(row.split()) >= 2:
            units.append(Piece(text=row, kind="row", context=(header,) if header else (), position=start))
    whole = _block(lines)
    if len(whole) <= MAX_BLOCK_CHARS:
        units.insert(0, Piece(text=whole, kind="table", position=start))
    return units


def _algorithm_units(lines: list[str], start: int) -> list[Piece]:
    """Steps of an arrow-drawn decision algorithm, each with its nearest ancestor steps as context."""
    units: list[Piece] = []
    whole = _block(lines)
    if len(whole) <= MAX_BLOCK_CHARS:
        units.append(Piece(text=whole, kind="algorithm", position=start))
    stack: list[tuple[int, str]] = []  # (indent, cleaned text) of the open ancestor steps
    position = 0
    while position < len(lines):
        line = lines[position]
        if not line.strip():
            position += 1
            continue
        indent = _indent(line)
        end = position + 1  # continuation lines: deeper, not starting a step of their own
        while end < len(lines) and lines[end].strip() and not _ARROW_LEAD.match(lines[end]):
            if _indent(lines[end]) <= indent:
                break
            end += 1
        text = _clean(" ".join(lines[position:end]))
        while stack and stack[-1][0] >= indent:
            stack.pop()
        context = tuple(step for _, step in stack[-MAX_CONTEXT_STEPS:])
        # A branch question ("Any contraindication to colchicine?") or the algorithm's entry line is context for
        # the steps below it, not a statement of its own.
        if _is_quotable(text) and stack and not text.rstrip().endswith("?"):
            units.append(Piece(text=text, kind="step", context=context, position=start))
        stack.append((indent, text))
        position = end
    return units


def _list_units(lines: list[str], start: int, lead_in: str | None) -> list[Piece]:
    """Items of a (nested) list, each with the lead-in line and its parent items; short sibling groups whole."""
    units: list[Piece] = []
    items: list[tuple[int, int, int]] = []  # (first line, end line, indent) of each item with its continuation
    position = 0
    while position < len(lines):
        line = lines[position]
        if not line.strip():
            position += 1
            continue
        indent = _indent(line)
        end = position + 1
        while (
            end < len(lines)
            and lines[end].strip()
            and not _LIST_MARKER.match(lines[end])
            and not lines[end].lstrip().startswith("|")
            and (_indent(lines[end]) > indent or not _LIST_MARKER.match(line))
        ):
            end += 1
        items.append((position, end, indent))
        position = end
    parents: list[tuple[int, str]] = []
    lead = (lead_in,) if lead_in else ()
    groups: dict[tuple[str, ...], list[int]] = {}
    previous: dict[int, str] = {}  # indent -> the previous sibling item's text
    for index, (first, end, indent) in enumerate(items):
        text = _clean(" ".join(lines[first:end]))
        while parents and parents[-1][0] >= indent:
            parents.pop()
        context = group_context = lead + tuple(parent for _, parent in parents)
        if is_anaphoric(text) and previous.get(indent):  # "These are not first-line agents": the item before
            context = (*context, previous[indent])
        previous = {level: item for level, item in previous.items() if level <= indent}
        previous[indent] = text
        if _is_quotable(text) and _LIST_MARKER.match(lines[first]):
            units.append(Piece(text=text, kind="item", context=context, position=start))
        elif _is_quotable(text):  # a prose line inside the list block (no marker): its sentences
            units.extend(_sentence_units(" ".join(lines[first:end]), start, context))
        groups.setdefault(group_context, []).append(index)
        parents.append((indent, text))
    for context, members in groups.items():  # a short group of sibling items is also quoted whole
        if not 2 <= len(members) <= MAX_LIST_ITEMS:
            continue
        first, last = items[members[0]][0], items[members[-1]][1]
        body = _block(lines[first:last])
        if len(body) <= MAX_BLOCK_CHARS and all(_LIST_MARKER.match(lines[items[m][0]]) for m in members):
            units.append(Piece(text=body, kind="list", context=context, position=start))
    return units


def _sentence_units(paragraph: str, start: int, context: tuple[str, ...] = ()) -> list[Piece]:
    units: list[Piece] = []
    previous: str | None = None
    for begin, stop in split_sentences(paragraph):
        sentence = _clean(paragraph[begin:stop])
        if _is_quotable(sentence):
            extra = (previous,) if previous and is_anaphoric(sentence) else ()
            units.append(Piece(text=sentence, kind="sentence", context=context + extra, position=start))
        if sentence:
            previous = sentence
    return units


def _lead_in(blocks: list[list[str]], index: int) -> str | None:
    """The last sentence of the prose block just before a list, when it ends with ':' (else None)."""
    if index == 0:
        return None
    before = blocks[index - 1]
    line = " ".join(part.strip() for part in before).replace(_BOLD, "")  # "**Men:**" leads in as "Men:"
    if _LIST_MARKER.match(before[0]) or before[0].lstrip().startswith("|") or not line.rstrip().endswith(":"):
        return None
    spans = split_sentences(line)
    return _clean(line[spans[-1][0] : spans[-1][1]]) if spans else None


def _blocks(text: str) -> list[list[str]]:
    """Lines grouped into blocks: blank lines separate them; fences, tables and lists start their own."""
    blocks: list[list[str]] = []
    lines = text.splitlines()
    position = 0
    while position < len(lines):
        line = lines[position]
        if not line.strip():
            position += 1
            continue
        if _FENCE.match(line):
            end = position + 1
            while end < len(lines) and not _FENCE.match(lines[end]):
                end += 1
            blocks.append(lines[position + 1 : end])
            position = end + 1
            continue
        end = position + 1
        is_table = line.lstrip().startswith("|")
        is_list = bool(_LIST_MARKER.match(line))
        while end < len(lines) and lines[end].strip():
            nxt = lines[end]
            if is_table != nxt.lstrip().startswith("|"):
                break
            if not is_list and not is_table and _LIST_MARKER.match(nxt):
                break  # a list right under a prose line (no blank line between): a block of its own
            end += 1
        blocks.append(lines[position:end])
        position = end
    return blocks


def split_passage(text: str) -> list[Piece]:
    """Split a passage into quotable units with their context, in passage order.

    Returns:
        Sentences of prose (an anaphoric sentence with the sentence before it as context), list items (with the
        list's lead-in line and parent items), short lists of sibling items whole, table rows (with the header row)
        and small tables whole, algorithm steps (with their nearest ancestor steps) and small algorithms whole.
        Every ``text`` and context piece is verbatim after ``normalise_quote``.
    """
    units: list[Piece] = []
    blocks = _blocks(text)
    previous_sentence: str | None = None
    for index, block in enumerate(blocks):
        start = len(units)
        first = block[0]
        if first.lstrip().startswith("|"):
            units.extend(_table_units(block, start))
        elif any(arrow in line for line in block for arrow in ARROWS) and not _LIST_MARKER.match(first):
            units.extend(_algorithm_units(block, start))
        elif _LIST_MARKER.match(first):
            units.extend(_list_units(block, start, _lead_in(blocks, index)))
        else:
            paragraph = " ".join(line.strip().lstrip(">").strip() for line in block)
            sentences = _sentence_units(paragraph, start)
            if sentences and previous_sentence and is_anaphoric(sentences[0].text) and not sentences[0].context:
                sentences[0] = Piece(
                    text=sentences[0].text, kind="sentence", context=(previous_sentence,), position=start
                )
            units.extend(sentences)
            spans = split_sentences(paragraph)
            previous_sentence = _clean(paragraph[spans[-1][0] : spans[-1][1]]) if spans else None
            continue
        previous_sentence = None
    return [
        Piece(text=unit.text, kind=unit.kind, context=tuple(c for c in unit.context if c), position=order)
        for order, unit in enumerate(units)
    ]


# --- Earlier interface: units without context (kept while the old composer is replaced) ---


def _is_quotable_sentence(text: str) -> bool:
    words = text.split()
    return (
        len(words) >= 4
        and not _FILLER.match(text)
        and not text.rstrip().endswith(":")
        and not (text.startswith("(") and text.rstrip(" .").endswith(")"))  # a bare grade label
    )


def _line_lead_in(lines: list[str], position: int) -> str | None:
    """The last sentence of the prose line just before a list, when it ends with ':' (else None)."""
    before = position - 1
    while before >= 0 and not lines[before].strip():
        before -= 1
    if before < 0 or _LIST_MARKER.match(lines[before]) or not lines[before].rstrip().endswith(":"):
        return None
    line = lines[before]
    spans = split_sentences(line)
    return line[spans[-1][0] : spans[-1][1]] if spans else None


def split_units(text: str) -> list[tuple[str, bool]]:
    """Split a passage into quotable units: sentences, list items, and whole tables or fenced blocks.

    Returns:
        ``(text, is_block)`` pairs in passage order. Unit text is trimmed only of list markers, Markdown bold
        markers and whitespace, so ``normalise_quote(unit)`` occurs in ``normalise_quote(text)``; blocks keep
        their line breaks.
    """
    units: list[tuple[str, bool]] = []
    lines = text.splitlines()
    position = 0
    while position < len(lines):
        line = lines[position]
        if not line.strip():
            position += 1
            continue
        if _FENCE.match(line):  # a fenced algorithm block: quote what is inside the fences, whole
            end = position + 1
            while end < len(lines) and not _FENCE.match(lines[end]):
                end += 1
            body = _block(lines[position + 1 : end])
            if body and len(body) <= MAX_BLOCK_CHARS:
                units.append((body, True))
            position = end + 1
            continue
        if line.lstrip().startswith("|"):  # a Markdown table, whole
            end = position
            while end < len(lines) and lines[end].lstrip().startswith("|"):
                end += 1
            body = _block(lines[position:end])
            if len(body) <= MAX_BLOCK_CHARS:
                units.append((body, True))
            position = end
            continue
        if _LIST_MARKER.match(line) and (position == 0 or not _LIST_MARKER.match(lines[position - 1])):
            end = position  # a short list of options ("A; OR", "B") is also quoted whole
            while (
                end < len(lines) and lines[end].strip() and (_LIST_MARKER.match(lines[end]) or lines[end][:1].isspace())
            ):
                end += 1
            group = lines[position:end]
            items = [g for g in group if _LIST_MARKER.match(g)]
            if 2 <= len(items) == len(group) <= 6 and all(len(g) <= 160 for g in group):
                lead = _line_lead_in(lines, position)  # "Four drug classes are recommended ...:" belongs with its list
                units.append((_block([lead, *group] if lead else group), True))
        if _LIST_MARKER.match(line):  # a list item with its continuation lines (not its nested items)
            indent = len(line) - len(line.lstrip())
            end = position + 1
            while (
                end < len(lines)
                and lines[end].strip()
                and not _LIST_MARKER.match(lines[end])
                and not lines[end].lstrip().startswith("|")
                and len(lines[end]) - len(lines[end].lstrip()) > indent
            ):
                end += 1
            item = _clean(" ".join(lines[position:end]))
            if _is_quotable_sentence(item):
                units.append((item, False))
            position = end
            continue
        end = position + 1
        while end < len(lines) and lines[end].strip():
            end += 1
        if any(
            arrow in candidate for candidate in lines[position:end] for arrow in ARROWS
        ):  # an algorithm (flow) block, whole
            body = _block(lines[position:end])
            if len(body) <= MAX_BLOCK_CHARS:
                units.append((body, True))
            position = end
            continue
        end = position + 1  # a prose paragraph: its sentences
        while (
            end < len(lines)
            and lines[end].strip()
            and not _LIST_MARKER.match(lines[end])
            and not lines[end].lstrip().startswith("|")
            and not _FENCE.match(lines[end])
        ):
            end += 1
        paragraph = " ".join(lines[position:end])
        for start, stop in split_sentences(paragraph):
            sentence = _clean(paragraph[start:stop])
            if _is_quotable_sentence(sentence):
                units.append((sentence, False))
        position = end
    return units


def is_list_item(text: str) -> bool:
    """Whether a line starts with a list marker ('- ', '* ', '1. ', '2) ')."""
    return bool(_LIST_MARKER.match(text))


def is_option_list(text: str) -> bool:
    """Whether a block is a short list (with an optional lead-in line), not a table or an algorithm."""
    rows = text.splitlines()
    return all(_LIST_MARKER.match(row) for row in rows[1:]) and not any(
        row.lstrip().startswith("|") or any(arrow in row for arrow in ARROWS) for row in rows
    )


def spans_verbatim(text: str, passages: Sequence[str], *, max_pieces: int) -> bool:
    """Whether ``text`` is a run of at most ``max_pieces`` word-bounded pieces, each verbatim in a passage."""
    words = normalise_quote(text).split(" ")
    position = 0
    pieces = 0
    while position < len(words):
        low, high = position, len(words)  # the longest prefix found in some passage (containment is monotonic)
        while low < high:
            middle = (low + high + 1) // 2
            piece = " ".join(words[position:middle])
            if any(piece in passage for passage in passages):
                low = middle
            else:
                high = middle - 1
        if low == position:
            return False
        position = low
        pieces += 1
    return pieces <= max_pieces
