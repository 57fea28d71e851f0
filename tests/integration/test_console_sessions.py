"""Console sessions live in the database and end at sign-out; sign-ins are throttled and audited."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import text

from shared.config import Settings
from shared.dead_letters import archive
from shared.runtime import Runtime
from tests.fixtures.live_api import PASSWORD, csrf_of, live_api, sign_in
from workers.dlq.console import cookie as session_cookie
from workers.dlq.console import login_throttle, users
from workers.dlq.console.auth import COOKIE


@pytest.fixture
def server(settings: Settings, clean_db: Runtime) -> Iterator[str]:
    with clean_db.sessions.begin() as session:
        users.add_user(session, "olivia", PASSWORD, "operator")
    with live_api(settings) as url:
        yield url


def signed_in_cookie(server: str, name: str = "olivia") -> str:
    with httpx.Client(base_url=server) as client:
        assert sign_in(client, name).status_code == 303
        return client.cookies[COOKIE]


def page_with(server: str, cookie: str) -> httpx.Response:
    return httpx.get(f"{server}/console/audit", cookies={COOKIE: cookie})


def test_a_cookie_copied_before_sign_out_no_longer_works_after_it(server):
    with httpx.Client(base_url=server) as client:
        assert sign_in(client, "olivia").status_code == 303
        copied = client.cookies[COOKIE]
        assert page_with(server, copied).status_code == 200
        page = client.get("/console/audit")

        signed_out = client.post("/console/logout", data={"csrf": csrf_of(page)})

    assert signed_out.status_code == 303
    replayed = page_with(server, copied)
    assert replayed.status_code == 303
    assert replayed.headers["location"].endswith("/console/login")


def test_sessions_are_rows_and_sign_out_deletes_only_its_own(server, clean_db):
    first, second = signed_in_cookie(server), signed_in_cookie(server)
    with clean_db.sessions() as session:
        assert session.execute(text("SELECT count(*) FROM console_sessions")).scalar_one() == 2

    with httpx.Client(base_url=server, cookies={COOKIE: first}) as client:
        client.post("/console/logout", data={"csrf": csrf_of(client.get("/console/audit"))})

    assert page_with(server, first).status_code == 303
    assert page_with(server, second).status_code == 200


def test_a_new_password_ends_every_session_of_that_user(server, clean_db):
    cookie = signed_in_cookie(server)

    with clean_db.sessions.begin() as session:
        users.add_user(session, "olivia", "another long password", "operator")

    assert page_with(server, cookie).status_code == 303


def test_a_session_idle_past_the_idle_timeout_has_ended(server, clean_db):
    cookie = signed_in_cookie(server)

    with clean_db.sessions.begin() as session:
        session.execute(
            text("UPDATE console_sessions SET last_seen_at = now() - make_interval(secs => :s)"),
            {"s": session_cookie.IDLE_TIMEOUT_S + 1},
        )

    assert page_with(server, cookie).status_code == 303


def attempt(client: httpx.Client, name: str, password: str) -> httpx.Response:
    form = client.get("/console/login")
    return client.post("/console/login", data={"csrf": csrf_of(form), "name": name, "password": password})


def test_repeated_failures_for_a_name_lock_it_even_against_the_right_password_and_are_audited(
    server, clean_db
):
    with httpx.Client(base_url=server) as client:
        failures = [attempt(client, "olivia", "wrong password!") for _ in range(login_throttle.NAME_LIMIT)]
        locked = attempt(client, "olivia", PASSWORD)

    assert all(r.status_code == 303 and "failed=1" in r.headers["location"] for r in failures)
    assert locked.status_code == 429
    assert int(locked.headers["retry-after"]) == login_throttle.FIRST_LOCK_S
    assert "Too many failed sign-ins" in locked.text
    with clean_db.sessions() as session:
        entries = archive.audit_log(session)
    assert [(e.action, e.operator, e.via) for e in entries] == [("login_throttled", "olivia", "console")]
    assert entries[0].filter == {
        "name": "olivia",
        "client": "127.0.0.1",
        "failures": login_throttle.NAME_LIMIT,
    }


def test_failures_across_many_names_from_one_client_lock_that_client(server):
    with httpx.Client(base_url=server) as client:
        for number in range(login_throttle.CLIENT_LIMIT):
            attempt(client, f"guess-{number}", "wrong password!")
        locked = attempt(client, "olivia", PASSWORD)

    assert locked.status_code == 429


def test_a_lock_ends_when_its_time_is_up_and_a_success_forgets_the_failures(server, clean_db):
    with httpx.Client(base_url=server) as client:
        for _ in range(login_throttle.NAME_LIMIT):
            attempt(client, "olivia", "wrong password!")
        with clean_db.sessions.begin() as session:
            session.execute(text("UPDATE console_login_failures SET locked_until = now()"))

        signed_in = attempt(client, "olivia", PASSWORD)

    assert signed_in.status_code == 303 and "failed" not in signed_in.headers["location"]
    with clean_db.sessions() as session:
        keys = session.execute(text("SELECT key FROM console_login_failures")).scalars().all()
    assert keys == ["client:127.0.0.1"]  # the client's count decays on its own; the name's is forgotten


def test_each_further_failure_doubles_the_lock_up_to_the_cap():
    limit = login_throttle.NAME_LIMIT
    locks = [login_throttle.lock_seconds(failures, limit) for failures in range(1, limit + 8)]

    assert locks[: limit - 1] == [0] * (limit - 1)
    assert locks[limit - 1 : limit + 3] == [30, 60, 120, 240]
    assert max(locks) == login_throttle.MAX_LOCK_S
