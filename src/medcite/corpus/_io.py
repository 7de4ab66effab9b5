"""File helpers shared by the ingest adapters: opening (plain or gzip), progress, text decoding.

Bytes read from the underlying file are reported to the callback installed with
``report_progress_to`` so the CLI can draw a progress bar without adapters
knowing about it. Imports nothing from medcite but ``models``.
"""

from __future__ import annotations

import contextlib
import gzip
import io
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from pathlib import Path
from typing import BinaryIO

import charset_normalizer

from medcite.models import SkippedRecord

__all__ = ["decode_text", "open_bytes", "read_or_skip", "report_progress_to"]

_on_bytes: ContextVar[Callable[[int], None] | None] = ContextVar("medcite_on_bytes", default=None)
GZIP_MAGIC = b"\x1f\x8b"


@contextlib.contextmanager
def report_progress_to(callback: Callable[[int], None] | None) -> Iterator[None]:
    """Within the block, send the number of bytes each adapter read from disk to ``callback``."""
    token = _on_bytes.set(callback)
    try:
        yield
    finally:
        _on_bytes.reset(token)


class _CountingReader(io.RawIOBase):
    """A read-only file wrapper that reports bytes read (compressed bytes for .gz files)."""

    def __init__(self, raw: BinaryIO, callback: Callable[[int], None] | None) -> None:
        self._raw = raw
        self._callback = callback

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self._raw.read(len(buffer))
        n = len(data)
        buffer[:n] = data
        if self._callback is not None and n:
            self._callback(n)
        return n

    def close(self) -> None:
        self._raw.close()
        super().close()


def open_bytes(path: Path) -> BinaryIO:
    """Open a file for binary reading, transparently gunzipping ``.gz`` content (by magic bytes).

    Reading reports progress to the callback set with ``report_progress_to``.
    A truncated gzip file raises ``EOFError`` when the break is reached.

    Raises:
        OSError: The file cannot be opened.
    """
    raw = open(path, "rb")  # noqa: SIM115 - returned to the caller, who closes it
    magic = raw.read(2)
    raw.seek(0)
    reader = io.BufferedReader(_CountingReader(raw, _on_bytes.get()), buffer_size=1 << 16)
    if magic == GZIP_MAGIC:
        return gzip.GzipFile(fileobj=reader, mode="rb")  # type: ignore[return-value]
    return reader  # type: ignore[return-value]


def decode_text(data: bytes) -> tuple[str, str]:
    """Decode bytes of unknown encoding; return ``(text, encoding)``.

    UTF-8 (with or without BOM) is tried first; otherwise charset-normalizer
    guesses. Undecodable input raises ``UnicodeDecodeError``.
    """
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8"), "utf-8-sig"
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        best = charset_normalizer.from_bytes(data).best()
        if best is None or best.encoding is None:
            raise
        return str(best), best.encoding


def read_or_skip(path: Path, *, empty_advice: str) -> bytes | SkippedRecord:
    """Read a whole (possibly gzipped) file, or describe why it cannot be used.

    Args:
        path: The input file.
        empty_advice: What the user should do when the file is empty, e.g.
            "export the records from PubMed again".

    Returns:
        The file's bytes, or a whole-file ``SkippedRecord`` for an unreadable,
        truncated or empty file.
    """
    source = str(path)
    try:
        with open_bytes(path) as handle:
            data = handle.read()
    except (OSError, EOFError) as error:
        return SkippedRecord(source=source, reason=f"The file could not be read ({error}); check that it exists.")
    if not data.strip():
        return SkippedRecord(source=source, reason=f"The file is empty; {empty_advice}.")
    return data
