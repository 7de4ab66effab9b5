"""Shared pieces of the web app's routers.

Request models, the per-app state, sessions and CSRF, rate limits, templates and small parsers. Imported by
``app`` and the route modules (``articles``, ``reviewing``, ``accounts``, ``sources``) only.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import secrets
import urllib.parse
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import jinja2
import markupsafe
from fastapi import Path as PathParam
from fastapi import Query, Request
from fastapi.responses import HTMLResponse
from itsdangerous import BadSignature, URLSafeTimedSerializer
from limits import parse
from limits.strategies import MovingWindowRateLimiter
from pydantic import BaseModel, ConfigDict, Field

from medcite import review
from medcite.errors import (
    ConfigError,
    CorpusError,
    Forbidden,
    InvalidInput,
    MedciteError,
    QueryError,
    RateLimited,
    SourceUnavailable,
)
from medcite.llm import LLMClient
from medcite.models import EMERGENCY_SECTION, Audience, ComposeEvent, PubMedSearch
from medcite.render import bottom_line_label, passage_html, plain_text, statement_html
from medcite.retrieve import Retriever
from medcite.review import Article, User
from medcite.settings import Settings
from medcite.store import Store
from medcite.store.review import ReviewStore

HERE = Path(__file__).parent
SESSION_COOKIE = "medcite_session"
MAX_ID = 2**63 - 1
"""Largest article id or revision number (SQLite's INTEGER); larger ones are refused with 422."""
MAX_BODY_BYTES = 64 * 1024
"""Largest request body, bytes; a larger one gets 413 (questions are at most 2,000 characters, edits 20,000)."""
ArticleId = Annotated[int, PathParam(ge=1, le=MAX_ID, description="Article id.")]
RevisionNumber = Annotated[int, Query(ge=1, le=MAX_ID, description="Revision number.")]
CSRF_HEADER = "x-csrf-token"
Composer = Literal["extractive", "llm"]
AUDIENCE_LABELS = {"clinician": "Clinician", "student": "Student", "patient": "Patient or carer"}
STATUS_LABELS = {
    "submitted": "Submitted",
    "under_review": "Under review",
    "changes_requested": "Changes requested",
    "approved": "Approved",
    "needs_rereview": "Needs re-review",
    "unpublished": "Unpublished",
}
SECURITY_HEADERS = {
    "content-security-policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "same-origin",
    "permissions-policy": "camera=(), microphone=(), geolocation=()",
}


# --- API bodies ----------------------------------------------------------------------------------------------


class AskRequest(BaseModel):
    """A question to turn into an article."""

    model_config = ConfigDict(extra="forbid")  # a misspelt field ('audiance') is refused (422), not ignored

    question: str = Field(min_length=1, max_length=2000, description="The question; identifiers are removed.")
    audience: Audience = Field(default="clinician", description="clinician, student or patient.")
    follow_up_of: int | None = Field(
        default=None, ge=1, le=MAX_ID, description="Id of the article this question follows up."
    )
    composer: Composer = Field(
        default="extractive",
        description="'extractive' (default: statements quoted from the sources) or 'llm' (written by the "
        "configured language model and verified against the cited passages; the extractive answer with a "
        "notice when the model's cannot be used). 400 when the server has no model configured.",
    )
    pubmed: bool = Field(
        default=False,
        description="Search PubMed for the question first and add the best evidence found (the answer names the "
        "query; offline or failing, a notice says so and the library answers alone).",
    )


class StreamRequest(BaseModel):
    """A question to answer as server-sent events, without creating an article."""

    model_config = ConfigDict(extra="forbid")  # a misspelt field ('audiance') is refused (422), not ignored

    question: str = Field(min_length=1, max_length=2000, description="The question; identifiers are removed.")
    audience: Audience = Field(default="clinician", description="clinician, student or patient.")
    composer: Composer = Field(default="extractive", description="'extractive' (default) or 'llm'.")


class TransitionRequest(BaseModel):
    """A review action on an article."""

    model_config = ConfigDict(extra="forbid")  # a misspelt field ('audiance') is refused (422), not ignored

    action: review.Action = Field(description="claim | request_changes | approve | unpublish.")
    revision: int = Field(ge=1, le=MAX_ID, description="The revision you saw; a newer one on the server gives 409.")
    comment: str = Field(default="", max_length=4000, description="Why (required for request_changes).")
    audience: Audience | None = Field(
        default=None, description="Whose answer: clinician, student or patient (default: the asker's)."
    )


class EditRequest(BaseModel):
    """A reviewer's edit of one statement."""

    model_config = ConfigDict(extra="forbid")  # a misspelt field ('audiance') is refused (422), not ignored

    revision: int = Field(ge=1, le=MAX_ID, description="The revision you edited; a newer one on the server gives 409.")
    audience: Audience = Field(default="clinician", description="Whose answer to edit.")
    location: str = Field(
        pattern=r"^(bottom_line|\d{1,6}\.\d{1,6})$",
        description="'bottom_line' or 'SECTION.STATEMENT' (0-based), e.g. '0.1'; anything else gives 422.",
    )
    text: str = Field(min_length=1, max_length=20000, description="The corrected statement.")
    note: str = Field(default="", max_length=2000, description="What and why, for the revision history.")


class LoginRequest(BaseModel):
    """Credentials for ``POST /api/login``."""

    username: str = Field(max_length=64)
    password: str = Field(max_length=1024)


class LoginResponse(BaseModel):
    """A new session: the cookie is set on the response; send the CSRF token as X-CSRF-Token."""

    user: User
    csrf_token: str = Field(description="Send as the X-CSRF-Token header on later state-changing calls.")


class DiffResponse(BaseModel):
    """A unified diff of one audience's answer between two revisions."""

    old: int
    new: int
    audience: Audience
    lines: list[str] = Field(description="difflib.unified_diff lines, without newlines.")


# --- sessions, CSRF, rate limits ------------------------------------------------------------------------------


@dataclass
class Caller:
    """Who is calling: the account (or None), how it authenticated, and the session's CSRF token."""

    user: User | None
    via: Literal["bearer", "cookie", "none"]
    csrf: str


class _ModelWorker:
    """One worker thread that runs the LLM composer on its own library connection (opened in that thread).

    SQLite connections belong to the thread that opened them, and the app's own connection lives on the
    event loop; calls that wait for a model server run here instead, one at a time, so pages stay served.
    """

    def __init__(self, settings: Settings, embedder: Any, client: LLMClient) -> None:
        self.client = client
        self._settings = settings
        self._embedder = embedder
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="medcite-llm")
        self._store: Store | None = None
        self._retriever: Retriever | None = None

    def _open(self) -> tuple[Store, Retriever]:
        if self._store is None or self._retriever is None:
            self._store = Store.for_settings(self._settings)
            self._retriever = Retriever(self._store, self._settings, embedder=self._embedder)
        return self._store, self._retriever

    async def run(self, work: Callable[[Store, Retriever], Any]) -> Any:
        """Return ``work(store, retriever)`` run on the worker thread."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, lambda: work(*self._open()))

    async def next_event(self, events: Iterator[ComposeEvent]) -> ComposeEvent | None:
        """Return the next event of an iterator made on the worker thread (None at its end)."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, next, events, None)

    def close(self) -> None:
        """Close the worker's library connection, the thread and the model client."""
        if self._store is not None:
            self._executor.submit(self._store.close).result()
        self._executor.shutdown()
        self.client.close()


@dataclass
class _Web:
    settings: Settings
    store: Store
    retriever: Any
    signer: URLSafeTimedSerializer
    limiter: MovingWindowRateLimiter
    model: _ModelWorker | None = None
    vectors: dict[str, Any] | None = None
    """The passage vectors' state (``web.health``): None when the server has no embedder."""


def _model(request: Request, composer: str) -> _ModelWorker | None:
    """Return the model worker for ``composer='llm'`` (None for 'extractive').

    Raises:
        QueryError: 'llm' was asked for and this server has no model configured.
    """
    if composer != "llm":
        return None
    model = _web(request).model
    if model is None:
        raise QueryError(
            "This server has no language model configured (MEDCITE_LLM_BASE_URL and MEDCITE_LLM_MODEL); "
            "ask with composer 'extractive'."
        )
    return model


def _web(request: Request) -> _Web:
    return request.app.state.web  # type: ignore[no-any-return]


def _session(request: Request) -> dict[str, Any]:
    """Return the signed session (``{"u": username | None, "c": csrf, "s": session id}``), new when absent.

    The cookie only names the server-side session ``s``; the account is signed in while that session
    lives in the library (sign-out and password resets end it).
    """
    cached = getattr(request.state, "session", None)
    if cached is not None:
        return cached  # type: ignore[no-any-return]
    web = _web(request)
    session: dict[str, Any] | None = None
    raw = request.cookies.get(SESSION_COOKIE)
    if raw:
        try:
            session = web.signer.loads(raw, max_age=web.settings.web_session_max_age_s)
        except BadSignature:
            session = None
    if not isinstance(session, dict) or not isinstance(session.get("c"), str):
        session = {"u": None, "c": secrets.token_urlsafe(24)}
        request.state.session_changed = True
    request.state.session = session
    return session


def _start_session(request: Request, username: str | None) -> dict[str, Any]:
    """Replace the caller's session: end the server-side one, open one for ``username`` (None: signed out)."""
    web = _web(request)
    old = _session(request).get("s")
    if isinstance(old, str):
        review.end_session(web.store, old)
    session: dict[str, Any] = {"u": username, "c": secrets.token_urlsafe(24)}  # a new CSRF token each time
    if username is not None:
        session["s"] = review.start_session(web.store, username, max_age_s=web.settings.web_session_max_age_s)
    request.state.session = session
    request.state.session_changed = True
    return session


def _caller(request: Request) -> Caller:
    web = _web(request)
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return Caller(user=review.user_for_token(web.store, header[7:].strip()), via="bearer", csrf="")
    session = _session(request)
    user: User | None = None
    if session.get("u") and isinstance(session.get("s"), str):
        user = review.user_for_session(web.store, session["s"])
        if user is not None and user.username != session["u"]:
            user = None
    return Caller(user=user, via="cookie" if user else "none", csrf=str(session["c"]))


def _check_csrf(request: Request, caller: Caller, submitted: str | None, *, always: bool) -> None:
    """Refuse a state-changing request whose CSRF token does not match its session's.

    Bearer-token calls carry no cookie and need none. ``always`` is set for HTML forms (every form
    carries the token); API calls need it whenever the cookie signs someone in.
    """
    if caller.via == "bearer" or (not always and caller.via == "none"):
        return
    if not submitted or not secrets.compare_digest(submitted, caller.csrf):
        raise Forbidden(
            "The form or request is missing its security (CSRF) token or the token is stale; reload the page "
            "and try again (API clients: send the token from POST /api/login as the X-CSRF-Token header)."
        )


def _limit(request: Request, rate: str, what: str) -> None:
    """Count a request against a rate limit per client address; raise ``RateLimited`` when it is over.

    On PostgreSQL, where ``medcite serve --workers N`` runs several processes, the window is kept in the library
    (``ReviewStore.rate_limit_hit``) so every worker counts the same requests; on SQLite (one process) in memory.
    """
    web = _web(request)
    item = parse(rate)
    key = request.client.host if request.client else "unknown"
    now = dt.datetime.now(dt.UTC).timestamp()
    if web.store.dialect == "postgresql":
        waiting = ReviewStore(web.store).rate_limit_hit(f"{what}:{key}", item.amount, item.get_expiry(), now)
    elif web.limiter.hit(item, what, key):
        waiting = None
    else:
        waiting = web.limiter.get_window_stats(item, what, key).reset_time - now
    if waiting is not None:
        wait = max(1, int(waiting) + 1)
        raise RateLimited(f"Too many {what} requests from your address; try again in {wait} s.", retry_after_s=wait)


async def _form(request: Request) -> dict[str, str]:
    form = await request.form()
    return {key: str(value) for key, value in form.items() if isinstance(value, str)}


def _audience(value: str | None, default: str = "clinician") -> Audience:
    return value if value in review.AUDIENCES else default  # type: ignore[return-value]


def _form_audience(value: str | None) -> Audience:
    """Return the audience a form chose (default clinician).

    Raises:
        InvalidInput: An audience other than clinician, student or patient (HTTP 422).
    """
    if not value:
        return "clinician"
    if value not in review.AUDIENCES:
        raise InvalidInput("The form field audience must be clinician, student or patient.")
    return value  # type: ignore[return-value]


def _int(value: str | None, name: str) -> int:
    """Return a form field as a whole number from 1 to ``MAX_ID``.

    Raises:
        InvalidInput: Not a whole number in that range (HTTP 422).
    """
    text = (value or "").strip()
    if not (text.isascii() and text.isdigit()) or len(text) > 19 or not 1 <= int(text) <= MAX_ID:
        raise InvalidInput(f"The form field {name} must be a whole number from 1 to {MAX_ID}.")
    return int(text)


# --- templates ------------------------------------------------------------------------------------------------


def _date(value: str | None) -> str:
    if not value:
        return ""
    moment = dt.datetime.fromisoformat(value)
    return f"{moment.day} {moment:%B %Y}"


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"), autoescape=True, trim_blocks=True, lstrip_blocks=True
    )
    env.filters["date"] = _date
    # Quoted statements and passages are Markdown (lists, tables, bold): rendered with raw HTML escaped.
    env.filters["statement_html"] = lambda text: markupsafe.Markup(statement_html(text))
    env.filters["passage_html"] = lambda text: markupsafe.Markup(passage_html(text))
    env.filters["plain"] = plain_text
    env.globals["bottom_line_label"] = bottom_line_label
    env.filters["id_path"] = lambda value: urllib.parse.quote(str(value), safe=":/@")  # '#', '?', '%' encoded
    env.globals.update(
        EMERGENCY_SECTION=EMERGENCY_SECTION,
        AUDIENCE_LABELS=AUDIENCE_LABELS,
        STATUS_LABELS=STATUS_LABELS,
        REDACTION_LABELS={
            "name": "names",
            "date": "dates",
            "age": "ages over 89",
            "phone": "phone or fax numbers",
            "email": "e-mail addresses",
            "record_number": "record or account numbers",
            "address": "addresses",
            "url": "web addresses",
            "ip_address": "IP addresses",
        },
        ROLES=review.ROLES,
        TRANSITIONS=review.TRANSITIONS,
    )
    return env


def _page(request: Request, name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    try:
        user = _caller(request).user
    except MedciteError:  # a bad bearer token, shown on an HTML error page
        user = None
    env: jinja2.Environment = request.app.state.templates
    html = env.get_template(name).render(
        request=request, user=user, csrf_token=_session(request)["c"], status_code=status_code, **context
    )
    return HTMLResponse(html, status_code=status_code)


def _may(user: User | None, role: str) -> bool:
    return user is not None and review.ROLES.index(user.role) >= review.ROLES.index(role)


# --- the app --------------------------------------------------------------------------------------------------


def _load_embedder(settings: Settings) -> Any:
    if settings.embedder == "none":
        return None
    from medcite.embed import load_embedder

    try:
        return load_embedder(settings.embedder)
    except ConfigError:
        if settings.embedder != "auto":
            raise
        return None


async def _submit(
    request: Request,
    question: str,
    *,
    audience: Audience,
    follow_up_of: int | None,
    author: User | None,
    composer: Composer,
    pubmed: bool = False,
) -> Article:
    """Submit an article: extractive on the event loop, LLM-composed on the model worker.

    With ``pubmed``, PubMed is searched first on a thread of its own (its own library connection), so other
    requests go on meanwhile.
    """
    model = _model(request, composer)
    searched, notice = await _search_pubmed(_web(request).settings, question) if pubmed else (None, None)
    if model is None:
        web = _web(request)
        return review.submit_article(
            web.store,
            web.retriever,
            question,
            audience=audience,
            follow_up_of=follow_up_of,
            author=author,
            approvals_needed=web.settings.review_approvals,
            pubmed_search=searched,
            notice=notice,
        )
    result: Article = await model.run(
        lambda store, retriever: review.submit_article(
            store,
            retriever,
            question,
            audience=audience,
            follow_up_of=follow_up_of,
            author=author,
            composer="llm",
            llm=model.client,
            approvals_needed=_web(request).settings.review_approvals,
            pubmed_search=searched,
            notice=notice,
        )
    )
    return result


async def _search_pubmed(settings: Settings, question: str) -> tuple[PubMedSearch | None, str | None]:
    """Search PubMed for ``question`` on a worker thread; ``(what was searched, None)`` or ``(None, why not)``."""

    def work() -> PubMedSearch:
        from medcite.pubmed_live import search_pubmed_for

        with Store.for_settings(settings) as store:
            retriever = Retriever(store, settings, embedder=None)  # the question's concepts: lexical is enough
            return search_pubmed_for(question, retriever=retriever, store=store, settings=settings)

    try:
        return await asyncio.get_running_loop().run_in_executor(None, work), None
    except (SourceUnavailable, CorpusError, QueryError) as exc:
        return None, f"PubMed could not be searched ({exc}); this answer is from the library only."


def _sse(kind: str, data: str) -> bytes:
    """One server-sent event frame (``data`` is one line of JSON)."""
    return f"event: {kind}\ndata: {data}\n\n".encode()
