"""Exceptions raised on purpose by medcite.

Catch ``MedciteError`` to handle all of them. ``web`` reads ``http_status`` and
``cli`` reads ``exit_code``; no other module branches on error type. This module
imports nothing from medcite.

    MedciteError                       http  exit
    ├── ConfigError                     500     2   a MEDCITE_* setting is invalid
    ├── CorpusError                     422     2   unreadable input file or record
    ├── QueryError                      400     2   a query with nothing to search for
    ├── InvalidInput                    422     2   a request field with an unusable value
    ├── SourceUnavailable               502     6   a remote source (E-utilities) failed
    ├── LLMError                        502     6   the language-model server failed or answered unusably
    ├── StoreError                      500     3   library unusable
    │   ├── SchemaMismatch              500     3   library written by a newer schema
    │   └── NotFound                    404     4   unknown document/passage/answer id
    │       └── Unpublished             410     4   an article an editor unpublished
    ├── CitationError                   500     3   answer cites unseen evidence
    ├── ReviewError                     409     5   transition not allowed
    │   └── Conflict                    409     5   edit or transition based on a stale revision
    ├── AuthenticationFailed            401     7   wrong username, password or token
    ├── Forbidden                       403     7   signed out, wrong role or missing CSRF token
    └── RateLimited                     429     8   too many requests from one client
"""

from __future__ import annotations

__all__ = [
    "AuthenticationFailed",
    "CitationError",
    "ConfigError",
    "Conflict",
    "CorpusError",
    "Forbidden",
    "InvalidInput",
    "LLMError",
    "MedciteError",
    "NotFound",
    "QueryError",
    "RateLimited",
    "ReviewError",
    "SchemaMismatch",
    "SourceUnavailable",
    "StoreError",
    "Unpublished",
]


class MedciteError(Exception):
    """Base class. ``str(exc)`` is a complete sentence safe to show a user."""

    http_status: int = 500
    exit_code: int = 1


class ConfigError(MedciteError):
    """A setting (environment variable or option) has a value medcite cannot use."""

    http_status = 500
    exit_code = 2


class CorpusError(MedciteError):
    """An input file, or one record inside it, could not be read.

    Attributes:
        source: Path of the offending file, as given by the caller.
        record: Identifier of the bad record inside the file (e.g. a PMID, or
            "record 12" when the record has no id), or ``None`` when the whole
            file is unreadable.
    """

    http_status = 422
    exit_code = 2

    def __init__(self, message: str, *, source: str, record: str | None = None) -> None:
        super().__init__(message)
        self.source = source
        self.record = record


class QueryError(MedciteError):
    """A search query or question cannot be searched (empty, or nothing but punctuation and filler)."""

    http_status = 400
    exit_code = 2


class InvalidInput(MedciteError):
    """A request field has a value medcite cannot use (a malformed statement location, an id out of range)."""

    http_status = 422
    exit_code = 2


class SourceUnavailable(MedciteError):
    """A remote source (NCBI E-utilities) did not answer usefully after retries.

    Attributes:
        url: The URL last tried, without the API key.
    """

    http_status = 502
    exit_code = 6

    def __init__(self, message: str, *, url: str) -> None:
        super().__init__(message)
        self.url = url


class LLMError(MedciteError):
    """A language-model server did not answer usefully (the LLM composer then falls back to extraction).

    Attributes:
        reason: A short code: 'timeout', 'http', 'connection', 'disconnected' (mid-answer), 'refusal', 'empty',
            'truncated', 'malformed'.
        url: The endpoint called, or None.
    """

    http_status = 502
    exit_code = 6

    def __init__(self, message: str, *, reason: str, url: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.url = url


class StoreError(MedciteError):
    """The library file cannot be opened, read or written."""

    http_status = 500
    exit_code = 3


class SchemaMismatch(StoreError):
    """The library was written by a newer medcite than this one."""


class NotFound(StoreError):
    """No object with the requested id exists in the library.

    Attributes:
        kind: What was looked up ("document", "passage", "answer").
        object_id: The id that was not found.
    """

    http_status = 404
    exit_code = 4

    def __init__(self, kind: str, object_id: str, *, where: str = "the library") -> None:
        shown = object_id if len(object_id) <= 200 else object_id[:200] + "…"
        if kind == "account":
            what = f"named {shown!r}"
        elif where == "the library":
            what = f"with id {shown!r}"
        else:  # a code in a code list: the code is its id
            what = repr(shown)
        super().__init__(f"No {kind} {what} in {where}.")
        self.kind = kind
        self.object_id = object_id


class Unpublished(NotFound):
    """An editor unpublished the article: it is hidden from the public (HTTP 410 Gone).

    Attributes:
        kind: "article".
        object_id: The article id.
    """

    http_status = 410

    def __init__(self, article_id: int) -> None:
        MedciteError.__init__(
            self, f"Article {article_id} was unpublished by an editor and is no longer available to the public."
        )
        self.kind = "article"
        self.object_id = str(article_id)


class CitationError(MedciteError):
    """An answer cites a passage that was not in its evidence set."""

    http_status = 500
    exit_code = 3


class ReviewError(MedciteError):
    """A review transition or edit is not allowed in the article's current state."""

    http_status = 409
    exit_code = 5


class Conflict(ReviewError):
    """An edit or transition was based on a revision that is no longer the article's current one.

    Attributes:
        article_id: The article.
        expected_revision: The revision the caller based its change on.
        current_revision: The article's revision now.
    """

    def __init__(self, article_id: int, expected_revision: int, current_revision: int) -> None:
        if expected_revision > current_revision:  # not stale: a revision that was never made (issue 16)
            message = (
                f"Article {article_id} has no revision {expected_revision} yet: its latest is revision "
                f"{current_revision}. Send the revision shown on the article's page."
            )
        else:
            message = (
                f"Article {article_id} changed while you were working on it: you based your change on revision "
                f"{expected_revision}, but it is now at revision {current_revision}. Reload the article, check "
                "the new revision and try again."
            )
        super().__init__(message)
        self.article_id = article_id
        self.expected_revision = expected_revision
        self.current_revision = current_revision


class AuthenticationFailed(MedciteError):
    """A username and password, or an API token, did not match an account."""

    http_status = 401
    exit_code = 7


class Forbidden(MedciteError):
    """The request may not do this: signed out, the wrong role, or a missing or wrong CSRF token."""

    http_status = 403
    exit_code = 7


class RateLimited(MedciteError):
    """Too many requests of one kind from one client; the message says when to try again.

    Attributes:
        retry_after_s: Seconds until the next request is allowed.
    """

    http_status = 429
    exit_code = 8

    def __init__(self, message: str, *, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s
