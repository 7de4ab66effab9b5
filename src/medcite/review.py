"""The medical review workflow: articles, their revisions, the review state machine, roles and accounts.

An article is a scrubbed question with its answer for every audience (composed by ``answer.ask``
when it is submitted). Each audience's answer (clinician, student, patient) is reviewed on its own:
reviewers claim it, edit statements (each edit is a new revision with its author and time), request
changes or approve it; editors unpublish the whole article. An answer is approved once ``approvals``
distinct reviewers approved its current text, none of them an author of an edit of that answer (four
eyes); an edit forgets the approvals given before it. When a document an approved or in-review answer
cites is retracted, replaced or removed, the answer moves to "needs re-review" with the reason
(``store.library``). Every change names the revision it was based on (optimistic locking: a stale one
raises ``Conflict``, HTTP 409) and is written to the append-only audit log by ``store.review``, as are
refusals of signed-in accounts. Pure rules plus calls into ``ReviewStore``; imports ``models``,
``errors``, ``privacy``, ``answer``, ``retrieve`` and ``store``, never ``web`` or ``cli``.

    action           from (the audience's answer)                               to                      least role
    claim            submitted, changes_requested, approved, needs_rereview,    under_review            reviewer
                     under_review (joins the reviewers of this round)
    edit             under_review                                               (a new revision)        reviewer
    request_changes  under_review (with a comment)                              changes_requested       reviewer
    approve          under_review, claimed by the approver, who edited none     approved once N
                     of its text                                                reviewers approved      reviewer
    unpublish        any (the whole article)                                    unpublished             editor
"""

from __future__ import annotations

import difflib
import hashlib
import re
import secrets
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from pydantic import BaseModel, ConfigDict, Field

from medcite.answer import PENDING_REVIEW_NOTICE, ask, mark_removed_references
from medcite.errors import (
    AuthenticationFailed,
    ConfigError,
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    QueryError,
    ReviewError,
    Unpublished,
)
from medcite.models import (
    AUDIENCES,
    Answer,
    AnswerSection,
    Audience,
    BottomLine,
    ComposeEvent,
    DocumentSummary,
    Passage,
    PubMedSearch,
    Statement,
)
from medcite.privacy import ScrubResult, scrub_question
from medcite.retrieve import Retriever
from medcite.store import Store
from medcite.store.review import (
    ArticleRow,
    AudienceReviewRow,
    ReviewChange,
    ReviewState,
    ReviewStore,
    RevisionRow,
    UserRow,
    editors_of,
    shown_status,
)

if TYPE_CHECKING:
    from medcite.llm import LLMClient

__all__ = [
    "AUDIENCES",
    "EDITED_NOTICE",
    "ROLES",
    "TRANSITIONS",
    "AccountChange",
    "Action",
    "Approval",
    "AudienceReview",
    "Article",
    "ArticleSummary",
    "AuditEntry",
    "Role",
    "RevisionInfo",
    "StatementEdit",
    "Status",
    "Transition",
    "User",
    "add_user",
    "answer_events",
    "article_url",
    "audit_log",
    "authenticate",
    "check_length",
    "disable_user",
    "edit_statement",
    "end_session",
    "get_article",
    "issue_token",
    "list_queue",
    "require_role",
    "revision_diff",
    "revisions",
    "slugify",
    "stale_reviews",
    "SourceDetail",
    "list_sources",
    "source_detail",
    "list_users",
    "reset_password",
    "prepare_question",
    "UserInfo",
    "approved_articles",
    "start_session",
    "statement_locations",
    "submit_article",
    "transition",
    "user_for_session",
    "user_for_token",
]

Role = Literal["reviewer", "editor", "admin"]
Status = Literal["submitted", "under_review", "changes_requested", "approved", "needs_rereview", "unpublished"]
Action = Literal["claim", "request_changes", "approve", "unpublish"]
ROLES: tuple[str, ...] = ("reviewer", "editor", "admin")
"""Roles, least to most powerful: each role may do everything the roles before it may."""
EDITABLE_STATUSES: tuple[str, ...] = ("under_review",)
QUEUE_STATUSES: tuple[str, ...] = ("needs_rereview", "submitted", "changes_requested", "under_review")
"""Review statuses of answers in the review queue; answers needing re-review come first."""
MAX_QUESTION_CHARS = 2000
QUOTED_CLAIM = "Every statement is quoted from the cited source."
EDITED_NOTICE = (
    "Statements marked \u201cedited by a reviewer\u201d were reworded by a medical reviewer and are not verbatim "
    "quotes of the cited source; the other statements are quoted from it."
)
"""Replaces ``QUOTED_CLAIM`` in the disclaimer of an answer with reviewer-edited statements (product copy)."""
APPROVED_NOTICE = "Reviewed and approved by a medical reviewer."
"""Replaces ``answer.PENDING_REVIEW_NOTICE`` in the disclaimer of an approved article (product copy)."""


@dataclass(frozen=True)
class Transition:
    """One review action: the statuses it may start from, where it leads, the least role allowed."""

    allowed_from: tuple[str, ...]
    to_status: str
    min_role: str
    needs_comment: bool = False


TRANSITIONS: dict[str, Transition] = {
    "claim": Transition(
        ("submitted", "changes_requested", "approved", "needs_rereview", "under_review"), "under_review", "reviewer"
    ),
    "request_changes": Transition(("under_review",), "changes_requested", "reviewer", needs_comment=True),
    "approve": Transition(("under_review",), "approved", "reviewer"),
    "unpublish": Transition(
        ("submitted", "under_review", "changes_requested", "approved", "needs_rereview"), "unpublished", "editor"
    ),
}

_HASHER = PasswordHasher()  # argon2id with argon2-cffi's RFC 9106 low-memory defaults


class User(BaseModel):
    """A signed-in reviewer, editor or administrator."""

    model_config = ConfigDict(frozen=True)

    username: str = Field(description="Account name.")
    role: Role = Field(description="reviewer < editor < admin; each may do what the roles before it may.")


class AccountChange(BaseModel):
    """What ``add_user`` did: created the account, or updated an existing one (and what changed)."""

    user: User
    is_created: bool = Field(description="True: a new account; False: an existing one was updated.")
    previous_role: Role | None = Field(default=None, description="The role before the update (None: created).")
    has_new_password: bool = Field(description="The password differs from the previous one (always True: created).")


class StatementEdit(BaseModel):
    """A statement of the shown answer that a reviewer reworded: derived from the revision history."""

    location: str = Field(description="'bottom_line' or 'SECTION.STATEMENT' (0-based), as in an edit.")
    author: str = Field(description="Reviewer who last changed this statement.")
    at: str = Field(description="When, ISO 8601 UTC.")
    revision: int = Field(ge=1, description="The revision that last changed it.")


class ArticleSummary(BaseModel):
    """An article in a list (thread, review queue): the review status of one audience's answer."""

    id: int = Field(description="Article id (1-based, in order of asking).")
    url: str = Field(description="Path of the article page, '/articles/{id}/{slug}' (with '?audience=' in a queue).")
    question: str = Field(description="The question, scrubbed of personal identifiers.")
    audience: Audience = Field(description="The audience whose answer `status` is about.")
    status: Status = Field(description="Review status of that answer ('unpublished': the whole article).")
    reason: str = Field(default="", description="Why it needs re-review (needs_rereview only), else ''.")
    updated_at: str = Field(description="Last change, ISO 8601 UTC, seconds.")


class Approval(BaseModel):
    """One reviewer's approval of an audience's answer."""

    reviewer: str = Field(description="Account that approved.")
    revision: int = Field(ge=1, description="The revision approved.")
    at: str = Field(description="When, ISO 8601 UTC.")


class AudienceReview(BaseModel):
    """The review of one audience's answer."""

    audience: Audience
    status: Status = Field(description="Review status of this answer ('unpublished': the whole article).")
    reason: str = Field(default="", description="Why it needs re-review (needs_rereview only), else ''.")
    updated_at: str = Field(description="Last change of this review, ISO 8601 UTC.")
    claimed_by: list[str] = Field(default_factory=list, description="Reviewers who claimed it in this round.")
    approvals: list[Approval] = Field(default_factory=list, description="Approvals of its current text.")
    approvals_needed: int = Field(ge=1, description="Distinct approvals it needs (setting review_approvals).")
    excluded_approvers: list[str] = Field(
        default_factory=list, description="Reviewers who edited this answer's text and so may not approve it."
    )


class Article(BaseModel):
    """An article as the API returns it: review state plus the answer for one audience."""

    id: int = Field(description="Article id.")
    url: str = Field(description="Path of the article page, '/articles/{id}/{slug}'.")
    question: str = Field(description="The question, scrubbed of personal identifiers.")
    audience: Audience = Field(description="Audience of `answer`.")
    status: Status = Field(description="submitted | under_review | changes_requested | approved | unpublished.")
    revision: int = Field(ge=1, description="Current revision; name it in an edit or transition (optimistic lock).")
    created_at: str = Field(description="When it was asked, ISO 8601 UTC.")
    updated_at: str = Field(description="Last change of content or status, ISO 8601 UTC.")
    follow_up_of: int | None = Field(default=None, description="The article this one follows up, else None.")
    thread_id: int = Field(description="Id of the first article of the thread.")
    redactions: list[str] = Field(
        default_factory=list, description="Kinds of personal identifiers removed from the question (empty: none)."
    )
    claimed_by: str | None = Field(default=None, description="Reviewers who claimed `audience`'s answer, joined.")
    approved_by: str | None = Field(
        default=None, description="Reviewers who approved `audience`'s answer, joined with ', ' (approved only)."
    )
    approved_at: str | None = Field(default=None, description="When its last approval was given (approved only).")
    reviews: list[AudienceReview] = Field(
        default_factory=list, description="The review of each audience's answer: clinician, student, patient."
    )
    revision_author: str | None = Field(default=None, description="Author of the current revision (None: composed).")
    revision_at: str = Field(description="When the current revision was written, ISO 8601 UTC.")
    answer: Answer = Field(description="The answer for `audience`, as `medcite ask --format json` prints it.")
    edits: list[StatementEdit] = Field(
        default_factory=list,
        description="Statements of `answer` a reviewer reworded (no longer verbatim quotes), in reading order; "
        "empty when every statement is as composed.",
    )
    thread: list[ArticleSummary] = Field(default_factory=list, description="Every article of the thread, in order.")


class RevisionInfo(BaseModel):
    """One revision in an article's history."""

    revision: int = Field(ge=1, description="Revision number (1 = composed from the library).")
    author: str | None = Field(description="Who wrote it (None: the composer).")
    note: str = Field(description="What changed.")
    created_at: str = Field(description="ISO 8601 UTC.")


class AuditEntry(BaseModel):
    """One entry of the append-only audit log."""

    id: int
    at: str = Field(description="ISO 8601 UTC.")
    actor: str | None = Field(description="Account that acted (None: anonymous asker or the command line).")
    article_id: int | None
    action: str = Field(description="submit, claim, edit, request_changes, approve, unpublish or an account change.")
    from_status: str | None
    to_status: str | None
    revision: int | None = Field(description="Revision the action was based on.")
    comment: str
    audience: Audience | None = Field(
        default=None, description="Whose answer the action was about (None: the whole article, or an account)."
    )


# --- accounts ---------------------------------------------------------------------------------------------------


def _user(row: UserRow) -> User:
    return User(username=row.username, role=row.role)  # type: ignore[arg-type]


def add_user(store: Store, username: str, role: str, password: str) -> AccountChange:
    """Create an account (or reset an existing one's role and password); the password is hashed with argon2id.

    A new password ends the account's web sessions (it is signed out everywhere). Writes to the store
    (and its audit log).

    Returns:
        Whether the account was created or updated, its previous role and whether the password changed.

    Raises:
        ValueError: ``role`` is not one of ``ROLES``, the name is not 1-64 letters, digits, '.', '_' or '-',
            differs only in case from an existing account's, or the password is shorter than 8 characters.
    """
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
    if not re.fullmatch(r"[A-Za-z0-9._-]{1,64}", username):
        raise ValueError("a username is 1-64 letters, digits, '.', '_' or '-'")
    if len(password) < 8:
        raise ValueError("a password needs at least 8 characters")
    reviews = ReviewStore(store)
    clashes = [name for name in reviews.usernames_like(username) if name != username]
    if clashes:
        raise ValueError(
            f"the account {clashes[0]!r} already exists and differs only in case; use that name to update it"
        )
    try:
        previous: UserRow | None = reviews.get_user(username)
    except NotFound:
        previous = None
    is_same_password = False
    if previous is not None:
        try:
            is_same_password = _HASHER.verify(previous.password_hash, password)
        except (VerificationError, InvalidHashError):
            is_same_password = False
    row = reviews.add_user(username, role, _HASHER.hash(password), end_sessions=not is_same_password)
    return AccountChange(
        user=_user(row),
        is_created=previous is None,
        previous_role=None if previous is None else previous.role,  # type: ignore[arg-type]
        has_new_password=not is_same_password,
    )


_DISABLED_HASH = "!disabled"  # matches no password: argon2 refuses it as a hash


class UserInfo(BaseModel):
    """An account as ``medcite users list`` shows it (never its password hash)."""

    username: str
    role: Role
    enabled: bool = Field(description="False: disabled (``users disable``) until ``users add`` or ``users password``.")
    last_login: str | None = Field(description="Last web sign-in, ISO 8601 UTC (None: never).")
    tokens: int = Field(ge=0, description="API tokens it holds.")
    created_at: str = Field(description="ISO 8601 UTC.")


def list_users(store: Store) -> list[UserInfo]:
    """Return every account, in name order."""
    return [
        UserInfo(
            username=row.username,
            role=row.role,  # type: ignore[arg-type]
            enabled=row.enabled,
            last_login=row.last_login,
            tokens=row.n_tokens,
            created_at=row.created_at,
        )
        for row in ReviewStore(store).list_users(_DISABLED_HASH)
    ]


def reset_password(store: Store, username: str, password: str) -> tuple[int, int]:
    """Give an account a new password (argon2id), ending its web sessions and revoking its API tokens.

    One transaction, logged; re-enables a disabled account. Writes to the store.

    Returns:
        ``(n_sessions, n_tokens)`` ended and revoked.

    Raises:
        ValueError: The password is shorter than 8 characters.
        NotFound: No such account.
    """
    reviews = ReviewStore(store)
    reviews.get_user(username)
    if len(password) < 8:
        raise ValueError("a password needs at least 8 characters")
    return reviews.replace_password(username, _HASHER.hash(password))


def disable_user(store: Store, username: str) -> tuple[int, int]:
    """Disable an account: no password signs it in, its web sessions end and its API tokens are deleted.

    ``add_user`` with a new password enables it again. Writes to the store (and its audit log).

    Returns:
        ``(n_sessions, n_tokens)``: web sessions ended and API tokens deleted.

    Raises:
        NotFound: No such account.
    """
    return ReviewStore(store).disable_user(username, _DISABLED_HASH)


def authenticate(store: Store, username: str, password: str) -> User:
    """Return the account when the password matches.

    Raises:
        AuthenticationFailed: Unknown name or wrong password (the message does not say which).
    """
    failure = AuthenticationFailed("Wrong username or password.")
    try:
        row = ReviewStore(store).get_user(username)
    except NotFound:
        _HASHER.hash(password)  # spend the same time as a real check
        raise failure from None
    if row.password_hash == _DISABLED_HASH:
        _HASHER.hash(password)
        raise failure
    try:
        _HASHER.verify(row.password_hash, password)
    except (VerificationError, InvalidHashError):
        raise failure from None
    return _user(row)


def issue_token(store: Store, username: str) -> str:
    """Create an API token for ``username`` (only its SHA-256 is stored) and return it, 43 URL-safe characters.

    Raises:
        NotFound: No such account.
        InvalidInput: The account is disabled (``users password NAME`` enables it again).
    """
    reviews = ReviewStore(store)
    if reviews.get_user(username).password_hash == _DISABLED_HASH:
        raise InvalidInput(
            f"The account {username} is disabled; `medcite users password {username}` enables it with a new password."
        )
    token = secrets.token_urlsafe(32)
    reviews.add_token(username, hashlib.sha256(token.encode()).hexdigest())
    return token


def user_for_token(store: Store, token: str) -> User:
    """Return the account an API token belongs to.

    Raises:
        AuthenticationFailed: The token is unknown.
    """
    row = ReviewStore(store).user_for_token(hashlib.sha256(token.encode()).hexdigest())
    if row is None or row.password_hash == _DISABLED_HASH:  # a disabled account's token never signs it in
        raise AuthenticationFailed("This API token is not valid; create one with `medcite users token NAME`.")
    return _user(row)


def start_session(store: Store, username: str, *, max_age_s: int) -> str:
    """Open a web session for ``username`` and return its id (32 URL-safe characters; only its SHA-256 is stored).

    Sessions older than ``max_age_s`` seconds are dropped. Writes to the store.

    Raises:
        NotFound: No such account.
    """
    session_id = secrets.token_urlsafe(24)
    ReviewStore(store).add_session(username, hashlib.sha256(session_id.encode()).hexdigest(), max_age_s=max_age_s)
    return session_id


def user_for_session(store: Store, session_id: str) -> User | None:
    """Return the account of a live web session, or None once it was ended (sign-out, password reset)."""
    row = ReviewStore(store).user_for_session(hashlib.sha256(session_id.encode()).hexdigest())
    return None if row is None or row.password_hash == _DISABLED_HASH else _user(row)


def end_session(store: Store, session_id: str) -> None:
    """End a web session (sign-out): its cookie no longer signs anyone in. Writes to the store."""
    ReviewStore(store).delete_session(hashlib.sha256(session_id.encode()).hexdigest())


def _a(word: str) -> str:
    return f"an {word}" if word[:1] in "aeiou" else f"a {word}"


def require_role(user: User | None, role: str, doing: str) -> User:
    """Return ``user`` when it holds ``role`` or a stronger one.

    Raises:
        Forbidden: ``user`` is None (signed out) or its role is weaker (HTTP 403).
    """
    if user is None:
        raise Forbidden(f"Sign in as {_a(role)} to {doing}.")
    if ROLES.index(user.role) < ROLES.index(role):
        raise Forbidden(f"{user.username} is {_a(user.role)}; only {_a(role)} or above may {doing}.")
    return user


# --- articles ---------------------------------------------------------------------------------------------------


def slugify(text: str, *, max_chars: int = 80) -> str:
    """Return a lower-case ASCII URL slug: words joined by '-', at most ``max_chars`` ('article' if empty)."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    words = re.findall(r"[a-z0-9]+", ascii_text.lower())
    slug = ""
    for word in words:
        if len(slug) + len(word) + 1 > max_chars:
            break
        slug = f"{slug}-{word}" if slug else word
    return slug or "article"


def article_url(article_id: int, slug: str) -> str:
    """Return the stable path of an article page: '/articles/{id}/{slug}'."""
    return f"/articles/{article_id}/{slug}"


def _summary(row: ArticleRow, audience: str, status: str, *, reason: str = "", updated_at: str = "") -> ArticleSummary:
    return ArticleSummary(
        id=row.article_id,
        url=article_url(row.article_id, row.slug),
        question=row.question,
        audience=audience,  # type: ignore[arg-type]
        status=shown_status(row, status),  # type: ignore[arg-type]
        reason=reason,
        updated_at=updated_at or row.updated_at,
    )


def _asked_for_summary(reviews: ReviewStore, row: ArticleRow) -> ArticleSummary:
    """The summary of an article by the review of the answer its asker chose."""
    review = reviews.audience_reviews(row.article_id).get(row.audience)
    return _summary(row, row.audience, review.status if review else "submitted", reason=review.reason if review else "")


def _audience_review(
    review: AudienceReviewRow, article: ArticleRow, editors: Sequence[str], needed: int
) -> AudienceReview:
    return AudienceReview(
        audience=review.audience,  # type: ignore[arg-type]
        status=shown_status(article, review.status),  # type: ignore[arg-type]
        reason=review.reason,
        updated_at=review.updated_at,
        claimed_by=list(review.claims),
        approvals=[Approval(reviewer=who, revision=rev, at=at) for who, rev, at in review.approvals],
        approvals_needed=needed,
        excluded_approvers=list(editors),
    )


def _answers(revision: RevisionRow) -> dict[str, Answer]:
    return {audience: Answer.model_validate_json(data) for audience, data in revision.answers.items()}


def submit_article(
    store: Store,
    retriever: Retriever,
    question: str,
    *,
    audience: Audience = "clinician",
    follow_up_of: int | None = None,
    author: User | None = None,
    composer: Literal["extractive", "llm"] = "extractive",
    llm: LLMClient | None = None,
    approvals_needed: int = 1,
    pubmed_search: PubMedSearch | None = None,
    notice: str | None = None,
) -> Article:
    """Scrub a question, answer it for every audience and store it as a new article (status 'submitted').

    The question is scrubbed of personal identifiers (``privacy.scrub_question``) before anything
    is composed, stored or logged. A follow-up joins the thread of ``follow_up_of`` and each
    audience's answer is read in the light of that article's current answer for the same audience.
    Writes to the store (one transaction, audit log included); composes three answers (about 50 ms
    each on the default library).

    Args:
        store: The library.
        retriever: The library's retriever.
        question: The question as typed.
        audience: The asker's audience (the article opens in it).
        follow_up_of: Id of the article this question follows up, or None.
        author: The signed-in asker, or None.
        composer: 'extractive' (default) or 'llm': each audience's answer is written by the model and
            verified, or is the extractive answer with a ``notice`` (``answer.ask``; calls the network
            three times, once per audience).
        llm: The model server client; required when ``composer='llm'``.
        approvals_needed: Distinct approvals an answer needs (shown in the returned article's ``reviews``).
        pubmed_search: The PubMed search made for the question first (``pubmed_live.search_pubmed_for``), recorded
            on every audience's answer.
        notice: A sentence for readers of every answer (e.g. that PubMed could not be searched).

    Returns:
        The new article, with the answer for ``audience``.

    Raises:
        QueryError: The question is empty, empty once identifiers are removed, or longer than
            ``MAX_QUESTION_CHARS`` (2,000) characters.
        NotFound: ``follow_up_of`` names no article.
        ConfigError: ``composer='llm'`` without an ``llm`` client.
    """
    scrubbed = prepare_question(question)
    earlier: dict[str, Answer] = {}
    if follow_up_of is not None:
        reviews = ReviewStore(store)
        parent = reviews.get_article(follow_up_of)
        # The earlier question's terms steer retrieval: leave its placeholders ("[name]") out.
        earlier_question = ScrubResult(text=parent.question).searchable
        earlier = {
            reader: answer.model_copy(update={"question": earlier_question})
            for reader, answer in _answers(reviews.get_revision(parent.article_id, parent.revision)).items()
        }
    # Retrieval reads the question without the placeholders ("[name]" is no clinical term); the
    # answer's title is the scrubbed question as typed.
    answers = {
        reader: ask(
            scrubbed.searchable,
            retriever=retriever,
            audience=reader,
            follow_up_of=earlier.get(reader),
            composer=composer,
            llm=llm,
        ).model_copy(update={"question": scrubbed.text})
        for reader in AUDIENCES
    }
    if pubmed_search is not None or notice:
        answers = {
            reader: answer.model_copy(update={"pubmed_search": pubmed_search, "notice": answer.notice or notice})
            for reader, answer in answers.items()
        }
    row = ReviewStore(store).create_article(
        slug=slugify(scrubbed.searchable),
        question=scrubbed.text,
        audience=audience,
        follow_up_of=follow_up_of,
        redactions=scrubbed.kinds,
        answers={reader: answer.model_dump_json() for reader, answer in answers.items()},
        author=author.username if author else None,
    )
    return get_article(store, row.article_id, audience=audience, viewer=author, approvals_needed=approvals_needed)


def check_length(text: str, what: str = "question") -> None:
    """Refuse a question (or search query) longer than ``MAX_QUESTION_CHARS``.

    Raises:
        QueryError: The text is too long; the message gives its length and the limit.
    """
    if len(text) > MAX_QUESTION_CHARS:
        raise QueryError(f"The {what} is {len(text)} characters long; keep it under {MAX_QUESTION_CHARS}.")


def prepare_question(question: str) -> ScrubResult:
    """Check a question's length and scrub it of personal identifiers (``privacy.scrub_question``).

    Every way of asking does this before anything is searched, stored or logged; ``searchable`` is the text to
    answer.

    Raises:
        QueryError: Too long, or empty once identifiers and control characters are removed.
    """
    check_length(question)
    scrubbed = scrub_question(" ".join(question.split()))
    if not scrubbed.searchable.strip():
        raise QueryError("The question is empty (once personal identifiers are removed); type a clinical question.")
    return scrubbed


def _scrub_reviewer_text(text: str) -> tuple[str, list[str]]:
    """Scrub text a reviewer wrote (statement, note, comment) as questions are: (clean text, kinds removed)."""
    scrubbed = scrub_question(text)
    return scrubbed.text.strip(), scrubbed.kinds


def _with_removed(text: str, kinds: Sequence[str]) -> str:
    """Append which identifier kinds were removed (as the submit entry of the audit log says it)."""
    removed = "identifiers removed: " + ", ".join(sorted(set(kinds)))
    return (f"{text} ({removed})" if text else removed) if kinds else text


def answer_events(
    retriever: Retriever,
    question: str,
    *,
    audience: Audience = "clinician",
    composer: Literal["extractive", "llm"] = "extractive",
    llm: LLMClient | None = None,
) -> Iterator[ComposeEvent]:
    """Scrub a question and answer it as a stream of events, without storing anything (for server-sent events).

    The question is checked and scrubbed (``privacy.scrub_question``) when this is called, before the
    first event; the model and retrieval see only the scrubbed text. Nothing is written to the store.

    Args:
        retriever: The library's retriever.
        question: The question as typed.
        audience: 'clinician', 'student' or 'patient'.
        composer: 'extractive' (one 'status' event, then the answer) or 'llm'
            (``answer.stream_answer``: 'status' and 'delta' events while the model writes; calls the network).
        llm: The model server client; required when ``composer='llm'``.

    Returns:
        An iterator of ``ComposeEvent``; the last is the 'answer' event, its answer titled with the scrubbed question.

    Raises:
        QueryError: The question is empty, empty once identifiers are removed, too long, or has nothing to
            search for (all raised at once, before the first event).
        ConfigError: ``composer='llm'`` without an ``llm`` client (raised at once).
    """
    scrubbed = prepare_question(question)
    if composer == "llm" and llm is None:
        raise ConfigError("The LLM composer needs a model server: set MEDCITE_LLM_BASE_URL and MEDCITE_LLM_MODEL.")
    retriever.normalize(scrubbed.searchable)  # no words to search for: refused before the stream starts

    def events() -> Iterator[ComposeEvent]:
        if composer == "llm" and llm is not None:
            from medcite.answer import stream_answer

            stream = stream_answer(scrubbed.searchable, retriever=retriever, client=llm, audience=audience)
        else:
            stream = iter([ComposeEvent(kind="status", text="Searching the library")])
        for event in stream:
            if event.answer is not None:
                event = event.model_copy(update={"answer": event.answer.model_copy(update={"question": scrubbed.text})})
            yield event
        if composer != "llm":
            answer = ask(scrubbed.searchable, retriever=retriever, audience=audience)
            yield ComposeEvent(kind="answer", answer=answer.model_copy(update={"question": scrubbed.text}))

    return events()


def get_article(
    store: Store,
    article_id: int,
    *,
    audience: Audience | None = None,
    viewer: User | None = None,
    approvals_needed: int = 1,
) -> Article:
    """Return an article with its current answer for ``audience`` (default: the asker's) and its thread.

    ``status``, ``approved_by`` and ``approved_at`` are those of ``audience``'s answer; ``reviews`` holds every
    audience's. Unpublished articles are visible to reviewers only. Statements a reviewer reworded are listed in
    ``edits`` (from the revision history), and the answer's disclaimer then no longer claims that every
    statement is quoted from its source (``EDITED_NOTICE``); only an approved answer says it was approved.

    Raises:
        Unpublished: It is unpublished and ``viewer`` is not a reviewer (HTTP 410).
        NotFound: No such article.
    """
    reviews = ReviewStore(store)
    row = reviews.get_article(article_id)
    if row.status == "unpublished" and viewer is None:
        raise Unpublished(article_id)
    history = reviews.list_revisions(article_id)
    revision = next(item for item in history if item.revision == row.revision)
    reader = audience or row.audience
    answer = mark_removed_references(Answer.model_validate_json(revision.answers[reader]), store)
    edits = _statement_edits(history, reader) if row.revision > 1 else []
    if edits:
        disclaimer = answer.disclaimer.replace(QUOTED_CLAIM, EDITED_NOTICE)
        if EDITED_NOTICE not in disclaimer:
            disclaimer = f"{disclaimer} {EDITED_NOTICE}".strip()
        answer = answer.model_copy(update={"disclaimer": disclaimer})
    changes = [(item.author, item.answers) for item in history]
    by_audience = {
        name: _audience_review(review, row, editors_of(changes, name), approvals_needed)
        for name, review in reviews.audience_reviews(article_id).items()
    }
    own = by_audience[reader]
    if own.status == "approved":  # the answer's own notice says it awaits review: no longer true
        answer = answer.model_copy(
            update={"disclaimer": answer.disclaimer.replace(PENDING_REVIEW_NOTICE, APPROVED_NOTICE).strip()}
        )
    thread = [
        _asked_for_summary(reviews, item)
        for item in reviews.thread(row.thread_id)
        if item.status != "unpublished" or viewer
    ]
    approved = own.status == "approved" and own.approvals
    return Article(
        id=row.article_id,
        url=article_url(row.article_id, row.slug),
        question=row.question,
        audience=reader,  # type: ignore[arg-type]
        status=own.status,
        revision=row.revision,
        created_at=row.created_at,
        updated_at=row.updated_at,
        follow_up_of=row.follow_up_of,
        thread_id=row.thread_id,
        redactions=row.redactions,
        claimed_by=", ".join(own.claimed_by) or None,
        approved_by=", ".join(item.reviewer for item in own.approvals) if approved else None,
        approved_at=own.approvals[-1].at if approved else None,
        reviews=list(by_audience.values()),
        revision_author=revision.author,
        revision_at=revision.created_at,
        answer=answer,
        edits=edits,
        thread=thread,
    )


def _statement_texts(answer: Answer) -> dict[str, str]:
    return {location: statement.text for location, _title, statement in statement_locations(answer)}


def _statement_edits(history: Sequence[RevisionRow], audience: str) -> list[StatementEdit]:
    """Return the statements of the latest revision that differ from the composed one (revision 1).

    Each names the reviewer and time of the last revision that changed it; reading order.
    """
    texts = [
        (row, _statement_texts(Answer.model_validate_json(row.answers[audience])))
        for row in history
        if audience in row.answers
    ]
    if len(texts) < 2:
        return []
    composed, current = texts[0][1], texts[-1][1]
    last_change: dict[str, RevisionRow] = {}
    for (_before_row, before), (row, after) in zip(texts, texts[1:], strict=False):
        for location, text in after.items():
            if before.get(location) != text:
                last_change[location] = row
    return [
        StatementEdit(
            location=location,
            author=last_change[location].author or "a reviewer",
            at=last_change[location].created_at,
            revision=last_change[location].revision,
        )
        for location, text in current.items()
        if composed.get(location) != text and location in last_change
    ]


def list_queue(store: Store, viewer: User | None) -> list[ArticleSummary]:
    """Return the review queue: one entry per audience's answer needing work.

    Answers needing re-review come first, then the rest (submitted, changes requested, under review), oldest
    change first.

    Raises:
        Forbidden: ``viewer`` is not a reviewer or above.
    """
    require_role(viewer, "reviewer", "see the review queue")
    rows = ReviewStore(store).list_reviews(QUEUE_STATUSES, first=("needs_rereview",))
    return [_queue_summary(item) for item in rows]


def stale_reviews(store: Store) -> list[ArticleSummary]:
    """Return the answers needing re-review (a cited document was retracted, replaced or removed), oldest first."""
    return [_queue_summary(item) for item in ReviewStore(store).list_reviews(("needs_rereview",))]


def approved_articles(store: Store, *, limit: int = 20) -> list[ArticleSummary]:
    """Return published articles whose asker's answer is approved, most recently approved last (at most ``limit``)."""
    rows = ReviewStore(store).list_reviews(("approved",), asked_for_only=True, limit=limit)
    return [_queue_summary(item) for item in rows]


def _queue_summary(item) -> ArticleSummary:
    summary = _summary(item.article, item.audience, item.status, reason=item.reason, updated_at=item.updated_at)
    if item.audience != item.article.audience:
        summary = summary.model_copy(update={"url": f"{summary.url}?audience={item.audience}"})
    return summary


def _said(status: str) -> str:
    """A status as a sentence says it ('needs_rereview' -> 'needs re-review')."""
    return "needs re-review" if status == "needs_rereview" else status.replace("_", " ")


def _decide(action: str, user: User, approvals_needed: int) -> Callable[[ReviewState], ReviewChange]:
    """The review rules for ``action`` by ``user``, applied to the state read under the write lock."""
    rule = TRANSITIONS[action]
    who = user.username

    def decide(state: ReviewState) -> ReviewChange:
        review, article = state.review, state.article
        status = state.status
        label = f"The {review.audience} answer of article {article.article_id}"
        if status not in rule.allowed_from:
            allowed = [_said(item) for item in rule.allowed_from if item != "under_review" or action != "claim"]
            raise ReviewError(
                f"{label} is {_said(status)}; {action.replace('_', ' ')} is only possible when it is "
                + (", ".join(allowed[:-1]) + " or " if len(allowed) > 1 else "")
                + allowed[-1]
                + (" (or under review, to join its reviewers)" if action == "claim" else "")
                + "."
            )
        if action == "unpublish":
            return ReviewChange(to_status=review.status, unpublish=True)
        if action == "claim":
            if status == "under_review" and who in review.claims:
                raise ReviewError(f"{label} is already claimed by {who}.")
            return ReviewChange(to_status="under_review", claim=True, new_round=status != "under_review")
        if action == "request_changes":
            return ReviewChange(to_status="changes_requested")
        # approve: four eyes
        if who not in review.claims:
            raise Forbidden(
                f"{who} has not claimed {label.lower()}: claim it first; approvals come from the reviewers who "
                "claimed it" + (f" ({', '.join(review.claims)})." if review.claims else ".")
            )
        if who in state.editors:
            others = "another reviewer who did not edit it"
            raise Forbidden(
                f"{who} edited {label.lower()} and so may not approve it (four eyes): {others} must approve it."
            )
        if any(approver == who for approver, _rev, _at in review.approvals):
            raise ReviewError(f"{who} already approved {label.lower()}; it needs another reviewer's approval.")
        approved = len({approver for approver, _rev, _at in review.approvals} | {who}) >= approvals_needed
        return ReviewChange(to_status="approved" if approved else "under_review", approve=True)

    return decide


def transition(
    store: Store,
    article_id: int,
    action: str,
    *,
    revision: int,
    actor: User | None,
    comment: str = "",
    audience: Audience | None = None,
    approvals_needed: int = 1,
) -> Article:
    """Apply a review action (claim, request_changes, approve, unpublish) to one audience's answer of an article.

    Writes the change and an audit-log entry in one transaction, the rules decided under the library's write
    lock (two reviewers approving at the same moment are counted one after the other). A refusal of a signed-in
    account is written to the audit log ('refused approve', with the reason) and changes nothing else.

    Args:
        store: The library.
        article_id: The article.
        action: One of ``TRANSITIONS``.
        revision: The revision the actor saw; a newer one on the server raises ``Conflict``.
        actor: The signed-in account.
        comment: Why (required for request_changes), kept in the audit log scrubbed of personal identifiers
            (``privacy.scrub_question``; the kinds removed are appended, "(identifiers removed: email)").
        audience: Whose answer (default: the asker's); unpublish withdraws the whole article.
        approvals_needed: Distinct approvals an answer needs (setting ``review_approvals``, at least 1).

    Returns:
        The article after the change, showing ``audience``'s answer.

    Raises:
        ReviewError: Unknown action, not allowed from the answer's status, a missing comment, a second claim or
            approval by the same reviewer (HTTP 409).
        Conflict: ``revision`` is stale (HTTP 409).
        Forbidden: ``actor`` is None or its role is too weak; approving an answer one has not claimed or has
            edited (HTTP 403). Nothing changes.
        NotFound: No such article.
    """
    rule = TRANSITIONS.get(action)
    if rule is None:
        raise InvalidInput(f"Unknown review action {action[:40]!r}; use one of {', '.join(TRANSITIONS)}.")
    reviews = ReviewStore(store)
    row = reviews.get_article(article_id)
    reader = audience or row.audience
    try:
        user = require_role(actor, rule.min_role, action.replace("_", " ") + " articles")
        comment, removed = _scrub_reviewer_text(comment)  # kept in the audit log: no identifiers
        # A wrong status is the first thing to fix: only then ask for the missing comment.
        if rule.needs_comment and not comment:
            current = reviews.audience_reviews(article_id)[reader].status
            if row.status != "unpublished" and current in rule.allowed_from:
                raise ReviewError("Say what needs to change: requesting changes needs a comment.")
        reviews.change_review(
            article_id,
            reader,
            expected_revision=revision,
            action=action,
            actor=user.username,
            comment=_with_removed(comment, removed),
            decide=_decide(action, user, max(1, approvals_needed)),
        )
    except Forbidden as exc:  # a signed-in account trying what it may not (403) is logged; mistakes (409) are not
        if actor is not None:
            reviews.log_refusal(
                actor=actor.username, article_id=article_id, audience=reader, action=action, reason=str(exc)
            )
        raise
    return get_article(store, article_id, audience=reader, viewer=user, approvals_needed=approvals_needed)


def _replace_statement(answer: Answer, location: str, text: str) -> tuple[Answer, str]:
    if location == "bottom_line":
        old = answer.bottom_line.text
        bottom = BottomLine(
            text=text,
            citations=answer.bottom_line.citations,
            statements=[Statement(text=text, citations=answer.bottom_line.citations)],
        )
        return answer.model_copy(update={"bottom_line": bottom}), old
    match = re.fullmatch(r"([0-9]{1,6})\.([0-9]{1,6})", location)
    if match is None:
        raise InvalidInput(
            "The location must be 'bottom_line' or 'SECTION.STATEMENT' with 0-based numbers, e.g. '0.1'."
        )
    n_section, n_statement = int(match.group(1)), int(match.group(2))
    if n_section >= len(answer.sections) or n_statement >= len(answer.sections[n_section].statements):
        raise ReviewError(f"The answer has no statement {location!r}; reload the article.")
    sections = [section.model_copy(deep=True) for section in answer.sections]
    old_statement = sections[n_section].statements[n_statement]
    statements = list(sections[n_section].statements)
    statements[n_statement] = Statement(text=text, citations=old_statement.citations)
    sections[n_section] = AnswerSection(title=sections[n_section].title, statements=statements)
    return answer.model_copy(update={"sections": sections}), old_statement.text


def edit_statement(
    store: Store,
    article_id: int,
    *,
    revision: int,
    actor: User | None,
    audience: Audience,
    location: str,
    text: str,
    note: str = "",
    approvals_needed: int = 1,
) -> Article:
    """Replace one statement of one audience's answer, creating a new revision with author and time.

    The statement keeps its citations. Writes the revision and an audit-log entry in one transaction.

    Args:
        store: The library.
        article_id: The article (must be under review).
        revision: The revision the edit is based on; a newer one on the server raises ``Conflict``.
        actor: The signed-in reviewer.
        audience: Whose answer to edit.
        location: 'bottom_line', or 'SECTION.STATEMENT' with 0-based indices (e.g. '0.1').
        text: The new statement text (non-empty); scrubbed of personal identifiers (``privacy.scrub_question``)
            before it is stored.
        note: What and why, for the revision history (default: a description of the location); scrubbed too.
            The kinds removed from either are appended to the note, "(identifiers removed: name, phone)".
        approvals_needed: Distinct approvals an answer needs (shown in the returned article's ``reviews``).

    Returns:
        The article at its new revision, showing ``audience``'s answer.

    Raises:
        Forbidden: ``actor`` is not a reviewer or above (HTTP 403); nothing changes.
        Conflict: ``revision`` is stale (HTTP 409).
        ReviewError: The article is not under review, the location does not exist, or the text is empty.
        InvalidInput: ``location`` is malformed (HTTP 422).
        NotFound: No such article.
    """
    user = require_role(actor, "reviewer", "edit articles")
    text, removed = _scrub_reviewer_text(text)  # stored, published and diffed: no identifiers
    note, note_removed = _scrub_reviewer_text(note)
    if not text:
        raise ReviewError("The new statement is empty; write the corrected text or leave the statement alone.")
    reviews = ReviewStore(store)
    try:
        current = reviews.get_revision(article_id, revision)
    except NotFound:
        raise Conflict(article_id, revision, reviews.get_article(article_id).revision) from None
    answers = _answers(current)
    if audience not in answers:
        raise ReviewError(f"The article has no answer for the audience {audience!r}.")
    answers[audience], old = _replace_statement(answers[audience], location, text)
    where = "the bottom line" if location == "bottom_line" else f"statement {location}"

    def check(state: ReviewState) -> None:
        status = state.status
        if status not in EDITABLE_STATUSES:
            raise ReviewError(
                f"The {audience} answer of article {article_id} is {_said(status)}; claim it first: "
                "statements can be edited only while it is under review."
            )

    reviews.add_revision(
        article_id,
        audience,
        expected_revision=revision,
        answers={reader: answer.model_dump_json() for reader, answer in answers.items()},
        author=user.username,
        note=_with_removed(
            note or f"edited {where} of the {audience} answer (was: {old[:120]})", [*removed, *note_removed]
        ),
        check=check,
    )
    return get_article(store, article_id, audience=audience, viewer=user, approvals_needed=approvals_needed)


def revisions(store: Store, article_id: int) -> list[RevisionInfo]:
    """Return an article's revisions, oldest first.

    Raises:
        NotFound: No such article.
    """
    ReviewStore(store).get_article(article_id)
    return [
        RevisionInfo(revision=row.revision, author=row.author, note=row.note, created_at=row.created_at)
        for row in ReviewStore(store).list_revisions(article_id)
    ]


def _answer_lines(answer: Answer) -> list[str]:
    lines = [f"Bottom line: {answer.bottom_line.text}"]
    for section in answer.sections:
        lines.append(f"## {section.title}")
        lines += [f"- {statement.text} {statement.citations}" for statement in section.statements]
    return lines


def revision_diff(store: Store, article_id: int, old: int, new: int, *, audience: Audience) -> list[str]:
    """Return a unified diff (difflib, lines without newlines) of one audience's answer between two revisions.

    Raises:
        NotFound: No such article or revision.
    """
    reviews = ReviewStore(store)
    before = Answer.model_validate_json(reviews.get_revision(article_id, old).answers[audience])
    after = Answer.model_validate_json(reviews.get_revision(article_id, new).answers[audience])
    return list(
        difflib.unified_diff(
            _answer_lines(before), _answer_lines(after), f"revision {old}", f"revision {new}", lineterm=""
        )
    )


def audit_log(store: Store, viewer: User | None, *, article_id: int | None = None) -> list[AuditEntry]:
    """Return audit-log entries, newest first (at most 500).

    Raises:
        Forbidden: ``viewer`` is not an editor or above.
    """
    require_role(viewer, "editor", "read the audit log")
    return [
        AuditEntry(
            id=row.entry_id,
            at=row.at,
            actor=row.actor,
            article_id=row.article_id,
            action=row.action,
            from_status=row.from_status,
            to_status=row.to_status,
            revision=row.revision,
            comment=row.comment,
            audience=row.audience,
        )
        for row in ReviewStore(store).audit_entries(article_id=article_id)
    ]


def statement_locations(answer: Answer) -> Sequence[tuple[str, str, Statement]]:
    """Return ``(location, section title, statement)`` for every editable statement, in reading order."""
    found: list[tuple[str, str, Statement]] = [
        ("bottom_line", "Bottom line", Statement(text=answer.bottom_line.text, citations=answer.bottom_line.citations))
    ]
    for i, section in enumerate(answer.sections):
        found += [(f"{i}.{j}", section.title, statement) for j, statement in enumerate(section.statements)]
    return found


# --- the library's sources, for reviewers ------------------------------------------------------------------------


class SourceDetail(BaseModel):
    """One document of the library with its passages and the articles whose answers cite it."""

    document: DocumentSummary
    pmid: str | None = Field(default=None, description="PubMed id.")
    doi: str | None = Field(default=None, description="DOI.")
    passages: list[Passage] = Field(description="Its passages, in order.")
    cited_by: list[ArticleSummary] = Field(description="Answers citing it: one entry per article and audience.")


def list_sources(
    store: Store,
    viewer: User | None,
    *,
    kind: str | None = None,
    evidence_type: str | None = None,
    query: str | None = None,
    limit: int = 200,
) -> list[DocumentSummary]:
    """Return the library's documents (``Store.list_documents``), for reviewers.

    Raises:
        Forbidden: ``viewer`` is not a reviewer or above.
    """
    require_role(viewer, "reviewer", "browse the library's sources")
    return store.list_documents(
        kind=kind or None, evidence_type=evidence_type or None, query=query or None, limit=limit
    )


def source_detail(store: Store, viewer: User | None, doc_id: str) -> SourceDetail:
    """Return one document with its passages and the articles citing it, for reviewers.

    Raises:
        Forbidden: ``viewer`` is not a reviewer or above.
        NotFound: No such document.
    """
    require_role(viewer, "reviewer", "browse the library's sources")
    document = store.get_document(doc_id)
    (summary,) = [item for item in store.list_documents(query=doc_id, limit=50) if item.doc_id == doc_id]
    reviews = ReviewStore(store)
    cited_by = []
    for article_id, audience, _doc in reviews.citing_reviews([doc_id]):
        row = reviews.get_article(article_id)
        review = reviews.audience_reviews(article_id).get(audience)
        summary_item = _summary(
            row, audience, review.status if review else "submitted", reason=review.reason if review else ""
        )
        if audience != row.audience:
            summary_item = summary_item.model_copy(update={"url": f"{summary_item.url}?audience={audience}"})
        cited_by.append(summary_item)
    return SourceDetail(
        document=summary,
        pmid=document.pmid,
        doi=document.doi,
        passages=store.get_passages(doc_id),
        cited_by=cited_by,
    )
