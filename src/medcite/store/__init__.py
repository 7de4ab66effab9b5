"""The library file: the only package that contains SQL.

``library`` holds the evidence (documents, passages, FTS5, vectors, vocabulary, saved answers) and
opens and migrates the file; other modules here add tables for later features on the same file.
"""

from medcite.store.library import (
    DATABASE_ERRORS,
    HEAD_REVISION,
    MIGRATIONS_DIR,
    BatchCounts,
    FtsRow,
    PassageDetail,
    Store,
)

__all__ = ["DATABASE_ERRORS", "HEAD_REVISION", "MIGRATIONS_DIR", "BatchCounts", "FtsRow", "PassageDetail", "Store"]
