"""Quotable units of a passage, and the verbatim test every citation must pass.

A passage is cut into sentences, list items, short option lists (with their lead-in line) and whole
tables or algorithm blocks; trimming removes only list markers, Markdown bold markers and whitespace, so
``normalise_quote(unit)`` always occurs in ``normalise_quote(passage)``. Imports only ``index`` (the
sentence splitter).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from medcite.index import split_sentences

__all__ = ["ARROWS", "is_list_item", "is_option_list", "normalise_quote", "spans_verbatim", "split_units"]

MAX_BLOCK_CHARS = 1400
"""Longer tables or algorithm blocks are not quoted whole."""
MIN_WORDS = 4
MAX_LIST_ITEMS = 6
MAX_LIST_ITEM_CHARS = 160
"""A list of at most this many items of at most this many characters is also a candidate as a whole."""
_LIST_MARKER = re.compile(r"^\s*(?:[-*+•]|\d{1,2}[.)])\s+")
ARROWS = ("-->", "→")
_FENCE = re.compile(r"^\s*(```|~~~)")
_FILLER = re.compile(r"^(see (above|below|table|figure|fig\.|section)|as above|as below|\[\d+(,\s*\d+)*\])", re.I)


def normalise_quote(text: str) -> str:
    """Return text as quotes are compared: Markdown bold markers removed, whitespace runs made one space."""
    return " ".join(text.replace("**", "").split())


def _clean(text: str) -> str:
    return normalise_quote(_LIST_MARKER.sub("", text, count=1))


def _block(lines: list[str]) -> str:
    return "\n".join(line.replace("**", "").rstrip() for line in lines if line.strip()).strip()


def _is_quotable(text: str) -> bool:
    words = text.split()
    return (
        len(words) >= MIN_WORDS
        and not _FILLER.match(text)
        and not text.rstrip().endswith(":")
        and not (text.startswith("(") and text.rstrip(" .").endswith(")"))  # a bare grade label
    )


def _lead_in(lines: list[str], position: int) -> str | None:
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
            if 2 <= len(items) == len(group) <= MAX_LIST_ITEMS and all(len(g) <= MAX_LIST_ITEM_CHARS for g in group):
                lead = _lead_in(lines, position)  # "Four drug classes are recommended ...:" belongs with its list
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
            if _is_quotable(item):
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
            if _is_quotable(sentence):
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
