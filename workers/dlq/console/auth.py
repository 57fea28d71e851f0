"""Console access: who is signed in, who may act, and how refusals look.

- Every page needs a signed-in console user (`signed_in`): the cookie names a server-side session
  (`console_sessions`), and the user's role is read with it on each request, so signing out,
  removing or demoting a user takes effect at once.
- Every POST must echo the session's CSRF token, checked before anything else (`checked_post`),
  and only an `operator` may change anything; both refusals are 403.
- `ConsoleRoute` turns those refusals into a redirect to the login page or an HTML error page,
  and adds security headers (no framing, no inline script, no caching) to every response.
- Without a `console_secret` setting the console answers 503 and explains, never signs with a
  default (fail closed).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from fastapi import Request, Response
from fastapi.responses import RedirectResponse
from fastapi.routing import APIRoute
from fastapi.templating import Jinja2Templates
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from shared.config import Settings
from shared.db import build_engine, build_sessionmaker
from shared.errors import ConfigurationError
from workers.dlq.console import cookie, sessions
from workers.dlq.console.cookie import ConsoleSession
from workers.dlq.console.users import ConsoleUser

COOKIE = "circulate_console"
TEMPLATES = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


class LoginRequired(Exception):
    """No valid session: the browser is sent to the login page."""


class Denied(Exception):
    """Refused with an HTML page: 403 (CSRF, role), 404, 400, 429 (throttled) or 503 (no secret)."""

    def __init__(self, status: int, message: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


class ConsoleState:
    """The console's settings, signing secret and database sessions (opened on first use)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._engine: Engine | None = None
        self._sessions: sessionmaker[Session] | None = None
        self._lock = threading.Lock()

    @property
    def secret(self) -> bytes:
        try:
            return cookie.console_secret(self.settings)
        except ConfigurationError as error:
            raise Denied(503, str(error)) from error

    @property
    def sessions(self) -> sessionmaker[Session]:
        with self._lock:
            if self._sessions is None:
                self._engine = build_engine(self.settings, pool_size=2)
                self._sessions = build_sessionmaker(self._engine)
            return self._sessions

    def close(self) -> None:
        with self._lock:
            if self._engine is not None:
                self._engine.dispose()
            self._engine = self._sessions = None


def read_session(request: Request, state: ConsoleState) -> ConsoleSession | None:
    return cookie.unsign(request.cookies.get(COOKIE), state.secret, now=time.time())


def write_session(response: Response, request: Request, state: ConsoleState, session: ConsoleSession) -> None:
    response.set_cookie(
        COOKIE,
        cookie.sign(session, state.secret),
        max_age=cookie.SESSION_TTL_S,
        path=request.scope.get("root_path", "") + "/console",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )


def signed_in(request: Request, state: ConsoleState) -> tuple[ConsoleUser, ConsoleSession]:
    """The signed-in user and session, or LoginRequired."""
    session = read_session(request, state)
    if session is None or session.sid is None:
        raise LoginRequired()
    with state.sessions.begin() as db:
        user = sessions.resume(db, session.sid)
    if user is None:
        raise LoginRequired()
    return user, session


def require_csrf(request: Request, state: ConsoleState, form: Any) -> None:
    """403 unless the form echoes the CSRF token of the request's session."""
    if not cookie.csrf_ok(read_session(request, state), form.get("csrf")):
        raise Denied(
            403, "This form is missing its CSRF token or has a wrong one. Reload the page and retry."
        )


def checked_post(
    request: Request, state: ConsoleState, form: Any, *, operator_only: bool = True
) -> tuple[ConsoleUser, ConsoleSession]:
    """A POST's user after the CSRF check (first, for everyone) and the role check."""
    require_csrf(request, state, form)
    user, session = signed_in(request, state)
    if operator_only and not user.can_act:
        raise Denied(403, f"{user.name} is a viewer; only operators can re-drive, purge or restore.")
    return user, session


class ConsoleRoute(APIRoute):
    """Routes that turn console refusals into pages and add the security headers."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        original = super().get_route_handler()

        async def handler(request: Request) -> Response:
            try:
                response = await original(request)
            except LoginRequired:
                response = RedirectResponse(request.url_for("console_login_form"), status_code=303)
            except Denied as denied:
                response = TEMPLATES.TemplateResponse(
                    request,
                    "error.html",
                    {"message": denied.message, "user": None},
                    status_code=denied.status,
                    headers=denied.headers,
                )
            response.headers.update(SECURITY_HEADERS)
            return response

        return handler
