"""The library: the only module that contains SQL.

One SQLite file, or one PostgreSQL database, holds documents, passages, their full-text index (written in the
same transaction as its passages), retraction links and saved answers. The schema is managed by Alembic migrations
shipped in ``medcite/migrations``; opening a library upgrades it, and a library from a newer medcite is refused.

The SQL is written once, in SQLite's dialect with ``?`` placeholders and ``ON CONFLICT`` upserts (which PostgreSQL
shares); on PostgreSQL (``postgresql://user@host:port/dbname``, through psycopg 3) the placeholders become ``%s``
and the few statements that differ have a PostgreSQL form beside them: full-text search is a ``tsvector`` with a GIN
index (English configuration; title, section and text weighted A, B and C) instead of FTS5, dense search uses
pgvector (cosine distance) instead of an index file, and a writer takes a transaction-level advisory lock where
SQLite takes its write lock (``BEGIN IMMEDIATE``), so concurrent writers queue rather than collide. Imports
``models``, ``errors`` and ``settings`` only.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import sqlite3
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from medcite.errors import NotFound, SchemaMismatch, StoreError
from medcite.models import EVIDENCE_TYPES, Document, DocumentSummary, LibraryStats, Passage, VocabularyEntry
from medcite.settings import Settings, display_library, is_database_url

__all__ = ["DATABASE_ERRORS", "BatchCounts", "FtsRow", "PassageDetail", "Store"]

MIGRATIONS_DIR = Path(__file__).parent.parent / "migrations"
HEAD_REVISION = "0008"
_KNOWN_REVISIONS = {"0001", "0002", "0003", "0004", "0005", "0006", "0007", "0008"}
_SQLITE_MAX_VARS = 900
_OPEN_ATTEMPTS = 10  # opening waits up to ~5 s for another process creating the same library
DATABASE_ERRORS: tuple[type[Exception], ...] = (sa.exc.DBAPIError,)
"""What the database driver raises when the library stops answering mid-command (a PostgreSQL server shut down,
a statement timeout): callers that cannot go on turn it into one line (the CLI) or a 503 (the web app)."""
_URL = re.compile(r"^\s*[a-z][a-z0-9+.-]*://", re.I)
_WRITE_LOCK = 7_342_115
"""The PostgreSQL advisory lock key a write transaction takes (``pg_advisory_xact_lock``): one writer at a time,
as SQLite's ``BEGIN IMMEDIATE`` gives, so passage rowids and article numbers are handed out once."""
HNSW_EF_SEARCH = 100
"""pgvector's ``hnsw.ef_search`` for dense search on PostgreSQL: candidates an HNSW scan keeps (pgvector's default
is 40, which also caps the rows a scan returns); raised to the depth asked for when that is larger (at most 1,000,
pgvector's limit)."""
VECTOR_INDEX_TYPES = ("halfvec", "vector")
"""pgvector types a PostgreSQL library's HNSW index may hold its vectors as: ``halfvec`` (16-bit floats, half the
index size and memory; the stored vectors stay 32-bit) or ``vector`` (32-bit, as stored)."""
PG_TEXT_SEARCH_CONFIG = "english"
"""PostgreSQL text search configuration of the full-text index (Snowball English stemmer, English stop words)."""


def _vector_index_name(model: str, vector_type: str) -> str:
    """The HNSW index of one embedding model's vectors as ``vector_type`` (a PostgreSQL identifier)."""
    return f"passage_vectors_{vector_type}_hnsw_" + hashlib.sha256(model.encode()).hexdigest()[:12]


@dataclass
class BatchCounts:
    """What one ``Store.write_batch`` call changed."""

    added: int = 0
    updated: int = 0
    unchanged: int = 0
    deleted: int = 0
    n_passages: int = 0


@dataclass(frozen=True)
class FtsRow:
    """One full-text match: the passage, its document's metadata and the BM25 score (higher is better)."""

    passage: Passage
    title: str
    evidence_type: str
    year: int | None
    score: float


@dataclass(frozen=True)
class PassageDetail:
    """A passage with the metadata of its document that ranking and display need."""

    rowid: int
    passage: Passage
    title: str
    kind: str
    evidence_type: str
    year: int | None
    organization: str | None
    journal: str | None
    doi: str | None
    pmid: str | None
    keywords: tuple[str, ...] = ()


def _keywords(raw: str | None) -> tuple[str, ...]:
    """A document's keywords (or topics) from its stored JSON, at most 60, each at most 80 characters."""
    if not raw:
        return ()
    try:
        values = json.loads(raw)
    except ValueError:
        return ()
    return tuple(str(value)[:80] for value in values[:60]) if isinstance(values, list) else ()


def like_contains(store: Store, column: str, text: str) -> tuple[str, str]:
    """``(SQL condition, its one parameter)``: ``column`` contains ``text``, ignoring case in every script.

    ``%``, ``_`` and backslashes in ``text`` match themselves. SQLite's lower() folds ASCII only, so SQLite libraries
    fold with Python's ``str.casefold`` (registered as ``casefold()`` on each connection); PostgreSQL's lower()
    folds every script.
    """
    fold, folded = ("casefold", text.casefold()) if store.dialect == "sqlite" else ("lower", text.lower())
    escaped = folded.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"{fold}({column}) LIKE ? ESCAPE '\\'", f"%{escaped}%"


def _marks(chunk: Sequence[Any]) -> str:
    return ",".join("?" * len(chunk))


def _chunks(items: Sequence[Any], size: int = _SQLITE_MAX_VARS) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class Store:
    """A medcite library: one SQLite file or one PostgreSQL database.

    Use ``Store.open(path_or_url)`` (a context manager) rather than the constructor. ``path`` is the file's path,
    or for PostgreSQL the database URL without its password (for messages); ``dialect`` is 'sqlite' or 'postgresql'.
    """

    def __init__(self, path: Path | str, engine: Engine, *, vector_index: str = "halfvec") -> None:
        self.path = path
        self.engine = engine
        self.dialect: str = engine.dialect.name
        self.vector_index = vector_index
        self._retracted_cache: tuple[int, frozenset[int]] | None = None

    # -- opening -----------------------------------------------------------------------------------

    @classmethod
    def open(
        cls, path: Path | str, *, pool_size: int = 5, statement_timeout_s: float = 120.0, vector_index: str = "halfvec"
    ) -> Store:
        """Open (creating and migrating when needed) the library at ``path``.

        Args:
            path: Library file; its parent folder is created when missing. Or a PostgreSQL URL,
                ``postgresql://user@host:port/dbname`` (the database must exist; its tables are created).
            pool_size: PostgreSQL only: connections kept open (setting ``postgres_pool_size``).
            statement_timeout_s: PostgreSQL only: a statement running longer is cancelled, seconds (setting
                ``postgres_statement_timeout_s``).
            vector_index: PostgreSQL only: the pgvector type of the HNSW index, ``halfvec`` or ``vector``
                (setting ``postgres_vector_index``); a missing index of that type is built on opening.

        Returns:
            An open store; close it with ``close()`` or use it as a context manager.

        Raises:
            StoreError: The file is not a SQLite database or cannot be created; the PostgreSQL server cannot be
                reached, or its ``vector`` extension is missing.
            SchemaMismatch: The file was written by a newer medcite.
        """
        if is_database_url(path):
            if vector_index not in VECTOR_INDEX_TYPES:
                raise StoreError(
                    f"The vector index type {vector_index!r} is not one of {', '.join(VECTOR_INDEX_TYPES)}."
                )
            return cls._open_postgresql(str(path).strip(), pool_size, statement_timeout_s, vector_index)
        if isinstance(path, str) and _URL.match(path):  # 'mysql://...' must not become a folder named 'mysql:'
            raise StoreError(
                f"{display_library(path)} is not a library medcite can open: give a SQLite file path or a "
                "PostgreSQL URL, postgresql://user@host:port/dbname."
            )
        try:
            path = Path(path).expanduser()
        except RuntimeError as exc:  # '~nosuchuser/...'
            raise StoreError(f"Cannot find the home folder in the library path {path} ({exc}).") from exc
        if str(path) in ("", "."):
            raise StoreError("The library path is empty; set --library or MEDCITE_LIBRARY to a file path.")
        if path.is_dir():
            raise StoreError(f"The library path {path} is a folder; give a file path such as {path / 'library.db'}.")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"Cannot create the library folder {path.parent}: {exc.strerror}.") from exc
        _refuse_foreign(path)
        engine = sa.create_engine(f"sqlite:///{path}", poolclass=sa.pool.StaticPool)
        sa.event.listen(engine, "connect", _configure_connection)
        sa.event.listen(engine, "begin", _begin)
        store = cls(path, engine)
        try:
            for attempt in range(_OPEN_ATTEMPTS):
                try:
                    store._migrate()
                    break
                except sa.exc.OperationalError as exc:
                    # Another process is creating the same new library at this moment: its tables appear
                    # under us, or SQLite refuses the switch to WAL without waiting. Use its work.
                    racing = "already exists" in str(exc.orig) or "locked" in str(exc.orig)
                    if not racing or attempt == _OPEN_ATTEMPTS - 1:
                        raise
                    engine.dispose()
                    time.sleep(0.5)
        except sa.exc.OperationalError as exc:
            engine.dispose()
            raise StoreError(
                f"Cannot open or write the library file {path} ({exc.orig}); check that its folder exists "
                "and is writable, or point --library elsewhere."
            ) from exc
        except sa.exc.DatabaseError as exc:
            engine.dispose()
            raise StoreError(
                f"{path} is not a usable medcite library ({exc.orig}). "
                "Point --library at another file or move this one away."
            ) from exc
        except BaseException:
            engine.dispose()
            raise
        return store

    @classmethod
    def for_settings(cls, settings: Settings) -> Store:
        """``open`` the library ``settings`` name, with its PostgreSQL pool size, statement timeout and index type."""
        return cls.open(
            settings.library,
            pool_size=settings.postgres_pool_size,
            statement_timeout_s=settings.postgres_statement_timeout_s,
            vector_index=settings.postgres_vector_index,
        )

    @classmethod
    def _open_postgresql(cls, url: str, pool_size: int, statement_timeout_s: float, vector_index: str) -> Store:
        shown = display_library(url)
        try:
            parsed = sa.engine.make_url(url).set(drivername="postgresql+psycopg")
            parsed.port  # noqa: B018 - a port that is not a number fails here, not at connection time
        except (sa.exc.ArgumentError, ValueError) as exc:
            raise StoreError(
                f"The library URL {shown} is not a valid PostgreSQL URL; write it as "
                "postgresql://user@host:port/dbname."
            ) from exc
        try:
            engine = sa.create_engine(
                parsed,
                pool_pre_ping=True,
                pool_size=pool_size,
                connect_args={
                    "connect_timeout": 10,
                    "options": f"-c statement_timeout={max(1, round(statement_timeout_s * 1000))}",
                },
            )
        except ImportError as exc:
            raise StoreError("A PostgreSQL library needs the psycopg driver: pip install 'medcite[postgres]'.") from exc
        sa.event.listen(engine, "before_cursor_execute", _qmark_to_format, retval=True)
        sa.event.listen(engine, "begin", _begin_postgresql)
        store = cls(shown, engine, vector_index=vector_index)
        try:
            store._migrate()
            store._ensure_vector_indexes()
        except sa.exc.OperationalError as exc:
            engine.dispose()
            raise StoreError(
                f"Cannot reach the PostgreSQL library {shown} ({str(exc.orig).strip().splitlines()[0]}); check that "
                "the server runs, the database exists and the user may connect."
            ) from exc
        except sa.exc.DBAPIError as exc:
            engine.dispose()
            message = str(exc.orig).strip().splitlines()[0]
            if "vector" in message and ("extension" in message or "control file" in message):
                raise StoreError(
                    f"The PostgreSQL library {shown} needs the pgvector extension ({message}). Install pgvector on "
                    "the server and run CREATE EXTENSION vector; in the database as a superuser, then try again."
                ) from exc
            raise StoreError(f"{shown} is not a usable medcite library ({message}).") from exc
        except BaseException:
            engine.dispose()
            raise
        return store

    def _migrate(self) -> None:
        with self.engine.connect() as conn:
            tables = set(sa.inspect(conn).get_table_names())
            current = None
            if "alembic_version" in tables:
                current = conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()
        if current == HEAD_REVISION:
            return
        if current is not None and current not in _KNOWN_REVISIONS:
            raise SchemaMismatch(
                f"The library {self.path} was written by a newer medcite (schema {current}); "
                f"this medcite knows schema {HEAD_REVISION}. Upgrade medcite or use another --library."
            )
        if current is None and tables:
            raise _foreign_error(self.path, tables)
        from alembic import command
        from alembic.config import Config

        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS_DIR))
        with self.engine.connect() as conn, conn.execution_options(sqlite_immediate=True).begin():
            config.attributes["connection"] = conn  # Alembic re-reads the revision under the write lock
            command.upgrade(config, "head")

    def close(self) -> None:
        """Close the library file."""
        self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @contextmanager
    def _connect(self) -> Iterator[Connection]:
        with self.engine.connect() as conn:
            yield conn

    @contextmanager
    def reading(self) -> Iterator[Connection]:
        """A connection for reads (for the other ``medcite.store`` modules; nothing else writes SQL)."""
        with self.engine.connect() as conn:
            yield conn

    @contextmanager
    def writing(self) -> Iterator[Connection]:
        """A connection inside one write transaction (BEGIN IMMEDIATE): committed on exit, rolled back on error.

        Does not bump ``library_version`` (that marks evidence changes only).
        """
        with self.engine.connect() as conn, conn.execution_options(sqlite_immediate=True).begin():
            yield conn

    # -- writing -----------------------------------------------------------------------------------

    def write_batch(
        self,
        items: Sequence[tuple[Document, list[Passage]]],
        *,
        delete_doc_ids: Sequence[str] = (),
        retracted_pmids: Iterable[tuple[str, str]] = (),
        vocabulary: Sequence[VocabularyEntry] = (),
    ) -> BatchCounts:
        """Write one batch of documents with their passages, in one transaction.

        A document whose content hash is already stored is left alone; a changed
        one replaces its older version (same ``doc_id``, new passages). Deletions
        remove documents, passages and their full-text rows. Retraction links
        mark the named PMIDs retracted now and whenever they are ingested later.
        Either everything in the batch is written or nothing is.

        Args:
            items: ``(document, passages)`` pairs; a later pair with the same
                ``doc_id`` wins.
            delete_doc_ids: Namespaced ids to remove (e.g. ``pmid:24381829``).
            retracted_pmids: ``(retracted PMID, notice id)`` pairs read from
                retraction notices or RetractionIn comments.
            vocabulary: Synonym sets to keep for query expansion (duplicates are ignored).

        Returns:
            Counts of added, updated, unchanged and deleted documents and passages written.

        Raises:
            StoreError: The write failed; the library is as it was before the call.
        """
        counts = BatchCounts()
        latest: dict[str, tuple[Document, list[Passage]]] = {}
        for document, passages in items:
            latest[document.doc_id] = (document, passages)
        now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        links = sorted(set(retracted_pmids))
        try:
            with self.engine.connect() as conn, conn.execution_options(sqlite_immediate=True).begin():
                changed: dict[str, str] = {}  # doc_id -> what happened to it, for the articles citing it
                if links:
                    conn.exec_driver_sql(
                        "INSERT INTO retractions(pmid, notice) VALUES (?, ?) ON CONFLICT DO NOTHING", links
                    )
                    newly = "FROM documents WHERE pmid IN (SELECT pmid FROM retractions) AND is_retracted = 0"
                    changed.update(
                        (str(row[0]), "was retracted") for row in conn.exec_driver_sql(f"SELECT doc_id {newly}")
                    )
                    conn.exec_driver_sql(
                        f"UPDATE documents SET is_retracted = 1 WHERE doc_id IN (SELECT doc_id {newly})"
                    )
                if vocabulary:
                    conn.exec_driver_sql(
                        "INSERT INTO vocabulary(concept, term, source) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                        [(entry.concept, term, entry.source) for entry in vocabulary for term in entry.terms if term],
                    )
                if delete_doc_ids:
                    doomed = list(dict.fromkeys(delete_doc_ids))
                    changed.update((doc_id, "was deleted from PubMed") for doc_id in self._existing(conn, doomed))
                    counts.deleted = self._delete(conn, doomed)
                stored = self._content_hashes(conn, list(latest))
                retracted = self._retracted_pmids(conn, [d.pmid for d, _ in latest.values() if d.pmid is not None])
                replace: list[str] = []
                rows: list[tuple[Any, ...]] = []
                passage_rows: list[tuple[Any, ...]] = []
                for doc_id, (document, passages) in latest.items():
                    content_hash = document.content_hash()
                    old = stored.get(doc_id)
                    if old == content_hash:
                        counts.unchanged += 1
                        continue
                    if old is None:
                        counts.added += 1
                    else:
                        counts.updated += 1
                        replace.append(doc_id)
                    rows.append(_document_row(document, content_hash, len(passages), now, retracted))
                    passage_rows.extend(
                        (
                            p.passage_id,
                            p.doc_id,
                            p.n,
                            p.section,
                            p.kind,
                            p.text,
                            p.char_start,
                            p.char_end,
                            document.title,
                        )
                        for p in passages
                    )
                if replace:
                    # A replaced record changes what answers quote only when its passages' text changed (or it
                    # is retracted now): new metadata alone (a query recorded, a date) sends nothing to re-review.
                    before = self._passage_texts(conn, replace)
                    self._delete(conn, replace)
                    now_retracted = {row[0] for row in rows if row[11]}
                    after: dict[str, list[str]] = {}
                    for row in passage_rows:
                        after.setdefault(row[1], []).append(row[5])
                    changed.update(
                        (doc_id, "was retracted" if doc_id in now_retracted else "was replaced by a changed record")
                        for doc_id in replace
                        if doc_id in now_retracted or before.get(doc_id, []) != after.get(doc_id, [])
                    )
                if changed:
                    _flag_citing_articles(conn, changed, now)
                if rows:
                    conn.exec_driver_sql(
                        "INSERT INTO documents(doc_id, kind, external_id, title, organization, journal, year, "
                        "evidence_type, doi, pmid, pmcid, is_retracted, content_hash, n_passages, data, "
                        "ingested_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        rows,
                    )
                if passage_rows:
                    # The documents INSERT above took the write lock, so these rowids are ours alone.
                    first = int(conn.exec_driver_sql("SELECT coalesce(max(rowid), 0) FROM passages").scalar() or 0) + 1
                    conn.exec_driver_sql(
                        "INSERT INTO passages(rowid, passage_id, doc_id, n, section, kind, text, char_start, char_end) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        [(first + i, *row[:8]) for i, row in enumerate(passage_rows)],
                    )
                    conn.exec_driver_sql(
                        self._fts_insert_sql(),
                        [(first + i, row[8], row[3], row[5]) for i, row in enumerate(passage_rows)],
                    )
                counts.n_passages = len(passage_rows)
                if counts.added or counts.updated or counts.deleted or links:
                    _bump_version(conn)
        except sa.exc.DBAPIError as exc:
            raise StoreError(
                f"Writing to the library {self.path} failed ({exc.orig}); this batch was not written."
            ) from exc
        return counts

    def _fts_insert_sql(self) -> str:
        """The statement adding ``(rowid, title, section, text)`` rows to the full-text index."""
        if self.dialect == "postgresql":
            weighted = " || ".join(
                f"setweight(to_tsvector('{PG_TEXT_SEARCH_CONFIG}', coalesce(?, '')), '{label}')" for label in "ABC"
            )
            return f"INSERT INTO passages_fts(rowid, tsv) VALUES (?, {weighted})"
        return "INSERT INTO passages_fts(rowid, title, section, text) VALUES (?, ?, ?, ?)"

    def delete_documents(self, doc_ids: Sequence[str], *, reason: str = "was removed from the library") -> int:
        """Delete documents with their passages, full-text rows and vectors; return how many existed.

        One transaction. Approved and in-review answers citing a deleted document move to re-review with
        ``reason`` (after the document's id) as the reason.
        """
        with self.engine.connect() as conn, conn.execution_options(sqlite_immediate=True).begin():
            doomed = list(dict.fromkeys(doc_ids))
            existing = self._existing(conn, doomed)
            n_deleted = self._delete(conn, doomed)
            if existing:
                _flag_citing_articles(
                    conn, dict.fromkeys(existing, reason), dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
                )
            _bump_version(conn)
            return n_deleted

    def existing_documents(self, doc_ids: Sequence[str]) -> set[str]:
        """Return which of ``doc_ids`` the library holds."""
        with self._connect() as conn:
            return set(self._existing(conn, list(dict.fromkeys(doc_ids))))

    @staticmethod
    def _passage_texts(conn: Connection, doc_ids: list[str]) -> dict[str, list[str]]:
        """Each document's passage texts, in order."""
        texts: dict[str, list[str]] = {}
        for chunk in _chunks(doc_ids):
            for doc_id, text in conn.exec_driver_sql(
                f"SELECT doc_id, text FROM passages WHERE doc_id IN ({_marks(chunk)}) ORDER BY doc_id, n", tuple(chunk)
            ):
                texts.setdefault(str(doc_id), []).append(str(text))
        return texts

    @staticmethod
    def _existing(conn: Connection, doc_ids: list[str]) -> list[str]:
        found: list[str] = []
        for chunk in _chunks(doc_ids):
            found += [
                str(row[0])
                for row in conn.exec_driver_sql(
                    f"SELECT doc_id FROM documents WHERE doc_id IN ({_marks(chunk)})", tuple(chunk)
                )
            ]
        return found

    @staticmethod
    def _delete(conn: Connection, doc_ids: list[str]) -> int:
        n_deleted = 0
        for chunk in _chunks(doc_ids):
            marks = _marks(chunk)
            conn.exec_driver_sql(
                f"DELETE FROM passages_fts WHERE rowid IN (SELECT rowid FROM passages WHERE doc_id IN ({marks}))",
                tuple(chunk),
            )
            conn.exec_driver_sql(
                f"DELETE FROM passage_vectors WHERE passage_rowid IN "
                f"(SELECT rowid FROM passages WHERE doc_id IN ({marks}))",
                tuple(chunk),
            )
            conn.exec_driver_sql(f"DELETE FROM passages WHERE doc_id IN ({marks})", tuple(chunk))
            result = conn.exec_driver_sql(f"DELETE FROM documents WHERE doc_id IN ({marks})", tuple(chunk))
            n_deleted += result.rowcount
        return n_deleted

    @staticmethod
    def _content_hashes(conn: Connection, doc_ids: list[str]) -> dict[str, str]:
        found: dict[str, str] = {}
        for chunk in _chunks(doc_ids):
            marks = ",".join("?" * len(chunk))
            result = conn.exec_driver_sql(
                f"SELECT doc_id, content_hash FROM documents WHERE doc_id IN ({marks})", tuple(chunk)
            )
            found.update({row[0]: row[1] for row in result})
        return found

    @staticmethod
    def _retracted_pmids(conn: Connection, pmids: list[str]) -> set[str]:
        found: set[str] = set()
        for chunk in _chunks(pmids):
            marks = ",".join("?" * len(chunk))
            result = conn.exec_driver_sql(f"SELECT pmid FROM retractions WHERE pmid IN ({marks})", tuple(chunk))
            found.update(row[0] for row in result)
        return found

    # -- reading -----------------------------------------------------------------------------------

    def count_documents(self) -> int:
        """Return the number of documents in the library."""
        with self._connect() as conn:
            return int(conn.exec_driver_sql("SELECT count(*) FROM documents").scalar() or 0)

    def get_document(self, doc_id: str) -> Document:
        """Return a document's metadata (``sections`` is empty: the text lives in its passages).

        Raises:
            NotFound: No document has this id.
        """
        with self._connect() as conn:
            row = conn.exec_driver_sql("SELECT data, is_retracted FROM documents WHERE doc_id = ?", (doc_id,)).first()
        if row is None:
            raise NotFound("document", doc_id)
        document = Document.model_validate_json(row[0])
        document.is_retracted = bool(row[1])
        return document

    def list_documents(
        self,
        *,
        kind: str | None = None,
        evidence_type: str | None = None,
        query: str | None = None,
        limit: int | None = 1000,
    ) -> list[DocumentSummary]:
        """Return documents in id order, at most ``limit`` (None: all).

        Filtered by source kind, evidence type, and ``query``: a case-insensitive substring of the title, or the
        exact document id.
        """
        where, args = [], []
        if kind:
            where.append("kind = ?")
            args.append(kind)
        if evidence_type:
            where.append("evidence_type = ?")
            args.append(evidence_type)
        if query:
            condition, pattern = like_contains(self, "title", query)
            where.append(f"({condition} OR doc_id = ?)")
            args += [pattern, query]
        sql = (
            "SELECT doc_id, kind, title, organization, journal, year, evidence_type, n_passages, is_retracted "
            "FROM documents" + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY doc_id"
        )
        if limit is not None:
            sql += " LIMIT ?"
            args.append(limit)
        with self._connect() as conn:
            rows = conn.exec_driver_sql(sql, tuple(args)).fetchall()
        return [
            DocumentSummary(
                doc_id=str(r[0]),
                kind=str(r[1]),
                title=str(r[2]),
                source=r[3] or r[4],
                year=r[5],
                evidence_type=str(r[6]),
                passages=int(r[7]),
                retracted=bool(r[8]),
            )
            for r in rows
        ]

    def get_passages(self, doc_id: str) -> list[Passage]:
        """Return a document's passages in order (empty when the document is unknown)."""
        with self._connect() as conn:
            result = conn.exec_driver_sql(
                "SELECT passage_id, doc_id, n, section, kind, text, char_start, char_end FROM passages "
                "WHERE doc_id = ? ORDER BY n",
                (doc_id,),
            )
            return [_passage(row) for row in result]

    def get_passage(self, passage_id: str) -> Passage:
        """Return one passage by id.

        Raises:
            NotFound: No passage has this id.
        """
        with self._connect() as conn:
            row = conn.exec_driver_sql(
                "SELECT passage_id, doc_id, n, section, kind, text, char_start, char_end FROM passages "
                "WHERE passage_id = ?",
                (passage_id,),
            ).first()
        if row is None:
            raise NotFound("passage", passage_id)
        return _passage(row)

    def search_fts(self, match: str, *, limit: int = 10) -> list[FtsRow]:
        """Run an FTS5 ``MATCH`` expression; never return passages of retracted documents.

        Args:
            match: A well-formed FTS5 query (build it with ``retrieve.fts_query``; raw user
                text is not safe here).
            limit: Maximum number of rows (>= 1).

        Returns:
            Rows best first by BM25 (FTS5's ``bm25()``, negated so higher is better),
            ties by ``passage_id``.

        Raises:
            StoreError: The expression is not valid FTS5 syntax, or the full-text index is damaged.
        """
        ranked = self.search_fts_rowids(match, limit=limit)
        details = self.passage_details([rowid for rowid, _ in ranked])
        rows = [
            FtsRow(
                passage=details[rowid].passage,
                title=details[rowid].title,
                evidence_type=details[rowid].evidence_type,
                year=details[rowid].year,
                score=score,
            )
            for rowid, score in ranked
            if rowid in details
        ]
        return sorted(rows, key=lambda row: (-row.score, row.passage.passage_id))

    def search_fts_rowids(
        self, match: str, *, limit: int = 100, weights: tuple[float, float, float] = (1.0, 1.0, 1.0)
    ) -> list[tuple[int, float]]:
        """Run an FTS5 ``MATCH`` expression and return ``(passage rowid, BM25 score)`` pairs.

        Args:
            match: A well-formed FTS5 query (see ``retrieve.fts_query``).
            limit: Maximum number of rows (>= 1).
            weights: BM25 column weights for (title, section, text), FTS5's ``bm25()`` arguments.

        Returns:
            Best first (score = negated ``bm25()``, higher is better), ties by rowid;
            passages of retracted documents are never returned.

        Raises:
            StoreError: The expression is not valid FTS5 syntax, or the full-text index is damaged.
        """
        if limit < 1:
            raise ValueError(f"limit must be >= 1 (got {limit})")
        # No join here: joining every match to its document costs ~3x; retracted documents are rare, so
        # the top rows are filtered afterwards and the list topped up from a deeper read when needed.
        sql = (
            "SELECT rowid, -bm25(passages_fts, ?, ?, ?) AS score FROM passages_fts "
            "WHERE passages_fts MATCH ? ORDER BY score DESC, rowid LIMIT ?"
        )
        arguments: tuple[Any, ...] = (*weights, match)
        if self.dialect == "postgresql":
            query, terms = pg_tsquery(match)
            if query is None:
                return []
            top = max(weights) or 1.0
            rank_weights = "{" + ",".join(f"{w / top:.4f}" for w in (0.0, *reversed(weights))) + "}"
            # ts_rank's weights are {D, C, B, A}; rank normalisation 1 divides by 1 + log(document length).
            sql = (
                f"SELECT rowid, ts_rank('{rank_weights}', tsv, q, 1) AS score FROM passages_fts, ({query}) AS t(q) "
                "WHERE tsv @@ q ORDER BY score DESC, rowid LIMIT ?"
            )
            arguments = tuple(terms)
        try:
            with self._connect() as conn:
                retracted = self._retracted_rowids(conn)
                depth = limit + len(retracted)
                rows = [(int(r[0]), float(r[1])) for r in conn.exec_driver_sql(sql, (*arguments, depth))]
        except sa.exc.DatabaseError as exc:
            raise _fts_error(self.path, match, exc) from exc
        return [row for row in rows if row[0] not in retracted][:limit]

    def count_fts_matches(self, match: str) -> int:
        """Return how many passages an FTS5 ``MATCH`` expression matches (a term's document frequency).

        Raises:
            StoreError: The expression is not valid FTS5 syntax, or the full-text index is damaged.
        """
        sql, arguments = "SELECT count(*) FROM passages_fts WHERE passages_fts MATCH ?", (match,)
        if self.dialect == "postgresql":
            query, terms = pg_tsquery(match)
            if query is None:
                return 0
            sql, arguments = f"SELECT count(*) FROM passages_fts, ({query}) AS t(q) WHERE tsv @@ q", tuple(terms)
        try:
            with self._connect() as conn:
                return int(conn.exec_driver_sql(sql, arguments).scalar() or 0)
        except sa.exc.DatabaseError as exc:
            raise _fts_error(self.path, match, exc) from exc

    def count_passages(self) -> int:
        """Return the number of passages in the library."""
        with self._connect() as conn:
            return int(conn.exec_driver_sql("SELECT count(*) FROM passages").scalar() or 0)

    def _retracted_rowids(self, conn: Connection) -> frozenset[int]:
        """Passage rowids of retracted documents, cached per library version."""
        version = int(conn.exec_driver_sql("SELECT value FROM meta WHERE key = 'library_version'").scalar() or 0)
        if self._retracted_cache is None or self._retracted_cache[0] != version:
            rowids = frozenset(
                int(r[0])
                for r in conn.exec_driver_sql(
                    "SELECT p.rowid FROM passages p JOIN documents d ON d.doc_id = p.doc_id WHERE d.is_retracted <> 0"
                )
            )
            self._retracted_cache = (version, rowids)
        return self._retracted_cache[1]

    def passage_details(self, rowids: Sequence[int]) -> dict[int, PassageDetail]:
        """Return passages with their document metadata by rowid; retracted documents are left out."""
        found: dict[int, PassageDetail] = {}
        with self._connect() as conn:
            for chunk in _chunks(list(rowids)):
                result = conn.exec_driver_sql(
                    "SELECT p.rowid, p.passage_id, p.doc_id, p.n, p.section, p.kind, p.text, p.char_start, "
                    "p.char_end, d.title, d.kind, d.evidence_type, d.year, d.organization, d.journal, d.doi, d.pmid, "
                    f"{self._json_field('d.data', 'keywords')} "
                    "FROM passages p JOIN documents d ON d.doc_id = p.doc_id "
                    f"WHERE p.rowid IN ({_marks(chunk)}) AND d.is_retracted = 0",
                    tuple(chunk),
                )
                for row in result:
                    found[int(row[0])] = PassageDetail(
                        rowid=int(row[0]),
                        passage=_passage(row[1:9]),
                        title=row[9],
                        kind=row[10],
                        evidence_type=row[11],
                        year=row[12],
                        organization=row[13],
                        journal=row[14],
                        doi=row[15],
                        pmid=row[16],
                        keywords=_keywords(row[17]),
                    )
        return found

    def _json_field(self, column: str, key: str) -> str:
        """SQL reading one key of a JSON text column, as JSON text (None when absent)."""
        if self.dialect == "postgresql":
            return f"(({column})::jsonb -> '{key}')::text"
        return f"json_extract({column}, '$.{key}')"

    def library_version(self) -> int:
        """Return a counter that grows whenever passages, retractions or vectors change."""
        with self._connect() as conn:
            return int(conn.exec_driver_sql("SELECT value FROM meta WHERE key = 'library_version'").scalar() or 0)

    def passages_missing_vectors(self, model: str, *, limit: int = 256) -> list[tuple[int, str]]:
        """Return up to ``limit`` ``(rowid, text to embed)`` pairs for passages without a ``model`` vector.

        The text to embed is the document title, the section heading and the passage text, one per line.
        """
        with self._connect() as conn:
            result = conn.exec_driver_sql(
                "SELECT p.rowid, d.title, p.section, p.text FROM passages p JOIN documents d ON d.doc_id = p.doc_id "
                "WHERE NOT EXISTS (SELECT 1 FROM passage_vectors v WHERE v.model = ? AND v.passage_rowid = p.rowid) "
                "ORDER BY p.rowid LIMIT ?",
                (model, limit),
            )
            return [(int(r[0]), "\n".join(part for part in r[1:] if part)) for r in result]

    def count_missing_vectors(self, model: str) -> int:
        """Return how many passages have no ``model`` vector yet."""
        with self._connect() as conn:
            return int(
                conn.exec_driver_sql(
                    "SELECT count(*) FROM passages p WHERE NOT EXISTS "
                    "(SELECT 1 FROM passage_vectors v WHERE v.model = ? AND v.passage_rowid = p.rowid)",
                    (model,),
                ).scalar()
                or 0
            )

    def write_vectors(self, model: str, rows: Sequence[tuple[int, bytes]]) -> None:
        """Store ``(passage rowid, float32 vector bytes)`` rows for a model, in one transaction."""
        if not rows:
            return
        with self.engine.connect() as conn, conn.execution_options(sqlite_immediate=True).begin():
            self.insert_vectors(conn, [(model, rowid, blob) for rowid, blob in rows])
            _bump_version(conn)

    def insert_vectors(self, conn: Connection, rows: Sequence[tuple[str, int, bytes]]) -> None:
        """Add or replace ``(model, passage rowid, float32 bytes)`` rows inside the caller's write transaction.

        On PostgreSQL the pgvector column dense search reads is written beside the bytes, and each model gets its
        HNSW index with its first vectors.
        """
        if self.dialect == "postgresql":
            conn.exec_driver_sql(
                "INSERT INTO passage_vectors(model, passage_rowid, vector, embedding) VALUES (?, ?, ?, ?::vector) "
                "ON CONFLICT (model, passage_rowid) DO UPDATE SET vector = excluded.vector, "
                "embedding = excluded.embedding",
                [(model, rowid, blob, _vector_text(blob)) for model, rowid, blob in rows],
            )
            for model, dim in {(model, len(blob) // 4) for model, _, blob in rows}:
                self._ensure_vector_index(conn, model, dim)
        else:
            conn.exec_driver_sql(
                "INSERT INTO passage_vectors(model, passage_rowid, vector) VALUES (?, ?, ?) "
                "ON CONFLICT (model, passage_rowid) DO UPDATE SET vector = excluded.vector",
                list(rows),
            )

    def index_passages(self, conn: Connection, rowids: Sequence[int]) -> None:
        """Add stored passages (by rowid) to the full-text index, inside the caller's write transaction."""
        for chunk in _chunks(list(rowids)):
            rows = conn.exec_driver_sql(
                "SELECT p.rowid, d.title, p.section, p.text FROM passages p JOIN documents d ON d.doc_id = p.doc_id "
                f"WHERE p.rowid IN ({_marks(chunk)})",
                tuple(chunk),
            ).all()
            if rows:
                conn.exec_driver_sql(self._fts_insert_sql(), [tuple(row) for row in rows])

    def search_vectors(self, model: str, vector: bytes, *, limit: int) -> list[tuple[int, float]]:
        """PostgreSQL: ``(passage rowid, cosine similarity)`` of the passages nearest a float32 query vector.

        pgvector's HNSW index on the model's vectors (``vector_cosine_ops``; created with the model's first vectors)
        answers the query (ordered by the index's type, ``halfvec`` by default; the similarity returned is computed
        from the stored 32-bit vectors); retracted documents are left out. Best first, ties by rowid.

        Raises:
            StoreError: The library is not on PostgreSQL (SQLite libraries search an index file, ``DenseIndex``).
        """
        if self.dialect != "postgresql":
            raise StoreError("search_vectors needs a PostgreSQL library; SQLite libraries use DenseIndex's file.")
        dim = len(vector) // 4
        with self._connect() as conn:
            retracted = self._retracted_rowids(conn)
            # An HNSW scan returns at most ef_search rows (pgvector's default 40): search at least as deep as asked.
            depth = limit + len(retracted)
            conn.exec_driver_sql(f"SET LOCAL hnsw.ef_search = {max(HNSW_EF_SEARCH, min(depth, 1000))}")
            query = _vector_text(vector)
            cast = f"{self.vector_index}({dim})"  # the expression the model's HNSW index holds
            rows = conn.exec_driver_sql(
                f"SELECT passage_rowid, 1 - (embedding::vector({dim}) <=> ?::vector({dim})) AS similarity "
                f"FROM passage_vectors WHERE model = {_sql_literal(model)} "
                f"ORDER BY embedding::{cast} <=> ?::{cast}, passage_rowid LIMIT ?",
                (query, query, depth),
            )
            found = [(int(r[0]), float(r[1])) for r in rows]
        return [row for row in found if row[0] not in retracted][:limit]

    def _ensure_vector_index(self, conn: Connection, model: str, dim: int) -> None:
        """PostgreSQL: the HNSW index (cosine, of ``vector_index``'s type) over one model's vectors, partial per model.

        Built inside the caller's write transaction; pgvector's default build parameters (m 16, ef_construction 64).
        """
        name = _vector_index_name(model, self.vector_index)
        cast = f"{self.vector_index}({dim})"
        conn.exec_driver_sql(
            f"CREATE INDEX IF NOT EXISTS {name} ON passage_vectors USING hnsw "
            f"((embedding::{cast}) {self.vector_index}_cosine_ops) WHERE model = {_sql_literal(model)}"
        )

    def _ensure_vector_indexes(self) -> None:
        """PostgreSQL: build the HNSW index of this store's type for every model with stored vectors that lacks it.

        Runs on opening, so that choosing another index type (or a library copied without indexes) searches an
        index, not every row; at a million vectors the build takes minutes, once.
        """
        with self._connect() as conn:
            models = [
                row[0]
                for row in conn.exec_driver_sql(  # a skip scan of the primary key: one probe per model, not per row
                    "WITH RECURSIVE m AS ((SELECT model FROM passage_vectors ORDER BY model LIMIT 1) UNION ALL "
                    "SELECT (SELECT model FROM passage_vectors WHERE model > m.model ORDER BY model LIMIT 1) "
                    "FROM m WHERE m.model IS NOT NULL) SELECT model FROM m WHERE model IS NOT NULL"
                )
            ]
            existing = {row[0] for row in conn.exec_driver_sql("SELECT indexname FROM pg_indexes")}
            missing = [model for model in models if _vector_index_name(model, self.vector_index) not in existing]
            dims = {
                model: int(
                    conn.exec_driver_sql(
                        "SELECT vector_dims(embedding) FROM passage_vectors WHERE model = ? LIMIT 1", (model,)
                    ).scalar()
                )
                for model in missing
            }
        for model, dim in dims.items():  # under the write lock: two processes opening at once build it once
            with self.engine.connect() as conn, conn.execution_options(sqlite_immediate=True).begin():
                conn.exec_driver_sql("SET LOCAL statement_timeout = 0")  # a build is not a runaway statement
                self._ensure_vector_index(conn, model, dim)

    def save_answer(
        self, answer_id: str, question: str, audience: str, follow_up_of: str | None, data_json: str
    ) -> None:
        """Save an answer (its JSON) under its id, replacing an earlier save of the same id, in one transaction.

        Saving an answer does not change ``library_version``: answers are not evidence.

        Args:
            answer_id: The answer's id.
            question: The question as asked.
            audience: 'clinician', 'student' or 'patient'.
            follow_up_of: Id of the saved answer this one follows up, or None.
            data_json: The answer as JSON (``Answer.model_dump_json()``).

        Raises:
            StoreError: The write failed (e.g. ``follow_up_of`` names no saved answer).
        """
        now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        try:
            with self.engine.connect() as conn, conn.execution_options(sqlite_immediate=True).begin():
                # An upsert rather than INSERT OR REPLACE: REPLACE deletes the row first, which would
                # orphan (or, with foreign keys on, reject) follow-ups that point at it.
                conn.exec_driver_sql(
                    "INSERT INTO answers(answer_id, question, audience, follow_up_of, data, created_at) "
                    "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(answer_id) DO UPDATE SET question = excluded.question, "
                    "audience = excluded.audience, follow_up_of = excluded.follow_up_of, data = excluded.data, "
                    "created_at = excluded.created_at",
                    (answer_id, question, audience, follow_up_of, data_json, now),
                )
        except sa.exc.DBAPIError as exc:
            raise StoreError(f"Saving answer {answer_id} to the library {self.path} failed ({exc.orig}).") from exc

    def get_answer(self, answer_id: str) -> tuple[str, str, str | None, str]:
        """Return a saved answer as ``(question, audience, follow_up_of, data_json)``.

        Raises:
            NotFound: No answer with this id is saved in the library.
        """
        with self._connect() as conn:
            row = conn.exec_driver_sql(
                "SELECT question, audience, follow_up_of, data FROM answers WHERE answer_id = ?", (answer_id,)
            ).first()
        if row is None:
            raise NotFound("answer", answer_id)
        return str(row[0]), str(row[1]), None if row[2] is None else str(row[2]), str(row[3])

    def iter_vectors(self, model: str, *, batch: int = 4096) -> Iterator[list[tuple[int, bytes]]]:
        """Yield ``(passage rowid, vector bytes)`` rows of a model in rowid order, ``batch`` at a time.

        Vectors of retracted documents are left out, so a dense index built from them cannot return one.
        """
        last = -1
        while True:
            with self._connect() as conn:
                rows = [
                    (int(r[0]), bytes(r[1]))
                    for r in conn.exec_driver_sql(
                        "SELECT v.passage_rowid, v.vector FROM passage_vectors v "
                        "JOIN passages p ON p.rowid = v.passage_rowid JOIN documents d ON d.doc_id = p.doc_id "
                        "WHERE v.model = ? AND v.passage_rowid > ? AND d.is_retracted = 0 "
                        "ORDER BY v.passage_rowid LIMIT ?",
                        (model, last, batch),
                    )
                ]
            if not rows:
                return
            yield rows
            last = rows[-1][0]

    def vocabulary_groups(self) -> list[tuple[str, list[str]]]:
        """Return the stored synonym sets: ``(concept, terms)`` per concept, in concept order."""
        groups: dict[str, list[str]] = {}
        with self._connect() as conn:
            for concept, term in conn.exec_driver_sql("SELECT concept, term FROM vocabulary ORDER BY concept, rowid"):
                groups.setdefault(str(concept), []).append(str(term))
        return list(groups.items())

    def stats(self) -> LibraryStats:
        """Return counts by source kind and evidence type, retracted count and size on disk."""
        with self._connect() as conn:
            documents = int(conn.exec_driver_sql("SELECT count(*) FROM documents").scalar() or 0)
            passages = int(conn.exec_driver_sql("SELECT count(*) FROM passages").scalar() or 0)
            retracted = int(
                conn.exec_driver_sql("SELECT count(*) FROM documents WHERE is_retracted <> 0").scalar() or 0
            )

            def grouped(sql: str) -> dict[str, int]:
                return {str(key): int(n) for key, n in conn.exec_driver_sql(sql)}

            by_kind = grouped("SELECT kind, count(*) FROM documents GROUP BY kind ORDER BY kind")
            by_type = grouped("SELECT evidence_type, count(*) FROM documents GROUP BY evidence_type")
            passages_by_kind = grouped("SELECT kind, sum(n_passages) FROM documents GROUP BY kind ORDER BY kind")
            passages_by_type = grouped("SELECT evidence_type, sum(n_passages) FROM documents GROUP BY evidence_type")
            if self.dialect == "postgresql":
                size = int(conn.exec_driver_sql("SELECT pg_database_size(current_database())").scalar() or 0)
            else:
                path = Path(self.path)
                size = sum(
                    candidate.stat().st_size
                    for candidate in (path, path.with_name(path.name + "-wal"))
                    if candidate.exists()
                )
        order = {name: i for i, name in enumerate(EVIDENCE_TYPES)}

        def by_evidence(counts: dict[str, int]) -> dict[str, int]:
            return dict(sorted(counts.items(), key=lambda item: order.get(item[0], len(order))))

        return LibraryStats(
            path=str(self.path),
            documents=documents,
            passages=passages,
            by_kind=by_kind,
            by_evidence_type=by_evidence(by_type),
            passages_by_kind=passages_by_kind,
            passages_by_evidence_type=by_evidence(passages_by_type),
            retracted=retracted,
            size_bytes=size,
        )

    def check_integrity(self) -> bool:
        """Return True when SQLite's and FTS5's integrity checks pass and FTS rows match passages."""
        if self.dialect == "postgresql":  # the server keeps its own integrity; check the index holds every passage
            with self._connect() as conn:
                n_fts = conn.exec_driver_sql("SELECT count(*) FROM passages_fts").scalar()
                n_passages = conn.exec_driver_sql("SELECT count(*) FROM passages").scalar()
            return n_fts == n_passages
        try:
            with self._connect() as conn:
                ok = conn.exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"
                conn.exec_driver_sql("INSERT INTO passages_fts(passages_fts, rank) VALUES ('integrity-check', 1)")
                n_fts = conn.exec_driver_sql("SELECT count(*) FROM passages_fts").scalar()
                n_passages = conn.exec_driver_sql("SELECT count(*) FROM passages").scalar()
        except sa.exc.DatabaseError:
            return False
        return ok and n_fts == n_passages


def _configure_connection(dbapi_connection: sqlite3.Connection, _record: object) -> None:
    dbapi_connection.isolation_level = None  # transactions are begun by _begin (SQLAlchemy's pysqlite recipe)
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA busy_timeout = 30000")  # wait for another process's batch rather than fail
    cursor.execute("PRAGMA journal_mode = WAL")
    cursor.execute("PRAGMA synchronous = NORMAL")
    cursor.execute("PRAGMA foreign_keys = ON")
    cursor.close()
    # SQLite's lower() folds ASCII only; Python's str.casefold folds every script ('ÖDEM' matches 'ödem').
    dbapi_connection.create_function("casefold", 1, _casefold, deterministic=True)


def _casefold(text: object) -> str | None:
    return None if text is None else str(text).casefold()


def _qmark_to_format(
    conn: Connection, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool
) -> tuple[str, Any]:
    """PostgreSQL: medcite's own SQL in psycopg's placeholder form; compiled SQL untouched.

    In SQL given to ``exec_driver_sql``, ``?`` placeholders become psycopg's ``%s`` and a literal ``%`` is doubled,
    whether or not the statement has parameters; SQL that SQLAlchemy compiled is already in psycopg's form.
    """
    if getattr(context, "compiled", None) is None:
        statement = statement.replace("%", "%%").replace("?", "%s")
    return statement, parameters


REREVIEW_STATUSES = ("approved", "under_review")
"""Review statuses of an audience's answer that a change of a cited document sends back to re-review."""


def _flag_citing_articles(conn: Connection, changed: dict[str, str], now: str) -> int:
    """Move approved and in-review answers citing a changed document to 'needs_rereview', inside the caller's write.

    ``changed`` maps ``doc_id`` to what happened ('was retracted', 'was replaced by a changed record', ...); the
    reason kept names each document. The round's claims and approvals are forgotten (the audit log keeps them) and
    one audit-log entry per answer records the event (actor None: the library changed). The review tables are in the
    same database, so this is the same transaction as the change of the evidence.

    Returns:
        How many answers (article, audience) moved to re-review.
    """
    found: dict[tuple[int, str], tuple[str, list[str]]] = {}
    statuses = ",".join(f"'{status}'" for status in REREVIEW_STATUSES)
    for chunk in _chunks(sorted(changed)):
        for article_id, audience, doc_id, status in conn.exec_driver_sql(
            "SELECT c.article_id, c.audience, c.doc_id, r.status FROM article_citations c "
            "JOIN article_reviews r ON r.article_id = c.article_id AND r.audience = c.audience "
            "JOIN articles a ON a.article_id = c.article_id "
            f"WHERE c.doc_id IN ({_marks(chunk)}) AND r.status IN ({statuses}) AND a.status <> 'unpublished' "
            "ORDER BY c.article_id, c.audience, c.doc_id",
            tuple(chunk),
        ):
            found.setdefault((int(article_id), str(audience)), (str(status), []))[1].append(str(doc_id))
    for (article_id, audience), (status, doc_ids) in found.items():
        reason = "; ".join(f"cited source {doc_id} {changed[doc_id]}" for doc_id in doc_ids)
        key = (article_id, audience)
        conn.exec_driver_sql(
            "UPDATE article_reviews SET status = 'needs_rereview', reason = ?, updated_at = ? "
            "WHERE article_id = ? AND audience = ?",
            (reason, now, *key),
        )
        conn.exec_driver_sql("DELETE FROM review_claims WHERE article_id = ? AND audience = ?", key)
        conn.exec_driver_sql("DELETE FROM approvals WHERE article_id = ? AND audience = ?", key)
        conn.exec_driver_sql("UPDATE articles SET updated_at = ? WHERE article_id = ?", (now, article_id))
        conn.exec_driver_sql(
            "INSERT INTO audit_log(at, actor, article_id, action, from_status, to_status, revision, comment, audience) "
            "SELECT ?, NULL, article_id, 'needs_rereview', ?, 'needs_rereview', revision, ?, ? FROM articles "
            "WHERE article_id = ?",
            (now, status, reason, audience, article_id),
        )
    return len(found)


def _begin_postgresql(conn: Connection) -> None:
    """A write transaction (``sqlite_immediate``) takes the library's advisory lock first: writers queue."""
    if conn.get_execution_options().get("sqlite_immediate", False):
        conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_WRITE_LOCK})")


_FTS_PHRASE = re.compile(r'"((?:[^"]|"")*)"(\*?)|\b(OR|AND)\b')
_FTS_WORD = re.compile(r"[^\W_]+")


def pg_tsquery(match: str) -> tuple[str | None, list[str]]:
    """The PostgreSQL ``tsquery`` for one of medcite's FTS5 expressions, as SQL with ``?`` and its arguments.

    medcite builds FTS5 expressions of quoted phrases (``"a b"``), prefix phrases (``"ab"*``) joined by ``OR``
    or ``AND`` (``retrieve.query.fts_query``); a phrase becomes ``phraseto_tsquery`` of its text (words in order,
    parsed and stemmed as the index is), a prefix ``to_tsquery`` of its words with ``:*`` on the last, ``OR``
    ``||`` and ``AND`` ``&&`` (PostgreSQL manual, "Text Search Functions and Operators"). ``(None, [])`` when
    nothing is searchable.
    """
    parts: list[str] = []
    arguments: list[str] = []
    joiner = " || "
    for found in _FTS_PHRASE.finditer(match):
        if found.group(3):
            joiner = " && " if found.group(3) == "AND" else " || "
            continue
        phrase = found.group(1).replace('""', '"')
        words = _FTS_WORD.findall(phrase.lower())
        if not words:
            continue
        if parts:
            parts.append(joiner)
        if found.group(2):
            parts.append(f"to_tsquery('{PG_TEXT_SEARCH_CONFIG}', ?)")
            arguments.append(" <-> ".join(words) + ":*")
        else:  # the phrase as written: PostgreSQL's parser reads it as it read the passages ('IL-6': 'il', '-6')
            parts.append(f"phraseto_tsquery('{PG_TEXT_SEARCH_CONFIG}', ?)")
            arguments.append(phrase)
    if not parts:
        return None, []
    return "SELECT " + "".join(parts), arguments


def _sql_literal(text: str) -> str:
    """A SQL string literal (quotes doubled): for a partial index's predicate, which a query must repeat as is."""
    return "'" + text.replace("'", "''") + "'"


def _vector_text(blob: bytes) -> str:
    """Pgvector's text form (``[0.1,0.2,...]``) of float32 vector bytes."""
    import numpy as np

    return "[" + ",".join(repr(float(x)) for x in np.frombuffer(blob, dtype=np.float32)) + "]"


def _bump_version(conn: Connection) -> None:
    conn.exec_driver_sql("UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'library_version'")


def _begin(conn: Connection) -> None:
    """Begin a transaction; writers take the write lock at once, so concurrent ingests queue, not collide."""
    immediate = conn.get_execution_options().get("sqlite_immediate", False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def _document_row(
    document: Document, content_hash: str, n_passages: int, now: str, retracted_pmids: set[str]
) -> tuple[Any, ...]:
    is_retracted = document.is_retracted or (document.pmid in retracted_pmids)
    data = document.model_dump_json(exclude={"sections"})
    return (
        document.doc_id,
        document.kind,
        document.external_id,
        document.title,
        document.organization,
        document.journal,
        document.year,
        document.evidence_type,
        document.doi,
        document.pmid,
        document.pmcid,
        int(is_retracted),
        content_hash,
        n_passages,
        data,
        now,
    )


def _passage(row: Sequence[Any]) -> Passage:
    return Passage(
        passage_id=row[0],
        doc_id=row[1],
        n=row[2],
        section=row[3],
        kind=row[4],
        text=row[5],
        char_start=row[6],
        char_end=row[7],
    )


_DAMAGED = ("malformed", "no such table", "corrupt", "no such column")


def _fts_error(path: Path, match: str, exc: sa.exc.DatabaseError) -> StoreError:
    """The error for a failed FTS5 query: the query's fault, or (SQLite says so) a damaged library."""
    if any(word in str(exc.orig).lower() for word in _DAMAGED):
        return StoreError(
            f"The library {path} has a damaged full-text index ({exc.orig}). Point --library at another file, "
            "or move this one away and ingest again."
        )
    return StoreError(f"The full-text query {match!r} is not valid ({exc.orig}).")


def _foreign_error(path: Path | str, tables: set[str]) -> StoreError:
    kind = "PostgreSQL database" if is_database_url(path) else "SQLite file"
    return StoreError(
        f"{path} is a {kind} but not a medcite library (it has tables {', '.join(sorted(tables)[:5])}). "
        "Use another --library path."
    )


def _refuse_foreign(path: Path) -> None:
    """Refuse a SQLite file that holds tables but no medcite schema, reading it only.

    Opening it as a library would first switch it to WAL journal mode, changing someone else's database.
    """
    if not path.is_file() or path.stat().st_size == 0:
        return
    try:
        with closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)) as connection:
            tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    except sqlite3.Error:
        return  # not SQLite, locked or unreadable: the full open says which
    if tables and "alembic_version" not in tables:
        raise _foreign_error(path, tables)
