"""What every `circulate dlq` command shares: filter options, the operator, output helpers.

Settings and the database come from the CLI's one context (`workers.cli_context.CliContext`),
made on first use, so `--help` and commands that only talk to RabbitMQ never connect to Postgres.
"""

from __future__ import annotations

import getpass
import json
import re
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import click

from shared.dead_letters.filter import Filter
from shared.dead_letters.models import STATUSES
from workers.dlq.actions import Operator

F = TypeVar("F", bound=Callable[..., Any])


#: The most messages one `list` or `redrive --limit` asks for (Postgres' LIMIT is a bigint).
MAX_LIMIT = 100_000


class PlainText(click.ParamType[str]):
    """Text Postgres can store: no NUL, and no undecodable bytes (they arrive as lone surrogates)."""

    name = "text"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        text = str(value)
        if "\x00" in text:
            self.fail("must not contain NUL characters", param, ctx)
        if any("\ud800" <= char <= "\udfff" for char in text):
            self.fail("must be valid UTF-8 text", param, ctx)
        return text


TEXT = PlainText()

_RELATIVE = re.compile(r"^(\d+)([smhd])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def parse_when(
    value: str | None, *, now: datetime | None = None, option: str | None = None
) -> datetime | None:
    """ISO 8601 (UTC when no offset is given) or a relative age like `30m`, `2h`, `7d`."""
    if value is None:
        return None
    relative = _RELATIVE.match(value.strip())
    if relative:
        try:
            delta = timedelta(**{_UNITS[relative.group(2)]: int(relative.group(1))})
            return (now or datetime.now(UTC)) - delta
        except OverflowError as error:
            message = f"{value!r} reaches back before the year 1"
            raise click.BadParameter(message, param_hint=option) from error
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as error:
        raise click.BadParameter(
            f"{value!r} is neither ISO 8601 nor an age like 2h or 7d", param_hint=option
        ) from error
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def filter_options(function: F) -> F:
    """The filter options every selecting command takes; the command gets `where: Filter`."""
    options = [
        click.option("--queue", type=TEXT, help="Original queue, e.g. fulfilment."),
        click.option("--actor", type=TEXT, help="Actor name, e.g. fulfilment.place_order."),
        click.option("--error-type", type=TEXT, help="Exception type, e.g. InvalidMessage."),
        click.option("--group", type=TEXT, help="Group key (see `circulate dlq groups`)."),
        click.option("--text", type=TEXT, help="Substring of the reason, the message or its id."),
        click.option("--since", type=TEXT, help="Failed at or after: ISO 8601 or an age (30m, 2h, 7d)."),
        click.option("--until", type=TEXT, help="Failed before: ISO 8601 or an age (30m, 2h, 7d)."),
        click.option("--status", type=click.Choice([*STATUSES, "all"]), help="Default: all but purged."),
    ]
    for option in reversed(options):
        function = option(function)
    return function


def build_filter(message_id: str | None = None, **options: Any) -> Filter:
    """The filter of a command's options; a value the filter refuses is a usage error."""
    names = ("queue", "actor", "error_type", "group", "text", "status")
    values = {name: options.get(name) for name in names}
    since = parse_when(options.get("since"), option="--since")
    until = parse_when(options.get("until"), option="--until")
    try:
        return Filter(message_id=message_id, since=since, until=until, **values)
    except ValueError as error:
        raise click.UsageError(str(error)) from error


def _default_operator() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def operator_option(function: F) -> F:
    """`--operator NAME` (default: the login name), recorded in the audit log as who acted."""
    return click.option(
        "--operator",
        type=TEXT,
        default=_default_operator,
        show_default="$USER",
        help="Who acts, for the audit log.",
    )(function)


def cli_operator(name: str) -> Operator:
    return Operator(name=name, via="cli")


def print_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """A plain aligned table; long cells are cut to keep one line per row."""
    cells = [[_cell(value) for value in row] for row in rows]
    widths = [max([len(header)] + [len(row[i]) for row in cells]) for i, header in enumerate(headers)]
    click.echo("  ".join(h.upper().ljust(width) for h, width in zip(headers, widths, strict=True)).rstrip())
    for row in cells:
        click.echo("  ".join(value.ljust(width) for value, width in zip(row, widths, strict=True)).rstrip())


def _cell(value: Any) -> str:
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
    text = "" if value is None else str(value).replace("\n", " ")
    return text if len(text) <= 70 else text[:67] + "..."


def echo_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, default=str, sort_keys=True))
