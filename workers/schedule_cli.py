"""`circulate scheduled`: what waits in the PostgreSQL schedule, by kind, and when it is due.

Delayed work (an order's completion three days after delivery, a retry after a carrier's long
Retry-After) is kept in the outbox until due (`shared.schedule`), so RabbitMQ's queues do not
show it; this command, the console's "Scheduled" page and `circulate_scheduled_messages` do.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import click

from shared.schedule import ScheduledKind, summary
from workers.cli_context import CliContext, pass_cli
from workers.cli_errors import reports_configuration_errors


@click.command("scheduled")
@click.option("--json", "json_output", is_flag=True, help="Print the summary as JSON.")
@reports_configuration_errors
@pass_cli
def scheduled(cli: CliContext, json_output: bool) -> None:
    """Show the scheduled messages: count and next due time per kind."""
    with cli.sessions() as session:
        kinds = summary(session)
    click.echo(json.dumps(as_json(kinds), indent=2) if json_output else render_text(kinds))


def as_json(kinds: list[ScheduledKind]) -> dict[str, object]:
    next_due = min((kind.next_due for kind in kinds), default=None)
    return {
        "total": sum(kind.count for kind in kinds),
        "next_due": _iso(next_due) if next_due else None,
        "kinds": [{"kind": k.kind, "count": k.count, "next_due": _iso(k.next_due)} for k in kinds],
    }


def render_text(kinds: list[ScheduledKind], *, now: datetime | None = None) -> str:
    if not kinds:
        return "nothing scheduled"
    moment = now or datetime.now(UTC)
    width = max(len("kind"), *(len(kind.kind) for kind in kinds))
    lines = [f"{'kind':<{width}}  {'count':>7}  next due"]
    for kind in kinds:
        lines.append(
            f"{kind.kind:<{width}}  {kind.count:>7}  {_iso(kind.next_due)} ({_in(kind.next_due, moment)})"
        )
    lines.append(f"{'total':<{width}}  {sum(kind.count for kind in kinds):>7}")
    return "\n".join(lines)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds")


def _in(due: datetime, now: datetime) -> str:
    seconds = max(int((due - now).total_seconds()), 0)
    hours, rest = divmod(seconds, 3600)
    return f"in {hours}h{rest // 60:02d}m" if hours else f"in {rest // 60}m{rest % 60:02d}s"
