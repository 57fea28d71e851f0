"""`circulate dlq` commands that change things: sweep, redrive, purge, restore, edit, export, import.

Each acting command names its operator (`--operator`, default the login name) for the audit log,
asks for confirmation unless `--yes`, and refuses an empty filter unless `--all` is given, so a
forgotten option never re-drives or purges the whole archive.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import click

from shared.dead_letters import archive
from shared.dead_letters.filter import Filter
from shared.errors import InvalidMessage
from workers.cli_context import CliContext, pass_cli
from workers.cli_errors import reports_configuration_errors
from workers.dlq import actions, editing, sweeper, transfer
from workers.dlq.cli.support import (
    MAX_LIMIT,
    TEXT,
    build_filter,
    cli_operator,
    filter_options,
    operator_option,
)
from workers.dlq.transfer_checks import decoded_lines


@click.command(short_help="Move .XQ messages into the archive.")
@click.option("--loop", is_flag=True, help="Keep sweeping every --interval seconds until stopped.")
@click.option(
    "--interval",
    type=click.FloatRange(min=0.1),
    default=30.0,
    show_default=True,
    help="Seconds between sweeps with --loop.",
)
@reports_configuration_errors
@pass_cli
def sweep(cli: CliContext, loop: bool, interval: float) -> None:
    """Move every message in the .XQ queues into the archive (idempotent)."""
    if loop:
        sweeper.sweep_forever(cli.settings, cli.sessions, interval_s=interval)
        return
    click.echo(sweeper.sweep_once(cli.settings, cli.sessions).summary())


def _finite(ctx: click.Context, param: click.Parameter, value: float | None) -> float | None:
    """FloatRange lets `nan` and `inf` through; neither is a rate."""
    if value is not None and not math.isfinite(value):
        raise click.BadParameter("must be a finite number", ctx=ctx, param=param)
    return value


def _selection(message_id: str | None, everything: bool, options: dict[str, Any]) -> Filter:
    where = build_filter(message_id, **options)
    if where.is_empty() and not everything:
        raise click.UsageError(
            "give a message id or a filter (--group, --queue, ...), or --all for everything"
        )
    return where


@click.command(short_help="Publish dead messages back to their queue.")
@click.argument("message_id", type=TEXT, required=False)
@filter_options
@click.option("--all", "everything", is_flag=True, help="Allow an empty filter: every dead message.")
@click.option("--dry-run", is_flag=True, help="Only say what would be re-driven.")
@click.option(
    "--rate", type=click.FloatRange(min=0.1), callback=_finite, help="At most N messages per second."
)
@click.option("--limit", type=click.IntRange(min=1, max=MAX_LIMIT), help="At most N messages.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@operator_option
@reports_configuration_errors
@pass_cli
def redrive(
    cli: CliContext,
    /,
    message_id: str | None,
    everything: bool,
    dry_run: bool,
    rate: float | None,
    limit: int | None,
    yes: bool,
    operator: str,
    **options: Any,
) -> None:
    """Publish dead messages back to their original queue (same envelope, same idempotency key)."""
    where = _selection(message_id, everything, options)
    ids = actions.redrive_candidates(cli.sessions, where, limit=limit)
    if not ids:
        click.echo("nothing to re-drive: no matching message is dead (already re-driven or purged?)")
        return
    if dry_run:
        click.echo(f"dry run: would re-drive {len(ids)} message(s):")
        for found in ids:
            click.echo(f"  {found}")
        return
    if not yes:
        click.confirm(f"Re-drive {len(ids)} message(s)?", abort=True)
    with click.progressbar(length=len(ids), label="re-driving") as bar:
        result = actions.redrive_matching(
            cli.settings, cli.sessions, where, who=cli_operator(operator), limit=limit, rate=rate,
            on_progress=bar.update,
        )  # fmt: skip
    click.echo(result.summary())


@click.command(short_help="Soft-delete messages (restore undoes it).")
@click.argument("message_id", type=TEXT, required=False)
@filter_options
@click.option("--all", "everything", is_flag=True, help="Allow an empty filter: every message.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@operator_option
@reports_configuration_errors
@pass_cli
def purge(
    cli: CliContext, /, message_id: str | None, everything: bool, yes: bool, operator: str, **options: Any
) -> None:
    """Soft-delete messages from the archive (`restore` brings them back)."""
    where = _selection(message_id, everything, options)
    with cli.sessions() as session:
        matching = archive.count(session, where)
    if not yes and matching:
        click.confirm(f"Purge {matching} message(s)?", abort=True)
    purged = actions.purge_matching(cli.sessions, where, who=cli_operator(operator))
    click.echo(f"purged {len(purged)} message(s)")


@click.command(short_help="Bring purged messages back.")
@click.argument("message_id", type=TEXT, required=False)
@filter_options
@click.option("--all", "everything", is_flag=True, help="Allow an empty filter: every purged message.")
@operator_option
@reports_configuration_errors
@pass_cli
def restore(
    cli: CliContext, /, message_id: str | None, everything: bool, operator: str, **options: Any
) -> None:
    """Bring purged messages back with the status they had."""
    where = _selection(message_id, everything, options)
    restored = actions.restore_matching(cli.sessions, where, who=cli_operator(operator))
    click.echo(f"restored {len(restored)} message(s)")


@click.command(short_help="Replace a dead message's payload.")
@click.argument("message_id", type=TEXT)
@click.option(
    "--payload-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Take the new payload (JSON) from this file instead of $EDITOR.",
)
@operator_option
@reports_configuration_errors
@pass_cli
def edit(cli: CliContext, message_id: str, payload_file: Path | None, operator: str) -> None:
    """Replace a dead message's payload ($EDITOR, or --payload-file); it must pass the actor's schema."""
    with cli.sessions() as session:
        found = archive.message(session, message_id)
    if found is None:
        raise click.ClickException(f"no archived message {message_id!r}")
    if payload_file is not None:
        new_payload: str | None = _utf8(payload_file)
    else:
        new_payload = click.edit(editing.payload_text(found.message), extension=".json")
    if new_payload is None:
        click.echo("no change")
        return
    try:
        changed = actions.edit_payload(cli.sessions, message_id, new_payload, who=cli_operator(operator))
    except InvalidMessage as error:
        raise click.ClickException(str(error)) from error
    click.echo(
        "payload replaced; re-drive it with `circulate dlq redrive " + message_id + "`"
        if changed
        else "no change"
    )


def _utf8(path: Path) -> str:
    try:
        return path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as error:
        raise click.ClickException(f"{path} is not UTF-8 text (byte {error.start + 1})") from error
    except OSError as error:
        raise click.ClickException(f"cannot read {path}: {error.strerror}") from error


@click.command("export", short_help="Write messages and their history as JSON lines.")
@filter_options
@click.option("--output", "-o", type=click.File("w"), default="-", help="File to write (default: stdout).")
@operator_option
@reports_configuration_errors
@pass_cli
def export(cli: CliContext, /, output: Any, operator: str, **options: Any) -> None:
    """Write matching messages and their history as JSON lines."""
    where = build_filter(**options)
    with actions.audited(cli.sessions, cli_operator(operator), "export", where.describe()) as audit:
        count = 0
        with cli.sessions() as session:
            for line in transfer.export_lines(session, where):
                output.write(line + "\n")
                count += 1
        audit.done(count, f"exported {count} message(s)")
    click.echo(f"exported {count} message(s)", err=True)


@click.command("import", short_help="Add an export's messages missing from the archive.")
@click.argument("source", type=click.File("rb"))
@operator_option
@reports_configuration_errors
@pass_cli
def import_(cli: CliContext, source: Any, operator: str) -> None:
    """Add the messages of an export that are not in the archive yet (never overwrites)."""
    try:
        who, where = cli_operator(operator), {"source": source.name}
        with actions.audited(cli.sessions, who, "import", where) as audit, cli.sessions.begin() as session:
            imported, present = transfer.import_lines(session, decoded_lines(source))
            audit.done(imported, f"imported {imported}, {present} already present", session=session)
    except InvalidMessage as error:
        raise click.ClickException(str(error)) from error
    click.echo(f"imported {imported} message(s), {present} already present")
