"""New orders waiting at the same moment are committed together, and each is answered as if alone.

Each test makes a group on purpose: the outbox is locked by this test, two requests go first and
wait on it (the two groups at the database), and the requests sent meanwhile wait in the process;
when the lock goes, those leave as one group.
"""

from __future__ import annotations

import asyncio
import json
import threading
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import pytest
from prometheus_client import REGISTRY
from starlette.responses import Response

from shared.config import Settings
from shared.db import libpq_url
from shared.runtime import Runtime
from tests.factories import place_order
from tests.fixtures.services import wait_until
from workers.api import accepted, group_commit, intake, orders
from workers.api.errors import ApiError
from workers.api.pool import Pool, build_pool

_CONFLICT = ApiError(409, "order_conflict", "another body")
_WAITING_ON_THE_OUTBOX = (
    "SELECT count(*) FROM pg_stat_activity "
    "WHERE wait_event_type = 'Lock' AND query LIKE '%%INSERT INTO outbox%%'"
)


def _submission(order: Any, key: str | None) -> tuple[intake.Submission, accepted.OrderAdmission]:
    submission = orders._submission(
        method="POST", path="/v1/orders", service="checkout", http_key=key, correlation_id=None,
        traceparent=None, payload=order, message_key=f"order-placed:{order.order_id}",
        order_id=order.order_id,
    )  # fmt: skip
    digest = intake_digest(order, submission)
    return submission, accepted.OrderAdmission(order_id=order.order_id, digest=digest, service="checkout")


def intake_digest(order: Any, submission: intake.Submission) -> str:
    from shared.idempotency import content_hash_of

    return content_hash_of(order.kind, submission.payload_data)


async def _submit(pool: Pool, groups: group_commit.OrderGroupCommit, order: Any, key: str | None) -> Response:
    submission, admission = _submission(order, key)
    return await intake.submit(
        pool, submission, admission, refusals={accepted.Acceptance.CONFLICT: _CONFLICT}, groups=groups
    )


@contextmanager
def _outbox_locked(settings: Settings) -> Iterator[Callable[[], None]]:
    """The outbox locked against inserts until the yielded function is called (or the block ends)."""
    holder = psycopg.connect(libpq_url(settings))
    holder.execute("LOCK TABLE outbox IN SHARE ROW EXCLUSIVE MODE")
    released = threading.Event()

    def release() -> None:
        if not released.is_set():
            released.set()
            holder.commit()

    try:
        yield release
    finally:
        release()
        holder.close()


def _waiting_on_the_outbox(settings: Settings) -> int:
    with psycopg.connect(libpq_url(settings), autocommit=True) as watcher:
        row = watcher.execute(_WAITING_ON_THE_OUTBOX).fetchone()
        return 0 if row is None else int(row[0])


def _sample(name: str) -> float:
    return REGISTRY.get_sample_value(name) or 0.0


async def _in_one_group(
    settings: Settings,
    pool: Pool,
    groups: group_commit.OrderGroupCommit,
    members: list[Callable[[], Awaitable[Any]]],
) -> tuple[list[Any], list[Any]]:
    """Two requests plug the two groups at the database; `members` leave together after them.

    Returns the plugs' outcomes and the members' (an exception where one raised)."""
    with _outbox_locked(settings) as release:
        plugs = await _plug_both_groups(settings, pool, groups)
        sent = [asyncio.create_task(member()) for member in members]
        await asyncio.sleep(0)  # each member reaches its group's list
        assert len(groups._waiting) == len(members)
        await asyncio.to_thread(release)
        plugged = await asyncio.gather(*plugs, return_exceptions=True)
        outcomes = await asyncio.gather(*sent, return_exceptions=True)
    return plugged, outcomes


async def _plug_both_groups(
    settings: Settings, pool: Pool, groups: group_commit.OrderGroupCommit
) -> list[asyncio.Task[Response]]:
    """Two orders sent one after the other, each waiting on the locked outbox as a group alone."""
    plugs = []
    for waiting in (1, 2):
        plugs.append(asyncio.create_task(_submit(pool, groups, place_order(), None)))
        await asyncio.to_thread(wait_until, lambda: _waiting_on_the_outbox(settings) == waiting)  # noqa: B023
    return plugs


Scenario = Callable[[Pool, group_commit.OrderGroupCommit], Awaitable[Any]]


def _run(settings: Settings, scenario: Scenario) -> Any:
    async def main() -> Any:
        pool = build_pool(settings)
        await pool.open(wait=True)
        try:
            return await scenario(pool, group_commit.OrderGroupCommit(pool))
        finally:
            await pool.close()

    return asyncio.run(main())


def _count(runtime: Runtime, table: str) -> int:
    with runtime.engine.connect() as connection:
        return int(connection.exec_driver_sql(f"SELECT count(*) FROM {table}").scalar_one())


def test_new_orders_waiting_together_are_committed_in_one_statement(settings, clean_db):
    sizes_before = _sample("circulate_api_order_group_orders_count")
    members_before = _sample("circulate_api_order_group_orders_sum")

    async def scenario(pool: Pool, groups: group_commit.OrderGroupCommit) -> Any:
        members = [lambda: _submit(pool, groups, place_order(), str(uuid.uuid4())) for _ in range(8)]
        return await _in_one_group(settings, pool, groups, members)

    plugged, outcomes = _run(settings, scenario)
    assert [r.status_code for r in plugged + outcomes] == [202] * 10
    # the two plugs went alone, the eight together: three statements for ten orders
    assert _sample("circulate_api_order_group_orders_count") - sizes_before == 3
    assert _sample("circulate_api_order_group_orders_sum") - members_before == 10
    assert _count(clean_db, "accepted_orders") == _count(clean_db, "outbox") == 10
    assert _count(clean_db, "api_idempotency") == 8


def test_a_group_writes_each_order_as_it_would_be_written_alone(settings, clean_db):
    submissions = [_submission(place_order(), key) for key in ("k-1", None, "k-3")]

    async def scenario(pool: Pool, groups: group_commit.OrderGroupCommit) -> Any:
        members = [lambda s=s, a=a: groups.accept(s, a.params) for s, a in submissions]
        return await _in_one_group(settings, pool, groups, members)

    _, outcomes = _run(settings, scenario)
    assert outcomes == [intake.Grouped.COMMITTED] * 3
    with clean_db.engine.connect() as connection:
        for submission, admission in submissions:
            row = intake.outbox_row(submission.envelope, submission)
            queued = connection.exec_driver_sql(
                "SELECT queue_name, actor_name, body FROM outbox WHERE message_id = %(id)s",
                {"id": row["message_id"]},
            ).one()
            assert tuple(queued) == (row["queue_name"], row["actor_name"], row["body"])
            accepted_row = connection.exec_driver_sql(
                "SELECT content_hash, service FROM accepted_orders WHERE order_id = %(id)s",
                {"id": submission.order_id},
            ).one()
            assert tuple(accepted_row) == (admission.params["digest"], "checkout")
            remembered = connection.exec_driver_sql(
                "SELECT request_hash, status_code, response_body FROM api_idempotency "
                "WHERE service = 'checkout' AND idempotency_key = %(key)s",
                {"key": submission.http_key},
            ).all()
            expected = [(submission.digest, 202, json.loads(submission.accepted_json))]
            assert [tuple(r) for r in remembered] == (expected if submission.http_key else [])


def test_a_replay_in_a_group_gets_its_first_answer_and_the_others_are_accepted_once(settings, clean_db):
    replayed_order = place_order()
    refused_before = _sample("circulate_api_order_groups_refused_total")

    async def scenario(pool: Pool, groups: group_commit.OrderGroupCommit) -> Any:
        first = await _submit(pool, groups, replayed_order, "k-first")
        members = [lambda: _submit(pool, groups, replayed_order, "k-first")]
        members += [lambda: _submit(pool, groups, place_order(), str(uuid.uuid4())) for _ in range(5)]
        return first, await _in_one_group(settings, pool, groups, members)

    first, (_, outcomes) = _run(settings, scenario)
    replay, *new = outcomes
    assert first.status_code == replay.status_code == 202
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert json.loads(replay.body) == json.loads(first.body)
    assert [r.status_code for r in new] == [202] * 5
    assert all("Idempotent-Replayed" not in r.headers for r in new)
    # the group was refused once; every order is queued exactly once
    assert _sample("circulate_api_order_groups_refused_total") - refused_before == 1
    assert _count(clean_db, "outbox") == _count(clean_db, "accepted_orders") == 1 + 2 + 5


def test_two_orders_under_one_key_in_a_group_get_one_202_and_one_409(settings, clean_db):
    async def scenario(pool: Pool, groups: group_commit.OrderGroupCommit) -> Any:
        members = [lambda: _submit(pool, groups, place_order(), "k-shared") for _ in range(2)]
        members += [lambda: _submit(pool, groups, place_order(), None)]
        return await _in_one_group(settings, pool, groups, members)

    _, (one, other, unkeyed) = _run(settings, scenario)
    answers = sorted(a.status if isinstance(a, ApiError) else a.status_code for a in (one, other))
    assert answers == [202, 409]
    refused = one if isinstance(one, ApiError) else other
    assert isinstance(refused, ApiError) and refused.code == "idempotency_key_reused"
    assert unkeyed.status_code == 202
    assert _count(clean_db, "outbox") == 2 + 1 + 1


def test_when_the_database_fails_a_group_every_member_gets_the_failure_and_nothing_is_written(
    settings, clean_db
):
    async def scenario(pool: Pool, groups: group_commit.OrderGroupCommit) -> Any:
        with _outbox_locked(settings):
            waiting = await _plug_both_groups(settings, pool, groups)
            with psycopg.connect(libpq_url(settings), autocommit=True) as admin:
                admin.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE wait_event_type = 'Lock' AND query LIKE '%%INSERT INTO outbox%%'"
                )
            return await asyncio.gather(*waiting, return_exceptions=True)

    outcomes = _run(settings, scenario)
    assert all(isinstance(outcome, psycopg.OperationalError) for outcome in outcomes), outcomes
    assert _count(clean_db, "accepted_orders") == _count(clean_db, "outbox") == 0


def test_a_request_cancelled_before_its_group_leaves_writes_nothing_and_the_others_are_accepted(
    settings, clean_db
):
    cancelled_order = place_order()

    async def scenario(pool: Pool, groups: group_commit.OrderGroupCommit) -> Any:
        with _outbox_locked(settings) as release:
            plugs = await _plug_both_groups(settings, pool, groups)
            cancelled = asyncio.create_task(_submit(pool, groups, cancelled_order, None))
            kept = asyncio.create_task(_submit(pool, groups, place_order(), None))
            await asyncio.sleep(0)
            cancelled.cancel()
            await asyncio.to_thread(release)
            await asyncio.gather(*plugs)
            with pytest.raises(asyncio.CancelledError):
                await cancelled
            return await kept

    assert _run(settings, scenario).status_code == 202
    with clean_db.engine.connect() as connection:
        rows = connection.exec_driver_sql(
            "SELECT count(*) FROM accepted_orders WHERE order_id = %(id)s", {"id": cancelled_order.order_id}
        ).scalar_one()
    assert rows == 0
    assert _count(clean_db, "outbox") == 3
