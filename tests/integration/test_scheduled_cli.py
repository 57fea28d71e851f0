"""`circulate scheduled`: what waits in the PostgreSQL schedule, by kind, with the next due time."""

from __future__ import annotations

import json

from click.testing import CliRunner

from shared.config import Settings
from shared.enqueue import enqueue
from shared.runtime import Runtime
from tests.factories import place_order
from workers.schedule_cli import scheduled


def run(settings: Settings, *args: str) -> str:
    env = {"CIRCULATE_DATABASE_URL": settings.database_url, "CIRCULATE_AMQP_URL": settings.amqp_url}
    result = CliRunner().invoke(scheduled, list(args), env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_the_schedule_lists_count_and_next_due_per_kind_and_leaves_out_due_work(
    settings: Settings, clean_db: Runtime
):
    with clean_db.sessions.begin() as session:
        enqueue(session, place_order(), idempotency_key="due-now")
        enqueue(session, place_order(), idempotency_key="in-an-hour", delay_ms=3_600_000)
        enqueue(session, place_order(), idempotency_key="in-two-days", delay_ms=2 * 86_400_000)

    report = json.loads(run(settings, "--json"))
    text = run(settings)

    assert report["total"] == 2
    (kind,) = report["kinds"]
    assert (kind["kind"], kind["count"]) == ("fulfilment.place_order", 2)
    assert kind["next_due"] == report["next_due"]
    assert "fulfilment.place_order" in text
    assert "(in 59m" in text or "(in 1h00m)" in text


def test_an_empty_schedule_says_so(settings: Settings, clean_db: Runtime):
    assert run(settings).strip() == "nothing scheduled"
    assert json.loads(run(settings, "--json")) == {"total": 0, "next_due": None, "kinds": []}
