"""The dead-letter console: server-rendered pages over the archive, under `/console` of the API.

    app.include_router(build_console(settings))

Pages: queues overview, failure groups, a filtered message list, one message (payload masked,
traceback), a confirmation step before re-drive, purge or restore, and the audit log. Actions
call the same functions as the CLI (`workers.dlq.actions`), audited with `via = console`. Access
rules and refusals are in `auth.py`; GET pages never change anything.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import UTC
from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import FileResponse, RedirectResponse
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData

from shared import schedule
from shared.config import Settings
from shared.dead_letters import archive
from shared.dead_letters.changes import audit
from shared.dead_letters.filter import Filter, from_mapping
from workers.api.printable import control_character, refusal
from workers.dlq import actions
from workers.dlq.console import cookie, login_throttle, masking, overview, sessions, users
from workers.dlq.console.auth import (
    TEMPLATES,
    ConsoleRoute,
    ConsoleState,
    Denied,
    checked_post,
    require_csrf,
    signed_in,
    write_session,
)

ACTIONS = ("redrive", "purge", "restore")
STYLESHEET = Path(__file__).parent / "static" / "console.css"


def build_console(settings: Settings) -> APIRouter:
    """The console's routes; its database engine opens on first use and closes with the app."""
    state = ConsoleState(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        state.close()

    router = APIRouter(
        prefix="/console", route_class=ConsoleRoute, lifespan=lifespan, include_in_schema=False
    )
    pages = ConsolePages(state)
    routes: list[tuple[str, str, Callable[..., Any]]] = [
        ("/login", "GET", pages.login_form),
        ("/login", "POST", pages.login),
        ("/logout", "POST", pages.logout),
        ("/", "GET", pages.overview),
        ("/groups", "GET", pages.groups),
        ("/messages", "GET", pages.messages),
        ("/messages/{message_id}", "GET", pages.message),
        ("/confirm/{action}", "GET", pages.confirm),
        ("/actions/{action}", "POST", pages.act),
        ("/audit", "GET", pages.audit),
        ("/scheduled", "GET", pages.scheduled),
        ("/static/console.css", "GET", pages.stylesheet),
    ]
    for path, method, endpoint in routes:
        name = "console_" + getattr(endpoint, "__name__", "page")
        router.add_api_route(path, endpoint, methods=[method], name=name, response_model=None)
    return router


class ConsolePages:
    """One method per page; each GET checks the session, each POST the CSRF token and role."""

    def __init__(self, state: ConsoleState) -> None:
        self.state = state

    def _page(
        self, request: Request, template: str, session: cookie.ConsoleSession, **context: Any
    ) -> Response:
        return TEMPLATES.TemplateResponse(request, template, {"csrf": session.csrf, **context})

    def _where(self, request: Request) -> Filter:
        try:
            return from_mapping(dict(request.query_params))
        except (TypeError, ValueError) as error:
            raise Denied(400, f"bad filter: {error}") from error

    def login_form(self, request: Request, failed: bool = False) -> Response:
        session = cookie.new_session(None, now=time.time())
        response = self._page(request, "login.html", session, user=None, failed=failed)
        write_session(response, request, self.state, session)
        return response

    async def login(self, request: Request) -> Response:
        form = await _form(request)
        require_csrf(request, self.state, form)
        name, password = _text(form.get("name")) or "", _text(form.get("password")) or ""
        client = request.client.host if request.client else "unknown"
        outcome = await run_in_threadpool(self._sign_in, name, password, client)
        if isinstance(outcome, int):
            if outcome:
                raise Denied(
                    429,
                    f"Too many failed sign-ins for this name or from this address. Try again in {outcome} s.",
                    headers={"Retry-After": str(outcome)},
                )
            return RedirectResponse(str(request.url_for("console_login_form")) + "?failed=1", status_code=303)
        user, sid = outcome
        response = RedirectResponse(request.url_for("console_overview"), status_code=303)
        write_session(response, request, self.state, cookie.new_session(user, now=time.time(), sid=sid))
        return response

    def _sign_in(self, name: str, password: str, client: str) -> tuple[str, str] | int:
        """(user, session id) when signed in; else seconds to wait (0: wrong name or password)."""
        counted = login_throttle.keys(name, client)
        with self.state.sessions.begin() as db:
            wait = login_throttle.wait_seconds(db, counted)
            if wait:
                return wait  # the password is not even checked while locked
            user = users.authenticate(db, name, password)
            if user is not None:
                login_throttle.forget(db, counted[0][0])
                return user.name, sessions.start(db, user.name, client=client)
            locked = login_throttle.record_failure(db, counted)
            if locked:
                _audit_lock(db, name, client, locked)
        return 0

    async def logout(self, request: Request) -> Response:
        _, session = await run_in_threadpool(
            checked_post, request, self.state, await _form(request), operator_only=False
        )
        if session.sid is not None:
            await run_in_threadpool(self._end, session.sid)
        response = RedirectResponse(request.url_for("console_login_form"), status_code=303)
        write_session(response, request, self.state, cookie.new_session(None, now=time.time()))
        return response

    def _end(self, sid: str) -> None:
        with self.state.sessions.begin() as db:
            sessions.end(db, sid)

    def overview(self, request: Request) -> Response:
        user, session = signed_in(request, self.state)
        with self.state.sessions() as db:
            counts = archive.stats(db)
        dead = {queue: by_status.get("dead", 0) for queue, by_status in counts.items()}
        rows, error = overview.overview(self.state.settings, dead)
        return self._page(request, "overview.html", session, user=user, rows=rows, error=error)

    def scheduled(self, request: Request) -> Response:
        """Delayed work waiting in PostgreSQL (`shared.schedule`): RabbitMQ's queues do not show it."""
        user, session = signed_in(request, self.state)
        with self.state.sessions() as db:
            kinds = [replace(k, next_due=k.next_due.astimezone(UTC)) for k in schedule.summary(db)]
        total = sum(kind.count for kind in kinds)
        return self._page(request, "scheduled.html", session, user=user, kinds=kinds, total=total)

    def groups(self, request: Request) -> Response:
        user, session = signed_in(request, self.state)
        where = self._where(request)
        with self.state.sessions() as db:
            found = archive.groups(db, where)
            # A group's reason quotes the values of its messages; one message's values mask it.
            samples = {
                g.group_key: archive.messages(db, Filter(group=g.group_key, status="all"), limit=1)
                for g in found
            }
        quoted = {key: masking.group_values(m.message for m in rows) for key, rows in samples.items()}
        context = {"groups": found, "scrub": masking.scrub, "quoted": quoted}
        return self._page(request, "groups.html", session, user=user, **context)

    def messages(self, request: Request) -> Response:
        user, session = signed_in(request, self.state)
        where = self._where(request)
        with self.state.sessions() as db:
            found, total = archive.messages(db, where, limit=200), archive.count(db, where)
        context = {"messages": found, "total": total, "where": where.describe(), "scrub": masking.scrub}
        context["quoted"] = masking.personal_values
        return self._page(request, "messages.html", session, user=user, **context)

    def message(self, request: Request, message_id: str) -> Response:
        user, session = signed_in(request, self.state)
        with self.state.sessions() as db:
            found, history = archive.message(db, message_id), archive.events(db, message_id)
        if found is None:
            raise Denied(404, f"No archived message {message_id}.")
        quoted = masking.personal_values(found.message)
        shown = {
            "message_json": json.dumps(
                masking.mask(found.message, quoted), indent=2, sort_keys=True, ensure_ascii=False
            ),
            "traceback": masking.scrub(found.traceback or "(none recorded)", quoted),
            "reason": masking.scrub(found.reason, quoted),
            "history": [
                (e, json.dumps(masking.mask(e.detail, quoted), sort_keys=True, ensure_ascii=False))
                for e in history
            ],
        }
        return self._page(request, "message.html", session, user=user, m=found, **shown)

    def confirm(self, request: Request, action: str) -> Response:
        user, session = signed_in(request, self.state)
        where = self._checked_action(action, self._where(request))
        if not user.can_act:
            raise Denied(403, f"{user.name} is a viewer; only operators can re-drive, purge or restore.")
        affected = {"redrive": where.with_status("dead"), "restore": where.with_status("purged")}
        with self.state.sessions() as db:
            count = archive.count(db, affected.get(action, where))
        context = {"action": action, "where": where.describe(), "count": count}
        return self._page(request, "confirm.html", session, user=user, **context)

    def _checked_action(self, action: str, where: Filter) -> Filter:
        if action not in ACTIONS:
            raise Denied(404, f"Unknown action {action!r}.")
        if where.is_empty():
            raise Denied(
                400, "Choose a group, a queue or a message first; the console never acts on everything."
            )
        return where

    async def act(self, request: Request, action: str) -> Response:
        form = await _form(request)
        user, _ = await run_in_threadpool(checked_post, request, self.state, form)
        fields = {name: _text(value) for name, value in form.items() if name != "csrf"}
        try:
            where = self._checked_action(action, from_mapping(fields))
        except (TypeError, ValueError) as error:
            raise Denied(400, f"bad filter: {error}") from error
        await run_in_threadpool(self._act, action, where, actions.Operator(user.name, "console"))
        return RedirectResponse(request.url_for("console_audit"), status_code=303)

    def _act(self, action: str, where: Filter, who: actions.Operator) -> None:
        sessions = self.state.sessions
        if action == "redrive":
            actions.redrive_matching(self.state.settings, sessions, where, who=who)
        elif action == "purge":
            actions.purge_matching(sessions, where, who=who)
        else:
            actions.restore_matching(sessions, where, who=who)

    def audit(self, request: Request) -> Response:
        user, session = signed_in(request, self.state)
        with self.state.sessions() as db:
            entries = archive.audit_log(db, limit=200)
        return self._page(request, "audit.html", session, user=user, entries=entries)

    def stylesheet(self) -> Response:
        return FileResponse(STYLESHEET, media_type="text/css")


def _audit_lock(db: Session, name: str, client: str, locked: list[tuple[str, int, int]]) -> None:
    """One audit row per lock: who was tried, from where, how many failures, for how long."""
    failures = max(count for _, count, _ in locked)
    what = " and ".join(f"{key.partition(':')[0]} for {seconds}s" for key, _, seconds in locked)
    audit(
        db, operator=name[:200] or "(blank)", via="console", action="login_throttled",
        where={"name": name, "client": client, "failures": failures}, count=failures,
        outcome=f"sign-in locked: {what}",
    )  # fmt: skip


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


async def _form(request: Request) -> FormData:
    """The posted form, refused with 400 if any field holds a control character.

    Every console POST reads its form here, so a NUL in a login name or a filter field never
    reaches PostgreSQL (which cannot store it) and is answered as the bad input it is.
    """
    form = await request.form()
    for name, value in form.multi_items():
        found = control_character(name) or (control_character(value) if isinstance(value, str) else None)
        if found is not None:
            raise Denied(400, refusal(f"the form field {name!r}", found))
    return form
