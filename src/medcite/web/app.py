"""The web app: server-rendered pages and a JSON API over the review workflow (``create_app(settings)``).

A thin skin over ``medcite.review``: every route calls one library function. Routes are ``async``
and run the synchronous library in the event-loop thread, so the library's one SQLite connection
is only ever used from one thread (a small review board's traffic; asks take about 150 ms). The LLM
composer, which waits seconds for a model server, runs instead on one worker thread with its own
connection to the library (``_ModelWorker``), so the event loop stays free while the model writes. Sessions
are signed cookies (itsdangerous; HttpOnly, SameSite=Lax, Secure over HTTPS) that carry a CSRF
token and name a server-side session (ended by sign-out and password resets); scripts use bearer
tokens. Request bodies are limited to ``MAX_BODY_BYTES``; API errors are always
``{"ok": false, "error", "status"}``. This is the only place that turns a ``MedciteError`` into an HTTP
response. Nothing imports this module but ``cli``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import secrets
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import jinja2
import markupsafe
from fastapi import FastAPI, Query, Request
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from itsdangerous import BadSignature, URLSafeTimedSerializer
from limits import parse
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from medcite import review
from medcite.errors import (
    AuthenticationFailed,
    ConfigError,
    Forbidden,
    InvalidInput,
    MedciteError,
    QueryError,
    RateLimited,
)
from medcite.llm import LLMClient
from medcite.models import EMERGENCY_SECTION, Audience, ComposeEvent
from medcite.render import passage_html, plain_text, statement_html
from medcite.retrieve import Retriever
from medcite.review import Article, ArticleSummary, AuditEntry, RevisionInfo, User
from medcite.settings import Settings
from medcite.store import DATABASE_ERRORS, Store
from medcite.store.review import ReviewStore

__all__ = ["create_app"]

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
    html = env.get_template(name).render(request=request, user=user, csrf_token=_session(request)["c"], **context)
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


def app_from_environment() -> FastAPI:
    """The web app on the settings in the environment (``MEDCITE_*``): what each ``serve --workers`` process runs."""
    return create_app(Settings())


def create_app(settings: Settings) -> FastAPI:
    """Build the web app on ``settings.library`` (opened, migrated and filled when empty at startup).

    Args:
        settings: All settings; ``library``, ``embedder`` and the ``web_*`` fields matter here.

    Returns:
        A FastAPI app; serve it with uvicorn (``medcite serve``) or drive it with a TestClient.
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        from medcite.index import ensure_default_library
        from medcite.retrieve import Retriever

        store = Store.for_settings(settings)
        model: _ModelWorker | None = None
        try:
            ensure_default_library(store, settings=settings)
            embedder = _load_embedder(settings)
            if embedder is not None:
                from medcite.retrieve.dense import embed_passages

                embed_passages(store, embedder)
            secret = ReviewStore(store).secret("session-signing-key", secrets.token_urlsafe(48))
            if settings.llm_base_url and settings.llm_model:
                model = _ModelWorker(settings, embedder, LLMClient.from_settings(settings))
            app.state.web = _Web(
                settings=settings,
                store=store,
                retriever=Retriever(store, settings, embedder=embedder),
                signer=URLSafeTimedSerializer(secret, salt="medcite-session"),
                limiter=MovingWindowRateLimiter(MemoryStorage()),
                model=model,
            )
            yield
        finally:
            if model is not None:
                model.close()
            store.close()

    app = FastAPI(
        title="medcite",
        summary="Clinical answers where every statement cites its source passage, reviewed by a medical board.",
        version="0.1.0",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url="/openapi.json",
    )
    app.state.templates = _environment()
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")

    @app.middleware("http")
    async def headers_and_session(request: Request, call_next: Any) -> Response:
        response: Response = await call_next(request)
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        if request.url.path.startswith(("/api/", "/articles/", "/review", "/audit", "/login", "/logout")):
            response.headers.setdefault("cache-control", "no-store")
        session = getattr(request.state, "session", None)
        if session is not None and getattr(request.state, "session_changed", False):
            web = _web(request)
            response.set_cookie(
                SESSION_COOKIE,
                web.signer.dumps(session),
                max_age=settings.web_session_max_age_s,
                httponly=True,
                samesite="lax",
                secure=request.url.scheme == "https",
                path="/",
            )
        return response

    async def error_response(request: Request, exc: Exception) -> Response:
        """The one error handler: ``{"ok": false, "error", "status"}`` under /api/, the error page elsewhere.

        Handles ``MedciteError``, request validation (422; names the field, never echoes the value),
        Starlette's HTTP errors (unknown path 404, wrong method 405) and the library's server not answering (503).
        """
        headers: dict[str, str] | None = None
        if isinstance(exc, MedciteError):
            status, message = exc.http_status, str(exc)
            if isinstance(exc, RateLimited):
                headers = {"retry-after": str(exc.retry_after_s)}
        elif isinstance(exc, RequestValidationError):
            status, message = 422, _validation_message(exc)
        elif isinstance(exc, StarletteHTTPException):
            status, headers = exc.status_code, dict(exc.headers) if exc.headers else None
            message = _HTTP_MESSAGES.get(status, f"The request failed (HTTP {status}).")
        elif isinstance(exc, DATABASE_ERRORS):  # the library's server is down or cancelled a statement
            status, headers = 503, {"retry-after": "30"}
            message = "The library is not answering right now; try again in a minute."
        else:  # pragma: no cover - only the types above are registered
            raise exc
        if _is_api(request.url.path):
            return JSONResponse({"ok": False, "error": message, "status": status}, status_code=status, headers=headers)
        response = _page(request, "error.html", status_code=status, message=message)
        if headers:
            response.headers.update(headers)
        return response

    for kind in (MedciteError, RequestValidationError, StarletteHTTPException, *DATABASE_ERRORS):
        app.add_exception_handler(kind, error_response)
    app.add_middleware(_BodyLimit, max_bytes=MAX_BODY_BYTES)

    _add_pages(app, settings)
    _add_api(app, settings)
    return app


_HTTP_MESSAGES = {
    404: "There is nothing at this address; see /docs for the API.",
    405: "This address does not accept that method; see /docs for the API.",
}
_LOCATION_KINDS = ("body", "query", "path", "header", "cookie")


def _is_api(path: str) -> bool:
    return path.startswith("/api/") or path == "/openapi.json"


def _validation_message(exc: RequestValidationError) -> str:
    """Return one sentence naming each invalid field and what is wrong (at most 3), never the value sent."""
    problems: list[str] = []
    for error in exc.errors()[:3]:
        location = [str(part) for part in error.get("loc", ()) if part not in _LOCATION_KINDS]
        field = ".".join(location) or "body"
        kind = str(error.get("type", ""))
        if kind == "missing":
            problems.append(f"{field} is required" if location else "the request body is missing")
        elif kind == "json_invalid":
            problems.append("the request body is not valid JSON")
        else:
            problems.append(f"{field}: {str(error.get('msg', 'invalid value'))[:200]}")
    more = len(exc.errors()) - len(problems)
    text = "Invalid request: " + "; ".join(problems) + (f" (and {more} more)" if more > 0 else "") + "."
    return text.encode("utf-8", "replace").decode("utf-8")


class _BodyLimit:
    """ASGI middleware: answer 413 to a request whose body is larger than ``max_bytes`` (read before the app).

    The body is read into memory (at most ``max_bytes``) and replayed, so chunked uploads are limited too.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers", ())).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(scope, send)
            return
        chunks: list[bytes] = []
        n_bytes = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunks.append(message.get("body", b""))
            n_bytes += len(chunks[-1])
            if n_bytes > self.max_bytes:
                await self._refuse(scope, send)
                return
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, scope: Scope, send: Send) -> None:
        message = f"The request body is larger than {self.max_bytes // 1024} KiB; send less."
        response: Response
        if _is_api(str(scope.get("path", ""))):
            response = JSONResponse({"ok": False, "error": message, "status": 413}, status_code=413)
        else:
            env: jinja2.Environment = scope["app"].state.templates
            html = env.get_template("error.html").render(user=None, csrf_token="", message=message)
            response = HTMLResponse(html, status_code=413)
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        response.headers["connection"] = "close"
        await response(scope, self._no_receive, send)

    @staticmethod
    async def _no_receive() -> Message:
        return {"type": "http.disconnect"}


async def _submit(
    request: Request,
    question: str,
    *,
    audience: Audience,
    follow_up_of: int | None,
    author: User | None,
    composer: Composer,
) -> Article:
    """Submit an article: extractive on the event loop, LLM-composed on the model worker."""
    model = _model(request, composer)
    if model is None:
        web = _web(request)
        return review.submit_article(
            web.store, web.retriever, question, audience=audience, follow_up_of=follow_up_of, author=author
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
        )
    )
    return result


def _sse(kind: str, data: str) -> bytes:
    """One server-sent event frame (``data`` is one line of JSON)."""
    return f"event: {kind}\ndata: {data}\n\n".encode()


def _add_pages(app: FastAPI, settings: Settings) -> None:
    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def home(request: Request) -> HTMLResponse:
        approved = review.approved_articles(_web(request).store, limit=20)
        return _page(
            request,
            "index.html",
            approved=list(reversed(approved)),
            llm_model=settings.llm_model if _web(request).model else None,
        )

    @app.post("/ask", include_in_schema=False)
    async def ask_form(request: Request) -> Response:
        form = await _form(request)
        caller = _caller(request)
        _check_csrf(request, caller, form.get("csrf_token"), always=True)
        _limit(request, settings.web_ask_rate_limit, "ask")
        follow = form.get("follow_up_of")
        article = await _submit(
            request,
            form.get("question", ""),
            audience=_form_audience(form.get("audience")),
            follow_up_of=_int(follow, "follow_up_of") if follow else None,
            author=caller.user,
            composer="llm" if form.get("composer") == "llm" else "extractive",
        )
        return RedirectResponse(f"{article.url}?audience={article.audience}", status_code=303)

    @app.get("/articles/{article_id}", include_in_schema=False)
    async def article_short(request: Request, article_id: ArticleId, audience: str | None = None) -> Response:
        article = review.get_article(_web(request).store, article_id, viewer=_caller(request).user)
        query = f"?audience={_audience(audience)}" if audience else ""  # the reader's audience survives the redirect
        return RedirectResponse(article.url + query, status_code=301)

    @app.get("/articles/{article_id}/{slug}", response_class=HTMLResponse, include_in_schema=False)
    async def article_page(request: Request, article_id: ArticleId, slug: str, audience: str | None = None) -> Response:
        caller = _caller(request)
        store = _web(request).store
        article = review.get_article(
            store,
            article_id,
            audience=_audience(audience) if audience else None,
            viewer=caller.user,
            approvals_needed=settings.review_approvals,
        )
        if slug != article.url.rsplit("/", 1)[1]:
            query = f"?audience={article.audience}" if audience else ""
            return RedirectResponse(article.url + query, status_code=301)
        own = next(item for item in article.reviews if item.audience == article.audience)
        return _page(
            request,
            "article.html",
            article=article,
            own_review=own,
            me=caller.user.username if caller.user else None,
            edited={edit.location: edit for edit in article.edits},
            statements=review.statement_locations(article.answer) if _may(caller.user, "reviewer") else [],
            may_review=_may(caller.user, "reviewer"),
            may_unpublish=_may(caller.user, "editor"),
        )

    @app.post("/articles/{article_id}/transition", include_in_schema=False)
    async def transition_form(request: Request, article_id: ArticleId) -> Response:
        form = await _form(request)
        caller = _caller(request)
        _check_csrf(request, caller, form.get("csrf_token"), always=True)
        article = review.transition(
            _web(request).store,
            article_id,
            form.get("action", ""),
            revision=_int(form.get("revision"), "revision"),
            actor=caller.user,
            comment=form.get("comment", ""),
            audience=_form_audience(form.get("audience")) if form.get("audience") else None,
            approvals_needed=settings.review_approvals,
        )
        return RedirectResponse(f"{article.url}?audience={article.audience}", status_code=303)

    @app.post("/articles/{article_id}/edit", include_in_schema=False)
    async def edit_form(request: Request, article_id: ArticleId) -> Response:
        form = await _form(request)
        caller = _caller(request)
        _check_csrf(request, caller, form.get("csrf_token"), always=True)
        article = review.edit_statement(
            _web(request).store,
            article_id,
            revision=_int(form.get("revision"), "revision"),
            actor=caller.user,
            audience=_form_audience(form.get("audience")),
            location=form.get("location", ""),
            text=form.get("text", ""),
            note=form.get("note", ""),
        )
        return RedirectResponse(f"{article.url}?audience={article.audience}", status_code=303)

    @app.get("/articles/{article_id}/{slug}/revisions", response_class=HTMLResponse, include_in_schema=False)
    async def revisions_page(
        request: Request,
        article_id: ArticleId,
        slug: str,
        old: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
        new: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
        audience: str | None = None,
    ) -> HTMLResponse:
        caller = _caller(request)
        store = _web(request).store
        article = review.get_article(store, article_id, viewer=caller.user)
        history = review.revisions(store, article_id)
        reader = _audience(audience, article.audience)
        new = new or history[-1].revision
        old = old or max(1, new - 1)
        diff = review.revision_diff(store, article_id, old, new, audience=reader) if old != new else []
        return _page(
            request, "revisions.html", article=article, history=history, diff=diff, old=old, new=new, reader=reader
        )

    @app.get("/review", response_class=HTMLResponse, include_in_schema=False)
    async def review_queue(request: Request) -> HTMLResponse:
        caller = _caller(request)
        return _page(request, "review.html", queue=review.list_queue(_web(request).store, caller.user))

    @app.get("/audit", response_class=HTMLResponse, include_in_schema=False)
    async def audit_page(request: Request) -> HTMLResponse:
        caller = _caller(request)
        return _page(request, "audit.html", entries=review.audit_log(_web(request).store, caller.user))

    @app.get("/policy", response_class=HTMLResponse, include_in_schema=False)
    async def policy(request: Request) -> HTMLResponse:
        return _page(request, "policy.html")

    @app.get("/login", response_class=HTMLResponse, include_in_schema=False)
    async def login_page(request: Request) -> HTMLResponse:
        return _page(request, "login.html")

    @app.post("/login", include_in_schema=False)
    async def login_form(request: Request) -> Response:
        form = await _form(request)
        caller = _caller(request)
        _check_csrf(request, caller, form.get("csrf_token"), always=True)
        _limit(request, settings.web_login_rate_limit, "sign-in")
        try:
            user = review.authenticate(_web(request).store, form.get("username", ""), form.get("password", ""))
        except AuthenticationFailed as exc:  # the form again, with the reason, rather than an error page
            return _page(request, "login.html", status_code=401, error=str(exc), username=form.get("username", ""))
        _start_session(request, user.username)
        return RedirectResponse("/review", status_code=303)

    @app.post("/logout", include_in_schema=False)
    async def logout_form(request: Request) -> Response:
        form = await _form(request)
        _check_csrf(request, _caller(request), form.get("csrf_token"), always=True)
        _start_session(request, None)
        return RedirectResponse("/", status_code=303)

    @app.get("/docs", response_class=HTMLResponse, include_in_schema=False)
    async def api_docs(request: Request) -> HTMLResponse:
        return _page(request, "docs.html", schema=request.app.openapi())


def _add_api(app: FastAPI, settings: Settings) -> None:
    @app.post("/api/articles", status_code=201, response_model=Article, tags=["articles"])
    async def create_article(request: Request, body: AskRequest) -> Article:
        """Ask a question: scrub identifiers, answer for every audience, store a new 'submitted' article."""
        caller = _caller(request)
        _check_csrf(request, caller, request.headers.get(CSRF_HEADER), always=False)
        _limit(request, settings.web_ask_rate_limit, "ask")
        return await _submit(
            request,
            body.question,
            audience=body.audience,
            follow_up_of=body.follow_up_of,
            author=caller.user,
            composer=body.composer,
        )

    @app.post(
        "/api/answers/stream",
        response_class=StreamingResponse,
        tags=["articles"],
        responses={200: {"content": {"text/event-stream": {}}, "description": "Server-sent events."}},
    )
    async def stream_answer(request: Request, body: StreamRequest) -> StreamingResponse:
        """Answer a question as server-sent events without creating an article (scrubbed, rate-limited as asks).

        Events: `status` and `delta` (`ComposeEvent` JSON: a progress sentence, or text the model just
        wrote with `n_chars` so far), then one `answer` event whose `answer` is the full answer JSON; an
        `error` event (`{"ok": false, "error", "status"}`) ends a stream that failed after it began.
        POST, not GET, so the question never appears in a URL or an access log.
        """
        caller = _caller(request)
        _check_csrf(request, caller, request.headers.get(CSRF_HEADER), always=False)
        _limit(request, settings.web_ask_rate_limit, "ask")
        model = _model(request, body.composer)
        if model is None:
            events = review.answer_events(_web(request).retriever, body.question, audience=body.audience)
        else:
            events = await model.run(
                lambda _store, retriever: review.answer_events(
                    retriever, body.question, audience=body.audience, composer="llm", llm=model.client
                )
            )

        async def frames() -> AsyncIterator[bytes]:
            try:
                while True:
                    event = next(events, None) if model is None else await model.next_event(events)
                    if event is None:
                        return
                    yield _sse(event.kind, event.model_dump_json())
            except MedciteError as exc:
                error = {"ok": False, "error": str(exc), "status": exc.http_status}
                yield _sse("error", json.dumps(error))

        return StreamingResponse(frames(), media_type="text/event-stream", headers={"x-accel-buffering": "no"})

    @app.get("/api/articles/{article_id}", response_model=Article, tags=["articles"])
    async def read_article(request: Request, article_id: ArticleId, audience: Audience | None = None) -> Article:
        """Return an article with its current answer for `audience` (default: the asker's)."""
        return review.get_article(
            _web(request).store,
            article_id,
            audience=audience,
            viewer=_caller(request).user,
            approvals_needed=settings.review_approvals,
        )

    @app.post("/api/articles/{article_id}/transitions", response_model=Article, tags=["review"])
    async def transition(request: Request, article_id: ArticleId, body: TransitionRequest) -> Article:
        """Claim, request changes, approve or unpublish (reviewers; unpublish: editors). 403, 409 on errors."""
        caller = _caller(request)
        _check_csrf(request, caller, request.headers.get(CSRF_HEADER), always=False)
        return review.transition(
            _web(request).store,
            article_id,
            body.action,
            revision=body.revision,
            actor=caller.user,
            comment=body.comment,
            audience=body.audience,
            approvals_needed=settings.review_approvals,
        )

    @app.post("/api/articles/{article_id}/edits", response_model=Article, tags=["review"])
    async def edit(request: Request, article_id: ArticleId, body: EditRequest) -> Article:
        """Replace one statement (new revision with author and time); 409 when `revision` is stale."""
        caller = _caller(request)
        _check_csrf(request, caller, request.headers.get(CSRF_HEADER), always=False)
        return review.edit_statement(
            _web(request).store,
            article_id,
            revision=body.revision,
            actor=caller.user,
            audience=body.audience,
            location=body.location,
            text=body.text,
            note=body.note,
        )

    @app.get("/api/articles/{article_id}/revisions", response_model=list[RevisionInfo], tags=["review"])
    async def list_revisions(request: Request, article_id: ArticleId) -> list[RevisionInfo]:
        """Return the article's revisions, oldest first."""
        review.get_article(_web(request).store, article_id, viewer=_caller(request).user)
        return review.revisions(_web(request).store, article_id)

    @app.get("/api/articles/{article_id}/diff", response_model=DiffResponse, tags=["review"])
    async def diff(
        request: Request,
        article_id: ArticleId,
        old: RevisionNumber,
        new: RevisionNumber,
        audience: Audience = "clinician",
    ) -> Any:
        """Return a unified diff of one audience's answer between revisions `old` and `new`."""
        review.get_article(_web(request).store, article_id, viewer=_caller(request).user)
        lines = review.revision_diff(_web(request).store, article_id, old, new, audience=audience)
        return DiffResponse(old=old, new=new, audience=audience, lines=lines)

    @app.get("/api/review/queue", response_model=list[ArticleSummary], tags=["review"])
    async def queue(request: Request) -> list[ArticleSummary]:
        """Return submitted, changes-requested and under-review articles, oldest change first (reviewers)."""
        return review.list_queue(_web(request).store, _caller(request).user)

    @app.get("/api/audit", response_model=list[AuditEntry], tags=["review"])
    async def audit(
        request: Request, article_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None
    ) -> list[AuditEntry]:
        """Return the audit log, newest first (editors and admins)."""
        return review.audit_log(_web(request).store, _caller(request).user, article_id=article_id)

    @app.post("/api/login", response_model=LoginResponse, tags=["accounts"])
    async def login(request: Request, body: LoginRequest) -> LoginResponse:
        """Sign in: sets the session cookie and returns the CSRF token for later calls."""
        _limit(request, settings.web_login_rate_limit, "sign-in")
        user = review.authenticate(_web(request).store, body.username, body.password)
        session = _start_session(request, user.username)
        return LoginResponse(user=user, csrf_token=session["c"])

    @app.post("/api/logout", status_code=204, tags=["accounts"])
    async def logout(request: Request) -> Response:
        """Sign out (needs the X-CSRF-Token header)."""
        _check_csrf(request, _caller(request), request.headers.get(CSRF_HEADER), always=False)
        _start_session(request, None)
        return Response(status_code=204)
