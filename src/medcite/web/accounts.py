"""Routes for signing in and out (the login form and the API)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from medcite import review
from medcite.errors import (
    AuthenticationFailed,
)
from medcite.settings import Settings
from medcite.web.common import (
    CSRF_HEADER,
    LoginRequest,
    LoginResponse,
    _caller,
    _check_csrf,
    _form,
    _limit,
    _page,
    _start_session,
    _web,
)


def router(settings: Settings) -> APIRouter:
    """The accounts routes, on ``settings``."""
    router = APIRouter()

    @router.get("/login", response_class=HTMLResponse, include_in_schema=False)
    async def login_page(request: Request) -> HTMLResponse:
        return _page(request, "login.html")

    @router.post("/login", include_in_schema=False)
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

    @router.post("/logout", include_in_schema=False)
    async def logout_form(request: Request) -> Response:
        form = await _form(request)
        _check_csrf(request, _caller(request), form.get("csrf_token"), always=True)
        _start_session(request, None)
        return RedirectResponse("/", status_code=303)

    @router.post("/api/login", response_model=LoginResponse, tags=["accounts"])
    async def login(request: Request, body: LoginRequest) -> LoginResponse:
        """Sign in: sets the session cookie and returns the CSRF token for later calls."""
        _limit(request, settings.web_login_rate_limit, "sign-in")
        user = review.authenticate(_web(request).store, body.username, body.password)
        session = _start_session(request, user.username)
        return LoginResponse(user=user, csrf_token=session["c"])

    @router.post("/api/logout", status_code=204, tags=["accounts"])
    async def logout(request: Request) -> Response:
        """Sign out (needs the X-CSRF-Token header)."""
        _check_csrf(request, _caller(request), request.headers.get(CSRF_HEADER), always=False)
        _start_session(request, None)
        return Response(status_code=204)

    return router
