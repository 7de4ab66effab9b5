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
response. The routes are grouped by concern, one ``APIRouter`` each: ``articles`` (asking and reading),
``reviewing`` (the review workflow), ``accounts`` (signing in), ``sources`` (the library for reviewers) and
``infobutton`` (HL7 Infobutton requests from EHRs); their
shared pieces are in ``common``. Nothing imports this module but ``cli``.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import jinja2
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from itsdangerous import URLSafeTimedSerializer
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from medcite.errors import (
    MedciteError,
    RateLimited,
)
from medcite.llm import LLMClient
from medcite.retrieve import Retriever
from medcite.settings import Settings
from medcite.store import DATABASE_ERRORS, Store
from medcite.store.review import ReviewStore
from medcite.web import accounts, articles, health, infobutton, reviewing, sources
from medcite.web.common import (
    HERE,
    MAX_BODY_BYTES,
    SECURITY_HEADERS,
    SESSION_COOKIE,
    _environment,
    _load_embedder,
    _ModelWorker,
    _page,
    _Web,
    _web,
)

__all__ = ["app_from_environment", "create_app"]


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

        store = Store.for_settings(settings)
        model: _ModelWorker | None = None
        stop = threading.Event()
        embedding: threading.Thread | None = None
        try:
            ensure_default_library(store, settings=settings)
            embedder = _load_embedder(settings)
            missing = store.count_missing_vectors(embedder.name) if embedder is not None else 0
            secret = ReviewStore(store).secret("session-signing-key", secrets.token_urlsafe(48))
            if settings.llm_base_url and settings.llm_model:
                model = _ModelWorker(settings, embedder, LLMClient.from_settings(settings))
            app.state.web = _Web(
                settings=settings,
                store=store,
                retriever=Retriever(store, settings, embedder=None if missing else embedder),
                signer=URLSafeTimedSerializer(secret, salt="medcite-session"),
                limiter=MovingWindowRateLimiter(MemoryStorage()),
                model=model,
                vectors={"state": "ready", "embedder": embedder.name} if embedder is not None else None,
            )
            if missing:  # a new library: listen now, search lexically, embed on a thread (issue 16)
                embedding = health.embed_in_background(app.state.web, embedder, missing, stop)
            yield
        finally:
            stop.set()
            if embedding is not None:
                embedding.join(timeout=30)
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

    for routes in (articles, reviewing, accounts, sources, infobutton, health):
        app.include_router(routes.router(settings))
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
            html = env.get_template("error.html").render(user=None, csrf_token="", message=message, status_code=413)
            response = HTMLResponse(html, status_code=413)
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        response.headers["connection"] = "close"
        await response(scope, self._no_receive, send)

    @staticmethod
    async def _no_receive() -> Message:
        return {"type": "http.disconnect"}
