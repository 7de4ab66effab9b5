"""Articles, revisions, accounts, API tokens, web sessions and the audit log: the SQL of the review workflow.

Tables come from migrations 0004, 0005 and 0008 on the same library file as the evidence. Every change of an
article is one write transaction that also appends to ``audit_log`` (which triggers keep
append-only). Optimistic locking: a change names the revision it was based on, and a stale one
raises ``Conflict``. Imports ``errors``, ``models`` and ``store.library`` only; the rules (which transition is
allowed from which status, which role may do what) live in ``medcite.review``.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from medcite.errors import Conflict, NotFound, StoreError
from medcite.models import AUDIENCES
from medcite.store.library import Store, _chunks, _marks, like_contains

__all__ = [
    "ArticleRow",
    "AudienceReviewRow",
    "AuditRow",
    "QueueRow",
    "ReviewChange",
    "ReviewState",
    "ReviewStore",
    "RevisionRow",
    "UserRow",
    "UserSummaryRow",
    "cited_documents",
    "editors_of",
    "shown_status",
]

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
class AudienceReviewRow:
    """The review of one audience's answer: its status, why it needs re-review, its claimants and approvals."""

    audience: str
    status: str
    reason: str
    updated_at: str
    claims: tuple[str, ...] = ()
    approvals: tuple[tuple[str, int, str], ...] = ()
    """``(reviewer, revision approved, at)``, in order of approval."""


def shown_status(article: ArticleRow, status: str) -> str:
    """An audience's review ``status`` as readers see it: 'unpublished' once the whole article is."""
    return "unpublished" if article.status == "unpublished" else status


@dataclass(frozen=True)
class ReviewState:
    """What a review rule decides on, read under the library's write lock (``ReviewStore.change_review``)."""

    article: ArticleRow
    review: AudienceReviewRow
    editors: tuple[str, ...]
    """Authors of the revisions that changed this audience's answer (the composer's revision 1 has none)."""

    @property
    def status(self) -> str:
        """The audience's status as shown (``shown_status``)."""
        return shown_status(self.article, self.review.status)


@dataclass(frozen=True)
class ReviewChange:
    """What a review rule decided: the audience's new status and which records to write."""

    to_status: str
    claim: bool = False
    """Record the actor as a claimant (assigned reviewer) of this audience's answer."""
    approve: bool = False
    """Record the actor's approval of the current revision."""
    new_round: bool = False
    """Forget the claims and approvals of the previous round first (re-opening, re-review)."""
    unpublish: bool = False
    """Withdraw the whole article (every audience)."""


@dataclass(frozen=True)
class QueueRow:
    """One audience of one article in a list: the article and that audience's review status."""

    article: ArticleRow
    audience: str
    status: str
    reason: str
    updated_at: str


@dataclass(frozen=True)
class UserSummaryRow:
    """An account as ``medcite users list`` shows it."""

    username: str
    role: str
    enabled: bool
    last_login: str | None
    n_tokens: int
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
    audience: str | None = None


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
    audience: str | None = None,
) -> None:
    conn.exec_driver_sql(
        "INSERT INTO audit_log(at, actor, article_id, action, from_status, to_status, revision, comment, audience) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (at, actor, article_id, action, from_status, to_status, revision, comment, audience),
    )


def cited_documents(answers: Mapping[str, str]) -> dict[str, list[str]]:
    """The ``doc_id`` of every document each audience's answer cites: ``{audience: [doc_id, ...]}``, sorted.

    ``answers`` maps audience -> Answer JSON (``Reference.passage_id`` is ``'<doc_id>#p<n>'``).
    """
    return {
        audience: sorted({ref["passage_id"].rsplit("#", 1)[0] for ref in json.loads(text).get("references", [])})
        for audience, text in answers.items()
    }


def editors_of(history: Sequence[tuple[str | None, Mapping[str, str]]], audience: str) -> tuple[str, ...]:
    """Authors of the revisions that changed ``audience``'s answer, each once, in order.

    ``history`` is ``(author, {audience: Answer JSON})`` per revision, oldest first; revision 1 (composed) has no
    author and changes nothing.
    """
    editors: list[str] = []
    previous: str | None = None
    for n, (author, answers) in enumerate(history):
        text = answers.get(audience)
        if n and text != previous and author and author not in editors:
            editors.append(str(author))
        previous = text
    return tuple(editors)


def _write_citations(conn: Connection, article_id: int, answers: Mapping[str, str]) -> None:
    conn.exec_driver_sql("DELETE FROM article_citations WHERE article_id = ?", (article_id,))
    rows = [(article_id, audience, doc) for audience, docs in cited_documents(answers).items() for doc in docs]
    if rows:
        conn.exec_driver_sql("INSERT INTO article_citations(article_id, audience, doc_id) VALUES (?, ?, ?)", rows)


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
        return self.replace_password(username, unusable_hash, event="disabled")

    def replace_password(self, username: str, password_hash: str, *, event: str = "password reset") -> tuple[int, int]:
        """Set an account's password hash, end its web sessions and delete its API tokens; one transaction, logged.

        Returns:
            ``(n_sessions, n_tokens)`` deleted.

        Raises:
            NotFound: No such account.
        """
        user = self.get_user(username)
        with self.store.writing() as conn:
            conn.exec_driver_sql("UPDATE users SET password_hash = ? WHERE user_id = ?", (password_hash, user.user_id))
            n_sessions = conn.exec_driver_sql("DELETE FROM web_sessions WHERE user_id = ?", (user.user_id,)).rowcount
            n_tokens = conn.exec_driver_sql("DELETE FROM api_tokens WHERE user_id = ?", (user.user_id,)).rowcount
            _audit(
                conn,
                at=_now(),
                actor=None,
                article_id=None,
                action=f"account {username} {event}",
                from_status=None,
                to_status=None,
                revision=None,
            )
        return int(n_sessions), int(n_tokens)

    def list_users(self, disabled_hash: str) -> list[UserSummaryRow]:
        """Return every account in name order; an account whose hash is ``disabled_hash`` is not enabled."""
        with self.store.reading() as conn:
            rows = conn.exec_driver_sql(
                "SELECT u.username, u.role, u.password_hash, u.last_login_at, u.created_at, "
                "(SELECT count(*) FROM api_tokens t WHERE t.user_id = u.user_id) FROM users u ORDER BY u.username"
            ).fetchall()
        return [UserSummaryRow(str(r[0]), str(r[1]), r[2] != disabled_hash, r[3], int(r[5]), str(r[4])) for r in rows]

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
            conn.exec_driver_sql(
                "UPDATE users SET last_login_at = ? WHERE user_id = ?",
                (now.isoformat(timespec="seconds"), user.user_id),
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
            conn.exec_driver_sql(
                "INSERT INTO article_reviews(article_id, audience, status, updated_at) VALUES (?, ?, 'submitted', ?)",
                [(article_id, audience, now) for audience in AUDIENCES],
            )
            _write_citations(conn, article_id, answers)
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

    def list_reviews(
        self, statuses: Sequence[str], *, asked_for_only: bool = False, first: Sequence[str] = (), limit: int = 200
    ) -> list[QueueRow]:
        """Return the audiences of published articles whose review is in ``statuses``, as ``QueueRow``s.

        Ordered by ``first`` (statuses listed there come before the rest, in that order), then oldest change first,
        then article id and audience. ``asked_for_only`` keeps only the audience each asker chose.
        """
        marks = ",".join("?" * len(statuses))
        rank = " ".join(f"WHEN ? THEN {i}" for i in range(len(first)))
        order = f"CASE r.status {rank} ELSE {len(first)} END, " if first else ""
        columns = ", ".join(f"a.{column.strip()}" for column in _ARTICLE_COLUMNS.split(","))
        with self.store.reading() as conn:
            rows = conn.exec_driver_sql(
                f"SELECT {columns}, r.audience, r.status, r.reason, r.updated_at FROM article_reviews r "
                "JOIN articles a ON a.article_id = r.article_id "
                f"WHERE a.status <> 'unpublished' AND r.status IN ({marks})"
                + (" AND r.audience = a.audience" if asked_for_only else "")
                + f" ORDER BY {order}r.updated_at, r.article_id, r.audience LIMIT ?",
                (*statuses, *first, limit),
            ).fetchall()
        return [QueueRow(_article(row), str(row[14]), str(row[15]), str(row[16]), str(row[17])) for row in rows]

    def find_articles(self, words: str, *, limit: int = 5) -> list[ArticleRow]:
        """Published articles whose question contains ``words`` (case-insensitive), newest first."""
        condition, pattern = like_contains(self.store, "question", words)
        with self.store.reading() as conn:
            rows = conn.exec_driver_sql(
                f"SELECT {_ARTICLE_COLUMNS} FROM articles WHERE status <> 'unpublished' AND {condition} "
                "ORDER BY article_id DESC LIMIT ?",
                (pattern, limit),
            ).fetchall()
        return [_article(row) for row in rows]

    def find_article_asked(self, question: str) -> ArticleRow | None:
        """The newest published article whose question is ``question`` (ignoring case), or None."""
        with self.store.reading() as conn:
            row = conn.exec_driver_sql(
                f"SELECT {_ARTICLE_COLUMNS} FROM articles WHERE status <> 'unpublished' AND lower(question) = lower(?) "
                "ORDER BY article_id DESC LIMIT 1",
                (question,),
            ).first()
        return None if row is None else _article(row)

    def audience_reviews(self, article_id: int) -> dict[str, AudienceReviewRow]:
        """Return the review of each audience's answer of an article (empty when there is no such article)."""
        with self.store.reading() as conn:
            return self._audience_reviews(conn, article_id)

    @staticmethod
    def _audience_reviews(conn: Connection, article_id: int) -> dict[str, AudienceReviewRow]:
        claims: dict[str, list[str]] = {}
        for audience, reviewer in conn.exec_driver_sql(
            "SELECT audience, reviewer FROM review_claims WHERE article_id = ? ORDER BY at, reviewer", (article_id,)
        ):
            claims.setdefault(str(audience), []).append(str(reviewer))
        approvals: dict[str, list[tuple[str, int, str]]] = {}
        for audience, reviewer, revision, at in conn.exec_driver_sql(
            "SELECT audience, reviewer, revision, at FROM approvals WHERE article_id = ? ORDER BY at, reviewer",
            (article_id,),
        ):
            approvals.setdefault(str(audience), []).append((str(reviewer), int(revision), str(at)))
        rows = conn.exec_driver_sql(
            "SELECT audience, status, reason, updated_at FROM article_reviews WHERE article_id = ?", (article_id,)
        )
        found = {
            str(r[0]): AudienceReviewRow(
                audience=str(r[0]),
                status=str(r[1]),
                reason=str(r[2]),
                updated_at=str(r[3]),
                claims=tuple(claims.get(str(r[0]), ())),
                approvals=tuple(approvals.get(str(r[0]), ())),
            )
            for r in rows
        }
        return {audience: found[audience] for audience in AUDIENCES if audience in found}

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

    def _locked(self, conn: Connection, article_id: int, expected_revision: int) -> ArticleRow:
        row = conn.exec_driver_sql(
            f"SELECT {_ARTICLE_COLUMNS} FROM articles WHERE article_id = ?", (article_id,)
        ).first()
        if row is None:
            raise NotFound("article", str(article_id))
        article = _article(row)
        if article.revision != expected_revision:
            raise Conflict(article_id, expected_revision, article.revision)
        return article

    @staticmethod
    def _editors(conn: Connection, article_id: int, audience: str) -> tuple[str, ...]:
        history = conn.exec_driver_sql(
            "SELECT author, answers FROM article_revisions WHERE article_id = ? ORDER BY revision", (article_id,)
        )
        return editors_of([(author, json.loads(answers)) for author, answers in history], audience)

    def change_review(
        self,
        article_id: int,
        audience: str,
        *,
        expected_revision: int,
        action: str,
        actor: str,
        comment: str,
        decide: Callable[[ReviewState], ReviewChange],
    ) -> ArticleRow:
        """Apply one review action to one audience's answer, in one transaction under the library's write lock.

        ``decide`` (the rules, in ``medcite.review``) sees the state read inside the transaction and returns the
        change, or raises to refuse it; so two reviewers acting at the same moment are decided one after the other
        (two approvals cannot both count as the first). The change and its audit-log entry are written together.

        Raises:
            NotFound: No such article.
            Conflict: The article's revision is not ``expected_revision`` (HTTP 409).
            StoreError: The write failed; nothing changed.
            Whatever ``decide`` raises (nothing is written).
        """
        now = _now()
        try:
            with self.store.writing() as conn:
                article = self._locked(conn, article_id, expected_revision)
                review = self._audience_reviews(conn, article_id)[audience]
                state = ReviewState(article, review, self._editors(conn, article_id, audience))
                change = decide(state)
                key = (article_id, audience)
                if change.new_round:
                    conn.exec_driver_sql("DELETE FROM review_claims WHERE article_id = ? AND audience = ?", key)
                    conn.exec_driver_sql("DELETE FROM approvals WHERE article_id = ? AND audience = ?", key)
                if change.claim:
                    conn.exec_driver_sql(
                        "INSERT INTO review_claims(article_id, audience, reviewer, at) VALUES (?, ?, ?, ?) "
                        "ON CONFLICT DO NOTHING",
                        (*key, actor, now),
                    )
                if change.approve:
                    conn.exec_driver_sql(
                        "INSERT INTO approvals(article_id, audience, reviewer, revision, at) VALUES (?, ?, ?, ?, ?)",
                        (*key, actor, article.revision, now),
                    )
                if change.unpublish:
                    conn.exec_driver_sql(
                        "UPDATE articles SET status = 'unpublished', updated_at = ? WHERE article_id = ?",
                        (now, article_id),
                    )
                else:
                    reason = review.reason if change.to_status == review.status else ""
                    conn.exec_driver_sql(
                        "UPDATE article_reviews SET status = ?, reason = ?, updated_at = ? "
                        "WHERE article_id = ? AND audience = ?",
                        (change.to_status, reason, now, *key),
                    )
                    conn.exec_driver_sql("UPDATE articles SET updated_at = ? WHERE article_id = ?", (now, article_id))
                _audit(
                    conn,
                    at=now,
                    actor=actor,
                    article_id=article_id,
                    action=action,
                    from_status=state.status,
                    to_status="unpublished" if change.unpublish else change.to_status,
                    revision=article.revision,
                    comment=comment,
                    audience=None if change.unpublish else audience,
                )
        except sa.exc.DBAPIError as exc:
            raise StoreError(f"Updating article {article_id} failed ({exc.orig}); nothing changed.") from exc
        return self.get_article(article_id)

    def add_revision(
        self,
        article_id: int,
        audience: str,
        *,
        expected_revision: int,
        answers: dict[str, str],
        author: str,
        note: str,
        check: Callable[[ReviewState], None],
    ) -> ArticleRow:
        """Store a new revision (``expected_revision + 1``) changing ``audience``'s answer, and log the edit.

        One transaction: ``check`` (the rules) sees the state read under the write lock and raises to refuse.
        The audience's approvals are forgotten (the text they approved changed); its claims stay.

        Raises:
            NotFound: No such article.
            Conflict: The article's revision is not ``expected_revision`` (HTTP 409).
            StoreError: The write failed; nothing changed.
            Whatever ``check`` raises (nothing is written).
        """
        now = _now()
        try:
            with self.store.writing() as conn:
                article = self._locked(conn, article_id, expected_revision)
                review = self._audience_reviews(conn, article_id)[audience]
                check(ReviewState(article, review, self._editors(conn, article_id, audience)))
                new = article.revision + 1
                conn.exec_driver_sql(
                    "INSERT INTO article_revisions(article_id, revision, answers, author, note, created_at) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    (article_id, new, json.dumps(answers), author, note, now),
                )
                conn.exec_driver_sql(
                    "UPDATE articles SET revision = ?, updated_at = ? WHERE article_id = ?", (new, now, article_id)
                )
                conn.exec_driver_sql(
                    "DELETE FROM approvals WHERE article_id = ? AND audience = ?", (article_id, audience)
                )
                _write_citations(conn, article_id, answers)
                _audit(
                    conn,
                    at=now,
                    actor=author,
                    article_id=article_id,
                    action="edit",
                    from_status=review.status,
                    to_status=review.status,
                    revision=article.revision,
                    comment=note,
                    audience=audience,
                )
        except sa.exc.DBAPIError as exc:
            raise StoreError(f"Saving an edit of article {article_id} failed ({exc.orig}); nothing changed.") from exc
        return self.get_article(article_id)

    def log_refusal(
        self, *, actor: str, article_id: int | None, audience: str | None, action: str, reason: str
    ) -> None:
        """Append a refused action of a signed-in account to the audit log (``action`` 'refused <action>')."""
        with self.store.writing() as conn:
            _audit(
                conn,
                at=_now(),
                actor=actor,
                article_id=article_id,
                action=f"refused {action}",
                from_status=None,
                to_status=None,
                revision=None,
                comment=reason,
                audience=audience,
            )

    def citing_reviews(self, doc_ids: Sequence[str]) -> list[tuple[int, str, str]]:
        """``(article_id, audience, doc_id)`` of every audience's answer citing one of ``doc_ids``."""
        found: list[tuple[int, str, str]] = []
        with self.store.reading() as conn:
            for chunk in _chunks(list(doc_ids)):
                found += [
                    (int(r[0]), str(r[1]), str(r[2]))
                    for r in conn.exec_driver_sql(
                        f"SELECT article_id, audience, doc_id FROM article_citations WHERE doc_id IN ({_marks(chunk)}) "
                        "ORDER BY article_id, audience, doc_id",
                        tuple(chunk),
                    )
                ]
        return found

    # -- audit log -------------------------------------------------------------------------------------

    def audit_entries(self, *, article_id: int | None = None, limit: int = 500) -> list[AuditRow]:
        """Return audit-log entries, newest first (ties by entry id), optionally of one article."""
        where, args = ("WHERE article_id = ?", (article_id,)) if article_id is not None else ("", ())
        with self.store.reading() as conn:
            rows = conn.exec_driver_sql(
                "SELECT entry_id, at, actor, article_id, action, from_status, to_status, revision, comment, audience "
                f"FROM audit_log {where} ORDER BY entry_id DESC LIMIT ?",
                (*args, limit),
            ).fetchall()
        return [AuditRow(int(r[0]), str(r[1]), r[2], r[3], str(r[4]), r[5], r[6], r[7], str(r[8]), r[9]) for r in rows]
