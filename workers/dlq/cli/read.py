"""Read-only `circulate dlq` commands: stats, list, show, groups. None of them changes anything."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

import click

from shared.dead_letters import archive
from shared.dead_letters.models import DeadLetter, DeadLetterEvent
from workers.cli_context import CliContext, pass_cli
from workers.cli_errors import reports_configuration_errors
from workers.dlq.cli.support import (
    MAX_LIMIT,
    TEXT,
    build_filter,
    echo_json,
    filter_options,
    print_table,
)


@click.command(short_help="Archived messages per queue and status.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@reports_configuration_errors
@pass_cli
def stats(cli: CliContext, as_json: bool) -> None:
    """Archived messages per queue and status."""
    with cli.sessions() as session:
        counts = archive.stats(session)
    if as_json:
        echo_json(counts)
        return
    rows = [
        (queue, by_status.get("dead", 0), by_status.get("redriven", 0), by_status.get("purged", 0))
        for queue, by_status in counts.items()
    ]
    print_table(("queue", "dead", "redriven", "purged"), rows)


@click.command("list", short_help="Archived messages matching filters, newest first.")
@filter_options
@click.option(
    "--limit",
    type=click.IntRange(min=1, max=MAX_LIMIT),
    default=50,
    show_default=True,
    help="At most N messages.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@reports_configuration_errors
@pass_cli
def list_messages(cli: CliContext, /, limit: int, as_json: bool, **options: Any) -> None:
    """Archived messages matching the filters, most recent failure first."""
    with cli.sessions() as session:
        found = archive.messages(session, build_filter(**options), limit=limit)
    if as_json:
        echo_json([_summary(message) for message in found])
        return
    rows = [
        (m.message_id, m.status, m.actor_name, m.exception_type, m.attempts, m.last_failed_at, m.reason)
        for m in found
    ]
    print_table(("id", "status", "actor", "error", "attempts", "last failed", "reason"), rows)


def _summary(message: DeadLetter) -> dict[str, Any]:
    hidden = ("message", "traceback", "raw_body", "original_message", "normalised_reason")
    return _columns(message, hidden)


def _columns(row: DeadLetter | DeadLetterEvent, hidden: tuple[str, ...]) -> dict[str, Any]:
    """A row's columns as a dict, leaving out `hidden` (internal or too long for a summary)."""
    return {
        column.key: getattr(row, column.key) for column in row.__table__.columns if column.key not in hidden
    }


@click.command(short_help="One message: payload, reason, traceback, history.")
@click.argument("message_id", type=TEXT)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
@reports_configuration_errors
@pass_cli
def show(cli: CliContext, message_id: str, as_json: bool) -> None:
    """One message: payload, reason, traceback, attempts and its history."""
    with cli.sessions() as session:
        found = archive.message(session, message_id)
        history = archive.events(session, message_id)
    if found is None:
        raise click.ClickException(f"no archived message {message_id!r}")
    details = _summary(found) | {"message": found.message, "traceback": found.traceback}
    details["events"] = [_columns(event, ("id",)) for event in history]
    if found.raw_body is not None:
        details["raw_body"] = found.raw_body.decode("utf-8", errors="replace")
    if as_json:
        echo_json(details)
        return
    for name in ("message_id", "status", "queue_name", "actor_name", "group_key", "exception_type", "reason"):
        click.echo(f"{name + ':':<17}{details[name]}")
    click.echo(f"{'attempts:':<17}{found.attempts} (re-driven {found.redrive_count} time(s))")
    click.echo(f"{'idempotency key:':<17}{found.idempotency_key}")
    click.echo("\nmessage:\n" + json.dumps(found.message, indent=2, sort_keys=True))
    if found.raw_body is not None:
        click.echo("\nraw body:\n" + details["raw_body"])
    click.echo("\ntraceback:\n" + (found.traceback or "(none recorded)"))
    click.echo("\nhistory:")
    for event in history:
        click.echo(
            f"  {event.at:%Y-%m-%d %H:%M:%S}  {event.kind:<9} {event.operator}  {json.dumps(event.detail)}"
        )


@click.command(short_help="Failure groups with counts, first and last seen.")
@filter_options
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@reports_configuration_errors
@pass_cli
def groups(cli: CliContext, /, as_json: bool, **options: Any) -> None:
    """Failure groups (same actor, exception type and reason pattern) with counts and first/last seen."""
    with cli.sessions() as session:
        found = archive.groups(session, build_filter(**options))
    if as_json:
        echo_json([asdict(group) for group in found])
        return
    rows = [
        (
            g.group_key,
            g.count,
            g.dead,
            g.actor_name,
            g.exception_type,
            g.first_seen,
            g.last_seen,
            g.normalised_reason,
        )
        for g in found
    ]
    print_table(("group", "count", "dead", "actor", "error", "first seen", "last seen", "reason"), rows)
