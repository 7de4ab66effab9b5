"""Copy a whole library between SQLite and PostgreSQL (either way), resumably, and verify the copy.

Every table is copied in primary-key order, one transaction per batch; a batch inserts only the rows the
destination lacks, so an interrupted copy run again carries on where it stopped and a finished one changes nothing.
The destination's full-text index is built from the copied passages in the same transaction; on PostgreSQL the
identity counters (accounts, audit log, vocabulary order) are moved past the copied ids, so later rows get new ones.
At the end every table is compared: row counts and a SHA-256 over its rows in key order (``verify_copy``).
Imports ``store`` only.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from medcite.errors import StoreError
from medcite.store.library import Store

__all__ = ["COPIED_TABLES", "TableCheck", "copy_library", "verify_copy"]


@dataclass(frozen=True)
class _Table:
    name: str
    key: tuple[str, ...]
    columns: tuple[str, ...]
    order: tuple[str, ...] = ()
    """Columns to copy in (default the key), when the order itself matters: vocabulary terms keep theirs."""
    deferred: tuple[str, ...] = ()
    """Columns naming another row of the same table (a follow-up's earlier answer): written as NULL first and set
    once the whole table is there, since the row they name may come later in key order."""

    @property
    def read(self) -> tuple[str, ...]:
        """The columns read: the copied ones, then any order column not among them."""
        return self.columns + tuple(c for c in self.order if c not in self.columns)


COPIED_TABLES: tuple[_Table, ...] = (
    _Table(
        "documents",
        ("doc_id",),
        (
            "doc_id",
            "kind",
            "external_id",
            "title",
            "organization",
            "journal",
            "year",
            "evidence_type",
            "doi",
            "pmid",
            "pmcid",
            "is_retracted",
            "content_hash",
            "n_passages",
            "data",
            "ingested_at",
        ),
    ),
    _Table(
        "passages",
        ("rowid",),
        ("rowid", "passage_id", "doc_id", "n", "section", "kind", "text", "char_start", "char_end"),
    ),
    _Table("retractions", ("pmid", "notice"), ("pmid", "notice")),
    _Table("passage_vectors", ("model", "passage_rowid"), ("model", "passage_rowid", "vector")),
    _Table("vocabulary", ("concept", "term"), ("concept", "term", "source"), order=("rowid",)),
    _Table(
        "answers",
        ("answer_id",),
        ("answer_id", "question", "audience", "follow_up_of", "data", "created_at"),
        deferred=("follow_up_of",),
    ),
    _Table("users", ("user_id",), ("user_id", "username", "role", "password_hash", "created_at")),
    _Table("api_tokens", ("token_sha256",), ("token_sha256", "user_id", "created_at")),
    _Table(
        "articles",
        ("article_id",),
        (
            "article_id",
            "slug",
            "question",
            "audience",
            "status",
            "revision",
            "thread_id",
            "follow_up_of",
            "redactions",
            "claimed_by",
            "approved_by",
            "approved_at",
            "created_at",
            "updated_at",
        ),
        deferred=("follow_up_of",),
    ),
    _Table(
        "article_revisions",
        ("article_id", "revision"),
        ("article_id", "revision", "answers", "author", "note", "created_at"),
    ),
    _Table(
        "audit_log",
        ("entry_id",),
        ("entry_id", "at", "actor", "article_id", "action", "from_status", "to_status", "revision", "comment"),
    ),
    _Table("web_secrets", ("name",), ("name", "value")),
    _Table("web_sessions", ("session_sha256",), ("session_sha256", "user_id", "created_at")),
)
"""The tables a copy carries, in an order that keeps every foreign key satisfied, with their keys and columns.
Not copied: the full-text index (rebuilt from the passages) and the schema version (each side has its own)."""

_IDENTITIES = (("users", "user_id"), ("audit_log", "entry_id"), ("vocabulary", "rowid"))
COPY_BATCH_ROWS = 2000
"""Rows per copy transaction (a resumed copy repeats at most one batch's reads)."""


@dataclass(frozen=True)
class TableCheck:
    """One table compared after a copy: row counts and SHA-256 digests of its rows on each side."""

    table: str
    source_rows: int
    destination_rows: int
    source_sha256: str
    destination_sha256: str

    @property
    def ok(self) -> bool:
        """Whether the destination holds exactly the source's rows."""
        return self.source_rows == self.destination_rows and self.source_sha256 == self.destination_sha256


def copy_library(
    source: Store,
    destination: Store,
    *,
    batch: int = COPY_BATCH_ROWS,
    on_progress: Callable[[str, int, int], None] | None = None,
) -> dict[str, int]:
    """Copy every row the destination lacks from ``source``, table by table; return rows copied per table.

    ``on_progress(table, done, total)`` is called after each batch. The destination takes the source's
    ``library_version``, so the same question gets the same answer id on both.

    Raises:
        StoreError: Source and destination are the same library; the destination holds documents the source
            does not (another library: nothing is written); or a write failed (the batches committed before it
            stay; run the copy again to carry on).
    """
    if str(source.path) == str(destination.path):
        raise StoreError(f"The source and destination of a copy are the same library ({source.path}).")
    _refuse_other_library(source, destination)
    copied: dict[str, int] = {}
    for table in COPIED_TABLES:
        total = _count(source, table.name)
        done = 0
        copied[table.name] = 0
        for rows in _batches(source, table, batch):
            copied[table.name] += _insert_missing(destination, table, rows)
            done += len(rows)
            if on_progress is not None:
                on_progress(table.name, done, total)
        if on_progress is not None and total == 0:
            on_progress(table.name, 0, 0)
        if table.deferred:
            _restore_deferred(source, destination, table, batch)
    with source.reading() as conn:
        version = int(conn.exec_driver_sql("SELECT value FROM meta WHERE key = 'library_version'").scalar() or 0)
    with destination.writing() as conn:
        conn.exec_driver_sql(
            "UPDATE meta SET value = ? WHERE key = 'library_version' AND CAST(value AS INTEGER) <= ?",
            (str(version), version),
        )
        if destination.dialect == "postgresql":
            for name, column in _IDENTITIES:
                conn.exec_driver_sql(
                    f"SELECT setval(pg_get_serial_sequence('{name}', '{column}'), "
                    f"coalesce((SELECT max({column}) FROM {name}), 0) + 1, false)"
                )
    return copied


def _refuse_other_library(source: Store, destination: Store) -> None:
    """Refuse a destination holding any row the source does not hold as it is: it is another library.

    Every copied table is read (a new destination has nothing to read; a copy being resumed holds only the
    source's rows): a row whose key the source lacks, or holds with other values, would otherwise stay beside
    the copied ones (an account keeping the id a copied API token points at) or collide with them.
    """
    for table in COPIED_TABLES:
        at = [table.columns.index(column) for column in table.key]
        deferred = {table.columns.index(column) for column in table.deferred}
        for rows in _batches(destination, table, 2000):
            keys = [tuple(row[i] for i in at) for row in rows]
            held = _rows_by_key(source, table, keys)
            for row, key in zip(rows, keys, strict=True):
                theirs = held.get(key)
                ours = _plain(row[: len(table.columns)])
                if theirs is None or any(
                    value != other and not (i in deferred and value is None)
                    for i, (value, other) in enumerate(zip(ours, theirs, strict=True))
                ):
                    raise StoreError(
                        f"{destination.path} already holds another library: its {table.name} row "
                        f"{', '.join(map(str, key))} is not in {source.path} as it is there. Copy into an empty "
                        "database or a new file; nothing was written."
                    )


def _rows_by_key(store: Store, table: _Table, keys: Sequence[tuple[Any, ...]]) -> dict[tuple[Any, ...], tuple]:
    """The rows (copied columns) of ``store`` with these keys, by key."""
    at = [table.columns.index(column) for column in table.key]
    with store.reading() as conn:
        rows = [_plain(tuple(row)) for row in _select_keys(conn, table, table.columns, keys)]
    return {tuple(row[i] for i in at): row for row in rows}


def _select_keys(conn: Any, table: _Table, columns: Sequence[str], keys: Sequence[tuple[Any, ...]]):
    """``columns`` of the rows of ``table`` with these keys (any number: read 400 keys a statement)."""
    for start in range(0, len(keys), 400):
        chunk = keys[start : start + 400]
        matches = " OR ".join("(" + " AND ".join(f"{c} = ?" for c in table.key) + ")" for _ in chunk)
        flat = tuple(value for key in chunk for value in key)
        yield from conn.exec_driver_sql(f"SELECT {', '.join(columns)} FROM {table.name} WHERE {matches}", flat)


def _restore_deferred(source: Store, destination: Store, table: _Table, batch: int) -> None:
    """Set the deferred columns of the copied rows (written NULL) to the source's values, batch by batch."""
    at = [table.read.index(column) for column in (*table.key, *table.deferred)]
    sets = ", ".join(f"{column} = ?" for column in table.deferred)
    where = " AND ".join(f"{column} = ?" for column in table.key)
    unset = " AND ".join(f"{column} IS NULL" for column in table.deferred)
    for rows in _batches(source, table, batch):
        updates = [
            (*values[len(table.key) :], *values[: len(table.key)])
            for values in (tuple(row[i] for i in at) for row in rows)
            if any(value is not None for value in values[len(table.key) :])
        ]
        if updates:
            with destination.writing() as conn:
                conn.exec_driver_sql(f"UPDATE {table.name} SET {sets} WHERE {where} AND {unset}", updates)


def verify_copy(source: Store, destination: Store) -> list[TableCheck]:
    """Compare every copied table, and the full-text index against the passages, on both sides."""
    checks = []
    for table in COPIED_TABLES:
        checks.append(
            TableCheck(
                table.name,
                _count(source, table.name),
                _count(destination, table.name),
                _digest(source, table),
                _digest(destination, table),
            )
        )
    n_passages = _count(destination, "passages")
    n_index = _count(destination, "passages_fts")
    checks.append(TableCheck("passages_fts", n_passages, n_index, "", ""))
    return checks


def _count(store: Store, table: str) -> int:
    with store.reading() as conn:
        return int(conn.exec_driver_sql(f"SELECT count(*) FROM {table}").scalar() or 0)


def _batches(store: Store, table: _Table, size: int):
    """Rows (the ``read`` columns) in copy order, ``size`` at a time.

    Each read starts after the last row's order values (keyset pagination), so no read rescans earlier rows.
    """
    order = table.order or table.key
    at = [table.read.index(column) for column in order]
    columns = ", ".join(order)
    last: tuple[Any, ...] | None = None
    while True:
        where, arguments = "", ()
        if last is not None:  # a row-value comparison, which SQLite (3.15+) and PostgreSQL share
            where = f" WHERE ({columns}) > ({', '.join('?' * len(last))})"
            arguments = last
        sql = f"SELECT {', '.join(table.read)} FROM {table.name}{where} ORDER BY {columns} LIMIT ?"
        with store.reading() as conn:
            rows = [tuple(row) for row in conn.exec_driver_sql(sql, (*arguments, size))]
        if not rows:
            return
        yield rows
        last = tuple(rows[-1][i] for i in at)


def _insert_missing(destination: Store, table: _Table, rows: Sequence[tuple[Any, ...]]) -> int:
    """Insert the rows whose key the destination lacks, in one transaction; return how many."""
    at = [table.columns.index(column) for column in table.key]
    keys = [tuple(row[i] for i in at) for row in rows]
    with destination.writing() as conn:
        present = {tuple(row) for row in _select_keys(conn, table, table.key, keys)}
        deferred = [table.columns.index(column) for column in table.deferred]
        missing = [
            tuple(None if i in deferred else value for i, value in enumerate(_plain(row[: len(table.columns)])))
            for row, key in zip(rows, keys, strict=True)
            if key not in present
        ]
        if not missing:
            return 0
        if table.name == "passage_vectors":
            destination.insert_vectors(conn, missing)
            return len(missing)
        marks = ", ".join("?" * len(table.columns))
        conn.exec_driver_sql(f"INSERT INTO {table.name}({', '.join(table.columns)}) VALUES ({marks})", missing)
        if table.name == "passages":
            destination.index_passages(conn, [row[0] for row in missing])
    return len(missing)


def _plain(row: Sequence[Any]) -> tuple[Any, ...]:
    """A row as either driver takes it (PostgreSQL hands out ``memoryview`` for bytes)."""
    return tuple(bytes(value) if isinstance(value, memoryview) else value for value in row)


def _digest(store: Store, table: _Table) -> str:
    """SHA-256 over a table's copied columns, rows in copy order, each value as text (bytes as hex)."""
    digest = hashlib.sha256()
    for rows in _batches(store, table, 5000):
        for row in rows:
            for value in _plain(row[: len(table.columns)]):
                text = value.hex() if isinstance(value, bytes) else str(value)
                digest.update(text.encode("utf-8", "surrogatepass"))
                digest.update(b"\x1f")
            digest.update(b"\x1e")
    return digest.hexdigest()
