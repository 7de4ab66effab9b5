"""Articles, revisions, accounts, API tokens, web sessions and the audit log: the SQL of the review workflow.

Tables come from migrations 0004 and 0005 on the same library file as the evidence. Every change of an
article is one write transaction that also appends to ``audit_log`` (which triggers keep
append-only). Optimistic locking: a change names the revision it was based on, and a stale one
raises ``Conflict``. Imports ``errors`` and ``store.library`` only; the rules (which transition is
allowed from which status, which role may do what) live in ``medcite.review``.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from medcite.errors import Conflict, NotFound, ReviewError, StoreError
from medcite.store.library import Store

__all__ = ["ArticleRow", "AuditRow", "ReviewStore", "RevisionRow", "UserRow"]

_ARTICLE_COLUMNS = (
    "article_id, slug, question, audience, status, revision, thread_id, follow_up_of, redactions, "
    "claimed_by, approved_by, approved_at, created_at, updated_at"
)


@dataclass(frozen=True)
class UserRow:
    """A reviewer account (the password hash never leaves ``medcite.review``)."""

    user_id: int
    username: str
    role: str
    password_hash: str
    created_at: str


@dataclass(frozen=True)
class ArticleRow:
    """An article's current state; ``revision`` is the number of its latest revision (1-based)."""

    article_id: int
    slug: str
    question: str
    audience: str
    status: str
    revision: int
    thread_id: int
    follow_up_of: int | None
    redactions: list[str]
    claimed_by: str | None
    approved_by: str | None
    approved_at: str | None
    created_at: str
    updated_at: str


@dataclass(frozen=True)
class RevisionRow:
    """One revision of an article: the answer JSON per audience, who wrote it and when."""

    article_id: int
    revision: int
    answers: dict[str, str]
    author: str | None
    note: str
    created_at: str


@dataclass(frozen=True)
class AuditRow:
    """One audit-log entry: who did what to which article, when, from which revision."""

    entry_id: int
    at: str
    actor: str | None
    article_id: int | None
    action: str
    from_status: str | None
    to_status: str | None
    revision: int | None
    comment: str


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def _article(row: Sequence[Any]) -> ArticleRow:
    return ArticleRow(
        article_id=int(row[0]),
        slug=str(row[1]),
        question=str(row[2]),
        audience=str(row[3]),
        status=str(row[4]),
        revision=int(row[5]),
        thread_id=int(row[6]),
        follow_up_of=None if row[7] is None else int(row[7]),
        redactions=list(json.loads(row[8])),
        claimed_by=row[9],
        approved_by=row[10],
        approved_at=row[11],
        created_at=str(row[12]),
        updated_at=str(row[13]),
    )


def _audit(
    conn: Connection,
    *,
    at: str,
    actor: str | None,
    article_id: int | None,
    action: str,
    from_status: str | None,
    to_status: str | None,
    revision: int | None,
    comment: str = "",
) -> None:
    conn.exec_driver_sql(
        "INSERT INTO audit_log(at, actor, article_id, action, from_status, to_status, revision, comment) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (at, actor, article_id, action, from_status, to_status, revision, comment),
    )


class ReviewStore:
    """The review workflow's tables in one library (``ReviewStore(store)``)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    # -- secrets and accounts --------------------------------------------------------------------------

    def secret(self, name: str, make: str) -> str:
        """Return the secret stored under ``name``, storing ``make`` first when there is none.

        Used for the cookie-signing key, so sessions survive a restart. Writes to the store once.
        """
        with self.store.writing() as conn:
            conn.exec_driver_sql(
                "INSERT INTO web_secrets(name, value) VALUES (?, ?) ON CONFLICT DO NOTHING", (name, make)
            )
            return str(conn.exec_driver_sql("SELECT value FROM web_secrets WHERE name = ?", (name,)).scalar())

    def add_user(self, username: str, role: str, password_hash: str, *, end_sessions: bool = False) -> UserRow:
        """Create an account, or replace the role and password of an existing one; writes to the store.

        ``end_sessions`` also deletes the account's web sessions (a password reset signs it out everywhere).
        """
        now = _now()
        with self.store.writing() as conn:
            conn.exec_driver_sql(
                "INSERT INTO users(username, role, password_hash, created_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT(username) DO UPDATE SET role = excluded.role, password_hash = excluded.password_hash",
                (username, role, password_hash, now),
            )
            if end_sessions:
                conn.exec_driver_sql(
                    "DELETE FROM web_sessions WHERE user_id = (SELECT user_id FROM users WHERE username = ?)",
                    (username,),
                )
            _audit(
                conn,
                at=now,
                actor=None,
                article_id=None,
                action=f"account {username} ({role})",
                from_status=None,
                to_status=None,
                revision=None,
            )
        return self.get_user(username)

    def get_user(self, username: str) -> UserRow:
        """Return the account named ``username``.

        Raises:
            NotFound: No such account.
        """
        with self.store.reading() as conn:
            row = conn.exec_driver_sql(
                "SELECT user_id, username, role, password_hash, created_at FROM users WHERE username = ?", (username,)
            ).first()
        if row is None:
            raise NotFound("account", username)
        return UserRow(int(row[0]), str(row[1]), str(row[2]), str(row[3]), str(row[4]))

    def disable_user(self, username: str, unusable_hash: str) -> tuple[int, int]:
        """Disable an account: set an unusable password hash, end its web sessions, delete its API tokens.

        One transaction, logged. Writes to the store.

        Returns:
            ``(n_sessions, n_tokens)`` deleted.

        Raises:
            NotFound: No such account.
        """
        user = self.get_user(username)
        with self.store.writing() as conn:
            conn.exec_driver_sql("UPDATE users SET password_hash = ? WHERE user_id = ?", (unusable_hash, user.user_id))
            n_sessions = conn.exec_driver_sql("DELETE FROM web_sessions WHERE user_id = ?", (user.user_id,)).rowcount
            n_tokens = conn.exec_driver_sql("DELETE FROM api_tokens WHERE user_id = ?", (user.user_id,)).rowcount
            _audit(
                conn,
                at=_now(),
                actor=None,
                article_id=None,
                action=f"account {username} disabled",
                from_status=None,
                to_status=None,
                revision=None,
            )
        return int(n_sessions), int(n_tokens)

    def usernames_like(self, username: str) -> list[str]:
        """Return the account names equal to ``username`` ignoring ASCII case, in name order."""
        with self.store.reading() as conn:
            rows = conn.exec_driver_sql(
                "SELECT username FROM users WHERE lower(username) = lower(?) ORDER BY username", (username,)
            ).fetchall()
        return [str(row[0]) for row in rows]

    def add_session(self, username: str, session_sha256: str, *, max_age_s: int) -> None:
        """Store the SHA-256 (hex) of a new web session of ``username``, dropping sessions older than ``max_age_s``.

        Writes to the store.

        Raises:
            NotFound: No such account.
        """
        user = self.get_user(username)
        now = dt.datetime.now(dt.UTC)
        oldest = (now - dt.timedelta(seconds=max_age_s)).isoformat(timespec="seconds")
        with self.store.writing() as conn:
            conn.exec_driver_sql("DELETE FROM web_sessions WHERE created_at < ?", (oldest,))
            conn.exec_driver_sql(
                "INSERT INTO web_sessions(session_sha256, user_id, created_at) VALUES (?, ?, ?)",
                (session_sha256, user.user_id, now.isoformat(timespec="seconds")),
            )

    def user_for_session(self, session_sha256: str) -> UserRow | None:
        """Return the account a live web session belongs to, or None (ended, replaced or unknown)."""
        with self.store.reading() as conn:
            row = conn.exec_driver_sql(
                "SELECT u.user_id, u.username, u.role, u.password_hash, u.created_at FROM web_sessions s "
                "JOIN users u ON u.user_id = s.user_id WHERE s.session_sha256 = ?",
                (session_sha256,),
            ).first()
        return None if row is None else UserRow(int(row[0]), str(row[1]), str(row[2]), str(row[3]), str(row[4]))

    def rate_limit_hit(self, bucket: str, amount: int, window_s: float, now: float) -> float | None:
        """Count one request in a moving window shared by every web worker; writes to the store.

        Args:
            bucket: What is limited, for whom ('ask:203.0.113.7').
            amount: Requests allowed per window.
            window_s: The window, seconds.
            now: The request's time, Unix seconds.

        Returns:
            None when the request is allowed (and counted); else the seconds until the oldest counted request
            leaves the window (the request is not counted).
        """
        with self.store.writing() as conn:
            conn.exec_driver_sql("DELETE FROM web_rate_hits WHERE bucket = ? AND at <= ?", (bucket, now - window_s))
            row = conn.exec_driver_sql(
                "SELECT count(*), min(at) FROM web_rate_hits WHERE bucket = ?", (bucket,)
            ).first()
            count, oldest = (int(row[0]), row[1]) if row is not None else (0, None)
            if count >= amount and oldest is not None:
                return max(0.0, float(oldest) + window_s - now)
            conn.exec_driver_sql("INSERT INTO web_rate_hits(bucket, at) VALUES (?, ?)", (bucket, now))
        return None

    def delete_session(self, session_sha256: str) -> None:
        """End one web session (nothing happens when it is unknown); writes to the store."""
        with self.store.writing() as conn:
            conn.exec_driver_sql("DELETE FROM web_sessions WHERE session_sha256 = ?", (session_sha256,))

    def add_token(self, username: str, token_sha256: str) -> None:
        """Store the SHA-256 (hex) of a new API token of ``username``; writes to the store.

        Raises:
            NotFound: No such account.
        """
        user = self.get_user(username)
        with self.store.writing() as conn:
            conn.exec_driver_sql(
                "INSERT INTO api_tokens(token_sha256, user_id, created_at) VALUES (?, ?, ?)",
                (token_sha256, user.user_id, _now()),
            )

    def user_for_token(self, token_sha256: str) -> UserRow | None:
        """Return the account a token hash belongs to, or None."""
        with self.store.reading() as conn:
            row = conn.exec_driver_sql(
                "SELECT u.user_id, u.username, u.role, u.password_hash, u.created_at FROM api_tokens t "
                "JOIN users u ON u.user_id = t.user_id WHERE t.token_sha256 = ?",
                (token_sha256,),
            ).first()
        return None if row is None else UserRow(int(row[0]), str(row[1]), str(row[2]), str(row[3]), str(row[4]))

    # -- articles --------------------------------------------------------------------------------------

    def create_article(
        self,
        *,
        slug: str,
        question: str,
        audience: str,
        follow_up_of: int | None,
        redactions: Sequence[str],
        answers: dict[str, str],
        author: str | None,
    ) -> ArticleRow:
        """Create an article in status 'submitted' with revision 1, and log it; one transaction.

        Args:
            slug: URL slug of the (scrubbed) question.
            question: The scrubbed question.
            audience: The audience the asker chose.
            follow_up_of: The article this one follows up (same thread), or None for a new thread.
            redactions: Identifier kinds removed from the question.
            answers: Audience -> Answer JSON.
            author: Signed-in user who asked, or None (anonymous).

        Raises:
            NotFound: ``follow_up_of`` names no article.
        """
        now = _now()
        with self.store.writing() as conn:
            thread_id = None
            if follow_up_of is not None:
                thread_id = conn.exec_driver_sql(
                    "SELECT thread_id FROM articles WHERE article_id = ?", (follow_up_of,)
                ).scalar()
                if thread_id is None:
                    raise NotFound("article", str(follow_up_of))
            article_id = int(
                conn.exec_driver_sql("SELECT coalesce(max(article_id), 0) + 1 FROM articles").scalar() or 1
            )
            conn.exec_driver_sql(
                f"INSERT INTO articles({_ARTICLE_COLUMNS}) VALUES (?, ?, ?, ?, 'submitted', 1, ?, ?, ?, NULL, NULL, "
                "NULL, ?, ?)",
                (
                    article_id,
                    slug,
                    question,
                    audience,
                    thread_id if thread_id is not None else article_id,
                    follow_up_of,
                    json.dumps(list(redactions)),
                    now,
                    now,
                ),
            )
            conn.exec_driver_sql(
                "INSERT INTO article_revisions(article_id, revision, answers, author, note, created_at) "
                "VALUES (?, 1, ?, ?, 'composed from the library', ?)",
                (article_id, json.dumps(answers), author, now),
            )
            _audit(
                conn,
                at=now,
                actor=author,
                article_id=article_id,
                action="submit",
                from_status=None,
                to_status="submitted",
                revision=1,
                comment="identifiers removed: " + ", ".join(redactions) if redactions else "",
            )
        return self.get_article(article_id)

    def get_article(self, article_id: int) -> ArticleRow:
        """Return an article's current state.

        Raises:
            NotFound: No such article.
        """
        with self.store.reading() as conn:
            row = conn.exec_driver_sql(
                f"SELECT {_ARTICLE_COLUMNS} FROM articles WHERE article_id = ?", (article_id,)
            ).first()
        if row is None:
            raise NotFound("article", str(article_id))
        return _article(row)

    def list_articles(self, statuses: Sequence[str], *, limit: int = 200) -> list[ArticleRow]:
        """Return articles in the given statuses, oldest change first (a review queue), ties by id."""
        marks = ",".join("?" * len(statuses))
        with self.store.reading() as conn:
            rows = conn.exec_driver_sql(
                f"SELECT {_ARTICLE_COLUMNS} FROM articles WHERE status IN ({marks}) "
                "ORDER BY updated_at, article_id LIMIT ?",
                (*statuses, limit),
            ).fetchall()
        return [_article(row) for row in rows]

    def thread(self, thread_id: int) -> list[ArticleRow]:
        """Return the articles of one thread in the order they were asked."""
        with self.store.reading() as conn:
            rows = conn.exec_driver_sql(
                f"SELECT {_ARTICLE_COLUMNS} FROM articles WHERE thread_id = ? ORDER BY article_id", (thread_id,)
            ).fetchall()
        return [_article(row) for row in rows]

    def get_revision(self, article_id: int, revision: int) -> RevisionRow:
        """Return one revision of an article.

        Raises:
            NotFound: No such article or revision.
        """
        with self.store.reading() as conn:
            row = conn.exec_driver_sql(
                "SELECT article_id, revision, answers, author, note, created_at FROM article_revisions "
                "WHERE article_id = ? AND revision = ?",
                (article_id, revision),
            ).first()
        if row is None:
            raise NotFound("article revision", f"{article_id}@{revision}")
        return RevisionRow(int(row[0]), int(row[1]), dict(json.loads(row[2])), row[3], str(row[4]), str(row[5]))

    def list_revisions(self, article_id: int) -> list[RevisionRow]:
        """Return every revision of an article, oldest first."""
        with self.store.reading() as conn:
            rows = conn.exec_driver_sql(
                "SELECT article_id, revision, answers, author, note, created_at FROM article_revisions "
                "WHERE article_id = ? ORDER BY revision",
                (article_id,),
            ).fetchall()
        return [RevisionRow(int(r[0]), int(r[1]), dict(json.loads(r[2])), r[3], str(r[4]), str(r[5])) for r in rows]

    def _locked(self, conn: Connection, article_id: int, expected_revision: int, allowed: Sequence[str]) -> ArticleRow:
        row = conn.exec_driver_sql(
            f"SELECT {_ARTICLE_COLUMNS} FROM articles WHERE article_id = ?", (article_id,)
        ).first()
        if row is None:
            raise NotFound("article", str(article_id))
        article = _article(row)
        if article.revision != expected_revision:
            raise Conflict(article_id, expected_revision, article.revision)
        if article.status not in allowed:
            raise ReviewError(
                f"Article {article_id} is {article.status.replace('_', ' ')}; this is only possible when it is "
                + " or ".join(status.replace("_", " ") for status in allowed)
                + "."
            )
        return article

    def set_status(
        self,
        article_id: int,
        *,
        expected_revision: int,
        allowed_from: Sequence[str],
        to_status: str,
        action: str,
        actor: str,
        comment: str = "",
    ) -> ArticleRow:
        """Move an article to ``to_status`` and log it, in one transaction (compare-and-set).

        Approval records ``actor`` and the time as approver; a claim records the claimant.

        Raises:
            NotFound: No such article.
            Conflict: The article's revision is not ``expected_revision`` (HTTP 409).
            ReviewError: Its status is not one of ``allowed_from`` (HTTP 409).
        """
        now = _now()
        try:
            with self.store.writing() as conn:
                article = self._locked(conn, article_id, expected_revision, allowed_from)
                extra = ""
                values: list[Any] = [to_status, now]
                if to_status == "approved":
                    extra = ", approved_by = ?, approved_at = ?"
                    values += [actor, now]
                elif to_status == "under_review":
                    extra = ", claimed_by = ?, approved_by = NULL, approved_at = NULL"
                    values += [actor]
                elif to_status == "unpublished":
                    extra = ", approved_by = NULL, approved_at = NULL"
                conn.exec_driver_sql(
                    f"UPDATE articles SET status = ?, updated_at = ?{extra} WHERE article_id = ?",
                    (*values, article_id),
                )
                _audit(
                    conn,
                    at=now,
                    actor=actor,
                    article_id=article_id,
                    action=action,
                    from_status=article.status,
                    to_status=to_status,
                    revision=article.revision,
                    comment=comment,
                )
        except sa.exc.DBAPIError as exc:
            raise StoreError(f"Updating article {article_id} failed ({exc.orig}); nothing changed.") from exc
        return self.get_article(article_id)

    def add_revision(
        self,
        article_id: int,
        *,
        expected_revision: int,
        allowed_from: Sequence[str],
        answers: dict[str, str],
        author: str,
        note: str,
    ) -> ArticleRow:
        """Store a new revision (``expected_revision + 1``) and log the edit, in one transaction.

        Raises:
            NotFound: No such article.
            Conflict: The article's revision is not ``expected_revision`` (HTTP 409).
            ReviewError: Its status is not one of ``allowed_from`` (HTTP 409).
        """
        now = _now()
        try:
            with self.store.writing() as conn:
                article = self._locked(conn, article_id, expected_revision, allowed_from)
                new = article.revision + 1
                conn.exec_driver_sql(
                    "INSERT INTO article_revisions(article_id, revision, answers, author, note, created_at) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    (article_id, new, json.dumps(answers), author, note, now),
                )
                conn.exec_driver_sql(
                    "UPDATE articles SET revision = ?, updated_at = ? WHERE article_id = ?", (new, now, article_id)
                )
                _audit(
                    conn,
                    at=now,
                    actor=author,
                    article_id=article_id,
                    action="edit",
                    from_status=article.status,
                    to_status=article.status,
                    revision=article.revision,
                    comment=note,
                )
        except sa.exc.DBAPIError as exc:
            raise StoreError(f"Saving an edit of article {article_id} failed ({exc.orig}); nothing changed.") from exc
        return self.get_article(article_id)

    # -- audit log -------------------------------------------------------------------------------------

    def audit_entries(self, *, article_id: int | None = None, limit: int = 500) -> list[AuditRow]:
        """Return audit-log entries, newest first (ties by entry id), optionally of one article."""
        where, args = ("WHERE article_id = ?", (article_id,)) if article_id is not None else ("", ())
        with self.store.reading() as conn:
            rows = conn.exec_driver_sql(
                "SELECT entry_id, at, actor, article_id, action, from_status, to_status, revision, comment "
                f"FROM audit_log {where} ORDER BY entry_id DESC LIMIT ?",
                (*args, limit),
            ).fetchall()
        return [AuditRow(int(r[0]), str(r[1]), r[2], r[3], str(r[4]), r[5], r[6], r[7], str(r[8])) for r in rows]
